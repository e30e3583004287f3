"""The REST API's policy and DAG endpoints: GET/PUT /policy (bearer token, atomic
reload), GET /apps/<name>/dag in JSON, DOT and GraphML, and their OpenAPI entries."""

from __future__ import annotations

import io
import re
import textwrap
from typing import Any

import networkx as nx
import pytest
from flask.testing import FlaskClient

from sdnscent.controller import ScentController
from sdnscent.policy import Policy
from sdnscent.policyfile import parse_policy
from sdnscent.rest import PREFIX, create_app

TOKEN = "s3cret-t0ken"
SOURCE = "PUT /api/v1/policy"

VIDEO = textwrap.dedent("""\
    nodes:
      h1: {kind: host, ip: 10.0.0.1}
    applications:
      - name: video
        endpoints: {hosts: [h1], ports: [udp/5001]}
        data_class: interactive
""")

# video moves to tcp/5002 and voice arrives: both video trails (h1 -> h5 and back)
# are re-planned and voice gets a trail for each direction.
NEW = textwrap.dedent("""\
    applications:
      - name: video
        endpoints: {hosts: [10.0.0.1], ports: [tcp/5002]}
      - name: voice
        endpoints: {prefixes: [10.0.0.0/30], ports: [udp/5060]}
""")

# Line 4: a misspelt key; line 5: a port out of range; line 6: a role no NF provides.
BROKEN = textwrap.dedent("""\
    applications:
      - name: video
        endpoints: {hosts: [10.0.0.1], ports: [udp/5001]}
        requirments: {max_latency: 2ms}
      - name: bad
        endpoints: {ports: [udp/70000]}
        requirements: {chain: [firewall]}
""")


class PolicyRecorder:
    """The apply_policy hook: runs the controller's set_policy and remembers its input."""

    def __init__(self, ctrl: ScentController) -> None:
        self.ctrl = ctrl
        self.calls: list[Policy] = []

    def __call__(self, policy: Policy) -> dict[str, Any]:
        self.calls.append(policy)
        with self.ctrl.lock:
            _, summary = self.ctrl.set_policy(policy)
        return summary


@pytest.fixture
def ctrl(fat_tree, clock) -> ScentController:
    """The k=4 fat-tree under VIDEO with the pairs h1 -> h5 and h5 -> h1 installed."""
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(VIDEO, "video.yaml"))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    for src, dst in ((h1, h5), (h5, h1)):
        for callback in ctrl.ensure_pair(src.mac, dst.mac)[1].done:
            callback()
    return ctrl


@pytest.fixture
def hook(ctrl: ScentController) -> PolicyRecorder:
    return PolicyRecorder(ctrl)


@pytest.fixture
def client(ctrl: ScentController, hook: PolicyRecorder) -> FlaskClient:
    return create_app(ctrl, token=TOKEN, apply_policy=hook).test_client()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put(client: FlaskClient, text: str, headers: dict[str, str] | None = None) -> Any:
    return client.put(f"{PREFIX}/policy", data=text.encode(), headers=headers or {},
                      content_type="application/yaml")


# -- GET /policy -------------------------------------------------------------------------------


def test_get_policy_shows_the_source_and_every_section(client) -> None:
    resp = client.get(f"{PREFIX}/policy")
    assert resp.status_code == 200 and resp.is_json
    body = resp.get_json()
    assert set(body) == {"source", "policy"} and body["source"] == "video.yaml"
    policy = body["policy"]
    assert set(policy) >= {"zones", "nodes", "classifications", "data_classes",
                           "applications", "limits", "source"}
    assert policy["nodes"]["h1"]["ip"] == "10.0.0.1" and policy["nodes"]["h1"]["kind"] == "host"
    assert set(policy["classifications"]) == {"public", "internal", "restricted"}
    assert policy["classifications"]["restricted"]["chain"] == ["firewall"]
    (video,) = policy["applications"]
    assert video["name"] == "video" and video["data_class"] == "interactive"
    assert video["endpoints"] == {"hosts": ["h1"], "prefixes": [],
                                  "ports": [{"proto": "udp", "port": 5001}], "dscp": []}
    assert video["requirements"]["isolation"] == "none"
    assert policy["limits"] == {"max_utilization": 1.0}


def test_get_policy_needs_no_token(ctrl) -> None:
    resp = create_app(ctrl).test_client().get(f"{PREFIX}/policy")
    assert resp.status_code == 200 and resp.get_json()["source"] == "video.yaml"


# -- PUT /policy: who may ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    bearer("wrong"),
    bearer(TOKEN + "x"),
    {"Authorization": TOKEN},
    {"Authorization": f"bearer{TOKEN}"},
    {"Authorization": f"Basic {TOKEN}"},
], ids=["none", "wrong", "longer", "no-scheme", "no-space", "basic"])
def test_put_policy_without_the_right_token_is_401_and_changes_nothing(
        client, ctrl, hook, headers: dict[str, str]) -> None:
    before = ctrl.policy
    resp = put(client, NEW, headers)
    assert resp.status_code == 401 and resp.is_json
    assert resp.get_json() == {"error": {"code": "unauthorized", "field": "Authorization",
                                         "message": "missing or wrong bearer token"}}
    assert ctrl.policy is before and hook.calls == []


@pytest.mark.parametrize("headers", [{}, bearer(), bearer("")], ids=["none", "any", "empty"])
@pytest.mark.parametrize("token", [None, ""])
def test_put_policy_with_no_token_configured_is_403(ctrl, hook, token, headers) -> None:
    client = create_app(ctrl, token=token, apply_policy=hook).test_client()
    before = ctrl.policy
    resp = put(client, NEW, headers)
    assert resp.status_code == 403 and resp.is_json
    body = resp.get_json()
    assert body["error"]["code"] == "forbidden" and "--api-token" in body["error"]["message"]
    assert ctrl.policy is before and hook.calls == []


# -- PUT /policy: what ---------------------------------------------------------------------------


def test_put_malformed_policy_is_400_naming_file_line_and_field(client, ctrl, hook) -> None:
    before, trails = ctrl.policy, ctrl.store.all()
    resp = put(client, BROKEN, bearer())
    assert resp.status_code == 400 and resp.is_json
    body = resp.get_json()
    assert body["error"]["code"] == "invalid" and "unchanged" in body["error"]["message"]
    assert body["error"]["field"] == "body"
    problems = body["error"]["problems"]
    assert len(problems) == 3, problems
    where = [re.match(r"(.+?):(\d+): ([\w\[\].]+): ", p) for p in problems]
    assert all(where), problems
    assert [(m[1], int(m[2]), m[3]) for m in where] == [
        (SOURCE, 4, "applications[0].requirments"),
        (SOURCE, 6, "applications[1].endpoints.ports[0]"),
        (SOURCE, 7, "applications[1].requirements.chain[0]"),
    ]
    assert "did you mean 'requirements'" in problems[0]
    assert "outside 1..65535" in problems[1]
    assert "role 'firewall'" in problems[2]
    assert ctrl.policy is before and hook.calls == []
    assert ctrl.store.all() == trails


@pytest.mark.parametrize(("text", "line"), [
    ("applications:\n  - name: [video\n", 3),
    ("applications:\n\t- name: video\n", 2),
    ("zones: {dmz: 0\n", 2),
])
def test_put_yaml_syntax_error_is_400_with_the_line(client, ctrl, hook, text: str,
                                                     line: int) -> None:
    before = ctrl.policy
    resp = put(client, text, bearer())
    assert resp.status_code == 400
    (problem,) = resp.get_json()["error"]["problems"]
    assert problem.startswith(f"{SOURCE}:{line}: YAML syntax: "), problem
    assert ctrl.policy is before and hook.calls == []


def test_put_valid_policy_applies_the_parsed_policy_and_returns_the_summary(
        client, ctrl, hook) -> None:
    resp = put(client, NEW, bearer())
    assert resp.status_code == 200 and resp.is_json
    assert resp.get_json() == {"status": "applied", "replanned": 2, "removed": 0,
                               "added": 2, "blocked": 0}
    (applied,) = hook.calls
    assert isinstance(applied, Policy) and applied == parse_policy(NEW, SOURCE)
    assert applied.source == SOURCE
    assert ctrl.policy is applied
    assert client.get(f"{PREFIX}/policy").get_json()["source"] == SOURCE
    video = next(t for t in ctrl.store.all() if t.app == "video")
    assert video.match == ((("ip_proto", 6), ("tcp_dst", 5002)),
                           (("ip_proto", 6), ("tcp_src", 5002)))


def test_put_an_empty_body_is_a_valid_empty_policy(client, ctrl, hook) -> None:
    resp = put(client, "", bearer())
    assert resp.status_code == 200
    assert resp.get_json()["removed"] == 2  # both video trails
    assert hook.calls[0].applications == ()
    assert {t.app for t in ctrl.store.all()} == {"default"}


def test_put_policy_on_a_server_that_cannot_apply_is_501(ctrl) -> None:
    client = create_app(ctrl, token=TOKEN).test_client()
    before = ctrl.policy
    resp = put(client, NEW, bearer())
    assert resp.status_code == 501 and ctrl.policy is before


# -- GET /apps/<name>/dag ------------------------------------------------------------------------


def test_dag_of_an_unknown_app_is_404(client) -> None:
    resp = client.get(f"{PREFIX}/apps/nope/dag")
    assert resp.status_code == 404 and resp.is_json
    assert resp.get_json() == {"error": {"code": "not_found", "field": "name",
                                         "message": "application 'nope' not found"}}


@pytest.mark.parametrize(("query", "word"), [
    ("format=xml", "format 'xml'"),
    ("format=JSON", "format 'JSON'"),
    ("format=", "format ''"),
    ("direction=both", "direction 'both'"),
    ("direction=Forward", "direction 'Forward'"),
])
def test_dag_with_a_bad_format_or_direction_is_400(client, query: str, word: str) -> None:
    for name in ("video", "nope"):  # checked before the application is looked up
        resp = client.get(f"{PREFIX}/apps/{name}/dag?{query}")
        assert resp.status_code == 400 and resp.is_json
        error = resp.get_json()["error"]
        assert error["message"].startswith(word) and error["field"] == word.split()[0]


def test_dag_in_json_dot_and_graphml_describe_the_same_graph(client, ctrl) -> None:
    (forward,) = [t for t in ctrl.store.all() if t.app == "video" and t.src_ip == "10.0.0.1"]
    as_json = client.get(f"{PREFIX}/apps/video/dag")
    assert as_json.status_code == 200 and as_json.is_json
    assert as_json.get_json() == client.get(f"{PREFIX}/apps/video/dag?format=json").get_json()
    g = nx.node_link_graph(as_json.get_json(), edges="links")
    assert g.graph["trails"] == [forward.id] and g.graph["apps"] == ["video"]
    walk = ["10.0.0.1", *(f"s{h.dpid}" for h in forward.hops), "10.0.0.5"]
    assert nx.is_path(g, walk) and g.number_of_nodes() == len(walk)
    for u, v in nx.utils.pairwise(walk):
        assert {"latency", "bandwidth", "security"} <= set(g.edges[u, v])
        assert g.edges[u, v]["trails"] == [forward.id]

    dot = client.get(f"{PREFIX}/apps/video/dag?format=dot")
    assert dot.status_code == 200 and dot.mimetype == "text/vnd.graphviz"
    text = dot.get_data(as_text=True)
    assert text.startswith('digraph "video" {') and text.rstrip().endswith("}")
    dot_edges = set(re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', text, re.M))
    assert dot_edges == set(g.edges)

    graphml = client.get(f"{PREFIX}/apps/video/dag?format=graphml")
    assert graphml.status_code == 200 and graphml.mimetype == "application/graphml+xml"
    back = nx.read_graphml(io.BytesIO(graphml.data))
    assert set(back.nodes) == set(g.nodes) and set(back.edges) == set(g.edges)
    assert back.nodes["10.0.0.1"]["kind"] == "host"


def test_dag_direction_reverse_holds_the_replies(client, ctrl) -> None:
    (reply,) = [t for t in ctrl.store.all() if t.app == "video" and t.src_ip == "10.0.0.5"]
    body = client.get(f"{PREFIX}/apps/video/dag?direction=reverse").get_json()
    assert body["graph"]["trails"] == [reply.id]
    g = nx.node_link_graph(body, edges="links")
    assert g.out_degree("10.0.0.5") == 1 and g.in_degree("10.0.0.1") == 1
    forward = client.get(f"{PREFIX}/apps/video/dag?direction=forward").get_json()
    assert forward == client.get(f"{PREFIX}/apps/video/dag").get_json()
    assert forward["graph"]["trails"] != body["graph"]["trails"]


def test_dag_of_the_default_traffic_is_served(client, ctrl) -> None:
    resp = client.get(f"{PREFIX}/apps/default/dag")
    assert resp.status_code == 200
    ids = sorted(t.id for t in ctrl.store.all() if t.app == "default" and t.src_ip == "10.0.0.1")
    assert resp.get_json()["graph"]["trails"] == ids


def test_dag_whose_trails_form_a_cycle_is_409(client, ctrl, fat_tree) -> None:
    ctrl.set_policy(parse_policy("applications:\n  - name: mesh\n"
                                 "    endpoints: {prefixes: [10.0.0.0/24]}\n"))
    h1, h5, h9 = (fat_tree.host(n) for n in (1, 5, 9))
    ctrl.ensure_pair(h1.mac, h5.mac)
    ctrl.ensure_pair(h5.mac, h9.mac)
    resp = client.get(f"{PREFIX}/apps/mesh/dag?format=dot")
    assert resp.status_code == 409 and resp.is_json
    assert "do not form a DAG" in resp.get_json()["error"]["message"]


# -- OpenAPI -------------------------------------------------------------------------------------


def test_openapi_lists_policy_get_and_put_and_the_app_dag(client) -> None:
    paths = client.get(f"{PREFIX}/openapi.json").get_json()["paths"]
    policy = paths[f"{PREFIX}/policy"]
    assert set(policy) == {"get", "put"}
    assert policy["put"]["security"] == [{"bearer": []}]
    assert {"200", "400", "401", "403"} <= set(policy["put"]["responses"])
    assert "application/yaml" in policy["put"]["requestBody"]["content"]
    dag_get = paths[f"{PREFIX}/apps/{{name}}/dag"]["get"]
    params = {p["name"]: p for p in dag_get["parameters"]}
    assert params["name"]["in"] == "path" and params["name"]["required"] is True
    assert params["format"]["schema"]["enum"] == ["json", "dot", "graphml"]
    assert params["direction"]["schema"]["enum"] == ["forward", "reverse"]
    assert {"200", "400", "404", "409"} <= set(dag_get["responses"])
