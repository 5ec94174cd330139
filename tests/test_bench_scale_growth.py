"""bench/scale_growth.py: the growth table and plot from bench/scale.py outputs at several N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _bench_helpers import load_bench_script

growth = load_bench_script("scale_growth")


def _write(path: Path, n: int, **figures: float | None) -> Path:
    path.write_text(json.dumps({"bench": "scale", "n": n, **figures}))
    return path


def test_the_exponent_says_linear_flat_or_quadratic() -> None:
    assert growth.get_growth_exponent({10: 1.0, 100: 10.0, 1000: 100.0}) == pytest.approx(1.0)
    assert growth.get_growth_exponent({100: 5.0, 1000: 5.0}) == pytest.approx(0.0)
    assert growth.get_growth_exponent({100: 1.0, 1000: 100.0}) == pytest.approx(2.0)
    assert growth.get_growth_exponent({100: 1.0, 1000: None}) is None


def test_files_for_one_n_merge_and_the_table_lists_each_measured_stage(tmp_path: Path) -> None:
    files = [
        _write(tmp_path / "a.json", 10_000, ingest_affectnet_wall_s=4.0, export_s=1.0),
        _write(tmp_path / "b.json", 100_000, ingest_affectnet_wall_s=40.0),
        # the export of 100k measured in another run: merged with b.json
        _write(tmp_path / "c.json", 100_000, export_s=5.0, export_peak_rss_mb=None),
        _write(
            tmp_path / "d.json",
            1_000_000,
            ingest_affectnet_wall_s=400.0,
            ingest_affectnet_peak_rss_mb=1000.0,
            export_s=50.0,
            export_peak_rss_mb=300.0,
        ),
    ]
    results = growth.read_results(files)
    assert list(results) == [10_000, 100_000, 1_000_000]
    series = {s["stage"]: s for s in growth.get_series(results)}
    assert set(series) == {"ingest affectnet", "export"}  # stages never measured are left out
    assert series["ingest affectnet"]["seconds_exponent"] == pytest.approx(1.0)
    assert series["export"]["seconds"] == {10_000: 1.0, 100_000: 5.0, 1_000_000: 50.0}
    table = growth.format_table(list(series.values()), list(results))
    assert "| s at 10k | s at 100k | s at 1M | s growth |" in table
    assert "| ingest affectnet | 4.00 | 40.00 | 400.00 | 1.00 |" in table


def test_main_prints_the_table_and_draws_the_plot(tmp_path: Path, capsys) -> None:
    files = [
        _write(tmp_path / "a.json", 10_000, cache_csv_wall_s=2.0, cache_csv_peak_rss_mb=180.0),
        _write(tmp_path / "b.json", 100_000, cache_csv_wall_s=20.0, cache_csv_peak_rss_mb=300.0),
    ]
    assert growth.main([*map(str, files), "--plot", str(tmp_path / "g.png")]) == 0
    assert "| cache build csv | 2.00 | 20.00 | 1.00 | 180 | 300 | 0.22 |" in capsys.readouterr().out
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_a_file_that_is_not_a_scale_output_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bench.json"
    bad.write_text(json.dumps({"bench": "annotator"}))
    with pytest.raises(SystemExit, match="bench.json: not a bench/scale.py JSON output"):
        growth.read_results([bad])


def test_sample_counts_read_as_people_write_them() -> None:
    assert [growth._n_text(n) for n in (300, 2_500, 10_000, 1_000_000, 1_500_000)] == [
        "300",
        "2.5k",
        "10k",
        "1M",
        "1.5M",
    ]
