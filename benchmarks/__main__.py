"""Every benchmark in turn: `python -m benchmarks [--quick]`; one of them: `python -m benchmarks NAME`.

Names: indicators, extraction, api, refresh, scaling. `--quick` runs each at a small size (seconds to a
couple of minutes in all), so that the scripts are exercised; the published figures come from the full run.
"""

from __future__ import annotations

import sys

from benchmarks import api_load, extraction, refresh, scaling
from benchmarks import indicators as indicator_bench
from benchmarks.common import load_average, machine

#: Arguments of each benchmark: (full run, quick run).
PLAN = {
    "indicators": (indicator_bench.main, [], ["--sites", "200", "--skip-fire"]),
    "extraction": (extraction.main, [], ["--sites", "200", "--loop-sites", "20"]),
    "api": (api_load.main, [], ["--rate", "20", "--duration", "2", "--years", "1"]),
    "refresh": (refresh.main, [], ["--sites", "100", "--history-days", "3", "--repeat", "2"]),
    "scaling": (
        scaling.main,
        [],
        ["--sites", "50", "500", "--years", "1", "--history-days", "3", "--rounds", "2"],
    ),
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    rest = [a for a in argv if a != "--quick"]
    if rest and not rest[0].startswith("-"):  # one benchmark, the other arguments are its own
        if rest[0] not in PLAN:
            sys.exit(f"unknown benchmark {rest[0]}; known: {', '.join(PLAN)}")
        func, _, small = PLAN[rest[0]]
        func(small if quick and len(rest) == 1 else rest[1:])
        return
    if rest:
        sys.exit(f"unknown option(s) {' '.join(rest)}: use --quick, or a benchmark name and its options")
    print(machine(), flush=True)
    for name, (func, full, small) in PLAN.items():
        print(f"\n== {name} == ({load_average()})", flush=True)
        func(small if quick else full)


if __name__ == "__main__":
    main()
