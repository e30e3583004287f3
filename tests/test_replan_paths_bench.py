"""benchmarks.replan_paths on a small fat-tree: it re-plans the trails of failed
cables both ways, checks each path against a fresh planner, and reports."""

from __future__ import annotations

import pytest

from benchmarks import replan_paths


def test_replan_paths_runs_on_k4_and_reports_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    replan_paths.main(["--k", "4", "--cables", "2"])
    out = capsys.readouterr().out
    assert "fat-tree k=4, 240 trails, 2 cables" in out
    assert "follow the removal" in out and "start over / follow" in out


def test_cables_alternate_layers_and_exist() -> None:
    topo = replan_paths.fat_tree(8)
    chosen = replan_paths.cables(topo, 8, 4)
    assert len(set(chosen)) == 4
    for switch, port in chosen:
        link = topo.link_from(switch, port)
        assert link is not None and link.dst < switch  # up-links go to lower numbers
