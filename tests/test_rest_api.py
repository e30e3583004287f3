"""The operator's REST surface: filters and pages of /trails, traces with per-hop
counters, DELETE and re-plan behind the token, reads from afar, /metrics, and
the OpenAPI document kept in docs/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from sdnscent.controller import ScentController
from sdnscent.flows import trail_cookie
from sdnscent.openapi import document
from sdnscent.policyfile import parse_policy
from sdnscent.rest import PREFIX, ApiError, create_app
from sdnscent.telemetry import PortCounters
from sdnscent.trails import Trail

TOKEN = "t0ken-for-the-tests-123"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
VIDEO = "applications:\n  - name: video\n    endpoints: {hosts: [10.0.0.1], ports: [udp/5001]}\n"
PAIRS = ((1, 5), (5, 1), (1, 9), (2, 3), (9, 16))


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def ctrl(fat_tree, clock) -> ScentController:
    """Default trails for PAIRS (all active) and video trails for 10.0.0.1's pairs."""
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(VIDEO, "video.yaml"))
    for a, b in PAIRS:
        for callback in ctrl.ensure_pair(fat_tree.host(a).mac, fat_tree.host(b).mac)[1].done:
            callback()
    return ctrl


class Hooks:
    """The app's callbacks, run in-process; remembers what was asked."""

    def __init__(self, ctrl: ScentController) -> None:
        self.ctrl, self.calls = ctrl, []

    def remove(self, trail_id: int) -> dict[str, Any] | None:
        self.calls.append(("remove", trail_id))
        with self.ctrl.lock:
            trail = self.ctrl.store.get(trail_id)
            if trail is None:
                return None
            self.ctrl.remove_trail(trail_id, "test")
        return {"status": "removed", "trail": None}

    def replan(self, trail_id: int) -> dict[str, Any] | None:
        self.calls.append(("replan", trail_id))
        raise ApiError(409, "this controller is a standby; send it to the master")

    def flow_stats(self, trail: Trail) -> dict[int, list[dict[str, Any]] | None]:
        """Each hop's table-1 entry counted 10 packets per hop index; the last switch unread."""
        out: dict[int, list[dict[str, Any]] | None] = {}
        for i, hop in enumerate(trail.hops):
            out[hop.dpid] = [{"table": 1, "priority": 100, "packets": 10 * (i + 1),
                              "bytes": 1000 * (i + 1), "duration": 1.0,
                              "match": {"eth_type": 0x8847, "mpls_label": trail.label}},
                             {"table": 1, "priority": 100, "packets": 999, "bytes": 999,
                              "duration": 9.0,  # an old label's leftover: not counted
                              "match": {"eth_type": 0x8847, "mpls_label": trail.label + 1}}]
        out[trail.hops[-1].dpid] = None
        return out


@pytest.fixture
def hooks(ctrl) -> Hooks:
    return Hooks(ctrl)


@pytest.fixture
def client(ctrl, hooks) -> FlaskClient:
    return create_app(ctrl, token=TOKEN, remove_trail=hooks.remove, replan_trail=hooks.replan,
                      flow_stats=hooks.flow_stats).test_client()


def ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.get_json()
    return [t["id"] for t in resp.get_json()["trails"]]


# -- filters and pages ---------------------------------------------------------------------------


def test_filters_select_by_app_host_end_switch_class_and_state(client, ctrl, fat_tree) -> None:
    trails = ctrl.store.all()
    assert ids(client.get(f"{PREFIX}/trails?app=video")) == \
        [t.id for t in trails if t.app == "video"] != []
    h1 = fat_tree.host(1)
    for value in (h1.ip, h1.mac, h1.mac.upper()):
        assert ids(client.get(f"{PREFIX}/trails", query_string={"host": value})) == \
            [t.id for t in trails if h1.ip in (t.src_ip, t.dst_ip)]
    assert ids(client.get(f"{PREFIX}/trails?src=10.0.0.1&dst=10.0.0.5")) == \
        [t.id for t in trails if (t.src_ip, t.dst_ip) == ("10.0.0.1", "10.0.0.5")]
    core = next(d for d in fat_tree.cores if any(d in t.switches for t in trails))
    crossing = [t.id for t in trails if core in t.switches]
    assert ids(client.get(f"{PREFIX}/trails?switch=s{core}")) == crossing
    assert ids(client.get(f"{PREFIX}/trails?switch={core:016x}")) == crossing
    assert ids(client.get(f"{PREFIX}/trails?switch=nosuchswitch")) == []
    assert ids(client.get(f"{PREFIX}/trails?class=best-effort&state=active")) == \
        [t.id for t in trails if t.cls == "best-effort" and t.state.value == "active"]
    assert ids(client.get(f"{PREFIX}/trails?state=rerouting")) == []


def test_pages_walk_every_trail_once_in_id_order(client, ctrl) -> None:
    every = [t.id for t in ctrl.store.all()]
    seen, offset = [], 0
    while offset is not None:
        body = client.get(f"{PREFIX}/trails?limit=3&offset={offset}").get_json()
        assert body["total"] == len(every) and body["limit"] == 3
        assert body["count"] == len(body["trails"]) <= 3
        seen += [t["id"] for t in body["trails"]]
        offset = body["next_offset"]
    assert seen == every and len(every) > 3


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=10001", "limit"), ("limit=abc", "limit"),
    ("offset=-1", "offset"), ("offset=1.5", "offset"), ("state=dead", "state"),
    ("host=10.0.0.300", "host"), ("src=nobody", "src"), ("dst=", "dst"),
    ("switch=s%201", "switch"), ("colour=red", "colour"),
])
def test_bad_filter_or_page_value_is_400_naming_the_field(client, query: str,
                                                         field: str) -> None:
    resp = client.get(f"{PREFIX}/trails?{query}")
    assert resp.status_code == 400 and resp.is_json
    error = resp.get_json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert error["message"]


# -- trace ---------------------------------------------------------------------------------------


def test_trace_reports_each_hop_with_its_link_and_label_counters(client, ctrl, clock) -> None:
    trail = next(t for t in ctrl.store.all() if len(t.hops) >= 3)
    first = trail.hops[0]
    link = ctrl.topo.link_from(first.dpid, first.out_port)
    ctrl.port_counters(first.dpid, [PortCounters(first.out_port, 0, 0)])
    clock.advance(1.0)
    ctrl.port_counters(first.dpid, [PortCounters(first.out_port, 0, link.capacity // 16)])
    body = client.get(f"{PREFIX}/trails/{trail.id}/trace").get_json()
    assert (body["id"], body["label"], body["counters"]) == (trail.id, trail.label, "switch")
    hops = body["hops"]
    assert [(h["dpid"], h["in_port"], h["out_port"]) for h in hops] == \
        [(f"{h.dpid:016x}", h.in_port, h.out_port) for h in trail.hops]
    assert hops[0]["link"]["utilization"] == 0.5
    assert hops[0]["next"] == {"dpid": f"{link.dst:016x}", "switch": f"s{link.dst}",
                               "port": link.dst_port}
    assert hops[-1]["next"] is None and hops[-1]["link"] is None
    assert [h["packets"] for h in hops[:-1]] == [10 * (i + 1) for i in range(len(hops) - 1)]
    assert hops[-1]["packets"] is None and hops[-1]["flows"] is None  # switch did not answer


def test_trace_without_a_switch_reader_says_counters_are_unavailable(ctrl) -> None:
    body = create_app(ctrl).test_client().get(f"{PREFIX}/trails/1/trace").get_json()
    assert body["counters"] == "unavailable"
    assert all(h["packets"] is None for h in body["hops"])


def test_trace_of_an_unknown_trail_is_404(client) -> None:
    resp = client.get(f"{PREFIX}/trails/77/trace")
    assert resp.status_code == 404 and resp.get_json()["error"]["field"] == "trail_id"


# -- mutating calls ------------------------------------------------------------------------------


def test_delete_needs_the_token_then_removes_the_trail(client, ctrl, hooks) -> None:
    assert client.delete(f"{PREFIX}/trails/1").status_code == 401
    assert client.delete(f"{PREFIX}/trails/1", headers=bearer("nope")).status_code == 401
    assert hooks.calls == [] and ctrl.store.get(1) is not None
    resp = client.delete(f"{PREFIX}/trails/1", headers=bearer())
    assert resp.status_code == 200 and resp.get_json()["status"] == "removed"
    assert hooks.calls == [("remove", 1)] and ctrl.store.get(1) is None
    assert client.delete(f"{PREFIX}/trails/1", headers=bearer()).status_code == 404


def test_replan_on_a_standby_is_409_from_the_app(client, hooks) -> None:
    resp = client.post(f"{PREFIX}/trails/2/replan", headers=bearer())
    assert resp.status_code == 409 and "standby" in resp.get_json()["error"]["message"]
    assert hooks.calls == [("replan", 2)]


def test_mutations_without_a_configured_token_are_403(ctrl, hooks) -> None:
    client = create_app(ctrl, remove_trail=hooks.remove).test_client()
    resp = client.delete(f"{PREFIX}/trails/1", headers=bearer())
    assert resp.status_code == 403 and hooks.calls == []


def test_mutations_on_a_server_without_hooks_are_501(ctrl) -> None:
    client = create_app(ctrl, token=TOKEN).test_client()
    assert client.post(f"{PREFIX}/trails/1/replan", headers=bearer()).status_code == 501


# -- who may read --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{PREFIX}/trails", f"{PREFIX}/topology", "/metrics", "/"])
def test_reads_from_afar_need_the_token_unless_opened(ctrl, path: str) -> None:
    far = {"REMOTE_ADDR": "192.0.2.7"}
    closed = create_app(ctrl, token=TOKEN).test_client()
    assert closed.get(path, environ_base=far).status_code == 401
    assert closed.get(path, environ_base=far, headers=bearer()).status_code == 200
    assert closed.get(path, environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    untokened = create_app(ctrl).test_client().get(path, environ_base=far)
    assert untokened.status_code == 403
    assert "--api-open-reads" in untokened.get_json()["error"]["message"]
    opened = create_app(ctrl, open_reads=True).test_client()
    assert opened.get(path, environ_base=far).status_code == 200


def test_a_crash_in_a_hook_is_a_json_500_without_a_traceback(ctrl) -> None:
    def broken(trail: Trail) -> Any:
        raise RuntimeError("secret internals")

    app = create_app(ctrl, flow_stats=broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = app.test_client().get(f"{PREFIX}/trails/1/trace")
    assert resp.status_code == 500
    assert resp.get_json()["error"]["code"] == "internal"
    assert "secret internals" not in resp.get_data(as_text=True)


# -- metrics and the document --------------------------------------------------------------------


def test_metrics_count_trails_by_state_and_class_and_link_utilisation(client, ctrl,
                                                                      clock) -> None:
    ctrl.port_counters(7, [PortCounters(3, 0, 0)])
    clock.advance(1.0)
    ctrl.port_counters(7, [PortCounters(3, 0, ctrl.topo.link_capacity(7, 3) // 32)])
    text = client.get("/metrics").get_data(as_text=True)
    active = sum(1 for t in ctrl.store.all() if t.state.value == "active")
    assert re.search(rf'^sdnscent_trails{{class="best-effort",state="active"}} {active}\.0$',
                     text, re.M), text
    assert re.search(r'^sdnscent_link_utilization{dst="[0-9a-f]{16}",src="0000000000000007",'
                     r'src_port="3",switch="s7"} 0\.25$', text, re.M)
    assert re.search(r"^sdnscent_events_total{kind=\"trail\"} \d+\.0$", text, re.M)
    assert "sdnscent_trail_moves_total 0.0" in text


def test_served_openapi_document_is_the_one_in_docs(client) -> None:
    served = client.get(f"{PREFIX}/openapi.json").get_json()
    assert served == json.loads(DOCS.read_text()) == document(), \
        "run: .venv/bin/python -m sdnscent.openapi > docs/openapi.json"


def test_every_served_route_is_documented_with_its_methods(ctrl) -> None:
    doc = document()["paths"]
    app = create_app(ctrl)
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/static") or rule.rule.startswith("/web/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in doc, path
        assert {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}} <= set(doc[path]), path


def test_cookie_of_a_trail_is_what_the_trace_reads() -> None:
    assert trail_cookie(7) & 0xFFFF_FFFF == 7


def test_pin_and_unpin_need_the_token_and_show_in_the_trail(ctrl) -> None:
    def pin(number: int, on: bool) -> dict[str, Any] | None:
        trail = ctrl.pin_trail(number, on)
        return None if trail is None else {"status": "pinned" if on else "unpinned",
                                           "trail": ctrl.trail_view(trail)}

    client = create_app(ctrl, token=TOKEN, pin_trail=pin).test_client()
    assert client.put(f"{PREFIX}/trails/1/pin").status_code == 401
    resp = client.put(f"{PREFIX}/trails/1/pin", headers=bearer())
    assert resp.status_code == 200 and resp.get_json()["status"] == "pinned"
    assert client.get(f"{PREFIX}/trails/1").get_json()["pinned"] is True
    resp = client.delete(f"{PREFIX}/trails/1/pin", headers=bearer())
    assert resp.status_code == 200 and resp.get_json()["trail"]["pinned"] is False
    assert client.put(f"{PREFIX}/trails/999/pin", headers=bearer()).status_code == 404
