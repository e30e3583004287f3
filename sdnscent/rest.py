"""The REST API (Flask): topology, trails, events, policy, metrics and the web view.

`create_app` takes the controller logic object and serves JSON under /api/v1
(docs/rest.rst, the OpenAPI document in sdnscent/openapi.py). It only reads
the controller; whatever changes the network (policy, removing or re-planning
a trail) or reads the switches (trace counters) is a callback from the os-ken
app, which runs it on its worker. Every error is
``{"error": {"code", "message", "field"}}`` with its HTTP status.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from . import dag
from .controller import ScentController
from .openapi import DEFAULT_LIMIT, MAX_LIMIT, MAX_TRAIL_ID, PREFIX, TRAIL_STATES, document
from .policy import DEFAULT_APP, Policy, to_jsonable
from .policyfile import PolicyError, parse_policy
from .topology import TopologyError, dpid_str
from .trails import Trail

__all__ = ["PREFIX", "ApiError", "create_app"]

LOG = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"
DAG_FORMATS = ("json", "dot", "graphml")
MAX_BODY = 1 << 20  # bytes of a policy body
TRAIL_FILTERS = ("app", "class", "state", "host", "src", "dst", "switch")
PAGE_PARAMS = ("limit", "offset")
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
HEX_DPID = re.compile(r"[0-9a-fA-F]{1,16}")
SWITCH_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")

CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_media_type", 500: "internal", 501: "not_implemented",
         503: "unavailable"}

PolicyHook = Callable[[Policy], dict[str, Any]]
# trail id -> the app's answer ({"status": ..., "trail": view or None}), None if unknown
TrailHook = Callable[[int], dict[str, Any] | None]
# trail -> dpid -> the switch's flows with the trail's cookie, None if unreadable
FlowStatsHook = Callable[[Trail], dict[int, list[dict[str, Any]] | None]]


class ApiError(Exception):
    """An answer other than 200, raised anywhere a request is handled."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.extra = status, message, field, extra

    def response(self) -> tuple[Response, int]:
        """The JSON error body and status."""
        body = {"code": CODES.get(self.status, "invalid" if self.status < 500 else "internal"),
                "message": self.message, "field": self.field, **self.extra}
        return jsonify(error=body), self.status


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def _positive_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_TRAIL_ID:
        raise ApiError(400, f"trail id {text!r} is not a positive integer "
                       f"(1..{MAX_TRAIL_ID})", "trail_id")
    return int(text)


def _int_param(name: str, text: str, low: int, high: int | None = None) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < low or \
            (high is not None and int(text) > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ApiError(400, f"{name} {text!r} is not an integer {bounds}", name)
    return int(text)


def _host_key(name: str, text: str) -> str:
    """An IPv4, IPv6 or MAC address, normalised; 400 naming `name` otherwise."""
    value = text.strip().lower()
    if MAC.fullmatch(value):
        return value
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        raise ApiError(400, f"{name} {text!r} is not an IPv4, IPv6 or MAC address",
                       name) from None


class TrailQuery:
    """Filters and page of GET /trails, parsed from the query string."""

    def __init__(self, args: Any, switch_names: dict[str, int]) -> None:
        for name in args:
            if name not in TRAIL_FILTERS and name not in PAGE_PARAMS:
                raise ApiError(400, f"unknown query parameter {name!r}; use "
                               f"{', '.join(TRAIL_FILTERS + PAGE_PARAMS)}", name)
        self.app = args.get("app")
        self.cls = args.get("class")
        self.state = args.get("state")
        if self.state is not None and self.state not in TRAIL_STATES:
            raise ApiError(400, f"state {self.state!r} is not one of "
                           f"{', '.join(TRAIL_STATES)}", "state")
        self.host = _host_key("host", args["host"]) if "host" in args else None
        self.src = _host_key("src", args["src"]) if "src" in args else None
        self.dst = _host_key("dst", args["dst"]) if "dst" in args else None
        self.switch: int | None = None
        self.nothing = False  # an unknown switch name: no trail matches
        if "switch" in args:
            text = args["switch"].strip()
            if text in switch_names:
                self.switch = switch_names[text]
            elif HEX_DPID.fullmatch(text):
                self.switch = int(text, 16)
            elif SWITCH_NAME.fullmatch(text):
                self.nothing = True
            else:
                raise ApiError(400, f"switch {args['switch']!r} is neither a switch name nor "
                               "a datapath id (up to 16 hex digits)", "switch")
        self.limit = _int_param("limit", args["limit"], 1, MAX_LIMIT) \
            if "limit" in args else DEFAULT_LIMIT
        self.offset = _int_param("offset", args["offset"], 0) if "offset" in args else 0

    def matches(self, trail: Trail) -> bool:
        """True if `trail` passes every filter given."""
        if self.nothing:
            return False
        if self.app is not None and trail.app != self.app:
            return False
        if self.cls is not None and trail.cls != self.cls:
            return False
        if self.state is not None and trail.state.value != self.state:
            return False
        ends = ((trail.src_ip, trail.src_mac), (trail.dst_ip, trail.dst_mac))
        if self.host is not None and not any(self.host in end for end in ends):
            return False
        if self.src is not None and self.src not in ends[0]:
            return False
        if self.dst is not None and self.dst not in ends[1]:
            return False
        return self.switch is None or self.switch in trail.switches

    def select(self, trails: Iterable[Trail]) -> tuple[list[Trail], int]:
        """(this page of the matching trails, how many match in all)."""
        found = [t for t in trails if self.matches(t)]
        return found[self.offset:self.offset + self.limit], len(found)


def trace_view(ctrl: ScentController, trail: Trail,
               flows: dict[int, list[dict[str, Any]] | None] | None) -> dict[str, Any]:
    """The hop-by-hop trace of `trail` (GET /trails/<id>/trace); caller holds ctrl.lock.

    `flows`: per switch, the flows carrying the trail's cookie as read from it
    (None: not read). A hop's packets and bytes are those of its label entry
    in table 1 (a one-switch trail: its classifiers in table 0).
    """
    topo = ctrl.topo
    loads = {(lk["src"], lk["src_port"]): lk for lk in ctrl.topology_view()["links"]}
    labelled = len(trail.hops) > 1 or trail.ingress.via is not None
    hops = []
    for index, hop in enumerate(trail.hops):
        link = topo.link_from(hop.dpid, hop.out_port)
        nxt = trail.hops[index + 1] if index + 1 < len(trail.hops) else None
        measured = loads.get((dpid_str(hop.dpid), hop.out_port)) if link else None
        entry: dict[str, Any] = {
            "index": index, "dpid": dpid_str(hop.dpid), "switch": topo.switch_name(hop.dpid),
            "in_port": hop.in_port, "out_port": hop.out_port, "via": hop.via,
            "next": {"dpid": dpid_str(nxt.dpid), "switch": topo.switch_name(nxt.dpid),
                     "port": nxt.in_port} if nxt is not None else None,
            "link": {"capacity": measured["capacity"], "load": measured["load"],
                     "utilization": measured["utilization"]} if measured else None,
            "packets": None, "bytes": None, "flows": None}
        read = flows.get(hop.dpid) if flows else None
        if read is not None:
            entry["flows"] = read
            if labelled:
                counted = [f for f in read if f["table"] == 1
                           and f["match"].get("mpls_label", trail.label) == trail.label
                           and f["match"].get("in_port", hop.in_port) == hop.in_port]
            else:
                counted = [f for f in read if f["table"] == 0]
            entry["packets"] = sum(f["packets"] for f in counted)
            entry["bytes"] = sum(f["bytes"] for f in counted)
        hops.append(entry)
    return {"id": trail.id, "label": trail.label, "app": trail.app, "class": trail.cls,
            "state": trail.state.value, "src": trail.src_ip, "dst": trail.dst_ip,
            "counters": "switch" if flows else "unavailable", "hops": hops}


def policy_conflict(ctrl: ScentController, policy: Policy) -> str | None:
    """Why `policy` cannot be applied to the network as it is now (None: it can).

    A network function attached to an inter-switch port would fail half-way
    through ScentController.set_policy; it is refused before anything changes.
    Caller holds ctrl.lock.
    """
    try:
        ctrl.check_policy(policy)
    except (TopologyError, ValueError) as exc:
        return str(exc)
    return None


def create_app(ctrl: ScentController, *, token: str | None = None,
               apply_policy: PolicyHook | None = None,
               status: Callable[[], dict[str, Any]] | None = None,
               flow_stats: FlowStatsHook | None = None,
               remove_trail: TrailHook | None = None,
               replan_trail: TrailHook | None = None,
               pin_trail: Callable[[int, bool], dict[str, Any] | None] | None = None,
               metrics: Callable[[], tuple[bytes, str]] | None = None,
               open_reads: bool = False,
               audit: Callable[[], dict[str, Any]] | None = None) -> Flask:
    """A Flask app serving `ctrl`'s state.

    Mutating calls need `Authorization: Bearer <token>`; without a configured
    token they are refused (403). Reads are open to loopback clients; others
    need the token too unless `open_reads`. The hooks are the os-ken app's:
    `apply_policy` installs a validated policy and returns a summary,
    `remove_trail` / `replan_trail` act on one trail (None: unknown id; they
    may raise ApiError, e.g. 409 on a standby), `flow_stats` reads a trail's
    flows from its switches, `audit` reads every switch's table and says what
    an audit would fix, `status` describes the controller process and
    `metrics` renders /metrics (default: sdnscent.metrics over `ctrl` alone).
    """
    app = Flask("sdnscent")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    openapi_doc = document()
    if metrics is None:
        from .metrics import Metrics

        metrics = Metrics(ctrl).render

    def check_token() -> None:
        """Raise 401/403 unless the request carries the configured token."""
        if not token:
            raise ApiError(403, "mutating calls are disabled: start the controller with "
                           "--api-token-file (or --api-token)")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise ApiError(401, "missing or wrong bearer token", "Authorization")

    @app.before_request
    def reads_from_afar() -> None:
        if open_reads or _is_loopback(request.remote_addr):
            return
        if not token:
            raise ApiError(403, "this API answers loopback clients only: start the controller "
                           "with --api-open-reads or --api-token-file")
        check_token()

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        resp, code = ApiError(exc.code or 500, exc.description or exc.name).response()
        valid = getattr(exc, "valid_methods", None)
        if valid:  # 405 says what is allowed
            resp.headers["Allow"] = ", ".join(valid)
        return resp, code

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Any:
        LOG.exception("REST %s %s failed", request.method, request.path)
        return ApiError(500, f"internal error ({type(exc).__name__}); see the controller "
                        "log").response()

    def found(trail_id: str) -> Trail:
        number = _positive_id(trail_id)
        trail = ctrl.store.get(number)
        if trail is None:
            raise ApiError(404, f"trail {number} not found", "trail_id")
        return trail

    @app.get(f"{PREFIX}/topology")
    def topology() -> Any:
        with ctrl.lock:
            return jsonify(ctrl.topology_view())

    @app.get(f"{PREFIX}/trails")
    def trails() -> Any:
        with ctrl.lock:
            names = {ctrl.topo.switch_name(d): d for d in ctrl.topo.switches}
            query = TrailQuery(request.args, names)
            page, total = query.select(ctrl.store.all())
            items = [ctrl.trail_view(t) for t in page]
        end = query.offset + len(items)
        return jsonify(trails=items, count=len(items), total=total, offset=query.offset,
                       limit=query.limit, next_offset=end if end < total else None)

    @app.get(f"{PREFIX}/trails/<trail_id>")
    def trail(trail_id: str) -> Any:
        with ctrl.lock:
            return jsonify(ctrl.trail_view(found(trail_id)))

    @app.get(f"{PREFIX}/trails/<trail_id>/trace")
    def trace(trail_id: str) -> Any:
        with ctrl.lock:
            target = found(trail_id)
        flows = flow_stats(target) if flow_stats is not None else None
        with ctrl.lock:
            return jsonify(trace_view(ctrl, ctrl.store.get(target.id) or target, flows))

    def mutate(hook: TrailHook | None, trail_id: str) -> Any:
        check_token()
        number = _positive_id(trail_id)
        if hook is None:
            raise ApiError(501, "this server cannot change trails")
        with ctrl.lock:
            found(trail_id)
        result = hook(number)
        if result is None:
            raise ApiError(404, f"trail {number} not found", "trail_id")
        return jsonify(id=number, **result)

    @app.delete(f"{PREFIX}/trails/<trail_id>")
    def delete_trail(trail_id: str) -> Any:
        return mutate(remove_trail, trail_id)

    @app.post(f"{PREFIX}/trails/<trail_id>/replan")
    def replan(trail_id: str) -> Any:
        return mutate(replan_trail, trail_id)

    @app.put(f"{PREFIX}/trails/<trail_id>/pin")
    def pin(trail_id: str) -> Any:
        return mutate(None if pin_trail is None else lambda n: pin_trail(n, True), trail_id)

    @app.delete(f"{PREFIX}/trails/<trail_id>/pin")
    def unpin(trail_id: str) -> Any:
        return mutate(None if pin_trail is None else lambda n: pin_trail(n, False), trail_id)

    @app.get(f"{PREFIX}/nodes")
    def nodes() -> Any:
        with ctrl.lock:
            ctrl.read_node_loads()
            view = ctrl.nodes_view()
            reader = getattr(ctrl, "node_reader", None)
            rejected = dict(getattr(reader, "rejected_counts", {}) or {})
        return jsonify(**view, rejected=rejected)

    @app.get(f"{PREFIX}/audit")
    def audit_now() -> Any:
        if audit is None:  # the API alone (no OpenFlow): no switch to read
            return jsonify(switches={}, stale=0, unread=[])
        return jsonify(audit())

    @app.get(f"{PREFIX}/placement")
    def placement() -> Any:
        with ctrl.lock:
            found = ctrl.placement()
            routing = ctrl.routing
        return jsonify(routing=routing, **{"elephants": [], "moves": [], **found})

    @app.get(f"{PREFIX}/controller")
    def controller() -> Any:
        return jsonify(status() if status is not None else {"role": "single"})

    @app.get(f"{PREFIX}/edge")
    def edge() -> Any:
        with ctrl.lock:
            return jsonify(ctrl.edge.view())

    @app.get(f"{PREFIX}/events")
    def events() -> Any:
        with ctrl.lock:
            items = [e.to_dict() for e in ctrl.events]
        return jsonify(events=items)

    @app.get(f"{PREFIX}/policy")
    def get_policy() -> Any:
        with ctrl.lock:
            policy = ctrl.policy
        return jsonify(source=policy.source, policy=to_jsonable(policy))

    @app.put(f"{PREFIX}/policy")
    def put_policy() -> Any:
        check_token()
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"the body is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})", "body") from None
        try:
            policy = parse_policy(text, "PUT /api/v1/policy")
        except PolicyError as exc:
            raise ApiError(400, "policy rejected; the running policy is unchanged", "body",
                           problems=[str(p) for p in exc.problems]) from None
        if apply_policy is None:
            raise ApiError(501, "this server cannot apply policies")
        with ctrl.lock:
            conflict = policy_conflict(ctrl, policy)
        if conflict is not None:
            raise ApiError(409, f"policy does not fit the network; the running policy is "
                           f"unchanged: {conflict}", "body")
        return jsonify(status="applied", **apply_policy(policy))

    def known_app(name: str) -> None:
        if name != DEFAULT_APP and ctrl.policy.app(name) is None:
            raise ApiError(404, f"application {name!r} not found", "name")

    @app.get(f"{PREFIX}/apps/<name>/dag")
    def app_dag(name: str) -> Any:
        fmt = request.args.get("format", "json")
        direction = request.args.get("direction", "forward")
        if fmt not in DAG_FORMATS:
            raise ApiError(400, f"format {fmt!r} is not one of {', '.join(DAG_FORMATS)}",
                           "format")
        if direction not in ("forward", "reverse"):
            raise ApiError(400, f"direction {direction!r} is not forward or reverse",
                           "direction")
        with ctrl.lock:
            known_app(name)
            try:
                graph = ctrl.app_dag(name, reverse=direction == "reverse")
            except dag.DagCycleError as exc:
                raise ApiError(409, str(exc)) from None
        if fmt == "json":
            return jsonify(dag.to_json(graph))
        if fmt == "dot":
            return Response(dag.to_dot(graph), mimetype="text/vnd.graphviz")
        return Response(dag.to_graphml(graph), mimetype="application/graphml+xml")

    @app.get(f"{PREFIX}/apps/<name>/pairs")
    def app_pairs(name: str) -> Any:
        with ctrl.lock:
            known_app(name)
            return jsonify(app=name, pairs=ctrl.pair_ranking(name))

    @app.get(f"{PREFIX}/openapi.json")
    def openapi() -> Any:
        return jsonify(openapi_doc)

    @app.get("/metrics")
    def prometheus() -> Any:
        body, content_type = metrics()
        return Response(body, content_type=content_type)

    @app.get("/")
    def index() -> Any:
        return send_from_directory(WEB_DIR, "index.html", max_age=0)

    @app.get("/web/<path:name>")
    def web(name: str) -> Any:
        return send_from_directory(WEB_DIR, name, max_age=0)

    return app
