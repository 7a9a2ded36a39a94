"""The command line as a new user drives it: demo, import, keys, exit codes; and the served API."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

CLI = [sys.executable, "-m", "monitor.cli"]


@pytest.fixture
def env(tmp_path, database_url):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HM_")}
    e.update(
        HM_DATA_DIR=str(tmp_path / "data"),
        HM_DATABASE_URL=database_url,
        HM_DEMO_END="2026-11-15",
        HM_DEMO_YEARS="2",
        COLUMNS="200",
    )
    return e


def cli(env, *args, check=None):
    proc = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


def dump(url: str) -> dict:
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in (
            "sites",
            "indicator_values",
            "alerts",
            "alert_events",
            "alert_cursors",
            "watermarks",
            "runs",
            "api_keys",
            "forecast_series",
            "forecast_issues",
            "projection_values",
        ):
            out[table] = sorted(map(tuple, conn.execute(text(f"SELECT * FROM {table}")).all()), key=repr)
    engine.dispose()
    return out


def test_demo_twice_changes_nothing_stored(env, database_url):
    first = cli(env, "demo", "--no-serve", check=0)
    assert "SYNTHETIC" in first.stdout and "Admin API key" in first.stdout
    before = dump(database_url)
    assert len(before["sites"]) >= 12 and before["alerts"]
    second = cli(env, "demo", "--no-serve", check=0)
    assert "Admin API key" not in second.stdout
    assert dump(database_url) == before


def write_collection(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def square(lon, lat, d=0.01):
    return {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]],
    }


def test_import_names_each_bad_feature_and_stores_none_of_them(env, tmp_path, database_url):
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    path = write_collection(
        tmp_path / "sites.geojson",
        [
            {"type": "Feature", "id": "good_one", "properties": {"name": "Good"}, "geometry": square(10, 45)},
            {"type": "Feature", "id": "bow_tie", "properties": {"name": "Bow tie"}, "geometry": bowtie},
            {
                "type": "Feature",
                "id": "a_point",
                "properties": {"name": "Point"},
                "geometry": {"type": "Point", "coordinates": [10, 45]},
            },
            {
                "type": "Feature",
                "id": "off_earth",
                "properties": {"name": "Off"},
                "geometry": square(200, 45),
            },
        ],
    )
    proc = cli(env, "sites", "import", str(path), check=1)
    for bad in ("bow_tie", "a_point", "off_earth"):
        assert bad in proc.stderr
    engine = create_engine(database_url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM sites"))]
    assert ids == ["good_one"]
    strict_path = write_collection(
        tmp_path / "strict.geojson",
        [
            {
                "type": "Feature",
                "id": "another",
                "properties": {"name": "Another"},
                "geometry": square(11, 45),
            },
            {"type": "Feature", "id": "bow_tie", "properties": {"name": "Bow tie"}, "geometry": bowtie},
        ],
    )
    cli(env, "sites", "import", str(strict_path), "--strict", check=1)
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT id FROM sites"))] == ["good_one"]
    engine.dispose()
    again = cli(env, "sites", "import", str(path), check=1)
    assert "0 created, 0 updated, 1 unchanged" in again.stdout


def test_usage_errors_exit_2_and_keys_lifecycle(env):
    assert cli(env, "run", "--start", "2024-13-01").returncode == 2
    assert cli(env, "run", "--source", "nope").returncode == 2
    assert cli(env, "frobnicate").returncode == 2
    assert cli(env, "sites", "import", "/does/not/exist.geojson").returncode == 2
    created = cli(env, "keys", "create", "--name", "analyst", "--role", "reader", check=0)
    secret = created.stdout.split("shown once: ")[1].split()[0]
    listing = cli(env, "keys", "list", check=0)
    assert "analyst" in listing.stdout and secret not in listing.stdout
    key_id = created.stdout.split("key id ")[1].split()[0]
    cli(env, "keys", "revoke", key_id, check=0)
    assert cli(env, "keys", "revoke", key_id).returncode == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_serves_alerts_and_csv(env):
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("the demo API did not become ready")
        alerts = httpx.get(f"{base}/api/v1/alerts").json()
        assert alerts["numberMatched"] > 0
        first = alerts["alerts"][0]
        csv = httpx.get(
            f"{base}/api/v1/sites/{first['site']}/timeseries",
            params={"indicator": first["indicator"], "format": "csv"},
        )
        assert csv.status_code == 200 and csv.text.startswith("site,indicator,period_start")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"{base}/docs" in out
    assert f"Dashboard: {base}/" in out
