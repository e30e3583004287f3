"""Node-link topology and demand files: what is accepted, and errors naming field and line."""

import json

import pytest
import topohub

from sdnscent.netfile import (
    FIBRE_KM_PER_S,
    Demand,
    NetFileError,
    Trail,
    _trail_entry,
    arc_loads,
    fat_tree,
    leaf_spine,
    load_demands,
    load_network,
    parse_network,
    plan_json,
)


def write(tmp_path, data, name="topo.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1) if not isinstance(data, str) else data)
    return path


def small(**edge):
    return {"directed": False, "graph": {"demands": {"a": {"c": 5}}},
            "nodes": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
            "links": [{"source": "a", "target": "b", "capacity": 10, **edge},
                      {"source": "b", "target": "c", "capacity": 10}]}


def test_topohub_sndlib_file_loads_with_string_demand_keys(tmp_path):
    data = topohub.get("sndlib/abilene")
    net = load_network(write(tmp_path, data), default_capacity=1e9, demand_scale=1e6)
    assert len(net.ids) == 12 and len(net.arcs) == 2 * len(data["edges"])
    assert all(a.capacity == 1e9 for a in net.arcs)
    first = data["edges"][0]
    arc = net.arcs[net.arc_index[(net.index[first["source"]], net.index[first["target"]])]]
    assert arc.latency == pytest.approx(first["dist"] / FIBRE_KM_PER_S)
    src, row = next(iter(data["graph"]["demands"].items()))
    dst, rate = next(iter(row.items()))
    assert Demand(net.index[int(src)], net.index[int(dst)], rate * 1e6) in net.demands


def test_links_or_edges_and_direction():
    net = parse_network(small())
    assert [(net.ids[a.u], net.ids[a.v]) for a in net.arcs] == [
        ("a", "b"), ("b", "a"), ("b", "c"), ("c", "b")]
    data = small()
    data["edges"] = data.pop("links")
    data["directed"] = True
    assert len(parse_network(data).arcs) == 2
    assert parse_network(small()).demands == [Demand(0, 2, 5.0)]


def test_generated_fat_tree_and_leaf_spine():
    net = parse_network(fat_tree(4))
    assert len(net.hosts) == 16 and len(net.switches) == 20
    assert len(net.arcs) == 2 * (16 + 16 + 16)
    ls = parse_network(leaf_spine(2, 4, 3))
    assert len(ls.hosts) == 12 and len(ls.switches) == 6 and len(ls.arcs) == 2 * (12 + 8)


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["links"][1].update(capacity=-3), ["line 30", "links[1].capacity", "-3"]),
    (lambda d: d["links"][0].update(latency="slow"), ["links[0].latency", "not a number"]),
    (lambda d: d["links"][1].update(target="z"), ["links[1].target", "unknown node 'z'"]),
    (lambda d: d["links"].append({"source": "b", "target": "a"}), ["links[2]", "second link"]),
    (lambda d: d["links"].append({"source": "c", "target": "c"}), ["links[2]", "itself"]),
    (lambda d: d["nodes"].append({"id": "a"}), ["nodes[3].id", "given twice"]),
    (lambda d: d["graph"]["demands"]["a"].update(q=1), ["graph.demands.a.q", "unknown node"]),
    (lambda d: d["graph"]["demands"]["a"].update(c=-1), ["graph.demands.a.c", "must be >= 0"]),
    (lambda d: d["graph"]["demands"].update(b={"b": 1}), ["graph.demands.b.b", "to itself"]),
    (lambda d: d["nodes"][0].update(type="host"), ["nodes[0]"]),  # a host, fine: one link
    (lambda d: d["nodes"][1].update(type="host"), ["nodes[1]", "host 'b' has 2 links"]),
    (lambda d: d.pop("nodes"), ["needs a non-empty list 'nodes'"]),
])
def test_bad_topology_names_field_and_line(tmp_path, mutate, words):
    data = small()
    mutate(data)
    path = write(tmp_path, data)
    if words == ["nodes[0]"]:
        assert load_network(path).hosts == frozenset({0})
        return
    with pytest.raises(NetFileError) as err:
        load_network(path)
    assert str(err.value).startswith(str(path))
    for word in words:
        assert word in str(err.value)


def test_not_json_gives_the_line(tmp_path):
    path = write(tmp_path, '{"nodes": [\n {"id": 1},\n oops]}')
    with pytest.raises(NetFileError, match=r"line 3: not JSON"):
        load_network(path)


def test_demand_file_list_form_and_errors(tmp_path):
    net = parse_network(small())
    good = write(tmp_path, [{"src": "a", "dst": "c", "rate": 2, "app": "web"}], "d.json")
    assert load_demands(net, good) == [Demand(0, 2, 2.0, "web")]
    bad = write(tmp_path, [{"src": "a", "dst": "c", "rate": 2, "colour": "red"}], "e.json")
    with pytest.raises(NetFileError, match=r"e.json: line 2: \[0\]: unknown field 'colour'"):
        load_demands(net, bad)
    twice = write(tmp_path, {"a": {"c": 1}, "1": {}}, "f.json")
    with pytest.raises(NetFileError, match="unknown node '1'"):
        load_demands(net, twice)


def test_plan_json_follows_the_contract():
    net = parse_network(small())
    trail = Trail(Demand(0, 2, 5.0), ((0, 1, 2),), (1.0,))
    doc = plan_json(net, [trail])
    assert doc["trails"] == [{"src": "a", "dst": "c", "rate": 5.0,
                              "paths": [{"path": ["a", "b", "c"], "weight": 1.0}]}]
    assert doc["max_utilization"] == 0.5
    assert {(x["src"], x["dst"]): x["utilization"] for x in doc["links"]}[("b", "c")] == 0.5
    assert arc_loads(net, [trail]) == [5.0, 0.0, 5.0, 0.0]


def test_streamed_trails_are_written_exactly_as_json_dumps_writes_them():
    import io

    from sdnscent.netfile import write_plan

    net = parse_network({"directed": False, "graph": {},
                         "nodes": [{"id": "a"}, {"id": 7}, {"id": "c"}, {"id": "d"}],
                         "links": [{"source": "a", "target": 7, "capacity": 10},
                                   {"source": 7, "target": "c", "capacity": 10},
                                   {"source": "a", "target": "d", "capacity": 10},
                                   {"source": "d", "target": "c", "capacity": 10}]})
    trails = [Trail(Demand(0, 2, 5.0), ((0, 1, 2),), (1.0,)),
              Trail(Demand(2, 0, 3, "web \"x\""), ((2, 1, 0), (2, 3, 0)), (1 / 3, 2 / 3)),
              Trail(Demand(0, 2, 1e-17), ((0, 3, 2),), (1,))]
    out = io.StringIO()
    write_plan(out, net, trails, [0.0] * len(net.arcs), {"mode": "fast"})
    text = out.getvalue()
    assert text.startswith('{"trails": [' + ", ".join(
        json.dumps(_trail_entry(net.ids, t)) for t in trails) + '], "links": [')
    assert json.loads(text)["trails"][1]["app"] == 'web "x"'
