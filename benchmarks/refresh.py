"""A daily refresh of N sites with the demo source, end to end: fetch → indicators → store → alerts.

Setup (timed apart, not part of the figure): N synthetic square sites drawn at random over Europe
(vectorised, not the demo file) registered in a fresh database with `Store.upsert_sites`; then the pipeline's
own backfill of `--history-days` days (default 31) up to the day before the refreshed day, for every
daily demo source, so that the refresh finds watermarks, stored variables and alert cursors as in
production.

The figure: one `Pipeline.run()` of every daily demo source (what the scheduler runs each day), in a child
process: per source it fetches the one new day for all sites, stores the variables, recomputes the
indicators whose current period that day belongs to (daily ones for that day, monthly ones over the month
so far, yearly ones over the year so far from the stored days; indicators needing the whole record read
all of it), upserts the values, advances the alert episodes and watermarks, and takes the forecast when
`HM_FORECASTS` is on (the default). Printed: wall time, values written, alerts raised (per source and in
all) and the peak RSS of the child process (`VmHWM`, see `peak_rss_mib`). Target < 5 minutes for
100,000 sites on 2 cores.

The pass runs `--repeat` times (default 3), each on a fresh copy of the prepared folder (database and
stored variables, synced to disk first), so every run does the same work from the same state. On a shared
virtual machine one pass of 100,000 sites took 246 s in one run and 212 s in the next, from the same
prepared folder: a single run could not tell a ratio of ×9 from one of ×11. The figure is the fastest run
(as `timed` keeps the best of its runs, the noise only ever slows a run down); the target is judged on
the slowest. With `--database-url` the state lives in that database, which a copy of the folder does not
restore: the pass runs once.

Run: `python -m benchmarks.refresh [--sites 100000] [--history-days 31] [--repeat 3] [--database-url URL]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks.common import european_sites, load_average, machine, timed

#: The refreshed day (fixed, so that every run does the same work).
DAY = date(2025, 3, 1)
TARGET_S = 300.0


def _settings(data_dir: Path, database_url: str | None, end: date, **extra):
    from monitor.settings import Settings

    url = {"database_url": database_url} if database_url else {}
    return Settings(data_dir=data_dir, demo_end=end, demo_years=1, _env_file=None, **url, **extra)


def _pipeline(settings):
    from monitor.pipeline import Pipeline
    from monitor.store.db import make_engine, upgrade
    from monitor.store.repository import Store
    from monitor.store.variables import VariableStore

    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return Pipeline(settings, Store(engine), VariableStore(settings.data_dir / "variables"))


def setup(n_sites: int, data_dir: Path, database_url: str | None, history_days: int) -> dict:
    """Register the sites and backfill `history_days` days before DAY; the setup's timings.

    The backfill holds a long lease: on SQLite its month of 100,000 sites is one write transaction of
    minutes, during which the default lease could not be renewed (the database is locked)."""
    settings = _settings(data_dir, database_url, DAY - timedelta(days=1), scheduler_lease_ttl_seconds=3600)
    pipeline = _pipeline(settings)
    sites, t_sites = timed(lambda: european_sites(n_sites, seed=1))
    counts, t_register = timed(lambda: pipeline.store.upsert_sites(sites))
    start = DAY - timedelta(days=history_days)
    report, t_backfill = timed(lambda: pipeline.run(start=start, end=DAY - timedelta(days=1)))
    failed = [f"{r.source}: {r.error}" for r in report.failed]
    if failed:
        raise SystemExit("backfill failed: " + "; ".join(failed))
    pipeline.store.engine.dispose()
    return {
        "sites_s": t_sites,
        "register_s": t_register,
        "registered": counts.created,
        "backfill_s": t_backfill,
        "backfill_values": report.values_written,
        "backfill_start": start.isoformat(),
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process since it started its program, in MiB.

    `VmHWM` of /proc/self/status: `getrusage(RUSAGE_SELF).ru_maxrss` would not do, because Linux carries
    the high-water mark over fork and exec, so a child would report its parent's size (here the setup's).
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def io_written_mib() -> dict[str, float]:
    """What this process wrote so far, in MiB, from /proc/self/io (Linux; empty elsewhere): `written`
    passed to write calls (SQLite's WAL and checkpoints, the variable files) and `to_storage` sent on to
    the storage layer. How these grow with the sites, beside the wall time, tells whether the pass's
    growth comes from its writes."""
    try:
        with open("/proc/self/io") as f:
            fields = dict(line.split(": ") for line in f.read().splitlines())
    except OSError:
        return {}
    return {"written": int(fields["wchar"]) / 2**20, "to_storage": int(fields["write_bytes"]) / 2**20}


def daily_pass(data_dir: Path, database_url: str | None) -> dict:
    """One daily pass of every daily demo source up to DAY (run inside the child process)."""
    pipeline = _pipeline(_settings(data_dir, database_url, DAY))
    io_before = io_written_mib()
    t0 = time.perf_counter()
    per_source = {}
    values = alerts = 0
    failed = []
    report = pipeline.run()
    for r in report.results:
        per_source[r.source] = {"status": r.status, "values": r.values_written, "alerts": r.alerts_raised}
        values += r.values_written
        alerts += r.alerts_raised
        if r.status not in ("ok", "partial"):
            failed.append(f"{r.source}: {r.status} {r.error or ''}")
    wall = time.perf_counter() - t0
    peak = peak_rss_mib()
    io_after = io_written_mib()
    return {
        "io_mib": {k: io_after[k] - io_before[k] for k in io_after},
        "wall_s": wall,
        "values": values,
        "alerts": alerts,
        "per_source": per_source,
        "failed": failed,
        "peak_rss_mib": peak,
    }


#: Figures measured in this process, by (sites, history days, database URL): `python -m benchmarks` runs
#: the refresh benchmark and then the scaling one, which takes the 100,000-site figure from here rather
#: than spending another 15 minutes measuring it again.
MEASURED: dict[tuple[int, int, str | None], dict] = {}


def run(
    n_sites: int,
    history_days: int,
    database_url: str | None = None,
    reuse: bool = False,
    repeat: int = 3,
) -> dict:
    """Setup in this process, the daily pass in a child, `repeat` times; every figure in a dict (`reuse`:
    the figures of the same refresh already measured in this process, if any)."""
    key = (n_sites, history_days, database_url)
    if reuse and key in MEASURED:
        return MEASURED[key] | {"reused": True}
    MEASURED[key] = figures = _measure(n_sites, history_days, database_url, repeat)
    return figures


def _child_pass(data_dir: Path, database_url: str | None) -> dict:
    """The figures of one daily pass, run in a child process on `data_dir`."""
    # the writes before it (the setup's 5 GB at 100,000 sites, or the copy) reach the disk first: the
    # timed pass otherwise competed with their writeback and paid for part of them
    os.sync()
    cmd = [sys.executable, "-m", "benchmarks.refresh", "--child", str(data_dir)]
    if database_url:
        cmd += ["--database-url", database_url]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the daily pass failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(n_sites: int, history_days: int, database_url: str | None, repeat: int) -> dict:
    """The setup in this process, then the daily pass in a child process, on a copy of the prepared
    folder for every run but the last (which uses the folder itself); the fastest run's figures, with
    every run's wall time."""
    repeat = 1 if database_url else max(repeat, 1)
    runs = []
    with tempfile.TemporaryDirectory(prefix="hm-bench-refresh-") as tmp:
        prepared = Path(tmp) / "data"
        figures = setup(n_sites, prepared, database_url, history_days)
        for i in range(repeat):
            data_dir = prepared
            if i < repeat - 1:
                data_dir = Path(tmp) / f"run{i}"
                shutil.copytree(prepared, data_dir)
            runs.append(_child_pass(data_dir, database_url))
            if data_dir != prepared:
                shutil.rmtree(data_dir)
    walls = [r["wall_s"] for r in runs]
    figures |= min(runs, key=lambda r: r["wall_s"])
    figures |= {
        "runs_s": walls,
        "runs_values": [r["values"] for r in runs],
        "median_s": statistics.median(walls),
        "slowest_s": max(walls),
        "failed": sorted({f for r in runs for f in r["failed"]}),
        "sites": n_sites,
        "history_days": history_days,
        "day": DAY.isoformat(),
        "database": "PostgreSQL" if database_url else "SQLite",
    }
    return figures


def report(f: dict) -> None:
    """Print the figures against the target."""
    print(
        f"\n{f['sites']:,} sites, {f['database']}: registered in {f['register_s']:.1f} s; backfill "
        f"{f['backfill_start']} → {DAY - timedelta(days=1)} ({f['history_days']} days, "
        f"{f['backfill_values']:,} values) in {f['backfill_s']:.0f} s (setup, not timed below)"
    )
    for source, r in f["per_source"].items():
        print(f"  {source:<20} {r['status']:<8} {r['values']:>10,} values {r['alerts']:>7,} alerts")
    print(
        f"daily refresh of {f['day']} (every daily demo source, fetch → indicators → store → alerts): "
        f"{f['wall_s']:.1f} s wall, {f['values']:,} values written, {f['alerts']:,} alerts raised, "
        f"peak RSS {f['peak_rss_mib']:,.0f} MiB; {f['sites'] / f['wall_s']:,.0f} sites/s (the fastest run)"
    )
    if len(f.get("runs_s", [])) > 1:
        runs = ", ".join(f"{s:.1f}" for s in f["runs_s"])
        print(
            f"  {len(f['runs_s'])} runs from the same prepared state: {runs} s (median {f['median_s']:.1f} s)"
        )
        if len(set(f["runs_values"])) > 1:  # each run should redo the same work
            print(f"  WARNING: the runs wrote different numbers of values: {f['runs_values']}")
    if f.get("io_mib"):
        io = f["io_mib"]
        sent = f"{io['to_storage']:,.0f} MiB sent to storage"
        print(f"  written by the pass: {io['written']:,.0f} MiB ({sent})")
    if f["failed"]:
        print("FAILED sources: " + "; ".join(f["failed"]))
    if f["sites"] < 100_000:  # the target is for 100,000 sites: say what a linear growth would give
        linear = f["wall_s"] * 100_000 / f["sites"]
        print(
            f"target < {TARGET_S / 60:.0f} min for 100,000 sites on 2 cores: not measured here "
            f"({linear:,.0f} s if the time grew linearly from {f['sites']:,} sites)"
        )
        return
    slowest = f.get("slowest_s", f["wall_s"])
    met = slowest < TARGET_S and not f["failed"]
    print(
        f"target < {TARGET_S / 60:.0f} min for 100,000 sites on 2 cores, judged on the slowest run "
        f"({slowest:.1f} s): " + ("met" if met else "MISSED")
    )


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--history-days", type=int, default=31, help="days backfilled before the refresh")
    parser.add_argument("--repeat", type=int, default=3, help="passes, each from the same prepared state")
    parser.add_argument("--database-url", help="a fresh PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the daily pass, in the child
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(daily_pass(args.child, args.database_url)))
        return None
    print(machine())
    print(load_average())
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.database_url and args.repeat > 1:
        print(
            "with --database-url the pass runs once (a copy of the data folder does not restore a database)"
        )
    figures = run(args.sites, args.history_days, args.database_url, repeat=args.repeat)
    report(figures)
    print(load_average())
    return figures


if __name__ == "__main__":
    main()
