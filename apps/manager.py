"""sdnscent-manager: a ryu-manager-style launcher for os-ken apps.

With no APP it runs the scent-trail controller. Ctrl-C (SIGINT) or SIGTERM
stops it: apps are closed, the REST API shut down, and the process exits 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from sdnscent import __version__
from sdnscent.allocator import AllocatorError, open_allocator
from sdnscent.core.model import ROUTING_SCENT, ROUTINGS
from sdnscent.discovery import SecretError, load_or_create_secret
from sdnscent.mtu import DEFAULT_LINK_MTU, check_link_mtu
from sdnscent.policyfile import PolicyError, load_policy
from sdnscent.protection import DEFAULT_MODE, MODES, bfd_options
from sdnscent.redisacl import check_controller_access
from sdnscent.secretfile import SecretFileError, read_keys_file, read_secret_file, read_token_file
from sdnscent.store import StoreError, open_store, redact

from .settings import SETTINGS

DEFAULT_APP = "sdnscent.apps.scent_trail"
LOG = logging.getLogger("sdnscent.manager")
STOP_TIMEOUT = 3.0  # seconds to let apps stop before the process exits


class JsonFormatter(logging.Formatter):
    """One JSON object per log line."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": round(record.created, 3), "level": record.levelname,
                "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def _listen(text: str) -> str | None:
    if text.lower() in ("", "none", "off"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (or 'none')")
    return text


def _positive_int(text: str) -> int:
    """A positive integer; '1e9' is accepted for bit rates, 'inf' and '1.5' are not."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return int(number)


def _positive_seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _non_negative(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _tls_options(args: argparse.Namespace) -> list[str]:
    """os-ken options for OpenFlow over TLS; ValueError if given only in part or unreadable."""
    files = {"--ofp-ssl-privkey": args.ofp_ssl_privkey, "--ofp-ssl-cert": args.ofp_ssl_cert,
             "--ofp-ssl-ca-cert": args.ofp_ssl_ca_cert}
    given = [k for k, v in files.items() if v]
    if not given:
        return []
    if len(given) != len(files):
        missing = ", ".join(k for k in files if k not in given)
        raise ValueError(f"OpenFlow over TLS needs all three files; missing {missing}")
    read_secret_file(args.ofp_ssl_privkey, "--ofp-ssl-privkey")  # exists, not world-readable
    for option in ("--ofp-ssl-cert", "--ofp-ssl-ca-cert"):
        if not os.access(files[option], os.R_OK):
            raise ValueError(f"{option} {files[option]}: cannot read it")
    return ["--ctl-privkey", args.ofp_ssl_privkey, "--ctl-cert", args.ofp_ssl_cert,
            "--ca-certs", args.ofp_ssl_ca_cert,
            "--ofp-ssl-listen-port", str(args.ofp_tcp_listen_port)]


def _loopback(host: str) -> bool:
    """True if `host` is a loopback address (or localhost)."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _fraction(text: str) -> float:
    """A number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1]")
    return value


def _lease(text: str) -> int:
    """Whole seconds 0..65535 (an OpenFlow idle timeout is 16 bits; 0 disables leases)."""
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds "
                                         "from 0 (no leases) to 65535")
    return int(text)


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def _ovsdb_target(text: str) -> str:
    """An OVSDB remote the controller connects to: unix:PATH or tcp:HOST:PORT."""
    kind, _, rest = text.partition(":")
    host, sep, port = rest.rpartition(":")
    if kind == "unix" and rest:
        return text
    if kind == "tcp" and sep and host.strip("[]") and port.isascii() and port.isdigit() \
            and 0 < int(port) < 65536:
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not an OVSDB remote unix:PATH or "
                                     "tcp:HOST:PORT")


def _link_mtu(text: str) -> int:
    """0 (leave link MTUs alone) or an MTU that fits a full-size host frame and its label."""
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes")
    try:
        return check_link_mtu(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bfd_interval(text: str) -> int:
    """0 (BFD off) or the milliseconds between BFD packets on inter-switch links."""
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds")
    try:
        bfd_options(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return int(text)


def _app_module(name: str) -> str:
    """Map apps/<x>.py and apps.<x> to the installed sdnscent.apps.<x>.

    Anything else (a module name, or a path os-ken loads itself) is unchanged.
    """
    path = Path(name)
    if name.endswith(".py") and path.parent.name == "apps" and \
            path.resolve().parent == Path(__file__).resolve().parent:
        return f"sdnscent.apps.{path.stem}"
    if name.startswith("apps.") and not name.endswith(".py"):
        return "sdnscent." + name
    return name


def build_parser() -> argparse.ArgumentParser:
    """The command line of sdnscent-manager."""
    p = argparse.ArgumentParser(
        prog="sdnscent-manager",
        description="Run the sdnscent scent-trail SDN controller (or other os-ken apps).",
        epilog="Example: sdnscent-manager --ofp-tcp-listen-port 6653 --api-listen 127.0.0.1:8080")
    p.add_argument("apps", nargs="*", metavar="APP",
                   help=f"os-ken app modules or files to run (default: {DEFAULT_APP})")
    p.add_argument("--ofp-tcp-listen-port", type=_port, default=6653,
                   help="OpenFlow TCP port switches connect to (default 6653)")
    p.add_argument("--ofp-listen-host", default="127.0.0.1",
                   help="address the OpenFlow listener binds (default 127.0.0.1: loopback "
                        "only; plain TCP beyond loopback is warned about, use TLS)")
    p.add_argument("--api-listen", type=_listen, default="127.0.0.1:8080",
                   help="HOST:PORT of the REST API, or 'none' (default 127.0.0.1:8080)")
    p.add_argument("--store", default="memory://",
                   help="trail store URL: memory:// (default), redis://host:port/db, "
                        "redis+cluster://host:port")
    p.add_argument("--policy", metavar="FILE",
                   help="policy file (YAML, see docs/policy.rst); SIGHUP reloads it")
    p.add_argument("--api-token", metavar="TOKEN", default=os.environ.get("SDNSCENT_API_TOKEN"),
                   help="bearer token that mutating REST calls must carry (default: "
                        "$SDNSCENT_API_TOKEN; without one, mutating calls are refused)")
    p.add_argument("--api-token-file", metavar="FILE",
                   help="read the bearer token from FILE (mode 0600; refused if every user "
                        "can read it); wins over --api-token")
    p.add_argument("--api-open-reads", action="store_true",
                   help="let clients other than loopback read the API without the token "
                        "(default: they need it too)")
    p.add_argument("--packet-in-rate", type=_non_negative, default=100.0, metavar="PER_S",
                   help="packet-ins accepted per second from one switch port; the rest are "
                        "dropped unparsed (default 100, 0: no limit)")
    p.add_argument("--packet-in-burst", type=_positive_seconds, default=200.0, metavar="N",
                   help="packet-ins one port may send at once before the rate applies "
                        "(default 200)")
    p.add_argument("--telemetry-keys", metavar="FILE",
                   help="lines 'NODE KEY' (mode 0600): agent samples must be signed with "
                        "their node's key (HMAC-SHA256); others are refused and counted")
    p.add_argument("--ofp-ssl-privkey", metavar="FILE",
                   help="OpenFlow over TLS: the controller's private key (with "
                        "--ofp-ssl-cert and --ofp-ssl-ca-cert the OpenFlow port speaks only TLS)")
    p.add_argument("--ofp-ssl-cert", metavar="FILE", help="the controller's certificate")
    p.add_argument("--ofp-ssl-ca-cert", metavar="FILE",
                   help="CA certificate that switch certificates must be signed by")
    p.add_argument("--default-link-capacity", type=_positive_int, metavar="BPS",
                   help="capacity of links without configured capacity, in bit/s "
                        "(default: the port speed the switch reports)")
    p.add_argument("--ovsdb", action="append", type=_ovsdb_target, metavar="TARGET",
                   help="OVSDB remote of switches, unix:PATH or tcp:HOST:PORT (repeatable); "
                        "the controller then sets mtu_request of inter-switch link ports "
                        "itself (docs/southbound.rst)")
    p.add_argument("--link-mtu", type=_link_mtu, default=DEFAULT_LINK_MTU, metavar="N",
                   help=f"with --ovsdb: mtu_request of inter-switch link ports (default "
                        f"{DEFAULT_LINK_MTU}, host MTU + label with room; 0: leave them)")
    p.add_argument("--protection", choices=MODES, default=DEFAULT_MODE,
                   help="fast-failover backups installed with every trail: per hop a detour "
                        "around its link (link) or also around the next switch where the fabric "
                        f"allows (node), or none (default {DEFAULT_MODE}; docs/protection.rst)")
    p.add_argument("--bfd-interval", type=_bfd_interval, default=0, metavar="MS",
                   help="with --ovsdb: run BFD on inter-switch links every MS milliseconds, so "
                        "a link that drops frames with its carrier up is dead for fast-failover "
                        "after 3 intervals (default 0: off)")
    p.add_argument("--lldp-secret-file", metavar="FILE",
                   help="HMAC key of the controller's LLDP frames (hex, mode 0600); created "
                        "with a random key if absent; give controllers sharing a store the "
                        "same file (default: a random key per process)")
    p.add_argument("--port-security", choices=["on", "off"], default="on",
                   help="bind each host's MAC and IP to the port where it first appeared; a "
                        "move is accepted only when the old port is down or silent to a "
                        "probe, else the claimant is dropped at its port (default on)")
    p.add_argument("--port-mac-limit", type=_positive_int, default=8, metavar="N",
                   help="MACs one host port may carry; more are dropped (default 8)")
    p.add_argument("--probe-timeout", type=_positive_seconds, default=1.0, metavar="SECONDS",
                   help="how long a host's bound port has to answer the probe before a move "
                        "away from it is accepted (default 1)")
    p.add_argument("--lldp-interval", type=_positive_seconds, default=1.0, metavar="SECONDS",
                   help="seconds between LLDP rounds (default 1.0); links expire after 3.5x")
    p.add_argument("--switch-grace", type=_positive_seconds, default=10.0, metavar="SECONDS",
                   help="seconds a switch that lost its connection keeps its place and its "
                        "trails before they move off it (default 10)")
    p.add_argument("--trail-lease", type=_lease, default=60, metavar="SECONDS",
                   help="a trail idle this long ends: its flows go and its label is freed "
                        "(the ingress flow's idle timeout; default 60, 0: never)")
    p.add_argument("--stats-interval", type=_positive_seconds, default=1.0, metavar="SECONDS",
                   help="seconds between flow-counter polls that renew leases (default 1)")
    p.add_argument("--controller-id", default=socket.gethostname(), metavar="NAME",
                   help="this controller's name in the leader election of a shared store "
                        "(default: the host name; give each controller its own)")
    p.add_argument("--leader-ttl", type=_positive_seconds, default=3.0, metavar="SECONDS",
                   help="with a Redis store: how long the master's lease lasts without "
                        "renewal; a standby takes over after it (default 3)")
    p.add_argument("--routing", choices=list(ROUTINGS), default=ROUTING_SCENT,
                   help="scent (default): load-aware trails, elephant flows placed together "
                        "each period; ecmp: every least-cost path, hashed per flow; static: "
                        "one shortest path per pair (the baselines)")
    p.add_argument("--link-high", type=_fraction, default=0.8, metavar="FRACTION",
                   help="utilisation at which a link is reported hot (dra-hot events; "
                        "default 0.8)")
    p.add_argument("--link-low", type=_fraction, default=0.6, metavar="FRACTION",
                   help="utilisation at which a hot link is reported cool again "
                        "(default 0.6)")
    p.add_argument("--move-hold", type=_positive_seconds, default=30.0, metavar="SECONDS",
                   help="seconds a trail moved off a hot network function stays where it "
                        "was put (default 30)")
    p.add_argument("--allocator", default="none", metavar="SPEC",
                   help="CPU/memory of computing nodes (NF hosts): none (default), cgroup, "
                        "cgroup:<parent> (cgroups v1, named after the node)")
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level (default WARNING: quiet)")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="log line format (default text)")
    p.add_argument("--version", action="version", version=f"sdnscent {__version__}")
    return p


def configure_logging(level: str, fmt: str) -> None:
    """Structured, quiet-by-default logging on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # os-ken and werkzeug are chatty at INFO; keep them at WARNING unless debugging.
    for name in ("os_ken", "werkzeug"):
        logging.getLogger(name).setLevel(level if level == "DEBUG" else "WARNING")


def main(argv: list[str] | None = None) -> int:
    """Entry point of sdnscent-manager."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    if args.policy:
        try:
            load_policy(args.policy)
        except PolicyError as exc:
            print(f"sdnscent-manager: --policy rejected:\n{exc}", file=sys.stderr)
            return 2
    try:
        store = open_store(args.store)
        client = getattr(store, "_client", None)  # Redis: may its user do what we need?
        problem = check_controller_access(client) if client is not None else None
        store.close()
    except StoreError as exc:
        print(f"sdnscent-manager: --store: {exc}", file=sys.stderr)
        return 2
    if problem is not None:
        print(f"sdnscent-manager: --store {redact(args.store)}: {problem}; the controller "
              "needs full access: connect as the 'controller' user of `sdnscent redis-acl` "
              "(docs/store.rst)", file=sys.stderr)
        return 2
    token = args.api_token
    try:
        if args.api_token_file:
            token = read_token_file(args.api_token_file)
        keys = read_keys_file(args.telemetry_keys) if args.telemetry_keys else None
        tls = _tls_options(args)
        lldp_secret = load_or_create_secret(args.lldp_secret_file) \
            if args.lldp_secret_file else None
    except (SecretFileError, SecretError, ValueError, OSError) as exc:
        print(f"sdnscent-manager: {exc}", file=sys.stderr)
        return 2
    SETTINGS.store_url = args.store
    SETTINGS.api_listen = args.api_listen
    SETTINGS.policy_file = args.policy
    SETTINGS.api_token = token
    SETTINGS.api_open_reads = args.api_open_reads
    SETTINGS.packet_in_rate = args.packet_in_rate
    SETTINGS.packet_in_burst = args.packet_in_burst
    SETTINGS.telemetry_keys = keys
    SETTINGS.default_link_capacity = args.default_link_capacity
    SETTINGS.lldp_interval = args.lldp_interval
    SETTINGS.link_timeout = 3.5 * args.lldp_interval
    SETTINGS.switch_grace = args.switch_grace
    SETTINGS.trail_lease = args.trail_lease
    SETTINGS.stats_interval = args.stats_interval
    SETTINGS.controller_id = args.controller_id
    SETTINGS.leader_ttl = args.leader_ttl
    SETTINGS.link_high = args.link_high
    SETTINGS.link_low = args.link_low
    SETTINGS.move_hold = args.move_hold
    SETTINGS.routing = args.routing
    SETTINGS.allocator = args.allocator
    SETTINGS.ovsdb_targets = tuple(args.ovsdb or ())
    SETTINGS.link_mtu = args.link_mtu
    SETTINGS.protection = args.protection
    SETTINGS.bfd_interval = args.bfd_interval
    SETTINGS.lldp_secret = lldp_secret
    SETTINGS.port_security = args.port_security == "on"
    SETTINGS.port_mac_limit = args.port_mac_limit
    SETTINGS.probe_timeout = args.probe_timeout
    if not tls and not _loopback(args.ofp_listen_host):
        LOG.warning("OpenFlow listens on %s over plain TCP: anyone who reaches that address "
                    "can pose as a switch; use --ofp-ssl-* (README, docs/security.rst) or "
                    "keep it on loopback", args.ofp_listen_host)
    if not args.link_low < args.link_high:
        print(f"sdnscent-manager: --link-low {args.link_low} must be below --link-high "
              f"{args.link_high}", file=sys.stderr)
        return 2
    try:
        open_allocator(args.allocator)
    except AllocatorError as exc:
        print(f"sdnscent-manager: --allocator: {exc}", file=sys.stderr)
        return 2

    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    from os_ken.controller import controller  # noqa: F401  registers the ofp options

    cfg.CONF(args=["--ofp-tcp-listen-port", str(args.ofp_tcp_listen_port),
                   "--ofp-listen-host", args.ofp_listen_host, *tls],
             project="os_ken", version=__version__)
    apps = [_app_module(a) for a in (args.apps or [DEFAULT_APP])]
    manager = AppManager.get_instance()
    stop = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            manager.load_apps(apps)
            contexts = manager.create_contexts()
            manager.instantiate_apps(**contexts)
            print(f"sdnscent-manager {__version__}: {','.join(apps)}; OpenFlow on "
                  f"{args.ofp_listen_host}:{args.ofp_tcp_listen_port}"
                  f"{' (TLS)' if tls else ''}; REST API on "
                  f"{args.api_listen or 'none'}", file=sys.stderr, flush=True)
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)
            stop.set()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    def on_hangup(_signum: int, _frame: Any) -> None:
        for app in list(manager.applications.values()):
            reload = getattr(app, "reload_policy_file", None)
            if callable(reload):
                threading.Thread(target=reload, name="sdnscent-sighup", daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    threading.Thread(target=run, name="sdnscent-apps", daemon=True).start()
    while not stop.wait(0.5):
        pass
    if failed:
        print(f"sdnscent-manager: cannot start: {failed[0]}", file=sys.stderr)
        _exit(1)
    stopper = threading.Thread(target=_stop_apps, args=(manager,), daemon=True)
    stopper.start()
    stopper.join(STOP_TIMEOUT)
    _exit(0)
    return 0


def _stop_apps(manager: Any) -> None:
    for app in list(manager.applications.values()):
        try:
            app.stop()
        except Exception:  # best effort on the way out
            LOG.debug("stopping %s failed", app.name, exc_info=True)


def _exit(code: int) -> None:
    """Leave now: os-ken's listener threads cannot be joined."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
