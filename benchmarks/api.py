"""REST latency of GET /api/v1/trails with many trails (10,000 by default).

Trails are planned by a real ScentController on the pure k=8 fat-tree (no
switches) and read through the Flask app in-process (no sockets). The baseline,
measured in the same run, is the cost of the JSON the same request serves:
Trail.to_dict for the same trails and json.dumps of the result. Ratios > 1
are what routing, filtering and paging add.

    .venv/bin/python -m benchmarks.api [--trails 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from sdnscent.rest import PREFIX, create_app
from tests.conftest import FakeClock, build_fat_tree


def best(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    """Plan the trails, then time the requests and the baseline."""
    p = argparse.ArgumentParser(prog="benchmarks.api", description=__doc__)
    p.add_argument("--trails", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    tree = build_fat_tree(8)
    ctrl = tree.controller(FakeClock())
    hosts = tree.hosts
    made = 0
    start = time.perf_counter()
    for a in hosts:
        for b in hosts:
            if a is not b and made < args.trails:
                ctrl.ensure_trail(a.mac, b.mac)
                made += 1
    plan_s = time.perf_counter() - start
    trails = ctrl.store.all()
    client = create_app(ctrl).test_client()
    h = hosts[0]

    def baseline(items: list) -> Callable[[], object]:
        return lambda: json.dumps({"trails": [ctrl.trail_view(t) for t in items]})

    cases = [
        ("all trails (limit=10000)", f"{PREFIX}/trails?limit=10000", trails),
        ("first page (limit=100)", f"{PREFIX}/trails?limit=100", trails[:100]),
        ("last page (offset, limit=100)",
         f"{PREFIX}/trails?limit=100&offset={max(0, len(trails) - 100)}", trails[-100:]),
        (f"host filter ({h.ip})", f"{PREFIX}/trails?host={h.ip}&limit=10000",
         [t for t in trails if h.ip in (t.src_ip, t.dst_ip)]),
        ("switch filter (s1)", f"{PREFIX}/trails?switch=s1&limit=10000",
         [t for t in trails if 1 in t.switches]),
        ("one trail", f"{PREFIX}/trails/{trails[len(trails) // 2].id}",
         [trails[len(trails) // 2]]),
    ]
    print(f"GET /trails with {len(trails)} trails on the k=8 fat-tree "
          f"(planned in {plan_s:.1f} s); median of {args.repeat}")
    print(f"{'request':34} {'API ms':>9} {'baseline ms':>12} {'ratio':>7} {'returned':>9}")
    for name, url, items in cases:
        resp = client.get(url)
        assert resp.status_code == 200, resp.get_json()
        api = best(lambda url=url: client.get(url).data, args.repeat)
        base = best(baseline(items), args.repeat)
        returned = resp.get_json().get("count", 1)
        print(f"{name:34} {api * 1e3:9.1f} {base * 1e3:12.1f} {api / base:7.2f} {returned:9}")


if __name__ == "__main__":
    main()
