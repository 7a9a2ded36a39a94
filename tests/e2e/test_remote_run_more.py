"""`heritage-monitor run` of GloFAS, Sentinel-2 and EMS Rapid Mapping against fakes on 127.0.0.1, as an
operator runs it: settings as HM_* variables, sites imported with `sites import`, then `run --source S`.

- GloFAS: the fake EWDS (tests/integration/sources/fake_cds.py) serving `cems-glofas-historical` files of a
  river network given in absolute coordinates, with a generated upstream-area map and generated GloFAS
  return-period threshold files (`HM_GLOFAS_UPSTREAM_AREA_PATH`, `HM_GLOFAS_THRESHOLDS_PATH`).
- Sentinel-2 and EMS Rapid Mapping: the CDSE OAuth + Statistical API fake and the Rapid Mapping fake
  (tests/integration/land_sources/fakes.py).
"""

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
from sqlalchemy import create_engine, text

from tests.e2e.conftest import QUICK_RETRIES, base_env
from tests.integration.land_sources.fakes import EMS_PREFIX, TOKEN_PATH, FakeServer, reply_status
from tests.integration.sources import products
from tests.integration.sources.fake_cds import FakeDataStore

CLI = [sys.executable, "-m", "monitor.cli"]


# --- helpers ---------------------------------------------------------------------------------------------


def import_sites(env: dict[str, str], tmp_path: Path, sites: dict[str, tuple[float, float]], size=0.02):
    """Square sites of `size` degrees with their south-west corner at (lon, lat)."""
    features = [
        {
            "type": "Feature",
            "id": sid,
            "properties": {"name": sid, "materials": ["limestone"]},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]],
            },
        }
        for sid, (x, y) in sites.items()
    ]
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    proc = subprocess.run(
        [*CLI, "sites", "import", str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def cli(env, *args):
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600)


def stored(url, sql):
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    engine.dispose()
    return rows


def snapshot(url):
    return (
        stored(
            url,
            "SELECT site_id, indicator_id, period_start, value FROM indicator_values "
            "ORDER BY site_id, indicator_id, period_start",
        ),
        stored(url, "SELECT source, site_id, last_day FROM watermarks ORDER BY source, site_id"),
    )


def variable_files(env, source):
    root = Path(env["HM_DATA_DIR"]) / "variables" / f"source={source}"
    return sorted(root.glob("*.parquet")) if root.exists() else []


def read_variables(env, source) -> pd.DataFrame:
    files = variable_files(env, source)
    assert files, f"no variable store files for {source}"
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def assert_failed_run_leaves_store_unchanged(env, database_url, source, start, end, expected_error):
    before = snapshot(database_url)
    files = {f: f.read_bytes() for f in variable_files(env, source)}
    proc = cli(env, "run", "--source", source, "--start", start, "--end", end)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert snapshot(database_url) == before
    assert {f: f.read_bytes() for f in variable_files(env, source)} == files
    failed = stored(database_url, "SELECT source, status, error FROM runs WHERE status != 'ok'")
    assert len(failed) == 1, failed
    assert failed[0][0] == source and failed[0][1] == "failed"
    assert expected_error in failed[0][2], failed[0][2]


# --- GloFAS against the fake EWDS --------------------------------------------------------------------

RIVER_LAT = 46.175  # a 0.05° cell centre: the river runs west-east along this row
GLOFAS_SITES = {  # ~5–6 km from the river on either side, one request tile
    "site_a": (11.10, 46.10),
    "site_b": (11.40, 46.22),
}
STATIC_AREA = [47.0, 10.5, 45.5, 12.5]  # N, W, S, E of the upstream-area and threshold files


def river_network(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean discharge m3/s, upstream area m²) in absolute coordinates (the same on any request area):
    a river growing eastwards on the row of RIVER_LAT, hillslopes elsewhere, and a reservoir-like cell of
    large discharge but tiny upstream area right next to site_a (the upstream map must win over it)."""
    q = np.full((lat.size, lon.size), 0.5)
    up = np.full((lat.size, lon.size), 2.0e6)
    row = np.isclose(lat, RIVER_LAT, atol=0.01)
    q[row, :] = 10.0 + 100.0 * (lon - 10.0)
    up[row, :] = q[row, :] * 1.0e7
    dam = np.isclose(lat, 46.125, atol=0.01)[:, None] & np.isclose(lon, 11.125, atol=0.01)[None, :]
    q[dam] = 5000.0
    up[dam] = 3.0e6
    return q, up


def glofas_file(inputs: dict) -> bytes:
    """A `cems-glofas-historical` NetCDF of the shape EWDS sends (as products.glofas_dataset): day D's
    value stamped D+1 00 UTC with a 24 h lead, discharge q × (1 + D/10)."""
    as_list = products._as_list
    y = as_list(inputs.get("hyear", inputs.get("year")))[0]
    m = as_list(inputs.get("hmonth", inputs.get("month")))[0]
    days = [date(int(y), int(m), int(d)) for d in as_list(inputs.get("hday", inputs.get("day")))]
    lat, lon = products.glofas_grid(inputs["area"])
    q, _ = river_network(lat, lon)
    factor = np.array([1.0 + d.day / 10.0 for d in days])
    vt = pd.DatetimeIndex([pd.Timestamp(d + timedelta(days=1)) for d in days])
    ds = xr.Dataset(
        {
            "dis24": (
                ("valid_time", "latitude", "longitude"),
                (q[None] * factor[:, None, None]).astype(np.float32),
                {"units": "m**3 s**-1", "long_name": "Mean discharge in the last 24 hours"},
            )
        },
        coords={
            "valid_time": ("valid_time", vt.to_numpy()),
            "forecast_period": ((), np.timedelta64(24, "h")),
            "forecast_reference_time": ("valid_time", (vt - pd.Timedelta(hours=24)).to_numpy()),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
    )
    return products.to_bytes(ds)


def glofas_responder(dataset: str, inputs: dict) -> bytes:
    assert dataset == "cems-glofas-historical", dataset
    return glofas_file(inputs)


def write_glofas_static(folder: Path) -> tuple[Path, Path]:
    """uparea_glofas_v4_0.nc and flood_threshold_glofas_v4_rl_{2.0,5.0,20.0}.nc (the GloFAS v4 auxiliary
    file names, lat/lon coordinates) on the same grid: rl_T = q × (1.2, 1.5, 3.0) for T = 2, 5, 20."""
    lat, lon = products.glofas_grid(STATIC_AREA)
    q, up = river_network(lat, lon)
    coords = {"lat": ("lat", lat), "lon": ("lon", lon)}
    uparea = folder / "uparea_glofas_v4_0.nc"
    xr.Dataset({"uparea": (("lat", "lon"), up, {"units": "m2"})}, coords=coords).to_netcdf(uparea)
    thresholds = folder / "thresholds"
    thresholds.mkdir()
    for rp, k in ((2.0, 1.2), (5.0, 1.5), (20.0, 3.0)):
        xr.Dataset({f"rl_{rp:.1f}": (("lat", "lon"), q * k, {"units": "m3 s-1"})}, coords=coords).to_netcdf(
            thresholds / f"flood_threshold_glofas_v4_rl_{rp:.1f}.nc"
        )
    return uparea, thresholds


@pytest.fixture
def ewds():
    store = FakeDataStore(responder=glofas_responder)
    yield store
    store.close()


def make_glofas_env(tmp_path, database_url, ewds, thresholds: bool) -> dict[str, str]:
    uparea, threshold_folder = write_glofas_static(tmp_path)
    e = base_env(tmp_path, database_url) | QUICK_RETRIES
    e.update(
        HM_EWDS_URL=ewds.url,
        HM_EWDS_KEY=ewds.token,
        HM_GLOFAS_MODE="remote",
        HM_GLOFAS_UPSTREAM_AREA_PATH=str(uparea),
        HM_GLOFAS_SEARCH_RADIUS_KM="8",
    )
    if thresholds:
        e["HM_GLOFAS_THRESHOLDS_PATH"] = str(threshold_folder)
    import_sites(e, tmp_path, GLOFAS_SITES)
    return e


def assert_glofas_requests(ewds):
    assert ewds.problems == []
    sent = ewds.submitted()
    # one request per calendar month for the one tile of nearby sites; day D is stamped D+1 00 UTC, so
    # the period runs to 1 April
    assert {d for d, _ in sent} == {"cems-glofas-historical"}
    months = sorted((i["hyear"], i["hmonth"]) for _, i in sent)
    assert months == [(["2024"], [f"{m:02d}"]) for m in (1, 2, 3, 4)]
    for _, inputs in sent:
        assert inputs["system_version"] == ["version_4_0"]
        assert inputs["hydrological_model"] == ["lisflood"]
        assert inputs["product_type"] == ["consolidated"]
        assert inputs["variable"] == ["river_discharge_in_the_last_24_hours"]
        assert inputs["data_format"] == "netcdf" and inputs["download_format"] == "unarchived"
        n, w, s, e = inputs["area"]
        assert n > 46.24 and s < 46.10 and w < 11.10 and e > 11.42
    by_month = {i["hmonth"][0]: i["hday"] for _, i in sent}
    assert by_month["01"] == [f"{d:02d}" for d in range(1, 32)] and by_month["04"] == ["01"]


def test_glofas_run_stores_flood_return_period_then_a_failing_service_changes_nothing(
    tmp_path, database_url, ewds
):
    """Without HM_GLOFAS_THRESHOLDS_PATH the return levels are fitted to the stored record, which needs
    10 complete years: three months give a category row for every site and day, without a value."""
    env = make_glofas_env(tmp_path, database_url, ewds, thresholds=False)
    proc = cli(env, "run", "--source", "glofas", "--start", "2024-01-01", "--end", "2024-03-31")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_glofas_requests(ewds)
    rows = stored(
        database_url,
        "SELECT site_id, period_start, value, source, synthetic FROM indicator_values "
        "WHERE indicator_id = 'flood_return_period'",
    )
    assert {r[0] for r in rows} == set(GLOFAS_SITES) and len(rows) == 2 * 91
    assert {r[3] for r in rows} == {"glofas"} and not any(r[4] for r in rows)
    assert all(r[2] is None for r in rows)  # no fit from 3 months: no value, never a made-up one
    dis = read_variables(env, "glofas")
    assert set(dis["site"]) == set(GLOFAS_SITES) and dis["dis24"].notna().all() and len(dis) == 2 * 91
    day = dis[dis["time"] == pd.Timestamp("2024-01-10")].set_index("site")["dis24"]
    # the river pixel of largest upstream area in reach (q = 10 + 100 (lon − 10) on the river, ×2.0 on the
    # 10th: 2 × 120–160), not the reservoir cell of 5000 m3/s right next to site_a
    assert 200 < float(day["site_a"]) < float(day["site_b"]) < 400
    assert stored(database_url, "SELECT source, status FROM runs") == [("glofas", "ok")]

    ewds.mode = "error500"
    assert_failed_run_leaves_store_unchanged(
        env, database_url, "glofas", "2024-04-01", "2024-04-30", "Unavailable"
    )


def test_glofas_run_with_glofas_threshold_files(tmp_path, database_url, ewds):
    env = make_glofas_env(tmp_path, database_url, ewds, thresholds=True)
    proc = cli(env, "run", "--source", "glofas", "--start", "2024-01-01", "--end", "2024-03-31")
    assert_glofas_requests(ewds)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = stored(
        database_url,
        "SELECT site_id, period_start, value FROM indicator_values "
        "WHERE indicator_id = 'flood_return_period'",
    )
    values = {(r[0], str(r[1])[:10]): r[2] for r in rows}
    assert {r[0] for r in rows} == set(GLOFAS_SITES) and len(values) == 2 * 91
    assert all(v is not None for v in values.values())
    # discharge q × (1 + day/10) against the thresholds q × 1.2, 1.5, 3.0 at the river pixel
    for site in GLOFAS_SITES:
        assert values[(site, "2024-01-01")] == 0  # 1.1 q: below the 2-year flood
        assert values[(site, "2024-01-03")] == 1  # 1.3 q
        assert values[(site, "2024-02-10")] == 2  # 2.0 q
        assert values[(site, "2024-03-25")] == 3  # 3.5 q: above the 20-year flood
    assert stored(database_url, "SELECT source, status FROM runs") == [("glofas", "ok")]


# --- Sentinel-2 and EMS Rapid Mapping against the land fakes -----------------------------------------

S2_SITES = {"site_a": (11.10, 46.05), "site_b": (12.33, 45.43)}  # UTM zones 32 and 33
EMS_SITES = {"molise": (14.60, 41.60), "bath": (-2.36, 51.38)}


@pytest.fixture(scope="module")
def land_server():
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def land(land_server):
    land_server.reset()
    yield land_server
    land_server.reset()


@pytest.fixture
def s2_env(tmp_path, database_url, land):
    e = base_env(tmp_path, database_url)
    e.update(
        OAUTHLIB_INSECURE_TRANSPORT="1",
        HM_SENTINEL2_MODE="remote",
        HM_SH_BASE_URL=land.url,
        HM_SH_TOKEN_URL=land.url + TOKEN_PATH,
        HM_SH_CLIENT_ID=land.sh.client_id,
        HM_SH_CLIENT_SECRET=land.sh.client_secret,
        HM_SH_DOWNLOAD_SLEEP_SECONDS="0.05",
        HM_SH_MAX_DOWNLOAD_ATTEMPTS="3",
        HM_SH_TIMEOUT_SECONDS="5",
    )
    import_sites(e, tmp_path, S2_SITES)
    return e


def test_sentinel2_run_stores_the_variables_then_a_failing_service_changes_nothing(
    s2_env, land, database_url
):
    proc = cli(s2_env, "run", "--source", "sentinel2", "--start", "2024-06-01", "--end", "2024-08-31")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sh = land.sh
    assert sh.violations == []
    assert len(sh.token_requests) == 1
    assert sh.token_requests[0] == {"grant_type": "client_credentials", "client_id": sh.client_id}
    assert len(sh.requests) == 2  # one Statistical API request per site
    crs = sorted(r["body"]["input"]["bounds"]["properties"]["crs"].rsplit("/", 1)[1] for r in sh.requests)
    assert crs == ["32632", "32633"]
    for r in sh.requests:
        assert r["body"]["aggregation"]["timeRange"] == {
            "from": "2024-06-01T00:00:00Z",
            "to": "2024-09-01T00:00:00Z",
        }
    assert sh.client_secret not in proc.stdout + proc.stderr

    frame = read_variables(s2_env, "sentinel2")
    assert set(frame["site"]) == set(S2_SITES)
    assert {"ndvi", "ndmi", "nbr", "valid_fraction"} <= set(frame.columns)
    # an acquisition every 3 days (31 from 1 June to 31 August), every 4th fully cloudy and dropped
    for site in S2_SITES:
        days = frame[frame["site"] == site]
        assert len(days) == 31 - 31 // 4
        assert days["ndvi"].between(0.5, 0.6).all() and days["ndmi"].notna().all()
        assert days["valid_fraction"].round(2).eq(0.8).all()
    assert (frame["product_version"] != "").all()

    rows = stored(
        database_url,
        "SELECT site_id, indicator_id, period_start, value, source, synthetic FROM indicator_values",
    )
    by_indicator: dict[str, list] = {}
    for r in rows:
        by_indicator.setdefault(r[1], []).append(r)
    # the NDVI indicators are computed for every site; without other years of the same months there is no
    # climatology (ndvi_anomaly) or trend (vegetation_encroachment) yet: stored as no value, never zero
    assert set(by_indicator) == {"ndvi_anomaly", "vegetation_encroachment"}
    anomaly = by_indicator["ndvi_anomaly"]
    assert {(r[0], str(r[2])[:10]) for r in anomaly} == {
        (s, d) for s in S2_SITES for d in ("2024-06-01", "2024-07-01", "2024-08-01")
    }
    assert all(r[3] is None for r in rows)
    assert {r[4] for r in rows} == {"sentinel2"} and not any(r[5] for r in rows)
    assert {r[0] for r in by_indicator["vegetation_encroachment"]} == set(S2_SITES)
    assert stored(database_url, "SELECT source, status FROM runs") == [("sentinel2", "ok")]

    land.sh.default = reply_status(500)
    assert_failed_run_leaves_store_unchanged(
        s2_env, database_url, "sentinel2", "2024-09-01", "2024-09-30", "Unavailable"
    )
    # HM_SH_MAX_DOWNLOAD_ATTEMPTS (3) for each site: one site failing does not stop the others
    assert len(land.sh.requests) == 2 + 3 * len(S2_SITES)
    assert land.sh.client_secret not in json.dumps(
        [list(r) for r in stored(database_url, "SELECT error FROM runs")]
    )


def test_sentinel2_ndvi_anomaly_once_earlier_summers_are_stored(s2_env, land, database_url):
    # a backfill of three summers (chunked by year: one request per site and chunk), then this summer
    back = cli(s2_env, "run", "--source", "sentinel2", "--start", "2021-06-01", "--end", "2023-08-31")
    assert back.returncode == 0, back.stdout + back.stderr
    proc = cli(s2_env, "run", "--source", "sentinel2", "--start", "2024-06-01", "--end", "2024-08-31")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert land.sh.violations == [] and len(land.sh.requests) == 2 * 3 + 2
    assert len(land.sh.token_requests) == 2  # one token per process
    rows = stored(
        database_url,
        "SELECT site_id, period_start, value FROM indicator_values "
        "WHERE indicator_id = 'ndvi_anomaly' AND value IS NOT NULL",
    )
    # only this summer has three other years of the same month
    assert {(r[0], str(r[1])[:10]) for r in rows} == {
        (s, d) for s in S2_SITES for d in ("2024-06-01", "2024-07-01", "2024-08-01")
    }
    assert all(abs(r[2]) < 0.2 for r in rows)
    years = read_variables(s2_env, "sentinel2")["time"].dt.year
    assert sorted(years.unique()) == [2021, 2022, 2023, 2024]
    runs = stored(database_url, "SELECT source, status FROM runs")
    assert runs == [("sentinel2", "ok"), ("sentinel2", "ok")]


def _square(x: float, y: float, half: float) -> str:
    ring = [(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half)]
    return "POLYGON ((" + ", ".join(f"{a} {b}" for a, b in [*ring, ring[0]]) + "))"


def _activation(code, x, y, activated, updated, closed, category="Flood"):
    """A list record and its detail answer, in the shapes of the Rapid Mapping dashboard API."""
    extent = _square(x, y, 0.1)
    record = {
        "code": code,
        "countries": ["Italy"],
        "eventTime": activated,
        "name": f"{category} {code}",
        "centroid": f"POINT ({x} {y})",
        "activationTime": activated,
        "category": category,
        "lastUpdate": updated,
        "closed": closed,
        "gdacsId": None,
        "n_aois": 1,
        "n_products": 0,
    }
    detail = {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "code": code,
                "name": record["name"],
                "category": category,
                "eventTime": activated,
                "activationTime": activated,
                "closed": closed,
                "countries": [{"name": "Italy"}],
                "aois": [
                    {"name": "AOI", "number": 1, "extent": extent, "activationCode": code, "products": []}
                ],
                "centroid": record["centroid"],
                "extent": extent,
            }
        ],
    }
    return record, detail


@pytest.fixture
def ems_env(tmp_path, database_url, land):
    records, details = [], {}
    for code, x, y, activated, updated, closed in (
        ("EMSR903", 14.61, 41.61, "2024-08-01T10:00:00", "2024-09-05T10:00:00", False),  # open, Molise
        ("EMSR880", 14.61, 41.61, "2024-03-10T08:00:00", "2024-03-20T10:00:00", True),  # closed, Molise
        ("EMSR870", 20.00, 40.00, "2024-03-01T08:00:00", "2024-03-25T10:00:00", True),  # elsewhere
        ("EMSR700", 14.61, 41.61, "2023-01-10T08:00:00", "2023-02-01T10:00:00", True),  # long before
    ):
        record, detail = _activation(code, x, y, activated, updated, closed)
        records.append(record)
        details[code] = detail
    land.ems.records = records
    land.ems.details = details
    e = base_env(tmp_path, database_url)
    e.update(
        HM_EMS_RAPID_MAPPING_MODE="remote",
        HM_EMS_URL=land.url + EMS_PREFIX,
        HM_EMS_BACKOFF_SECONDS="0.05",
        HM_EMS_MAX_ATTEMPTS="3",
        HM_EMS_TIMEOUT_SECONDS="5",
        HM_EMS_PAGE_SIZE="2",
    )
    import_sites(e, tmp_path, EMS_SITES)
    return e


def test_ems_run_stores_activation_days_then_a_failing_service_changes_nothing(ems_env, land, database_url):
    proc = cli(
        ems_env, "run", "--source", "ems_rapid_mapping", "--start", "2024-03-01", "--end", "2024-03-31"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert land.ems.violations == []
    # two pages of two records, followed through `next` on our base URL
    assert land.ems.list_requests == [{"limit": "2", "offset": "0"}, {"limit": "2", "offset": "2"}]
    # EMSR903 was activated after the period and EMSR700 closed long before it: no detail asked
    assert sorted(land.ems.detail_requests) == ["EMSR870", "EMSR880"]
    rows = stored(
        database_url,
        "SELECT site_id, period_start, value, source, synthetic FROM indicator_values "
        "WHERE indicator_id = 'ems_activation'",
    )
    values = {(r[0], str(r[1])[:10]): r[2] for r in rows}
    assert {r[0] for r in rows} == set(EMS_SITES) and len(values) == 2 * 31
    assert all(v is not None for v in values.values())
    assert {r[3] for r in rows} == {"ems_rapid_mapping"} and not any(r[4] for r in rows)
    molise = [values[("molise", f"2024-03-{d:02d}")] for d in range(1, 32)]
    # EMSR880: active from its activation day to its last update (closed)
    assert molise == [0] * 9 + [1] * 11 + [0] * 11
    assert all(values[("bath", f"2024-03-{d:02d}")] == 0 for d in range(1, 32))
    frame = read_variables(ems_env, "ems_rapid_mapping")
    assert set(frame["site"]) == set(EMS_SITES) and frame["ems_active"].notna().all()
    assert stored(database_url, "SELECT source, status FROM runs") == [("ems_rapid_mapping", "ok")]

    land.ems.plan = [lambda: reply_status(500)({})] * 1000  # 500 forever
    assert_failed_run_leaves_store_unchanged(
        ems_env, database_url, "ems_rapid_mapping", "2024-04-01", "2024-04-30", "Unavailable"
    )
    assert len(land.ems.list_requests) == 2 + 3  # the good run's two pages, then HM_EMS_MAX_ATTEMPTS
