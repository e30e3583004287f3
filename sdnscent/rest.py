"""The REST API (Flask): read-only views of topology, trails and events.

`create_app` takes the controller logic object and serves JSON under
/api/v1. Mutating endpoints arrive with the policy and operator issues.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from . import __version__
from .controller import ScentController

PREFIX = "/api/v1"

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "sdnscent", "version": __version__},
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
        f"{PREFIX}/events": {"get": {"summary": "Recent controller events",
                                     "responses": {"200": {"description": "events"}}}},
    },
}


def create_app(ctrl: ScentController) -> Flask:
    """A Flask app serving `ctrl`'s state."""
    app = Flask("sdnscent")
    app.json.sort_keys = False  # type: ignore[attr-defined]

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

    @app.get(f"{PREFIX}/events")
    def events() -> Any:
        with ctrl.lock:
            items = [e.to_dict() for e in ctrl.events]
        return jsonify(events=items)

    @app.get(f"{PREFIX}/openapi.json")
    def openapi() -> Any:
        return jsonify(OPENAPI)

    return app
