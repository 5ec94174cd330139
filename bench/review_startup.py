"""Benchmark the review app and store on a generated 100k-sample run; prints one JSON object.

Times: reading the run (`open_run`), a queue query, the app's first and warm script runs
(`AppTest`), the real server from `fercleaner review` to a drawn page in Chromium (when
installed), and the store with 100k decisions (bulk insert, current decisions, one
click), and the export of the reviewed run.
The run is generated with the test fixture `tests/run_fixtures.py` (10% flagged).

    .venv/bin/python bench/review_startup.py [--n 100000] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="samples in the run")
    parser.add_argument("--flag-rate", type=float, default=0.1)
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timing")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from run_fixtures import CLASSES, make_scores_frame, write_faces, write_scores_file

    from fercleaner.review.queue import QueueFilter, find_queue
    from fercleaner.review.run import open_run
    from fercleaner.review.store import Decision, DecisionStore
    from fercleaner.scoring import sort_most_suspect_first

    work = Path(tempfile.mkdtemp(prefix="fercleaner-bench-review-"))
    result: dict = {"bench": "review_startup", "n": args.n, "flag_rate": args.flag_rate}
    try:
        images = write_faces(work / "faces", 200)
        frame = make_scores_frame(args.n, image_paths=images)
        rng = np.random.default_rng(1)
        flag = rng.random(args.n) < args.flag_rate
        shift = rng.integers(1, len(CLASSES), args.n)
        given = frame["given_label"].map(CLASSES.index).to_numpy()
        proposed = np.array(CLASSES, dtype=object)[(given + shift) % len(CLASSES)]
        frame.loc[flag, "issue_type"] = "mislabeled"
        frame.loc[flag, "is_label_issue"] = True
        frame.loc[flag, "proposed_label"] = proposed[flag]
        frame.loc[flag, "label_quality"] = rng.random(int(flag.sum())) * 0.3
        run_dir = work / "run"
        # stored most suspect first, as `fercleaner score` stores a run
        write_scores_file(
            run_dir / "scores.parquet",
            sort_most_suspect_first(frame),
            dataset_root=work / "faces",
        )
        result["flagged"] = int(flag.sum())
        result["scores_mb"] = round((run_dir / "scores.parquet").stat().st_size / 2**20, 2)

        t0 = time.perf_counter()
        run = open_run(run_dir)
        result["open_run_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        find_queue(run.scores, set(), QueueFilter(given=["happiness"], splits=["train"]))
        result["queue_query_s"] = round(time.perf_counter() - t0, 4)

        result.update(_apptest_times(run_dir))
        if not args.no_browser and shutil.which("chromium"):
            result.update(_browser_times(run_dir))

        ids = run.scores["sample_id"].tolist()
        with DecisionStore(run_dir / "review.sqlite") as store:
            t0 = time.perf_counter()
            # leave the 1,000 most suspect undecided so the queue still has work in it
            decided = ids[1000:]
            store.record_many([Decision(s, "keep", "neutral") for s in decided], reviewer="bench")
            result["store_decisions"] = len(decided)
            result["store_bulk_insert_s"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            store.current_decisions()
            result["store_current_decisions_s"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            for s in decided[:20]:
                store.record(Decision(s, "exclude"), reviewer="bench")
            result["store_single_decision_ms"] = round((time.perf_counter() - t0) / 20 * 1000, 2)
        result.update(_apptest_times(run_dir, prefix="app_with_decisions_"))
        from fercleaner.export import export_run

        t0 = time.perf_counter()
        export_run(run_dir, work / "export")
        result["export_s"] = round(time.perf_counter() - t0, 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


def _apptest_times(run_dir: Path, *, prefix: str = "app_") -> dict:
    """First script run (cold caches), a warm rerun, and one decision click."""
    from streamlit.testing.v1 import AppTest

    from fercleaner.app import keys

    os.environ[keys.ENV_RUN_DIR] = str(run_dir)
    os.environ[keys.ENV_REVIEWER] = "bench"
    from streamlit.runtime.caching import cache_data, cache_resource

    cache_data.clear()
    cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app" / "streamlit_app.py"), default_timeout=300)
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    assert not at.exception, at.exception
    t0 = time.perf_counter()
    at.run()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    at.button(key=keys.BTN_NEXT).click().run()
    at.button(key=keys.BTN_KEEP).click().run()
    click = (time.perf_counter() - t0) / 2
    return {
        f"{prefix}first_run_s": round(first, 3),
        f"{prefix}warm_rerun_s": round(warm, 3),
        f"{prefix}click_s": round(click, 3),
    }


def _browser_times(run_dir: Path) -> dict:
    """`fercleaner review` start to healthy server, and to a drawn first item in Chromium."""
    from _review_browser import open_review

    with open_review(run_dir) as session:
        t1 = time.perf_counter()
        session.page.goto(session.url)
        session.page.get_by_role("button", name="Keep given").wait_for(timeout=300_000)
        drawn = time.perf_counter() - t1
    return {
        "server_command_to_healthy_s": round(session.healthy_s, 2),
        "browser_first_item_drawn_s": round(drawn, 2),
        "command_to_first_item_s": round(session.healthy_s + drawn, 2),
    }


if __name__ == "__main__":
    raise SystemExit(main())
