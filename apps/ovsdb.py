"""OVSDB southbound: write Interface columns (``mtu_request``, ``bfd``, ...) of the switches.

The controller knows a switch by its datapath id and a port by its OpenFlow
number; OVSDB knows rows. ``OvsdbSouthbound`` keeps one replica (Open vSwitch
Python IDL) per remote, finds the Bridge whose ``datapath_id`` is the dpid and
the Interface whose ``ofport`` is the port, and commits changes, waiting for the
server's answer. Every call is bounded by ``timeout`` and serialised by one
lock, so worker threads may share an instance (never call it from the OpenFlow
event thread: a call may block for up to ``timeout`` seconds).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import ovs.jsonrpc
import ovs.poller
import ovs.stream
import ovs.util
from ovs.db.idl import Idl, Row, SchemaHelper, Transaction

from sdnscent.mtu import link_port_mtus
from sdnscent.topology import dpid_str

DATABASE = "Open_vSwitch"
# The replicated part of the schema; set_interface_options may write MAP_COLUMNS.
COLUMNS = {"Open_vSwitch": ["bridges"],
           "Bridge": ["name", "datapath_id", "ports"],
           "Port": ["name", "interfaces"],
           "Interface": ["name", "ofport", "mtu_request", "bfd", "options", "other_config",
                         "external_ids"]}
MAP_COLUMNS = ("bfd", "options", "other_config", "external_ids")

LOG = logging.getLogger("sdnscent.ovsdb")


class OvsdbError(Exception):
    """An OVSDB remote could not be reached or asked, or lacks the switch or port."""

    def __init__(self, target: str, what: str) -> None:
        super().__init__(f"OVSDB {target}: {what}")
        self.target = target


def _left_ms(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


def fetch_schema(target: str, timeout: float) -> dict[str, Any]:
    """The Open_vSwitch schema as ``target``'s server has it (get_schema)."""
    deadline = time.monotonic() + timeout
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(target),
                                                 _left_ms(deadline))
    if error:
        raise OvsdbError(target, f"cannot connect: {os.strerror(error)}")
    rpc = ovs.jsonrpc.Connection(stream)
    try:
        request = ovs.jsonrpc.Message.create_request("get_schema", [DATABASE])
        error = rpc.send(request)
        while not error:
            error, reply = rpc.recv()
            if error == errno.EAGAIN:
                if not _left_ms(deadline):
                    raise OvsdbError(target, f"no answer to get_schema within {timeout:.3g} s")
                rpc.run()
                poller = ovs.poller.Poller()
                rpc.wait(poller)
                rpc.recv_wait(poller)
                poller.timer_wait(_left_ms(deadline))
                poller.block()
                error = 0
            elif reply is not None and reply.id == request.id:
                if reply.type != ovs.jsonrpc.Message.T_REPLY:
                    raise OvsdbError(target, f"get_schema {DATABASE} failed: {reply.error}")
                return reply.result
        reason = "connection closed" if error == ovs.util.EOF else os.strerror(error)
        raise OvsdbError(target, f"get_schema {DATABASE} failed: {reason}")
    finally:
        rpc.close()


class OvsdbSouthbound:
    """Interface settings of switches, found by dpid and OpenFlow port, over OVSDB.

    ``targets`` are OVSDB remotes (``unix:/var/run/openvswitch/db.sock``,
    ``tcp:10.0.0.1:6640``); a dpid is looked up on each until one has its bridge.
    """

    def __init__(self, targets: Sequence[str], timeout: float = 5.0) -> None:
        if not targets:
            raise ValueError("OvsdbSouthbound needs at least one OVSDB target")
        self.targets = list(targets)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._idls: dict[str, Idl] = {}
        self._where: dict[int, str] = {}  # dpid -> target that had its bridge

    def close(self) -> None:
        """Drop every connection (a later call connects again)."""
        with self._lock:
            for idl in self._idls.values():
                idl.close()
            self._idls.clear()

    def __enter__(self) -> OvsdbSouthbound:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # queries ----------------------------------------------------------------
    def find_bridge(self, dpid: int) -> tuple[str, str]:
        """``(target, bridge name)`` of the bridge with this datapath id."""
        with self._lock:
            target, _idl, bridge = self._locate(dpid, self._deadline())
            return target, bridge.name

    def find_interface(self, dpid: int, port: int) -> str:
        """Name of the Interface that is OpenFlow port ``port`` of switch ``dpid``."""
        with self._lock:
            target, _idl, bridge = self._locate(dpid, self._deadline())
            return self._interface(target, bridge, dpid, port).name

    # changes ----------------------------------------------------------------
    def set_mtu(self, dpid: int, ports: Iterable[int], mtu: int) -> dict[int, int]:
        """Set ``mtu_request`` of these ports to ``mtu``; return ``{port: mtu}`` of those changed.

        No transaction is sent when every port already has it.
        """
        if isinstance(mtu, bool) or not isinstance(mtu, int) or mtu < 1:
            raise ValueError(f"MTU {mtu!r} is not a positive whole number")
        def want(row: Row) -> list[int] | None:
            return None if row.mtu_request == [mtu] else [mtu]

        changed = self._update(dpid, ports, "mtu_request", want)
        return {port: mtu for port in changed}

    def set_interface_options(self, dpid: int, port: int, column: str,
                              mapping: Mapping[str, str | None]) -> dict[str, str | None]:
        """Merge ``mapping`` into a map column of the port's Interface (``bfd``, ``options``...).

        A ``None`` value deletes its key; other keys of the column are kept.
        Return the entries that changed (``{}``: nothing to do, no transaction).
        Example: ``set_interface_options(dpid, 3, "bfd", {"enable": "true", "min_tx": "100"})``.
        """
        if column not in MAP_COLUMNS:
            raise ValueError(f"column {column!r} is not one of {', '.join(MAP_COLUMNS)}")
        for key, value in mapping.items():
            if not isinstance(key, str) or not (value is None or isinstance(value, str)):
                raise TypeError(f"{column}:{key!r}={value!r}: keys and values must be strings "
                                "(None deletes the key)")
        delta: dict[str, str | None] = {}

        def want(row: Row) -> dict[str, str] | None:
            current: dict[str, str] = getattr(row, column)
            delta.clear()
            delta.update((k, v) for k, v in mapping.items() if current.get(k) != v)
            if not delta:
                return None
            new = {**current, **delta}
            return {k: v for k, v in new.items() if v is not None}

        return delta if self._update(dpid, [port], column, want) else {}

    # internals --------------------------------------------------------------
    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _update(self, dpid: int, ports: Iterable[int], column: str,
                want: Callable[[Row], Any]) -> list[int]:
        """Write ``want(row)`` (None: unchanged) into ``column`` of each port's Interface."""
        ports = list(dict.fromkeys(ports))
        with self._lock:
            deadline = self._deadline()
            while True:
                target, idl, bridge = self._locate(dpid, deadline)
                rows = {p: self._interface(target, bridge, dpid, p) for p in ports}
                values = {p: v for p, row in rows.items() if (v := want(row)) is not None}
                if not values:
                    return []
                txn = Transaction(idl)
                txn.add_comment(f"sdnscent: {column} of {dpid_str(dpid)} ports {sorted(values)}")
                for port, value in values.items():
                    rows[port].verify(column)  # someone else wrote it meanwhile: try again
                    setattr(rows[port], column, value)
                status = self._commit(target, idl, txn, deadline)
                if status == Transaction.SUCCESS:
                    return list(values)
                if status != Transaction.TRY_AGAIN or not _left_ms(deadline):
                    raise OvsdbError(target, f"setting {column} of {dpid_str(dpid)} failed: "
                                             f"{status} {txn.get_error() or ''}".rstrip())

    def _commit(self, target: str, idl: Idl, txn: Transaction, deadline: float) -> str:
        """Commit and wait for the server's answer; a status other than INCOMPLETE."""
        while True:
            status = txn.commit()
            if status != Transaction.INCOMPLETE:
                return status
            if not _left_ms(deadline):
                txn.abort()
                raise OvsdbError(target, f"no answer to a transaction within {self.timeout:.3g} s")
            idl.run()
            poller = ovs.poller.Poller()
            idl.wait(poller)
            txn.wait(poller)
            poller.timer_wait(min(_left_ms(deadline), 100))
            poller.block()

    def _replica(self, target: str, deadline: float) -> Idl:
        """``target``'s IDL, holding every change the server committed before this call."""
        idl = self._idls.get(target)
        if idl is None:
            helper = SchemaHelper(schema_json=fetch_schema(target, deadline - time.monotonic()))
            for table, columns in COLUMNS.items():
                helper.register_columns(table, columns)
            idl = self._idls[target] = Idl(target, helper)
        while True:
            idl.run()
            if idl.state == idl.IDL_S_MONITORING:
                # A read barrier: the server sends pending updates before this reply.
                roots = list(idl.tables["Open_vSwitch"].rows.values())
                if not roots:
                    return idl
                txn = Transaction(idl)
                roots[0].fetch("bridges")
                if self._commit(target, idl, txn, deadline) == Transaction.SUCCESS:
                    return idl
            if not _left_ms(deadline):
                raise OvsdbError(target, f"no replica of {DATABASE} within {self.timeout:.3g} s")
            poller = ovs.poller.Poller()
            idl.wait(poller)
            poller.timer_wait(min(_left_ms(deadline), 100))
            poller.block()

    def _locate(self, dpid: int, deadline: float) -> tuple[str, Idl, Row]:
        """The target, replica and Bridge row of switch ``dpid``."""
        known = self._where.get(dpid)
        order = sorted(self.targets, key=lambda t: (t != known, t not in self._idls))
        failed: list[OvsdbError] = []
        for target in order:
            try:
                idl = self._replica(target, deadline)
            except OvsdbError as exc:
                failed.append(exc)
                if target in self._idls:  # connect afresh next time, after the live ones
                    self._idls.pop(target).close()
                continue
            for bridge in idl.tables["Bridge"].rows.values():
                if bridge.datapath_id == [dpid_str(dpid)]:
                    self._where[dpid] = target
                    return target, idl, bridge
        if len(failed) == 1 and len(self.targets) == 1:
            raise failed[0]
        unreachable = "".join(f"; {exc}" for exc in failed)
        raise OvsdbError(", ".join(self.targets),
                         f"no bridge has datapath_id {dpid_str(dpid)}{unreachable}")

    @staticmethod
    def _interface(target: str, bridge: Row, dpid: int, port: int) -> Row:
        for port_row in bridge.ports:
            for iface in port_row.interfaces:
                if iface.ofport == [port]:
                    return iface
        raise OvsdbError(target, f"bridge {bridge.name} ({dpid_str(dpid)}) has no interface "
                                 f"with ofport {port}")


class MtuKeeper:
    """Sets ``mtu_request`` on both ends of each link LLDP finds, on a thread of its own.

    OVSDB calls may block for the southbound's timeout: they never run on the
    OpenFlow threads or the worker. An end that fails is tried again the next
    time LLDP sees its link.
    """

    def __init__(self, southbound: OvsdbSouthbound, link_mtu: int,
                 link_of: Callable[[int, int], tuple[tuple[int, int], tuple[int, int]] | None],
                 record: Callable[[str], None],
                 bfd: Mapping[str, str | None] | None = None) -> None:
        """`link_of(dpid, port)`: the link leaving that port as its two ends, or None.
        `bfd`: the Interface ``bfd`` column both ends get too (None: left alone)."""
        self.southbound = southbound
        self.link_mtu = link_mtu
        self.bfd = dict(bfd) if bfd else None
        self._link_of = link_of
        self._record = record
        self._jobs: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self._done: set[tuple[int, int]] = set()

    def seen(self, *ends: tuple[int, int]) -> None:
        """LLDP crossed a link with these ends: set their MTU unless done already."""
        for end in ends:
            if end not in self._done:
                self._done.add(end)
                self._jobs.put(end)

    def stop(self) -> None:
        """End the thread; close the OVSDB connections."""
        self._jobs.put(None)
        self.southbound.close()

    def run(self) -> None:
        """The thread's loop."""
        while True:
            end = self._jobs.get()
            if end is None:
                return
            link = self._link_of(*end)
            if self.bfd is not None and link is not None:
                self._set_bfd(end, link)
            if not self.link_mtu:
                continue
            for dpid, ports in link_port_mtus([link] if link else [], self.link_mtu).items():
                try:
                    changed = self.southbound.set_mtu(dpid, sorted(ports), self.link_mtu)
                except OvsdbError as exc:
                    LOG.warning("mtu_request not set on %s: %s", dpid_str(dpid), exc)
                    self._done.discard(end)  # the next LLDP sighting tries again
                    continue
                if changed:
                    self._record(f"{dpid_str(dpid)}: mtu_request {self.link_mtu} on ports "
                                 f"{sorted(changed)}")

    def _set_bfd(self, end: tuple[int, int],
                 link: tuple[tuple[int, int], tuple[int, int]]) -> None:
        """BFD on both ends of a link (docs/protection.rst)."""
        assert self.bfd is not None
        for dpid, port in link:
            try:
                changed = self.southbound.set_interface_options(dpid, port, "bfd", self.bfd)
            except OvsdbError as exc:
                LOG.warning("bfd not set on %s port %d: %s", dpid_str(dpid), port, exc)
                self._done.discard(end)
                continue
            if changed:
                self._record(f"{dpid_str(dpid)}: bfd {self.bfd} on port {port}")
