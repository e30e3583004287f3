"""`sdnscent plan`: the JSON contract of docs/offline.rst, every mode, progress and bad input."""

import json

import pytest
import topohub

from sdnscent import cli
from sdnscent.cli import main
from sdnscent.netfile import fat_tree

POLICY = """\
version: 1
zones: {dmz: 0, core: 2}
nodes:
  s1: {kind: switch, zone: dmz}
  s2: {kind: switch, zone: dmz}
  h1: {kind: host, ip: 10.0.0.1}
applications:
  - name: payroll
    endpoints: {hosts: [h1]}
    requirements:
      avoid: {zones: [dmz]}
"""


@pytest.fixture
def ft4(tmp_path):
    data = fat_tree(4)
    data["graph"]["demands"] = {f"h{n}": {f"h{(n + 3) % 16 + 1}": 5e8} for n in range(1, 17)}
    path = tmp_path / "ft4.json"
    path.write_text(json.dumps(data))
    return path


def plan(capsys, *args):
    code = main(["plan", *map(str, args)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


@pytest.mark.parametrize("mode", ["single", "ecmp", "gff", "multipath", "optimal"])
def test_every_mode_prints_the_contract(capsys, ft4, mode):
    code, doc, _ = plan(capsys, "--topology", ft4, "--mode", mode)
    assert code == 0
    assert set(doc) >= {"trails", "links", "max_utilization"}
    assert len(doc["trails"]) == 16 and doc["mode"] == mode
    for trail in doc["trails"]:
        assert set(trail) == {"src", "dst", "rate", "paths"}
        assert sum(p["weight"] for p in trail["paths"]) == pytest.approx(1.0)
        for p in trail["paths"]:
            assert p["path"][0] == trail["src"] and p["path"][-1] == trail["dst"]
    assert all(set(x) == {"src", "dst", "load", "capacity", "utilization"}
               for x in doc["links"])
    assert doc["max_utilization"] == pytest.approx(max(x["utilization"] for x in doc["links"]))
    base = doc["baselines"]["max_utilization"]
    assert set(base) == {"single", "ecmp", "gff", "optimal"}
    assert base["optimal"] <= doc["max_utilization"] * (1 + 1e-6)
    if mode == "multipath":
        assert doc["max_utilization"] <= base["optimal"] * 1.05


def test_ecmp_mode_hashes_each_demand_onto_one_least_cost_path(capsys, ft4):
    from sdnscent.baselines import Fabric, ecmp
    from sdnscent.netfile import arc_loads, load_network, max_utilization

    code, doc, _ = plan(capsys, "--topology", ft4, "--mode", "ecmp")
    assert code == 0
    net = load_network(ft4)
    expected = ecmp(Fabric(net), net.demands)
    assert [[p["path"] for p in t["paths"]] for t in doc["trails"]] == \
        [[[net.ids[n] for n in path] for path in t.paths] for t in expected]
    assert all(len(t["paths"]) == 1 and t["paths"][0]["weight"] == 1.0 for t in doc["trails"])
    hashed = max_utilization(net, arc_loads(net, expected))
    assert doc["max_utilization"] == pytest.approx(hashed)
    assert doc["baselines"]["max_utilization"]["ecmp"] == pytest.approx(hashed)


def test_topohub_sndlib_file_with_integer_ids(tmp_path, capsys):
    path = tmp_path / "polska.json"
    path.write_text(json.dumps(topohub.get("sndlib/polska")))
    code, doc, _ = plan(capsys, "--topology", path, "--demand-scale", 1e6, "--no-baselines")
    assert code == 0 and "baselines" not in doc
    assert isinstance(doc["trails"][0]["src"], int)
    assert len(doc["trails"]) == 66


def test_policy_application_constraints_apply(tmp_path, capsys, ft4):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    code, doc, _ = plan(capsys, "--topology", ft4, "--policy", policy, "--app", "payroll",
                        "--mode", "ecmp")
    assert code == 0
    assert all(not {"s1", "s2"} & set(p["path"]) for t in doc["trails"] for p in t["paths"])
    assert all(t["app"] == "payroll" for t in doc["trails"])


def test_separate_demand_file_and_output_file(tmp_path, capsys, ft4):
    demands = tmp_path / "d.json"
    demands.write_text(json.dumps([{"src": "h1", "dst": "h16", "rate": 1e9}]))
    out = tmp_path / "plan.json"
    assert main(["plan", "--topology", str(ft4), "--demands", str(demands), "-o",
                 str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [(t["src"], t["dst"]) for t in doc["trails"]] == [("h1", "h16")]


def test_progress_goes_to_stderr_on_large_inputs(capsys, ft4, monkeypatch):
    monkeypatch.setattr(cli, "LARGE_INPUT", 10)
    code, doc, err = plan(capsys, "--topology", ft4, "--mode", "single")
    assert code == 0 and "16 demands; mode single" in err and "planned 16/16 trails" in err


@pytest.mark.parametrize("setup, words", [
    (lambda p: p.write_text("{"), ["line 1", "not JSON"]),
    (lambda p: p.unlink(), ["cannot read"]),
    (lambda p: p.write_text(json.dumps({"nodes": [{"id": "a"}, {"id": "b"}], "links": [
        {"source": "a", "target": "b", "capacity": 0}]})),
     ["links[0].capacity", "must be > 0"]),
    (lambda p: p.write_text(json.dumps({"nodes": [{"id": "a"}, {"id": "b"}], "links": [
        {"source": "a", "target": "b"}]})), ["no demands"]),
    (lambda p: p.write_text(json.dumps({"graph": {"demands": {"a": {"c": 1}}},
                                        "nodes": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
                                        "links": [{"source": "a", "target": "b"}]})),
     ["'a' -> 'c': no path"]),
])
def test_bad_input_exits_2_naming_the_problem(tmp_path, capsys, setup, words):
    path = tmp_path / "t.json"
    path.write_text("{}")
    setup(path)
    code, _, err = plan(capsys, "--topology", path)
    assert code == 2
    for word in words:
        assert word in err


def test_unknown_application_and_bad_policy(tmp_path, capsys, ft4):
    code, _, err = plan(capsys, "--topology", ft4, "--app", "nope")
    assert code == 2 and "application 'nope' is not in the policy" in err
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nzones: [oops\n")
    code, _, err = plan(capsys, "--topology", ft4, "--policy", policy)
    assert code == 2 and "p.yaml" in err


def test_bad_options_exit_2(capsys, ft4):
    for args in (["--mode", "fastest"], ["--default-capacity", "-1"]):
        with pytest.raises(SystemExit) as exc:
            main(["plan", "--topology", str(ft4), *args])
        assert exc.value.code == 2
