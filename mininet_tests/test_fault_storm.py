"""Fault storm: link flaps, switch restarts, controller kill -9 and Redis restarts,
round after round, under a ping stream and numbered UDP streams both ways.

Fabric: 3 spines x 3 leaves (6 switches), one host per leaf; the streams run
between h1 (leaf s4) and h3 (leaf s6), so their trails cross a spine, and any one
inter-switch link can fail with two other spines left. The controller keeps its
trails in Redis (a redis-server without persistence: after a Redis restart the
controller is expected to write its in-memory state back, docs/store.rst).

Each round (``SDNSCENT_STORM_ROUNDS``, default 2; RNG seed ``SDNSCENT_STORM_SEED``):

- ``link-flap`` x FLAPS: both ends of an inter-switch link ``ip link set down``
  (the first flap of a round picks a link the trails cross, the others any link);
  pings must get through again while it is down; then up again.
- ``switch-restart`` (of a switch the trails cross): the closest thing to a rebooted
  switch the userspace datapath offers without deleting the bridge:
  ``ovs-vsctl del-controller`` (Open vSwitch flushes the flow table of a bridge
  left without controller), ``ovs-ofctl del-flows`` (empty for sure), 1 s off, then
  ``set-controller`` back; the controller must audit it full again. Its ports
  stay up (a real reboot would take its links down too: that is a link flap).
- ``controller-kill``: ``kill -9`` of the controller, a new one on the same ports
  and the same store.
- ``redis-restart``: redis-server stopped by pid, 2 s down, started empty on the
  same port; Redis must hold every trail the controller lists again.

After each event pings must get through again within RECOVERY_S (else the storm
stops there, with the controller's events and log as evidence), every run of lost
UDP datagrams must end within RECOVERY_S, and the h1 <-> h3 trails must be the
same trails (ids) as before the event: a flap moves them, nothing removes them.
Losses are attributed to the event during whose window (its start to the next
event's start) they began. At the end the switches' tables are compared with
GET /trails, and the controller's dry-run audit (GET /api/v1/audit) must report
nothing to fix. A summary table is printed (``pytest -s``); every problem found
is listed in one assertion.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mininet_tests.harness import (
    REPO,
    ControllerProcess,
    HarnessError,
    ScentNet,
    dump_flows,
    ping,
    port_name,
    running_net,
    wait_for,
)
from sdnscent.flows import cookie_trail_id
from sdnscent.store import StoreError, open_store
from tests.redisproc import RedisServer
from topologies.leafspine import LeafSpineTopo

ROUNDS = int(os.environ.get("SDNSCENT_STORM_ROUNDS", "2"))
SEED = int(os.environ.get("SDNSCENT_STORM_SEED", "1"))
FLAPS = 3  # link flaps per round
RATE = 500  # UDP datagrams per second, each way
SIZE = 1000  # bytes per datagram
PING_INTERVAL = 0.05
RECOVERY_S = 10.0  # pings and datagrams get through again within this
LINK_DOWN_S = 2.0
SWITCH_OFF_S = 1.0
REDIS_DOWN_S = 2.0
SETTLE_S = 1.0  # quiet after each event, so its late losses stay in its window
SPINES = LEAVES = 3
SWITCHES = tuple(f"s{n}" for n in range(1, SPINES + LEAVES + 1))
LINK_DIRECTIONS = 2 * SPINES * LEAVES
KINDS = ("link-flap", "switch-restart", "controller-kill", "redis-restart")
UDP_PORTS = {("h1", "h3"): 7001, ("h3", "h1"): 7002}


@pytest.fixture(scope="module")
def snet(redis_server: RedisServer) -> Iterator[ScentNet]:
    """3 spines x 3 leaves, one host per leaf, trails in Redis; h1 <-> h3 set up."""
    with running_net(LeafSpineTopo(spines=SPINES, leaves=LEAVES, hosts_per_leaf=1),
                     controller_args=["--store", redis_server.url]) as net:
        h1, h3 = net.host("h1"), net.host("h3")
        wait_for(lambda: ping(h1, h3.IP()), 20, "h1 -> h3 over a trail", interval=0.5)
        yield net


def udpseq(host: Any, *args: str) -> Any:
    """mininet_tests.udpseq in a Mininet host."""
    return host.popen([sys.executable, "-m", "mininet_tests.udpseq", *args], cwd=str(REPO),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class UdpStream:
    """RATE numbered datagrams per second from `src` to `dst` until `result()`."""

    def __init__(self, src: Any, dst: Any, port: int) -> None:
        self.name = f"{src.name} -> {dst.name}"
        self.receiver = udpseq(dst, "recv", str(port), "--seconds", "3600", "--idle", "2",
                               "--gaps")
        wait_for(lambda: f":{port}" in dst.cmd(f"ss -Hlun sport = :{port}"), 10,
                 f"the udpseq receiver on {dst.name}")
        self.sender = udpseq(src, "send", dst.IP(), str(port), "--rate", str(RATE),
                             "--count", str(RATE * 3600), "--size", str(SIZE))

    def result(self) -> dict[str, Any]:
        """Stop sending; the receiver's counts and lost runs (udpseq --gaps)."""
        self.sender.send_signal(signal.SIGTERM)
        self.sender.wait(10)
        out, err = self.receiver.communicate(timeout=30)
        assert out.strip(), f"udpseq receiver {self.name}: {err.decode()}"
        return json.loads(out.decode())


class PingTimeline:
    """A ping every PING_INTERVAL from `src` until `lost()`; when the lost ones were sent."""

    def __init__(self, src: Any, dst_ip: str) -> None:
        self.wall_minus_mono = time.time() - time.monotonic()
        self.started = time.monotonic()
        # Into a file: a pipe nobody reads fills after ~900 lines and stops ping.
        self.out = tempfile.TemporaryFile()
        self.proc = src.popen(["ping", "-n", "-D", "-i", str(PING_INTERVAL), "-W", "1", dst_ip],
                              stdout=self.out, stderr=subprocess.STDOUT)

    def lost(self) -> tuple[int, list[float]]:
        """(pings sent, monotonic send times of those never answered, estimated)."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(15)
        self.out.seek(0)
        out = self.out.read().decode(errors="replace")
        self.out.close()
        sent = re.search(r"(\d+) packets transmitted", out)
        assert sent, out[-2000:]
        replies = {int(m[2]): float(m[1]) - self.wall_minus_mono for m in re.finditer(
            r"\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+)", out)}
        known = sorted(replies)
        times = []
        for seq in range(1, int(sent[1]) + 1):
            if seq in replies:
                continue
            i = bisect.bisect(known, seq)
            if i:  # the last answered ping before it, plus the interval
                times.append(replies[known[i - 1]] + (seq - known[i - 1]) * PING_INTERVAL)
            elif known:
                times.append(replies[known[0]] - (known[0] - seq) * PING_INTERVAL)
            else:
                times.append(self.started + seq * PING_INTERVAL)
        return int(sent[1]), times


@dataclass
class Event:
    """One injected fault and what it cost."""

    round: int
    kind: str
    detail: str
    start: float  # monotonic
    recovery_s: float = 0.0  # longest wait for pings to get through after a step of it
    udp_lost: int = 0
    udp_gap_s: float = 0.0  # longest run of lost datagrams, s
    ping_lost: int = 0
    trails_before: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    trails_after: str = ""  # what became of the h1 <-> h3 trails
    problems: list[str] = field(default_factory=list)  # UDP runs too long, trails replaced


class StormFailure(AssertionError):
    """An event after which the fabric did not recover."""


class Storm:
    """The faults, on one network, with the evidence to report when one is not survived."""

    def __init__(self, net: ScentNet, redis_server: RedisServer, rng: random.Random) -> None:
        self.net, self.redis, self.rng = net, redis_server, rng
        self.h1, self.h3 = net.host("h1"), net.host("h3")
        self.controllers = [net.ctl]
        self.events: list[Event] = []
        self.links = [(link.intf1.name, link.intf2.name) for link in net.net.links
                      if link.intf1.node in net.net.switches
                      and link.intf2.node in net.net.switches]
        assert len(self.links) == SPINES * LEAVES

    # observing ---------------------------------------------------------------
    def evidence(self) -> str:
        """The controller's last events and the log lines that explain a failure."""
        parts = []
        try:
            events = self.net.ctl.get("/events")["events"][-25:]
            parts.append("last controller events:\n" + "\n".join(
                f"  {e['kind']}: {e['message']}" for e in events))
            trails = [(t["id"], t["src"], t["dst"], t["label"], t["state"])
                      for t in self.trails()]
            parts.append(f"trails (id, src, dst, label, state): {trails}")
        except Exception as exc:  # the controller may be what failed
            parts.append(f"REST unavailable: {exc}")
        for n, ctl in enumerate(self.controllers):
            lines = [line for line in ctl.logs().splitlines()
                     if re.search(r"WARNING|ERROR|Traceback|unknown host|removed|no-path|"
                                  r"store|down", line)]
            parts.append(f"controller #{n} (pid {ctl.proc.pid}) log, notable lines:\n"
                         + "\n".join("  " + line for line in lines[-30:]))
        return "\n".join(parts)

    def trails(self) -> list[dict[str, Any]]:
        """Every trail from REST, with hops."""
        items = self.net.ctl.get("/trails?limit=10000")["trails"]
        return [t if "hops" in t else self.net.ctl.get(f"/trails/{t['id']}") for t in items]

    def trail_links(self) -> list[tuple[str, str]]:
        """The inter-switch links the h1 <-> h3 trails cross now."""
        names = set()
        for trail in self.trails():
            if {trail["src"], trail["dst"]} == {self.h1.IP(), self.h3.IP()}:
                names |= {port_name(self.net, hop["dpid"], hop["out_port"])
                          for hop in trail["hops"][:-1]}
        return [link for link in self.links if set(link) & names]

    def trail_switches(self) -> list[str]:
        """Switches the h1 <-> h3 trails cross now."""
        found = {hop.get("switch") or f"s{int(hop['dpid'], 16)}"
                 for trail in self.trails()
                 if {trail["src"], trail["dst"]} == {self.h1.IP(), self.h3.IP()}
                 for hop in trail["hops"]}
        return sorted(found)

    def audits(self, switch: str) -> int:
        """Audit events of `switch` the running controller recorded."""
        return sum(1 for e in self.net.ctl.get("/events")["events"]
                   if e["kind"] == "audit" and e["message"].startswith(f"switch {switch}:"))

    def whole(self) -> bool:
        """Every switch and link direction known, pings through both trails."""
        view = self.net.ctl.get("/topology")
        return (len(view["switches"]) == len(SWITCHES)
                and len(view["links"]) == LINK_DIRECTIONS
                and ping(self.h1, self.h3.IP(), wait=0.5))

    def recover(self, event: Event, check: Callable[[], Any], what: str) -> None:
        """Wait up to RECOVERY_S for `check`; else fail naming the event, with evidence."""
        since = time.monotonic()
        try:
            wait_for(check, RECOVERY_S, what, interval=0.05)
        except HarnessError as exc:
            raise StormFailure(f"round {event.round} {event.kind} ({event.detail}): {exc}\n"
                               f"{self.evidence()}") from None
        event.recovery_s = max(event.recovery_s, time.monotonic() - since)

    def pair_trails(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(src, dst) -> (id, label) of the h1 <-> h3 trails."""
        return {(t["src"], t["dst"]): (t["id"], t["label"]) for t in self.trails()
                if {t["src"], t["dst"]} == {self.h1.IP(), self.h3.IP()}}

    def begin(self, round_: int, kind: str, detail: str) -> Event:
        event = Event(round_, kind, detail, time.monotonic(), trails_before=self.pair_trails())
        self.events.append(event)
        print(f"round {round_} {kind}: {detail}", flush=True)
        return event

    def kept(self, event: Event) -> None:
        """Note what became of the h1 <-> h3 trails; a replaced one is a problem."""
        after = self.pair_trails()
        notes = []
        for pair, (old_id, old_label) in sorted(event.trails_before.items()):
            new_id, new_label = after.get(pair, (None, None))
            if new_id == old_id:
                notes.append(f"{old_id} {'kept' if new_label == old_label else 'moved'}")
                continue
            why = [e["message"] for e in self.net.ctl.get("/events")["events"]
                   if e["trail"] == old_id and e["kind"] == "trail-removed"]
            notes.append(f"{old_id} REPLACED by {new_id}")
            event.problems.append(f"trail {old_id} {pair[0]} -> {pair[1]} replaced by trail "
                                  f"{new_id}; the controller logged: {why or 'no removal'}")
        event.trails_after = ", ".join(notes)

    # faults --------------------------------------------------------------------
    def link_flap(self, round_: int, on_trail: bool) -> None:
        link = self.rng.choice(self.trail_links() if on_trail else self.links)
        crossed = link in self.trail_links()
        event = self.begin(round_, "link-flap",
                           f"{link[0]} <-> {link[1]}{' (on the trail)' if crossed else ''}")
        for intf in link:
            subprocess.run(["ip", "link", "set", "dev", intf, "down"], check=True)
        down = time.monotonic()
        self.recover(event, lambda: ping(self.h1, self.h3.IP(), wait=0.5),
                     "pings while the link is down")
        time.sleep(max(0.0, LINK_DOWN_S - (time.monotonic() - down)))
        for intf in link:
            subprocess.run(["ip", "link", "set", "dev", intf, "up"], check=True)
        self.recover(event, self.whole, "the link back in /topology and pings through")
        self.kept(event)

    def switch_restart(self, round_: int) -> None:
        switch = self.rng.choice(self.trail_switches())
        event = self.begin(round_, "switch-restart",
                           f"{switch}: del-controller, del-flows, {SWITCH_OFF_S:.0f} s, "
                           "set-controller")
        audits = self.audits(switch)
        subprocess.run(["ovs-vsctl", "--timeout=10", "del-controller", switch], check=True)
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", switch], check=True)
        time.sleep(SWITCH_OFF_S)
        subprocess.run(["ovs-vsctl", "--timeout=10", "set-controller", switch,
                        f"tcp:127.0.0.1:{self.net.ctl.ofp_port}"], check=True)
        self.recover(event, lambda: self.audits(switch) > audits and self.whole(),
                     f"{switch} reconnected, audited, pings through")
        self.kept(event)

    def controller_kill(self, round_: int, store_url: str) -> None:
        old = self.net.ctl
        event = self.begin(round_, "controller-kill", f"kill -9 of pid {old.proc.pid}, "
                           "a new controller on its ports and store")
        old.proc.kill()
        old.proc.wait(5)
        new = ControllerProcess(["--store", store_url], ofp_port=old.ofp_port,
                                api_port=old.api_port)
        self.net.ctl = new
        self.controllers.append(new)
        self.recover(event, lambda: all(self.audits(s) for s in SWITCHES) and self.whole(),
                     "every switch audited by the new controller, pings through")
        self.kept(event)

    def redis_restart(self, round_: int) -> None:
        event = self.begin(round_, "redis-restart",
                           f"redis-server pid {self.redis.proc and self.redis.proc.pid} "
                           f"stopped, {REDIS_DOWN_S:.0f} s down, started empty")
        self.redis.stop()
        time.sleep(REDIS_DOWN_S)
        self.redis.start()
        self.recover(event, lambda: self.net.ctl.get("/controller")["store_status"]["healthy"],
                     "the controller's store healthy again")
        self.recover(event, self.stored_like_controller,
                     "Redis holding every trail the controller lists (written back)")
        self.recover(event, self.whole, "pings through")
        self.kept(event)

    def stored_like_controller(self) -> bool:
        """True if Redis holds every trail (id, label) the controller lists."""
        listed = {(t["id"], t["label"]) for t in self.trails()}
        try:
            store = open_store(self.redis.url)
        except StoreError:
            return False
        try:
            stored = {(t.id, t.label) for t in store.all()}
        finally:
            store.close()
        return bool(listed) and listed <= stored


def attribute(storm: Storm, udp: list[dict[str, Any]], ping_times: list[float]) -> Event:
    """Charge every UDP run and lost ping to the event whose window it began in.

    Returns the pseudo-event "baseline" with what was lost before the first event.
    """
    baseline = Event(0, "baseline", "before the first event", 0.0)
    starts = [e.start - 0.05 for e in storm.events]

    def owner(t: float | None) -> Event:
        i = bisect.bisect(starts, t) if t is not None else 0
        return storm.events[i - 1] if i else baseline

    for result in udp:
        for first, last, before, after in result["gaps"]:
            event = owner(before)
            event.udp_lost += last - first + 1
            if before is None or after is None:
                event.problems.append(f"{result['name']}: datagrams {first}..{last} "
                                       f"{'never followed' if after is None else 'at the start'}")
                continue
            event.udp_gap_s = max(event.udp_gap_s, after - before)
            if after - before > RECOVERY_S:
                event.problems.append(f"{result['name']}: datagrams {first}..{last} lost "
                                       f"for {after - before:.1f} s")
    for t in ping_times:
        owner(t).ping_lost += 1
    return baseline


def flows_against_trails(storm: Storm) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Per switch, trail entries missing, unknown (no such trail/label/hop) and wrong.

    Expected: each hop's label entry in table 1 (cookie of its trail, output to the
    hop's port) and the ingress classifier in table 0 (pushing the label).
    """
    names = {sw["dpid"]: sw["name"] for sw in storm.net.ctl.get("/topology")["switches"]}
    trails = {t["id"]: t for t in storm.trails()}
    tables = {sw: dump_flows(sw) for sw in SWITCHES}
    # a protected hop outputs into a fast-failover group: its first bucket outputs
    first_buckets = {sw: dict(re.findall(
        r"group_id=(\d+),type=ff,bucket=watch_port:\d+,actions=([^,]+)",
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-names", "dump-groups", sw],
                       check=True, capture_output=True, text=True).stdout)) for sw in SWITCHES}
    counts = {sw: {"missing": 0, "unknown": 0, "wrong": 0} for sw in SWITCHES}
    problems = [] if trails else ["GET /trails lists no trail at all"]

    def entry(line: str) -> tuple[int | None, int, int | None, str]:
        """(trail id, table, matched label, actions) of a dump-flows line."""
        match, _, actions = line.partition("actions=")
        cookie, table, label = (re.search(pattern, match) for pattern in (
            r"cookie=(0x[0-9a-f]+)", r"table=(\d+)", r"mpls_label=(\d+)"))
        assert cookie and table, line
        return (cookie_trail_id(int(cookie[1], 16)), int(table[1]),
                int(label[1]) if label else None, actions)

    expected: set[tuple[str, int, int, int | None]] = set()  # (switch, trail, table, label)
    for trail in trails.values():
        hops = trail["hops"]
        for n, hop in enumerate(hops):
            sw = names[hop["dpid"]]
            if n == 0:
                expected.add((sw, trail["id"], 0, None))
            if len(hops) > 1:
                expected.add((sw, trail["id"], 1, trail["label"]))
    found: set[tuple[str, int, int, int | None]] = set()
    for sw, lines in tables.items():
        for line in lines:
            trail_id, table, label, actions = entry(line)
            if trail_id is None:
                continue
            key = (sw, trail_id, table, label if table == 1 else None)
            if key not in expected:
                counts[sw]["unknown"] += 1
                problems.append(f"{sw}: unknown {line}")
                continue
            found.add(key)
            trail = trails[trail_id]
            hop = next(h for h in trail["hops"] if names[h["dpid"]] == sw)
            want = (f"set_field:{trail['label']}->mpls_label"
                    if table == 0 and len(trail["hops"]) > 1 else f"output:{hop['out_port']}")
            group = re.fullmatch(r"group:(\d+)", actions.strip())
            if group is not None:
                actions = first_buckets[sw].get(group[1], actions)
            if want not in actions:
                counts[sw]["wrong"] += 1
                problems.append(f"{sw}: trail {trail_id} wants {want}: {line}")
    for sw, trail_id, table, label in sorted(expected - found, key=str):
        counts[sw]["missing"] += 1
        problems.append(f"{sw}: trail {trail_id} has no table-{table} entry"
                        + (f" for label {label}" if label is not None else ""))
    return counts, problems


def dry_run_audit(storm: Storm) -> dict[str, Any] | str:
    """GET /api/v1/audit, or why it could not be read."""
    try:
        return storm.net.ctl.get("/audit")
    except urllib.error.HTTPError as exc:
        return f"GET /api/v1/audit answered {exc.code}: {exc.read().decode(errors='replace')}"


def summary(storm: Storm, baseline: Event, rounds: int, sent: dict[str, int],
            stale: str) -> str:
    """The per-kind table (and per event) the test prints."""
    rows = [f"fault storm: seed {SEED}, {rounds} round(s), {RATE} datagrams/s each way "
            f"(h1 <-> h3, sent: {sent}), a ping every {PING_INTERVAL * 1000:.0f} ms h1 -> h3",
            "gap s: longest run of lost datagrams; recov s: longest wait after a step of an "
            "event (link down/up, reconnect, new controller, Redis up) for its checks",
            f"{'kind':<16}{'events':>7}{'udp lost':>10}{'max/ev':>8}{'ping lost':>11}"
            f"{'max/ev':>8}{'gap s':>8}{'recov s':>9}",
            f"{'baseline':<16}{'-':>7}{baseline.udp_lost:>10}{'-':>8}{baseline.ping_lost:>11}"
            f"{'-':>8}{baseline.udp_gap_s:>8.2f}{'-':>9}"]
    for kind in KINDS:
        evs = [e for e in storm.events if e.kind == kind]
        if not evs:
            rows.append(f"{kind:<16}{0:>7}")
            continue
        rows.append(f"{kind:<16}{len(evs):>7}{sum(e.udp_lost for e in evs):>10}"
                    f"{max(e.udp_lost for e in evs):>8}{sum(e.ping_lost for e in evs):>11}"
                    f"{max(e.ping_lost for e in evs):>8}{max(e.udp_gap_s for e in evs):>8.2f}"
                    f"{max(e.recovery_s for e in evs):>9.2f}")
    rows.append("per event:")
    rows += [f"  r{e.round} {e.kind:<16} udp lost {e.udp_lost:>5}  ping lost {e.ping_lost:>3}"
             f"  gap {e.udp_gap_s:5.2f} s  recov {e.recovery_s:5.2f} s  {e.detail}; "
             f"trails {e.trails_after or '?'}" for e in storm.events]
    rows.append(f"stale entries: {stale}")
    return "\n".join(rows)


def test_fabric_recovers_from_every_fault_of_the_storm(snet: ScentNet,
                                                       redis_server: RedisServer) -> None:
    """ROUNDS rounds of faults under traffic; every loss counted; nothing left stale."""
    storm = Storm(snet, redis_server, random.Random(SEED))
    h1, h3 = storm.h1, storm.h3
    assert ping(h3, h1.IP())
    streams = [UdpStream(snet.host(a), snet.host(b), port) for (a, b), port in UDP_PORTS.items()]
    pings = PingTimeline(h1, h3.IP())
    began = time.monotonic()
    time.sleep(2.0)  # baseline
    failure: BaseException | None = None
    try:
        for round_ in range(1, ROUNDS + 1):
            for n in range(FLAPS):
                storm.link_flap(round_, on_trail=n == 0)
                time.sleep(SETTLE_S)
            storm.switch_restart(round_)
            time.sleep(SETTLE_S)
            storm.controller_kill(round_, redis_server.url)
            time.sleep(SETTLE_S)
            storm.redis_restart(round_)
            time.sleep(SETTLE_S)
    except Exception as exc:  # report what the storm cost so far, then fail with it
        failure = exc
    finally:
        elapsed = time.monotonic() - began
        udp = []
        for stream in streams:
            result = stream.result()
            result["name"] = stream.name
            udp.append(result)
        ping_sent, ping_times = pings.lost()
        baseline = attribute(storm, udp, ping_times)
        sent = {r["name"]: r["highest"] + 1 for r in udp}
        sent["ping"] = ping_sent

    found = [f"r{e.round} {e.kind} ({e.detail}): {p}" for e in storm.events for p in e.problems]
    found += [f"before the first event: {p}" for p in baseline.problems]
    per_s = {"ping": 1 / PING_INTERVAL, **{r["name"]: RATE for r in udp}}
    found += [f"the {name} stream sent only {n} in {elapsed:.0f} s: it stopped early"
              for name, n in sent.items() if n < 0.8 * per_s[name] * elapsed]
    stale = "not checked (the storm stopped)"
    if failure is None:
        counts, mismatches = flows_against_trails(storm)
        found += [f"flow tables vs GET /trails: {m}" for m in mismatches]
        total = {k: sum(c[k] for c in counts.values()) for k in ("missing", "unknown", "wrong")}
        audit = dry_run_audit(storm)
        stale = f"flow tables vs GET /trails: {sum(total.values())} {total}; GET /audit: "
        if isinstance(audit, str):
            found.append(audit)
            stale += audit.splitlines()[0][:120]
        else:
            stale += f"{audit.get('stale')} stale on {len(audit.get('switches', {}))} switches"
            clean = {"missing": 0, "unknown": 0, "wrong": 0}
            dpids = {f"{n:016x}" for n in range(1, len(SWITCHES) + 1)}
            if (audit.get("stale") != 0 or set(audit.get("switches", {})) != dpids
                    or any({k: v.get(k) for k in clean} != clean
                           for v in audit["switches"].values())
                    or audit.get("unread")):
                found.append(f"GET /api/v1/audit has entries to fix: {audit}")
    rounds = max((e.round for e in storm.events), default=0)
    print("\n" + summary(storm, baseline, rounds, sent, stale), flush=True)
    if found:
        print("problems:\n" + "\n".join(found), flush=True)
    if failure is not None:
        raise failure
    assert not found, "the storm left problems:\n" + "\n".join(found)
