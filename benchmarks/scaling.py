"""How the figures grow from 1,000 to 10,000 to 100,000 sites: indicators, extraction, daily refresh.

For each size: the reduction-type indicator suite (ours only: the baselines of `benchmarks.indicators` run
at 1,000 and 10,000 sites there) on `--years` years of daily synthetic data (default 3: 100,000 sites ×
30 years would be a 26 GB cube), the zonal extraction of the 0.1° European grid × 365 days (weights
computed, then cached), and the daily refresh of `benchmarks.refresh` (the fastest of its runs from the
same prepared state, every run printed). Each line ends with the growth
factor of the time per 10× sites: 10 is linear, less is better than linear.

Each size's indicators and extraction run in a new process (as the refresh does), so that a figure does
not depend on what ran before it: inside one long process, the 100,000-site steps used to come after
everything else, with its memory fragmented and its caches full, and grew ×11–17 instead of ×9–11.
They run in `--rounds` rounds over the sizes (1,000, 10,000, 100,000, then again), each size's best kept:
on a shared machine whose speed drifts within the run, one slow moment used to fall on one size and
decide its growth (×14.1 in a full run, ×6.9 and ×8.6 run again alone right after).

Run: `python -m benchmarks scaling [--sites 1000 10000 100000] [--years 3] [--rounds 3] [--skip-refresh]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from benchmarks import extraction, refresh
from benchmarks import indicators as indicator_bench
from benchmarks.common import european_sites, load_average, machine, timed
from monitor import extract

#: Runs of each fast step (the indicators, the extraction with cached weights), the best one kept: at
#: 10,000 sites they take tens of milliseconds, where one neighbour's burst would move the growth.
REPEAT = 5


def indicator_time(n_sites: int, years: int) -> float:
    """Seconds of the reduction suite (`indicators.compute`) on n_sites × `years` years."""
    start = dt.date(indicator_bench.END.year - years + 1, 1, 1)
    cube = indicator_bench.build_cube(min(n_sites, 1000)).sel(time=slice(str(start), None))
    if n_sites > 1000:  # tile as `benchmarks.indicators` does, on the shorter period
        import xarray as xr

        reps = -(-n_sites // 1000)
        cube = xr.concat([cube] * reps, dim="site").isel(site=slice(0, n_sites))
        cube = cube.assign_coords(site=[f"t{i:06d}" for i in range(n_sites)])
    indicator_bench.ours(cube.isel(site=slice(0, 130)))  # numba kernels load on first use
    _, seconds = timed(lambda: indicator_bench.ours(cube), REPEAT)
    return seconds


def extraction_times(n_sites: int, grid) -> tuple[float, float]:
    """Seconds of `reduce_to_sites` over n_sites polygons: weights computed, weights cached."""
    sites = european_sites(n_sites)
    extract._CACHE.clear()
    _, cold = timed(lambda: extract.reduce_to_sites(grid, sites))
    _, warm = timed(lambda: extract.reduce_to_sites(grid, sites), REPEAT)
    return cold, warm


def measure_size(n_sites: int, years: int) -> tuple[float, float, float]:
    """Indicators, extraction with weights computed and cached, at n_sites (seconds); in this process."""
    t = indicator_time(n_sites, years)
    cold, warm = extraction_times(n_sites, extraction.build_grid())
    return t, cold, warm


def measure_size_fresh(n_sites: int, years: int) -> tuple[float, float, float]:
    """`measure_size` in a new (spawned) process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_size, n_sites, years).result()


def growth(times: list[float]) -> str:
    """Time ratio per step (each step is 10× sites in the default sizes)."""
    return ", ".join(f"×{b / a:.1f}" for a, b in itertools.pairwise(times)) or "-"


def run(
    sizes: list[int], years: int, with_refresh: bool, history_days: int, rounds: int = 3
) -> dict[str, list[float]]:
    """Every figure at every size (the indicators and extraction best of `rounds` rounds over the sizes);
    printed as it goes, returned by name."""
    fast = ("indicators", "extraction_cold", "extraction_warm")
    best: dict[str, dict[int, float]] = {name: {} for name in fast}
    for r in range(1, rounds + 1):
        for n in sizes:
            print(f"\nround {r}/{rounds}, {n:,} sites ({load_average()})", flush=True)
            t, cold, warm = measure_size_fresh(n, years)
            for name, value in zip(fast, (t, cold, warm), strict=True):
                best[name][n] = min(value, best[name].get(n, value))
            print(f"  indicators (reduction suite, {years} y):  {t:8.2f} s", flush=True)
            print(
                f"  extraction (0.1° grid x 365 d): {cold:8.2f} s weights computed, {warm:.2f} s cached",
                flush=True,
            )
    figures = {name: [best[name][n] for n in sizes] for name in fast}
    if with_refresh:
        figures["refresh"] = []
    for n in sizes if with_refresh else ():
        print(f"\n{n:,} sites ({load_average()})", flush=True)
        r = refresh.run(n, history_days, reuse=True)
        figures["refresh"].append(r["wall_s"])
        runs = ", ".join(f"{t:.2f}" for t in r["runs_s"])
        print(
            f"  daily refresh: {r['wall_s']:8.2f} s (runs: {runs} s), "
            f"{r['values']:,} values, {r['alerts']:,} alerts, "
            f"peak RSS {r['peak_rss_mib']:,.0f} MiB"
            + (f", {r['io_mib']['written']:,.0f} MiB written" if r.get("io_mib") else "")
            + (" (the refresh benchmark's run above)" if r.get("reused") else ""),
            flush=True,
        )
    step = ", ".join(f"{a:,} → {b:,}" for a, b in itertools.pairwise(sizes))
    print(
        f"\ngrowth of the time per step ({step}; ×10 per 10× sites is linear; "
        f"indicators and extraction best of {rounds} rounds):"
    )
    for name, times in figures.items():
        print(f"  {name:<18} " + "  ".join(f"{t:8.2f} s" for t in times) + f"   growth {growth(times)}")
    return figures


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--years", type=int, default=3, help="years of daily data for the indicators")
    parser.add_argument("--history-days", type=int, default=31, help="backfill before the daily refresh")
    parser.add_argument("--skip-refresh", action="store_true", help="indicators and extraction only")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds over the sizes for the indicators and extraction"
    )
    args = parser.parse_args(argv)
    print(machine())
    return run(args.sites, args.years, not args.skip_refresh, args.history_days, args.rounds)


if __name__ == "__main__":
    main()
