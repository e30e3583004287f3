"""The flow-table audit: what a (re)connected switch holds against what it should.

Pure: takes the flows read back from a switch (flow stats, parsed by the glue
into FlowSpecs) and the flows the controller expects, and returns the adds and
strict deletes that make the first equal the second, touching nothing correct.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .flows import FlowDelete, FlowSpec
from .pipeline import COOKIE_MASK_ALL, KIND_FLOW, TABLE_CLASSIFY, cookie_kind

Key = tuple[int, int, tuple[tuple[str, int | str], ...]]  # (table, priority, match)


def is_ours(cookie: int) -> bool:
    """True for a cookie this controller writes (top 16 bits 0x5ce7)."""
    return cookie_kind(cookie) is not None


def entry_key(flow: FlowSpec) -> Key:
    """What identifies an entry on a switch (OpenFlow): table, priority, match."""
    return (flow.table, flow.priority, _normal_match(flow))


def _normal_match(flow: FlowSpec) -> tuple[tuple[str, int | str], ...]:
    return tuple(sorted((k, v.lower() if isinstance(v, str) else v) for k, v in flow.match))


def same_entry(a: FlowSpec, b: FlowSpec) -> bool:
    """Same key, cookie, actions, goto and timeouts: nothing to rewrite."""
    return (entry_key(a) == entry_key(b) and a.cookie == b.cookie and a.actions == b.actions
            and a.goto == b.goto and (a.idle_timeout, a.hard_timeout, a.notify_removed)
            == (b.idle_timeout, b.hard_timeout, b.notify_removed))


def strict_delete(flow: FlowSpec) -> FlowDelete:
    """Delete exactly the installed `flow`: its cookie, table, priority and match."""
    return FlowDelete(flow.dpid, flow.cookie, COOKIE_MASK_ALL, flow.table, flow.match,
                      flow.priority, strict=True)


@dataclass
class AuditResult:
    """What the audit found on one switch."""

    adds: list[FlowSpec] = field(default_factory=list)  # missing or different: (re)install
    deletes: list[FlowDelete] = field(default_factory=list)  # ours, not expected
    kept: list[FlowSpec] = field(default_factory=list)  # correct: left alone
    deferred: list[FlowSpec] = field(default_factory=list)  # not expected yet, kept for now
    foreign: int = 0  # entries with someone else's cookie: never touched
    learned: int = 0  # connection counters the switch learned (KIND_FLOW): left alone

    def summary(self) -> str:
        """One line for the event log."""
        return (f"{len(self.kept)} correct, {len(self.adds)} installed, "
                f"{len(self.deletes)} deleted, {len(self.deferred)} kept pending, "
                f"{self.foreign} foreign")


def diff_flows(expected: Iterable[FlowSpec], installed: Iterable[FlowSpec],
               defer: Callable[[FlowSpec], bool] = lambda _flow: False) -> AuditResult:
    """Compare a switch's flows (`installed`) with what it should hold (`expected`).

    - an expected flow installed exactly as expected is kept (no operation);
    - one that is missing, or installed under the same key with other actions,
      goto, cookie or timeouts, is added (an add replaces the entry in place,
      so a wrong entry is rewritten without a gap);
    - an installed flow of ours that is not expected is deleted strictly,
      unless `defer(flow)` says it may still become valid (kept, reported);
    - flows with a cookie not ours are left alone, and so are the connection
      counters a switch learned itself (KIND_FLOW).

    Example: diff_flows(compiler.pipeline_flows(1), []).adds is the pipeline.
    """
    have: dict[Key, FlowSpec] = {}
    result = AuditResult()
    for flow in installed:
        if not is_ours(flow.cookie):
            result.foreign += 1
            continue
        if cookie_kind(flow.cookie) == KIND_FLOW:
            result.learned += 1  # the switch's own connection counters: they time out
            continue
        have[entry_key(flow)] = flow
    wanted: dict[Key, FlowSpec] = {}
    for flow in expected:
        wanted.setdefault(entry_key(flow), flow)
    for key, flow in wanted.items():
        present = have.get(key)
        if present is not None and same_entry(present, flow):
            result.kept.append(flow)
        else:
            result.adds.append(flow)
    for key, flow in have.items():
        if key in wanted:
            continue
        if defer(flow):
            result.deferred.append(flow)
        else:
            result.deletes.append(strict_delete(flow))
    return result


def audit_steps(dpid: int, result: AuditResult) -> list[dict[int, list]]:
    """Barrier-separated steps: forwarding entries, then classifiers, then deletes.

    Label entries (table 1) go first so a classifier never pushes a label the
    next hops do not know; unknown entries go last, after their replacements.
    """
    forward = [f for f in result.adds if f.table != TABLE_CLASSIFY]
    classify = [f for f in result.adds if f.table == TABLE_CLASSIFY]
    steps: list[dict[int, list]] = [{dpid: list(ops)} for ops in
                                     (forward, classify, result.deletes) if ops]
    return steps
