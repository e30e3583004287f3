"""`make demo`: sdnscent on a k=4 fat-tree, traffic, the trails that carried it.

Starts a redis-server of its own (when installed; else the in-memory store) and
sdnscent-manager on it, builds the fat-tree in Mininet on Open vSwitch with a
sdnscent-agent in every host, runs pingall and a short iperf3, prints the trails
with their labels and hop switches, set-up figures and the hosts' load, then
tears everything down. `--cli` stops at the Mininet CLI instead of tearing down
right away; `--no-agents` runs on the in-memory store without agents.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

from mininet_tests.harness import (
    REPO,
    ControllerProcess,
    HarnessError,
    ScentNet,
    dump_flows,
    mininet_lock,
    wait_for,
)
from sdnscent.cli import format_trails
from tests.redisproc import REDIS_SERVER, RedisServer, running_redis
from topologies.fattree import FatTreeTopo
from topologies.leafspine import LeafSpineTopo
from topologies.linear import LinearTopo

TOPOS = {"fattree": FatTreeTopo, "leafspine": LeafSpineTopo, "linear": LinearTopo}


def parse_topo(text: str) -> Any:
    """'fattree,4' -> FatTreeTopo(4)."""
    name, *params = text.split(",")
    if name not in TOPOS:
        raise argparse.ArgumentTypeError(f"unknown topology {name!r}; use {', '.join(TOPOS)}")
    try:
        return TOPOS[name](*(int(p) for p in params))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None


def say(text: str) -> None:
    """One progress line."""
    print(f"demo: {text}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def iperf(net: ScentNet, client: str, server: str, seconds: int) -> float:
    """Run iperf3 between two hosts; return Gbit/s received."""
    srv, cli = net.host(server), net.host(client)
    proc = srv.popen(["iperf3", "-s", "-1", "-B", srv.IP()])
    wait_for(lambda: "iperf3" in srv.cmd("ss -ltnp"), 5, "the iperf3 server")
    out = cli.cmd(f"iperf3 -c {srv.IP()} -t {seconds} -J")
    proc.wait(10)
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


@contextlib.contextmanager
def redis(wanted: bool) -> Iterator[RedisServer | None]:
    """A redis-server of the demo's own (None if not wanted or not installed)."""
    if not wanted or REDIS_SERVER is None:
        yield None
        return
    with running_redis("sdnscent-demo-redis-") as server:
        yield server


def start_agents(net: ScentNet, server: RedisServer) -> list[Any]:
    """sdnscent-agent in every host, over Redis' Unix socket (hosts have their own lo)."""
    return [host.popen([sys.executable, "-m", "sdnscent.agent", "--store", server.unix_url,
                        "--node", host.name, "--interval", "1"], cwd=str(REPO))
            for host in net.net.hosts]


def stop_agents(agents: list[Any]) -> None:
    for proc in agents:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in agents:
        with contextlib.suppress(Exception):
            proc.wait(10)


def run(args: argparse.Namespace) -> int:
    """The demo; returns the exit code."""
    with mininet_lock(), redis(args.agents) as server:
        store = ["--store", server.url] if server else []
        say(f"starting sdnscent-manager ({'Redis on ' + server.url if server else 'in-memory'}"
            " store)")
        ctl = ControllerProcess(store)
        net = ScentNet(args.topo, ctl)
        agents: list[Any] = []
        try:
            say(f"building {len(net.switch_names)} switches, {len(args.topo.hosts())} hosts")
            discovered = net.start()
            say(f"controller discovered every link {discovered:.1f} s after it started")
            if server:
                agents = start_agents(net, server)
                say(f"sdnscent-agent running in {len(agents)} hosts")
            loss = net.net.pingAll(timeout=2)
            pingall_at = time.monotonic() - ctl.started
            say(f"pingall: {loss:.0f}% loss, all pairs answered {pingall_at:.1f} s after "
                "controller start")
            hosts = [h.name for h in net.net.hosts]
            gbps = iperf(net, hosts[0], hosts[-1], args.iperf_seconds)
            say(f"iperf3 {hosts[0]} -> {hosts[-1]}: {gbps:.2f} Gbit/s over its trail")
            time.sleep(2.5)  # one counter poll
            trails = ctl.get("/trails")["trails"]
            carried = [t for t in trails if t["packets"] > 0]
            print(format_trails(carried))
            setup = [t["setup_latency_ms"] for t in trails if t["setup_latency_ms"] is not None]
            flows = {sw: len(dump_flows(sw)) for sw in net.switch_names}
            say(f"{len(trails)} trails, {len(carried)} carried traffic; set-up latency "
                f"(packet-in to barrier-confirmed) median {statistics.median(setup):.1f} ms, "
                f"p95 {percentile(setup, 95):.1f} ms")
            say(f"flow entries per switch: min {min(flows.values())}, median "
                f"{statistics.median(flows.values()):.0f}, max {max(flows.values())}")
            if agents:
                nodes = ctl.get("/nodes")["nodes"]
                busiest = max(nodes, key=lambda n: n["cpu"], default=None)
                say(f"host load from the agents: {len(nodes)} of {len(agents)} hosts reporting"
                    + (f"; machine CPU {busiest['cpu'] * 100:.0f}% busy, memory "
                       f"{busiest['memory'] * 100:.0f}%" if busiest else ""))
            if args.cli:
                from mininet.cli import CLI

                say(f"Mininet CLI (try: {hosts[0]} ping {hosts[-1]}, or `sdnscent --api "
                    f"http://127.0.0.1:{ctl.api_port} trails` in another shell); exit to stop")
                CLI(net.net)
            return 0 if loss == 0 else 1
        finally:
            say("tearing down")
            stop_agents(agents)
            try:
                net.stop()
            finally:
                rc = ctl.stop()
            say(f"clean: no bridges or interfaces of the demo left; controller exited {rc}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--topo", type=parse_topo, default="fattree,4",
                        help="fattree,K | leafspine,SPINES,LEAVES[,HOSTS] | linear,N "
                             "(default fattree,4)")
    parser.add_argument("--iperf-seconds", type=int, default=3, help="iperf3 duration (3)")
    parser.add_argument("--cli", action="store_true", help="stop at the Mininet CLI")
    parser.add_argument("--no-agents", dest="agents", action="store_false",
                        help="in-memory store, no sdnscent-agent in the hosts")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except HarnessError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
