"""bench/scale.py's stage children: ingest, cache (and a killed, resumed build), score
(from a model's predictions: readout and writing the run, no training), infer (the whole
`score` path with a small training), the training dynamics' bookkeeping, review (AppTest
and Chromium), export.

`child_main` runs in a child process of `bench/scale.py` (`--child STAGE:PART`), runs one
stage or writes one part of the data (`_scale_data`), and leaves its figures as JSON in
the work folder; the parent adds wall time, CPU seconds and peak RSS.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import time
from pathlib import Path

from _scale_data import IMAGE_PX, PREDICTIONS_FILE, generate_part

REPO = Path(__file__).resolve().parents[1]


def child_main(
    name: str, n: int, work: Path, decisions: int, resume: tuple[float | None, float | None]
) -> int:
    """The child process's work for `name` (`STAGE:PART`); its figures go to a JSON file."""
    stage, part = name.split(":")
    if stage == "generate":
        figures = generate_part(work, part, n, decisions)
    elif stage == "resume":
        figures = _cache_resume(work, part, resume[0] or 0.0, resume[1])
    else:
        run = {
            "ingest": _ingest,
            "cache": _cache,
            "review": _review,
            "browser": _browser,
            "export": _export,
            "score": _score,
            "dynamics": _dynamics,
            "infer": _infer,
        }[stage]
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
        if total:  # (0, 0) only says the samples are being listed
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
        "review_timing": "AppTest script runs (the browser stage times Chromium)",
    }


def _browser(work: Path, part: str, n: int) -> dict:
    """Chromium against `fercleaner review`: command to the first image, a Keep click until
    its "Saved" line shows, a Given-class filter until an item of that class shows, and
    the Overview until its last section shows (each from the user's action)."""
    import re

    from _review_browser import open_review

    wait_ms = 600_000
    with open_review(work / "run") as session:
        page = session.page
        page.goto(session.url, timeout=wait_ms)
        page.get_by_test_id("stMain").get_by_test_id("stImage").first.wait_for(timeout=wait_ms)
        keep = page.get_by_role("button", name="Keep given")
        keep.wait_for(timeout=wait_ms)
        first = time.perf_counter() - session.started

        item = page.get_by_test_id("stMarkdownContainer").filter(has_text="Given:").first
        shown_given = re.search(r"Given:\s*(\S+)", item.inner_text()).group(1)
        t = time.perf_counter()
        keep.click()
        page.get_by_text(re.compile(r"^Saved ")).first.wait_for(timeout=wait_ms)
        click = time.perf_counter() - t

        # a class other than the one on screen, so the new item proves the rerun
        boxes = page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect")
        boxes.filter(has_text="Given class").click()
        choices = [c.strip() for c in page.get_by_role("option").all_inner_texts()]
        wanted = next(c for c in choices if c not in ("", "Select all", shown_given))
        t = time.perf_counter()
        page.get_by_role("option", name=wanted, exact=True).click()
        # an item of that class, or the empty queue's line when none is left undecided
        page.get_by_test_id("stMarkdownContainer").filter(
            has_text=re.compile(rf"Given:\s*{re.escape(wanted)}\b|^Nothing left in this queue")
        ).first.wait_for(timeout=wait_ms)
        filtered = time.perf_counter() - t
        page.keyboard.press("Escape")  # close the option list

        t = time.perf_counter()
        page.get_by_test_id("stSidebar").get_by_text("Overview", exact=True).click()
        page.get_by_text("Reviewer agreement").wait_for(timeout=wait_ms)
        overview = time.perf_counter() - t
    return {
        "browser_first_image_s": round(first, 2),
        "browser_click_s": round(click, 3),
        "browser_filter_s": round(filtered, 3),
        "browser_filter_class": wanted,
        "browser_overview_s": round(overview, 3),
    }


def _score(work: Path, part: str, n: int) -> dict:
    """`fercleaner score DATASET --predictions FILE` on the csv dataset: reading the
    dataset, the readout and writing the run, as for a trained model (training and
    inference are not measured: they are hours of CPU at these N)."""
    from fercleaner.pipeline import score_dataset

    out = work / "score-run"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = score_dataset(work / part, out, layout=part, predictions=work / PREDICTIONS_FILE)
    seconds = time.perf_counter() - t0
    return {
        "score_s": round(seconds, 2),
        # from run.json: `result.scores` would read the whole file back into this process
        "score_samples": int(result.run_info["summary"]["samples"]),
        "score_flagged": int(result.run_info["summary"]["flagged"]),
        "score_timings_s": {k: round(v, 2) for k, v in result.run_info["timings"].items()},
    }


#: The `infer` stage's recipe changes: one epoch of timm's 0.5M-parameter `test_resnet` on
#: the 1% `val` split, so training is small and every other step runs at full N.
INFER_OVERRIDES = (
    "data.splits=[val]",
    "backbone.name=test_resnet",
    "train.epochs=1",
    "train.warmup_epochs=0",
    "train.num_threads=2",
)


def _infer(work: Path, part: str, n: int) -> dict:
    """`fercleaner score DATASET --recipe quick` with `INFER_OVERRIDES` on the csv dataset:
    reading, the image cache, a small training, inference over all N (flip-averaged), the
    readout with the training dynamics, and writing the run."""
    from fercleaner.pipeline import score_dataset

    out = work / "infer-run"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    with _AnonymousPeak() as anonymous:
        result = score_dataset(
            work / part, out, recipe="quick", layout=part, overrides=list(INFER_OVERRIDES)
        )
    seconds = time.perf_counter() - t0
    timings = result.run_info["timings"]
    return {
        "infer_s": round(seconds, 2),
        "infer_samples": int(result.run_info["summary"]["samples"]),
        "infer_trained_on": int(result.run_info["counts"]["trained_on"]),
        "infer_timings_s": {k: round(v, 2) for k, v in timings.items()},
        "infer_overrides": list(INFER_OVERRIDES),
        # the peak without file-backed pages: the cache memmap's pages that inference read
        # count in the process's peak RSS (`infer_csv_peak_rss_mb`), not in this
        "infer_anonymous_peak_mb": round(anonymous.peak_mb, 1),
    }


class _AnonymousPeak:
    """The largest anonymous resident set (`RssAnon`: heap, not mapped files) of this
    process while the block runs, sampled every 0.1 s by a thread."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _AnonymousPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
            if self._stop.wait(0.1):
                return


#: Epochs the `dynamics` stage records: the `ferplus` and `paper` recipes' 30.
DYNAMICS_EPOCHS = 30
#: Samples per recorded step: the bookkeeping's cost is per sample, not per step.
DYNAMICS_BATCH = 512


def _dynamics(work: Path, part: str, n: int) -> dict:
    """One fold's training-dynamics bookkeeping at N samples, as the trainer does it: every
    sample recorded once per epoch (random logits stand in for a model's), the epoch
    stored (a file beside the checkpoint), a checkpoint saved, then the `dynamics` readout
    and dynamics.parquet written an epoch at a time."""
    import numpy as np
    import torch

    from fercleaner.runs import write_tables_atomic
    from fercleaner.training.checkpoint import save_checkpoint
    from fercleaner.training.dynamics import (
        DynamicsAccumulator,
        DynamicsRecord,
        EpochSignals,
        get_dynamics_readout,
    )

    torch.set_num_threads(1)
    start_rss = _rss_mb()
    folder = work / "dynamics-run"
    shutil.rmtree(folder, ignore_errors=True)
    checkpoint = folder / "fold0.pt"
    accumulator = DynamicsAccumulator(n, EpochSignals(checkpoint.with_suffix(".dynamics")))
    generator = torch.Generator().manual_seed(0)
    given = torch.randint(0, 8, (n,), generator=generator)
    t0 = time.perf_counter()
    for epoch in range(DYNAMICS_EPOCHS):
        order = torch.randperm(n, generator=generator)
        for index in order.split(DYNAMICS_BATCH):
            logits = torch.randn(len(index), 8, generator=generator)
            accumulator.record(epoch, index, logits, given[index])
        accumulator.finish_epoch(epoch, reduce=lambda a: a)
        save_checkpoint(checkpoint, {"epoch": epoch, "dynamics": accumulator.state()})
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    readout = get_dynamics_readout(accumulator)
    assert len(readout["margin_late"]) == n
    readout_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sample_ids = np.array([f"img{i:07d}.png" for i in range(n)])
    record = DynamicsRecord(accumulator.signals, sample_ids, "baseline", 0)
    write_tables_atomic(record.arrow_tables(), folder / "dynamics.parquet")
    table_s = time.perf_counter() - t0
    files = sorted(checkpoint.with_suffix(".dynamics").iterdir())
    return {
        "dynamics_epochs": DYNAMICS_EPOCHS,
        "dynamics_train_s": round(train_s, 2),
        "dynamics_readout_s": round(readout_s, 2),
        "dynamics_table_s": round(table_s, 2),
        "dynamics_start_rss_mb": round(start_rss, 1),
        "dynamics_checkpoint_mb": round(checkpoint.stat().st_size / 2**20, 2),
        "dynamics_epoch_files_mb": round(sum(f.stat().st_size for f in files) / 2**20, 1),
    }


def _rss_mb() -> float:
    """This process's resident set now (the stage's peak is the parent's wait4 figure)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _export(work: Path, part: str, n: int) -> dict:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from fercleaner.export import export_run

    out = work / "export"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = export_run(work / "run", out)
    seconds = time.perf_counter() - t0
    # the export's own peak, before the streaming read below (pyarrow.dataset's read-ahead
    # alone reaches ~500 MB) adds to the process's
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    train = result.manifests["train"]
    meta = pq.ParquetFile(train).metadata
    t0 = time.perf_counter()
    rows = sum(b.num_rows for b in ds.dataset(train).to_batches(batch_size=65_536))
    return {
        "export_s": round(seconds, 2),
        "export_only_peak_rss_mb": round(peak_mb, 1),
        "export_rows": int(result.summary["rows"]),
        "export_train_row_groups": meta.num_row_groups,
        "export_train_largest_row_group": max(
            meta.row_group(i).num_rows for i in range(meta.num_row_groups)
        ),
        "export_stream_rows": rows,
        "export_stream_s": round(time.perf_counter() - t0, 3),
    }
