"""`heritage-monitor db upgrade` and `db current`, run as an operator runs them, on a fresh database
(SQLite, or a new PostgreSQL database when HM_DATABASE_URL is set), on an unreachable server and, on
PostgreSQL, on a server without PostGIS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.store.db import head_revision, make_engine, schema_status

CLI = [sys.executable, "-m", "monitor.cli"]
POSTGRES = os.environ.get("HM_DATABASE_URL", "").startswith("postgresql")


def cli(tmp_path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HM_")}
    env.update(HM_DATA_DIR=str(tmp_path / "data"), HM_DATABASE_URL=database_url, COLUMNS="200")
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_upgrade_brings_a_fresh_database_to_head_once(tmp_path, database_url):
    head = head_revision()
    before = cli(tmp_path, database_url, "db", "current")
    assert before.returncode == 1, before.stderr
    assert f"schema revision none (empty), latest {head}" in before.stdout
    assert "db upgrade" in before.stdout

    first = cli(tmp_path, database_url, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert f"schema revision none (empty) → {head}" in first.stdout
    engine = make_engine(database_url)
    try:
        assert schema_status(engine).current == head
        if POSTGRES:
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")) == 1
    finally:
        engine.dispose()

    again = cli(tmp_path, database_url, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert f"already at the latest schema revision {head}" in again.stdout
    now = cli(tmp_path, database_url, "db", "current")
    assert now.returncode == 0 and f"schema revision {head} (latest)" in now.stdout


def test_an_older_database_is_upgraded_from_its_revision(tmp_path, database_url):
    from monitor.store.db import upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine, "0003")
    finally:
        engine.dispose()
    done = cli(tmp_path, database_url, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"schema revision 0003 → {head_revision()}" in done.stdout


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_an_unreachable_server_is_a_clear_error_without_the_password(tmp_path, command):
    url = "postgresql+psycopg://heritage:s3cret-pw@127.0.0.1:1/heritage"  # nothing listens on port 1
    done = cli(tmp_path, url, "db", command)
    assert done.returncode == 2
    assert "cannot connect to the database" in done.stderr and "127.0.0.1:1/heritage" in done.stderr
    assert "Traceback" not in done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_other_store_commands_report_an_unreachable_server_too(tmp_path):
    done = cli(tmp_path, "postgresql+psycopg://heritage@127.0.0.1:1/heritage", "sites", "list")
    assert done.returncode == 2 and "cannot connect to the database" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL: set HM_DATABASE_URL=postgresql+psycopg://…")
def test_a_server_without_postgis_names_the_package_to_install(tmp_path, database_url):
    """The catalogue of available extensions is hidden by an empty view earlier on the search_path."""
    admin = create_engine(database_url)
    try:
        with admin.begin() as conn:
            conn.execute(text("CREATE SCHEMA no_postgis"))
            conn.execute(
                text("CREATE VIEW no_postgis.pg_available_extensions AS SELECT ''::name AS name WHERE false")
            )
            major = int(conn.scalar(text("SHOW server_version_num"))) // 10_000
        hidden = make_url(database_url).update_query_dict(
            {"options": "-c search_path=no_postgis,pg_catalog,public"}
        )
        done = cli(tmp_path, hidden.render_as_string(hide_password=False), "db", "upgrade")
        assert done.returncode == 2, done.stdout
        message = " ".join(done.stderr.split())
        assert f"postgresql-{major}-postgis-3" in message and "postgis/postgis" in message
        assert "Traceback" not in done.stderr
        assert schema_status(admin).current is None
    finally:
        admin.dispose()
