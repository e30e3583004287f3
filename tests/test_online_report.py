"""The online benchmark's report: repeats are averaged, ratios keep each repeat's range."""

from __future__ import annotations

import math

import pytest

from benchmarks.online import Run, main, mean_runs, table


def run(mode: str, pattern: str, level: float, alone: float = 1e6, converge: int = 0) -> Run:
    """A 10-s run of 4 flows whose aggregate sits at `level` x ideal from second `converge`."""
    ideal = 4 * alone
    series = [ideal * level * (0.5 if i < converge else 1.0) for i in range(10)]
    return Run(mode, pattern, 4, alone, series, label_misses=1, misses_dropped=1,
               events={"label-miss": 1})


def test_repeats_average_scores_and_ratios_show_each_repeats_range() -> None:
    runs = [run("perfect", "stride4", 1.0), run("scent", "stride4", 0.9, converge=2),
            run("perfect", "stride4", 0.8, alone=2e6), run("scent", "stride4", 0.8, alone=2e6,
                                                            converge=5)]
    means = {(r.pattern, r.mode): r for r in mean_runs(runs)}
    assert math.isclose(means[("stride4", "perfect")].score, 0.9)
    assert math.isclose(means[("stride4", "scent")].score, 0.85)
    assert means[("stride4", "scent")].label_misses == 2
    assert means[("stride4", "scent")].misses_dropped == 2
    assert means[("stride4", "scent")].events == {"label-miss": 2}
    text = table(runs, ["stride4"], ["perfect", "scent"])
    row = next(line for line in text.splitlines() if line.startswith("stride4"))
    # 0.85 / 0.9 = 0.94 of the means; repeat 1: 0.90, repeat 2: 1.00; slowest: 5 s
    assert row.split() == ["stride4", "0.90", "0.85", "0.94", "(0.90-1.00)", "5", "2",
                           "(2", "dropped)"]


def test_one_repeat_has_no_range() -> None:
    text = table([run("perfect", "random", 0.5), run("scent", "random", 0.5)],
                 ["random"], ["perfect", "scent"])
    row = next(line for line in text.splitlines() if line.startswith("random"))
    assert row.split() == ["random", "0.50", "0.50", "1.00", "0", "1", "(1",
                           "dropped)"]


def test_a_repeat_count_below_one_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--repeat", "0"])
    assert exc.value.code == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err


def test_a_fabric_rate_that_is_not_positive_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--fabric-bw", "0"])
    assert exc.value.code == 2
    assert "--fabric-bw must be positive" in capsys.readouterr().err
