"""Read and validate policy files (YAML) into the `policy` model.

The YAML is composed with its line marks and walked here (no schema library):
every problem is collected in one pass and names its file, line and dotted
field. docs/policy.rst describes the format.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .hosttraffic import HostTrafficPolicy, MulticastGroup
from .policy import (
    DEFAULT_APP,
    ISOLATIONS,
    Application,
    Attachment,
    Classification,
    ClassWeights,
    Endpoints,
    L4Port,
    Limits,
    NodeSpec,
    Policy,
    Requirements,
    Service,
    Zone,
    service_mac,
)
from .topology import normalize_mac

FORMAT_VERSION = 1
NODE_KINDS: tuple[str, ...] = ("switch", "host", "nf")
PROTOCOLS: tuple[str, ...] = ("tcp", "udp")
ACCESS_PATTERNS: tuple[str, ...] = ("request-response", "streaming", "periodic", "bulk-transfer")
"""The access patterns docs/policy.rst describes; other text is accepted as it is."""
MAX_OF_PORT = 0xFFFFFF00  # OpenFlow 1.3 OFPP_MAX: higher numbers are reserved ports
MAX_ENTRIES = 200_000  # mapping entries + list items walked, YAML aliases expanded

BUILTIN_CLASSIFICATIONS: Mapping[str, Classification] = {
    "public": Classification("public", min_level=0),
    "internal": Classification("internal", min_level=1),
    "restricted": Classification("restricted", min_level=2, chain=("firewall",)),
}
"""Classifications every policy has; a file may override them key by key."""

_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_MERGE = "tag:yaml.org,2002:merge"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NAME_HELP = "letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64"
_DPID_RE = re.compile(r"0x[0-9a-fA-F]{1,16}|[0-9a-fA-F]{16}|[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){7}")
_OCTAL_RE = re.compile(r"[-+]?0[0-9_]+")
_PORT_RE = re.compile(r"\s*([A-Za-z]+)\s*/\s*([0-9]+)\s*")
_QUANTITY_RE = re.compile(
    r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([^0-9\s]*)\s*")
_BANDWIDTH_UNITS: dict[str, float] = {
    prefix + suffix: scale
    for prefix, scale in {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}.items()
    for suffix in ("", "b", "bit", "bits", "bps", "b/s", "bit/s", "bits/s")
}
_DURATION_UNITS: dict[str, float] = {
    "": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "msec": 1e-3,
    "us": 1e-6, "usec": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ns": 1e-9, "nsec": 1e-9,
}
_BANDWIDTH_HINT = "give bit/s as a number or with a unit, e.g. 10G, 100M, 1.5Gbit"
_DURATION_HINT = "give seconds as a number or with a unit, e.g. 2ms, 150us, 0.5s"

_TOP_KEYS = ("version", "zones", "nodes", "classifications", "data_classes", "applications",
             "services", "limits", "host_traffic")
_HOST_TRAFFIC_KEYS = ("dhcp_server", "gateway", "groups")  # docs/host-traffic.rst
_GROUP_KEYS = ("name", "address", "members")
_ZONE_KEYS = ("level",)
_NODE_KEYS = ("kind", "zone", "level", "role", "capacity", "attach", "ip", "mac", "tagger")
_NF_KEYS = ("role", "attach")
_HOST_KEYS = ("ip", "mac")
_ATTACH_KEYS = ("switch", "port")
_CLASSIFICATION_KEYS = ("min_level", "allowed_zones", "chain")
_WEIGHT_KEYS = ("hop", "latency", "load", "security", "max_rate")
_APP_KEYS = ("name", "endpoints", "data_class", "access_pattern", "classification",
             "requirements")
_ENDPOINT_KEYS = ("hosts", "prefixes", "ports", "dscp")
_PORT_KEYS = ("proto", "port")
_REQUIREMENT_KEYS = ("max_latency", "min_bandwidth", "chain", "avoid", "isolation", "paths")
MAX_PATHS = 8  # legs of a multipath trail (buckets of its select group)
_AVOID_KEYS = ("nodes", "zones")
_LIMIT_KEYS = ("max_utilization",)
_SERVICE_KEYS = ("vip", "mac", "port", "pool", "weights")
MAX_BUCKET_WEIGHT = 0xFFFF  # OpenFlow 1.3 bucket weights are 16 bits


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy file.

    `line` is 1-based (None when the problem is about the whole file, e.g. it
    cannot be read); `field` is a dotted path such as
    ``applications[2].requirements.chain[0]`` ("" for the file as a whole).
    """

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class PolicyError(ValueError):
    """A policy that cannot be used; `problems` lists everything wrong with it.

    str() has one ``FILE:LINE: FIELD: MESSAGE`` line per problem, in line order.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# -- units -------------------------------------------------------------------------------

def parse_bandwidth(value: object) -> float:
    """A bandwidth in bit/s from a number or a string with a unit.

    Prefixes are decimal and case-insensitive (k = 1e3, M = 1e6, G = 1e9,
    T = 1e12), optionally followed by ``b``, ``bit``, ``bps``, ``b/s`` or
    ``bit/s``: ``10G``, ``100M``, ``1.5Gbit``, ``250 kbit/s``, ``1e9``. Bytes
    (a capital ``B``, as in ``MB/s``) are refused. Raise ValueError unless the
    result is a finite number > 0.

    >>> parse_bandwidth("1.5Gbit")
    1500000000.0
    """
    return _quantity(value, _BANDWIDTH_UNITS, "a bandwidth", _BANDWIDTH_HINT)


def parse_duration(value: object) -> float:
    """A duration in seconds from a number (seconds) or a string with a unit.

    Units: ``s``, ``ms``, ``us`` (or ``µs``), ``ns``: ``2ms``, ``150us``,
    ``0.5s``. Raise ValueError unless the result is a finite number > 0.

    >>> parse_duration("150us")
    0.00015
    """
    return _quantity(value, _DURATION_UNITS, "a duration", _DURATION_HINT)


def _quantity(value: object, units: Mapping[str, float], what: str, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"must be {what}: {hint}")
    if isinstance(value, str):
        match = _QUANTITY_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"{value!r} is not {what}: {hint}")
        number, unit = match.groups()
        if units is _BANDWIDTH_UNITS and "B" in unit:
            raise ValueError(f"{value!r} is in bytes: give bits (1 byte = 8 bits), "
                             "e.g. 80M for 10 MB/s")
        scale = units.get(unit.lower())
        if scale is None:
            raise ValueError(f"{value!r} has an unknown unit {unit!r}: {hint}")
        result = float(number) * scale
    else:
        result = float(value)
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return result


# -- entry points ------------------------------------------------------------------------

def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate the policy file at `path`.

    Raise PolicyError listing every problem: an unreadable file, text that is
    not UTF-8, a YAML syntax error and invalid content are all reported that
    way, with the file and (where there is one) the line.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError([Problem(source, None, "", f"cannot read the file: {reason}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise PolicyError([Problem(source, line, "", f"not UTF-8 text ({exc.reason})")]) from None
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Validate the policy YAML `text`; `source` names it in problems and in the result.

    An empty document (or ``{}``) is an empty policy with the built-in
    classifications. Raise PolicyError listing every problem found.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PolicyError([_yaml_problem(source, text, exc)]) from None
    except RecursionError:
        raise PolicyError([Problem(source, None, "", "YAML nested too deeply")]) from None
    reader = _Reader(source)
    policy: Policy | None
    try:
        policy = reader.policy(root)
    except _TooLarge:
        reader.problems.append(Problem(source, None, "", f"too large: more than {MAX_ENTRIES} "
                                       "entries (YAML aliases expanded)"))
        policy = None
    if reader.problems or policy is None:
        raise PolicyError(sorted(reader.problems, key=lambda p: p.line or 0))
    return policy


def _yaml_problem(source: str, text: str, exc: yaml.YAMLError) -> Problem:
    """A YAML syntax error as a Problem on the line where the parser stopped."""
    if isinstance(exc, yaml.MarkedYAMLError):
        message = exc.problem or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        if exc.context:
            context = exc.context.strip()
            if exc.context_mark is not None and mark is not exc.context_mark:
                context += f" started on line {exc.context_mark.line + 1}"
            if message.startswith("but "):  # "expected X ..., but found Y"
                message = f"{context}, {message}"
            else:
                message += f" ({context})"
        if "'\\t'" in message:
            message += "; indent with spaces, not tabs"
        return Problem(source, mark.line + 1 if mark else None, "", f"YAML syntax: {message}")
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[:exc.position].count("\n") + 1
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        return Problem(source, line, "", f"YAML syntax: {exc.reason} (character U+{code:04X})")
    return Problem(source, None, "", f"YAML syntax: {exc}")


# -- the walk ----------------------------------------------------------------------------

class _TooLarge(Exception):
    """The walk went over MAX_ENTRIES (an alias bomb or an absurd file)."""


def _key_path(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def _suggest(word: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)', else the options when there are few."""
    options = sorted(options)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if options and len(options) <= 12:
        return " (expected one of: " + ", ".join(options) + ")"
    return ""


def _describe(node: Node, value: object) -> str:
    """What a node holds, for the 'got ...' of a message."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean; quote it if you meant text)"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"text {value!r}"
    return f"{type(value).__name__} {str(value)!r}"


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


class _Reader:
    """Walks a composed YAML tree into a Policy, collecting problems.

    Typed getters return None after reporting a problem; the caller then
    leaves the enclosing object out (the walk goes on, the result is unused).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._entries = 0
        # What the file declares, even where a declaration has errors of its
        # own, so one mistake does not cascade into "unknown zone" everywhere.
        self.zone_names: set[str] = set()
        self.node_kinds: dict[str, str | None] = {}
        self.roles: dict[str, list[str]] = {}  # role -> the NFs providing it
        self.classification_names: set[str] = set(BUILTIN_CLASSIFICATIONS)
        self.chains_given: set[str] = set()  # classifications whose file entry has a chain
        # requirements.paths of each application (checked once classifications are known)
        self.multipath: dict[str, tuple[Node, str]] = {}
        self._paths_node: tuple[Node, str] | None = None
        self.ports_used: dict[tuple[str, int], str] = {}  # (switch, port) -> NF
        self.host_ip_given: set[str] = set()  # hosts with an ip key (valid or not)
        self.addresses: dict[tuple[str, str], str] = {}  # ("ip"/"mac", value) -> host

    # -- reporting ------------------------------------------------------------------------
    def error(self, node: Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(Problem(self.source, line, path, message))

    def _count(self, n: int) -> None:
        self._entries += n
        if self._entries > MAX_ENTRIES:
            raise _TooLarge

    # -- shapes ---------------------------------------------------------------------------
    def value(self, node: Node, path: str) -> tuple[bool, Any]:
        """(True, the Python value) of a scalar, (True, None) of a collection
        (the caller's type check names it), (False, None) after reporting."""
        if not isinstance(node, ScalarNode):
            return True, None
        try:
            return True, self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            self.error(node, path, f"cannot read the value: {getattr(exc, 'problem', exc)}")
            return False, None

    def pairs(self, node: Node, path: str, what: str,
              names: bool = False) -> list[tuple[str, Node, Node]] | None:
        """(key, key node, value node) of a mapping with text keys (valid names
        when `names`), YAML merge keys applied, duplicates reported."""
        if not isinstance(node, MappingNode):
            _, value = self.value(node, path)
            self.error(node, path, f"must be {what}, got {_describe(node, value)}")
            return None
        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _STR:
                if key_node.value in seen:
                    first = seen[key_node.value].start_mark.line + 1
                    self.error(key_node, _key_path(path, key_node.value),
                               f"duplicate key {key_node.value!r} (first given on line {first})")
                seen.setdefault(key_node.value, key_node)
        if any(key_node.tag == _MERGE for key_node, _ in node.value):
            try:
                self._constructor.flatten_mapping(node)  # <<: *anchor
            except yaml.YAMLError as exc:
                self.error(node, path, f"bad merge key (<<): {getattr(exc, 'problem', exc)}")
                return None
        self._count(len(node.value))
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            ok, key = self.value(key_node, path)
            if not ok:
                continue
            if not isinstance(key, str):
                self.error(key_node, path, f"keys must be text, got {_describe(key_node, key)}")
                continue
            if names and not _NAME_RE.fullmatch(key):
                self.error(key_node, _key_path(path, key),
                           f"{key!r} is not a valid name ({_NAME_HELP} characters)")
                continue
            result.pop(key, None)  # the last wins: explicit keys override merged ones
            result[key] = (key_node, value_node)
        return [(key, key_node, value_node) for key, (key_node, value_node) in result.items()]

    def mapping(self, node: Node, path: str, keys: tuple[str, ...],
                required: tuple[str, ...] = (), at: Node | None = None) -> dict[str, Node] | None:
        """The values of a mapping by key; unknown keys and missing `required`
        ones are reported (the latter on the line of `at`, default `node`)."""
        what = "a mapping of " + ", ".join(keys) if len(keys) > 1 else f"a mapping with {keys[0]}"
        pairs = self.pairs(node, path, what)
        if pairs is None:
            return None
        result: dict[str, Node] = {}
        for key, key_node, value_node in pairs:
            if key in keys:
                result[key] = value_node
            else:
                self.error(key_node, _key_path(path, key),
                           f"unknown key {key!r}{_suggest(key, keys)}")
        for key in required:
            if key not in result:
                self.error(at or node, _key_path(path, key), "missing (required)")
        return result

    def section(self, node: Node, path: str, what: str,
                names: bool = True) -> list[tuple[str, Node, Node]]:
        """Entries of a top-level named section; an empty section has none."""
        if _is_null(node):
            return []
        return self.pairs(node, path, what, names=names) or []

    def sequence(self, node: Node, path: str, what: str) -> list[Node] | None:
        """The items of a list, or None after reporting."""
        if not isinstance(node, SequenceNode):
            _, value = self.value(node, path)
            self.error(node, path, f"must be a list of {what}, got {_describe(node, value)}")
            return None
        self._count(len(node.value))
        return list(node.value)

    # -- typed values ---------------------------------------------------------------------
    def integer(self, node: Node, path: str, lo: int, hi: int | None = None) -> int | None:
        ok, value = self.value(node, path)
        if not ok:
            return None
        wanted = f"an integer {lo}..{hi}" if hi is not None else f"an integer >= {lo}"
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(node, path, f"must be {wanted}, got {_describe(node, value)}")
            return None
        if node.tag == _INT and _OCTAL_RE.fullmatch(node.value):
            self.error(node, path, f"write {node.value} without leading zeros "
                       f"(YAML reads it as the octal number {value})")
            return None
        if value < lo or (hi is not None and value > hi):
            self.error(node, path, f"must be {wanted}, got {value}")
            return None
        return value

    def weight(self, node: Node, path: str) -> float | None:
        """A finite number >= 0."""
        ok, value = self.value(node, path)
        if not ok:
            return None
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value < 0):
            self.error(node, path, f"must be a number >= 0, got {_describe(node, value)}")
            return None
        return float(value)

    def text(self, node: Node, path: str, name: bool = False) -> str | None:
        """Non-empty text; a valid name (letters, digits, _ . -) when `name`."""
        ok, value = self.value(node, path)
        if not ok:
            return None
        if not isinstance(value, str):
            self.error(node, path, f"must be text, got {_describe(node, value)}")
            return None
        if not value.strip():
            self.error(node, path, "must not be empty")
            return None
        if name and not _NAME_RE.fullmatch(value):
            self.error(node, path, f"{value!r} is not a valid name ({_NAME_HELP} characters)")
            return None
        return value

    def choice(self, node: Node, path: str, options: tuple[str, ...]) -> str | None:
        ok, value = self.value(node, path)
        if not ok:
            return None
        if not isinstance(value, str) or value not in options:
            hint = _suggest(value, options) if isinstance(value, str) else ""
            if hint.startswith(" (expected"):
                hint = ""
            self.error(node, path, f"must be one of {', '.join(options)}, "
                       f"got {_describe(node, value)}{hint}")
            return None
        return value

    def quantity(self, node: Node, path: str, parse: Callable[[object], float],
                 hint: str) -> float | None:
        ok, value = self.value(node, path)
        if not ok:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.error(node, path, f"must be a number or text with a unit ({hint}), "
                       f"got {_describe(node, value)}")
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.error(node, path, str(exc))
            return None

    def names(self, node: Node, path: str, what: str,
              check: Callable[[str, Node, str], bool] | None = None) -> list[str] | None:
        """A list of names, each passing `check(name, node, path)` if given;
        None if the list or any item is bad (every bad item is reported)."""
        items = self.sequence(node, path, what)
        if items is None:
            return None
        result: list[str] = []
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            name = self.text(item, item_path, name=True)
            if name is not None and (check is None or check(name, item, item_path)):
                result.append(name)
        return list(dict.fromkeys(result)) if len(result) == len(items) else None

    # -- cross references -----------------------------------------------------------------
    def zone_ref(self, name: str, node: Node, path: str) -> bool:
        if name in self.zone_names:
            return True
        hint = _suggest(name, self.zone_names) if self.zone_names else " (no zones are declared)"
        self.error(node, path, f"unknown zone {name!r}{hint}")
        return False

    def node_ref(self, name: str, node: Node, path: str) -> bool:
        if name in self.node_kinds:
            return True
        hint = _suggest(name, self.node_kinds) if self.node_kinds else ""
        self.error(node, path, f"unknown node {name!r}: declare it under nodes{hint}")
        return False

    def role_ref(self, role: str, node: Node, path: str) -> bool:
        if role in self.roles:
            return True
        if not self.roles:
            hint = " (no network functions are declared)"
        else:
            hint = _suggest(role, self.roles)
            if hint.startswith(" (expected"):
                hint = " (roles provided: " + ", ".join(sorted(self.roles)) + ")"
        self.error(node, path, f"no network function (kind nf) provides role {role!r}{hint}")
        return False

    def host_ref(self, name: str, node: Node, path: str) -> bool:
        """A declared host with an ip, or an IPv4 address."""
        if name not in self.node_kinds:
            try:
                ipaddress.IPv4Address(name)
                return True
            except ValueError:
                pass
            hint = _suggest(name, [n for n, k in self.node_kinds.items() if k == "host"])
            if hint.startswith(" (expected"):
                hint = ""
            self.error(node, path, f"unknown host {name!r}: declare it under nodes (kind host, "
                       f"with its ip) or give its IPv4 address{hint}")
            return False
        kind = self.node_kinds[name]
        if kind is None:
            return True  # its declaration is reported already
        if kind != "host":
            self.error(node, path, f"{name} is declared as a {kind}, not a host")
            return False
        if name not in self.host_ip_given:
            self.error(node, path, f"host {name} has no ip: give nodes.{name}.ip so that the "
                       "controller can recognise its packets")
            return False
        return True

    def chain(self, node: Node, path: str) -> tuple[str, ...] | None:
        roles = self.sequence(node, path, "network-function roles")
        if roles is None:
            return None
        found = [self.text(item, f"{path}[{i}]", name=True) for i, item in enumerate(roles)]
        found = [role if role is not None and self.role_ref(role, item, f"{path}[{i}]") else None
                 for i, (role, item) in enumerate(zip(found, roles, strict=True))]
        return tuple(r for r in found if r is not None) if None not in found else None

    # -- the document ---------------------------------------------------------------------
    def policy(self, root: Node | None) -> Policy | None:
        if root is None or _is_null(root):
            return Policy(classifications=dict(BUILTIN_CLASSIFICATIONS), source=self.source)
        if not isinstance(root, MappingNode):
            _, value = self.value(root, "")
            self.error(root, "", "a policy file is a mapping of " + ", ".join(_TOP_KEYS)
                       + f", got {_describe(root, value)}")
            return None
        top = self.mapping(root, "", _TOP_KEYS)
        if top is None:
            return None
        if "version" in top:
            node = top["version"]
            ok, value = self.value(node, "version")
            if ok and (isinstance(value, bool) or not isinstance(value, int)
                       or value != FORMAT_VERSION):
                self.error(node, "version", f"must be {FORMAT_VERSION} (the only format version "
                           f"there is), got {_describe(node, value)}")
        zones = self.zones(top["zones"]) if "zones" in top else {}
        nodes = self.nodes(top["nodes"]) if "nodes" in top else {}
        classifications = dict(BUILTIN_CLASSIFICATIONS)
        if "classifications" in top:
            classifications.update(self.classifications(top["classifications"]))
        data_classes = self.data_classes(top["data_classes"]) if "data_classes" in top else {}
        applications = self.applications(top["applications"]) if "applications" in top else ()
        services = self.services(top["services"], applications) if "services" in top else ()
        limits = self.limits(top["limits"]) if "limits" in top else Limits()
        host_traffic = self.host_traffic(top["host_traffic"]) if "host_traffic" in top \
            else HostTrafficPolicy()
        policy = Policy(zones=zones, nodes=nodes, classifications=classifications,
                        data_classes=data_classes, applications=applications, limits=limits,
                        services=services, source=self.source, host_traffic=host_traffic)
        self.check_multipath(policy)
        return policy

    def check_multipath(self, policy: Policy) -> None:
        """A multipath application may not cross network functions (its legs are plain paths)."""
        for app in policy.applications:
            chain = policy.chain_of(app)
            if app.requirements.paths > 1 and chain and app.name in self.multipath:
                node, path = self.multipath[app.name]
                self.error(node, path, f"a trail split over {app.requirements.paths} paths "
                           f"cannot cross network functions, but {app.name!r} needs the chain "
                           f"{', '.join(chain)}: give requirements.chain: [] or paths: 1")

    def zones(self, node: Node) -> dict[str, Zone]:
        entries = self.section(node, "zones", "a mapping of zone names to levels")
        self.zone_names.update(name for name, _, _ in entries)
        zones: dict[str, Zone] = {}
        for name, key_node, value in entries:
            path = _key_path("zones", name)
            if isinstance(value, MappingNode):  # the long form: dmz: {level: 0}
                fields = self.mapping(value, path, _ZONE_KEYS, required=("level",), at=key_node)
                if not fields:
                    continue
                value, path = fields["level"], f"{path}.level"
            level = self.integer(value, path, 0)
            if level is not None:
                zones[name] = Zone(name, level)
        return zones

    def nodes(self, node: Node) -> dict[str, NodeSpec]:
        entries = self.section(node, "nodes", "a mapping of node names to attributes")
        declared: list[tuple[str, Node, dict[str, Node]]] = []
        for name, key_node, value in entries:  # declare all first: attach may name a later one
            path = _key_path("nodes", name)
            fields = self.mapping(value, path, _NODE_KEYS, required=("kind",), at=key_node)
            kind = None
            if fields is not None and "kind" in fields:
                kind = self.choice(fields["kind"], f"{path}.kind", NODE_KINDS)
            self.node_kinds[name] = kind
            if fields is not None and "ip" in fields:
                self.host_ip_given.add(name)
            if fields is not None:
                declared.append((name, key_node, fields))
        result: dict[str, NodeSpec] = {}
        for name, key_node, fields in declared:
            spec = self.node(name, key_node, fields)
            if spec is not None:
                result[name] = spec
        return result

    def node(self, name: str, key_node: Node, fields: dict[str, Node]) -> NodeSpec | None:
        path = _key_path("nodes", name)
        kind = self.node_kinds[name]
        bad = kind is None
        zone = level = role = capacity = None
        attach: tuple[Attachment, ...] = ()
        if "zone" in fields:
            zone = self.text(fields["zone"], f"{path}.zone", name=True)
            bad |= zone is None or not self.zone_ref(zone, fields["zone"], f"{path}.zone")
        if "level" in fields:
            level = self.integer(fields["level"], f"{path}.level", 0)
            bad |= level is None
        if "capacity" in fields:
            capacity = self.quantity(fields["capacity"], f"{path}.capacity", parse_bandwidth,
                                     _BANDWIDTH_HINT)
            bad |= capacity is None
        if kind == "nf":
            if "role" in fields:
                role = self.text(fields["role"], f"{path}.role", name=True)
                if role is not None:
                    self.roles.setdefault(role, []).append(name)
            else:
                self.error(key_node, f"{path}.role", "missing: a network function needs a role "
                           "(firewall, load_balancer, ...)")
            if "attach" in fields:
                found = self.attachments(fields["attach"], f"{path}.attach", name)
                attach = found or ()
                bad |= found is None
            else:
                self.error(key_node, f"{path}.attach", "missing: a network function needs "
                           "two attachments, [{switch: S, port: P}, {switch: S, port: Q}]")
                bad = True
            bad |= role is None
        elif kind is not None:
            for key in _NF_KEYS:
                if key in fields:
                    self.error(fields[key], f"{path}.{key}", f"only network functions (kind nf) "
                               f"have a {key}; {name} is a {kind}")
                    bad = True
        addresses: dict[str, str | None] = {}
        for key in _HOST_KEYS:
            if key not in fields:
                continue
            if kind is not None and kind != "host":
                self.error(fields[key], f"{path}.{key}", f"only hosts have "
                           f"{'an ip' if key == 'ip' else 'a mac'}; {name} is a {kind}")
                bad = True
                continue
            addresses[key] = self.address(fields[key], f"{path}.{key}", key, name)
            bad |= addresses[key] is None
        tagger = False
        if "tagger" in fields:
            ok, value = self.value(fields["tagger"], f"{path}.tagger")
            if not ok or not isinstance(value, bool):
                self.error(fields["tagger"], f"{path}.tagger", "must be true or false")
                bad = True
            elif value and kind != "host":
                self.error(fields["tagger"], f"{path}.tagger", f"only hosts tag their own "
                           f"packets; {name} is a {kind}")
                bad = True
            elif value and "ip" not in fields and "mac" not in fields:
                self.error(fields["tagger"], f"{path}.tagger", "a tagger host needs an ip or "
                           "a mac, so the controller knows its port")
                bad = True
            else:
                tagger = bool(value)
        if bad or kind is None:
            return None
        return NodeSpec(name=name, kind=kind, zone=zone, level=level,  # type: ignore[arg-type]
                        role=role, capacity=capacity, attach=attach, tagger=tagger,
                        **addresses)

    def address(self, node: Node, path: str, key: str, owner: str) -> str | None:
        """A host's IPv4 address or MAC (lower-case, colons), unique among hosts."""
        ok, value = self.value(node, path)
        if not ok:
            return None
        if key == "mac":  # from the text: YAML reads 10:00:00:00:00:01 as a number
            raw = node.value if isinstance(node, ScalarNode) and value is not None else None
            try:
                address = normalize_mac(raw) if isinstance(raw, str) else None
            except ValueError:
                address = None
            if address is None:
                self.error(node, path, "must be a MAC address such as 00:00:00:00:00:01, "
                           f"got {_describe(node, value)}")
                return None
        else:
            try:
                address = str(ipaddress.IPv4Address(value.strip() if isinstance(value, str)
                                                    else ""))
            except ValueError:
                self.error(node, path, "must be an IPv4 address such as 10.0.0.1, "
                           f"got {_describe(node, value)}")
                return None
        other = self.addresses.setdefault((key, address), owner)
        if other != owner:
            self.error(node, path, f"{address} is already the {key} of {other}")
            return None
        return address

    def attachments(self, node: Node, path: str, owner: str) -> tuple[Attachment, ...] | None:
        items = self.sequence(node, path, "{switch, port} mappings")
        if items is None:
            return None
        if len(items) != 2:
            self.error(node, path, "a network function has exactly two attachments (traffic "
                       f"enters on one and leaves on the other), got {len(items)}")
        result: list[Attachment] = []
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            fields = self.mapping(item, item_path, _ATTACH_KEYS, required=_ATTACH_KEYS)
            if fields is None or len(fields) != 2:
                continue
            switch = self.switch_ref(fields["switch"], f"{item_path}.switch")
            port = self.integer(fields["port"], f"{item_path}.port", 1, MAX_OF_PORT)
            if switch is None or port is None:
                continue
            other = self.ports_used.setdefault((switch, port), owner)
            if other != owner or Attachment(switch, port) in result:
                self.error(item, item_path, f"switch {switch} port {port} is already an "
                           f"attachment of {other}")
                continue
            result.append(Attachment(switch, port))
        return tuple(result) if len(result) == 2 == len(items) else None

    def switch_ref(self, node: Node, path: str) -> str | None:
        """A switch name as given, or a dpid (an integer, 0x..., 16 hex digits
        or 8 colon-separated bytes) as 16 lower-case hex digits."""
        ok, value = self.value(node, path)
        if not ok:
            return None
        raw = node.value.strip() if isinstance(node, ScalarNode) else ""
        if _DPID_RE.fullmatch(raw):  # from the text: YAML reads 0000000000000010 as octal
            dpid = int(raw.replace(":", "").lower().removeprefix("0x"), 16)
        elif isinstance(value, int) and not isinstance(value, bool):
            dpid = value
        else:
            name = self.text(node, path, name=True)
            if name is None:
                return None
            kind = self.node_kinds.get(name)
            if kind is not None and kind != "switch":
                self.error(node, path, f"{name} is declared as a {kind}, not a switch")
                return None
            return name
        if not 0 < dpid < 2**64:
            self.error(node, path, f"dpid {raw} is outside 1..2^64-1")
            return None
        return f"{dpid:016x}"

    def classifications(self, node: Node) -> dict[str, Classification]:
        entries = self.section(node, "classifications",
                               "a mapping of classification names to rules")
        self.classification_names.update(name for name, _, _ in entries)
        result: dict[str, Classification] = {}
        for name, _, value in entries:
            path = _key_path("classifications", name)
            fields = self.mapping(value, path, _CLASSIFICATION_KEYS)
            if fields is None:
                continue
            given: dict[str, Any] = {}
            bad = False
            if "min_level" in fields:
                given["min_level"] = self.integer(fields["min_level"], f"{path}.min_level", 0)
                bad |= given["min_level"] is None
            if "allowed_zones" in fields:
                zones = self.names(fields["allowed_zones"], f"{path}.allowed_zones",
                                   "zone names", self.zone_ref)
                given["allowed_zones"] = frozenset(zones or ())
                bad |= zones is None
            if "chain" in fields:
                self.chains_given.add(name)
                given["chain"] = self.chain(fields["chain"], f"{path}.chain")
                bad |= given["chain"] is None
            if not bad:
                base = BUILTIN_CLASSIFICATIONS.get(name, Classification(name))
                result[name] = replace(base, **given)
        return result

    def data_classes(self, node: Node) -> dict[str, ClassWeights]:
        entries = self.section(node, "data_classes", "a mapping of data-class names to weights",
                               names=False)
        result: dict[str, ClassWeights] = {}
        for name, _, value in entries:
            path = _key_path("data_classes", name)
            fields = self.mapping(value, path, _WEIGHT_KEYS)
            if fields is None:
                continue
            weights = {key: self.weight(v, f"{path}.{key}") for key, v in fields.items()
                       if key != "max_rate"}
            if "max_rate" in fields:
                weights["max_rate"] = self.quantity(fields["max_rate"], f"{path}.max_rate",
                                                    parse_bandwidth, _BANDWIDTH_HINT)
            if None not in weights.values():
                result[name] = ClassWeights(name, **weights)
        return result

    def applications(self, node: Node) -> tuple[Application, ...]:
        if _is_null(node):
            return ()
        items = self.sequence(node, "applications", "applications (- name: ...)")
        first_line: dict[str, int] = {}
        result = (self.application(item, f"applications[{i}]", first_line)
                  for i, item in enumerate(items or ()))
        return tuple(app for app in result if app is not None)

    def application(self, node: Node, path: str,
                    first_line: dict[str, int]) -> Application | None:
        fields = self.mapping(node, path, _APP_KEYS, required=("name", "endpoints"))
        if fields is None:
            return None
        name = self.app_name(fields["name"], f"{path}.name", first_line) \
            if "name" in fields else None
        bad = name is None
        endpoints = None
        if "endpoints" in fields:
            endpoints = self.endpoints(fields["endpoints"], f"{path}.endpoints")
            bad |= endpoints is None
        given: dict[str, Any] = {}
        for key in ("data_class", "access_pattern"):
            if key in fields:
                given[key] = self.text(fields[key], f"{path}.{key}")
                bad |= given[key] is None
        if "classification" in fields:
            cnode = fields["classification"]
            classification = self.text(cnode, f"{path}.classification", name=True)
            known = self.classification_names
            if classification is not None and classification not in known:
                self.error(cnode, f"{path}.classification", f"unknown classification "
                           f"{classification!r}{_suggest(classification, known)}")
                classification = None
            given["classification"] = classification
            bad |= classification is None
        requirements: Requirements | None = Requirements()
        if "requirements" in fields:
            self._paths_node = None
            requirements = self.requirements(fields["requirements"], f"{path}.requirements",
                                             endpoints)
            bad |= requirements is None
            if self._paths_node is not None and name is not None:
                self.multipath[name] = self._paths_node
        classification = given.get("classification")
        if (classification is not None and requirements is not None
                and requirements.chain is None and classification not in self.chains_given):
            # A built-in default chain is checked where an application relies on it.
            builtin = BUILTIN_CLASSIFICATIONS.get(classification, Classification(""))
            for role in builtin.chain:
                if role not in self.roles:
                    self.error(fields["classification"], f"{path}.classification",
                               f"{classification!r} requires a {role} by default, but no network "
                               f"function (kind nf) provides role {role!r}: declare one, or give "
                               "requirements.chain")
                    bad = True
        if bad or name is None or endpoints is None or requirements is None:
            return None
        return Application(name=name, endpoints=endpoints, requirements=requirements, **given)

    def app_name(self, node: Node, path: str, first_line: dict[str, int]) -> str | None:
        name = self.text(node, path, name=True)
        if name is None:
            return None
        if name == DEFAULT_APP:
            self.error(node, path, f"{DEFAULT_APP!r} is reserved for the traffic that matches no "
                       "application; choose another name")
            return None
        if name in first_line:
            self.error(node, path, f"duplicate application name {name!r} (first used on line "
                       f"{first_line[name]})")
            return None
        first_line[name] = node.start_mark.line + 1
        return name

    def endpoints(self, node: Node, path: str) -> Endpoints | None:
        fields = self.mapping(node, path, _ENDPOINT_KEYS)
        if fields is None:
            return None
        hosts: list[str] | None = []
        prefixes: list[ipaddress.IPv4Network | ipaddress.IPv6Network | None] = []
        ports: list[L4Port | None] = []
        dscp: list[int | None] = []
        bad = False
        if "hosts" in fields:
            hosts = self.names(fields["hosts"], f"{path}.hosts", "host names", self.host_ref)
            bad |= hosts is None
        for key, out, what, read in (
                ("prefixes", prefixes, "IP prefixes", self.prefix),
                ("ports", ports, "ports such as tcp/443", self.l4port),
                ("dscp", dscp, "DSCP values 0..63",
                 lambda item, item_path: self.integer(item, item_path, 0, 63))):
            if key in fields:
                items = self.sequence(fields[key], f"{path}.{key}", what)
                bad |= items is None
                out.extend(read(item, f"{path}.{key}[{i}]") for i, item in enumerate(items or ()))
                bad |= None in out
        if bad or hosts is None:
            return None
        if not (hosts or prefixes or ports or dscp):
            self.error(node, path, "give at least one of hosts, prefixes, ports or dscp "
                       "(an application without endpoints would match every packet)")
            return None
        return Endpoints(hosts=tuple(hosts), prefixes=tuple(dict.fromkeys(prefixes)),  # type: ignore[arg-type]
                         ports=tuple(dict.fromkeys(ports)), dscp=tuple(dict.fromkeys(dscp)))

    def prefix(self, node: Node, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network \
            | None:
        ok, value = self.value(node, path)
        if not ok:
            return None
        if not isinstance(value, str):
            self.error(node, path, "must be an IPv4 or IPv6 prefix such as 10.0.1.0/24 or "
                       f"fc00::/64, got {_describe(node, value)}")
            return None
        try:
            return ipaddress.ip_network(value.strip(), strict=False)
        except ValueError as exc:
            self.error(node, path, f"{value!r} is not an IPv4 or IPv6 prefix such as "
                       f"10.0.1.0/24 or fc00::/64 ({exc})")
            return None

    def l4port(self, node: Node, path: str) -> L4Port | None:
        if isinstance(node, MappingNode):  # the long form: {proto: tcp, port: 443}
            fields = self.mapping(node, path, _PORT_KEYS, required=_PORT_KEYS)
            if fields is None or len(fields) != 2:
                return None
            proto = self.choice(fields["proto"], f"{path}.proto", PROTOCOLS)
            port = self.integer(fields["port"], f"{path}.port", 1, 65535)
            if proto is None or port is None:
                return None
            return L4Port(proto, port)  # type: ignore[arg-type]
        ok, value = self.value(node, path)
        if not ok:
            return None
        match = _PORT_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            self.error(node, path, "must be a port such as tcp/443 or {proto: udp, port: 53}, "
                       f"got {_describe(node, value)}")
            return None
        proto, number = match.group(1).lower(), int(match.group(2))
        if proto not in PROTOCOLS:
            self.error(node, path, f"unknown protocol {match.group(1)!r} in {value!r} "
                       "(expected tcp or udp)")
            return None
        if not 1 <= number <= 65535:
            self.error(node, path, f"port {number} in {value!r} is outside 1..65535")
            return None
        return L4Port(proto, number)  # type: ignore[arg-type]

    def requirements(self, node: Node, path: str,
                     endpoints: Endpoints | None) -> Requirements | None:
        fields = self.mapping(node, path, _REQUIREMENT_KEYS)
        if fields is None:
            return None
        given: dict[str, Any] = {}
        if "max_latency" in fields:
            given["max_latency"] = self.quantity(fields["max_latency"], f"{path}.max_latency",
                                                 parse_duration, _DURATION_HINT)
        if "min_bandwidth" in fields:
            given["min_bandwidth"] = self.quantity(fields["min_bandwidth"],
                                                   f"{path}.min_bandwidth", parse_bandwidth,
                                                   _BANDWIDTH_HINT)
        if "chain" in fields:
            given["chain"] = self.chain(fields["chain"], f"{path}.chain")
        if "isolation" in fields:
            given["isolation"] = self.choice(fields["isolation"], f"{path}.isolation", ISOLATIONS)
        if "paths" in fields:
            given["paths"] = self.integer(fields["paths"], f"{path}.paths", 1, MAX_PATHS)
            self._paths_node = (fields["paths"], f"{path}.paths")
        if "avoid" in fields:
            avoid = self.mapping(fields["avoid"], f"{path}.avoid", _AVOID_KEYS)
            if avoid is None:
                return None
            own = set(endpoints.hosts) if endpoints is not None else set()

            def avoidable(name: str, item: Node, item_path: str) -> bool:
                if not self.node_ref(name, item, item_path):
                    return False
                if name in own:
                    self.error(item, item_path, f"{name} is one of the application's own "
                               "endpoints.hosts")
                    return False
                return True

            if "nodes" in avoid:
                found = self.names(avoid["nodes"], f"{path}.avoid.nodes", "node names", avoidable)
                given["avoid_nodes"] = None if found is None else frozenset(found)
            if "zones" in avoid:
                found = self.names(avoid["zones"], f"{path}.avoid.zones", "zone names",
                                   self.zone_ref)
                given["avoid_zones"] = None if found is None else frozenset(found)
        if None in given.values():
            return None
        return Requirements(**given)

    def services(self, node: Node, applications: tuple[Application, ...]) -> tuple[Service, ...]:
        entries = self.section(node, "services", "a mapping of service names to "
                               "{vip, pool, ...}")
        app_names = {app.name for app in applications}
        result: list[Service] = []
        for name, key_node, value in entries:
            path = _key_path("services", name)
            fields = self.mapping(value, path, _SERVICE_KEYS, required=("vip", "pool"),
                                  at=key_node)
            bad = fields is None
            if name == DEFAULT_APP or name in app_names:
                what = "reserved" if name == DEFAULT_APP else "the name of an application"
                self.error(key_node, path, f"{name!r} is {what}: a service's trails are named "
                           "after it, choose another name")
                bad = True
            if fields is None:
                continue
            vip = self.service_vip(fields["vip"], f"{path}.vip", name) if "vip" in fields \
                else None
            mac = None
            if "mac" in fields:
                mac = self.service_mac(fields["mac"], f"{path}.mac", name)
                bad |= mac is None
            elif vip is not None:
                mac = service_mac(vip)
            port = self.l4port(fields["port"], f"{path}.port") if "port" in fields else None
            bad |= "port" in fields and port is None
            pool = self.pool(fields["pool"], f"{path}.pool") if "pool" in fields else None
            weights = None
            if "weights" in fields:
                weights = self.weights(fields["weights"], f"{path}.weights", pool)
                bad |= weights is None
            if bad or vip is None or mac is None or pool is None:
                continue
            result.append(Service(name=name, vip=vip, mac=mac, pool=pool, port=port,
                                  weights=weights))
        return tuple(result)

    def service_vip(self, node: Node, path: str, owner: str) -> ipaddress.IPv4Address | None:
        ok, value = self.value(node, path)
        if not ok:
            return None
        try:
            vip = ipaddress.IPv4Address(value.strip() if isinstance(value, str) else "")
        except ValueError:
            self.error(node, path, "must be an IPv4 address such as 10.0.0.100, "
                       f"got {_describe(node, value)}")
            return None
        if vip.is_multicast or vip.is_unspecified or vip == ipaddress.IPv4Address(
                "255.255.255.255"):
            self.error(node, path, f"{vip} is not a unicast address")
            return None
        other = self.addresses.setdefault(("ip", str(vip)), f"service {owner}")
        if other != f"service {owner}":
            self.error(node, path, f"{vip} is already the ip of {other}")
            return None
        return vip

    def service_mac(self, node: Node, path: str, owner: str) -> str | None:
        ok, value = self.value(node, path)
        if not ok:
            return None
        raw = node.value if isinstance(node, ScalarNode) and value is not None else None
        try:
            mac = normalize_mac(raw) if isinstance(raw, str) else None
        except ValueError:
            mac = None
        if mac is None:
            self.error(node, path, "must be a MAC address such as 0e:5c:0a:00:00:64, "
                       f"got {_describe(node, value)}")
            return None
        if int(mac[:2], 16) & 1:
            self.error(node, path, f"{mac} is a multicast MAC; a service needs a unicast one")
            return None
        other = self.addresses.setdefault(("mac", mac), f"service {owner}")
        if other != f"service {owner}":
            self.error(node, path, f"{mac} is already the mac of {other}")
            return None
        return mac

    def pool(self, node: Node, path: str) -> tuple[str, ...] | None:
        def member(name: str, item: Node, item_path: str) -> bool:
            if name not in self.node_kinds:
                self.error(item, item_path, f"unknown host {name!r}: a pool member must be "
                           "declared under nodes (kind host, with its ip)"
                           f"{_suggest(name, self.node_kinds) if self.node_kinds else ''}")
                return False
            return self.host_ref(name, item, item_path)

        items = node.value if isinstance(node, SequenceNode) else None
        found = self.names(node, path, "host names", member)
        if found is None:
            return None
        if not found:
            self.error(node, path, "a service needs at least one pool member")
            return None
        if items is not None and len(found) != len(items):
            self.error(node, path, "a pool member is listed twice")
            return None
        return tuple(found)

    def weights(self, node: Node, path: str,
                pool: tuple[str, ...] | None) -> tuple[int, ...] | None:
        items = self.sequence(node, path, f"integers 1..{MAX_BUCKET_WEIGHT}")
        if items is None:
            return None
        found = [self.integer(item, f"{path}[{i}]", 1, MAX_BUCKET_WEIGHT)
                 for i, item in enumerate(items)]
        if None in found:
            return None
        if pool is not None and len(found) != len(pool):
            self.error(node, path, f"give one weight per pool member: {len(pool)} members, "
                       f"{len(found)} weights")
            return None
        return tuple(found)  # type: ignore[arg-type]

    def host_traffic(self, node: Node) -> HostTrafficPolicy:
        """The DHCP server and the gateway: each a declared host or an IPv4 address."""
        if _is_null(node):
            return HostTrafficPolicy()
        fields = self.mapping(node, "host_traffic", _HOST_TRAFFIC_KEYS)
        if not fields:
            return HostTrafficPolicy()
        found: dict[str, Any] = {}
        if "groups" in fields:
            found["groups"] = self.multicast_groups(fields.pop("groups"))
        for key, item in fields.items():
            path = f"host_traffic.{key}"
            ok, value = self.value(item, path)
            if not ok:
                continue
            if not isinstance(value, str) or not value.strip():
                self.error(item, path, "must name a host (declared under nodes) or give its "
                           f"IPv4 address, got {_describe(item, value)}")
                continue
            if self.host_ref(value.strip(), item, path):
                found[key] = value.strip()
        return HostTrafficPolicy(**found)

    def multicast_groups(self, node: Node) -> tuple[MulticastGroup, ...]:
        """Named IPv4 multicast groups, each with its member hosts."""
        items = self.sequence(node, "host_traffic.groups", "groups") or []
        groups: list[MulticastGroup] = []
        for i, item in enumerate(items):
            path = f"host_traffic.groups[{i}]"
            fields = self.mapping(item, path, _GROUP_KEYS, required=_GROUP_KEYS)
            if not fields or not all(k in fields for k in _GROUP_KEYS):
                continue
            name = self.text(fields["name"], f"{path}.name", name=True)
            address = self.text(fields["address"], f"{path}.address")
            members = self.names(fields["members"], f"{path}.members", "host names",
                                 self.host_ref)
            if address is not None:
                try:
                    ok = ipaddress.IPv4Address(address.strip()).is_multicast
                except ValueError:
                    ok = False
                if not ok:
                    self.error(fields["address"], f"{path}.address", f"{address!r} is not an "
                               "IPv4 multicast address (224.0.0.0/4) such as 239.1.1.1")
                    address = None
            if name in {g.name for g in groups}:
                self.error(fields["name"], f"{path}.name", f"group {name!r} is named twice")
                continue
            if name is not None and address is not None and members:
                groups.append(MulticastGroup(name, address.strip(), tuple(members)))
        return tuple(groups)

    def limits(self, node: Node) -> Limits:
        if _is_null(node):
            return Limits()
        fields = self.mapping(node, "limits", _LIMIT_KEYS)
        if not fields:
            return Limits()
        node = fields["max_utilization"]
        path = "limits.max_utilization"
        ok, value = self.value(node, path)
        if not ok:
            return Limits()
        if isinstance(value, str) and re.fullmatch(r"\s*[0-9.]+\s*%\s*", value):
            try:
                value = float(value.strip()[:-1]) / 100
            except ValueError:
                pass
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not 0 < value <= 1):
            self.error(node, path, "must be a fraction in (0, 1] such as 0.8 (or 80%), "
                       f"got {_describe(node, value)}")
            return Limits()
        return Limits(max_utilization=float(value))
