"""benchmarks.quality --plot: the SVG of grouped bars (matplotlib: the bench extra)."""

import sys

import pytest

from benchmarks import quality


def _row(label: str, scale: float) -> tuple[str, dict[str, float]]:
    return label, {c: scale * (1 + n / 10) for n, c in enumerate(quality.COLUMNS)}


def test_plot_writes_svg_with_cases_and_planners(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "quality.svg"
    panels = [("(a) tiny fat-tree", [_row("k=4 stride2", 1.0)]),
              ("(b) tiny WAN", [_row("abilene (12 nodes, 15 links, 132 dem.)", 0.9)])]
    quality.plot(str(out), panels, "python -m benchmarks.quality --plot quality.svg")
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("k=4 stride2", "abilene", "(a) tiny fat-tree", "(b) tiny WAN",
                 "--plot quality.svg", *quality.COLUMNS):
        assert text in svg, text
    # Deterministic: the same rows give the same bytes.
    again = tmp_path / "again.svg"
    quality.plot(str(again), panels, "python -m benchmarks.quality --plot quality.svg")
    assert again.read_text() == svg


def test_plot_without_matplotlib_exits_2_before_the_benchmark(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.setattr(quality, "fat_tree_cases", lambda *a: pytest.fail("benchmark ran"))
    with pytest.raises(SystemExit) as exit_:
        quality.main(["--plot", "x.svg"])
    assert exit_.value.code == 2
    assert "make bench" in capsys.readouterr().err
