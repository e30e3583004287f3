"""The `sdnscent` command: read a running controller's trails over REST, check
policy files and plan trails offline, without a network."""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from . import redisacl
from .policyfile import PolicyError, Problem, load_policy, parse_policy
from .topology import DEFAULT_LINK_CAPACITY

DEFAULT_API = "http://127.0.0.1:8080"
PLAN_MODES = ("single", "ecmp", "gff", "multipath", "optimal", "fast")
TRAIL_FILTERS = ("app", "class", "state", "host", "src", "dst", "switch")
LARGE_INPUT = 5_000  # demands: from here on `plan` reports progress on stderr


class CliError(RuntimeError):
    """A user-facing failure: printed without a traceback."""


def fetch(api: str, path: str, timeout: float = 5.0, method: str = "GET",
          token: str | None = None) -> Any:
    """Call `path` of the API at `api` and decode the JSON answer."""
    url = api.rstrip("/") + "/api/v1" + path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        req = urllib.request.Request(url, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            error = json.load(exc).get("error", exc.reason)
        except ValueError:
            error = exc.reason
        if isinstance(error, dict):  # {"code", "message", "field"}
            error = error.get("message", exc.reason)
        raise CliError(f"{url}: {exc.code} {error}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the controller API at {api}: {reason}") from None
    except ValueError as exc:  # a malformed URL, or an answer that is not JSON
        raise CliError(f"{url}: not a usable sdnscent API ({exc})") from None
    except http.client.HTTPException as exc:
        raise CliError(f"{url}: not an HTTP server ({type(exc).__name__})") from None


def table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))
                      + "  " + r[-1]).rstrip() for r in rows)


def _count(value: Any) -> str:
    return "-" if value is None else str(value)


def format_trail(t: dict[str, Any]) -> str:
    """One trail: its fields, then one line per hop."""
    fields = [("id", t["id"]), ("label", t["label"]), ("app", t["app"]), ("class", t["class"]),
              ("state", t["state"]), ("src", f"{t['src']} ({t['src_mac']})"),
              ("dst", f"{t['dst']} ({t['dst_mac']})"), ("packets", t["packets"]),
              ("bytes", t["bytes"]), ("setup", f"{t['setup_latency_ms']} ms"
                                       if t.get("setup_latency_ms") is not None else "-"),
              ("lease", f"{t.get('lease', 0)} s"), ("rate cap", t.get("rate_cap") or "none")]
    head = "\n".join(f"{k + ':':<10}{v}" for k, v in fields)
    rows = [("HOP", "SWITCH", "DPID", "IN", "OUT", "VIA")]
    for i, h in enumerate(t["hops"]):
        rows.append((str(i), h.get("switch") or "", h["dpid"], str(h["in_port"]),
                     str(h["out_port"]), h.get("via") or ""))
    return head + "\n\n" + table(rows)


def format_trace(t: dict[str, Any]) -> str:
    """A trace: per hop the switch, ports, the link's utilisation and the hop's counters."""
    title = (f"trail {t['id']} label {t['label']} {t['app']}/{t['class']} {t['src']} -> "
             f"{t['dst']} ({t['state']}; counters: {t['counters']})")
    rows = [("HOP", "SWITCH", "IN", "OUT", "NEXT", "UTIL", "PACKETS", "BYTES")]
    for h in t["hops"]:
        nxt = h.get("next")
        link = h.get("link")
        rows.append((str(h["index"]), h["switch"], str(h["in_port"]), str(h["out_port"]),
                     f"{nxt['switch']}:{nxt['port']}" if nxt else (h.get("via") or "host"),
                     f"{link['utilization']:.0%}" if link else "-",
                     _count(h.get("packets")), _count(h.get("bytes"))))
    return title + "\n" + table(rows)


def format_trails(trails: list[dict[str, Any]]) -> str:
    """A fixed-width table: id, label, src, dst, state, hop switches."""
    rows = [("ID", "LABEL", "SRC", "DST", "STATE", "HOPS")]
    for t in trails:
        hops = " ".join(h.get("switch") or h["dpid"] for h in t["hops"])
        rows.append((str(t["id"]), str(t["label"]), t["src"], t["dst"], t["state"], hops))
    return table(rows)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_policy(paths: list[str]) -> int:
    """Validate policy files: print `FILE: ok (...)` or every problem; 0 if all are ok.

    "-" reads standard input.
    """
    status = 0
    for path in paths:
        try:
            if path == "-":
                try:
                    text = sys.stdin.read()
                except (OSError, UnicodeDecodeError) as exc:
                    raise PolicyError([Problem("<stdin>", None, "", f"cannot read: {exc}")]) \
                        from None
                policy = parse_policy(text, "<stdin>")
            else:
                policy = load_policy(path)
        except PolicyError as exc:
            print(exc)
            status = 1
            continue
        name = "<stdin>" if path == "-" else path
        print(f"{name}: ok ({_plural(len(policy.applications), 'application')}, "
              f"{_plural(len(policy.nodes), 'node')}, "
              f"{_plural(len(policy.network_functions()), 'network function')})")
    return status


def _stderr(message: str) -> None:
    print(f"sdnscent plan: {message}", file=sys.stderr, flush=True)


def plan_offline(args: argparse.Namespace) -> dict[str, Any]:
    """Run `sdnscent plan`: the JSON document of docs/offline.rst plus mode and baselines.

    Raises NetFileError, PolicyError, PlanError or NoPathError on bad input.
    """
    from .netfile import plan_json

    net, trails, loads, extra = plan_parts(args)
    return plan_json(net, list(trails), loads, extra)


def plan_parts(args: argparse.Namespace) -> tuple[Any, Iterable[Any], list[float], dict[str, Any]]:
    """`sdnscent plan` as parts to stream: the network, its trails (possibly lazy),
    the per-arc loads and the extra fields (mode, baselines, bound)."""
    from .baselines import Fabric, PlanError, ecmp, global_first_fit, shortest_path
    from .mcf import min_max_utilization, optimal
    from .multipath import multipath
    from .netfile import (
        Demand,
        arc_loads,
        load_demands,
        load_network,
        max_utilization,
    )
    from .policy import EMPTY_POLICY

    net = load_network(args.topology, default_capacity=args.default_capacity,
                       demand_scale=args.demand_scale)
    if args.demands:
        net.demands = load_demands(net, args.demands, scale=args.demand_scale)
    elif not net.demands:
        raise PlanError(f"{args.topology}: no demands: give --demands FILE or graph.demands")
    policy = load_policy(args.policy) if args.policy else EMPTY_POLICY
    if args.app:
        net.demands = [d if d.app else Demand(d.src, d.dst, d.rate, args.app)
                       for d in net.demands]
    demands = net.demands
    large = len(demands) >= LARGE_INPUT or len(net.ids) >= 1000
    if large:
        _stderr(f"{len(net.ids)} nodes, {len(net.arcs)} link directions, "
                f"{len(demands)} demands; mode {args.mode}")

    def progress(done: int, total: int) -> None:
        if large:
            _stderr(f"planned {done}/{total} trails")

    fabric = Fabric(net, policy)
    for app in dict.fromkeys(d.app for d in demands):
        fabric.router(app)  # an unknown or unplannable application fails here
    planners = {"single": shortest_path, "ecmp": ecmp, "gff": global_first_fit}
    results: dict[str, Any] = {}
    if args.mode != "fast" or args.baselines:
        results["single"] = shortest_path(fabric, demands,
                                          progress if args.mode == "single" else None)
    single = results.get("single")
    lp = None
    if args.mode == "optimal" or args.baselines:
        if large:
            _stderr("solving the min max-utilisation LP" + (
                " for the baselines (the slowest part on large inputs; --no-baselines skips it)"
                if args.baselines and args.mode != "optimal" else ""))
        upper = max_utilization(net, arc_loads(net, single))
        lp = min_max_utilization(fabric, demands, upper or None)
    extra: dict[str, Any] = {"mode": args.mode}
    loads = None
    if args.mode == "fast":
        from .fastplan import fast

        plan = fast(fabric, demands, gap=args.gap, time_limit=args.time_limit,
                    log=_stderr if large or args.time_limit else None)
        sol = plan.solution
        extra.update(bound=sol.bound, gap=sol.gap, seconds=round(sol.seconds, 3))
        single_value = None if single is None else max_utilization(net, arc_loads(net, single))
        if single_value is not None and single_value < sol.value:
            results["fast"] = single  # never worse than the controller's single path
            extra.update(fallback="single", gap=single_value / sol.bound - 1 if sol.bound else 0.0)
        else:
            results["fast"], loads = plan.trails(), plan.loads
    elif args.mode == "multipath":
        upper = max_utilization(net, arc_loads(net, single))
        results["multipath"] = multipath(fabric, demands, None,
                                         _stderr if large else None, upper or None).trails
    elif args.mode == "optimal":
        assert lp is not None
        results["optimal"] = optimal(fabric, demands, progress, lp)
    elif args.mode != "single":
        results[args.mode] = planners[args.mode](fabric, demands, progress)
    trails = results[args.mode]
    if loads is None:
        loads = arc_loads(net, trails)
    if args.baselines:
        for mode in ("ecmp", "gff"):
            if mode not in results:
                results[mode] = planners[mode](fabric, demands)
        base = {mode: max_utilization(net, arc_loads(net, results[mode]))
                for mode in ("single", "ecmp", "gff")}
        assert lp is not None
        base["optimal"] = lp.value
        extra["baselines"] = {"max_utilization": base}
    return net, trails, loads, extra


def _plan(args: argparse.Namespace) -> int:
    from .baselines import PlanError
    from .netfile import NetFileError, write_plan
    from .planner import NoPathError

    try:
        net, trails, loads, extra = plan_parts(args)
    except (NetFileError, PlanError, NoPathError) as exc:
        _stderr(str(exc))
        return 2
    except PolicyError as exc:
        _stderr(f"policy: {exc}")
        return 2
    if args.output and args.output != "-":
        try:
            with open(args.output, "w", encoding="utf-8") as out:
                write_plan(out, net, trails, loads, extra, args.pretty)
        except OSError as exc:
            _stderr(f"cannot write {args.output}: {exc}")
            return 2
    else:
        write_plan(sys.stdout, net, trails, loads, extra, args.pretty)
        sys.stdout.flush()
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `sdnscent`."""
    parser = argparse.ArgumentParser(prog="sdnscent", description=__doc__)
    parser.add_argument("--api", default=DEFAULT_API,
                        help=f"controller REST API base URL (default {DEFAULT_API})")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trails", help="list the trails of a running controller")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for name in TRAIL_FILTERS:
        p.add_argument(f"--{name}", help=f"only trails with this {name} (see docs/rest.rst)")
    p.add_argument("--limit", type=int, help="at most this many trails")
    p.add_argument("--offset", type=int, help="skip this many trails")
    p = sub.add_parser("trail", help="show one trail")
    p.add_argument("id", type=int, help="trail id")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = sub.add_parser("trace", help="the trail(s) from SRC to DST hop by hop, with each "
                       "hop's counters read from the switches")
    p.add_argument("src", help="source host (IPv4, IPv6 or MAC address)")
    p.add_argument("dst", help="destination host (IPv4, IPv6 or MAC address)")
    p.add_argument("--app", help="only this application's trail")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p = sub.add_parser("check-policy", help="validate policy files (no network needed)",
                       description="Validate policy files (docs/policy.rst): print "
                       "'FILE: ok (...)' or every problem as FILE:LINE: FIELD: MESSAGE; "
                       "exit 1 if any file has a problem.")
    p.add_argument("files", nargs="+", metavar="FILE", help="policy file (YAML); - for stdin")
    p = sub.add_parser("plan", help="plan trails offline for a topology and demands",
                       description="Plan trails offline (docs/offline.rst): read a networkx "
                       "node-link topology with link capacities (bit/s) and demands, print "
                       "JSON with every trail's paths and split weights, per-link load and "
                       "utilisation, max_utilization and the baselines' max utilisation. "
                       "Bad input exits 2 with a message naming the file, line and field.")
    p.add_argument("--topology", required=True, metavar="FILE",
                   help="networkx node-link JSON (graph.demands optional)")
    p.add_argument("--demands", metavar="FILE",
                   help="demands {src: {dst: rate}} or [{src, dst, rate, app}] (bit/s); "
                   "default: the topology's graph.demands")
    p.add_argument("--policy", metavar="FILE", help="policy file (YAML) for applications' "
                   "constraints and costs")
    p.add_argument("--app", metavar="NAME", help="plan demands without an application as "
                   "this application of the policy (default: the per-pair default trail)")
    p.add_argument("--mode", choices=PLAN_MODES, default="multipath",
                   help="single: one path per trail exactly as the controller plans; ecmp: "
                   "hash-based ECMP, each demand one flow on the least-cost path its 5-tuple "
                   "hash picks; gff: Hedera's Global First Fit; "
                   "multipath (default): split to minimise max utilisation; optimal: the "
                   "MCF LP's flows as paths; fast: within --gap of the minimum max "
                   "utilisation at WAN scale, with a proven bound")
    p.add_argument("--gap", type=_positive, default=0.01, metavar="FRACTION",
                   help="fast: stop once max utilisation <= (1 + FRACTION) x the bound "
                   "(default 0.01)")
    p.add_argument("--time-limit", type=_positive, metavar="SECONDS",
                   help="fast: return the best plan found within this time, with its bound")
    p.add_argument("--default-capacity", type=_positive, default=float(DEFAULT_LINK_CAPACITY),
                   metavar="BPS", help="capacity of links without one (default 10e9)")
    p.add_argument("--demand-scale", type=_positive, default=1.0, metavar="FACTOR",
                   help="multiply every demand rate (e.g. 1e6 to read a matrix in Mbit/s)")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the baselines (and the LP) for large inputs")
    p.add_argument("-o", "--output", metavar="FILE", help="write the JSON here (default stdout)")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    redisacl.add_parser(sub)
    return parser


def _trace(args: argparse.Namespace) -> int:
    """`sdnscent trace SRC DST`: every trail from SRC to DST, traced."""
    query = {"src": args.src, "dst": args.dst, **({"app": args.app} if args.app else {})}
    trails = fetch(args.api, f"/trails?{urllib.parse.urlencode(query)}")["trails"]
    if not trails:
        raise CliError(f"no trail from {args.src} to {args.dst}"
                       + (f" for {args.app}" if args.app else ""))
    traces = [fetch(args.api, f"/trails/{t['id']}/trace", timeout=15.0) for t in trails]
    print(json.dumps(traces, indent=2) if args.json
          else "\n\n".join(format_trace(t) for t in traces))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sdnscent` command."""
    args = build_parser().parse_args(argv)
    if args.command == "check-policy":
        return check_policy(args.files)
    if args.command == "plan":
        return _plan(args)
    if args.command == "redis-acl":
        return redisacl.run(args)
    try:
        if args.command == "trails":
            query = {k: getattr(args, k) for k in (*TRAIL_FILTERS, "limit", "offset")
                     if getattr(args, k) is not None}
            path = "/trails" + (f"?{urllib.parse.urlencode(query)}" if query else "")
            data = fetch(args.api, path)
            print(json.dumps(data, indent=2) if args.json else format_trails(data["trails"]))
        elif args.command == "trail":
            data = fetch(args.api, f"/trails/{args.id}")
            print(json.dumps(data, indent=2) if args.json else format_trail(data))
        elif args.command == "trace":
            return _trace(args)
    except CliError as exc:
        print(f"sdnscent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
