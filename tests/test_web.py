"""The web view in a real browser: headless Chromium (Debian's) driven by Playwright
against create_app served on loopback, over a real ScentController on the pure
fat-tree. A trail or application picked in the page lights exactly the links the
API reports for it; a screenshot goes to the test artefacts (.cache/test-artefacts)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdnscent.controller import ScentController
from sdnscent.policyfile import parse_policy
from sdnscent.rest import create_app
from sdnscent.telemetry import PortCounters
from tests.conftest import FakeClock, build_fat_tree
from tests.loopback import serve

CHROMIUM = "/usr/bin/chromium"
ARTEFACTS = Path(os.environ.get("SDNSCENT_ARTEFACTS",
                                Path(__file__).resolve().parent.parent / ".cache"
                                / "test-artefacts"))
POLICY = "applications:\n  - name: video\n    endpoints: {hosts: [10.0.0.1], ports: [udp/5001]}\n"

playwright_api = pytest.importorskip("playwright.sync_api")
if not shutil.which(CHROMIUM):
    pytest.skip("Debian's chromium is not installed: run `make setup`", allow_module_level=True)


@pytest.fixture(scope="module")
def ctrl() -> ScentController:
    """The k=4 fat-tree with video and default trails, one uplink half loaded."""
    tree, clock = build_fat_tree(4), FakeClock()
    ctrl = tree.controller(clock)
    ctrl.set_policy(parse_policy(POLICY, "video.yaml"))
    for a, b in ((1, 5), (5, 1), (1, 13), (2, 9), (6, 16)):
        for callback in ctrl.ensure_pair(tree.host(a).mac, tree.host(b).mac)[1].done:
            callback()
    ctrl.port_counters(7, [PortCounters(3, 0, 0)])
    clock.advance(1.0)
    ctrl.port_counters(7, [PortCounters(3, 0, ctrl.topo.link_capacity(7, 3) // 8)])
    return ctrl


@pytest.fixture(scope="module")
def base_url(ctrl) -> Iterator[str]:
    with serve(create_app(ctrl)) as url:
        yield url


@pytest.fixture(scope="module")
def page(base_url) -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base_url + "/")
        page.wait_for_function("Number(document.body.dataset.loaded) >= 1", timeout=15000)
        yield page
        browser.close()
        assert errors == [], errors


def cables_of(ctrl: ScentController, trail_ids: list[int]) -> list[str]:
    """The cables (both ends "dpid:port", sorted) that the API's hops of the trails use."""
    links = {(lk["src"], lk["src_port"]): (lk["dst"], lk["dst_port"])
             for lk in ctrl.topology_view()["links"]}
    out = set()
    for trail_id in trail_ids:
        trail = ctrl.trail_view(ctrl.store.get(trail_id))
        for hop in trail["hops"][:-1]:
            a = (hop["dpid"], hop["out_port"])
            ends = sorted(f"{d}:{p}" for d, p in (a, links[a]))
            out.add("-".join(ends))
    return sorted(out)


def lit(page: Any) -> list[str]:
    return sorted(page.eval_on_selector_all("line.link.hl", "ls => ls.map(l => l.dataset.cable)"))


def test_the_page_draws_every_switch_host_and_cable(page, ctrl) -> None:
    assert page.locator("circle.switch").count() == len(ctrl.topo.switches)
    assert page.locator("rect.host").count() == len(ctrl.topo.hosts)
    assert page.locator("line.link").count() == len(ctrl.topology_view()["links"]) // 2
    loaded = page.eval_on_selector_all(
        "line.link", "ls => ls.filter(l => l.dataset.dirs.split(' ')"
                     ".includes('0000000000000007:3')).map(l => l.getAttribute('stroke'))")
    assert loaded == ["rgb(198,40,40)"]  # 100 % of the uplink: red


def test_a_trail_picked_in_the_page_lights_the_links_the_api_reports(page, ctrl) -> None:
    trail = max(ctrl.store.all(), key=lambda t: len(t.hops))
    page.select_option("#trail", str(trail.id))
    assert lit(page) == cables_of(ctrl, [trail.id]) != []
    assert page.eval_on_selector("#details", "e => e.textContent").startswith(
        f"trail {trail.id} ")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "web-trail.png"), full_page=True)


def test_an_application_picked_lights_the_union_of_its_trails(page, ctrl) -> None:
    page.select_option("#app", "video")
    video = [t.id for t in ctrl.store.all() if t.app == "video"]
    assert page.eval_on_selector_all("#trail option", "os => os.length") == len(video) + 1
    assert lit(page) == cables_of(ctrl, video) != []
    page.select_option("#app", "")
    assert lit(page) == []
