"""Helpers of the durability tests: the CLI in a subprocess on a small demo database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

CLI = [sys.executable, "-m", "monitor.cli"]
SITES = {"site_a": (11.10, 46.05), "site_b": (23.72, 37.97)}


def write_sites(path: Path) -> Path:
    features = [
        {
            "type": "Feature",
            "id": sid,
            "properties": {"name": sid, "materials": ["limestone"]},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x, y], [x + 0.02, y], [x + 0.02, y + 0.02], [x, y + 0.02], [x, y]]],
            },
        }
        for sid, (x, y) in SITES.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def make_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HM_", "CDSAPI"))}
    env.update(
        HM_DATA_DIR=str(data_dir),
        HM_DATABASE_URL=database_url,
        HM_DEMO_END="2026-11-15",
        COLUMNS="200",
        NO_PROXY="127.0.0.1,localhost",
        CDSAPI_RC=str(data_dir / "no-rc"),
    )
    env.update(extra)
    return env


def cli(env, *args, timeout=300):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def snapshot(database_url: str) -> dict:
    """Indicator values, alerts and watermarks, without ids and timestamps."""
    from monitor.store.tables import AlertRow, IndicatorValueRow, WatermarkRow

    engine = create_engine(database_url)
    v = IndicatorValueRow
    a = AlertRow
    try:
        with engine.connect() as conn:
            values = conn.execute(
                select(
                    v.site_id, v.indicator_id, v.period_start, v.value, v.level, v.material, v.coverage
                ).order_by(v.site_id, v.indicator_id, v.period_start)
            ).all()
            alerts = conn.execute(
                select(
                    a.site_id,
                    a.indicator_id,
                    a.kind,
                    a.status,
                    a.level,
                    a.value,
                    a.onset,
                    a.period_start,
                    a.last_period,
                    a.periods_below,
                    a.sequence,
                )
            ).all()
            marks = conn.execute(
                select(WatermarkRow.source, WatermarkRow.site_id, WatermarkRow.last_day)
            ).all()
    finally:
        engine.dispose()
    return {
        "values": [tuple(r) for r in values],
        "alerts": sorted(tuple(r) for r in alerts),
        "watermarks": sorted(tuple(r) for r in marks),
    }


@pytest.fixture(autouse=True)
def _no_stop_left():
    from monitor.pipeline import STOP

    STOP.clear()
    yield
    STOP.clear()
