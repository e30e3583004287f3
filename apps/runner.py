"""Where the core's answers are carried out: the worker that asks, the runner that sends.

The worker takes jobs one at a time (the core is not thread-safe) and never
waits for a switch. The runner sends each Change when its switches are free
(sdnscent.transactions.SwitchOrder), step by step through the channel, and
hands failed steps back to the core.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from eventlet import patcher, tpool

from sdnscent.controller import Change, ScentController
from sdnscent.topology import dpid_str
from sdnscent.transactions import SwitchOrder, retry_delay, switches_of, without_trails

from . import ofmsg
from .channel import Channel

LOG = logging.getLogger("sdnscent.app")


class Worker:
    """One thread running queued jobs in order; a failing job is logged and counted."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self.errors = 0

    def submit(self, name: str, job: Callable[[], None]) -> None:
        """Queue `job` (named for the log)."""
        self.jobs.put((name, job))

    def stop(self) -> None:
        """Let the thread end after the jobs queued so far."""
        self.jobs.put(None)

    def run(self) -> None:
        """The thread's loop."""
        while True:
            item = self.jobs.get()
            if item is None:
                return
            self.run_one(*item)

    def run_one(self, name: str, job: Callable[[], None]) -> None:
        """Run one job, surviving its failure."""
        try:
            job()
        except Exception:  # one bad event must not stop the controller
            self.errors += 1
            LOG.exception("job %s failed", name)


class Offload:
    """Runs one pure job at a time on an OS thread, off the worker and the event loop
    (the placement's exact assignment: HiGHS releases the GIL), and hands its answer
    to `done` under the core's lock. A job offered while one runs is refused."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self._busy = False
        self.errors = 0

    def __call__(self, job: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        """Start `job` unless one is running; whether it was taken."""
        if self._busy:
            return False
        self._busy = True
        threading.Thread(target=self._run, args=(job, done), name="sdnscent-solver",
                         daemon=True).start()
        return True

    def _run(self, job: Callable[[], Any], done: Callable[[Any], None]) -> None:
        answer = None
        try:
            answer = tpool.execute(job) if patcher.is_monkey_patched("thread") else job()
        except Exception:  # the period goes on without an exact answer
            self.errors += 1
            LOG.exception("solver job failed")
        try:
            with self._lock:
                done(answer)
        finally:
            self._busy = False


class ChangeRunner:
    """Sends Changes in per-switch order, each on a thread of its own."""

    def __init__(self, ctrl: ScentController, channel: Channel,
                 is_leader: Callable[[], bool], stopping: threading.Event) -> None:
        self.ctrl = ctrl
        self.channel = channel
        self._is_leader = is_leader
        self._stopping = stopping
        self.order = SwitchOrder(_start_thread)
        self._resyncs: dict[int, int] = {}  # dpid -> audits in a row after failed steps
        self.errors = 0

    def execute(self, change: Change, then: Callable[[bool], None] | None = None) -> None:
        """Send `change` when its switches are free; `then(ok)` once it is done.

        Steps go out in order, each confirmed by a barrier on every switch it
        touches. A failed step fails its trails in the core (cleaned up and
        retried there); the change's later steps go on without them. The
        change's callbacks run at the end either way (they leave failed
        trails alone). A standby sends nothing and runs no callbacks.
        """
        leader = self._is_leader()
        if not leader or not change:
            if leader:
                self._callbacks(change)
            if then is not None:
                then(True)
            return

        def run(finished: Callable[[], None]) -> None:
            ok, rest = True, None
            try:
                ok, rest = self._run_steps(change)
                if rest is None:
                    self._callbacks(change)
            except Exception:
                self.errors += 1
                ok = False
                LOG.exception("change failed")
            finally:
                finished()
            if rest is not None:
                self._defer(rest, then)
            elif then is not None:
                then(ok)

        self.order.submit(switches_of(change.steps), run)

    def decide(self, decide: Callable[[], Change]) -> None:
        """Ask the core (under its lock) and send the change it returns."""
        with self.ctrl.lock:
            change = decide()
        self.execute(change)

    def settled(self, dpid: int) -> None:
        """A switch's audit went through: its resync back-off starts over."""
        self._resyncs.pop(dpid, None)

    def _callbacks(self, change: Change) -> None:
        if change.done:
            with self.ctrl.lock:
                for callback in change.done:
                    callback()

    def _defer(self, rest: tuple[float, Change], then: Callable[[bool], None] | None) -> None:
        """Send `rest` after its pause, off the switches' order meanwhile."""
        pause, change = rest

        def later() -> None:
            if not self._stopping.is_set():
                self.execute(change, then)

        timer = threading.Timer(pause, later)
        timer.daemon = True
        timer.start()

    def _run_steps(self, change: Change) -> tuple[bool, tuple[float, Change] | None]:
        """Send the steps of `change`: (False if any failed somewhere, the rest).

        At a pause (packets in flight on an old path must arrive before its
        entries go) the remaining steps and the callbacks are handed back as
        a Change to send after the pause: other changes to these switches need
        not wait for the drain.
        """
        steps = list(change.steps)
        ok = True
        for index in range(len(steps)):
            pause = change.pause_before.get(index, 0.0)
            if pause and index > 0:
                later = {i - index: p for i, p in change.pause_before.items() if i > index}
                return ok, (pause, Change(steps[index:], change.done,
                                          pause_before=later))
            failures = self.channel.run_step(index, steps[index])
            if not failures:
                continue
            ok = False
            with self.ctrl.lock:
                cleanup, verdict = self.ctrl.step_failed(index, steps[index], failures,
                                                         switches_of(change.steps))
            for failure in failures:
                LOG.warning("switch %s: step %d failed: %s%s", dpid_str(failure.dpid),
                            index + 1, failure.reason,
                            f" ({type(failure.op).__name__})" if failure.op else "")
            steps[index + 1:] = without_trails(steps[index + 1:], set(verdict.trails))
            self.execute(cleanup)
            for dpid in verdict.resync:
                self._resync(dpid)
        return ok, None

    def _resync(self, dpid: int) -> None:
        """Audit a switch again after a failed step, with back-off (its port list
        answer starts the audit)."""
        attempt = self._resyncs.get(dpid, 0)
        self._resyncs[dpid] = attempt + 1

        def again() -> None:
            dp = self.channel.datapaths.get(dpid)
            if dp is not None and not self._stopping.is_set():
                self.channel.send(dp, ofmsg.port_desc_request(dp))

        timer = threading.Timer(retry_delay(attempt), again)
        timer.daemon = True
        timer.start()


def _start_thread(run: Callable[[], None]) -> None:
    threading.Thread(target=run, name="sdnscent-change", daemon=True).start()
