"""CLMS CORINE Land Cover and HRL imperviousness from small GeoTIFFs generated in EPSG:3035."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from monitor.sources.base import SourceNotAvailableError
from sites import Site, SiteSet
from tests.conftest import make_site
from tests.integration.land_sources.conftest import make_settings

TO_3035 = Transformer.from_crs(4326, 3035, always_xy=True)
TO_4326 = Transformer.from_crs(3035, 4326, always_xy=True)
X0, Y0 = (round(v, -2) for v in TO_3035.transform(12.3387, 45.4341))
HALF = 150.0  # the site is a 300 m square in EPSG:3035 centred on (X0, Y0)
EXTENT = 2000.0


def _site(site_id: str, buffer_m: float = 0.0) -> Site:
    square = box(X0 - HALF, Y0 - HALF, X0 + HALF, Y0 + HALF).segmentize(10)
    return Site(
        id=site_id,
        name=site_id,
        geometry=shapely.transform(square, TO_4326.transform, interleaved=False),
        buffer_m=buffer_m,
    )


def _write(path, values: np.ndarray, cell: float, nodata: float) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=values.shape[0],
        width=values.shape[1],
        count=1,
        dtype=values.dtype,
        crs="EPSG:3035",
        transform=Affine(cell, 0, X0 - EXTENT, 0, -cell, Y0 + EXTENT),
        nodata=nodata,
    ) as dst:
        dst.write(values, 1)


def _centre_mask(n: int, cell: float) -> np.ndarray:
    xs = X0 - EXTENT + cell * (np.arange(n) + 0.5)
    ys = Y0 + EXTENT - cell * (np.arange(n) + 0.5)
    gx, gy = np.meshgrid(xs, ys)
    return (np.abs(gx - X0) < HALF) & (np.abs(gy - Y0) < HALF)


@pytest.fixture
def clms_dir(tmp_path):
    folder = tmp_path / "clms"
    folder.mkdir()
    # CORINE 2018, grid-index coding at 50 m: the site is continuous urban fabric (1 -> 111), around it
    # water bodies (41 -> 512) except a western strip of broad-leaved forest (23 -> 311) and unclassified (48)
    n = int(2 * EXTENT / 50)
    clc = np.full((n, n), 41, dtype=np.uint8)
    clc[:, :10] = 23
    clc[:, 10:12] = 48
    clc[_centre_mask(n, 50)] = 1
    _write(folder / "U2018_CLC2018_V2020_20u1.tif", clc, 50, nodata=128)
    # CORINE 2012 in 3-digit codes: everything agricultural (211)
    _write(folder / "CLC2012_codes.tif", np.full((n, n), 211, dtype=np.uint16), 50, nodata=0)
    # imperviousness 2018 at 25 m: 80 % inside the site, 10 % around, 254 (unclassifiable) in a corner
    m = int(2 * EXTENT / 25)
    imd = np.full((m, m), 10, dtype=np.uint8)
    imd[_centre_mask(m, 25)] = 80
    imd[:20, :20] = 254
    _write(folder / "IMD_2018_025m_E45N25_03035_v020.tif", imd, 25, nodata=255)
    (folder / "readme.tif.txt").write_text("not a raster")
    return folder


def clms(tmp_path, folder):
    from monitor.sources import clms_land

    settings = make_settings(tmp_path, clms_land_mode="local", clms_land_path=folder)
    return clms_land.build(settings, "local"), settings


def test_polygon_and_buffer_ring_are_separate(clms_dir, tmp_path):
    source, _ = clms(tmp_path, clms_dir)
    sites = SiteSet([_site("san_marco", buffer_m=300), _site("bare"), make_site("bath", -2.359, 51.3811)])
    cube = source.fetch(sites, date(2018, 1, 1), date(2018, 12, 31))
    assert [str(t)[:10] for t in cube.time.values] == ["2018-01-01"]
    sm = cube.sel(site="san_marco").isel(time=0)
    assert float(sm.clc_artificial_fraction) == pytest.approx(1.0, abs=0.02)
    assert float(sm.clc_water_fraction) == pytest.approx(0.0, abs=0.02)
    assert float(sm.clc_water_fraction_buffer) == pytest.approx(1.0, abs=0.03)
    assert float(sm.clc_artificial_fraction_buffer) == pytest.approx(0.0, abs=0.03)
    total = sum(
        float(sm[f"clc_{g}_fraction"])
        for g in ("artificial", "agricultural", "forest_seminatural", "wetlands", "water")
    )
    assert total == pytest.approx(1.0)
    assert float(sm.imperviousness_mean) == pytest.approx(80.0, abs=1.0)
    assert float(sm.imperviousness_mean_buffer) == pytest.approx(10.0, abs=1.0)
    assert cube.imperviousness_mean.attrs["units"] == "%"
    # no buffer: the ring variables are unknown, not zero
    assert np.isnan(cube.clc_water_fraction_buffer.sel(site="bare")).all()
    assert float(cube.coverage.sel(site="san_marco")) == pytest.approx(1.0, abs=0.02)
    # far outside the rasters: not covered
    assert not bool(cube.covered.sel(site="bath")) and float(cube.coverage.sel(site="bath")) == 0.0
    assert np.isnan(cube.imperviousness_mean.sel(site="bath")).all()
    assert cube.attrs["product"] == "CORINE Land Cover + HRL Imperviousness Density"
    assert (
        "Copernicus Land Monitoring Service" in cube.attrs["attribution"]
        and cube.attrs["synthetic"] == "false"
    )


def test_unclassified_cells_are_excluded_and_forest_counted(clms_dir, tmp_path):
    source, _ = clms(tmp_path, clms_dir)
    x, y = TO_4326.transform(
        X0 - EXTENT + 275, Y0
    )  # on the forest/unclassified edge (x 250–300 m unclassified)
    site = make_site("edge", x, y, half=0.0012)
    cube = source.fetch(SiteSet([site]), date(2018, 1, 1), date(2018, 12, 31))
    got = cube.sel(site="edge").isel(time=0)
    assert float(got.clc_forest_seminatural_fraction) + float(got.clc_water_fraction) == pytest.approx(1.0)
    assert float(got.clc_forest_seminatural_fraction) > 0.3
    assert 0.2 < float(cube.coverage.sel(site="edge")) < 1.0  # the unclassified strip is not valid data


def test_three_digit_codes_and_two_years(clms_dir, tmp_path):
    source, _ = clms(tmp_path, clms_dir)
    cube = source.fetch(SiteSet([_site("san_marco")]), date(2010, 1, 1), date(2020, 12, 31))
    assert [str(t)[:10] for t in cube.time.values] == ["2012-01-01", "2018-01-01"]
    assert float(cube.clc_agricultural_fraction.sel(site="san_marco", time="2012-01-01")) == pytest.approx(
        1.0
    )
    assert np.isnan(cube.imperviousness_mean.sel(site="san_marco", time="2012-01-01"))


def test_remote_mode_is_not_available_and_check_says_so(tmp_path):
    from monitor.sources import clms_land

    settings = make_settings(tmp_path, clms_land_mode="remote")
    with pytest.raises(SourceNotAvailableError):
        clms_land.build(settings, "remote")
    assert "not implemented" in clms_land.check(settings)["message"]
