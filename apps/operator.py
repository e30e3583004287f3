"""What an operator does over REST (or SIGHUP) to the running controller.

Each action is decided on the worker like any event, its change sent by the
runner, and the answer returned once the switches confirmed it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sdnscent.controller import Change, ScentController
from sdnscent.flows import COOKIE_MASK_ALL, trail_cookie
from sdnscent.policy import Policy
from sdnscent.policyfile import PolicyError, load_policy
from sdnscent.rest import ApiError
from sdnscent.topology import TopologyError, dpid_str
from sdnscent.trails import Trail

from .channel import Channel
from .runner import ChangeRunner, Worker

LOG = logging.getLogger("sdnscent.app")

ReadFlows = Callable[[Any], list[Any] | None]


class Operator:
    """The REST hooks of the os-ken app: policy, trail actions, reads from the switches."""

    def __init__(self, ctrl: ScentController, worker: Worker, runner: ChangeRunner,
                 channel: Channel, is_leader: Callable[[], bool], read_flows: ReadFlows,
                 policy_file: str | None) -> None:
        self.ctrl = ctrl
        self.worker = worker
        self.runner = runner
        self.channel = channel
        self._is_leader = is_leader
        self._read_flows = read_flows
        self.policy_file = policy_file

    def apply_policy(self, policy: Policy, timeout: float = 60.0) -> dict[str, Any]:
        """Swap in a validated policy and re-plan trails; wait for the switches."""
        done = threading.Event()
        summary: dict[str, Any] = {}

        def job() -> None:
            with self.ctrl.lock:
                try:
                    change, result = self.ctrl.set_policy(policy)
                except (TopologyError, ValueError) as exc:  # refused whole: nothing changed
                    self.ctrl.record("policy-rejected", f"{policy.source} not applied; "
                                     f"the running policy stays: {exc}")
                    summary["rejected"] = str(exc)
                    done.set()
                    return
            summary.update(result)
            self.runner.execute(change, lambda ok: done.set())

        self.worker.submit("policy", job)
        if not done.wait(timeout):
            return {"warning": f"still re-planning after {timeout:.0f} s"}
        return summary

    def reload_policy_file(self) -> None:
        """SIGHUP: read --policy again; a bad file changes nothing."""
        path = self.policy_file
        if not path:
            LOG.warning("SIGHUP ignored: the controller was started without --policy")
            return
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            with self.ctrl.lock:
                self.ctrl.record("policy-rejected", f"{path} not applied; the running policy "
                                 f"stays: {exc}")
            LOG.error("policy reload rejected, nothing changed:\n%s", exc)
            return
        LOG.info("policy reloaded from %s: %s", path, self.apply_policy(policy))

    def _on_worker(self, name: str, action: Callable[[], tuple[Any, Change | None]],
                   timeout: float = 30.0) -> Any:
        """Run `action` on the worker, send the change it returns, and return its result
        once the switches confirmed (ApiError 503 on a timeout)."""
        if not self._is_leader():
            raise ApiError(409, "this controller is a standby; send it to the master")
        done = threading.Event()
        result: list[Any] = []
        failure: list[BaseException] = []

        def job() -> None:
            try:
                value, change = action()
                result.append(value)
            except BaseException as exc:  # handed to the REST thread
                failure.append(exc)
                done.set()
                return
            self.runner.execute(change or Change(), lambda ok: done.set())

        self.worker.submit(name, job)
        if not done.wait(timeout):
            raise ApiError(503, f"{name} still running after {timeout:.0f} s")
        if failure:
            raise failure[0]
        return result[0]

    def remove_trail(self, trail_id: int) -> dict[str, Any] | None:
        """DELETE /trails/<id>: remove the trail's flows and free its label."""
        def action() -> tuple[dict[str, Any] | None, Change | None]:
            with self.ctrl.lock:
                trail = self.ctrl.store.get(trail_id)
                if trail is None:
                    return None, None
                view = self.ctrl.trail_view(trail)
                change = self.ctrl.remove_trail(trail_id, "removed by the operator (REST)")
            return {"status": "removed", "trail": view}, change

        return self._on_worker("rest-delete", action)

    def replan_trail(self, trail_id: int) -> dict[str, Any] | None:
        """POST /trails/<id>/replan: move the trail to its best path now."""
        def action() -> tuple[Trail | None, Change | None]:
            with self.ctrl.lock:
                before = self.ctrl.store.get(trail_id)
                if before is None:
                    return None, None
                return before, self.ctrl.replan(trail_id, "operator request (REST)")

        before = self._on_worker("rest-replan", action)
        if before is None:
            return None
        with self.ctrl.lock:
            after = self.ctrl.store.get(trail_id)
            view = self.ctrl.trail_view(after) if after is not None else None
        state = "removed" if after is None else \
            "unchanged" if after.version == before.version else "replanned"
        return {"status": state, "trail": view}

    def pin_trail(self, trail_id: int, pinned: bool) -> dict[str, Any] | None:
        """PUT/DELETE /trails/<id>/pin: keep the trail off load moves (or not)."""
        def action() -> tuple[dict[str, Any] | None, None]:
            with self.ctrl.lock:
                trail = self.ctrl.pin_trail(trail_id, pinned)
                if trail is None:
                    return None, None
                return {"status": "pinned" if pinned else "unpinned",
                        "trail": self.ctrl.trail_view(trail)}, None

        return self._on_worker("rest-pin", action)

    def trail_flow_stats(self, trail: Trail) -> dict[int, list[dict[str, Any]] | None]:
        """Flows with `trail`'s cookie on each switch it crosses, read now."""
        out: dict[int, list[dict[str, Any]] | None] = {}
        for dpid in dict.fromkeys(trail.switches):
            dp = self.channel.datapaths.get(dpid)
            entries = self.channel.dump_flows(dp, trail_cookie(trail.id), COOKIE_MASK_ALL,
                                              timeout=2.0) if dp is not None else None
            out[dpid] = None if entries is None else [
                {"table": e.table_id, "priority": e.priority,
                 "match": {k: v for k, v in e.match.items() if not isinstance(v, tuple)},
                 "packets": e.packet_count, "bytes": e.byte_count,
                 "duration": e.duration_sec + e.duration_nsec / 1e9} for e in entries]
        return out

    def audit_now(self) -> dict[str, Any]:
        """GET /audit: read every switch's table and say what an audit would fix."""
        switches: dict[str, dict[str, int]] = {}
        unread: list[str] = []
        for dpid, dp in sorted(self.channel.datapaths.items()):
            installed = self._read_flows(dp)
            if installed is None:
                unread.append(dpid_str(dpid))
                continue
            with self.ctrl.lock:
                switches[dpid_str(dpid)] = self.ctrl.audit_report(dpid, installed)
        stale = sum(r["missing"] + r["wrong"] + r["unknown"] for r in switches.values())
        return {"switches": switches, "stale": stale, "unread": unread}
