"""Trails whose installation failed: marked failed, cleaned off the switches, retried.

A step that a switch refused (OFPT_ERROR) or did not confirm (barrier
timeout) fails the trails with operations in it (sdnscent.transactions). A
failed trail keeps its record (state "failed", shown by REST and /events) and
its label, loses every entry it may have left on the switches, and is
installed again after a back-off that doubles from RETRY_FIRST to RETRY_MAX,
on its current best path if the old one broke meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .. import bundles, compiler, tagging
from ..flows import COOKIE_MASK_ALL, FlowDelete, trail_cookie
from ..planner import NoPathError
from ..topology import TopologyError
from ..trails import DEAD_STATES, TrailState
from ..transactions import Failure, Verdict, judge, retry_delay
from .model import Change
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")


@dataclass
class Retry:
    """A failed trail waiting for its next attempt."""

    reason: str
    attempt: int  # failures so far, 1 after the first
    due: float  # when the next attempt is made


class RetryManager:
    """Failed trails and their retries; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s
        self.waiting: dict[int, Retry] = {}
        self.failed_total = 0  # trails failed since the start
        self.resyncs_total = 0  # switches sent back to the audit after a failed step

    def step_failed(self, step_index: int, step: dict, failures: list[Failure],
                    touched: frozenset[int] = frozenset()) -> tuple[Change, Verdict]:
        """A step of a change failed on some switches: fail its trails, name switches to audit.

        `touched`: every switch the change sends to (where a failed trail may
        have left entries: its old path too). Returns the clean-up Change
        (delete the failed trails' entries) and the verdict, whose `trails` the
        glue leaves out of the change's later steps and whose `resync` switches
        it audits again.
        """
        verdict = judge(step, failures)
        change = Change()
        for trail_id, why in sorted(verdict.trails.items()):
            change.merge(self.fail(trail_id, why, touched))
        for dpid, why in sorted(verdict.resync.items()):
            self.resyncs_total += 1
            self.s.record("switch-resync", f"switch {self.s.topo.switch_name(dpid)} audited "
                          f"again: {why}")
        return change, verdict

    def fail(self, trail_id: int, why: str, touched: frozenset[int] = frozenset()) -> Change:
        """Mark a trail failed, delete whatever it left on its switches and on `touched`
        (the switches of the change that failed), schedule a retry."""
        trail = self.s.store.get(trail_id)
        if trail is None or trail.state in DEAD_STATES:
            return Change()  # gone, or failed already (its clean-up failing changes nothing)
        head = bundles.head_of(trail)
        if head is not None:  # a multipath trail fails whole; its pair sets it up again
            self.failed_total += 1
            self.s.record("trail-failed", f"multipath trail {head} failed ({why}): removed; "
                          "its pair sets it up again on its next packet", head)
            return self.s.multipath.remove_multipath(head, f"failed: {why}", "failed")
        previous = self.waiting.get(trail_id)
        attempt = previous.attempt + 1 if previous else 1
        now = self.s.clock()
        retry = Retry(why, attempt, now + retry_delay(attempt - 1))
        self.waiting[trail_id] = retry
        self.s.put(trail.evolve(state=TrailState.FAILED, version=trail.version + 1))
        self.failed_total += 1
        self.s.record("trail-failed", f"trail {trail_id} {trail.src_ip} -> {trail.dst_ip} "
                      f"failed ({why}); attempt {attempt}, retried in "
                      f"{retry.due - now:.0f} s", trail_id)
        # Everything carrying its cookie, wherever an old or a partial path left it.
        cookie = trail_cookie(trail_id)
        where = (set(trail.switches) | touched) & set(self.s.topo.switches)
        ops: list[compiler.Op] = [FlowDelete(d, cookie, COOKIE_MASK_ALL) for d in sorted(where)]
        if trail.rate_cap and trail.ingress.dpid in self.s.topo.switches:
            ops += compiler.remove_ops(trail)[-1:]  # its meter
        return Change([compiler.group_ops(ops)]) if ops else Change()

    def succeeded(self, trail_id: int) -> None:
        """A trail became active: it is not waiting for a retry any more."""
        self.waiting.pop(trail_id, None)

    def retry_due(self) -> Change:
        """Install again the failed trails whose back-off is over."""
        now = self.s.clock()
        change = Change()
        for trail_id, retry in sorted(self.waiting.items()):
            if retry.due > now:
                continue
            trail = self.s.store.get(trail_id)
            if trail is None or trail.state is not TrailState.FAILED:
                del self.waiting[trail_id]
                continue
            if trail.src_mac not in self.s.topo.hosts or trail.dst_mac not in self.s.topo.hosts:
                retry.due = now + retry_delay(retry.attempt)  # its hosts are not back yet
                continue
            retry.due = now + retry_delay(retry.attempt)  # if this attempt fails, the next
            self.s.record("trail-retry", f"trail {trail_id} installed again (attempt "
                          f"{retry.attempt + 1})", trail_id)
            if not self.s.path_intact(trail):
                try:
                    change.merge(self.s.trails.replan(trail_id, "retry after a failure"))
                except (NoPathError, TopologyError) as exc:
                    LOG.info("trail %d not retried: %s", trail_id, exc)
                continue
            again = trail.evolve(state=TrailState.INSTALLING, version=trail.version + 1)
            self.s.put(again)
            steps = tagging.install_steps(again) if self.s.tagged(again) \
                else compiler.install_steps(again)
            steps = self.s.protection.install_steps(again, steps)
            change.merge(Change(steps, [lambda t=trail_id: self.s.activate(t)], [trail_id]))
        return change

    def view(self, trail_id: int) -> dict[str, object] | None:
        """JSON of a failed trail's failure and next attempt (None if it is not failed)."""
        retry = self.waiting.get(trail_id)
        if retry is None:
            return None
        return {"reason": retry.reason, "attempts": retry.attempt, "retry_at": retry.due}
