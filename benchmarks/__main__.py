"""`python -m benchmarks`: run every benchmark.

Options (``--k``, ``--seed``) reach both; the others belong to one benchmark:
run it alone (``python -m benchmarks.store --trails 500``).
"""

from benchmarks import planning, quality, speed, store

if __name__ == "__main__":
    planning.main()
    print()
    store.main()
    print()
    quality.main()
    print()
    speed.main()
