"""The API under load: time-series queries at a fixed rate from a separate process on 127.0.0.1.

Setup: a demo-seeded data dir (`heritage-monitor demo --no-serve` with `HM_DEMO_YEARS` years, default 3;
or `--data-dir` of an existing seeded one), a reader API key whose rate limit allows the load, and the app
served by `heritage-monitor serve --workers N` (default one per core) in its own process on a free
port. Load: `benchmarks.loadgen` in another process sends `--rate` requests/s for `--duration` s at
fixed instants (open loop, latency measured from each request's due instant, so a slow server cannot
hide requests it delayed: no coordinated omission).
`wrk` is closed-loop and cannot hold a fixed rate, so it is not used for the figures. The requests rotate
over sites and indicators: one-site series `/api/v1/sites/{id}/timeseries?indicator=…` and, every fourth
request, three sites × two indicators `/api/v1/timeseries?sites=…&indicators=…`.

Target: p99 < 100 ms at 200 requests/s, no errors and no non-2xx answers.

Run: `python -m benchmarks.api_load [--rate 200] [--duration 60] [--years 3] [--data-dir DIR]`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import load_average, machine

TARGET_P99_MS = 100.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(env: dict[str, str]) -> float:
    """Seed the demo sites and their history into the data dir of `env`; the seconds it took."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "monitor.cli", "demo", "--no-serve"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"demo seeding failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return time.perf_counter() - t0


def prepare(env: dict[str, str]) -> tuple[str, list[str]]:
    """A new reader key (its secret) and the request paths rotating over stored sites × indicators."""
    from sqlalchemy import select

    from monitor.settings import Settings
    from monitor.store.db import make_engine
    from monitor.store.repository import Store
    from monitor.store.tables import IndicatorValueRow

    settings = Settings(data_dir=Path(env["HM_DATA_DIR"]), _env_file=None, **_db(env))
    engine = make_engine(settings.resolved_database_url)
    try:
        store = Store(engine)
        key = store.create_key("load benchmark", "reader").secret
        with engine.connect() as conn:
            sites = sorted(conn.scalars(select(IndicatorValueRow.site_id).distinct()))
            inds = sorted(conn.scalars(select(IndicatorValueRow.indicator_id).distinct()))
    finally:
        engine.dispose()
    if not sites or not inds:
        raise SystemExit("the database holds no indicator values: seed it first")
    return key, request_paths(sites, inds)


def request_paths(sites: list[str], inds: list[str], n: int = 997) -> list[str]:
    """`n` paths: one-site series over every (site, indicator), each fourth one a 3 × 2 multi-site query."""
    paths = []
    for i in range(n):
        site, ind = sites[i % len(sites)], inds[(i // len(sites) + i) % len(inds)]
        if i % 4 == 3:
            three = ",".join(sites[(i + k) % len(sites)] for k in range(3))
            two = ",".join(inds[(i + k) % len(inds)] for k in range(2))
            paths.append(f"/api/v1/timeseries?sites={three}&indicators={two}")
        else:
            paths.append(f"/api/v1/sites/{site}/timeseries?indicator={ind}")
    return paths


def _db(env: dict[str, str]) -> dict:
    return {"database_url": env["HM_DATABASE_URL"]} if env.get("HM_DATABASE_URL") else {}


def serve(env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen:
    """`heritage-monitor serve --workers N` on 127.0.0.1:`port`, once /health answers."""
    cmd = [
        sys.executable, "-m", "monitor.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - the server's logs, read if it fails (not a pipe nobody reads, which would fill and block it)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the API did not start:\n{log.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the API did not answer /health within 60 s")


def run(
    rate: float,
    duration: float,
    years: int,
    data_dir: Path | None,
    database_url: str | None,
    workers: int = 1,
) -> dict:
    """Seed (unless given a data dir), serve, load; the load generator's figures plus the setup."""
    with tempfile.TemporaryDirectory(prefix="hm-bench-api-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HM_")}
        env |= {
            "HM_DATA_DIR": str(data_dir or Path(tmp) / "data"),
            "HM_DEMO_YEARS": str(years),
            # the key's bucket must hold the whole load, with room to spare
            "HM_RATE_LIMIT_KEYED_PER_MINUTE": str(int(rate * 60 * 2) + 60),
        }
        if database_url:
            env["HM_DATABASE_URL"] = database_url
        t_seed = 0.0 if data_dir else seed(env)
        key, paths = prepare(env)
        port = free_port()
        server = serve(env, port, workers)
        try:
            paths_file = Path(tmp) / "paths.txt"
            paths_file.write_text("\n".join(paths))
            cmd = [
                sys.executable, "-m", "benchmarks.loadgen", f"http://127.0.0.1:{port}", str(paths_file),
                "--rate", str(rate), "--duration", str(duration),
            ]  # fmt: skip
            done = subprocess.run(cmd, env=env | {"HM_BENCH_KEY": key}, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"the load generator failed:\n{done.stderr[-2000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            server.terminate()
            server.wait(timeout=30)
    figures |= {
        "seed_s": t_seed,
        "years": None if data_dir else years,
        "paths": len(paths),
        "workers": workers,
    }
    return figures


def report(f: dict) -> None:
    """Print the figures against the target."""
    print(
        f"load: {f['generator']}, {f['requests']:,} time-series requests at {f['target_rate']:.0f} req/s "
        f"for {f['duration_s']:.0f} s over {f['paths']} rotating paths, "
        f"heritage-monitor serve --workers {f['workers']}, "
        + (
            f"demo sites with {f['years']} years seeded in {f['seed_s']:.0f} s"
            if f["years"]
            else "given data dir"
        )
    )
    print(
        f"latency from the due instant: p50 {f['p50_ms']:.1f} ms, p90 {f['p90_ms']:.1f} ms, "
        f"p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.1f} ms (send lag p99 {f['send_lag_p99_ms']:.1f} ms)"
    )
    print(
        f"achieved {f['achieved_rate']:.1f} req/s, errors {f['errors']}, non-2xx {f['non_2xx']} "
        f"(statuses {f['statuses']})"
    )
    met = f["p99_ms"] < TARGET_P99_MS and f["errors"] == 0 and f["non_2xx"] == 0
    print(
        f"target p99 < {TARGET_P99_MS:.0f} ms at {f['target_rate']:.0f} req/s, no errors: "
        + ("met" if met else "MISSED")
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (fixed)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--years", type=int, default=3, help="HM_DEMO_YEARS of the seeded history")
    parser.add_argument("--data-dir", type=Path, help="an already seeded data dir (not seeded again)")
    parser.add_argument("--database-url", help="database of that data dir (default: its SQLite file)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn worker processes (default: one per core)",
    )
    args = parser.parse_args(argv)
    print(machine())
    print(load_average())
    figures = run(args.rate, args.duration, args.years, args.data_dir, args.database_url, args.workers)
    report(figures)
    print(load_average())
    return figures


if __name__ == "__main__":
    main()
