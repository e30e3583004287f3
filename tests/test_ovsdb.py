"""The OVSDB southbound against a private ovsdb-server, and the link-MTU plan.

The server runs on a Unix socket in a temporary directory with a fresh database
(no ovs-vswitchd: rows are written with ``ovs-vsctl --no-wait``) and is stopped
by pid. The system's Open vSwitch database is never touched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdnscent.mtu import DEFAULT_LINK_MTU, MIN_LINK_MTU, check_link_mtu, link_port_mtus
from sdnscent.topology import Topology
from tests.redisproc import free_port

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DPID = 0x5CE7_0000_0001
OTHER_DPID = 0x5CE7_0000_0002
# ovs.poller imports eventlet (to detect green threads), which warns on first import.
pytestmark = pytest.mark.filterwarnings(r"ignore:\s*Eventlet is deprecated")


# the pure plan ------------------------------------------------------------------------------

def test_link_ports_get_the_link_mtu_and_host_ports_are_absent() -> None:
    topo = Topology()
    for dpid in (1, 2, 3):
        topo.add_switch(dpid)
    topo.add_link(1, 1, 2, 3)
    topo.add_link(2, 3, 1, 1)  # the other direction: same two ports
    topo.add_link(2, 4, 3, 1)
    links = [((lk.src, lk.src_port), (lk.dst, lk.dst_port)) for lk in topo.links()]
    assert link_port_mtus(links) == {1: {1: 1600}, 2: {3: 1600, 4: 1600}, 3: {1: 1600}}


def test_link_mtu_is_configurable_and_zero_disables_it() -> None:
    links = [((1, 1), (2, 2))]
    assert link_port_mtus(links, 9000) == {1: {1: 9000}, 2: {2: 9000}}
    assert link_port_mtus(links, 0) == {}
    assert link_port_mtus([]) == {}


def test_default_link_mtu_fits_a_full_size_host_frame_with_its_label() -> None:
    assert MIN_LINK_MTU == 1500 + 4 <= DEFAULT_LINK_MTU == 1600


@pytest.mark.parametrize("bad", [1500, 1503, 65536, -1, True, 1600.0])
def test_a_link_mtu_that_cannot_carry_a_labelled_frame_is_refused(bad) -> None:
    with pytest.raises(ValueError, match=f"link MTU {bad!r} must be 0"):
        check_link_mtu(bad)
    with pytest.raises(ValueError, match=repr(bad)):
        link_port_mtus([((1, 1), (2, 2))], bad)


# a private ovsdb-server ---------------------------------------------------------------------

class OvsdbServer:
    """ovsdb-server with a fresh Open_vSwitch database on a Unix socket in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.sock = workdir / "db.sock"
        self.target = f"unix:{self.sock}"
        self.db = workdir / "conf.db"
        subprocess.run(["ovsdb-tool", "create", str(self.db), str(SCHEMA)], check=True)
        self.start()

    def start(self) -> None:
        """Run ovsdb-server (in the foreground, stopped by pid) and wait until it answers."""
        self.proc = subprocess.Popen(
            ["ovsdb-server", str(self.db), f"--remote=punix:{self.sock}",
             f"--unixctl={self.dir / 'ctl'}", "--no-chdir", "-vconsole:off", "-vsyslog:off",
             f"--log-file={self.dir / 'ovsdb-server.log'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.vsctl("--timeout=1", "show", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ovsdb-server on {self.sock} did not start")
            time.sleep(0.05)

    def vsctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """ovs-vsctl on this server only; --no-wait since no ovs-vswitchd runs."""
        return subprocess.run(["ovs-vsctl", f"--db={self.target}", "--no-wait", "--timeout=5",
                               *args], capture_output=True, text=True, check=check)

    def get(self, table: str, record: str, column: str) -> str:
        return self.vsctl("get", table, record, column).stdout.strip()

    def add_switch(self, bridge: str, dpid: int, ports: dict[str, int]) -> None:
        """A bridge with datapath_id `dpid` and ports named like their interfaces."""
        args = ["--", "add-br", bridge, "--", "set", "bridge", bridge, f"datapath_id={dpid:016x}"]
        for name, ofport in ports.items():
            args += ["--", "add-port", bridge, name, "--", "set", "interface", name,
                     f"ofport={ofport}"]
        self.vsctl(*args)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server() -> Iterator[OvsdbServer]:
    missing = [b for b in ("ovsdb-server", "ovsdb-tool", "ovs-vsctl") if not shutil.which(b)]
    if missing or not SCHEMA.exists():
        pytest.skip(f"needs {' and '.join(missing) or SCHEMA} (Debian openvswitch-switch)")
    workdir = Path(tempfile.mkdtemp(prefix="sdnscent-ovsdb-"))  # short: socket path limit
    srv = OvsdbServer(workdir)
    try:
        srv.vsctl("init")
        srv.add_switch("s1", DPID, {"s1-eth1": 1, "s1-eth2": 2, "s1-eth3": 3})
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def southbound(server: OvsdbServer):
    from sdnscent.apps.ovsdb import OvsdbSouthbound

    with OvsdbSouthbound([server.target], timeout=3.0) as sb:
        yield sb


@pytest.fixture
def writes(monkeypatch) -> list[str]:
    """Names of the IDL columns written (one per row and column set in a transaction)."""
    from ovs.db.idl import Row

    seen: list[str] = []
    original = Row.__setattr__

    def spy(row: Row, column: str, value: object) -> None:
        seen.append(column)
        original(row, column, value)

    monkeypatch.setattr(Row, "__setattr__", spy)
    return seen


# the southbound -----------------------------------------------------------------------------

def test_finds_the_bridge_by_dpid_and_the_interface_by_ofport(server, southbound) -> None:
    assert southbound.find_bridge(DPID) == (server.target, "s1")
    assert southbound.find_interface(DPID, 2) == "s1-eth2"


def test_set_mtu_writes_mtu_request_of_those_ports_only(server, southbound) -> None:
    assert southbound.set_mtu(DPID, [1, 2], 1600) == {1: 1600, 2: 1600}
    assert server.get("interface", "s1-eth1", "mtu_request") == "1600"
    assert server.get("interface", "s1-eth2", "mtu_request") == "1600"
    assert server.get("interface", "s1-eth3", "mtu_request") == "[]"  # a host port


def test_set_mtu_is_idempotent_without_a_transaction(server, southbound, writes) -> None:
    server.vsctl("set", "interface", "s1-eth1", "mtu_request=1600")
    assert southbound.set_mtu(DPID, [1, 2], 1600) == {2: 1600}
    assert writes == ["mtu_request"]
    assert southbound.set_mtu(DPID, [1, 2], 1600) == {}
    assert southbound.set_mtu(DPID, [2, 2], 1600) == {}
    assert writes == ["mtu_request"]


def test_set_mtu_sees_a_change_made_by_someone_else_just_before(server, southbound) -> None:
    assert southbound.set_mtu(DPID, [1], 1600) == {1: 1600}
    server.vsctl("set", "interface", "s1-eth1", "mtu_request=9000")
    assert southbound.set_mtu(DPID, [1], 1600) == {1: 1600}
    assert server.get("interface", "s1-eth1", "mtu_request") == "1600"


def test_a_switch_added_after_connecting_is_found(server, southbound) -> None:
    assert southbound.set_mtu(DPID, [1], 1600) == {1: 1600}
    server.add_switch("s2", OTHER_DPID, {"s2-eth1": 1})
    assert southbound.set_mtu(OTHER_DPID, [1], 1600) == {1: 1600}
    assert server.get("interface", "s2-eth1", "mtu_request") == "1600"


def test_interface_options_merge_into_the_map_and_none_deletes(server, southbound) -> None:
    server.vsctl("set", "interface", "s1-eth1", "bfd:cpath_down=false")
    changed = southbound.set_interface_options(DPID, 1, "bfd", {"enable": "true",
                                                                "min_tx": "100"})
    assert changed == {"enable": "true", "min_tx": "100"}
    assert server.get("interface", "s1-eth1", "bfd") == \
        '{cpath_down="false", enable="true", min_tx="100"}'
    assert southbound.set_interface_options(DPID, 1, "bfd", {"enable": "true"}) == {}
    assert southbound.set_interface_options(DPID, 1, "bfd", {"min_tx": None,
                                                             "absent": None}) == {"min_tx": None}
    assert server.get("interface", "s1-eth1", "bfd") == '{cpath_down="false", enable="true"}'


def test_interface_options_refuse_other_columns_and_non_strings(southbound) -> None:
    with pytest.raises(ValueError, match="'mtu_request' is not one of bfd"):
        southbound.set_interface_options(DPID, 1, "mtu_request", {"x": "1"})
    with pytest.raises(TypeError, match="min_tx"):
        southbound.set_interface_options(DPID, 1, "bfd", {"min_tx": 100})  # type: ignore[dict-item]


def test_an_unknown_dpid_is_an_error_naming_the_target_and_dpid(server, southbound) -> None:
    from sdnscent.apps.ovsdb import OvsdbError

    with pytest.raises(OvsdbError) as exc:
        southbound.set_mtu(0xABC, [1], 1600)
    assert str(exc.value) == f"OVSDB {server.target}: no bridge has datapath_id 0000000000000abc"
    assert exc.value.target == server.target


def test_an_unknown_port_is_an_error_and_nothing_is_written(server, southbound) -> None:
    from sdnscent.apps.ovsdb import OvsdbError

    with pytest.raises(OvsdbError, match=f"{server.target}: bridge s1 .* no interface with "
                                         "ofport 9"):
        southbound.set_mtu(DPID, [1, 9], 1600)
    assert server.get("interface", "s1-eth1", "mtu_request") == "[]"


def test_an_unreachable_unix_target_is_an_error_naming_it(tmp_path) -> None:
    from sdnscent.apps.ovsdb import OvsdbError, OvsdbSouthbound

    target = f"unix:{tmp_path / 'none.sock'}"
    with pytest.raises(OvsdbError, match=f"OVSDB {target}: cannot connect: No such file"):
        OvsdbSouthbound([target], timeout=2.0).set_mtu(DPID, [1], 1600)


def test_a_refused_tcp_target_is_an_error_naming_it() -> None:
    from sdnscent.apps.ovsdb import OvsdbError, OvsdbSouthbound

    target = f"tcp:127.0.0.1:{free_port()}"
    with pytest.raises(OvsdbError, match=f"OVSDB {target}: cannot connect: Connection refused"):
        OvsdbSouthbound([target], timeout=2.0).find_bridge(DPID)


def test_a_server_that_never_answers_times_out() -> None:
    from sdnscent.apps.ovsdb import OvsdbError, OvsdbSouthbound

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        target = f"tcp:127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(OvsdbError, match=f"{target}: no answer to get_schema within 0.5 s"):
            OvsdbSouthbound([target], timeout=0.5).set_mtu(DPID, [1], 1600)
        assert time.monotonic() - start < 3


def test_a_stopped_server_is_an_error_within_the_timeout_and_a_restart_heals(server) -> None:
    from sdnscent.apps.ovsdb import OvsdbError, OvsdbSouthbound

    with OvsdbSouthbound([server.target], timeout=1.0) as sb:
        assert sb.set_mtu(DPID, [1], 1600) == {1: 1600}
        server.stop()
        start = time.monotonic()
        with pytest.raises(OvsdbError, match=server.target):
            sb.set_mtu(DPID, [2], 1600)
        assert time.monotonic() - start < 3
        server.start()
        # ovs-vswitchd would fill in the ephemeral datapath_id again.
        server.vsctl("set", "bridge", "s1", f"datapath_id={DPID:016x}")
        assert sb.set_mtu(DPID, [1, 2], 1600) == {2: 1600}


def test_set_mtu_refuses_a_non_positive_mtu(southbound) -> None:
    with pytest.raises(ValueError, match="MTU 0 is not a positive"):
        southbound.set_mtu(DPID, [1], 0)


def test_the_switch_is_looked_up_on_every_target_and_dead_ones_are_named(server,
                                                                         tmp_path) -> None:
    from sdnscent.apps.ovsdb import OvsdbError, OvsdbSouthbound

    dead = f"unix:{tmp_path / 'dead.sock'}"
    with OvsdbSouthbound([dead, server.target], timeout=2.0) as sb:
        assert sb.set_mtu(DPID, [3], 1700) == {3: 1700}
        assert sb.find_bridge(DPID) == (server.target, "s1")
        with pytest.raises(OvsdbError) as exc:
            sb.find_bridge(OTHER_DPID)
    message = str(exc.value)
    assert f"no bridge has datapath_id {OTHER_DPID:016x}" in message
    assert f"OVSDB {dead}: cannot connect" in message
    assert server.get("interface", "s1-eth3", "mtu_request") == "1700"


def test_worker_threads_can_share_one_southbound(server, southbound) -> None:
    server.add_switch("s2", OTHER_DPID, {f"s2-eth{n}": n for n in range(1, 9)})
    results: dict[int, dict[int, int]] = {}
    errors: list[BaseException] = []

    def work(port: int) -> None:
        try:
            results[port] = southbound.set_mtu(OTHER_DPID, [port], 1600)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert results == {n: {n: 1600} for n in range(1, 9)}
    assert all(server.get("interface", f"s2-eth{n}", "mtu_request") == "1600"
               for n in range(1, 9))
