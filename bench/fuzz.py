"""Fuzz suite (issue 13): run each hostile dataset and bad command line in tests/fuzz_cases.py.

    .venv/bin/python bench/fuzz.py [--skip-slow] [-k SUBSTRING] [--keep DIR]

Each case runs in a fresh folder: its generator writes the bad input, the folder is
snapshotted (every path, type, size, mtime and mode), the command runs in-process through
typer's `CliRunner` (or as a real `python -m fercleaner` process where argv bytes or the
entry point matter), and the folder is compared again. A case passes when the exit code
is the expected one; nothing escaped as a traceback (an exception out of the command,
`Traceback` in the output, exit 3 or a crash log); an exit-2 case printed an error naming
what was wrong; nothing outside the output folders (`fuzz_cases.WRITABLE`) was written,
changed or deleted; and, for datasets, `inspect --json` (or the run's problems.parquet)
reports exactly the expected problem kinds and counts, `rows` listed = `samples` ingested
+ label-row problems, and the plain (non-JSON) report prints the same tally.

It prints one JSON object. Figures: `tracebacks` (goal 0); `silent_drops` (goal 0):
dataset cases where rows the input holds are neither ingested nor reported, or a bad
input is reported clean; `rows_reconciled` n/m: dataset cases whose listed rows equal
the rows written and reconcile; `writes_outside` (goal 0). Measured figures:
docs/cli.md, "Fuzz suite".
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

import fuzz_cases  # noqa: E402  (lives in tests/, found through the path above)
from fuzz_cases import CACHE, LOGS, NON_ROW_KINDS, OUT, USAGE, WRITABLE, Case  # noqa: E402

_TALLY = re.compile(r"([\d,]+) label rows = ([\d,]+) ingested \+ ([\d,]+) excluded")
_TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Ran:
    """What one command did: exit code, output streams, and an exception that escaped it."""

    exit_code: int
    stdout: str
    stderr: str
    escaped: str | None = None


def invoke(argv: list[str], env: dict[str, str], *, as_process: bool, cwd: Path) -> Ran:
    """Run `fercleaner ARGV` in-process (CliRunner) or as a child process."""
    if as_process:
        child_env = {k: v for k, v in os.environ.items() if k != "FERCLEANER_DEBUG"}
        proc = subprocess.run(
            [sys.executable, "-m", "fercleaner", *argv],
            env={**child_env, **env},
            cwd=cwd,
            capture_output=True,
            timeout=300,
        )
        text = [s.decode("utf-8", "replace") for s in (proc.stdout, proc.stderr)]
        return Ran(proc.returncode, *text)
    from typer.testing import CliRunner

    from fercleaner.cli import app

    result = CliRunner().invoke(app, argv, env={**env, "FERCLEANER_DEBUG": None})
    exc = result.exception
    escaped = None
    if exc is not None and not isinstance(exc, SystemExit):
        escaped = "".join(traceback.format_exception(exc))
    return Ran(result.exit_code, result.stdout, result.stderr, escaped)


def snapshot(folder: Path, skip: tuple[Path, ...] = WRITABLE) -> dict[str, tuple]:
    """Every path under `folder` (links not followed, `skip` parts left out) -> what it is."""
    skipped = {os.path.join(os.fspath(folder), os.fspath(s)) for s in skip}
    entries: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skipped]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if path in skipped:
                continue
            rel = os.path.relpath(path, folder)
            try:
                info = os.lstat(path)
            except OSError as exc:  # a path longer than PATH_MAX (the unlistable folder case)
                entries[rel] = ("unreachable", exc.errno)
                continue
            if stat.S_ISLNK(info.st_mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[rel] = ("dir", info.st_mode)
            else:
                entries[rel] = ("file", info.st_size, info.st_mtime_ns, info.st_mode)
    return entries


def changed(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Paths added, removed or modified between two snapshots."""
    marks = [f"+{p}" for p in after.keys() - before.keys()]
    marks += [f"-{p}" for p in before.keys() - after.keys()]
    marks += [f"~{p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(marks)


def check_case(case: Case, workdir: Path) -> dict[str, Any]:
    """Run one case in a new folder under `workdir`; the outcome and every failed expectation."""
    tmp = workdir / case.id
    (tmp / OUT.parent).mkdir(parents=True)  # --out's parent exists: only --out itself is new
    argv = case.make(tmp)
    env = {"FERCLEANER_CACHE": str(tmp / CACHE), "FERCLEANER_LOG_DIR": str(tmp / LOGS)}
    beside, before = sorted(os.listdir(workdir)), snapshot(tmp)
    started = time.perf_counter()
    ran = invoke(argv, env, as_process=case.subprocess, cwd=tmp)
    seconds = time.perf_counter() - started
    written = changed(before, snapshot(tmp))
    written += [f"+../{n}" for n in sorted(set(os.listdir(workdir)) - set(beside))]

    failures: list[str] = []
    crash_logs = sorted(p.name for p in (tmp / LOGS).glob("*")) if (tmp / LOGS).is_dir() else []
    traceback_seen = bool(
        ran.escaped or ran.exit_code == 3 or crash_logs or _TRACEBACK in ran.stdout + ran.stderr
    )
    if ran.exit_code != case.exit:
        failures.append(f"exit {ran.exit_code}, expected {case.exit}: {_gist(ran)}")
    if traceback_seen:
        failures.append(f"traceback: {_gist(ran)}")
    if case.exit == USAGE and ran.exit_code == USAGE:
        failures += _check_error(case, ran)
    if written:
        failures.append(f"wrote outside the output folders: {written[:6]}")

    counts = _counts(case, argv, ran, tmp)
    reconciled = silent_drop = None
    if case.problems is not None and counts is not None:
        failures += _check_counts(case, counts)
        accounted = counts["samples"] + counts["label_row_problems"]
        reconciled = counts["rows_listed"] == accounted == case.rows
        silent_drop = accounted < (case.rows or 0) or (bool(case.problems) and not counts["kinds"])
        if argv[0] == "inspect" and ran.exit_code in (0, 1):
            failures += _check_plain_report(argv, env, counts, tmp)
    elif case.problems is not None and case.exit != USAGE and not failures:
        failures.append("no counts to check (no --json summary or run folder)")
    return {
        "id": case.id,
        "layout": case.layout,
        "argv": [a.replace(str(tmp), "CASE") for a in argv],
        "exit": ran.exit_code,
        "expected_exit": case.exit,
        "traceback": traceback_seen,
        "silent_drop": bool(silent_drop),
        "reconciled": reconciled,
        "writes_outside": written,
        "seconds": round(seconds, 3),
        "failures": failures,
        "passed": not failures,
    }


def _gist(ran: Ran) -> str:
    """The line that says most about a run: the exception ending a traceback, the error line,
    else the last output line."""
    if ran.escaped or _TRACEBACK in ran.stderr + ran.stdout:
        return _last_exception(ran)
    lines = [line for line in (ran.stderr + "\n" + ran.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"^\W*(error|Error)\b", line)]
    return (errors or lines[-1:] or ["(no output)"])[0][:300]


def _last_exception(ran: Ran) -> str:
    """The `SomeError: message` line that ends a traceback."""
    text = ran.escaped or next(t for t in (ran.stderr, ran.stdout) if _TRACEBACK in t)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(" ")]
    return lines[-1][:300]


def _squash(text: str) -> str:
    """Output without box-drawing characters and line breaks, for substring checks."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


def _check_error(case: Case, ran: Ran) -> list[str]:
    """An exit-2 case prints an error (fercleaner's `error:` line or click's usage error)."""
    failures = []
    text = ran.stderr + ran.stdout
    if not re.search(r"^(error:|Error:|Usage:)|\bError\b", text, re.MULTILINE):
        failures.append(f"exit 2 without an error message: {text[-300:]!r}")
    if case.error is not None and _squash(case.error) not in _squash(text):
        failures.append(f"the error does not mention {case.error!r}: {_gist(ran)}")
    return failures


def _counts(case: Case, argv: list[str], ran: Ran, tmp: Path) -> dict[str, Any] | None:
    """Problem kinds, rows listed and samples from `inspect --json` or the run `score` wrote."""
    if ran.exit_code not in (0, 1):
        return None
    if argv[0] == "inspect" and "--json" in argv:
        try:
            summary = json.loads(ran.stdout)
        except json.JSONDecodeError:
            return None
        kinds = dict(summary["problem_counts"])
        rows_listed, samples = summary["rows_listed"], summary["samples"]
    elif argv[0] == "score" and (tmp / OUT / "run.json").is_file():
        import pyarrow.parquet as pq

        problems = pq.read_table(tmp / OUT / "problems.parquet").column("kind").to_pylist()
        kinds = dict(collections.Counter(problems))
        samples = pq.read_metadata(tmp / OUT / "scores.parquet").num_rows
        rows_listed = json.loads((tmp / OUT / "run.json").read_text())["counts"]["rows_listed"]
    else:
        return None
    label_rows = sum(n for kind, n in kinds.items() if kind not in NON_ROW_KINDS)
    return {
        "kinds": kinds,
        "rows_listed": rows_listed,
        "samples": samples,
        "label_row_problems": label_rows,
    }


def _check_counts(case: Case, counts: dict[str, Any]) -> list[str]:
    failures = []
    if counts["kinds"] != dict(case.problems or {}):
        failures.append(f"problems {counts['kinds']}, expected {dict(case.problems or {})}")
    if counts["rows_listed"] != case.rows:
        failures.append(f"{counts['rows_listed']} rows listed, the input has {case.rows}")
    if counts["samples"] != case.samples:
        failures.append(f"{counts['samples']} samples ingested, expected {case.samples}")
    accounted = counts["samples"] + counts["label_row_problems"]
    if counts["rows_listed"] != accounted:
        failures.append(
            f"does not reconcile: {counts['rows_listed']} rows listed but {counts['samples']}"
            f" samples + {counts['label_row_problems']} label-row problems"
        )
    return failures


def _check_plain_report(
    argv: list[str], env: dict[str, str], counts: dict[str, Any], tmp: Path
) -> list[str]:
    """The human report (no --json) runs too, exits the same and prints the same tally."""
    plain = invoke([a for a in argv if a != "--json"], env, as_process=False, cwd=tmp)
    expected_exit = 1 if counts["kinds"] else 0
    if (
        plain.escaped
        or _TRACEBACK in plain.stdout + plain.stderr
        or plain.exit_code != expected_exit
    ):
        return [f"plain report: exit {plain.exit_code}: {_gist(plain)}"]
    match = _TALLY.search(plain.stdout)
    if match is None:
        return [f"plain report has no 'N label rows = ...' tally: {plain.stdout[-300:]!r}"]
    shown = [int(g.replace(",", "")) for g in match.groups()]
    wanted = [counts["rows_listed"], counts["samples"], counts["label_row_problems"]]
    return [] if shown == wanted else [f"plain report tally {shown}, --json says {wanted}"]


def skip_reason(case: Case) -> str | None:
    """Why `case` cannot run here (None: it can)."""
    if case.root_skip and os.geteuid() == 0:
        return case.root_skip
    return None


def release(folder: Path) -> None:
    """Delete a case folder, first giving back the permissions a case took away."""
    for dirpath, dirnames, _ in os.walk(folder):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):  # a link, or a path longer than PATH_MAX
                if not os.path.islink(path):
                    os.chmod(path, 0o700)
    shutil.rmtree(folder, ignore_errors=True)


def summarize(
    outcomes: list[dict[str, Any]],
    skipped: list[dict[str, str]],
    seconds: float,
    known: dict[str, str] | None = None,
) -> dict:
    """The figures: cases, passed, tracebacks, silent drops, rows reconciled, writes outside.

    `known`: case id -> the known defect it shows (listed; it still counts as failing).
    """
    known = {} if known is None else known
    dataset = [o for o in outcomes if o["layout"] != "cli"]
    counted = [o for o in dataset if o["reconciled"] is not None]
    per_layout = collections.Counter(o["layout"] for o in dataset)
    return {
        "cases": len(outcomes),
        "dataset_cases": len(dataset),
        "command_cases": len(outcomes) - len(dataset),
        "dataset_cases_per_layout": {k: per_layout[k] for k in fuzz_cases.LAYOUTS},
        "passed": sum(o["passed"] for o in outcomes),
        "failed": sum(not o["passed"] for o in outcomes),
        "tracebacks": sum(o["traceback"] for o in outcomes),
        "silent_drops": sum(o["silent_drop"] for o in outcomes),
        "rows_reconciled": f"{sum(bool(o['reconciled']) for o in counted)}/{len(counted)}",
        "writes_outside": sum(bool(o["writes_outside"]) for o in outcomes),
        "skipped": len(skipped),
        "seconds": round(seconds, 1),
        "failing": [{"id": o["id"], "why": o["failures"]} for o in outcomes if not o["passed"]],
        "known_defects": known,
        "skipped_cases": skipped,
    }


def run_cases(cases: list[Case], workdir: Path, *, keep: bool = False) -> dict[str, Any]:
    """Run `cases` in folders under `workdir`; the summary."""
    started = time.perf_counter()
    outcomes, skipped = [], []
    for case in cases:
        reason = skip_reason(case)
        if reason is not None:
            skipped.append({"id": case.id, "reason": reason})
            continue
        try:
            outcomes.append(check_case(case, workdir))
        except Exception as exc:  # a broken generator must not hide the other cases
            outcomes.append(
                {
                    "id": case.id,
                    "layout": case.layout,
                    "traceback": False,
                    "silent_drop": False,
                    "reconciled": None,
                    "writes_outside": [],
                    "passed": False,
                    "failures": [f"the case itself failed: {type(exc).__name__}: {exc}"],
                }
            )
        if not keep:
            release(workdir / case.id)
    known = {c.id: c.known_defect for c in cases if c.known_defect and skip_reason(c) is None}
    return summarize(outcomes, skipped, time.perf_counter() - started, known)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-slow", action="store_true", help="leave out the score runs")
    parser.add_argument("-k", dest="select", default="", help="only case ids containing this")
    parser.add_argument("--keep", type=Path, help="write the case folders here and keep them")
    args = parser.parse_args(argv)
    cases = [c for c in fuzz_cases.CASES if args.select in c.id and not (args.skip_slow and c.slow)]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        summary = run_cases(cases, args.keep, keep=True)
    else:
        with tempfile.TemporaryDirectory(prefix="fercleaner-fuzz-") as folder:
            summary = run_cases(cases, Path(folder))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
