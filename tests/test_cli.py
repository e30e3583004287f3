"""The `sdnscent` command: table format, a real HTTP API, errors and exit codes."""

import importlib.util
import json
import socket
import sys
import threading
from collections.abc import Iterator

import pytest

from sdnscent.cli import format_trails, main
from sdnscent.rest import create_app
from tests.loopback import serve


@pytest.fixture
def ctrl(fat_tree, clock):
    ctrl = fat_tree.controller(clock)
    trail, change = ctrl.ensure_trail(fat_tree.host(1).mac, fat_tree.host(5).mac)
    for callback in change.done:
        callback()
    ctrl.ensure_trail(fat_tree.host(2).mac, fat_tree.host(1).mac)
    return ctrl


@pytest.fixture
def api(ctrl) -> Iterator[str]:
    """The REST API of a fat-tree controller with two trails, over real HTTP."""
    with serve(create_app(ctrl)) as url:
        yield url


@pytest.fixture
def closed_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_format_trails_aligns_columns_and_names_switches() -> None:
    trails = [
        {"id": 1, "label": 16, "src": "10.0.0.1", "dst": "10.0.0.5", "state": "active",
         "hops": [{"dpid": "0000000000000007", "switch": "s7"},
                  {"dpid": "000000000000000b", "switch": "s11"}]},
        {"id": 12, "label": 1048575, "src": "10.0.0.10", "dst": "10.0.0.2",
         "state": "rerouting", "hops": [{"dpid": "0000000000000014"}]},
    ]
    lines = format_trails(trails).splitlines()
    assert lines == [
        "ID  LABEL    SRC        DST       STATE      HOPS",
        "1   16       10.0.0.1   10.0.0.5  active     s7 s11",
        "12  1048575  10.0.0.10  10.0.0.2  rerouting  0000000000000014",
    ]


def test_format_trails_with_no_trails_is_just_the_header() -> None:
    assert format_trails([]).split() == ["ID", "LABEL", "SRC", "DST", "STATE", "HOPS"]


def test_trails_prints_a_table_from_the_running_api(api, ctrl, capsys) -> None:
    assert main(["--api", api, "trails"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "LABEL", "SRC", "DST", "STATE", "HOPS"]
    first, second = ctrl.store.get(1), ctrl.store.get(2)
    assert out[1].split() == ["1", str(first.label), "10.0.0.1", "10.0.0.5", "active",
                              *(f"s{d}" for d in first.switches)]
    assert out[2].split() == ["2", str(second.label), "10.0.0.2", "10.0.0.1", "installing",
                              *(f"s{d}" for d in second.switches)]
    assert len(out) == 3


def test_trails_json_prints_what_the_api_served(api, capsys) -> None:
    assert main(["--api", api + "/", "trails", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == 2 and [t["id"] for t in data["trails"]] == [1, 2]


def test_trail_id_prints_that_trail_as_json(api, ctrl, capsys) -> None:
    assert main(["--api", api, "trail", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == 1 and data["label"] == ctrl.store.get(1).label
    assert [h["dpid"] for h in data["hops"]] == [f"{d:016x}" for d in ctrl.store.get(1).switches]


def test_unknown_trail_id_exits_1_with_the_apis_message(api, capsys) -> None:
    assert main(["--api", api, "trail", "99"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"sdnscent: {api}/api/v1/trails/99: 404 trail 99 not found"


def test_unreachable_api_exits_1_naming_the_url(closed_url, capsys) -> None:
    assert main(["--api", closed_url, "trails"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"sdnscent: cannot reach the controller API at {closed_url}")
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["trail"], "the following arguments are required: id"),
        (["trail", "abc"], "invalid int value: 'abc'"),
        (["trail", "1.5"], "invalid int value: '1.5'"),
        ([], "the following arguments are required: command"),
        (["plan-everything"], "invalid choice: 'plan-everything'"),
    ],
)
def test_bad_arguments_exit_2_with_a_usage_message(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code  # type: ignore[return-value]


def test_api_url_without_a_scheme_is_an_error_naming_it(capsys) -> None:
    assert exit_code(["--api", "localhost", "trails"]) in (1, 2)
    assert "localhost" in capsys.readouterr().err


def html_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<html><body>not the controller</body></html>"]


def test_api_answering_with_something_other_than_json_exits_1(capsys) -> None:
    with serve(html_app) as url:
        assert exit_code(["--api", url, "trails"]) == 1
        assert url in capsys.readouterr().err


@pytest.fixture
def not_http() -> Iterator[str]:
    """A loopback port that answers with an OpenFlow HELLO instead of HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def answer() -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(b"\x04\x00\x00\x08\x00\x00\x00\x01")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    thread.join(5)


def test_api_url_pointing_at_a_non_http_port_exits_1(not_http, capsys) -> None:
    assert exit_code(["--api", not_http, "trails"]) == 1
    assert not_http in capsys.readouterr().err


# sdnscent-manager: argument validation only (the controller is never started) -------------

MANAGER_OPTIONS = ["--ofp-tcp-listen-port", "--ofp-listen-host", "--api-listen", "--store",
                   "--policy", "--default-link-capacity", "--lldp-interval", "--log-level",
                   "--log-format", "--version", "--help", "--ovsdb", "--link-mtu"]


@pytest.fixture
def manager_main(restore_logging):
    """apps.manager.main, with the root logger restored after it reconfigured it."""
    from sdnscent.apps import manager

    return manager.main


def parse_manager(argv: list[str]):
    from sdnscent.apps import manager

    return manager.build_parser().parse_args(argv)


def manager_error(argv: list[str], capsys) -> str:
    """Parse `argv`, expect a usage error (exit 2) and return stderr."""
    with pytest.raises(SystemExit) as exc:
        parse_manager(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_manager_help_lists_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_manager(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sdnscent-manager")
    for option in MANAGER_OPTIONS:
        assert option in out, option
    assert "APP" in out


def test_manager_defaults_follow_the_design_contract() -> None:
    args = parse_manager([])
    assert args.apps == []
    assert args.ofp_tcp_listen_port == 6653
    assert args.api_listen == "127.0.0.1:8080"  # loopback unless told otherwise
    assert args.store == "memory://"
    assert args.policy is None and args.default_link_capacity is None
    assert args.ovsdb is None and args.link_mtu == 1600  # no OVSDB southbound unless told


@pytest.mark.parametrize(("text", "value"), [("none", None), ("off", None),
                                             ("0.0.0.0:9090", "0.0.0.0:9090")])
def test_manager_accepts_api_listen_host_port_or_none(text: str, value) -> None:
    assert parse_manager(["--api-listen", text]).api_listen == value


@pytest.mark.parametrize("bad", ["8080", "localhost", "127.0.0.1:0", "127.0.0.1:65536",
                                 "127.0.0.1:http", "127.0.0.1:"])
def test_manager_refuses_a_bad_api_listen_naming_the_option(bad: str, capsys) -> None:
    err = manager_error([f"--api-listen={bad}"], capsys)
    assert "argument --api-listen" in err and repr(bad) in err


@pytest.mark.parametrize("bad", ["0", "65536", "-1", "six"])
def test_manager_refuses_a_bad_openflow_port_naming_the_option(bad: str, capsys) -> None:
    err = manager_error([f"--ofp-tcp-listen-port={bad}"], capsys)
    assert "argument --ofp-tcp-listen-port" in err and repr(bad) in err


@pytest.mark.parametrize("bad", ["0", "-5", "ten"])
def test_manager_refuses_a_bad_link_capacity_naming_the_option(bad: str, capsys) -> None:
    err = manager_error([f"--default-link-capacity={bad}"], capsys)
    assert "argument --default-link-capacity" in err and repr(bad) in err


def test_manager_reads_link_capacity_in_scientific_notation() -> None:
    assert parse_manager(["--default-link-capacity", "1e9"]).default_link_capacity == 10**9


def test_manager_takes_several_ovsdb_targets_and_a_link_mtu() -> None:
    args = parse_manager(["--ovsdb", "unix:/var/run/openvswitch/db.sock",
                          "--ovsdb", "tcp:10.0.0.1:6640", "--ovsdb", "tcp:[::1]:6640",
                          "--link-mtu", "9000"])
    assert args.ovsdb == ["unix:/var/run/openvswitch/db.sock", "tcp:10.0.0.1:6640",
                          "tcp:[::1]:6640"]
    assert args.link_mtu == 9000
    assert parse_manager(["--link-mtu", "0"]).link_mtu == 0  # off


@pytest.mark.parametrize("bad", ["db.sock", "unix:", "tcp:10.0.0.1", "tcp::6640",
                                 "tcp:10.0.0.1:0", "tcp:10.0.0.1:ovsdb", "ssl:10.0.0.1:6640"])
def test_manager_refuses_a_bad_ovsdb_target_naming_it(bad: str, capsys) -> None:
    err = manager_error([f"--ovsdb={bad}"], capsys)
    assert "argument --ovsdb" in err and repr(bad) in err


@pytest.mark.parametrize(("bad", "shown"), [("1500", "1500"), ("65536", "65536"),
                                            ("-1", "'-1'"), ("1.5e3", "'1.5e3'"),
                                            ("big", "'big'")])
def test_manager_refuses_a_link_mtu_too_small_for_a_labelled_frame(bad: str, shown: str,
                                                                   capsys) -> None:
    err = manager_error([f"--link-mtu={bad}"], capsys)
    assert "argument --link-mtu" in err and shown in err


def test_manager_hands_ovsdb_targets_and_link_mtu_to_the_app(manager_main, monkeypatch,
                                                             capsys) -> None:
    from sdnscent.apps.settings import SETTINGS

    for name, value in vars(SETTINGS).items():  # main() sets them all: restore them after
        monkeypatch.setattr(SETTINGS, name, value)
    # --link-low above --link-high stops main after the settings are made, before os-ken.
    assert manager_main(["--ovsdb", "unix:/tmp/a.sock", "--ovsdb", "tcp:127.0.0.1:6640",
                         "--link-mtu", "0", "--link-low", "0.9", "--link-high", "0.8"]) == 2
    assert SETTINGS.ovsdb_targets == ("unix:/tmp/a.sock", "tcp:127.0.0.1:6640")
    assert SETTINGS.link_mtu == 0
    assert "--link-low 0.9 must be below" in capsys.readouterr().err


def test_manager_refuses_an_unknown_store_scheme_naming_the_option(manager_main,
                                                                   capsys) -> None:
    assert manager_main(["--store", "ftp://127.0.0.1/0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdnscent-manager: --store:") and "'ftp'" in err


def test_manager_refuses_a_missing_policy_file_naming_it(manager_main, tmp_path,
                                                         capsys) -> None:
    missing = tmp_path / "nope.yaml"
    assert manager_main(["--policy", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "sdnscent-manager: --policy rejected" in err
    assert f"{missing}: cannot read the file: No such file or directory" in err


def test_manager_refuses_an_infinite_port_with_a_usage_error(capsys) -> None:
    err = manager_error(["--ofp-tcp-listen-port", "inf"], capsys)
    assert "argument --ofp-tcp-listen-port" in err


def test_manager_refuses_a_fractional_port(capsys) -> None:
    err = manager_error(["--ofp-tcp-listen-port", "6653.5"], capsys)
    assert "argument --ofp-tcp-listen-port" in err


@pytest.mark.parametrize("bad", ["0", "-1", "nan"])
def test_manager_refuses_a_non_positive_lldp_interval(bad: str, capsys) -> None:
    err = manager_error([f"--lldp-interval={bad}"], capsys)
    assert "argument --lldp-interval" in err


def test_manager_maps_app_names_in_apps_to_the_installed_package() -> None:
    from sdnscent.apps import manager

    assert manager._app_module("apps/scent_trail.py") == "sdnscent.apps.scent_trail"
    assert manager._app_module("apps.scent_trail") == "sdnscent.apps.scent_trail"
    assert manager._app_module("sdnscent.apps.scent_trail") == "sdnscent.apps.scent_trail"
    assert importlib.util.find_spec("sdnscent.apps.scent_trail") is not None


def test_manager_app_given_as_a_file_path_can_be_loaded(tmp_path, monkeypatch) -> None:
    from os_ken import utils

    from sdnscent.apps import manager

    app = tmp_path / "sdnscent_test_custom_app.py"
    app.write_text("VALUE = 42\n")
    monkeypatch.delitem(sys.modules, "sdnscent_test_custom_app", raising=False)
    module = utils.import_module(manager._app_module(str(app)))
    assert module.VALUE == 42


def test_trails_filters_reach_the_api(api, ctrl, capsys) -> None:
    assert main(["--api", api, "trails", "--src", "10.0.0.2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in data["trails"]] == [2] and data["total"] == 1
    assert main(["--api", api, "trails", "--state", "bogus"]) == 1
    assert "400 state 'bogus' is not one of" in capsys.readouterr().err


def test_trail_prints_fields_and_a_hop_table(api, ctrl, capsys) -> None:
    assert main(["--api", api, "trail", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    trail = ctrl.store.get(1)
    assert out[0].split() == ["id:", "1"] and out[1].split() == ["label:", str(trail.label)]
    head = out.index(next(line for line in out if line.startswith("HOP")))
    assert out[head].split() == ["HOP", "SWITCH", "DPID", "IN", "OUT", "VIA"]
    rows = [line.split() for line in out[head + 1:]]
    assert [(r[1], int(r[3]), int(r[4])) for r in rows] == \
        [(f"s{h.dpid}", h.in_port, h.out_port) for h in trail.hops]


def test_trace_prints_each_hop_of_the_trail_between_two_hosts(api, ctrl, capsys) -> None:
    assert main(["--api", api, "trace", "10.0.0.1", "10.0.0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    trail = ctrl.store.get(1)
    assert out[0].startswith("trail 1 label ") and "counters: unavailable" in out[0]
    assert out[1].split() == ["HOP", "SWITCH", "IN", "OUT", "NEXT", "UTIL", "PACKETS", "BYTES"]
    assert [line.split()[1] for line in out[2:]] == [f"s{d}" for d in trail.switches]
    assert out[-1].split()[4] == "host"
    assert main(["--api", api, "trace", "10.0.0.3", "10.0.0.4"]) == 1
    assert "no trail from 10.0.0.3 to 10.0.0.4" in capsys.readouterr().err
