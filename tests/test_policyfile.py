"""Policy files: the documented example, every validation rule with its line and
field, units, and the `sdnscent check-policy` command."""

from __future__ import annotations

import ipaddress
import re
import textwrap
import time
from pathlib import Path

import pytest

from sdnscent.cli import main
from sdnscent.policy import Attachment, L4Port
from sdnscent.policyfile import (
    BUILTIN_CLASSIFICATIONS,
    PolicyError,
    Problem,
    load_policy,
    parse_bandwidth,
    parse_duration,
    parse_policy,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "policy.yaml"
DOCS = ROOT / "docs" / "policy.rst"


def problems(text: str) -> list[Problem]:
    """The problems parse_policy reports for `text` (which must be invalid)."""
    with pytest.raises(PolicyError) as exc:
        parse_policy(textwrap.dedent(text), "p.yaml")
    return exc.value.problems


def policy(text: str):
    return parse_policy(textwrap.dedent(text), "p.yaml")


# -- the documented example --------------------------------------------------------------

def test_example_file_loads_with_every_value_as_written() -> None:
    p = load_policy(EXAMPLE)
    assert p.source == str(EXAMPLE)
    assert {z.name: z.level for z in p.zones.values()} == {"dmz": 0, "access": 1, "core": 2}
    assert [n for n, s in p.nodes.items() if s.kind == "switch"] == ["s1", "s2", "s3", "s4",
                                                                      "s5", "s6"]
    assert p.zone_of("s2") == "dmz" and p.level_of("s2") == 0 and p.level_of("s1") == 2
    assert p.nodes["h1"].ip == "10.0.0.1" and p.nodes["h5"].mac == "00:00:00:00:00:05"
    fw1, lb1 = p.nodes["fw1"], p.nodes["lb1"]
    assert (fw1.kind, fw1.role, fw1.zone, fw1.capacity) == ("nf", "firewall", "access", 1e9)
    assert fw1.attach == (Attachment("s4", 2), Attachment("s4", 3))
    assert (lb1.role, lb1.capacity, lb1.attach) == ("load_balancer", 10e9,
                                                    (Attachment("s5", 3), Attachment("s5", 4)))
    assert [n.name for n in p.network_functions()] == ["fw1", "lb1"]
    assert p.limits.max_utilization == 0.9
    bulk = p.data_classes["bulk"]
    assert (bulk.hop, bulk.latency, bulk.load, bulk.security) == (0.5, 0.0, 8.0, 0.0)
    assert [a.name for a in p.applications] == ["payroll", "mirror", "web"]


def test_example_restricted_app_passes_the_firewall_and_avoids_the_dmz() -> None:
    p = load_policy(EXAMPLE)
    payroll = p.app("payroll")
    rules = p.classification_of(payroll)
    assert payroll.endpoints.hosts == ("h1", "h5")
    assert payroll.requirements.chain is None and p.chain_of(payroll) == ("firewall",)
    assert (rules.min_level, rules.allowed_zones) == (1, frozenset({"core", "access"}))
    assert payroll.requirements.avoid_zones == frozenset({"dmz"})
    assert payroll.requirements.max_latency == pytest.approx(0.002)
    assert payroll.requirements.min_bandwidth == 10e6
    assert (payroll.data_class, payroll.access_pattern) == ("interactive", "request-response")


def test_example_bulk_app_is_isolated_and_web_app_passes_the_load_balancer() -> None:
    p = load_policy(EXAMPLE)
    mirror, web = p.app("mirror"), p.app("web")
    assert mirror.requirements.isolation == "link"
    assert mirror.requirements.avoid_nodes == frozenset({"s1"})
    assert mirror.endpoints.ports == (L4Port("tcp", 873),) and mirror.endpoints.dscp == (8,)
    assert mirror.requirements.min_bandwidth == 100e6 and p.chain_of(mirror) == ()
    assert (mirror.data_class, mirror.access_pattern) == ("bulk", "bulk-transfer")
    assert web.endpoints.prefixes == (ipaddress.IPv4Network("10.0.0.3/32"),)
    assert web.endpoints.ports == (L4Port("tcp", 80), L4Port("tcp", 443))
    assert p.chain_of(web) == ("load_balancer",) and web.classification == "public"
    assert web.requirements.avoid_nodes == frozenset({"fw1"})
    assert p.weights_of(web).latency == 5.0


def test_docs_show_the_example_file_verbatim() -> None:
    rst = DOCS.read_text()
    block = rst.split(".. code-block:: yaml\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    assert "\n".join(lines).strip() == EXAMPLE.read_text().strip()
    assert "sdnscent check-policy" in rst


def test_docs_sample_output_is_what_check_policy_prints(tmp_path, monkeypatch, capsys) -> None:
    """docs/policy.rst shows check-policy on the example and on a broken copy of it."""
    broken = EXAMPLE.read_text()
    for old, new in [("      - {switch: s4, port: 2}\n      - {switch: s4, port: 3}\n",
                      "      - {switch: s4, port: 2}\n"),
                     ("    requirements:\n      max_latency: 2ms",
                      "    requirments:\n      max_latency: 2ms"),
                     ("chain: [load_balancer]", "chain: [load_balancr]")]:
        assert old in broken
        broken = broken.replace(old, new, 1)
    (tmp_path / "broken.yaml").write_text(broken)
    monkeypatch.chdir(ROOT)
    assert main(["check-policy", "docs/examples/policy.yaml"]) == 0
    assert main(["check-policy", str(tmp_path / "broken.yaml")]) == 1
    out = capsys.readouterr().out.replace(str(tmp_path) + "/", "").splitlines()
    shown = [line.strip() for line in DOCS.read_text().split("::\n", 2)[1].splitlines()
             if line.strip() and not line.strip().startswith("$")]
    assert shown[:len(out)] == out


# -- empty files and built-ins -----------------------------------------------------------

@pytest.mark.parametrize("text", ["", "{}", "# nothing yet\n", "version: 1\n", "---\n",
                                  "zones:\napplications:\nlimits:\n"])
def test_an_empty_file_is_an_empty_policy_with_the_builtin_classifications(text: str) -> None:
    p = policy(text)
    assert p.applications == () and dict(p.nodes) == {} and dict(p.zones) == {}
    assert dict(p.classifications) == dict(BUILTIN_CLASSIFICATIONS)
    assert p.limits.max_utilization == 1.0 and p.source == "p.yaml"


def test_builtin_classifications() -> None:
    b = BUILTIN_CLASSIFICATIONS
    assert (b["public"].min_level, b["public"].chain, b["public"].allowed_zones) == (0, (), None)
    assert (b["internal"].min_level, b["internal"].chain) == (1, ())
    assert (b["restricted"].min_level, b["restricted"].chain) == (2, ("firewall",))


def test_a_file_overrides_a_builtin_classification_key_by_key() -> None:
    p = policy("""\
        zones: {core: 2}
        classifications:
          restricted: {allowed_zones: [core]}
          internal: {min_level: 0, chain: []}
          secret: {min_level: 3}
        """)
    assert p.classifications["restricted"].chain == ("firewall",)
    assert p.classifications["restricted"].min_level == 2
    assert p.classifications["restricted"].allowed_zones == frozenset({"core"})
    assert (p.classifications["internal"].min_level, p.classifications["internal"].chain) == (0, ())
    assert p.classifications["secret"].chain == () and p.classifications["public"].min_level == 0


def test_defaults_of_an_application() -> None:
    app = policy("applications: [{name: ntp, endpoints: {ports: [udp/123]}}]").app("ntp")
    assert (app.data_class, app.access_pattern, app.classification) == (
        "best-effort", "request-response", "public")
    assert app.requirements.chain is None and app.requirements.isolation == "none"


def test_hosts_may_be_ip_addresses_and_prefixes_ignore_host_bits() -> None:
    app = policy("""\
        applications:
          - name: dns
            endpoints: {hosts: [10.0.0.53], prefixes: [10.1.2.3/24, 192.0.2.1]}
        """).app("dns")
    assert app.endpoints.hosts == ("10.0.0.53",)
    assert [str(n) for n in app.endpoints.prefixes] == ["10.1.2.0/24", "192.0.2.1/32"]


def test_switches_given_by_dpid_are_stored_as_16_hex_digits() -> None:
    p = policy("""\
        nodes:
          ids1:
            kind: nf
            role: ids
            attach:
              - {switch: 0000000000000010, port: 1}
              - {switch: 0x1a, port: 2}
          ids2:
            kind: nf
            role: ids
            attach: [{switch: 7, port: 1}, {switch: "00:00:00:00:00:00:00:0b", port: 1}]
        """)
    assert [a.switch for a in p.nodes["ids1"].attach] == ["0000000000000010", "000000000000001a"]
    assert [a.switch for a in p.nodes["ids2"].attach] == ["0000000000000007", "000000000000000b"]


def test_a_mac_is_read_from_its_text_even_where_yaml_sees_a_number() -> None:
    p = policy("nodes: {h1: {kind: host, ip: 10.0.0.1, mac: 10:00:00:00:00:0A}}")
    assert p.nodes["h1"].mac == "10:00:00:00:00:0a"


def test_yaml_merge_keys_apply_and_explicit_keys_win() -> None:
    p = policy("""\
        zones: {core: 2}
        nodes:
          s1: &leaf {kind: switch, zone: core, capacity: 10G}
          s2: {<<: *leaf, capacity: 40G}
        """)
    assert p.nodes["s2"].zone == "core" and p.nodes["s2"].capacity == 40e9


def test_max_utilization_as_a_percentage() -> None:
    assert policy("limits: {max_utilization: 80%}").limits.max_utilization == pytest.approx(0.8)


# -- units -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "bps"), [
    (1000, 1000.0), (2.5e9, 2.5e9), ("10G", 10e9), ("100M", 100e6), ("1.5Gbit", 1.5e9),
    ("250 kbit/s", 250e3), ("40 Gbps", 40e9), ("1e9", 1e9), ("10g", 10e9), ("1T", 1e12),
    ("64k", 64e3), ("5Mb/s", 5e6)])
def test_parse_bandwidth(text: object, bps: float) -> None:
    assert parse_bandwidth(text) == pytest.approx(bps)


@pytest.mark.parametrize(("text", "seconds"), [
    (0.5, 0.5), (2, 2.0), ("2ms", 2e-3), ("150us", 150e-6), ("150µs", 150e-6), ("0.5s", 0.5),
    ("10 ms", 10e-3), ("800ns", 800e-9), ("1", 1.0)])
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("parse", "value", "message"), [
    (parse_bandwidth, "10MB", "is in bytes"), (parse_bandwidth, "1 GB/s", "is in bytes"),
    (parse_bandwidth, "10Q", "unknown unit 'Q'"), (parse_bandwidth, "fast", "not a bandwidth"),
    (parse_bandwidth, 0, "must be > 0"), (parse_bandwidth, "-5M", "must be > 0"),
    (parse_bandwidth, True, "must be a bandwidth"), (parse_bandwidth, float("inf"), "> 0"),
    (parse_duration, "2 fortnights", "unknown unit 'fortnights'"),
    (parse_duration, "0ms", "must be > 0"), (parse_duration, "ms", "not a duration"),
    (parse_duration, [1], "must be a duration")])
def test_bad_units_are_refused_with_the_reason(parse, value, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(value)


# -- malformed files: the exact line and field of each problem ---------------------------

NF = """\
nodes:
  fw1:
    kind: nf
    role: firewall
    attach: [{switch: s1, port: 1}, {switch: s1, port: 2}]
"""

MALFORMED = [
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            requirments: {max_latency: 2ms}
        """, 4, "applications[0].requirments",
        "unknown key 'requirments' (did you mean 'requirements'?)", id="unknown-key"),
    pytest.param("""\
        version: 1
        aplications: []
        """, 2, "aplications", "unknown key 'aplications' (did you mean 'applications'?)",
        id="unknown-top-level-key"),
    pytest.param("""\
        zones:
          dmz: low
        """, 2, "zones.dmz", "must be an integer >= 0, got text 'low'", id="wrong-type"),
    pytest.param("""\
        applications:
          web:
            endpoints: {ports: [tcp/80]}
        """, 2, "applications", "must be a list of applications", id="mapping-for-a-list"),
    pytest.param("""\
        nodes:
          s1: {kind: switch, level: yes}
        """, 2, "nodes.s1.level", "got true (a boolean", id="boolean-for-an-integer"),
    pytest.param("""\
        applications:
          - name: web
            endpoints:
              prefixes: [10.0.0.0/8, 10.0.300.0/24]
        """, 4, "applications[0].endpoints.prefixes[1]",
        "'10.0.300.0/24' is not an IPv4 or IPv6 prefix", id="bad-prefix"),
    pytest.param("""\
        applications:
          - name: web
            endpoints:
              prefixes:
                - web-servers
        """, 5, "applications[0].endpoints.prefixes[0]",
        "'web-servers' is not an IPv4 or IPv6 prefix",
        id="garbage-prefix"),
    pytest.param("""\
        applications:
          - name: web
            endpoints:
              ports:
                - tcp/443
                - tcp/65536
        """, 6, "applications[0].endpoints.ports[1]",
        "port 65536 in 'tcp/65536' is outside 1..65535", id="bad-port"),
    pytest.param("""\
        applications:
          - name: web
            endpoints:
              ports:
                - {proto: sctp, port: 443}
        """, 5, "applications[0].endpoints.ports[0].proto",
        "must be one of tcp, udp, got text 'sctp'", id="bad-port-protocol"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [http]}
        """, 3, "applications[0].endpoints.ports[0]",
        "must be a port such as tcp/443", id="port-without-protocol"),
    pytest.param("""\
        applications:
          - name: voice
            endpoints: {dscp: [46, 64]}
        """, 3, "applications[0].endpoints.dscp[1]", "must be an integer 0..63, got 64",
        id="dscp-out-of-range"),
    pytest.param("""\
        nodes:
          fw1:
            kind: nf
            attach: [{switch: s1, port: 1}, {switch: s1, port: 2}]
        """, 2, "nodes.fw1.role", "missing: a network function needs a role",
        id="nf-without-role"),
    pytest.param("""\
        nodes:
          fw1:
            kind: nf
            role: firewall
            attach:
              - {switch: s1, port: 1}
        """, 6, "nodes.fw1.attach", "exactly two attachments", id="nf-with-one-attachment"),
    pytest.param("""\
        nodes:
          fw1:
            kind: nf
            role: firewall
            attach: [{switch: s1, port: 1}, {switch: s1, port: 0}]
        """, 5, "nodes.fw1.attach[1].port", "must be an integer 1..4294967040, got 0",
        id="nf-attachment-port-0"),
    pytest.param(NF + (
        "  fw2:\n"
        "    kind: nf\n"
        "    role: firewall\n"
        "    attach: [{switch: s1, port: 2}, {switch: s1, port: 3}]\n"
        ), 9, "nodes.fw2.attach[0]", "switch s1 port 2 is already an attachment of fw1",
        id="nfs-sharing-a-port"),
    pytest.param(NF + (
        "  h1: {kind: host, ip: 10.0.0.1}\n"
        "  ids1:\n"
        "    kind: nf\n"
        "    role: ids\n"
        "    attach: [{switch: h1, port: 1}, {switch: s1, port: 9}]\n"
        ), 10, "nodes.ids1.attach[0].switch", "h1 is declared as a host, not a switch",
        id="nf-attached-to-a-host"),
    pytest.param("""\
        nodes:
          s1: {kind: switch, role: firewall}
        """, 2, "nodes.s1.role", "only network functions (kind nf) have a role",
        id="role-on-a-switch"),
    pytest.param("""\
        nodes:
          s1: {kind: swtich}
        """, 2, "nodes.s1.kind", "got text 'swtich' (did you mean 'switch'?)", id="bad-kind"),
    pytest.param("""\
        zones: {core: 2}
        nodes:
          s1: {zone: core}
        """, 3, "nodes.s1.kind", "missing (required)", id="node-without-kind"),
    pytest.param("""\
        zones: {core: 2}
        nodes:
          s1: {kind: switch, zone: cor}
        """, 3, "nodes.s1.zone", "unknown zone 'cor' (did you mean 'core'?)",
        id="node-in-an-undeclared-zone"),
    pytest.param("""\
        nodes:
          s1: {kind: switch, ip: 10.0.0.1}
        """, 2, "nodes.s1.ip", "only hosts have an ip", id="ip-on-a-switch"),
    pytest.param("""\
        nodes:
          h1: {kind: host, ip: 10.0.0.1}
          h2: {kind: host, ip: 10.0.0.1}
        """, 3, "nodes.h2.ip", "10.0.0.1 is already the ip of h1", id="duplicate-host-ip"),
    pytest.param("""\
        nodes:
          h1: {kind: host, ip: 10.0.0.1, mac: "00:00:00:00:00"}
        """, 2, "nodes.h1.mac", "must be a MAC address", id="bad-mac"),
    pytest.param(NF + textwrap.dedent("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            requirements:
              chain: [firewall, ids]
        """), 10, "applications[0].requirements.chain[1]",
        "no network function (kind nf) provides role 'ids' (roles provided: firewall)",
        id="chain-role-without-nf"),
    pytest.param("""\
        classifications:
          pci: {chain: [firewall]}
        """, 2, "classifications.pci.chain[0]",
        "no network function (kind nf) provides role 'firewall' (no network functions are "
        "declared)", id="classification-chain-role-without-nf"),
    pytest.param("""\
        nodes: {h1: {kind: host, ip: 10.0.0.1}}
        applications:
          - name: payroll
            endpoints: {hosts: [h1]}
            classification: restricted
        """, 5, "applications[0].classification",
        "'restricted' requires a firewall by default, but no network function (kind nf) "
        "provides role 'firewall'", id="builtin-restricted-chain-without-firewall"),
    pytest.param("""\
        zones: {dmz: 0}
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            requirements:
              avoid:
                zones: [dmz, dmx]
        """, 7, "applications[0].requirements.avoid.zones[1]",
        "unknown zone 'dmx' (did you mean 'dmz'?)", id="avoid-undeclared-zone"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            requirements:
              avoid: {nodes: [s9]}
        """, 5, "applications[0].requirements.avoid.nodes[0]",
        "unknown node 's9': declare it under nodes", id="avoid-undeclared-node"),
    pytest.param("""\
        nodes: {h1: {kind: host, ip: 10.0.0.1}}
        applications:
          - name: web
            endpoints: {hosts: [h1]}
            requirements: {avoid: {nodes: [h1]}}
        """, 5, "applications[0].requirements.avoid.nodes[0]",
        "h1 is one of the application's own endpoints.hosts", id="avoid-own-endpoint"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
          - name: web
            endpoints: {ports: [tcp/443]}
        """, 4, "applications[1].name", "duplicate application name 'web' (first used on line 2)",
        id="duplicate-app-name"),
    pytest.param("""\
        applications:
          - name: default
            endpoints: {ports: [tcp/80]}
        """, 2, "applications[0].name", "'default' is reserved", id="reserved-app-name"),
    pytest.param("""\
        applications:
          - name: my web
            endpoints: {ports: [tcp/80]}
        """, 2, "applications[0].name", "'my web' is not a valid name", id="bad-app-name"),
    pytest.param("""\
        applications:
          - endpoints: {ports: [tcp/80]}
        """, 2, "applications[0].name", "missing (required)", id="app-without-name"),
    pytest.param("""\
        applications:
          - name: everything
            endpoints: {}
        """, 3, "applications[0].endpoints", "give at least one of hosts, prefixes, ports or dscp",
        id="app-matching-every-packet"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {hosts: [h9]}
        """, 3, "applications[0].endpoints.hosts[0]", "unknown host 'h9': declare it under nodes",
        id="undeclared-endpoint-host"),
    pytest.param("""\
        nodes: {h1: {kind: host}}
        applications:
          - name: web
            endpoints: {hosts: [h1]}
        """, 4, "applications[0].endpoints.hosts[0]", "host h1 has no ip",
        id="endpoint-host-without-ip"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            classification: secret
        """, 4, "applications[0].classification", "unknown classification 'secret'",
        id="unknown-classification"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            data_class: ""
        """, 4, "applications[0].data_class", "must not be empty", id="empty-data-class"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            requirements: {isolation: links}
        """, 4, "applications[0].requirements.isolation",
        "must be one of none, link, switch, got text 'links' (did you mean 'link'?)",
        id="bad-isolation"),
    pytest.param("""\
        classifications:
          pci: {min_level: 1, allowed_zones: [vault]}
        """, 2, "classifications.pci.allowed_zones[0]",
        "unknown zone 'vault' (no zones are declared)", id="allowed-zone-undeclared"),
    pytest.param("""\
        data_classes:
          bulk: {hop: 1, load: -2}
        """, 2, "data_classes.bulk.load", "must be a number >= 0, got the number -2",
        id="negative-weight"),
    pytest.param("""\
        limits:
          max_utilization: 1.5
        """, 2, "limits.max_utilization", "must be a fraction in (0, 1]",
        id="max-utilization-above-1"),
    pytest.param("""\
        limits:
          max_utilization: 0
        """, 2, "limits.max_utilization", "must be a fraction in (0, 1]",
        id="max-utilization-0"),
    pytest.param("""\
        nodes:
          s1: {kind: switch, capacity: 10Q}
        """, 2, "nodes.s1.capacity", "'10Q' has an unknown unit 'Q'", id="bad-unit"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            requirements:
              min_bandwidth: 10MB
        """, 5, "applications[0].requirements.min_bandwidth", "'10MB' is in bytes",
        id="bandwidth-in-bytes"),
    pytest.param("""\
        applications:
          - name: web
            endpoints: {ports: [tcp/80]}
            requirements:
              max_latency: 0ms
        """, 5, "applications[0].requirements.max_latency", "must be > 0",
        id="zero-latency"),
    pytest.param("""\
        applications:
          - name: web
            endpoints:
              ports: [tcp/080]
              dscp: [010]
        """, 5, "applications[0].endpoints.dscp[0]", "write 010 without leading zeros",
        id="octal-number"),
    pytest.param("""\
        zones:
          dmz: 0
          dmz: 1
        """, 3, "zones.dmz", "duplicate key 'dmz' (first given on line 2)", id="duplicate-key"),
    pytest.param("""\
        zones:
          dmz: 0
          core: [2
        nodes: {}
        """, 4, "", "YAML syntax: expected ',' or ']', but got ':' (while parsing a flow "
        "sequence started on line 3)", id="yaml-syntax-error"),
    pytest.param("""\
        zones:
        \tdmz: 0
        """, 2, "", "indent with spaces, not tabs", id="yaml-tab"),
    pytest.param("""\
        version: 2
        """, 1, "version", "must be 1", id="version-2"),
    pytest.param("""\
        # a list is not a policy
        - zones
        """, 2, "", "a policy file is a mapping of version, zones", id="not-a-mapping"),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), MALFORMED)
def test_malformed_file_names_the_line_and_field(text: str, line: int, field: str,
                                                 message: str) -> None:
    found = problems(text)
    assert [(p.line, p.field) for p in found] == [(line, field)], found
    assert message in found[0].message
    assert found[0].source == "p.yaml"


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = """\
        version: 1
        zones: {dmz: 0, core: 2}
        nodes:
          s1: {kind: switch, zone: core}
          fw1: {kind: nf, role: firewall, attach: [{switch: s1, port: 1}]}
        applications:
          - name: web
            endpoints: {ports: [tcp/80], dscp: [99]}
            requirements: {chain: [ids], avoid: {zones: [dmx]}}
          - name: web
            endpoints: {prefixes: [300.1.1.0/24]}
        limits: {max_utilisation: 0.8}
        """
    with pytest.raises(PolicyError) as exc:
        parse_policy(textwrap.dedent(text), "net.yaml")
    found = [(p.line, p.field) for p in exc.value.problems]
    assert found == [
        (5, "nodes.fw1.attach"),
        (8, "applications[0].endpoints.dscp[0]"),
        (9, "applications[0].requirements.chain[0]"),
        (9, "applications[0].requirements.avoid.zones[0]"),
        (10, "applications[1].name"),
        (11, "applications[1].endpoints.prefixes[0]"),
        (12, "limits.max_utilisation"),
    ]
    lines = str(exc.value).splitlines()
    assert len(lines) == 7
    assert lines[0].startswith("net.yaml:5: nodes.fw1.attach: a network function has exactly")
    assert lines[-1] == ("net.yaml:12: limits.max_utilisation: unknown key 'max_utilisation' "
                         "(did you mean 'max_utilization'?)")
    assert all(re.match(r"net\.yaml:\d+: \S+: .+", line) for line in lines)


def test_policy_error_is_a_value_error_and_problems_are_frozen() -> None:
    with pytest.raises(ValueError) as exc:
        parse_policy("version: 3", "v.yaml")
    assert isinstance(exc.value, PolicyError)
    problem = exc.value.problems[0]
    with pytest.raises(AttributeError):
        problem.line = 2  # type: ignore[misc]
    assert str(Problem("f", None, "", "cannot read")) == "f: cannot read"
    assert str(Problem("f", 3, "zones.dmz", "bad")) == "f:3: zones.dmz: bad"


def test_an_alias_bomb_is_refused_quickly() -> None:
    hosts = ", ".join(["10.0.0.1"] * 1000)
    text = f"applications:\n  - &a {{name: a, endpoints: {{hosts: [{hosts}]}}}}\n"
    text += "  - *a\n" * 999
    started = time.perf_counter()
    found = problems(text)
    assert time.perf_counter() - started < 5
    assert found[0].line is None  # whole-file problems come first
    assert found[0].message.startswith("too large: more than 200000 entries")


# -- files -------------------------------------------------------------------------------

def test_load_policy_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    assert str(exc.value) == f"{path}: cannot read the file: No such file or directory"


def test_load_policy_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"zones:\n  caf\xe9: 1\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    assert [(p.line, p.field) for p in exc.value.problems] == [(2, "")]
    assert "not UTF-8" in str(exc.value)


# -- sdnscent check-policy ---------------------------------------------------------------

def test_check_policy_on_a_good_file_exits_0(capsys) -> None:
    assert main(["check-policy", str(EXAMPLE)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{EXAMPLE}: ok (3 applications, 13 nodes, 2 network functions)\n"
    assert captured.err == ""


def test_check_policy_prints_every_problem_and_exits_1(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: {dmz: 0}\nnodes:\n  s1: {kind: switch, zone: dmx}\n"
                   "limits: {max_utilization: 2}\n")
    assert main(["check-policy", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{bad}:3: nodes.s1.zone: unknown zone 'dmx' (did you mean 'dmz'?)",
        f"{bad}:4: limits.max_utilization: must be a fraction in (0, 1] such as 0.8 (or 80%), "
        "got the number 2",
    ]


def test_check_policy_reports_missing_files_and_syntax_errors_without_a_traceback(
        tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("zones:\n  dmz: 0\n applications: []\n")
    missing = tmp_path / "missing.yaml"
    assert main(["check-policy", str(EXAMPLE), str(missing), str(broken)]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0].startswith(f"{EXAMPLE}: ok (")
    assert out[1] == f"{missing}: cannot read the file: No such file or directory"
    assert out[2].startswith(f"{broken}:3: YAML syntax: ")
    assert len(out) == 3 and "Traceback" not in captured.out + captured.err


def test_check_policy_of_a_directory_and_of_an_empty_file(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert main(["check-policy", str(empty)]) == 0
    assert capsys.readouterr().out == f"{empty}: ok (0 applications, 0 nodes, " \
                                      "0 network functions)\n"
    assert main(["check-policy", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"{tmp_path}: cannot read the file: Is a directory\n"


def test_check_policy_reads_stdin_for_a_dash(monkeypatch, capsys) -> None:
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("applications: [{name: a, endpoints: "
                                                 "{ports: [udp/53]}}]\n"))
    assert main(["check-policy", "-"]) == 0
    assert capsys.readouterr().out == ("<stdin>: ok (1 application, 0 nodes, "
                                       "0 network functions)\n")


def test_check_policy_needs_a_file(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check-policy"])
    assert exc.value.code == 2
    assert "FILE" in capsys.readouterr().err
