"""Run the real thing: sdnscent-manager as a process, Mininet on Open vSwitch.

One Mininet run at a time per machine: `mininet_lock` holds a file lock for
the whole run. Cleanup touches only what this run created (its controller
process by pid, its bridges and interfaces by name).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from scapy.utils import rdpcap

PR_SET_PDEATHSIG = 1
LOCK_FILE = "/run/lock/sdnscent-mininet.lock"
CORE_MTU = 1600  # inter-switch links: host MTU 1500 + 4 bytes per MPLS label, with margin
REPO = Path(__file__).resolve().parent.parent


class HarnessError(RuntimeError):
    """The test bed could not be brought up."""


@contextlib.contextmanager
def mininet_lock(timeout: float = 1800.0) -> Iterator[None]:
    """Hold the machine-wide Mininet lock (waits for other runs to finish)."""
    Path(LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{LOCK_FILE} held by another Mininet run") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; raise naming `what`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # keep polling; report the last failure
            last_exc = exc
        time.sleep(interval)
    raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}"
                       + (f" (last error: {last_exc})" if last_exc else ""))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def datapath_type() -> str:
    """'system' where the openvswitch kernel module is loaded, else 'user'."""
    return "system" if Path("/sys/module/openvswitch").exists() else "user"


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, however it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ControllerProcess:
    """sdnscent-manager started as a child process on loopback ports."""

    def __init__(self, extra_args: list[str] | None = None, ofp_port: int | None = None,
                 api_port: int | None = None) -> None:
        # A restarted controller takes its predecessor's ports, so switches reconnect.
        self.ofp_port = ofp_port or free_port()
        self.api_port = api_port or free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="sdnscent-ctl-", suffix=".log",
                                               delete=False)
        cmd = [sys.executable, "-m", "sdnscent.apps.manager",
               "--ofp-listen-host", "127.0.0.1",
               "--ofp-tcp-listen-port", str(self.ofp_port),
               "--api-listen", f"127.0.0.1:{self.api_port}",
               "--log-level", "INFO", *(extra_args or [])]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=REPO, preexec_fn=_die_with_parent)
        wait_for(lambda: self._alive() and port_open(self.ofp_port) and port_open(self.api_port),
                 20, "the controller's OpenFlow and REST ports")

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise HarnessError(f"controller exited with {self.proc.returncode}:\n{self.logs()}")
        return True

    @property
    def api(self) -> str:
        """Base URL of the REST API."""
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def get(self, path: str) -> Any:
        """GET a REST path and decode its JSON."""
        with urllib.request.urlopen(self.api + path, timeout=5) as resp:
            return json.load(resp)

    def logs(self) -> str:
        """What the controller wrote so far."""
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> int:
        """Ctrl-C the controller; return its exit code (killed after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _ovs(*args: str) -> str:
    return subprocess.run(["ovs-vsctl", "--timeout=10", *args], check=True,
                          capture_output=True, text=True).stdout


def bridges() -> set[str]:
    """Bridges Open vSwitch has now."""
    return set(_ovs("list-br").split())


def interfaces() -> set[str]:
    """Network interfaces in the root namespace."""
    return set(os.listdir("/sys/class/net"))


def ensure_ovs() -> None:
    """Fail early and clearly when Open vSwitch is not running."""
    try:
        _ovs("show")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise HarnessError("Open vSwitch is not running: run `make setup` first") from exc


def _remote_controller_class() -> Any:
    from mininet.node import RemoteController

    class Remote(RemoteController):
        """RemoteController without Mininet's port probe: it telnets to the port and
        decodes the OpenFlow hello as UTF-8, which fails when the random xid is not
        valid UTF-8. ControllerProcess already waited for the port."""

        def checkListening(self) -> None:
            return None

    return Remote


def _Remote(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - stands for a class
    return _remote_controller_class()(*args, **kwargs)


class ScentNet:
    """A Mininet network of one topology driven by a ControllerProcess."""

    def __init__(self, topo: Any, ctl: ControllerProcess) -> None:
        from mininet.net import Mininet
        from mininet.node import OVSSwitch

        ensure_ovs()
        self.topo = topo
        self.ctl = ctl
        self.switch_names = list(topo.switches())
        leftovers = bridges() & set(self.switch_names)
        for name in leftovers:  # ours, from a run that crashed before cleanup
            _ovs("--if-exists", "del-br", name)
        self.interfaces_before = interfaces()
        self.net = Mininet(
            topo=topo,
            switch=partial(OVSSwitch, datapath=datapath_type(), protocols="OpenFlow13"),
            controller=partial(_Remote, ip="127.0.0.1", port=ctl.ofp_port),
            autoSetMacs=False, autoStaticArp=False, cleanup=False, waitConnected=False)
        self.started = False
        self.discovery_s = 0.0
        self.workdir: Path | None = None
        self.policy_path: Path | None = None

    def start(self, discovery_timeout: float = 60.0) -> float:
        """Start the network; return seconds until the controller saw all links."""
        self.net.start()
        self.started = True
        for switch in self.net.switches:
            for intf in switch.intfList():
                if intf.name != "lo":  # the root-side veth ends chatter IPv6 otherwise
                    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{intf.name}.disable_ipv6=1"],
                                   capture_output=True)
        for link in self.net.links:
            if all(intf.node in self.net.switches for intf in (link.intf1, link.intf2)):
                for intf in (link.intf1, link.intf2):
                    # Room for trail labels: a 1500-byte host frame plus MPLS shims.
                    subprocess.run(["ip", "link", "set", "dev", intf.name, "mtu",
                                    str(CORE_MTU)], check=True)
        for host in self.net.hosts:
            # TCP through the userspace datapath stalls on veth with tx offload on.
            host.cmd(f"ethtool -K {host.defaultIntf()} tx off")
        expected_links = 2 * sum(1 for a, b in self.topo.links()
                                 if self.topo.isSwitch(a) and self.topo.isSwitch(b))

        def discovered() -> bool:
            view = self.ctl.get("/topology")
            return (len(view["switches"]) == len(self.switch_names)
                    and len(view["links"]) == expected_links)

        wait_for(discovered, discovery_timeout, f"{len(self.switch_names)} switches and "
                 f"{expected_links} link directions in /topology", interval=0.2)
        return time.monotonic() - self.ctl.started

    def host(self, name: str) -> Any:
        """A Mininet host by name."""
        return self.net.get(name)

    def stop(self) -> None:
        """Stop Mininet and check that nothing of ours is left behind."""
        from mininet.node import CPULimitedHost

        limited = [h.name for h in self.net.hosts if isinstance(h, CPULimitedHost)]
        if self.started:
            self.net.stop()
        for name in limited:
            # Mininet's cgdelete fails where cpu and cpuacct are mounted apart (libcgroup
            # cannot initialise): remove the groups of our hosts ourselves, by name.
            for group in Path("/sys/fs/cgroup").glob(f"*/{name}"):
                with contextlib.suppress(OSError):
                    group.rmdir()
        left = bridges() & set(self.switch_names)
        for name in left:
            _ovs("--if-exists", "del-br", name)
        stray = interfaces() - self.interfaces_before
        ours = {i for i in stray if re.match(r"^[sh]\d+-eth\d+$", i)}
        for intf in ours:
            subprocess.run(["ip", "link", "del", intf], capture_output=True)
        if left or ours:
            raise HarnessError(f"cleanup left bridges {sorted(left)} and interfaces "
                               f"{sorted(ours)} behind (removed now)")


@contextlib.contextmanager
def running_net(topo: Any, controller_args: list[str] | None = None,
                policy: Path | None = None) -> Iterator[ScentNet]:
    """Hold the Mininet lock, start a controller and `topo`; tear both down after.

    The controller gets a private copy of `policy` (``net.policy_path``) that a
    test may rewrite; ``net.workdir`` is a scratch folder removed afterwards.
    Raises HarnessError if the controller does not exit 0 on Ctrl-C.
    """
    workdir = Path(tempfile.mkdtemp(prefix="sdnscent-run-"))
    args = list(controller_args or [])
    policy_path = None
    if policy is not None:
        policy_path = workdir / "policy.yaml"
        shutil.copy(policy, policy_path)
        args = ["--policy", str(policy_path), *args]
    try:
        with mininet_lock():
            ctl = ControllerProcess(args)
            net = ScentNet(topo, ctl)
            net.workdir, net.policy_path = workdir, policy_path
            try:
                net.discovery_s = net.start()
                yield net
            finally:
                try:
                    net.stop()
                finally:
                    ctl = net.ctl  # a test may have restarted the controller
                    rc = ctl.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if rc != 0:
        raise HarnessError(f"controller did not stop cleanly on Ctrl-C (exit {rc}):\n"
                           f"{ctl.logs()}")


def dump_flows(switch: str) -> list[str]:
    """`ovs-ofctl dump-flows` lines of a bridge, with port numbers, not names."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-names", "dump-flows", switch],
                         check=True, capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if "cookie=" in line]


def n_packets(line: str) -> int:
    """The packet counter of one `dump_flows` line."""
    found = re.search(r"n_packets=(\d+)", line)
    assert found, f"no n_packets in {line!r}"
    return int(found.group(1))


def ping(src: Any, dst_ip: str, count: int = 1, wait: float = 1.0) -> bool:
    """True if `src` gets a reply from `dst_ip`."""
    out = src.cmd(f"ping -n -c {count} -W {wait} {dst_ip}")
    return re.search(r" 0% packet loss", out) is not None


def trail_between(net: ScentNet, src_ip: str, dst_ip: str) -> dict[str, Any]:
    """The REST record of the trail src_ip -> dst_ip."""
    for trail in net.ctl.get("/trails")["trails"]:
        if trail["src"] == src_ip and trail["dst"] == dst_ip:
            return net.ctl.get(f"/trails/{trail['id']}")
    raise AssertionError(f"no trail {src_ip} -> {dst_ip} in /trails")


def port_name(net: ScentNet, dpid: str, port: int) -> str:
    """Interface name of a switch port, from /topology."""
    for sw in net.ctl.get("/topology")["switches"]:
        if sw["dpid"] == dpid:
            return next(p["name"] for p in sw["ports"] if p["port"] == port)
    raise AssertionError(f"switch {dpid} not in /topology")


class PingStream:
    """`ping -i interval` from `src` to `dst_ip` for `seconds`, in the background."""

    def __init__(self, src: Any, dst_ip: str, seconds: float, interval: float = 0.05) -> None:
        self.count, self.interval = int(seconds / interval), interval
        self.proc = src.popen(["ping", "-n", "-i", str(interval), "-W", "1", "-c",
                               str(self.count), dst_ip],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = ""

    def result(self) -> tuple[int, int]:
        """(transmitted, received) once the stream ended; the output is kept in `output`."""
        self.output = self.proc.communicate(timeout=self.count * self.interval + 30)[0].decode()
        found = re.search(r"(\d+) packets transmitted, (\d+) received", self.output)
        assert found, self.output
        return int(found[1]), int(found[2])


class Capture:
    """tcpdump into a pcap file, started and stopped around some traffic."""

    def __init__(self, intf: str, host: Any = None, bpf: str = "") -> None:
        self.path = Path(tempfile.mkdtemp(prefix="sdnscent-cap-")) / "cap.pcap"
        # --immediate-mode: without it frames wait in the kernel ring for up to
        # a second and are lost when tcpdump is stopped.
        cmd = ["tcpdump", "-n", "-U", "--immediate-mode", "-i", intf, "-w", str(self.path),
               *bpf.split()]
        popen = host.popen if host is not None else subprocess.Popen
        self.proc = popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        line = self.proc.stderr.readline().decode()
        assert "listening on" in line, f"tcpdump did not start: {line}"

    def stop(self) -> list[Any]:
        """Stop tcpdump and return the captured frames."""
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        self.report = self.proc.stderr.read().decode(errors="replace")
        frames = list(rdpcap(str(self.path)))
        self.path.unlink()
        self.path.parent.rmdir()
        return frames
