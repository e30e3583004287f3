"""Split weights of multipath trails: the water-filling split equals the linear
program's minimum of the highest link utilisation over the same legs."""

from __future__ import annotations

import random

import pytest
from scipy.optimize import linprog

from sdnscent.splits import changed, max_utilisation, minmax_weights, spare_weights


def lp_optimum(legs, capacity, load, demand) -> float:
    """min u s.t. load_l + w_i * demand <= u * c_l on every link l of leg i, sum w = 1."""
    n = len(legs)
    rows, bounds = [], []
    for i, links in enumerate(legs):
        for key in links:
            row = [0.0] * (n + 1)
            row[i], row[n] = demand / capacity[key], -1.0
            rows.append(row)
            bounds.append(-load.get(key, 0.0) / capacity[key])
    result = linprog([0.0] * n + [1.0], A_ub=rows, b_ub=bounds, A_eq=[[1.0] * n + [0.0]],
                     b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)], method="highs")
    assert result.success
    return result.fun


def random_case(rng: random.Random):
    legs = [[(i, j) for j in range(rng.randint(1, 4))] for i in range(rng.randint(1, 5))]
    capacity = {k: rng.choice([1e8, 4e8, 1e9, 1e10]) for links in legs for k in links}
    load = {k: rng.random() * 0.95 * capacity[k] for links in legs for k in links
            if rng.random() < 0.7}
    return legs, capacity, load, rng.choice([1e6, 1e8, 5e8, 3e9])


@pytest.mark.parametrize("seed", range(8))
def test_the_split_reaches_the_lp_optimum(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        legs, capacity, load, demand = random_case(rng)
        weights = minmax_weights(legs, capacity, load, demand)
        assert sum(weights) == pytest.approx(1.0) and min(weights) >= 0
        reached = max_utilisation(legs, weights, capacity, load, demand)
        assert reached == pytest.approx(lp_optimum(legs, capacity, load, demand), abs=1e-9)


def test_equal_idle_legs_split_equally_and_capacity_counts() -> None:
    legs = [[(1, 1), (2, 1)], [(1, 2), (3, 1)], [(1, 3)]]
    capacity = {k: 1e9 for links in legs for k in links} | {(1, 3): 2e9}
    assert minmax_weights(legs, capacity, {}, 1e8) == pytest.approx((0.25, 0.25, 0.5))


def test_a_loaded_leg_gets_less_and_a_full_one_nothing() -> None:
    legs = [[(1, 1)], [(1, 2)], [(1, 3)]]
    capacity = {(1, 1): 1e9, (1, 2): 1e9, (1, 3): 1e9}
    load = {(1, 1): 5e8, (1, 3): 1e9}
    assert minmax_weights(legs, capacity, load, 1e9) == pytest.approx((0.25, 0.75, 0.0))
    assert spare_weights(legs, capacity, load) == pytest.approx((1 / 3, 2 / 3, 0.0))


def test_unknown_demand_follows_spare_capacity() -> None:
    legs = [[(1, 1)], [(1, 2)]]
    capacity = {(1, 1): 1e9, (1, 2): 1e9}
    assert minmax_weights(legs, capacity, {(1, 2): 7.5e8}, 0.0) == pytest.approx((0.8, 0.2))
    assert spare_weights(legs, capacity, {(1, 1): 2e9, (1, 2): 2e9}) == (0.5, 0.5)


def test_a_leg_without_links_takes_everything() -> None:
    assert minmax_weights([[], [(1, 1)]], {(1, 1): 1e9}, {}, 1e6) == (1.0, 0.0)


@pytest.mark.parametrize(("legs", "capacity", "demand", "words"), [
    ([], {}, 1.0, "no legs"),
    ([[(1, 1)], [(1, 1)]], {(1, 1): 1e9}, 1.0, "legs 0 and 1 share link"),
    ([[(1, 1)]], {}, 1.0, r"leg 0: link \(1, 1\) has no positive capacity"),
    ([[(1, 1)]], {(1, 1): 0.0}, 1.0, "no positive capacity"),
    ([[(1, 1)]], {(1, 1): 1e9}, -1.0, "demand -1.0 must be a finite number >= 0"),
    ([[(1, 1)]], {(1, 1): 1e9}, float("nan"), "demand nan"),
])
def test_bad_input_is_refused_naming_it(legs, capacity, demand, words) -> None:
    with pytest.raises(ValueError, match=words):
        minmax_weights(legs, capacity, {}, demand)


def test_changed_needs_a_move_of_the_threshold() -> None:
    assert not changed([0.5, 0.5], [0.52, 0.48], 0.05)
    assert changed([0.5, 0.5], [0.56, 0.44], 0.05)
    assert changed([0.5, 0.5], [1.0], 0.05)
