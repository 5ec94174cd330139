"""The canonical emotion vocabulary and every dataset's code table mapping into it.

Datasets number their classes differently (RAF-DB 1=surprise..7=neutral, FER2013
0=angry..6=neutral, AffectNet 0=neutral..7=contempt); every reader maps through the
explicit tables here, so no code shift hides inside a reader.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from fercleaner.errors import UnknownLabelError

#: Canonical class names in canonical order (FERPlus vote order, 8 classes).
CANONICAL_CLASSES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)

#: FER2013 `emotion` column codes (Kaggle challenge order).
FER2013_CODES: dict[int, str] = {
    0: "anger",
    1: "disgust",
    2: "fear",
    3: "happiness",
    4: "sadness",
    5: "surprise",
    6: "neutral",
}

#: RAF-DB basic-expression codes in `EmoLabel/list_patition_label.txt` (1-based).
RAFDB_CODES: dict[int, str] = {
    1: "surprise",
    2: "fear",
    3: "disgust",
    4: "happiness",
    5: "sadness",
    6: "anger",
    7: "neutral",
}

#: AffectNet `expression` codes; 8-10 are not emotions and are excluded by the reader.
AFFECTNET_CODES: dict[int, str] = {
    0: "neutral",
    1: "happiness",
    2: "sadness",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "anger",
    7: "contempt",
}
AFFECTNET_EXCLUDED_CODES: dict[int, str] = {8: "none", 9: "uncertain", 10: "no-face"}

#: FERPlus vote columns, in the order of `label.csv` / `fer2013new.csv`.
FERPLUS_VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)

#: Most confusable partner(s) of each class, in preference order (FER confusion studies:
#: fear<->surprise, disgust<->anger, sadness->neutral, contempt->neutral/happiness).
#: `pairflip` label noise (`fercleaner synth --noise-kind pairflip`, `fercleaner bench
#: --protocol pairflip`) flips a label to `get_pairflip_partners`'s pick from this table.
PAIRFLIP_PARTNERS: dict[str, tuple[str, ...]] = {
    "neutral": ("sadness", "happiness"),
    "happiness": ("neutral", "surprise"),
    "surprise": ("fear", "happiness"),
    "sadness": ("neutral", "fear"),
    "anger": ("disgust", "sadness"),
    "disgust": ("anger", "sadness"),
    "fear": ("surprise", "sadness"),
    "contempt": ("neutral", "happiness"),
}

#: Spellings seen in the wild, lower-cased, mapped to canonical names.
_SYNONYMS: dict[str, str] = {
    "neutral": "neutral",
    "neutrality": "neutral",
    "calm": "neutral",
    "happy": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "smile": "happiness",
    "surprise": "surprise",
    "surprised": "surprise",
    "sad": "sadness",
    "sadness": "sadness",
    "unhappy": "sadness",
    "angry": "anger",
    "anger": "anger",
    "mad": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "contempt": "contempt",
    "contemptuous": "contempt",
}


def normalize_label(name: str) -> str:
    """Return the canonical class name for a spelling such as 'Angry' or 'surprised'.

    Raises:
        UnknownLabelError: the spelling matches no class; the message lists the closest.
    """
    key = str(name).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    close = difflib.get_close_matches(key, list(_SYNONYMS), n=1)
    hint = f" Did you mean {_SYNONYMS[close[0]]!r}?" if close else ""
    raise UnknownLabelError(
        f"unknown expression label {name!r}; expected one of {', '.join(CANONICAL_CLASSES)}"
        f" (or a common spelling such as angry, happy, sad, surprised).{hint}"
    )


def dataset_classes(labels: Iterable[str]) -> list[str]:
    """The canonical classes a dataset uses, in canonical order (e.g. 7 for RAF-DB)."""
    present = set(labels)
    return [c for c in CANONICAL_CLASSES if c in present]


def get_pairflip_partners(classes: Sequence[str]) -> list[int]:
    """The class each class's labels flip to under `pairflip` noise, as indices into `classes`.

    The first `PAIRFLIP_PARTNERS` entry present among `classes`; a class with none of
    its partners present flips to the next class in order (wrapping around).
    """
    classes = list(classes)
    partners = []
    for k, name in enumerate(classes):
        present = [c for c in PAIRFLIP_PARTNERS.get(name, ()) if c in classes and c != name]
        partners.append(classes.index(present[0]) if present else (k + 1) % len(classes))
    return partners
