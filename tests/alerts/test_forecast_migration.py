"""Migration 0007 turns forecast rows per valid day into one series row per (site, indicator, source),
carrying the stored issue's values over, and its downgrade gives the same rows back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alembic import command
from sqlalchemy import inspect, text

from monitor.store.db import alembic_config, upgrade
from monitor.store.forecasts import forecast_values
from tests.conftest import make_site

ISSUED = datetime(2025, 3, 2, tzinfo=UTC)
COLUMNS = (
    "source, site_id, indicator_id, issued, valid_day, lead_days, period_start, freq, value, level, "
    "material, indicator_version, product, product_version, synthetic"
)


def _migrate(engine, revision: str) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _old_rows() -> list[dict]:
    rows = []
    for site_id, material in (("athens", "marble"), ("krakow", None)):
        for lead in range(3):
            day = ISSUED.date() + timedelta(days=lead)
            rows.append(
                {
                    "source": "cems_fire",
                    "site_id": site_id,
                    "indicator_id": "fire_danger_class",
                    "issued": ISSUED,
                    "valid_day": day,
                    "lead_days": lead,
                    "period_start": day,
                    "freq": "D",
                    "value": None if lead == 1 else 2.5 + lead,
                    "level": -1 if lead == 1 else lead,
                    "material": material,
                    "indicator_version": "1",
                    "product": "synthetic stand-in",
                    "product_version": "synthetic-1",
                    "synthetic": True,
                }
            )
    return rows


def test_forecast_rows_become_series_and_come_back_on_downgrade(store):
    engine = store.engine
    store.upsert_sites([make_site("athens", 23.72, 37.97), make_site("krakow", 19.94, 50.06)])
    _migrate(engine, "0006")
    assert "forecast_values" in inspect(engine).get_table_names()
    old = _old_rows()
    marks = ", ".join(f":{c.strip()}" for c in COLUMNS.split(","))
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO forecast_values ({COLUMNS}) VALUES ({marks})"), old)

    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert "forecast_series" in tables and "forecast_values" not in tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM forecast_series")).scalar_one() == 2  # one per site
    for site_id in ("athens", "krakow"):
        values, _ = forecast_values(store, site_id, "fire_danger_class")
        expected = [r for r in old if r["site_id"] == site_id]
        assert [v.valid_day for v in values] == [r["valid_day"] for r in expected]
        assert [v.lead_days for v in values] == [r["lead_days"] for r in expected]
        assert [v.value for v in values] == [r["value"] for r in expected]
        assert [v.level for v in values] == [r["level"] for r in expected]
        assert [v.material for v in values] == [r["material"] for r in expected]
        assert all(v.issued == ISSUED and v.synthetic and v.source == "cems_fire" for v in values)

    _migrate(engine, "0006")
    with engine.connect() as conn:
        back = conn.execute(text(f"SELECT {COLUMNS} FROM forecast_values ORDER BY site_id, valid_day"))
        rows = [dict(r._mapping) for r in back]
    assert [(r["site_id"], str(r["valid_day"]), r["value"], r["level"]) for r in rows] == [
        (r["site_id"], str(r["valid_day"]), r["value"], r["level"]) for r in old
    ]
    assert all(str(r["period_start"]) == str(r["valid_day"]) for r in rows)
    upgrade(engine)
    assert forecast_values(store, "athens", "fire_danger_class")[0][0].valid_day == date(2025, 3, 2)
