"""Every benchmark, one after the other: `python -m benchmarks` (add `--quick` for 1,000 sites only)."""

from __future__ import annotations

import sys

from benchmarks import extraction
from benchmarks import indicators as indicator_bench
from benchmarks.common import machine


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    print(machine(), flush=True)
    print("\n== indicators ==", flush=True)
    indicator_bench.main(["--sites", "1000"] if quick else [])
    print("\n== extraction ==", flush=True)
    extraction.main(["--sites", "1000", "--loop-sites", "50"] if quick else [])


if __name__ == "__main__":
    main()
