"""The REST API: JSON shapes of topology and trails, errors as JSON, the OpenAPI document."""

import re

import pytest
from flask.testing import FlaskClient

from sdnscent.controller import ScentController
from sdnscent.rest import PREFIX, create_app
from sdnscent.telemetry import PortCounters

HEX16 = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture
def ctrl(fat_tree, clock) -> ScentController:
    """The k=4 fat-tree with two trails: 10.0.0.1 -> 10.0.0.5 (active) and back."""
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, change = ctrl.ensure_trail(h1.mac, h5.mac)
    for callback in change.done:
        callback()
    clock.advance(1.5)
    ctrl.ensure_trail(h5.mac, h1.mac)
    ctrl.update_counters([(trail.id, 42, 4200)])
    return ctrl


@pytest.fixture
def client(ctrl: ScentController) -> FlaskClient:
    return create_app(ctrl).test_client()


def test_topology_lists_switches_links_with_utilization_and_hosts(client, ctrl, fat_tree,
                                                                  clock) -> None:
    link = ctrl.topo.link_from(5, 3)
    ctrl.port_counters(5, [PortCounters(3, 0, 0)])  # measured: a quarter of 10 Gbit/s
    clock.advance(1.0)
    ctrl.port_counters(5, [PortCounters(3, 0, int(0.25 * link.capacity / 8))])
    resp = client.get(f"{PREFIX}/topology")
    assert resp.status_code == 200 and resp.is_json
    data = resp.get_json()
    assert set(data) >= {"switches", "links", "hosts"}
    assert [s["dpid"] for s in data["switches"]] == [f"{d:016x}" for d in fat_tree.switches]
    s7 = next(s for s in data["switches"] if s["dpid"] == f"{7:016x}")
    assert s7["name"] == "s7"
    assert [p["port"] for p in s7["ports"]] == [1, 2, 3, 4]
    assert all(p["up"] and p["speed_bps"] == 10**10 for p in s7["ports"])
    assert len(data["links"]) == 2 * len(fat_tree.cables)
    for item in data["links"]:
        assert HEX16.match(item["src"]) and HEX16.match(item["dst"])
        assert {"src_port", "dst_port", "capacity", "utilization", "load"} <= set(item)
    hot = next(item for item in data["links"]
               if (item["src"], item["src_port"]) == (f"{5:016x}", 3))
    assert hot["utilization"] == 0.25
    assert hot["load"] == pytest.approx(0.25 * link.capacity)
    assert hot["dst"] == f"{link.dst:016x}" and hot["dst_port"] == link.dst_port
    cold = [item["utilization"] for item in data["links"] if item is not hot]
    assert set(cold) == {0.0}
    assert data["hosts"] == [  # in numeric IP order: 10.0.0.9 before 10.0.0.10
        {"mac": h.mac, "ip": h.ip, "ipv6": [], "dpid": f"{h.dpid:016x}", "port": h.port}
        for h in fat_tree.hosts
    ]


def test_trails_lists_every_trail_by_id(client, ctrl) -> None:
    data = client.get(f"{PREFIX}/trails").get_json()
    assert data["count"] == 2
    assert [t["id"] for t in data["trails"]] == [1, 2]
    assert [(t["src"], t["dst"]) for t in data["trails"]] == [
        ("10.0.0.1", "10.0.0.5"), ("10.0.0.5", "10.0.0.1")]
    assert data["trails"][0] == client.get(f"{PREFIX}/trails/1").get_json()


def test_one_trail_shows_label_endpoints_hops_state_times_and_counters(client, ctrl,
                                                                       fat_tree) -> None:
    stored = ctrl.store.get(1)
    resp = client.get(f"{PREFIX}/trails/1")
    assert resp.status_code == 200 and resp.is_json
    data = resp.get_json()
    assert data["id"] == 1 and data["label"] == stored.label >= 16
    assert (data["src"], data["dst"]) == ("10.0.0.1", "10.0.0.5")
    assert (data["src_mac"], data["dst_mac"]) == (fat_tree.host(1).mac, fat_tree.host(5).mac)
    assert (data["app"], data["class"]) == ("default", "best-effort")
    assert data["state"] == "active"
    assert data["created"] == 1000.0 and data["expires"] is None
    assert (data["packets"], data["bytes"]) == (42, 4200)
    assert data["hops"] == [
        {"dpid": f"{h.dpid:016x}", "in_port": h.in_port, "out_port": h.out_port,
         "switch": f"s{h.dpid}"}
        for h in stored.hops
    ]
    assert all(HEX16.match(h["dpid"]) for h in data["hops"])
    assert data["hops"][0]["in_port"] == fat_tree.host(1).port
    assert data["hops"][-1]["out_port"] == fat_tree.host(5).port
    second = client.get(f"{PREFIX}/trails/2").get_json()
    assert second["state"] == "installing" and second["created"] == 1001.5


def test_unknown_trail_is_a_json_404_naming_it(client) -> None:
    resp = client.get(f"{PREFIX}/trails/99")
    assert resp.status_code == 404 and resp.is_json
    assert resp.get_json() == {"error": {"code": "not_found", "message": "trail 99 not found",
                                         "field": "trail_id"}}


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "1.5", "1e3", "%20", "4294967296"])
def test_non_integer_trail_id_is_a_json_400_naming_it(client, bad: str) -> None:
    resp = client.get(f"{PREFIX}/trails/{bad}")
    assert resp.status_code == 400 and resp.is_json
    error = resp.get_json()["error"]
    assert (error["code"], error["field"]) == ("invalid", "trail_id")
    assert "is not a positive integer" in error["message"]


def test_superscript_digit_trail_id_is_a_400_not_a_server_error(ctrl) -> None:
    app = create_app(ctrl)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = app.test_client().get(f"{PREFIX}/trails/%C2%B2")
    assert resp.status_code == 400


@pytest.mark.parametrize("path", [f"{PREFIX}/nope", "/nope", f"{PREFIX}/trails/1/hops"])
def test_unknown_route_is_a_json_404(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404 and resp.is_json
    error = resp.get_json()["error"]
    assert error["code"] == "not_found" and error["message"] and error["field"] is None


def test_wrong_method_is_a_json_405(client) -> None:
    resp = client.post(f"{PREFIX}/trails/1")
    assert resp.status_code == 405 and resp.is_json
    assert resp.get_json()["error"]["code"] == "method_not_allowed"


def test_events_show_what_the_controller_did(client) -> None:
    events = client.get(f"{PREFIX}/events").get_json()["events"]
    kinds = [e["kind"] for e in events]
    assert "switch" in kinds and "link" in kinds
    trails = [e for e in events if e["kind"] == "trail"]
    assert [e["trail"] for e in trails] == [1, 2]
    assert all({"time", "kind", "message", "trail"} == set(e) for e in events)


def test_openapi_document_parses_and_lists_every_served_path(ctrl, client) -> None:
    resp = client.get(f"{PREFIX}/openapi.json")
    assert resp.status_code == 200 and resp.is_json
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "sdnscent"
    paths = doc["paths"]
    for path in ("topology", "trails", "trails/{trail_id}", "events"):
        assert "get" in paths[f"{PREFIX}/{path}"]
    served = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
              for rule in create_app(ctrl).url_map.iter_rules()
              if rule.rule.startswith(PREFIX) and not rule.rule.endswith("/openapi.json")}
    assert served <= set(paths), served - set(paths)
    params = paths[f"{PREFIX}/trails/{{trail_id}}"]["get"]["parameters"]
    assert params[0]["name"] == "trail_id" and params[0]["in"] == "path"
