"""Provider files to plain (time, lat, lon) datasets: names, longitudes, expver, ZIPs, GRIB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from monitor.sources.normalise import file_kind, iter_files, normalise, open_normalised
from tests.integration.sources.products import to_bytes, zip_bytes


def cds_like(times, expver=None, lon=(350.0, 355.0, 0.0, 5.0)) -> xr.Dataset:
    vt = pd.DatetimeIndex(times)
    coords = {
        "valid_time": vt.to_numpy(),
        "latitude": [50.0, 45.0],
        "longitude": list(lon),
        "number": 0,
    }
    data = np.arange(vt.size * 2 * len(lon), dtype=np.float32).reshape(vt.size, 2, len(lon))
    ds = xr.Dataset({"t2m": (("valid_time", "latitude", "longitude"), data)}, coords=coords)
    if expver is not None:
        ds = ds.assign_coords(expver=("valid_time", np.array(expver, dtype=object)))
    return ds


def test_names_longitudes_and_number():
    ds = normalise(cds_like(["2024-01-01T00", "2024-01-01T01"], expver=["0001", "0005"]))
    assert set(ds.dims) == {"time", "lat", "lon"}
    assert "number" not in ds.coords
    assert ds["lon"].values.tolist() == [-10.0, -5.0, 0.0, 5.0]
    # values moved with their longitudes
    assert ds["t2m"].isel(time=0, lat=0).values.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert ds["expver"].values.tolist() == ["0001", "0005"]


def test_expver_dimension_of_the_old_cds_is_combined():
    t = pd.date_range("2024-01-01", periods=3, freq="h")
    final = np.array([1.0, 2.0, np.nan])
    prelim = np.array([np.nan, np.nan, 3.0])
    ds = xr.Dataset(
        {
            "t2m": (
                ("time", "expver", "latitude", "longitude"),
                np.stack([final, prelim], 1)[:, :, None, None],
            )
        },
        coords={"time": t, "expver": [1, 5], "latitude": [50.0], "longitude": [10.0]},
    )
    out = normalise(ds)
    assert "expver" not in out.dims
    assert out["t2m"].values.ravel().tolist() == [1.0, 2.0, 3.0]
    assert out["expver"].values.tolist() == ["0001", "0001", "0005"]


def test_forecast_reference_and_lead_become_valid_times():
    ds = xr.Dataset(
        {
            "dis24": (
                ("forecast_reference_time", "step", "latitude", "longitude"),
                np.arange(4.0).reshape(2, 2, 1, 1),
            )
        },
        coords={
            "forecast_reference_time": pd.to_datetime(["2024-06-01", "2024-06-02"]),
            "step": pd.to_timedelta([24, 48], unit="h"),
            "latitude": [45.0],
            "longitude": [5.0],
        },
    )
    out = normalise(ds)
    assert pd.DatetimeIndex(out["time"].values).strftime("%d").tolist() == ["02", "03", "04"]
    # 06-03 exists as lead 48 h of the 1st and lead 24 h of the 2nd: the shorter lead wins
    assert out["dis24"].values.ravel().tolist() == [0.0, 2.0, 3.0]
    assert (out["lead"].values.astype("timedelta64[h]").astype(int)).tolist() == [24, 24, 48]


def test_a_single_forecast_with_scalar_reference_time():
    ds = xr.Dataset(
        {"dis24": (("step", "latitude", "longitude"), np.arange(3.0).reshape(3, 1, 1))},
        coords={
            "time": pd.Timestamp("2024-06-01"),
            "step": pd.to_timedelta([24, 48, 72], unit="h"),
            "valid_time": ("step", pd.date_range("2024-06-02", periods=3)),
            "latitude": [45.0],
            "longitude": [365.0 - 360.0],
        },
    )
    out = normalise(ds)
    assert out["dis24"].dims == ("time", "lat", "lon")
    assert pd.DatetimeIndex(out["time"].values).strftime("%m-%d").tolist() == ["06-02", "06-03", "06-04"]


def test_zip_of_several_netcdf_files_and_kind_sniffing(tmp_path):
    a = cds_like(["2024-01-01T00"]).rename(t2m="t2m")
    b = cds_like(["2024-01-01T00"]).rename(t2m="tp")
    path = tmp_path / "download.nc"  # a ZIP saved under a .nc name, as some stores send
    path.write_bytes(zip_bytes({"instant.nc": to_bytes(a), "accum.nc": to_bytes(b), "README.txt": b"hello"}))
    assert file_kind(path) == "zip"
    with open_normalised(path) as datasets:
        names = sorted(v for ds in datasets for v in ds.data_vars)
    assert names == ["t2m", "tp"]
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / ".hidden.nc").write_bytes(b"")
    assert [p.name for p in iter_files(tmp_path)] == ["download.nc"]


@pytest.mark.realdata
def test_real_files(shared_data, tmp_path):
    era5 = shared_data / "era5"
    before = sorted(p.name for p in era5.iterdir())
    with open_normalised(era5 / "era5-single-level-scalar-time.grib") as (ds,):
        assert ds.sizes["time"] == 1
        assert set(ds["t2m"].dims) == {"time", "lat", "lon"}
    with open_normalised(era5 / "era5_2t_1.nc") as (ds,):
        assert ds["lon"].values.min() == -180.0
        assert ds["t2m"].dtype.kind == "f"  # packed int16 unpacked
        assert 200 < float(ds["t2m"].mean()) < 320
    with open_normalised(shared_data / "cams" / "97da7a58-674a-4a1f-a92b-534cb95d07bb.zip") as datasets:
        assert len(datasets) == 2
    # cfgrib must not leave index files next to the data
    assert sorted(p.name for p in era5.iterdir()) == before
