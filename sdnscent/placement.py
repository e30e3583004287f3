"""Global placement of elephant flows: one path per flow (unsplittable).

Hedera's Global First Fit, then a local search, over candidate paths the
controller's own planner produced under each trail's policy (so any answer
here respects zones, network-function chains and isolation). Pure: links are
(dpid, out port) keys, demands and capacities bit/s.

1. First fit, largest demand first: a flow keeps its current path when its
   demand fits there, else takes the first candidate with room on every link,
   else the candidate that overloads least.
2. Local search: take the most overloaded link and move one of its flows (or
   swap two) to the candidates that improve the whole placement most; repeat
   until no move improves it.
3. Where flows still collide, the assignment with the least overload, then
   the least peak, as a small integer program (HiGHS, time-limited), which
   moves a flow only where that helps; the better of the two answers wins.
4. Moves that gain (almost) nothing are undone, smallest flows first.
5. Hysteresis: the new placement replaces the current one only if it is
   better by a margin (a quarter of a NIC's worth of overload, or a quarter
   off the peak utilisation); otherwise nothing moves (no flapping on noise).

The score of a placement is (total overload, highest utilisation, sum of
squared utilisations), compared in that order: first the demand that cannot
be carried, then the bottleneck, then the spread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

LinkKey = tuple[int, int]  # (dpid, out port)
Path = tuple[LinkKey, ...]

SEARCH_ROUNDS = 200  # local search moves at most
SEARCH_SECONDS = 0.1  # ... and this long (the exact assignment takes over)
GAIN = 0.25  # a new placement must carry this share of one NIC more, or lower the peak by it
MOVE_PRICE = 0.1  # share of one NIC of overload (or peak x NIC) each move must buy
PRUNE = 0.01  # of one NIC: a move that gains less than this is undone
EXACT_SECONDS = 0.25  # time limit of the exact assignment (HiGHS), per period
MOVE_PENALTY = 1e-3  # utilisation a move costs in the exact assignment: keep what works
OVERLOAD_WEIGHT = 100.0  # exact assignment: a link's capacity of overload outweighs 100 x peak


@dataclass(frozen=True)
class Score:
    """How good a placement is; smaller is better (compared as a tuple)."""

    overload: float  # bit/s the links cannot carry, summed over links
    peak: float  # highest utilisation (load / capacity)
    squares: float  # sum of squared utilisations

    def key(self) -> tuple[float, float, float]:
        """The comparison key."""
        return (round(self.overload, 3), round(self.peak, 9), round(self.squares, 9))


@dataclass(frozen=True)
class Placement:
    """The outcome: the chosen candidate of every flow and what it improves."""

    choice: Mapping[int, int]  # trail -> index into its candidates
    moves: tuple[int, ...]  # trails whose choice differs from their current path
    before: Score
    after: Score
    reason: str
    loads: Mapping[LinkKey, float] = field(default_factory=dict)  # bit/s per link, after


class _Loads:
    """Link loads of a placement under construction."""

    def __init__(self, capacity: Mapping[LinkKey, float], background: Mapping[LinkKey, float]):
        self.capacity = capacity
        self.load: dict[LinkKey, float] = dict(background)

    def add(self, path: Path, bps: float) -> None:
        for key in path:
            self.load[key] = self.load.get(key, 0.0) + bps

    def fits(self, path: Path, bps: float) -> bool:
        return all(self.load.get(k, 0.0) + bps <= self.capacity.get(k, float("inf")) * 1.0001
                   for k in path)

    def score(self) -> Score:
        overload = peak = squares = 0.0
        for key, load in self.load.items():
            cap = self.capacity.get(key)
            if not cap:
                continue
            overload += max(0.0, load - cap)
            util = load / cap
            peak = max(peak, util)
            squares += util * util
        return Score(overload, peak, squares)


def score_of(choice: Mapping[int, Path], demands: Mapping[int, float],
             capacity: Mapping[LinkKey, float],
             background: Mapping[LinkKey, float] | None = None) -> Score:
    """The score of flows on the given paths over `background` load."""
    loads = _Loads(capacity, background or {})
    for trail, path in choice.items():
        loads.add(path, demands[trail])
    return loads.score()


def place(demands: Mapping[int, float], candidates: Mapping[int, Sequence[Path]],
          current: Mapping[int, Path], capacity: Mapping[LinkKey, float],
          background: Mapping[LinkKey, float] | None = None, gain: float = GAIN,
          nic: float | None = None, time_limit: float = EXACT_SECONDS, exact: bool = True,
          hint: Mapping[int, Path] | None = None) -> Placement:
    """Place every flow of `demands` on one of its candidates.

    `current` is where each flow runs now (it need not be a candidate: a flow
    may sit on a path that is no longer among the planner's answers).
    `background` is load that does not move (mice). `gain` and `nic` set the
    hysteresis: the new placement must carry gain * nic bit/s more (nic: the
    smallest demand when not given) or lower the peak utilisation by `gain`.
    `time_limit` bounds the exact assignment (its best answer so far is used);
    `exact=False` leaves it out (a caller that runs exact_assignment elsewhere,
    off its event loop). `hint`: paths for some flows, such as an exact
    assignment made on an earlier snapshot; taken where it scores better than
    the local search on today's demands (paths not among a flow's candidates
    are ignored). Raises ValueError for a flow without candidates.
    """
    background = background or {}
    for trail in demands:
        if not candidates.get(trail):
            raise ValueError(f"trail {trail} has no candidate path")
    order = sorted(demands, key=lambda t: (-demands[t], t))
    paths = {t: list(candidates[t]) for t in order}
    before = score_of({t: current.get(t, paths[t][0]) for t in order}, demands, capacity,
                      background)

    # 1. first fit, largest first; a flow whose current path fits keeps it
    loads = _Loads(capacity, background)
    choice: dict[int, int] = {}
    for t in order:
        here = current.get(t)
        options = paths[t]
        if here is not None and here in options and loads.fits(here, demands[t]):
            pick = options.index(here)
        else:
            pick = next((i for i, p in enumerate(options) if loads.fits(p, demands[t])), -1)
            if pick < 0:
                pick = min(range(len(options)), key=lambda i: _trial(loads, options[i],
                                                                    demands[t]).key())
        choice[t] = pick
        loads.add(options[pick], demands[t])

    # 2. local search off the most loaded links
    deadline = time.monotonic() + SEARCH_SECONDS
    for _ in range(SEARCH_ROUNDS):
        if time.monotonic() > deadline:
            break
        move = _improve(loads, choice, paths, demands, capacity)
        if move is None:
            break
        for t, i in move:
            loads.add(paths[t][choice[t]], -demands[t])
            choice[t] = i
            loads.add(paths[t][i], demands[t])
    after = loads.score()

    # 3. where flows still collide: the min-max assignment, solved exactly (HiGHS),
    # or given as a hint
    offers = []
    if hint:
        offers.append({t: paths[t].index(hint[t]) if hint.get(t) in paths[t] else choice[t]
                       for t in order})
    if exact and after.overload > 0 and len(order) > 1:
        offers.append(_assign(order, paths, demands, current, capacity, background, time_limit))
    for offer in offers:
        if offer is None:
            continue
        trial = _Loads(capacity, background)
        for t in order:
            trial.add(paths[t][offer[t]], demands[t])
        if trial.score().key() < after.key():
            choice, loads, after = offer, trial, trial.score()

    # 4. moves that buy nothing are undone (an exact answer has many equal twins)
    unit = nic if nic is not None else min(demands.values(), default=0.0)
    for t in sorted(order, key=lambda t: (demands[t], t)):
        here = current.get(t)
        if here is None or here not in paths[t] or paths[t][choice[t]] == here:
            continue
        loads.add(paths[t][choice[t]], -demands[t])
        loads.add(here, demands[t])
        undone = loads.score()
        if undone.overload <= after.overload + PRUNE * unit and undone.peak <= after.peak + 1e-9:
            choice[t], after = paths[t].index(here), undone
        else:
            loads.add(here, -demands[t])
            loads.add(paths[t][choice[t]], demands[t])

    # 5. hysteresis against where the flows run now, and the gain must pay for
    # its moves (each one disturbs a flow: reordering, a drain, a cwnd dip)
    margin = gain * unit
    moves = tuple(t for t in order if paths[t][choice[t]] != current.get(t))
    worth = (before.overload - after.overload) + max(0.0, before.peak - after.peak) * unit \
        >= MOVE_PRICE * unit * len(moves)
    better = worth and (after.overload < before.overload - margin or (
        after.overload <= before.overload + 1e-6 and after.peak < before.peak - gain))
    if not better or not moves:
        keep = {t: paths[t].index(current[t]) for t in order
                if t in current and current[t] in paths[t]}
        return Placement(keep, (), before, before,
                         "no placement better by the margin" if moves else "already placed",
                         dict(_current_loads(current, demands, capacity, background).load))
    return Placement(choice, moves, before, after,
                     f"overload {before.overload / 1e6:.3g} -> {after.overload / 1e6:.3g} "
                     f"Mbit/s, peak {before.peak:.0%} -> {after.peak:.0%}",
                     dict(loads.load))


def _current_loads(current: Mapping[int, Path], demands: Mapping[int, float],
                   capacity: Mapping[LinkKey, float],
                   background: Mapping[LinkKey, float]) -> _Loads:
    loads = _Loads(capacity, background)
    for t, path in current.items():
        if t in demands:
            loads.add(path, demands[t])
    return loads


def _trial(loads: _Loads, path: Path, bps: float) -> Score:
    """The score if `path` carried `bps` more."""
    loads.add(path, bps)
    try:
        return loads.score()
    finally:
        loads.add(path, -bps)


Move = tuple[tuple[int, int], ...]  # (trail, candidate) pairs applied together


def _shift(changes: dict[LinkKey, float], old: Path, new: Path, bps: float) -> None:
    for key in old:
        changes[key] = changes.get(key, 0.0) - bps
    for key in new:
        changes[key] = changes.get(key, 0.0) + bps


def _delta(loads: _Loads, changes: Mapping[LinkKey, float]) -> tuple[float, float]:
    """(change of total overload, change of the sum of squared utilisations)."""
    over = squares = 0.0
    for key, dv in changes.items():
        cap = loads.capacity.get(key)
        if not cap or dv == 0:
            continue
        old = loads.load.get(key, 0.0)
        new = old + dv
        over += max(0.0, new - cap) - max(0.0, old - cap)
        squares += (new / cap) ** 2 - (old / cap) ** 2
    return over, squares


def _better(delta: tuple[float, float], best: tuple[float, float]) -> bool:
    over, squares = delta
    if over < best[0] - 1e-3:
        return True
    return abs(over - best[0]) <= 1e-3 and squares < best[1] - 1e-9


def _improve(loads: _Loads, choice: Mapping[int, int], paths: Mapping[int, Sequence[Path]],
             demands: Mapping[int, float], capacity: Mapping[LinkKey, float]) -> Move | None:
    """The move of one flow, or else of two flows together, that improves the
    placement most; None if there is none.

    Tried: flows on overloaded links (or, without overload, on the most utilised
    ones) to each of their candidates; then, for a target path that would
    overload, also moving one flow of the link it would overload elsewhere
    (a swap), which escapes the plateaus a single move cannot leave.
    """
    over = {k for k, v in loads.load.items() if capacity.get(k) and v > capacity[k] * 1.0001}
    if over:
        hot = over
    else:
        peak = max((v / capacity[k] for k, v in loads.load.items() if capacity.get(k)),
                   default=0.0)
        if peak <= 0:
            return None
        hot = {k for k, v in loads.load.items() if capacity.get(k)
               and v / capacity[k] >= peak - 1e-9}
    on_link: dict[LinkKey, list[int]] = {}
    for t, i in choice.items():
        for key in paths[t][i]:
            on_link.setdefault(key, []).append(t)
    best: tuple[float, float] = (0.0, 0.0)
    found: Move | None = None
    movers = sorted({t for k in hot for t in on_link.get(k, [])}, key=lambda t: (-demands[t], t))
    for t in movers:
        mine = paths[t][choice[t]]
        for i, path in enumerate(paths[t]):
            if i == choice[t]:
                continue
            changes: dict[LinkKey, float] = {}
            _shift(changes, mine, path, demands[t])
            delta = _delta(loads, changes)
            if _better(delta, best):
                best, found = delta, ((t, i),)
    if found is not None or not over:
        return found
    for t in movers:  # swaps: t takes a path whose new overload another flow makes room for
        mine = paths[t][choice[t]]
        for i, path in enumerate(paths[t]):
            if i == choice[t]:
                continue
            base: dict[LinkKey, float] = {}
            _shift(base, mine, path, demands[t])
            crowded = [k for k in path if k not in mine and capacity.get(k)
                       and loads.load.get(k, 0.0) + demands[t] > capacity[k] * 1.0001]
            others = sorted({u for k in crowded for u in on_link.get(k, []) if u != t})
            for u in others:
                theirs = paths[u][choice[u]]
                for j, alt in enumerate(paths[u]):
                    if j == choice[u]:
                        continue
                    changes = dict(base)
                    _shift(changes, theirs, alt, demands[u])
                    delta = _delta(loads, changes)
                    if _better(delta, best):
                        best, found = delta, ((t, i), (u, j))
    return found


def exact_assignment(demands: Mapping[int, float], candidates: Mapping[int, Sequence[Path]],
                     current: Mapping[int, Path], capacity: Mapping[LinkKey, float],
                     background: Mapping[LinkKey, float] | None = None,
                     time_limit: float = EXACT_SECONDS) -> dict[int, Path] | None:
    """The path per flow with the least overload, then the least peak (few moves
    from `current` break ties); None if HiGHS found no answer in `time_limit` s.
    Pure: safe to run on a thread of its own (HiGHS releases the GIL); give the
    answer to place() as its `hint`."""
    order = sorted(demands, key=lambda t: (-demands[t], t))
    paths = {t: list(candidates[t]) for t in order}
    if not order or any(not paths[t] for t in order):
        return None
    choice = _assign(order, paths, demands, current, capacity, background or {}, time_limit)
    return {t: paths[t][i] for t, i in choice.items()} if choice is not None else None


def _assign(order: Sequence[int], paths: Mapping[int, Sequence[Path]],
            demands: Mapping[int, float], current: Mapping[int, Path],
            capacity: Mapping[LinkKey, float], background: Mapping[LinkKey, float],
            time_limit: float) -> dict[int, int] | None:
    """The candidate per flow with the least overload, then the least peak
    utilisation (plus MOVE_PENALTY per move), as a mixed-integer program; None
    if HiGHS found no answer in time.

    Overload first, as the placement's score orders them: where some overload
    cannot be avoided, many assignments share the same peak and only the
    overload tells them apart.
    """
    columns = [(t, i) for t in order for i in range(len(paths[t]))]
    links = sorted({k for t in order for p in paths[t] for k in p if capacity.get(k)})
    row_of = {k: r for r, k in enumerate(links)}
    nx_, nl = len(columns), len(links)
    peak = nx_ + nl  # variables: choices, then each link's excess utilisation, then the peak
    n = peak + 1
    rows, cols, vals = [], [], []
    for c, (t, i) in enumerate(columns):
        for key in paths[t][i]:
            if key in row_of:
                rows.append(row_of[key])
                cols.append(c)
                vals.append(demands[t] / capacity[key])
    choice_part = coo_array((vals, (rows, cols)), shape=(nl, n)).tocsr()
    peak_col = coo_array(([-1.0] * nl, (list(range(nl)), [peak] * nl)), shape=(nl, n))
    excess_col = coo_array(([-1.0] * nl, (list(range(nl)), [nx_ + r for r in range(nl)])),
                           shape=(nl, n))
    base = np.array([background.get(k, 0.0) / capacity[k] for k in links])
    flow_row = {t: r for r, t in enumerate(order)}
    pick = coo_array(([1.0] * nx_, ([flow_row[t] for t, _ in columns], list(range(nx_)))),
                     shape=(len(order), n))
    scale = min(capacity[k] for k in links) if links else 1.0
    cost = np.array([MOVE_PENALTY if paths[t][i] != current.get(t) else 0.0
                     for t, i in columns]
                    + [OVERLOAD_WEIGHT * capacity[k] / scale for k in links] + [1.0])
    result = milp(cost, integrality=np.array([1] * nx_ + [0] * (nl + 1)),
                  bounds=Bounds(np.zeros(n), np.array([1.0] * nx_ + [np.inf] * (nl + 1))),
                  constraints=[LinearConstraint(choice_part + peak_col, -np.inf, -base),
                               LinearConstraint(choice_part + excess_col, -np.inf, 1.0 - base),
                               LinearConstraint(pick, 1.0, 1.0)],
                  options={"time_limit": time_limit, "disp": False})
    if result.x is None:
        return None
    choice: dict[int, int] = {}
    for c, (t, i) in enumerate(columns):
        if result.x[c] > 0.5:
            choice[t] = i
    return choice if len(choice) == len(order) else None


def first_moves(result: Placement, demands: Mapping[int, float],
                candidates: Mapping[int, Sequence[Path]], current: Mapping[int, Path],
                capacity: Mapping[LinkKey, float],
                background: Mapping[LinkKey, float] | None = None,
                limit: int = 32) -> list[int]:
    """The moves of `result` to make now when at most `limit` may go at once.

    All of them when they fit in `limit`: they go out together and end where
    the placement planned. Otherwise a part must wait, and a part of a
    placement can be worse than where it starts (an elephant moved onto a
    path whose occupant was to leave but has to wait). So moves are taken in
    passes: a move is taken when no link it adds load to ends above the
    current peak utilisation (or its capacity, if higher), counting the moves
    taken before it. When no pending move qualifies (a cycle of swaps), the
    rest of the limit is filled in the placement's order. The others wait for
    the next period, which plans again from there.
    """
    if len(result.moves) <= limit:
        return list(result.moves)
    loads = _Loads(capacity, background or {})
    for trail, demand in demands.items():
        loads.add(current.get(trail, candidates[trail][0]), demand)
    peak = max(1.0, loads.score().peak)
    taken: list[int] = []
    pending = list(result.moves)
    progress = True
    while pending and len(taken) < limit and progress:
        progress = False
        for trail in list(pending):
            old, new = current.get(trail, ()), candidates[trail][result.choice[trail]]
            added = [k for k in new if k not in old]
            if all(loads.load.get(k, 0.0) + demands[trail]
                   <= peak * capacity.get(k, float("inf")) * 1.0001 for k in added):
                loads.add(old, -demands[trail])
                loads.add(new, demands[trail])
                taken.append(trail)
                pending.remove(trail)
                progress = True
                if len(taken) == limit:
                    break
    return taken + pending[:limit - len(taken)]
