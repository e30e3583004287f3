"""The REST API (Flask): read-only views of topology, trails and events.

`create_app` takes the controller logic object and serves JSON under
/api/v1. Mutating endpoints arrive with the policy and operator issues.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from . import __version__, dag
from .controller import ScentController
from .policy import DEFAULT_APP, Policy, to_jsonable
from .policyfile import PolicyError, parse_policy

PREFIX = "/api/v1"

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "sdnscent", "version": __version__},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        f"{PREFIX}/topology": {"get": {"summary": "Switches, links with utilisation, hosts",
                                       "responses": {"200": {"description": "topology"}}}},
        f"{PREFIX}/trails": {"get": {"summary": "All trails",
                                     "responses": {"200": {"description": "trails"}}}},
        f"{PREFIX}/trails/{{trail_id}}": {"get": {
            "summary": "One trail",
            "parameters": [{"name": "trail_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": {"description": "trail"}, "400": {"description": "bad id"},
                          "404": {"description": "no such trail"}}}},
        f"{PREFIX}/nodes": {"get": {
            "summary": "Computing nodes' load (CPU, memory) from sdnscent-agent samples",
            "responses": {"200": {"description": "nodes"}}}},
        f"{PREFIX}/controller": {"get": {
            "summary": "This controller: id, role (master/standby), generation, store health",
            "responses": {"200": {"description": "controller status"}}}},
        f"{PREFIX}/events": {"get": {"summary": "Recent controller events",
                                     "responses": {"200": {"description": "events"}}}},
        f"{PREFIX}/policy": {
            "get": {"summary": "The running policy",
                    "responses": {"200": {"description": "policy"}}},
            "put": {"summary": "Replace the policy (YAML body); atomic, bearer token",
                    "security": [{"bearer": []}],
                    "requestBody": {"content": {"application/yaml": {
                        "schema": {"type": "string"}}}},
                    "responses": {"200": {"description": "applied"},
                                  "400": {"description": "rejected, nothing changed"},
                                  "401": {"description": "no or wrong token"},
                                  "403": {"description": "no token configured"}}}},
        f"{PREFIX}/apps/{{name}}/pairs": {"get": {
            "summary": "An application's host pairs ranked by use and criticality",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ranked pairs"},
                          "404": {"description": "no such application"}}}},
        f"{PREFIX}/apps/{{name}}/dag": {"get": {
            "summary": "An application's trail DAG",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "format", "in": "query",
                 "schema": {"type": "string", "enum": list(("json", "dot", "graphml"))}},
                {"name": "direction", "in": "query",
                 "schema": {"type": "string", "enum": ["forward", "reverse"]}}],
            "responses": {"200": {"description": "the DAG"}, "400": {"description": "format"},
                          "404": {"description": "no such application"},
                          "409": {"description": "the trails form a cycle"}}}},
    },
}


PolicyHook = Callable[[Policy], dict[str, Any]]
DAG_FORMATS = ("json", "dot", "graphml")


def create_app(ctrl: ScentController, *, token: str | None = None,
               apply_policy: PolicyHook | None = None,
               status: Callable[[], dict[str, Any]] | None = None) -> Flask:
    """A Flask app serving `ctrl`'s state.

    Mutating calls need `Authorization: Bearer <token>`; without a configured
    token they are refused. `apply_policy` installs a validated policy (the
    controller app runs it on its worker) and returns a summary. `status`
    describes the controller process (role, store health) for /controller.
    """
    app = Flask("sdnscent")
    app.json.sort_keys = False  # type: ignore[attr-defined]

    def authorised() -> Any:
        """None if the request carries the token, else the error response."""
        if not token:
            return jsonify(error="mutating calls are disabled: start the controller with "
                                 "--api-token", status=403), 403
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return jsonify(error="missing or wrong bearer token", status=401), 401
        return None

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.description, status=exc.code), exc.code

    @app.get(f"{PREFIX}/topology")
    def topology() -> Any:
        with ctrl.lock:
            return jsonify(ctrl.topology_view())

    @app.get(f"{PREFIX}/trails")
    def trails() -> Any:
        with ctrl.lock:
            items = [ctrl.trail_view(t) for t in ctrl.store.all()]
        return jsonify(trails=items, count=len(items))

    @app.get(f"{PREFIX}/trails/<trail_id>")
    def trail(trail_id: str) -> Any:
        if not (trail_id.isascii() and trail_id.isdigit()) or int(trail_id) < 1:
            return jsonify(error=f"trail id {trail_id!r} is not a positive integer",
                           status=400), 400
        with ctrl.lock:
            found = ctrl.store.get(int(trail_id))
            if found is None:
                return jsonify(error=f"trail {trail_id} not found", status=404), 404
            return jsonify(ctrl.trail_view(found))

    @app.get(f"{PREFIX}/nodes")
    def nodes() -> Any:
        with ctrl.lock:
            ctrl.read_node_loads()
            return jsonify(ctrl.nodes_view())

    @app.get(f"{PREFIX}/controller")
    def controller() -> Any:
        return jsonify(status() if status is not None else {"role": "single"})

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
        denied = authorised()
        if denied is not None:
            return denied
        text = request.get_data(as_text=True)
        try:
            policy = parse_policy(text, "PUT /api/v1/policy")
        except PolicyError as exc:
            return jsonify(error="policy rejected; the running policy is unchanged",
                           problems=[str(p) for p in exc.problems], status=400), 400
        if apply_policy is None:
            return jsonify(error="this server cannot apply policies", status=501), 501
        return jsonify(status="applied", **apply_policy(policy))

    @app.get(f"{PREFIX}/apps/<name>/dag")
    def app_dag(name: str) -> Any:
        fmt = request.args.get("format", "json")
        direction = request.args.get("direction", "forward")
        if fmt not in DAG_FORMATS:
            return jsonify(error=f"format {fmt!r} is not one of {', '.join(DAG_FORMATS)}",
                           status=400), 400
        if direction not in ("forward", "reverse"):
            return jsonify(error=f"direction {direction!r} is not forward or reverse",
                           status=400), 400
        with ctrl.lock:
            if name != DEFAULT_APP and ctrl.policy.app(name) is None:
                return jsonify(error=f"application {name!r} not found", status=404), 404
            try:
                graph = ctrl.app_dag(name, reverse=direction == "reverse")
            except dag.DagCycleError as exc:
                return jsonify(error=str(exc), status=409), 409
        if fmt == "json":
            return jsonify(dag.to_json(graph))
        if fmt == "dot":
            return Response(dag.to_dot(graph), mimetype="text/vnd.graphviz")
        return Response(dag.to_graphml(graph), mimetype="application/graphml+xml")

    @app.get(f"{PREFIX}/apps/<name>/pairs")
    def app_pairs(name: str) -> Any:
        with ctrl.lock:
            if name != DEFAULT_APP and ctrl.policy.app(name) is None:
                return jsonify(error=f"application {name!r} not found", status=404), 404
            return jsonify(app=name, pairs=ctrl.pair_ranking(name))

    @app.get(f"{PREFIX}/openapi.json")
    def openapi() -> Any:
        return jsonify(OPENAPI)

    return app
