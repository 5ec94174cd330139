"""Measure every stage at N samples (issue 11): ingest, cache, review and export; one JSON object.

Generates N small images cheaply (a few hundred distinct 48x48 PNGs hard-linked to N
paths) in the `affectnet` and `csv` layouts, and a scored run (10% flagged, `--decisions`
decisions already in its review store) for the review and export side. Each stage runs
in a child process of its own: wall time from here, CPU seconds (the stage and its
workers) and peak RSS from `os.wait4` (the largest resident set of the stage process or
any of its workers, not their sum; pages of the cache's memmap that a process touched
count in it, `cache_memmap_mb` says how large that file is).

    nice -n 19 .venv/bin/python bench/scale.py --n 100000 \
        [--stages ingest,cache,score,review,export] [--workdir DIR] [--decisions N]

Review timings come from Streamlit's `AppTest` (the script run of a first render, a
decision click, a filter change, the overview page), not from a browser: the Chromium
measurement the issue asks for is a follow-up. `score` is not measured here (its fields
stay null). A `--workdir` that already holds data for the same N is reused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "cache", "score", "review", "export")
LAYOUTS = ("affectnet", "csv")
N_TILES = 256
IMAGE_PX = 48
PER_FOLDER = 1000
FLAG_RATE = 0.1
CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]

#: Every field the issue names, null until its stage runs.
FIELDS = (
    "ingest_images_per_s",
    "ingest_peak_rss_mb",
    "cache_peak_rss_mb",
    "review_first_image_s",
    "review_click_s",
    "review_filter_s",
    "review_overview_s",
    "export_s",
    "export_peak_rss_mb",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True, help="samples per layout and in the run")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--workdir", type=Path, default=None, help="kept; reused for the same N")
    parser.add_argument(
        "--decisions", type=int, default=None, help="decisions in the store (default N)"
    )
    parser.add_argument(
        "--kill-after",
        type=float,
        default=None,
        help="also time a cache build of the csv layout killed with SIGKILL after this many"
        " seconds, then resumed (`cache_resume_*` fields)",
    )
    parser.add_argument(
        "--checkpoint-s",
        type=float,
        default=None,
        help="seconds between cache index checkpoints in the killed build (default: the"
        " library's, fercleaner.cache.build.CHECKPOINT_S)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        resume = (args.kill_after, args.checkpoint_s)
        return _child(args.child, args.n, args.workdir, args.decisions or 0, resume)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fercleaner-scale-"))
    work = work.resolve()
    decisions = args.n if args.decisions is None else args.decisions
    result: dict = {"bench": "scale", "n": args.n, "stages": stages, "cpus": os.cpu_count()}
    result.update(dict.fromkeys(FIELDS))
    result["score_note"] = "not measured by bench/scale.py (scoring is issue 11's training part)"
    try:
        needs = stages + (["cache"] if args.kill_after is not None else [])
        result["generate_s"] = _generate(work, args.n, needs, decisions)
        result["decisions_in_store"] = decisions if {"review", "export"} & set(stages) else None
        for stage in stages:
            if stage == "score":
                continue
            for part in LAYOUTS if stage in ("ingest", "cache") else ("run",):
                result.update(_run_child(f"{stage}:{part}", args.n, work))
        if args.kill_after is not None:
            result.update(
                _run_child(
                    "resume:csv",
                    args.n,
                    work,
                    extra=["--kill-after", str(args.kill_after)]
                    + (
                        []
                        if args.checkpoint_s is None
                        else ["--checkpoint-s", str(args.checkpoint_s)]
                    ),
                )
            )
        _summarise(result)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


def _summarise(result: dict) -> None:
    """The issue's top-level fields from the per-layout figures (affectnet first)."""
    for stage in ("ingest", "cache"):
        rss = [result.get(f"{stage}_{lay}_peak_rss_mb") for lay in LAYOUTS]
        rss = [r for r in rss if r is not None]
        if rss:
            result[f"{stage}_peak_rss_mb"] = max(rss)
    if result.get("ingest_affectnet_images_per_s") is not None:
        result["ingest_images_per_s"] = result["ingest_affectnet_images_per_s"]
    if result.get("review_run_peak_rss_mb") is not None:
        result["review_peak_rss_mb"] = result.pop("review_run_peak_rss_mb")
    if result.get("export_run_peak_rss_mb") is not None:
        result["export_peak_rss_mb"] = result.pop("export_run_peak_rss_mb")


# -- generation ------------------------------------------------------------------------


def _generate(work: Path, n: int, stages: list[str], decisions: int) -> float:
    """Write what the stages need under `work` (skipped when it is there for this N).

    Each part is written by a child process too: a child's peak RSS starts at this
    process's size when it forks, so this one stays small (no numpy, pandas or PIL).
    """
    t0 = time.perf_counter()
    marker = work / "generated.json"
    done = json.loads(marker.read_text()) if marker.is_file() else {}
    if done.get("n") != n or done.get("decisions") != decisions:
        done = {"n": n, "decisions": decisions, "parts": []}
    work.mkdir(parents=True, exist_ok=True)
    wanted = []
    if {"ingest", "cache"} & set(stages):
        wanted += list(LAYOUTS)
    if {"review", "export"} & set(stages):
        wanted.append("run")
    for part in wanted:
        if part in done["parts"]:
            continue
        figures = _run_child(f"generate:{part}", n, work, decisions=decisions)
        if any(key.endswith("_error") for key in figures):
            raise RuntimeError(f"generating {part} failed: {figures}")
        done["parts"].append(part)
        marker.write_text(json.dumps(done))
    return round(time.perf_counter() - t0, 2)


def _generate_part(work: Path, part: str, n: int, decisions: int) -> dict:
    tiles = _write_tiles(work / "tiles")
    if part == "affectnet":
        _write_affectnet(work / "affectnet", tiles, n)
    elif part == "csv":
        _write_csv(work / "csv", tiles, n)
    else:
        _write_run(work / "run", work / "tiles", tiles, n, decisions)
    return {}


def _write_tiles(folder: Path) -> list[Path]:
    """`N_TILES` distinct little grey PNGs (noise over a gradient), written once."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 200, IMAGE_PX, dtype=np.float32)[None, :]
    paths = []
    for i in range(N_TILES):
        path = folder / f"t{i:03d}.png"
        if not path.exists():
            pixels = ramp + rng.normal(0, 25, (IMAGE_PX, IMAGE_PX))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L").save(path)
        paths.append(path)
    return paths


def _link_images(image_root: Path, tiles: list[Path], n: int) -> list[str]:
    """Hard-link tile i % N_TILES to `<image_root>/<i // 1000>/<i>.png`; relative names."""
    names = []
    for i in range(n):
        folder = f"{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            (image_root / folder).mkdir(parents=True, exist_ok=True)
        name = f"{folder}/{i:07d}.png"
        target = image_root / name
        if not target.exists():
            os.link(tiles[i % N_TILES], target)
        names.append(name)
    return names


def _write_affectnet(root: Path, tiles: list[Path], n: int) -> None:
    """training.csv (90%) and validation.csv (10%) over Manually_Annotated_Images/."""
    import numpy as np

    names = _link_images(root / "Manually_Annotated_Images", tiles, n)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 8, n)
    va = np.round(rng.uniform(-1, 1, (n, 2)), 3)
    header = (
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
        "expression,valence,arousal\n"
    )
    cut = n - n // 10
    for file, lo, hi in (("training.csv", 0, cut), ("validation.csv", cut, n)):
        lines = [
            f'{names[i]},2,2,44,44,"",{codes[i]},{va[i, 0]},{va[i, 1]}\n' for i in range(lo, hi)
        ]
        (root / file).write_text(header + "".join(lines))


def _write_csv(root: Path, tiles: list[Path], n: int) -> None:
    """labels.csv with path,label,split over images/."""
    import numpy as np

    names = _link_images(root / "images", tiles, n)
    rng = np.random.default_rng(2)
    labels = np.array(CLASSES)[rng.integers(0, len(CLASSES), n)]
    splits = np.array(["train", "train", "train", "val", "test"])[np.arange(n) % 5]
    lines = [f"images/{names[i]},{labels[i]},{splits[i]}\n" for i in range(n)]
    (root / "labels.csv").write_text("path,label,split\n" + "".join(lines))


def _write_run(run_dir: Path, root: Path, tiles: list[Path], n: int, decisions: int) -> None:
    """scores.parquet (10% flagged, most suspect first) and a store with `decisions` rows."""
    import numpy as np
    import pandas as pd

    from fercleaner.review.store import Decision, DecisionStore
    from fercleaner.scoring import write_scores

    rng = np.random.default_rng(3)
    c = len(CLASSES)
    given = rng.integers(0, c, n)
    probs = (0.3 * rng.dirichlet(np.full(c, 0.3), n)).astype(np.float32)
    probs[np.arange(n), given] += 0.7
    flag = rng.random(n) < FLAG_RATE
    proposed = given.copy()
    proposed[flag] = (given[flag] + rng.integers(1, c, int(flag.sum()))) % c
    probs[flag] = 0.05 / c
    probs[flag, proposed[flag]] += 0.95
    quality = probs[np.arange(n), given].astype(np.float64)
    names = np.array(CLASSES, dtype=object)
    soft = (0.5 * probs + 0.5 * np.eye(c, dtype=np.float32)[given]).astype(np.float32)
    frame = pd.DataFrame(
        {
            "sample_id": [f"img/{i:07d}.png" for i in range(n)],
            "split": np.array(["train", "val", "test"])[np.arange(n) % 3],
            "given_label": names[given],
            "predicted_label": names[probs.argmax(1)],
            "proposed_label": names[proposed],
            "label_quality": quality,
            "is_label_issue": flag,
            "issue_type": np.where(flag, "mislabeled", "none"),
            "uncertainty": 1.0 - probs.max(1).astype(np.float64),
            "pred_probs": list(probs),
            "soft_label": list(soft),
            "mtac_confidence": rng.random(n),
            "path": [str(tiles[i % N_TILES]) for i in range(n)],
        }
    )
    meta = {
        "classes": CLASSES,
        "method": "mtac",
        "recipe": {"method": "mtac"},
        "run_id": f"scale-{n}",
        "dataset_root": str(root),
        "dataset_fingerprint": "sha256:scale",
        "layout": "csv",
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "review.sqlite").unlink(missing_ok=True)
    write_scores(frame, run_dir / "scores.parquet", metadata=meta)
    # the 1,000 most suspect stay undecided so the queue has work in it
    order = np.argsort(quality, kind="stable")[1000:][:decisions]
    actions = np.array(["keep", "accept", "exclude"])[rng.integers(0, 3, len(order))]
    batch = [
        Decision(
            frame["sample_id"].iat[i],
            str(a),
            None if a == "exclude" else str(names[given[i]] if a == "keep" else names[proposed[i]]),
        )
        for i, a in zip(order.tolist(), actions.tolist(), strict=True)
    ]
    with DecisionStore(run_dir / "review.sqlite") as store:
        for start in range(0, len(batch), 100_000):
            store.record_many(batch[start : start + 100_000], reviewer="bench")


# -- stages (each in a child process) --------------------------------------------------


def _run_child(
    name: str, n: int, work: Path, *, decisions: int = 0, extra: list[str] | None = None
) -> dict:
    """Run one stage in a child; its figures plus wall time and peak RSS (from wait4)."""
    out_path = work / f"child-{name.replace(':', '-')}.json"
    err_path = work / f"child-{name.replace(':', '-')}.log"
    out_path.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", name, "--n", str(n), "--workdir", str(work)]
    command += ["--decisions", str(decisions)]
    command += extra or []
    t0 = time.perf_counter()
    with open(err_path, "w") as err:
        proc = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    key = name.replace(":", "_")
    if proc.returncode != 0 or not out_path.is_file():
        tail = err_path.read_text(errors="replace")[-2000:]
        return {f"{key}_error": f"exit {proc.returncode}: {tail}"}
    figures = json.loads(out_path.read_text())
    figures[f"{key}_wall_s"] = round(wall, 2)
    figures[f"{key}_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
    # CPU seconds of the stage and its workers: steadier than wall time on a shared machine
    figures[f"{key}_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    return figures


def _child(
    name: str, n: int, work: Path, decisions: int, resume: tuple[float | None, float | None]
) -> int:
    stage, part = name.split(":")
    if stage == "generate":
        figures = _generate_part(work, part, n, decisions)
    elif stage == "resume":
        figures = _cache_resume(work, part, resume[0] or 0.0, resume[1])
    else:
        run = {"ingest": _ingest, "cache": _cache, "review": _review, "export": _export}[stage]
        figures = run(work, part, n)
    (work / f"child-{name.replace(':', '-')}.json").write_text(json.dumps(figures))
    return 0


class _Progress:
    """Records progress calls: how many, and the seconds between the first and the last."""

    def __init__(self) -> None:
        self.calls = 0
        self.first: float | None = None
        self.last_done = 0

    def __call__(self, done: int, total: int) -> None:
        self.calls += 1
        self.first = self.first or time.perf_counter()
        self.last_done = done


def _ingest(work: Path, layout: str, n: int) -> dict:
    from fercleaner.datasets import read_dataset

    progress = _Progress()
    t0 = time.perf_counter()
    data = read_dataset(work / layout, layout, workers=2, progress=progress)
    seconds = time.perf_counter() - t0
    first = None if progress.first is None else round(progress.first - t0, 2)
    return {
        f"ingest_{layout}_s": round(seconds, 2),
        f"ingest_{layout}_images_per_s": round(len(data.samples) / seconds, 1),
        f"ingest_{layout}_samples": len(data.samples),
        f"ingest_{layout}_problems": len(data.problems),
        f"ingest_{layout}_progress_calls": progress.calls,
        f"ingest_{layout}_first_progress_s": first,
    }


def _cache(work: Path, layout: str, n: int) -> dict:
    from fercleaner.cache import build_cache
    from fercleaner.datasets import read_dataset

    t0 = time.perf_counter()
    samples = read_dataset(work / layout, layout, check_images=False).samples
    read_s = time.perf_counter() - t0
    cache_dir = work / f"cache-{layout}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    progress = _Progress()
    t0 = time.perf_counter()
    cold = build_cache(
        samples, size=IMAGE_PX, channels=1, cache_dir=cache_dir, workers=2, progress=progress
    )
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = build_cache(samples, size=IMAGE_PX, channels=1, cache_dir=cache_dir, workers=2)
    warm_s = time.perf_counter() - t0
    out = {
        f"cache_{layout}_read_s": round(read_s, 2),
        f"cache_{layout}_s": round(cold_s, 2),
        f"cache_{layout}_images_per_s": round(cold.n_decoded / cold_s, 1),
        f"cache_{layout}_warm_s": round(warm_s, 2),
        f"cache_{layout}_warm_decoded": warm.n_decoded,
        f"cache_{layout}_progress_calls": progress.calls,
        "cache_memmap_mb": round(len(cold) * IMAGE_PX * IMAGE_PX / 2**20, 1),
    }
    shutil.rmtree(cache_dir, ignore_errors=True)
    return out


def _killed_build(samples, cache_dir: Path, checkpoint_s: float | None) -> None:
    """Grandchild: a cold cache build (its parent kills it midway)."""
    import fercleaner.cache.build
    from fercleaner.cache import build_cache

    if checkpoint_s is not None:
        fercleaner.cache.build.CHECKPOINT_S = checkpoint_s

    build_cache(samples, size=IMAGE_PX, channels=1, cache_dir=cache_dir, workers=2)


def _cache_resume(work: Path, layout: str, kill_after: float, checkpoint_s: float | None) -> dict:
    """A build killed with SIGKILL after `kill_after` s, then run again: what it reused."""
    import multiprocessing
    import signal

    from fercleaner.cache import build_cache
    from fercleaner.datasets import read_dataset

    samples = read_dataset(work / layout, layout, check_images=False).samples
    cache_dir = work / f"cache-resume-{layout}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    build = multiprocessing.get_context("fork").Process(
        target=_killed_build, args=(samples, cache_dir, checkpoint_s)
    )
    build.start()
    build.join(kill_after)
    finished = build.exitcode is not None
    if not finished:
        workers = _descendants(build.pid)
        os.kill(build.pid, signal.SIGKILL)  # what `kill -9` does to the command
        build.join()
        for pid in workers:  # its decode workers would exit on their own, but slower
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    t0 = time.perf_counter()
    resumed = build_cache(samples, size=IMAGE_PX, channels=1, cache_dir=cache_dir, workers=2)
    seconds = time.perf_counter() - t0
    shutil.rmtree(cache_dir, ignore_errors=True)
    return {
        "cache_resume_killed_after_s": kill_after,
        "cache_resume_checkpoint_s": checkpoint_s,
        "cache_resume_killed": not finished,
        "cache_resume_reused": resumed.n_reused,
        "cache_resume_decoded": resumed.n_decoded,
        "cache_resume_s": round(seconds, 2),
    }


def _descendants(pid: int) -> list[int]:
    """Child process ids of `pid` (Linux /proc), to kill a build's decode workers too."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _review(work: Path, part: str, n: int) -> dict:
    """AppTest: first render, a decision click, a filter change, the overview page."""
    from streamlit.testing.v1 import AppTest

    from fercleaner.app import keys

    os.environ[keys.ENV_RUN_DIR] = str(work / "run")
    os.environ[keys.ENV_REVIEWER] = "bench"
    at = AppTest.from_file(str(REPO / "app" / "streamlit_app.py"), default_timeout=600)

    def timed(step) -> float:
        t0 = time.perf_counter()
        step()
        if at.exception:
            raise RuntimeError(f"the app raised: {at.exception}")
        return round(time.perf_counter() - t0, 3)

    first = timed(at.run)
    warm = timed(at.run)
    click = timed(lambda: at.button(key=keys.BTN_KEEP).click().run())
    filt = timed(lambda: at.sidebar.multiselect(key=keys.F_GIVEN).select("happiness").run())
    overview = timed(lambda: at.sidebar.radio(key=keys.MODE).set_value("Overview").run())
    overview_again = timed(at.run)
    return {
        "review_first_image_s": first,
        "review_warm_rerun_s": warm,
        "review_click_s": click,
        "review_filter_s": filt,
        "review_overview_s": overview,
        "review_overview_rerun_s": overview_again,
        "review_timing": "AppTest script runs; Chromium not measured (follow-up)",
    }


def _export(work: Path, part: str, n: int) -> dict:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from fercleaner.export import export_run

    out = work / "export"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = export_run(work / "run", out)
    seconds = time.perf_counter() - t0
    train = result.manifests["train"]
    meta = pq.ParquetFile(train).metadata
    t0 = time.perf_counter()
    rows = sum(b.num_rows for b in ds.dataset(train).to_batches(batch_size=65_536))
    return {
        "export_s": round(seconds, 2),
        "export_rows": int(result.summary["rows"]),
        "export_train_row_groups": meta.num_row_groups,
        "export_train_largest_row_group": max(
            meta.row_group(i).num_rows for i in range(meta.num_row_groups)
        ),
        "export_stream_rows": rows,
        "export_stream_s": round(time.perf_counter() - t0, 3),
    }


if __name__ == "__main__":
    raise SystemExit(main())
