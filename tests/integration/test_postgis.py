"""PostGIS site geometries on PostgreSQL: migration 0004 upgrades a populated database without loss, the
column follows every write, the bbox query uses the GIST index, a server without PostGIS gets a clear
message. Runs only when HM_DATABASE_URL names a PostgreSQL server (CI's PostgreSQL pass)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import shapely
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from monitor.store.db import PostGISMissingError, make_engine, schema_status, upgrade
from monitor.store.repository import Store
from tests.conftest import make_site

pytestmark = pytest.mark.skipif(
    not os.environ.get("HM_DATABASE_URL", "").startswith("postgresql"),
    reason="needs PostgreSQL: set HM_DATABASE_URL=postgresql+psycopg://…",
)
N_SITES = 3000


def stored_geometries(engine) -> dict[str, tuple[bytes, bytes]]:
    """id -> (geometry_wkb, WKB of the PostGIS column)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, geometry_wkb, ST_AsBinary(geom) FROM sites ORDER BY id"))
        return {r[0]: (bytes(r[1]), bytes(r[2])) for r in rows}


def assert_in_step(engine) -> None:
    stored = stored_geometries(engine)
    ours = shapely.from_wkb([a for a, _ in stored.values()])
    postgis = shapely.from_wkb([b for _, b in stored.values()])
    assert set(shapely.get_type_id(postgis)) == {6}  # MultiPolygon
    assert shapely.equals(ours, postgis).all()


def many_sites(n: int = N_SITES) -> list:
    """Small squares on a 60 x 50 grid over Europe, every third one a two-part MultiPolygon."""
    sites = []
    for i in range(n):
        site = make_site(f"s{i:05d}", -10 + (i % 60) * 0.6, 35 + (i // 60) * 0.5, half=0.01)
        if i % 3 == 0:
            moved = shapely.affinity.translate(site.geometry, 0.1, 0.1)
            site = site.model_copy(update={"geometry": shapely.MultiPolygon([site.geometry, moved])})
        sites.append(site)
    return sites


def test_upgrade_from_0003_backfills_the_column_and_bbox_queries_use_the_index(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0003")
        store = Store(engine)
        sites = many_sites()
        store.upsert_sites(sites)
        assert schema_status(engine).current == "0003"

        upgrade(engine)
        assert schema_status(engine).up_to_date
        with engine.connect() as conn:
            kind = conn.execute(text("SELECT type, srid FROM geometry_columns WHERE f_table_name = 'sites'"))
            assert kind.one() == ("MULTIPOLYGON", 4326)
            index = conn.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_sites_geom'"))
            assert index and "USING gist (geom)" in index
        stored = stored_geometries(engine)
        assert len(stored) == N_SITES
        by_id = {s.id: s.geometry for s in sites}
        postgis = shapely.from_wkb([b for _, b in stored.values()])
        assert shapely.equals(postgis, [by_id[i] for i in stored]).all()
        assert_in_step(engine)

        statements: list[tuple[str, dict]] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _capture(conn, cursor, statement, parameters, context, executemany) -> None:
            statements.append((statement, parameters))

        bbox = (0.0, 40.0, 1.5, 41.0)
        found, total = store.find_sites(bbox=bbox, limit=100)
        event.remove(engine, "before_cursor_execute", _capture)
        area = shapely.box(*bbox)
        expected = sorted(s.id for s in sites if s.geometry.intersects(area))
        assert [s.id for s in found] == expected and total == len(expected) > 0
        (query, params), *_ = [(s, p) for s, p in statements if "ST_Intersects" in s and "count(*)" not in s]
        with engine.connect() as conn:
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + query, params))
        assert re.search(r"Index Scan .*ix_sites_geom|Bitmap Index Scan on ix_sites_geom", plan), plan
    finally:
        engine.dispose()


def test_every_write_keeps_the_column_in_step(store):
    a, b = make_site("a_site", 12.0, 45.0), make_site("b_site", 2.0, 48.0)
    store.upsert_sites([a, b])
    assert_in_step(store.engine)
    moved = a.model_copy(update={"geometry": shapely.box(13, 46, 13.02, 46.01)})
    assert store.upsert_sites([moved]).updated == 1
    assert store.upsert_site_statuses([b.model_copy(update={"geometry": shapely.box(3, 49, 3.1, 49.1)})]) == {
        "b_site": "updated"
    }
    assert_in_step(store.engine)
    stored = stored_geometries(store.engine)
    assert shapely.equals(shapely.from_wkb(stored["a_site"][1]), moved.geometry)
    assert [s.id for s in store.find_sites(bbox=(12.9, 45.9, 13.1, 46.1))[0]] == ["a_site"]
    assert store.find_sites(bbox=(11.9, 44.9, 12.1, 45.1))[1] == 0


def test_downgrade_drops_the_column_and_upgrade_restores_it(store):
    from alembic import command

    from monitor.store.db import alembic_config

    store.upsert_sites([make_site("a_site", 12.0, 45.0)])
    with store.engine.begin() as conn:
        cfg = alembic_config(store.engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    columns_sql = text("SELECT column_name FROM information_schema.columns WHERE table_name = 'sites'")
    with store.engine.connect() as conn:
        assert "geom" not in set(conn.scalars(columns_sql))
        assert conn.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_sites_geom'")) == 0
    upgrade(store.engine)
    assert_in_step(store.engine)
    assert [s.id for s in store.find_sites(bbox=(11.9, 44.9, 12.1, 45.1))[0]] == ["a_site"]


def test_a_server_without_postgis_gets_the_package_name_and_nothing_changes(database_url):
    """`pg_available_extensions` is hidden behind an empty view of the same name found first on the
    search_path, as on a server where PostGIS is not installed."""
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text("CREATE SCHEMA no_postgis"))
        conn.execute(
            text("CREATE VIEW no_postgis.pg_available_extensions AS SELECT ''::name AS name WHERE false")
        )
        major = int(conn.scalar(text("SHOW server_version_num"))) // 10_000
    url = make_url(database_url).update_query_dict({"options": "-c search_path=no_postgis,pg_catalog,public"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(PostGISMissingError) as info:
            upgrade(engine)
        message = str(info.value)
        assert f"postgresql-{major}-postgis-3" in message and "postgis/postgis" in message
        assert schema_status(admin).current is None  # the whole upgrade rolled back
        with admin.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")) == 0
    finally:
        engine.dispose()
        admin.dispose()


def test_many_sites_query_is_exact_against_shapely(store):
    """A denser check of the PostGIS answers than the behaviour tests: random boxes over the grid."""
    sites = many_sites(600)
    store.upsert_sites(sites)
    rng = np.random.default_rng(7)
    geoms = [s.geometry for s in sites]
    for _ in range(20):
        w, s = rng.uniform(-10, 25), rng.uniform(35, 39)
        box = (w, s, w + rng.uniform(0.01, 3), s + rng.uniform(0.01, 2))
        expected = sorted(x.id for x, g in zip(sites, geoms, strict=True) if g.intersects(shapely.box(*box)))
        found, total = store.find_sites(bbox=box)
        assert [x.id for x in found] == expected and total == len(expected)


@pytest.mark.skipif(not (shutil.which("pg_dump") and shutil.which("pg_restore")), reason="needs pg_dump")
def test_a_dump_restores_into_a_new_database_with_the_geometries(store, tmp_path):
    """The backup recipe of the operations guide: pg_dump -Fc, then pg_restore into an empty database."""
    sites = many_sites(30)
    store.upsert_sites(sites)
    url = store.engine.url
    dump = tmp_path / "heritage.dump"
    conninfo = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    subprocess.run(["pg_dump", *conninfo, "-d", url.database, "-Fc", "-f", str(dump)], check=True)
    target = f"{url.database}_restored"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{target}"'))
    restored = make_engine(url.set(database=target).render_as_string(hide_password=False))
    try:
        done = subprocess.run(
            ["pg_restore", *conninfo, "-d", target, "--no-owner", str(dump)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert schema_status(restored).up_to_date
        assert_in_step(restored)
        copy = Store(restored)
        assert [s.id for s in copy.find_sites(bbox=(-10.1, 34.9, -9.3, 35.1))[0]] == ["s00000", "s00001"]
        assert copy.find_sites()[1] == 30
    finally:
        restored.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
        admin.dispose()
