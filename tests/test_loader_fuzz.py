"""Hypothesis fuzzing of the policy and topology loaders: bad input is an error
naming what is wrong, never a crash, and a rejected policy changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdnscent.netfile import NetFileError, Network, parse_demands, parse_network
from sdnscent.policy import Policy
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.rest import PREFIX, create_app
from tests.conftest import FakeClock, build_fat_tree

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parent.parent / "docs" / "examples"
                          / "policy.yaml").read_text())
TOPOLOGY = {
    "directed": False, "multigraph": False, "graph": {"demands": {"a": {"c": 5e8}}},
    "nodes": [{"id": "a"}, {"id": "b"}, {"id": "c", "kind": "host"}],
    "links": [{"source": "a", "target": "b", "capacity": 1e9, "latency": 0.001},
              {"source": "b", "target": "c", "capacity": 1e9}],
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["10.0.0.1", "10.0.0.0/24", "udp/5001", "tcp/0", "1Gbit",
                                     "5ms", "firewall", "link", "-1", "1e400", "h1", "a"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a nested document (keys and indices)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any, rounds: int = 3) -> Any:
    """`doc` with a few values replaced, keys dropped or keys added at random places."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, rounds))):
        where = draw(st.sampled_from(paths(doc)))
        if not where:
            doc = draw(values)
            continue
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(values)
        elif action == "drop":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
        if not isinstance(doc, dict | list):
            break
    return doc


def parsed_or_rejected(text: str) -> Policy | None:
    try:
        return parse_policy(text, "fuzz.yaml")
    except PolicyError as exc:
        assert exc.problems and all(str(p).startswith("fuzz.yaml") for p in exc.problems)
        return None


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_a_policy_or_a_policy_error(text: str) -> None:
    parsed_or_rejected(text)


@FUZZ
@given(mutated(EXAMPLE))
def test_a_mangled_example_policy_is_a_policy_or_a_policy_error(doc: Any) -> None:
    parsed_or_rejected(yaml.safe_dump(doc, allow_unicode=True))


def test_the_example_policy_itself_parses() -> None:
    assert isinstance(parse_policy(yaml.safe_dump(EXAMPLE)), Policy)


@FUZZ
@given(mutated(TOPOLOGY))
def test_a_mangled_topology_is_a_network_or_a_netfile_error(doc: Any) -> None:
    text = json.dumps(doc, allow_nan=True)
    try:
        net = parse_network(doc, "fuzz.json", text)
    except NetFileError as exc:
        assert str(exc).startswith("fuzz.json"), exc
        return
    assert isinstance(net, Network)


@FUZZ
@given(values)
def test_any_demands_are_demands_or_a_netfile_error(data: Any) -> None:
    net = parse_network(json.loads(json.dumps(TOPOLOGY)), "net.json")
    try:
        parse_demands(net, data)
    except NetFileError:
        pass


TREE = build_fat_tree(4)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated(EXAMPLE, rounds=2))
def test_a_rejected_policy_over_rest_leaves_policy_and_trails_untouched(doc: Any) -> None:
    clock = FakeClock()
    ctrl = TREE.controller(clock)
    for a, b in ((1, 5), (5, 1)):
        for callback in ctrl.ensure_pair(TREE.host(a).mac, TREE.host(b).mac)[1].done:
            callback()
    applied: list[Policy] = []

    def apply(policy: Policy) -> dict[str, Any]:
        applied.append(policy)
        return ctrl.set_policy(policy)[1]

    client = create_app(ctrl, token="fuzz-token-0123456789", apply_policy=apply).test_client()
    before, trails = ctrl.policy, ctrl.store.all()
    resp = client.put(f"{PREFIX}/policy", data=yaml.safe_dump(doc, allow_unicode=True),
                      headers={"Authorization": "Bearer fuzz-token-0123456789"})
    assert resp.status_code in (200, 400, 409), resp.get_json()
    if resp.status_code != 200:  # 400: a bad file; 409: does not fit the fat-tree
        assert resp.get_json()["error"]["problems" if resp.status_code == 400 else "message"]
        assert ctrl.policy is before and ctrl.store.all() == trails and applied == []
    else:
        assert ctrl.policy is applied[0]


def test_a_link_end_that_is_a_list_is_an_error_not_a_crash() -> None:
    doc = {**TOPOLOGY, "links": [{"source": ["a"], "target": "b"}]}
    try:
        parse_network(doc, "net.json")
    except NetFileError as exc:
        assert "unknown node ['a']" in str(exc)
    else:
        raise AssertionError("accepted a list as a node id")


def test_a_valid_policy_that_does_not_fit_the_network_is_409_and_changes_nothing() -> None:
    ctrl = TREE.controller(FakeClock())
    applied: list[Policy] = []
    client = create_app(ctrl, token="fuzz-token-0123456789",
                        apply_policy=lambda p: applied.append(p) or {}).test_client()
    before = ctrl.policy
    resp = client.put(f"{PREFIX}/policy", data=yaml.safe_dump(EXAMPLE),
                      headers={"Authorization": "Bearer fuzz-token-0123456789"})
    assert resp.status_code == 409, resp.get_json()
    assert "inter-switch link port" in resp.get_json()["error"]["message"]
    assert ctrl.policy is before and applied == []
