"""Shared helpers of the benchmarks: the machine, timing, site sets of small squares over Europe."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely

from sites.model import Site, SiteSet

#: Europe, lon/lat: where the benchmark sites are drawn.
EUROPE = (-10.0, 35.0, 30.0, 60.0)


def machine() -> str:
    """nproc, the CPU model (/proc/cpuinfo) and the memory of this machine, on one line."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return f"machine: nproc={os.cpu_count()}, CPU {model}{mem}, Python {platform.python_version()}"


def timed(func: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """The result of `func()` and its wall time in seconds: the best of `repeat` runs (as `timeit` reports),
    so that a page fault or a neighbour's burst in one run does not decide a ratio."""
    return timed_together({"func": func}, rounds=1, runs={"func": repeat})["func"]


def timed_together(
    funcs: dict[str, Callable[[], Any]], rounds: int, runs: dict[str, int] | None = None
) -> dict[str, tuple[Any, float]]:
    """Each function's first result and best wall time, the functions run in turn in every round (each
    `runs[name]` times in a row, 1 by default): every function meets the same moments of a shared
    machine, so that a slow stretch (a neighbour's burst, a page-cache flush) cannot fall on one side of a
    ratio only, as it can when one side's runs all come first and take a fraction of a second."""
    results: dict[str, Any] = {}
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(max(rounds, 1)):
        for name, func in funcs.items():
            for _ in range(max((runs or {}).get(name, 1), 1)):
                t0 = time.perf_counter()
                result = func()
                best[name] = min(best[name], time.perf_counter() - t0)
                results.setdefault(name, result)
    return {name: (results[name], best[name]) for name in funcs}


def european_sites(n: int, half: float = 0.005, seed: int = 0) -> SiteSet:
    """`n` square sites of ±`half` degrees at random places over Europe."""
    rng = np.random.default_rng(seed)
    west, south, east, north = EUROPE
    lon = rng.uniform(west, east, n)
    lat = rng.uniform(south, north, n)
    squares = shapely.box(lon - half, lat - half, lon + half, lat + half)  # all at once
    return SiteSet(
        Site(id=f"b{i:06d}", name=f"Bench {i}", geometry=geometry) for i, geometry in enumerate(squares)
    )


def speed_probe() -> float:
    """CPU milliseconds of a fixed pure-Python loop (best of 3): the speed of one core right now.

    On a shared virtual machine it moves by a third from one minute to the next, and every figure with
    it; printed beside the figures, it tells a slow machine from a slow program."""
    best = float("inf")
    for _ in range(3):
        t0, total = time.process_time(), 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.process_time() - t0)
    return best * 1000


def load_average() -> str:
    """The 1, 5 and 15-minute load averages and the speed probe, to judge how busy the shared machine
    was."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return f"load average: unknown, speed probe {speed_probe():.0f} ms"
    return (
        f"load average: {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min), speed probe {speed_probe():.0f} ms"
    )
