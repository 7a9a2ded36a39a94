"""The indicator registry, classification and the first indicators against independent xclim calls."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import indicators
from indicators import LEVEL_CODES, Thresholds


def cube(**variables) -> xr.Dataset:
    n_time = len(next(iter(variables.values()))[1][0])
    time = pd.date_range("2001-01-01", periods=n_time, freq="D")
    ds = xr.Dataset(coords={"site": ["a", "b"][: len(next(iter(variables.values()))[1])], "time": time})
    for name, (units, values) in variables.items():
        ds[name] = (("site", "time"), np.asarray(values, dtype=float), {"units": units})
    return ds


def test_catalog_lists_the_foundation_indicators_with_units_and_levels():
    ids = {s.id for s in indicators.catalog()}
    assert {"freeze_thaw_cycles", "max_1day_precipitation", "hot_days", "fire_danger_class"} <= ids
    for spec in indicators.catalog():
        assert spec.units and spec.inputs and spec.version and spec.references


def test_unknown_indicator_is_a_clear_error():
    with pytest.raises(indicators.UnknownIndicatorError, match="nope"):
        indicators.get("nope")


def test_thresholds_classify_both_directions_and_nan_is_no_data():
    up = Thresholds(low=1, moderate=2, high=3, severe=4)
    assert up.classify(np.array([0, 1, 2.5, 3, 9, np.nan])).tolist() == [0, 1, 2, 3, 4, -1]
    down = Thresholds(low=-1, moderate=-1.5, high=-2, severe=None, direction="lower_is_worse")
    assert down.classify(np.array([0, -1, -1.6, -5])).tolist() == [0, 1, 2, 3]


def test_overrides_replace_single_levels():
    codes = indicators.classify("freeze_thaw_cycles", [35.0, 35.0], overrides={"high": 30})
    assert codes.tolist() == [LEVEL_CODES["high"]] * 2
    with pytest.raises(indicators.IndicatorInputError):
        indicators.classify("freeze_thaw_cycles", [1.0], overrides={"extreme": 3})


def test_freeze_thaw_counts_crossing_days_and_respects_units():
    tmax = [[2, -1, 3, 5], [1, 1, 1, 1]]
    tmin = [[-2, -3, 0, 1], [-1, -1, 2, 0]]
    res = indicators.compute("freeze_thaw_cycles", cube(tasmax=("degC", tmax), tasmin=("degC", tmin)))
    assert res.sel(site="a").item() == 2 and res.sel(site="b").item() == 3
    kelvin = cube(tasmax=("K", np.array(tmax) + 273.15), tasmin=("K", np.array(tmin) + 273.15))
    assert (indicators.compute("freeze_thaw_cycles", kelvin).values == res.values).all()
    assert res.attrs["units"] == "days"


def test_rx1day_in_mm_from_mm_per_day_and_flux_units():
    pr = [[3, 4, 20, 0, 0], [0, 0, 1, 2, 3]]
    res = indicators.compute("max_1day_precipitation", cube(pr=("mm/d", pr)))
    assert res.sel(site="a").item() == pytest.approx(20) and res.attrs["units"] == "mm"
    flux = cube(pr=("kg m-2 s-1", np.array(pr) / 86400.0))
    np.testing.assert_allclose(indicators.compute("max_1day_precipitation", flux).values, res.values)


def test_fire_danger_class_uses_effis_limits_upper_bound_excluded():
    fwi = [[0, 5.19, 5.2, 11.2, 21.3, 38.0, 50.0, np.nan]]
    ds = cube(fwi=("1", fwi))
    res = indicators.compute("fire_danger_class", ds)
    assert res.values[0, :7].tolist() == [0, 0, 1, 2, 3, 4, 5]
    assert np.isnan(res.values[0, 7])
    levels = indicators.classify("fire_danger_class", res)
    assert levels.values[0].tolist() == [0, 0, 1, 2, 3, 4, 4, -1]


def test_worst_material_decides_and_is_named():
    base = indicators.get("hot_days")
    spec = indicators.IndicatorSpec(
        **{
            **base.__dict__,
            "id": "test_material_hot_days",
            "materials": ("marble", "timber"),
            "material_levels": {
                "marble": Thresholds(low=1, moderate=2, high=3, severe=4),
                "timber": Thresholds(low=10, moderate=20, high=30, severe=40),
            },
        }
    )
    codes, decider = indicators.classify_sites(
        spec,
        np.array([[3.0], [3.0], [3.0]]),
        [["marble", "timber"], ["timber"], ["granite"]],
        [None, None, None],
    )
    assert codes[:, 0].tolist() == [3, 0, 0]
    assert decider[0, 0] == spec.materials.index("marble")
    assert decider[1, 0] == spec.materials.index("timber")
    assert decider[2, 0] == -1


def test_describe_names_categories_and_keeps_units():
    flood = indicators.get("flood_return_period")
    assert isinstance(flood.levels, indicators.CategoryLevels)
    code, name = next(iter(flood.levels.categories.items()))
    assert flood.describe(float(code)) == f"{name} (category {code})"
    rx5 = indicators.get("max_5day_precipitation")
    assert rx5.describe(210.9114) == "210.9 mm"
    assert rx5.describe(None) == rx5.describe(float("nan")) == "no data"
    dimensionless = next(
        s for s in indicators.catalog() if s.units == "1" and isinstance(s.levels, indicators.Thresholds)
    )
    assert dimensionless.describe(0.2394) == "0.2394"
