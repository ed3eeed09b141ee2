"""bench/soak.py's figures from its samples: rows at a time, rates over fractions of the run,
the moving rate of the plot, the summary (a partial run marked so) and state on disk."""

from __future__ import annotations

import pytest

from bench.soak import (
    FIELDS,
    RSS_BOUND_MIB,
    SERVICES,
    STATEFUL,
    cpu_ms_per_row,
    dir_mib,
    moving_rates,
    summarize,
    value_at,
    window_rate,
)


def run(points: list[tuple[float, int]], posted: list[int] | None = None) -> list[dict]:
    """Samples with (seconds, touches); memory made up per sample index, disk growing, each
    service using 2 ms of CPU per row."""
    samples = []
    for i, (seconds, touches) in enumerate(points):
        row = dict.fromkeys(FIELDS, 0.0)
        row.update(seconds=seconds, touches=touches, posted=(posted or [touches] * len(points))[i],
                   grouped=(posted or [touches] * len(points))[i])
        for n, s in enumerate(SERVICES):
            row[f"{s}_rss_mib"] = 100.0 + 10 * n + i
            row[f"{s}_hwm_mib"] = 200.0 + 10 * n + i
            row[f"{s}_cpu_s"] = 0.002 * touches
        for s in STATEFUL:
            row[f"{s}_disk_mib"] = 5.0 * i
        samples.append(row)
    return samples


META = {"companies": 10, "events": 1000, "store": "rocksdb://", "cache_entries": 20_000}


def test_rows_between_samples_are_interpolated_and_clamped_at_the_ends():
    samples = run([(0, 0), (10, 100), (20, 300)])
    assert value_at(samples, 5) == 50
    assert value_at(samples, 15) == 200
    assert value_at(samples, -1) == 0
    assert value_at(samples, 99) == 300


def test_window_rates_take_fractions_of_the_run_time():
    # 100 rows/s for the first 50 s, then 20 rows/s for the next 50 s.
    samples = run([(0, 0), (50, 5000), (100, 6000)])
    assert window_rate(samples, 0, 0.1) == pytest.approx(100)
    assert window_rate(samples, 0.9, 1) == pytest.approx(20)
    assert window_rate(samples, 0, 1) == pytest.approx(60)
    assert window_rate(samples, 0.25, 0.75) == pytest.approx((5500 - 2500) / 50)  # 2,500 rows at 25 s, 5,500 at 75 s


@pytest.mark.parametrize("start, end", [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.1)])
def test_a_window_outside_the_run_is_refused(start, end):
    with pytest.raises(ValueError):
        window_rate(run([(0, 0), (10, 10)]), start, end)


def test_moving_rate_looks_back_over_its_window_only():
    samples = run([(0, 0), (10, 100), (20, 100), (30, 400)])
    assert moving_rates(samples, 10) == pytest.approx([0.0, 10.0, 0.0, 30.0])
    assert moving_rates(samples, 20)[-1] == pytest.approx(15.0)  # (400 - 100) / 20
    samples[-1]["grouped"] = 700.0
    assert moving_rates(samples, 10, "grouped")[-1] == pytest.approx(60.0)  # (700 - 100) / 10


def test_summary_of_a_finished_run():
    samples = run([(0, 0), (10, 100), (20, 600), (40, 1000)], posted=[0, 1000, 1000, 1000])
    summary = summarize(samples, META)
    assert summary["finished"] is True
    assert summary["touch_rows"] == 1000
    assert summary["events_per_s"] == 25.0
    assert summary["rows_per_s_first_10pct"] == 10.0  # 40 rows in the first 4 s
    assert summary["rows_per_s_last_10pct"] == 20.0  # 80 rows in the last 4 s
    assert summary["posted_all_at_seconds"] == 10
    assert summary["grouped_all_at_seconds"] == 10
    # the peak is the largest VmHWM sampled, per service
    assert summary["peak_rss_mib"] == {s: 200 + 10 * n + 3 for n, s in enumerate(SERVICES)}
    assert summary["state_on_disk_mib"] == {s: 15.0 for s in STATEFUL}
    assert summary["rss_bound_mib"] == RSS_BOUND_MIB


def test_cpu_per_row_over_a_window_and_none_without_rows():
    samples = run([(0, 0), (10, 100), (20, 100), (30, 400)])
    samples[-1]["scoring_cpu_s"] = 0.2 + 0.6  # 300 rows in the last 10 s at 2 ms each
    assert cpu_ms_per_row(samples, "grouping") == pytest.approx(2.0)
    assert cpu_ms_per_row(samples, "scoring", 2 / 3, 1) == pytest.approx(2.0)
    assert cpu_ms_per_row(samples, "scoring", 1 / 3, 2 / 3) is None  # 100 rows at 10 s and at 20 s


def test_the_overall_rate_counts_events_once_known_not_rows():
    # 1,010 rows for 1,000 events: ten touches count for an account and an opportunity.
    samples = run([(0, 0), (10, 500), (20, 1010)], posted=[0, 1000, 1000])
    summary = summarize(samples, {**META, "events_done": 1000})
    assert summary["finished"] is True
    assert summary["events_per_s"] == 50.0
    assert summary["touch_rows"] == 1010
    assert summarize(samples, {**META, "events_done": 990})["finished"] is False


def test_summary_of_a_stopped_run_says_it_is_partial():
    summary = summarize(run([(0, 0), (10, 100), (20, 300)], posted=[0, 500, 900]), META)
    assert summary["finished"] is False
    assert summary["touch_rows"] == 300
    assert summary["posted_all_at_seconds"] is None
    assert summary["events_per_s"] == 15.0


def test_state_on_disk_counts_every_file_below_the_directory(tmp_path):
    (tmp_path / "grouping" / "tables").mkdir(parents=True)
    (tmp_path / "grouping" / "tables" / "000001.sst").write_bytes(b"x" * 2**20)
    (tmp_path / "grouping" / "LOG").write_bytes(b"x" * 2**19)
    assert dir_mib(tmp_path) == 1.5
    assert dir_mib(tmp_path / "absent") == 0.0
