"""docs/pipeline.rst and sdnscent/pipeline.py agree.

Every table, priority, cookie constant and id range of the module is listed in
the document's list-tables (name / value / meaning) with the same value, every
name listed there exists in the module with that value, and every ``NAME``
(value) the prose cites matches too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sdnscent import pipeline

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "pipeline.rst"
TAGGER_C = REPO / "sdnscent" / "vni" / "tagger.c"
# list-table caption -> the constants it holds, by name prefix
CATEGORIES = {
    "Tables": ("TABLE_",),
    "Priorities": ("PRIO_", "MAX_APPS_PRIORITY"),
    "Cookie layout and kinds": ("COOKIE_", "KIND_", "PIPELINE_COOKIE"),
    "Id ranges": ("NO_LABEL", "MIN_LABEL", "MAX_LABEL", "SERVICE_GROUP_", "MULTIPATH_GROUP_",
                  "METER_ID_", "TRAIL_LABEL_", "BACKUP_LABEL_", "PROTECTION_GROUP_"),
}
CITED = re.compile(r"``([A-Z][A-Z0-9_]*)``\s*\((?:``)?(0x[0-9a-fA-F_]+|\d+)(?:``)?[,)]")


def list_tables(text: str) -> dict[str, list[list[str]]]:
    """Caption -> rows (lists of cells, continuation lines joined) of each list-table."""
    tables: dict[str, list[list[str]]] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        head = re.match(r"\.\. list-table::\s*(.*)$", lines[i])
        i += 1
        if head is None:
            continue
        rows: list[list[str]] = []
        row_indent = -1
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            line = lines[i]
            i += 1
            row = re.match(r"^( *)\* - (.*)$", line)
            cell = re.match(r"^( *)- (.*)$", line)
            if row:
                row_indent = len(row.group(1))
                rows.append([row.group(2).strip()])
            elif cell and rows and len(cell.group(1)) == row_indent + 2:
                rows[-1].append(cell.group(2).strip())
            elif line.strip() and rows and not line.strip().startswith(":"):
                rows[-1][-1] += " " + line.strip()
        tables[head.group(1).strip()] = rows
    return tables


def number(text: str) -> int:
    """A value cell or citation as an int (decimal or 0x hex, underscores allowed)."""
    return int(text.strip("` ").replace("_", ""), 0)


def documented() -> dict[str, list[tuple[str, int]]]:
    """name -> [(caption, value)] for every name / value row of the doc's list-tables."""
    found: dict[str, list[tuple[str, int]]] = {}
    for caption, rows in list_tables(DOC.read_text()).items():
        for cells in rows[1:]:
            name = re.fullmatch(r"``([A-Z][A-Z0-9_]*)``", cells[0])
            if name and len(cells) == 3:
                found.setdefault(name.group(1), []).append((caption, number(cells[1])))
    return found


def constants() -> dict[str, int]:
    """Every int constant of sdnscent.pipeline."""
    return {name: value for name, value in vars(pipeline).items()
            if name.isupper() and isinstance(value, int) and not isinstance(value, bool)}


def category(name: str) -> str:
    """The list-table a constant belongs in."""
    [caption] = [c for c, prefixes in CATEGORIES.items() if name.startswith(prefixes)]
    return caption


def test_the_doc_tables_have_name_value_meaning_columns() -> None:
    tables = list_tables(DOC.read_text())
    for caption in CATEGORIES:
        assert tables[caption][0] == ["name", "value", "meaning"], caption
        assert all(len(row) == 3 for row in tables[caption]), caption


def test_every_constant_is_documented_once_with_its_value_in_its_table() -> None:
    doc = documented()
    problems = []
    for name, value in constants().items():
        entries = doc.get(name, [])
        if entries != [(category(name), value)]:
            problems.append(f"{name} = {value} in sdnscent/pipeline.py, in "
                            f"docs/pipeline.rst: {entries or 'missing'}")
    assert problems == []


def test_every_documented_name_is_a_constant_with_that_value() -> None:
    ours = constants()
    problems = [f"{name}: docs/pipeline.rst {entries}, sdnscent/pipeline.py "
                f"{ours.get(name, 'missing')}"
                for name, entries in documented().items()
                if name not in ours or any(v != ours[name] for _, v in entries)]
    assert problems == []


def test_values_cited_in_the_prose_match_the_module() -> None:
    ours = constants()
    cited = CITED.findall(DOC.read_text())
    assert len(cited) >= 15  # the flow table cites every priority
    problems = [f"``{name}`` ({value}): sdnscent/pipeline.py has {ours.get(name, 'no such name')}"
                for name, value in cited if ours.get(name) != number(value)]
    assert problems == []


def test_every_flow_priority_appears_in_the_flow_table() -> None:
    [flow_table] = [rows for caption, rows in list_tables(DOC.read_text()).items()
                    if caption == "Flows"]
    cited = {name for row in flow_table[1:] for name, _ in CITED.findall(row[1])}
    assert cited == {n for n in constants() if n.startswith("PRIO_")}


def test_priorities_keep_their_order() -> None:
    p = pipeline
    order = [p.PRIO_LLDP, p.PRIO_ARP, p.PRIO_LINK_PORT, p.PRIO_TAGGED, p.PRIO_TAGGER_DROP,
             p.PRIO_UNTRUSTED_LABEL, p.PRIO_SERVICE, p.PRIO_APP_TOP]
    assert order == sorted(order, reverse=True) and len(set(order)) == len(order)
    assert p.PRIO_APP_TOP == p.PRIO_APP_BASE + p.MAX_APPS_PRIORITY
    assert p.PRIO_APP_BASE == p.PRIO_APP > p.PRIO_TRAIL > p.PRIO_PUNT > p.PRIO_MISS == 0
    assert all(0 <= v <= 0xFFFF for n, v in constants().items() if n.startswith("PRIO_"))


def test_cookie_layout_and_id_ranges_are_consistent() -> None:
    p = pipeline
    assert p.PIPELINE_COOKIE == p.make_cookie(p.KIND_PIPELINE)
    assert p.COOKIE_MASK_OURS == 0xFFFF << p.COOKIE_MAGIC_SHIFT
    assert p.COOKIE_MASK_KIND == p.COOKIE_MASK_ALL ^ p.COOKIE_ID_MAX
    assert p.COOKIE_ID_MAX == (1 << p.COOKIE_KIND_SHIFT) - 1
    kinds = [v for n, v in constants().items() if n.startswith("KIND_")]
    assert len(set(kinds)) == len(kinds)
    for kind in kinds:
        assert p.cookie_kind(p.make_cookie(kind, p.COOKIE_ID_MAX)) == kind
    assert p.NO_LABEL < p.MIN_LABEL <= p.MAX_LABEL == 2**20 - 1
    assert p.SERVICE_GROUP_MIN <= p.SERVICE_GROUP_MAX < p.MULTIPATH_GROUP_BASE
    assert p.MIN_LABEL < p.TRAIL_LABEL_MAX < p.BACKUP_LABEL_MIN <= p.BACKUP_LABEL_MAX \
        == p.MAX_LABEL
    assert p.SERVICE_GROUP_MAX < p.PROTECTION_GROUP_MIN <= p.PROTECTION_GROUP_MAX \
        < p.MULTIPATH_GROUP_BASE
    assert p.multipath_group_id(1) == p.MULTIPATH_GROUP_BASE + 1
    assert p.multipath_group_id(p.MULTIPATH_GROUP_MAX - p.MULTIPATH_GROUP_BASE) \
        == p.MULTIPATH_GROUP_MAX < 0xFFFF_FF00  # OFPG_MAX
    assert p.meter_id(p.METER_ID_MAX) == p.METER_ID_MAX < 0xFFFF_0000  # OFPM_MAX
    for bad in (0, p.METER_ID_MAX + 1):
        with pytest.raises(ValueError):
            p.meter_id(bad)
    for bad in (0, p.MULTIPATH_GROUP_MAX - p.MULTIPATH_GROUP_BASE + 1):
        with pytest.raises(ValueError):
            p.multipath_group_id(bad)


def test_the_host_tagger_uses_the_same_label_range() -> None:
    source = TAGGER_C.read_text()
    defines = dict(re.findall(r"#define (MPLS_LABEL_MIN|MPLS_LABEL_MAX) (\w+)", source))
    assert number(defines["MPLS_LABEL_MIN"]) == pipeline.MIN_LABEL
    assert number(defines["MPLS_LABEL_MAX"]) == pipeline.MAX_LABEL
