"""`BenchSpec`: everything one benchmark varies (the `fercleaner bench` options).

The options are checked together before any work starts, and `BenchSpec.command` writes
the `fercleaner bench` command line that reruns the benchmark (bench.json's `command`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fercleaner.bench.downstream import DEFAULT_POLICY
from fercleaner.bench.plain_reference import PlainRecipe
from fercleaner.bench.protocols import PROTOCOLS, VOTE_PROTOCOLS
from fercleaner.bench.references import REFERENCES, plan_references
from fercleaner.errors import FercleanerError


@dataclass(frozen=True)
class BenchSpec:
    """Everything one benchmark varies (the `fercleaner bench` options)."""

    protocol: str = "symmetric"
    """Noise protocol (`fercleaner.bench.protocols`): annotator, votes, symmetric or pairflip."""
    rate: float = 0.2
    """Fraction flipped per class (symmetric, pairflip)."""
    visible: int = 3
    """Votes visible per image (votes protocol)."""
    seed: int = 0
    """Seed of the noise draw and of the references' training."""
    method: str | None = None
    """fercleaner's `--method` (None: the recipe's)."""
    recipe: str | None = None
    """fercleaner's `--recipe` (None: `fercleaner score`'s own default, as a user runs it)."""
    overrides: Sequence[str] = ()
    """fercleaner's recipe overrides key=value."""
    references: Sequence[str] | None = None
    """References run beside fercleaner (`fercleaner.bench.references.REFERENCES`); None:
    all of them, or none for the votes protocol (which compares other systems)."""
    folds: int = 5
    """K of the cross-validated reference."""
    reference_epochs: int = PlainRecipe.epochs
    """Per-model epochs of the plain references (the protocol's 30)."""
    reference_cache: str | os.PathLike[str] | None = "default"
    """Cached reference results: "default" = `<cache root>/bench-references`, None = none."""
    splits: Sequence[str] | None = None
    """Source splits to benchmark on (default all), e.g. ["val"]."""
    max_samples: int | None = None
    """A seeded random subset of at most this many samples."""
    slice_index: int | None = None
    """The i-th disjoint SLICE_SIZE-image slice (a fixed permutation, whatever the seed)."""
    downstream: bool = False
    """Also train on noisy / cleaned / true labels and test on a held-out clean share."""
    holdout: float = 0.2
    """Share held out per true class when `downstream`."""
    policy: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_POLICY))
    """What fercleaner's issue types do to the training labels when `downstream`."""
    score_command: Sequence[str] | None = None
    """Command prefix that scores a dataset (default `python -m fercleaner score`); it gets
    `DATASET --out RUN_DIR [--recipe R] [--method M] [key=value ...]`."""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise FercleanerError(
                f"unknown noise protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}"
            )
        if self.protocol not in VOTE_PROTOCOLS and not 0.0 < self.rate < 1.0:
            raise FercleanerError(
                f"--rate must be in (0, 1) for {self.protocol} noise; got {self.rate}"
            )
        if self.references is None:
            default = () if self.protocol == "votes" else REFERENCES
            object.__setattr__(self, "references", default)
        if self.protocol == "votes":
            self._check_votes_options()
        if self.downstream and not 0.0 < self.holdout < 1.0:
            raise FercleanerError(f"--holdout must be in (0, 1); got {self.holdout}")
        if self.reference_epochs < 1:
            raise FercleanerError(
                f"--reference-epochs must be at least 1; got {self.reference_epochs}"
            )
        plan_references(list(self.references), folds=self.folds)

    def _check_votes_options(self) -> None:
        if self.visible < 1:
            raise FercleanerError(f"--votes-visible must be at least 1; got {self.visible}")
        ignored = [
            flag
            for flag, given in (("--reference", self.references), ("--downstream", self.downstream))
            if given
        ]
        if ignored:
            raise FercleanerError(
                "the votes protocol compares the plurality vote, cleanlab's multiannotator and "
                f"fercleaner without and with votes; drop {', '.join(ignored)}"
            )

    def command(self, dataset: str | os.PathLike[str], out: Path) -> str:
        """The `fercleaner bench` command line that reruns this benchmark."""
        parts = ["fercleaner", "bench", str(dataset), "--protocol", self.protocol]
        if self.protocol not in VOTE_PROTOCOLS:
            parts += ["--rate", str(self.rate)]
        if self.protocol == "votes":
            parts += ["--votes-visible", str(self.visible)]
        parts += ["--seed", str(self.seed)]
        for flag, value in (("--recipe", self.recipe), ("--method", self.method)):
            if value:
                parts += [flag, value]
        if not self.references and self.protocol != "votes":
            parts += ["--no-reference"]
        elif sorted(self.references) != sorted(REFERENCES):
            for reference in self.references:
                parts += ["--reference", reference]
        for flag, value, default in (
            ("--folds", self.folds, 5),
            ("--reference-epochs", self.reference_epochs, PlainRecipe.epochs),
            ("--slice", self.slice_index, None),
            ("--max-samples", self.max_samples, None),
        ):
            if value != default:
                parts += [flag, str(value)]
        for split in self.splits or ():
            parts += ["--split", split]
        if self.downstream:
            parts += ["--downstream"]
            parts += ["--holdout", str(self.holdout)] if self.holdout != 0.2 else []
        return shlex.join([*parts, "--out", str(out), *self.overrides])
