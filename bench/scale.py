"""Measure every stage at N samples (issue 11): ingest, cache, review and export; one JSON object.

Generates N small images cheaply (a few hundred distinct 48x48 PNGs hard-linked to N
paths) in the `affectnet` and `csv` layouts, and a scored run (10% flagged, `--decisions`
decisions already in its review store) for the review and export side. Each stage runs
in a child process of its own: wall time from here, CPU seconds (the stage and its
workers) and peak RSS from `os.wait4` (the largest resident set of the stage process or
any of its workers, not their sum; pages of the cache's memmap that a process touched
count in it, `cache_memmap_mb` says how large that file is). `export_peak_rss_mb` is the
export's own peak, read in its process before the manifest is streamed back (that read,
pyarrow.dataset's, is in `export_process_peak_rss_mb`).

    nice -n 19 .venv/bin/python bench/scale.py --n 100000 \
        [--stages ingest,cache,score,infer,dynamics,review,browser,export] [--workdir DIR] \
        [--decisions N]

`review` times Streamlit's `AppTest` script runs (a first render, a decision click, a
filter change, the overview page); `browser` times the same four steps as a user sees
them, in Chromium against `fercleaner review` (Playwright; needs Debian's chromium), from
the command's start or the click to the element that shows the result. When `browser`
runs, the issue's `review_*` fields are Chromium's and AppTest's move to
`review_apptest_*`. `score` runs `fercleaner score --predictions` on the csv dataset
with a generated model's probabilities: reading, the readout and writing the run, not
training or inference (hours of CPU at these N). `dynamics` drives the trainer's
training-dynamics bookkeeping for one fold (`DYNAMICS_EPOCHS` epochs of every sample's
per-step record, the epoch files, a checkpoint per epoch, the readout and
dynamics.parquet) with random logits in place of a model. `infer` runs the whole
`fercleaner score` path on the csv dataset, the image cache and inference over every
sample included, with a small training (`_scale_stages.INFER_OVERRIDES`: one epoch of
a tiny network on the 1% `val` split). A `--workdir`
that already holds data for the same N is reused.

The data generators are in `bench/_scale_data.py`, the stage children in
`bench/_scale_stages.py`; this script plans the stages, runs and measures the children.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the stage children and the data generators live beside this script (bench/_scale_*.py)
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scale_stages import child_main  # noqa: E402  (found through the path above)

STAGES = ("ingest", "cache", "score", "infer", "dynamics", "review", "browser", "export")
LAYOUTS = ("affectnet", "csv")
#: Bumped when the generated data changes (2: the csv layout's 1% `val` split for `infer`),
#: so a kept `--workdir` is generated again rather than measured with the old data.
DATA_VERSION = 2

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
        return child_main(args.child, args.n, args.workdir, args.decisions or 0, resume)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fercleaner-scale-"))
    work = work.resolve()
    decisions = args.n if args.decisions is None else args.decisions
    result: dict = {"bench": "scale", "n": args.n, "stages": stages, "cpus": os.cpu_count()}
    result.update(dict.fromkeys(FIELDS))
    result["score_note"] = (
        "score: `fercleaner score --predictions` (reading, readout, writing the run);"
        " training and inference are not measured"
    )
    try:
        needs = stages + (["cache"] if args.kill_after is not None else [])
        result["generate_s"], result["decisions_in_store"] = _generate(
            work, args.n, needs, decisions
        )
        for stage in stages:
            parts = {"ingest": LAYOUTS, "cache": LAYOUTS, "score": ("csv",), "infer": ("csv",)}
            parts = parts.get(stage, ("run",))
            if stage == "dynamics":
                parts = ("train",)  # generates what it records itself
            for part in parts:
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
    # the review fields are Chromium's when the browser stage ran (AppTest's kept)
    if result.get("browser_click_s") is not None:
        for step in ("first_image", "click", "filter", "overview"):
            result[f"review_apptest_{step}_s"] = result.get(f"review_{step}_s")
            result[f"review_{step}_s"] = result[f"browser_{step}_s"]
        result["review_timing"] = "Chromium (the browser stage); AppTest's in review_apptest_*"
    if result.get("export_run_peak_rss_mb") is not None:
        # the export's own peak; the process's also holds the streaming read that follows
        result["export_process_peak_rss_mb"] = result.pop("export_run_peak_rss_mb")
        result["export_peak_rss_mb"] = result.get("export_only_peak_rss_mb")


# -- generation ------------------------------------------------------------------------


def _generate(work: Path, n: int, stages: list[str], decisions: int) -> tuple[float, int | None]:
    """Write what the stages need under `work` (skipped when it is there for this N).

    Returns the seconds it took and the decisions the run's review store holds (None
    without a run).

    Each part is written by a child process too: a child's peak RSS starts at this
    process's size when it forks, so this one stays small (no numpy, pandas or PIL).
    """
    t0 = time.perf_counter()
    marker = work / "generated.json"
    done = json.loads(marker.read_text()) if marker.is_file() else {}
    if (done.get("n"), done.get("decisions"), done.get("data")) != (n, decisions, DATA_VERSION):
        done = {"n": n, "decisions": decisions, "data": DATA_VERSION, "parts": []}
    work.mkdir(parents=True, exist_ok=True)
    wanted = []
    if {"ingest", "cache"} & set(stages):
        wanted += list(LAYOUTS)
    if "score" in stages:
        wanted += [p for p in ("csv", "predictions") if p not in wanted]
    if "infer" in stages and "csv" not in wanted:
        wanted.append("csv")
    if {"review", "browser", "export"} & set(stages):
        wanted.append("run")
    for part in wanted:
        if part in done["parts"]:
            continue
        figures = _run_child(f"generate:{part}", n, work, decisions=decisions)
        if any(key.endswith("_error") for key in figures):
            raise RuntimeError(f"generating {part} failed: {figures}")
        done["parts"].append(part)
        if "decisions_in_store" in figures:
            done["decisions_in_store"] = figures["decisions_in_store"]
        marker.write_text(json.dumps(done))
    in_store = done.get("decisions_in_store") if "run" in wanted else None
    return round(time.perf_counter() - t0, 2), in_store


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


if __name__ == "__main__":
    raise SystemExit(main())
