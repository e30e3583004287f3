"""`python -m benchmarks`: run every benchmark.

Options (``--k``, ``--seed``) reach all but the link-down re-planning one; the
others belong to one benchmark: run it alone (``python -m benchmarks.store
--trails 500``). The quality benchmark
redraws docs/benchmarks/quality.svg (matplotlib: ``make bench`` installs it).
The failover and online (Hedera's experiment) benchmarks need root (Mininet):
they run only as root; online redraws docs/benchmarks/online.svg.
"""

import os
import sys
from pathlib import Path

from benchmarks import (
    placement,
    planning,
    protection,
    quality,
    replan,
    replan_paths,
    speed,
    store,
)

PLOT = Path(__file__).parent.parent / "docs" / "benchmarks" / "quality.svg"

if __name__ == "__main__":
    planning.main()
    print()
    store.main()
    print()
    replan.main([])  # its own defaults: 10,000 trails need k=8
    print()
    replan_paths.main([])  # its own defaults: a million trails need k=16
    print()
    quality.main([*sys.argv[1:], "--plot", str(PLOT)])
    print()
    speed.main()
    print()
    placement.main([])  # one placement period of the running controller, k=8
    print()
    protection.main([])  # table cost of fast-failover protection, k=4 and k=8
    if os.geteuid() == 0:
        from benchmarks import failover  # Mininet

        print()
        failover.main([])
        from benchmarks import online  # Mininet, about 25 minutes

        print()
        online.main(["--plot", str(PLOT.parent / "online.svg")])
