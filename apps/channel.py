"""The OpenFlow channel to the switches: per-switch send queues, xids, barriers, dumps.

Every message gets an xid from its datapath. Operations of a change's step
are remembered by xid until the step's barrier reply, so an OFPT_ERROR names
the operation (and so the trail) it refused. Each switch has its own sender
thread: a switch that stops reading fills only its own queue, and a step
waits only for the barriers of the switches it touches.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdnscent.compiler import Op, Step
from sdnscent.flows import FlowSpec
from sdnscent.topology import dpid_str
from sdnscent.transactions import Failure

from . import ofmsg, ofwire

LOG = logging.getLogger("sdnscent.channel")
BARRIER_TIMEOUT = 3.0  # s a switch has to confirm a step
DUMP_TIMEOUT = 5.0  # s to read a switch's flow table back
SEND_QUEUE_MAX = 100_000  # buffers queued for one switch before it counts as dead


class Sender:
    """One switch's outgoing buffers, written by a thread of its own."""

    def __init__(self, dp: Any) -> None:
        self.dp = dp
        self._queue: deque[bytes] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self.overflow = False
        threading.Thread(target=self._run, name=f"sdnscent-send-{dp.id:x}", daemon=True).start()

    def put(self, buf: bytes) -> bool:
        """Queue `buf`; False if the switch is gone or has stopped reading."""
        with self._ready:
            if self._closed or len(self._queue) >= SEND_QUEUE_MAX:
                self.overflow = not self._closed
                return False
            self._queue.append(buf)
            self._ready.notify()
        return True

    def close(self) -> None:
        """Stop the thread; queued buffers are dropped."""
        with self._ready:
            self._closed = True
            self._queue.clear()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                bufs = list(self._queue)
                self._queue.clear()
            try:
                self.dp.send(b"".join(bufs))  # blocks while os-ken's queue is full
            except Exception:  # a socket that died under us: the switch leaves anyway
                LOG.debug("send to %s failed", dpid_str(self.dp.id), exc_info=True)


@dataclass
class StepRun:
    """One switch's part of a step in flight: its xids, errors and barrier."""

    dpid: int
    step: int
    ops: dict[int, Op] = field(default_factory=dict)  # xid -> operation
    failures: list[Failure] = field(default_factory=list)
    confirmed: threading.Event = field(default_factory=threading.Event)


class Channel:
    """Sends messages and operations to the connected switches and matches replies."""

    def __init__(self, count_sent: Callable[[Any, int], None],
                 barrier_timeout: float = BARRIER_TIMEOUT) -> None:
        self.datapaths: dict[int, Any] = {}
        self.barrier_timeout = barrier_timeout
        self._count = count_sent
        self._senders: dict[int, Sender] = {}
        self._lock = threading.Lock()  # xids, in-flight maps
        self._runs: dict[tuple[int, int], StepRun] = {}  # (dpid, barrier xid) -> run
        self._op_xids: dict[tuple[int, int], StepRun] = {}  # (dpid, op xid) -> run
        self._dumps: dict[tuple[int, int], tuple[list[Any], threading.Event]] = {}
        self.errors_unmatched = 0

    # connections -------------------------------------------------------------
    def attach(self, dp: Any) -> None:
        """A switch is ready: give it a sender (replacing an older connection's)."""
        with self._lock:
            old = self._senders.pop(dp.id, None)
            self.datapaths[dp.id] = dp
            self._senders[dp.id] = Sender(dp)
        if old is not None:
            old.close()

    def detach(self, dp: Any) -> bool:
        """A connection closed; True if it was the switch's current one.

        Steps waiting for its barriers fail at once instead of timing out.
        """
        with self._lock:
            if self.datapaths.get(dp.id) is not dp:
                return False
            del self.datapaths[dp.id]
            sender = self._senders.pop(dp.id, None)
            waiting = [run for (dpid, _), run in self._runs.items() if dpid == dp.id]
        if sender is not None:
            sender.close()
        # os-ken's own send thread for this connection waits for a buffer before it
        # notices the socket is gone (and only then reports the switch dead): wake it.
        threading.Thread(target=dp.send, args=(b"",), daemon=True).start()
        for run in waiting:
            run.failures.append(Failure(dp.id, run.step, "connection lost"))
            run.confirmed.set()
        return True

    def closed(self) -> list[Any]:
        """Connections whose socket os-ken has closed (the switch went away) but not
        yet reported: os-ken reports a dead switch only after its send thread wakes."""
        with self._lock:
            dps = list(self.datapaths.values())
        return [dp for dp in dps if getattr(dp, "socket", None) is not None
                and dp.socket.fileno() == -1]

    # sending -----------------------------------------------------------------
    def send(self, dp: Any, msg: Any) -> int | None:
        """Send one os-ken message; its xid, or None if the switch is gone."""
        with self._lock:
            sender = self._senders.get(dp.id)
            xid = dp.set_xid(msg)
        if sender is None:
            return None
        msg.serialize()
        if not sender.put(bytes(msg.buf)):
            return None
        self._count(msg, 1)
        return xid

    def _encode(self, dp: Any, ops: list[Op], run: StepRun | None) -> bytes:
        """Operations as one buffer, each with its own xid (recorded under `run`)."""
        chunks: list[bytes] = []
        flows = 0
        for op in ops:
            if isinstance(op, FlowSpec):
                try:
                    xid = (dp.xid + 1) & dp.ofproto.MAX_XID
                    chunks.append(ofwire.flow_add(op, xid))
                    dp.xid = xid
                    flows += 1
                except ofwire.Unsupported:
                    pass
                else:
                    if run is not None:
                        run.ops[xid] = op
                        self._op_xids[(dp.id, xid)] = run
                    continue
            msg = ofmsg.to_message(dp, op)
            xid = dp.set_xid(msg)
            msg.serialize()
            chunks.append(bytes(msg.buf))
            self._count(msg, 1)
            if run is not None:
                run.ops[xid] = op
                self._op_xids[(dp.id, xid)] = run
        if flows:
            self._count("OFPFlowMod", flows)
        return b"".join(chunks)

    def run_step(self, index: int, step: Step) -> list[Failure]:
        """Send a step's operations and a barrier to each switch; wait for the barriers.

        Returns the failures: refused operations, and switches that did not
        confirm within the barrier timeout. Switches not connected are left
        out (the audit when they come back installs what they lack).
        """
        runs: list[StepRun] = []
        for dpid, ops in step.items():
            with self._lock:
                dp = self.datapaths.get(dpid)
                sender = self._senders.get(dpid)
                if dp is None or sender is None or not ops:
                    continue
                run = StepRun(dpid, index)
                buf = self._encode(dp, ops, run)
                barrier = ofmsg.barrier(dp)
                xid = dp.set_xid(barrier)
                barrier.serialize()
                self._runs[(dpid, xid)] = run
            runs.append(run)
            if not sender.put(buf + bytes(barrier.buf)):
                run.failures.append(Failure(dpid, index, "the switch stopped reading"))
                run.confirmed.set()
            self._count(barrier, 1)
        failures: list[Failure] = []
        for run in runs:
            if not run.confirmed.wait(self.barrier_timeout):
                run.failures.append(Failure(run.dpid, index, "no barrier reply within "
                                            f"{self.barrier_timeout:g} s"))
            failures.extend(run.failures)
        with self._lock:  # nothing of these steps stays in flight
            for run in runs:
                for xid in run.ops:
                    self._op_xids.pop((run.dpid, xid), None)
            for key in [k for k, r in self._runs.items() if any(r is x for x in runs)]:
                del self._runs[key]
        return failures

    # replies -----------------------------------------------------------------
    def barrier_reply(self, dpid: int, xid: int) -> None:
        """A switch confirmed everything sent before barrier `xid`."""
        with self._lock:
            run = self._runs.get((dpid, xid))
        if run is not None:
            run.confirmed.set()

    def error(self, dpid: int, xid: int, reason: str,
              expected: Callable[[Op], bool] = lambda op: False) -> Op | None:
        """A switch refused message `xid`: record it against its step; the refused op.

        `expected(op)` marks refusals that are part of the protocol (a meter
        sent as add and as modify): those fail nothing.
        """
        with self._lock:
            run = self._op_xids.get((dpid, xid))
        if run is None:
            self.errors_unmatched += 1
            return None
        op = run.ops.get(xid)
        if op is not None and not expected(op):
            run.failures.append(Failure(dpid, run.step, reason, op))
        return op

    # reading tables ------------------------------------------------------------
    def dump_flows(self, dp: Any, cookie: int, mask: int,
                   timeout: float = DUMP_TIMEOUT) -> list[Any] | None:
        """Flow stats entries of `dp` whose cookie matches; None without an answer."""
        msg = ofmsg.flow_stats_request(dp, cookie, mask)
        entries: list[Any] = []
        done = threading.Event()
        with self._lock:
            xid = dp.set_xid(msg)
            self._dumps[(dp.id, xid)] = (entries, done)
        self.send_with_xid(dp, msg)
        answered = done.wait(timeout)
        with self._lock:
            self._dumps.pop((dp.id, xid), None)
        return entries if answered else None

    def send_with_xid(self, dp: Any, msg: Any) -> bool:
        """Send a message whose xid is already set."""
        with self._lock:
            sender = self._senders.get(dp.id)
        if sender is None:
            return False
        msg.serialize()
        self._count(msg, 1)
        return sender.put(bytes(msg.buf))

    def flow_stats_reply(self, dpid: int, xid: int, body: list[Any], more: bool) -> bool:
        """Part of a table read back by dump_flows; False if nobody asked for it."""
        with self._lock:
            dump = self._dumps.get((dpid, xid))
        if dump is None:
            return False
        dump[0].extend(body)
        if not more:
            dump[1].set()
        return True

    def in_flight(self) -> int:
        """Operations and barriers awaiting an answer (0 when all is quiet)."""
        with self._lock:
            return len(self._op_xids) + len(self._runs) + len(self._dumps)

