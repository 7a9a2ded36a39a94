"""Crash trials: `heritage-monitor run` SIGKILLed at ≥ 20 random points of a backfill, then restarted,
stores exactly what an uninterrupted run stores — no value, alert or watermark lost or duplicated.

The CLI runs in forked children of a warmed-up test process (xclim imports and numba compilation take
~20 s per fresh interpreter on CI); each child runs the real `monitor.cli` command with its argv.
"""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import date, timedelta

from sqlalchemy import create_engine, select

from tests.durability.conftest import snapshot, write_sites

FIRST = date(2024, 1, 1)
ARGS = ["run", "--source", "era5_land", "--start", FIRST.isoformat(), "--end", "2025-12-31"]  # 24 chunks
KILLS = 20
_DURATION = [5.0]


def cli_in_process(argv: list[str]) -> int:
    from monitor.cli import app

    try:
        app(args=argv, standalone_mode=False)
    except SystemExit as exc:  # typer.Exit is turned into a return code, SystemExit may still come
        return int(exc.code or 0)
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return 0


def fork_cli(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:  # the child: the real command, then out without running the parent's atexit hooks
        code = 99
        try:
            code = cli_in_process(argv)
        finally:
            os._exit(code)
    return pid


def configure(monkeypatch, tmp_path, database_url, name: str) -> str:
    from monitor.settings import get_settings

    url = database_url if name == "ref" else _second_database(database_url, tmp_path)
    monkeypatch.setenv("HM_DATA_DIR", str(tmp_path / name))
    monkeypatch.setenv("HM_DATABASE_URL", url)
    monkeypatch.setenv("HM_DEMO_END", "2026-11-15")
    monkeypatch.setenv("HM_BACKFILL_CHUNK", "month")
    get_settings.cache_clear()
    return url


def _second_database(database_url: str, tmp_path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'crash.db'}"
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    name = f"{url.database}_crash"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def stored_through(url: str) -> date | None:
    """The last day every site has stored (the backfill's committed progress)."""
    from monitor.store.tables import WatermarkRow

    engine = create_engine(url)
    with engine.connect() as conn:
        marks = list(conn.execute(select(WatermarkRow.last_day)).scalars())
    engine.dispose()
    return min(marks) if marks else None


def _months(before: date | None, after: date | None) -> int:
    """Monthly chunks committed between two readings of `stored_through`."""
    if after is None:
        return 0
    start = before or FIRST - timedelta(days=1)
    return (after.year - start.year) * 12 + after.month - start.month


def runs(url: str) -> list[str]:
    from monitor.store.tables import RunRow

    engine = create_engine(url)
    with engine.connect() as conn:
        out = [r for (r,) in conn.execute(select(RunRow.status))]
    engine.dispose()
    return out


def test_killed_backfill_resumes_to_the_same_state(monkeypatch, tmp_path, database_url):
    sites = str(write_sites(tmp_path / "sites.geojson"))
    ref = configure(monkeypatch, tmp_path, database_url, "ref")
    assert cli_in_process(["sites", "import", sites]) == 0
    assert cli_in_process(ARGS) == 0  # warms this process up (imports, numba) for the children
    expected = snapshot(ref)
    started = time.monotonic()
    pid = fork_cli(ARGS)  # a warm rerun of the same period: its duration, and it changes nothing
    os.waitpid(pid, 0)
    _DURATION[0] = time.monotonic() - started
    assert snapshot(ref) == expected
    assert expected["values"] and expected["alerts"] and expected["watermarks"]

    crash = configure(monkeypatch, tmp_path, database_url, "crash")
    try:
        _trials(crash, sites, expected)
    finally:
        _drop(crash)


def _drop(url: str) -> None:
    if url.startswith("postgresql"):
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        admin.dispose()


def _trials(crash: str, sites: str, expected: dict) -> None:
    duration = _DURATION[0]
    assert cli_in_process(["sites", "import", sites]) == 0
    rng = random.Random(20261125)
    killed = 0
    upper = 0.3 + 2 * duration / KILLS
    while killed < KILLS:
        before = stored_through(crash)
        pid = fork_cli(ARGS)
        time.sleep(rng.uniform(0.05, upper))  # each restart resumes: spread the kills over all chunks
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:  # finished before the kill point: nothing left to interrupt
            break
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        killed += 1
        if _months(before, stored_through(crash)) > 1:  # several chunks between two kills: kill sooner
            upper = max(0.1, upper * 0.7)
    pid = fork_cli(ARGS)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert killed >= KILLS, f"the backfill completed after only {killed} kills"
    assert snapshot(crash) == expected
    statuses = runs(crash)
    assert "running" not in statuses and "interrupted" in statuses  # (a kill before start_run leaves none)
