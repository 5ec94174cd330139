"""How each stage's time and memory grow with N: `bench/scale.py` outputs at several N, one plot.

Reads the JSON objects `bench/scale.py --n N` printed (one file per N; a file may hold the
figures of some stages only, and files for the same N are merged), prints a Markdown table
of every stage's wall seconds and peak RSS per N with the growth exponent between the two
largest N (1.0: linear; 0: flat), and with `--plot FILE` draws both on log-log axes.

    .venv/bin/python bench/scale_growth.py scale-10k.json scale-100k.json scale-1m.json \
        --plot docs/img/scale_growth.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

#: (label, seconds field, peak RSS field or None) per stage, in pipeline order.
STAGES: tuple[tuple[str, str, str | None], ...] = (
    ("ingest affectnet", "ingest_affectnet_wall_s", "ingest_affectnet_peak_rss_mb"),
    ("ingest csv", "ingest_csv_wall_s", "ingest_csv_peak_rss_mb"),
    ("cache build affectnet", "cache_affectnet_wall_s", "cache_affectnet_peak_rss_mb"),
    ("cache build csv", "cache_csv_wall_s", "cache_csv_peak_rss_mb"),
    # `fercleaner score --predictions`: reading, readout and writing the run, no training
    ("score from predictions (csv)", "score_s", "score_csv_peak_rss_mb"),
    # the review server's peak RSS sits with its first image (it opens the run then)
    ("review: first image", "review_first_image_s", "review_peak_rss_mb"),
    ("review: decision click", "review_click_s", None),
    ("review: filter change", "review_filter_s", None),
    ("review: Overview", "review_overview_s", None),
    # the export call itself (export_s), not its child process's start and read-back
    ("export", "export_s", "export_peak_rss_mb"),
)


def read_results(paths: list[Path]) -> dict[int, dict]:
    """N -> the merged figures of every file for that N (later files win on a clash)."""
    merged: dict[int, dict] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: not a bench/scale.py JSON output ({exc})") from None
        if not isinstance(data, dict) or data.get("bench") != "scale" or "n" not in data:
            raise SystemExit(f"{path}: not a bench/scale.py JSON output (no 'bench': 'scale')")
        figures = {k: v for k, v in data.items() if v is not None}
        merged.setdefault(int(data["n"]), {}).update(figures)
    return dict(sorted(merged.items()))


def get_growth_exponent(points: dict[int, float]) -> float | None:
    """d log(value) / d log(N) between the two largest N measured (None with fewer than 2)."""
    usable = sorted((n, v) for n, v in points.items() if v is not None and v > 0)
    if len(usable) < 2:
        return None
    (n0, v0), (n1, v1) = usable[-2], usable[-1]
    return math.log(v1 / v0) / math.log(n1 / n0)


def get_series(results: dict[int, dict]) -> list[dict]:
    """Per stage: its label, {N: seconds}, {N: peak RSS MB} and their growth exponents."""
    series = []
    for label, seconds_field, rss_field in STAGES:
        seconds = {n: r.get(seconds_field) for n, r in results.items()}
        rss = {n: r.get(rss_field) for n, r in results.items()} if rss_field else {}
        if all(v is None for v in seconds.values()):
            continue
        series.append(
            {
                "stage": label,
                "seconds": seconds,
                "rss_mb": rss,
                "seconds_exponent": get_growth_exponent(seconds),
                "rss_exponent": get_growth_exponent(rss) if rss else None,
            }
        )
    return series


def format_table(series: list[dict], ns: list[int]) -> str:
    """Markdown: wall s and peak RSS MB per N, and each one's growth exponent."""

    def cell(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    heads = [f"s at {_n_text(n)}" for n in ns] + ["s growth"]
    heads += [f"MB at {_n_text(n)}" for n in ns] + ["MB growth"]
    lines = ["| stage | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for s in series:
        row = [cell(s["seconds"].get(n), 2) for n in ns] + [cell(s["seconds_exponent"], 2)]
        row += [cell(s["rss_mb"].get(n), 0) for n in ns] + [cell(s["rss_exponent"], 2)]
        lines.append(f"| {s['stage']} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(series: list[dict], path: Path) -> None:
    """Two log-log panels, wall seconds and peak RSS against N, one line per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, s in enumerate(series):
        for axis, key in ((left, "seconds"), (right, "rss_mb")):
            points = sorted((n, v) for n, v in s[key].items() if v is not None)
            if points:  # one colour per stage in both panels
                axis.plot(*zip(*points, strict=True), marker="o", color=f"C{i}", label=s["stage"])
    for axis, what in ((left, "wall seconds"), (right, "peak RSS (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("samples (N)")
        axis.set_ylabel(what)
        axis.grid(True, which="both", alpha=0.3)
    left.set_title("time per stage (2-core machine)")
    right.set_title("peak memory per stage")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _n_text(n: int) -> str:
    """10000 -> 10k, 1000000 -> 1M, 1500000 -> 1.5M, 300 -> 300."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return str(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="bench/scale.py JSON outputs")
    parser.add_argument("--plot", type=Path, default=None, help="write the PNG here")
    args = parser.parse_args(argv)
    results = read_results(args.results)
    series = get_series(results)
    print(format_table(series, list(results)))
    if args.plot is not None:
        plot(series, args.plot)
        print(f"\nplot: {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
