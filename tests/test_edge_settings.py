"""sdnscent-manager's edge options: safe defaults and clear refusals."""

from __future__ import annotations

import os

import pytest

from sdnscent.apps import manager

pytestmark = pytest.mark.usefixtures("restore_logging")




def test_openflow_listens_on_loopback_and_port_security_is_on_by_default() -> None:
    args = manager.build_parser().parse_args([])
    assert args.ofp_listen_host == "127.0.0.1"
    assert args.port_security == "on" and args.port_mac_limit == 8
    assert args.probe_timeout == 1.0 and args.lldp_secret_file is None


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True),
                                                ("[::1]", True), ("localhost", True),
                                                ("0.0.0.0", False), ("192.0.2.10", False),
                                                ("switches.example", False)])
def test_which_listen_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert manager._loopback(host) is loopback


def test_an_lldp_secret_readable_by_others_stops_the_controller(tmp_path, capsys) -> None:
    secret = tmp_path / "lldp.key"
    secret.write_text("00" * 32)
    os.chmod(secret, 0o644)
    assert manager.main(["--lldp-secret-file", str(secret), "--api-listen", "none"]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_bad_edge_option_values_are_refused(capsys) -> None:
    for argv in (["--port-security", "maybe"], ["--port-mac-limit", "0"],
                 ["--probe-timeout", "-1"]):
        with pytest.raises(SystemExit):
            manager.build_parser().parse_args(argv)
        assert argv[0] in capsys.readouterr().err
