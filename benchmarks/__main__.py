"""`python -m benchmarks`: run every benchmark."""

from benchmarks import planning

if __name__ == "__main__":
    planning.main()
