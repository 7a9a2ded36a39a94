"""Time series of many sites × indicators (JSON, CSV, CF-NetCDF, Parquet), caching, variables, plot."""

from __future__ import annotations

import csv
import io

import pyarrow.parquet as pq
import xarray as xr

from tests.api.conftest import assert_problem, auth

MANY = {"sites": "athens,krakow", "indicators": "hot_days,freeze_thaw_cycles"}


def test_many_json_and_resample(world):
    c = world.client
    body = c.get("/api/v1/timeseries", params=MANY).json()
    assert body["synthetic"] and "SYNTHETIC" in body["attribution"]
    assert len(body["series"]) == 4 and len(body["series"][0]["points"]) == 24
    aggs = {i["id"]: i["aggregation"] for i in body["indicators"]}
    assert aggs == {"hot_days": "sum", "freeze_thaw_cycles": "sum"}
    yearly = c.get("/api/v1/timeseries", params=MANY | {"resample": "yearly"}).json()
    hot = next(s for s in yearly["series"] if s["site"] == "athens" and s["indicator"] == "hot_days")
    assert [p["period_start"] for p in hot["points"]] == ["2024-01-01", "2025-01-01"]
    assert hot["points"][0]["value"] == sum((i % 12) * 2 for i in range(12))
    assert hot["points"][0]["level"] == "high" and hot["freq"] == "YS"
    one = c.get(
        "/api/v1/sites/athens/timeseries", params={"indicator": "hot_days", "resample": "yearly"}
    ).json()
    assert one["freq"] == "YS" and len(one["points"]) == 2
    assert_problem(c.get("/api/v1/timeseries", params=MANY | {"sites": "athens,nowhere"}), 404)
    assert_problem(c.get("/api/v1/timeseries", params=MANY | {"indicators": "nope"}), 404)
    assert_problem(
        c.get("/api/v1/timeseries", params=MANY | {"start": "2025-01-01", "end": "2024-01-01"}), 422
    )


def test_many_csv_streams(world):
    r = world.client.get("/api/v1/timeseries", params=MANY | {"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2 * (24 + 6) and rows[0]["units"] and rows[0]["attribution"].startswith("SYNTHETIC")


def test_netcdf_is_cf(world, tmp_path):
    r = world.client.get("/api/v1/timeseries", params=MANY | {"format": "netcdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-netcdf"
    path = tmp_path / "series.nc"
    path.write_bytes(r.content)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["featureType"] == "timeSeries"
        for attr in ("title", "institution", "source", "history", "provenance", "attribution"):
            assert ds.attrs[attr]
        assert "SYNTHETIC" in ds.attrs["attribution"] and "synthetic-1" in ds.attrs["provenance"]
        assert dict(ds.sizes) == {"site": 2, "time": 28}
        assert ds["hot_days"].attrs["units"] == "days" and ds["hot_days"].attrs["long_name"]
        assert ds["freeze_thaw_cycles"].attrs["units"] == "days"
        assert ds["lat"].attrs["standard_name"] == "latitude" and ds["time"].attrs["standard_name"] == "time"
        assert float(ds["hot_days"].sel(site="athens").dropna("time")[1]) == 2.0
    one = world.client.get(
        "/api/v1/sites/athens/timeseries", params={"indicator": "hot_days", "format": "netcdf"}
    )
    assert one.status_code == 200 and one.content[:3] == b"\x89HD"


def test_parquet(world):
    r = world.client.get(
        "/api/v1/sites/krakow/timeseries", params={"indicator": "hot_days", "format": "parquet"}
    )
    table = pq.read_table(io.BytesIO(r.content))
    assert table.num_rows == 24 and set(table.column("units").to_pylist()) == {"days"}
    assert b"attribution" in table.schema.metadata


def test_etag_and_last_modified(world):
    c = world.client
    r = c.get("/api/v1/timeseries", params=MANY)
    etag = r.headers["etag"]
    assert r.headers["last-modified"].endswith("GMT")
    again = c.get("/api/v1/timeseries", params=MANY, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    other = c.get("/api/v1/timeseries", params=MANY | {"format": "csv"}, headers={"If-None-Match": etag})
    assert other.status_code == 200
    single = c.get("/api/v1/sites/athens/timeseries", params={"indicator": "hot_days"})
    ims = {"If-Modified-Since": single.headers["last-modified"]}
    assert (
        c.get("/api/v1/sites/athens/timeseries", params={"indicator": "hot_days"}, headers=ims).status_code
        == 304
    )


def test_variables(world):
    c = world.client
    body = c.get("/api/v1/sites/athens/variables", params={"name": "tas", "end": "2025-01-31"}).json()
    (tas,) = body["variables"]
    assert tas["units"] == "degC" and tas["source"] == "era5_land" and tas["product_version"] == "synthetic-1"
    assert tas["synthetic"] and "SYNTHETIC" in tas["attribution"] and len(tas["values"]) == 31
    r = c.get("/api/v1/sites/athens/variables", params={"name": "tas,pr", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2 * 90 and {r["units"] for r in rows} == {"degC", "mm d-1"}
    assert_problem(c.get("/api/v1/sites/athens/variables", params={"name": "nope"}), 404)
    assert_problem(c.get("/api/v1/sites/nowhere/variables", params={"name": "tas"}), 404)


def test_plot_png(world):
    c = world.client
    r = c.get("/api/v1/sites/athens/plot.png", params={"indicator": "hot_days"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    empty = c.get("/api/v1/sites/athens/plot.png", params={"indicator": "fire_danger_class"})
    assert empty.status_code == 200
    assert_problem(c.get("/api/v1/sites/athens/plot.png", params={"indicator": "nope"}), 404)


def test_closed_reading_requires_a_key(world):
    from fastapi.testclient import TestClient

    from api.app import create_app

    closed = world.settings.model_copy(update={"public_read": False})
    with TestClient(create_app(closed, world.store)) as c:
        for url, params in [
            ("/api/v1/timeseries", MANY),
            ("/api/v1/sites/athens/variables", {"name": "tas"}),
            ("/api/v1/sites/athens/plot.png", {"indicator": "hot_days"}),
            ("/api/v1/sites", {"material": "marble"}),
        ]:
            assert_problem(c.get(url, params=params), 401)
            assert c.get(url, params=params, headers=auth(world.keys["reader"])).status_code == 200
        world.store.revoke_key(world.keys["reader"].id)
        assert_problem(c.get("/api/v1/timeseries", params=MANY, headers=auth(world.keys["reader"])), 401)


def test_rate_limit(world, caplog):
    from fastapi.testclient import TestClient

    from api.app import create_app

    tight = world.settings.model_copy(update={"rate_limit_per_minute": 3, "rate_limit_keyed_per_minute": 2})
    with TestClient(create_app(tight, world.store)) as c:
        codes = [c.get("/api/v1/indicators").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/api/v1/indicators")
        body = assert_problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1 and "rate limit" in body["detail"]
        assert c.get("/health").status_code == 200  # probes are never throttled
        key = auth(world.keys["reader"])
        assert [c.get("/api/v1/indicators", headers=key).status_code for _ in range(3)] == [200, 200, 429]
    assert world.keys["reader"].secret not in caplog.text
