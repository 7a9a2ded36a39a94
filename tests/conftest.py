"""Shared fixtures: settings on a temporary data dir, the real-data folder, small site sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    env = os.environ.get("HM_SHARED_DATA")
    candidate = Path(env) if env else REPO.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real Copernicus-format files; the test skips when it is absent."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("real data folder ../shared/data (or HM_SHARED_DATA) is absent")
    return path


@pytest.fixture
def database_url(tmp_path):
    """A fresh empty database: SQLite in tmp_path, or a new database on the PostgreSQL server that
    `HM_DATABASE_URL` names (the suite then runs on PostgreSQL)."""
    base = os.environ.get("HM_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'heritage.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"hm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path, database_url):
    """Settings on a temporary data dir and a fresh database, with a fixed demo end and short history."""
    from datetime import date

    from monitor.settings import Settings

    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        demo_end=date(2026, 11, 15),
        demo_years=3,
        _env_file=None,
    )


@pytest.fixture
def store(settings):
    from monitor.store.db import make_engine, upgrade
    from monitor.store.repository import Store

    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


def make_site(site_id: str, lon: float, lat: float, half: float = 0.005, **kwargs):
    """A square site of ±`half` degrees around (lon, lat)."""
    from shapely.geometry import box

    from sites import Site

    kwargs.setdefault("name", site_id.replace("_", " ").title())
    return Site(id=site_id, geometry=box(lon - half, lat - half, lon + half, lat + half), **kwargs)
