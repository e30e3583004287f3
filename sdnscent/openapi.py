"""The OpenAPI 3 document of the REST API (served at /api/v1/openapi.json).

docs/openapi.json is this document written out (`python -m sdnscent.openapi >
docs/openapi.json`); a unit test keeps the two equal, and schemathesis checks
the server's answers against it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from . import __version__
from .policyfile import _TOP_KEYS as POLICY_SECTIONS

PREFIX = "/api/v1"
MAX_TRAIL_ID = 2**32 - 1  # a trail id is the low 32 bits of its flows' cookie
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
TRAIL_STATES = ["installing", "active", "rerouting", "failed", "removed"]
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_H = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join([f"({_H}:){{7}}{_H}", f"({_H}:){{1,7}}:", f"({_H}:){{1,6}}:{_H}",
                  *(f"({_H}:){{1,{6 - n}}}(:{_H}){{1,{n + 1}}}" for n in range(1, 6)),
                  f":((:{_H}){{1,7}}|:)"])
HOST_PATTERN = (rf"^({_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
                r"|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}"
                rf"|{_IPV6})$")  # IPv4, MAC, IPv6 (no embedded IPv4)
SWITCH_PATTERN = r"^([0-9A-Fa-f]{1,16}|[A-Za-z][A-Za-z0-9_.-]{0,63})$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
DPID = {"type": "string", "pattern": "^[0-9a-f]{16}$"}
HOST = {"type": "string", "pattern": HOST_PATTERN}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required}


SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({
        "code": {"type": "string", "enum": [
            "invalid", "unauthorized", "forbidden", "not_found", "method_not_allowed",
            "conflict", "payload_too_large", "unsupported_media_type", "internal",
            "not_implemented", "unavailable"]},
        "message": STR,
        "field": _nullable(STR),
        "problems": {"type": "array", "items": STR}}, ["code", "message", "field"])}),
    "Hop": _obj({"dpid": DPID, "in_port": INT, "out_port": INT, "switch": STR, "via": STR},
                ["dpid", "in_port", "out_port", "switch"]),
    "Trail": _obj({
        "id": {"type": "integer", "minimum": 1}, "label": {"type": "integer", "minimum": 16},
        "src_mac": STR, "dst_mac": STR, "src_ip": STR, "dst_ip": STR, "src": STR, "dst": STR,
        "family": {"type": "string", "enum": ["ipv4", "ipv6"]},
        "hops": {"type": "array", "items": _ref("Hop")},
        "app": STR, "class": STR, "state": {"type": "string", "enum": TRAIL_STATES},
        "created": NUM, "expires": _nullable(NUM), "version": INT,
        "setup_latency_ms": _nullable(NUM), "packets": INT, "bytes": INT,
        "match": {"type": "array", "items": {"type": "object"}}, "rewrite": {"type": "object"},
        "priority": _nullable(INT), "grouped": BOOL, "lease": INT, "rate_cap": INT,
        "pinned": BOOL, "rate_bps": INT,
        "protection": {"type": "array", "items": _obj({
            "hop": INT, "dpid": DPID, "port": INT,
            "protection": {"type": "string", "enum": ["node", "link", "none"]},
            "rejoin": INT, "detour": {"type": "array", "items": DPID}, "reason": STR},
            ["hop", "dpid", "port", "protection"])},
        "multipath": _obj({"trail": INT, "leg": INT, "legs": INT, "weight": NUM},
                          ["trail", "leg", "legs", "weight"]),
        "counted": BOOL,
        "connection": _obj({"tcp_src": INT, "tcp_dst": INT, "split_from": INT},
                           ["tcp_src", "tcp_dst"])},
        ["id", "label", "src", "dst", "src_mac", "dst_mac", "hops", "app", "class", "state",
         "created", "expires", "packets", "bytes"]),
    "TrailPage": _obj({
        "trails": {"type": "array", "items": _ref("Trail")},
        "count": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
        "offset": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        "next_offset": _nullable({"type": "integer", "minimum": 0})}),
    "FlowCounter": _obj({"table": INT, "priority": INT, "match": {"type": "object"},
                         "packets": INT, "bytes": INT, "duration": NUM}),
    "TraceHop": _obj({
        "index": INT, "dpid": DPID, "switch": STR, "in_port": INT, "out_port": INT,
        "via": _nullable(STR),
        "next": _nullable(_obj({"dpid": DPID, "switch": STR, "port": INT})),
        "link": _nullable(_obj({"capacity": NUM, "load": NUM, "utilization": NUM})),
        "packets": _nullable(INT), "bytes": _nullable(INT),
        "flows": _nullable({"type": "array", "items": _ref("FlowCounter")})}),
    "Trace": _obj({
        "id": INT, "label": INT, "app": STR, "class": STR, "state": STR, "src": STR,
        "dst": STR, "counters": {"type": "string", "enum": ["switch", "unavailable"]},
        "hops": {"type": "array", "items": _ref("TraceHop")}}),
    "Mutation": _obj({"status": {"type": "string", "enum": [
        "removed", "replanned", "unchanged", "pinned", "unpinned"]}, "id": INT,
        "trail": _nullable(_ref("Trail"))}),
    "Topology": _obj({
        "switches": {"type": "array", "items": _obj({
            "dpid": DPID, "name": STR, "ports": {"type": "array", "items": _obj({
                "port": INT, "name": STR, "up": BOOL, "speed_bps": INT})}})},
        "links": {"type": "array", "items": _obj({
            "src": DPID, "src_port": INT, "dst": DPID, "dst_port": INT, "capacity": NUM,
            "load": NUM, "utilization": NUM, "latency": _nullable(NUM)})},
        "hosts": {"type": "array", "items": _obj({"mac": STR, "ip": STR, "dpid": DPID,
                                                  "port": INT,
                                                  "ipv6": {"type": "array", "items": STR}})}}),
    "Edge": _obj({
        "port_security": BOOL, "mac_limit": INT, "probe_timeout": NUM,
        "counts": {"type": "object", "additionalProperties": INT},
        "host_ports": {"type": "array", "items": _obj({
            "dpid": DPID, "port": INT, "macs": {"type": "array", "items": STR}})},
        "claims": {"type": "array", "items": _obj({
            "kind": {"type": "string", "enum": ["mac", "ip"]}, "mac": STR, "ip": STR,
            "dpid": DPID, "port": INT, "owner_port": STR, "since": NUM})},
        "drops": {"type": "array", "items": _obj({
            "dpid": DPID, "port": INT, "mac": _nullable(STR), "ip": _nullable(STR),
            "cookie": STR, "reason": STR, "remaining": NUM})},
        "lldp": _nullable(_obj({
            "counts": {"type": "object", "additionalProperties": INT},
            "rejected": {"type": "array", "items": _obj({
                "at": NUM, "verdict": STR, "dpid": DPID, "in_port": INT,
                "claimed": _nullable(STR)})}}))}),
    "Events": _obj({"events": {"type": "array", "items": _obj({
        "time": NUM, "kind": STR, "message": STR, "trail": _nullable(INT)})}}),
    "Nodes": _obj({"nodes": {"type": "array", "items": _obj({
        "node": STR, "time": NUM, "cpu": NUM, "memory": NUM}, ["node", "time", "cpu", "memory"])},
        "rejected": {"type": "object", "additionalProperties": INT}}, ["nodes"]),
    "Controller": {"type": "object", "properties": {"role": STR, "id": STR, "store": STR}},
    "Audit": {"type": "object", "required": ["switches", "stale", "unread"], "properties": {
        "switches": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {k: INT for k in
                                             ("missing", "wrong", "unknown", "correct")}}},
        "stale": INT, "unread": {"type": "array", "items": STR}}},
    "Placement": {"type": "object", "required": ["routing", "elephants", "moves"],
                  "properties": {
        "routing": STR, "time": NUM, "reason": STR,
        "elephants": {"type": "array", "items": _obj({
            "trail": INT, "rate_bps": INT, "demand_bps": INT, "moves": BOOL})},
        "moves": {"type": "array", "items": INT}, "waiting": {"type": "array", "items": INT},
        "before": {"type": "object"}, "after": {"type": "object"},
        "exact": _obj({"asked": NUM, "answered": NUM, "elephants": INT, "found": BOOL})}},
    "Policy": _obj({"source": _nullable(STR), "policy": {"type": "object"}}),
    "PolicyApplied": {"type": "object", "properties": {
        "status": STR, "replanned": INT, "removed": INT, "added": INT, "blocked": INT,
        "warning": STR}, "required": ["status"]},
    "Pairs": _obj({"app": STR, "pairs": {"type": "array", "items": {"type": "object"}}}),
    "Dag": {"type": "object", "properties": {
        "directed": BOOL, "graph": {"type": "object"},
        "nodes": {"type": "array", "items": {"type": "object"}},
        "links": {"type": "array", "items": {"type": "object"}}},
        "required": ["nodes", "links"]},
}

_EMPTY_MAP = {"type": "object", "nullable": True, "maxProperties": 0}
# The body of PUT /policy as far as OpenAPI 3.0 can promise it: the top level and limits
# exactly; sections whose names follow a pattern (zones: OpenAPI 3.0 has no propertyNames)
# or whose entries name each other (nodes name zones, applications name nodes) only empty.
# Anything this accepts the server accepts; the full grammar is docs/policy.rst.
POLICY_BODY: dict[str, Any] = {
    "type": "object", "nullable": True, "additionalProperties": False,
    "description": "a policy file (docs/policy.rst); the schema covers a subset of it",
    "properties": {
        "version": {"type": "integer", "enum": [1]},
        "limits": {"type": "object", "nullable": True, "additionalProperties": False,
                   "properties": {"max_utilization": {"type": "number", "minimum": 0,
                                                      "exclusiveMinimum": True,
                                                      "maximum": 1}}},
        "applications": {"type": "array", "nullable": True, "maxItems": 0},
        **{k: _EMPTY_MAP for k in POLICY_SECTIONS
           if k not in ("version", "limits", "applications")}}}

TRAIL_ID = {"name": "trail_id", "in": "path", "required": True,
            "description": f"a trail id (1..{MAX_TRAIL_ID})",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TRAIL_ID}}
APP_NAME = {"name": "name", "in": "path", "required": True, "schema": STR}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or STR}


AUTH_ERRORS = {
    "401": _error("no or wrong bearer token"),
    "403": _error("no token configured, or a read from a non-loopback client"),
}
READ_ERRORS = {"401": AUTH_ERRORS["401"], "403": AUTH_ERRORS["403"]}
BEARER = [{"bearer": []}]


def _get(summary: str, ok: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
         **errors: Any) -> dict[str, Any]:
    """A GET operation; `errors` are e<status>=response."""
    responses = {"200": ok, **{code.lstrip("e"): value for code, value in errors.items()}}
    op: dict[str, Any] = {"summary": summary}
    if parameters:
        op["parameters"] = parameters
    op["responses"] = {**responses, **READ_ERRORS}
    return {"get": op}


PATHS: dict[str, Any] = {
    "/": {"get": {"summary": "The web view: topology, link load and trails (HTML)",
                  "responses": {"200": {"description": "the page",
                                        "content": {"text/html": {"schema": STR}}},
                                **READ_ERRORS}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)",
                         "responses": {"200": {"description": "metrics", "content": {
                             "text/plain": {"schema": STR}}}, **READ_ERRORS}}},
    f"{PREFIX}/topology": _get("Switches, links with utilisation, hosts",
                               _json(_ref("Topology"), "topology")),
    f"{PREFIX}/trails": {"get": {
        "summary": "Trails, filtered and paginated (by id)",
        "parameters": [
            _query("app", "only this application's trails"),
            _query("class", "only trails of this data class"),
            _query("state", "only trails in this state",
                   {"type": "string", "enum": TRAIL_STATES}),
            _query("host", "trails from or to this host (IPv4, IPv6 or MAC address)", HOST),
            _query("src", "trails from this host (IPv4, IPv6 or MAC address)", HOST),
            _query("dst", "trails to this host (IPv4, IPv6 or MAC address)", HOST),
            _query("switch", "trails crossing this switch (its name, or its datapath id in "
                   "hex; an unknown name matches nothing)",
                   {"type": "string", "pattern": SWITCH_PATTERN}),
            _query("limit", f"page size (default {DEFAULT_LIMIT})",
                   {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
            _query("offset", "trails to skip (default 0)", {"type": "integer", "minimum": 0}),
        ],
        "responses": {"200": _json(_ref("TrailPage"), "a page of trails"),
                      "400": _error("a bad filter or page parameter (field names it)"),
                      **READ_ERRORS}}},
    f"{PREFIX}/trails/{{trail_id}}": {
        "get": {"summary": "One trail", "parameters": [TRAIL_ID],
                "responses": {"200": _json(_ref("Trail"), "trail"), "400": _error("bad id"),
                              "404": _error("no such trail"), **READ_ERRORS}},
        "delete": {"summary": "Remove a trail (its flows and label); traffic that goes on "
                              "asks for a new one",
                   "parameters": [TRAIL_ID], "security": BEARER,
                   "responses": {"200": _json(_ref("Mutation"), "removed"),
                                 "400": _error("bad id"), "404": _error("no such trail"),
                                 "409": _error("a standby controller cannot change trails"),
                                 "501": _error("this server cannot change trails"),
                                 **AUTH_ERRORS}}},
    f"{PREFIX}/trails/{{trail_id}}/trace": _get(
        "The trail hop by hop with each hop's flow counters, read from the switches now",
        _json(_ref("Trace"), "trace"), [TRAIL_ID], e400=_error("bad id"),
        e404=_error("no such trail")),
    f"{PREFIX}/trails/{{trail_id}}/replan": {"post": {
        "summary": "Re-plan a trail now (make-before-break)", "parameters": [TRAIL_ID],
        "security": BEARER,
        "responses": {"200": _json(_ref("Mutation"), "replanned, unchanged or removed"),
                      "400": _error("bad id"), "404": _error("no such trail"),
                      "409": _error("a standby controller cannot change trails"),
                      "501": _error("this server cannot change trails"), **AUTH_ERRORS}}},
    f"{PREFIX}/trails/{{trail_id}}/pin": {
        op: {"summary": summary, "parameters": [TRAIL_ID], "security": BEARER,
             "responses": {"200": _json(_ref("Mutation"), done), "400": _error("bad id"),
                           "404": _error("no such trail"),
                           "409": _error("a standby controller cannot change trails"),
                           "501": _error("this server cannot change trails"), **AUTH_ERRORS}}
        for op, summary, done in (
            ("put", "Pin a trail to its path: load never moves it (failures and policy do)",
             "pinned"),
            ("delete", "Unpin a trail", "unpinned"))},
    f"{PREFIX}/nodes": _get("Computing nodes' load (CPU, memory) from sdnscent-agent samples",
                            _json(_ref("Nodes"), "nodes")),
    f"{PREFIX}/audit": _get("What an audit of every switch would fix now (changes nothing)",
                            _json(_ref("Audit"), "per switch: missing, wrong, unknown and "
                                  "correct flows; stale: their sum less correct")),
    f"{PREFIX}/placement": _get("The last global placement of elephant flows: their "
                                "natural demand, the moves and why",
                                _json(_ref("Placement"), "placement")),
    f"{PREFIX}/controller": _get("This controller: id, role, generation, store health",
                                 _json(_ref("Controller"), "controller status")),
    f"{PREFIX}/edge": _get("The network edge: signed-LLDP verdicts, host ports, port-security "
                           "claims and drop rules", _json(_ref("Edge"), "edge state")),
    f"{PREFIX}/events": _get("Recent controller events", _json(_ref("Events"), "events")),
    f"{PREFIX}/policy": {
        **_get("The running policy", _json(_ref("Policy"), "policy")),
        "put": {"summary": "Replace the policy (YAML body; an empty body is the empty "
                           "policy); atomic", "security": BEARER,
                "requestBody": {"required": False, "content": {
                    "application/yaml": {"schema": POLICY_BODY}}},
                "responses": {"200": _json(_ref("PolicyApplied"), "applied"),
                              "400": _error("rejected, nothing changed (problems list each)"),
                              "409": _error("valid, but does not fit the network "
                                            "(e.g. an NF on an inter-switch port); unchanged"),
                              "413": _error("body too large"),
                              "501": _error("this server cannot apply policies"),
                              **AUTH_ERRORS}}},
    f"{PREFIX}/apps/{{name}}/pairs": _get(
        "An application's host pairs ranked by use and criticality",
        _json(_ref("Pairs"), "ranked pairs"), [APP_NAME], e404=_error("no such application")),
    f"{PREFIX}/apps/{{name}}/dag": {"get": {
        "summary": "An application's trail DAG",
        "parameters": [
            APP_NAME,
            _query("format", "json (default), dot or graphml",
                   {"type": "string", "enum": ["json", "dot", "graphml"]}),
            _query("direction", "forward (default) or reverse",
                   {"type": "string", "enum": ["forward", "reverse"]})],
        "responses": {
            "200": {"description": "the DAG", "content": {
                "application/json": {"schema": _ref("Dag")},
                "text/vnd.graphviz": {"schema": STR},
                "application/graphml+xml": {"schema": STR}}},
            "400": _error("bad format or direction"), "404": _error("no such application"),
            "409": _error("the trails form a cycle"), **READ_ERRORS}}},
    f"{PREFIX}/openapi.json": _get("This document", {"description": "OpenAPI 3 document",
                                                     "content": {"application/json": {
                                                         "schema": {"type": "object"}}}}),
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "sdnscent", "version": __version__,
             "description": "REST API of the sdnscent scent-trail SDN controller "
                            "(docs/rest.rst). Errors are {\"error\": {code, message, field}}. "
                            "Reads are open to loopback clients (and to everyone with "
                            "--api-open-reads); other clients and every mutating call need "
                            "the bearer token."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                   "schemas": SCHEMAS},
    "paths": PATHS,
}


def document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI document."""
    return json.loads(json.dumps(DOCUMENT))


if __name__ == "__main__":
    json.dump(DOCUMENT, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
