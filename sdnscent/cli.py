"""The `sdnscent` command: read a running controller's trails over REST, and
check policy files without a network."""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from .policyfile import PolicyError, Problem, load_policy, parse_policy

DEFAULT_API = "http://127.0.0.1:8080"


class CliError(RuntimeError):
    """A user-facing failure: printed without a traceback."""


def fetch(api: str, path: str, timeout: float = 5.0) -> Any:
    """GET `path` from the API at `api` and decode the JSON."""
    url = api.rstrip("/") + "/api/v1" + path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("error", exc.reason)
        except ValueError:
            detail = exc.reason
        raise CliError(f"{url}: {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the controller API at {api}: {reason}") from None
    except ValueError as exc:  # a malformed URL, or an answer that is not JSON
        raise CliError(f"{url}: not a usable sdnscent API ({exc})") from None
    except http.client.HTTPException as exc:
        raise CliError(f"{url}: not an HTTP server ({type(exc).__name__})") from None


def format_trails(trails: list[dict[str, Any]]) -> str:
    """A fixed-width table: id, label, src, dst, state, hop switches."""
    rows = [("ID", "LABEL", "SRC", "DST", "STATE", "HOPS")]
    for t in trails:
        hops = " ".join(h.get("switch") or h["dpid"] for h in t["hops"])
        rows.append((str(t["id"]), str(t["label"]), t["src"], t["dst"], t["state"], hops))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
             for r in rows)
    return "\n".join(lines)


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `sdnscent`."""
    parser = argparse.ArgumentParser(prog="sdnscent", description=__doc__)
    parser.add_argument("--api", default=DEFAULT_API,
                        help=f"controller REST API base URL (default {DEFAULT_API})")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trails", help="list the trails of a running controller")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = sub.add_parser("trail", help="show one trail")
    p.add_argument("id", type=int, help="trail id")
    p = sub.add_parser("check-policy", help="validate policy files (no network needed)",
                       description="Validate policy files (docs/policy.rst): print "
                       "'FILE: ok (...)' or every problem as FILE:LINE: FIELD: MESSAGE; "
                       "exit 1 if any file has a problem.")
    p.add_argument("files", nargs="+", metavar="FILE", help="policy file (YAML); - for stdin")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sdnscent` command."""
    args = build_parser().parse_args(argv)
    if args.command == "check-policy":
        return check_policy(args.files)
    try:
        if args.command == "trails":
            data = fetch(args.api, "/trails")
            print(json.dumps(data, indent=2) if args.json else format_trails(data["trails"]))
        elif args.command == "trail":
            print(json.dumps(fetch(args.api, f"/trails/{args.id}"), indent=2))
    except CliError as exc:
        print(f"sdnscent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
