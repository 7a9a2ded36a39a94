"""`indicators.units.convert_units_to` gives xclim's answers, with the unit parsing cached."""

import numpy as np
import pytest
import xarray as xr
from pint.errors import DimensionalityError
from xclim.core.units import convert_units_to as xclim_convert

from indicators.units import convert_units_to


def _array(values, units: str, **attrs) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype="float32"), dims="time", attrs={"units": units, **attrs})


@pytest.mark.parametrize(
    ("value", "target", "context"),
    [
        ("30 degC", "K", None),
        ("0 degC", "degC", None),
        ("1 mm/d", "kg m-2 s-1", "hydro"),
        ("75.3 %", "1", None),
        ("15 K", "degC", None),
    ],
)
def test_quantities_equal_xclim(value, target, context):
    for _ in range(2):  # the second answer comes from the cache
        assert convert_units_to(value, target, context=context) == xclim_convert(
            value, target, context=context
        )
    tas = _array([280.0], target)
    assert convert_units_to(value, tas, context=context) == xclim_convert(value, tas, context=context)


def test_an_array_in_the_target_units_comes_back_as_it_is():
    pr = _array([0.0, 1.5, 30.0], "mm d-1")
    assert convert_units_to(pr, "mm/d", context="hydro") is pr
    expected = xclim_convert(pr, "mm/d", context="hydro")
    np.testing.assert_array_equal(convert_units_to(pr, "mm/d", context="hydro").values, expected.values)
    tasmax = _array([280.0], "K")
    assert convert_units_to(tasmax, _array([270.0], "K")) is tasmax  # a DataArray target in the same units


@pytest.mark.parametrize(
    ("source", "target", "context"),
    [
        (_array([263.15, 273.15, 303.15], "K"), "degC", None),
        (_array([1e-5, 0.0, 3e-4], "kg m-2 s-1", standard_name="precipitation_flux"), "mm/d", "hydro"),
        (_array([0.5, 0.9], "1"), "%", None),
        (_array([10.0, 20.0], "degC"), _array([0.0], "K"), None),
        (_array([1e-5], "kg m-2 s-1", standard_name="precipitation_flux"), "mm/d", "infer"),
    ],
)
def test_conversions_are_xclims(source, target, context):
    got = convert_units_to(source, target, context=context)
    expected = xclim_convert(source, target, context=context)
    xr.testing.assert_identical(got, expected)


def test_a_temperature_difference_keeps_its_metadata():
    """`units_metadata` is part of the units: a difference in degC converts to K without the offset."""
    spread = _array([15.0], "degC", units_metadata="temperature: difference")
    assert convert_units_to(spread, "K") is not spread
    assert convert_units_to(spread, "K").values[0] == pytest.approx(15.0)
    assert convert_units_to(_array([15.0], "degC"), "K").values[0] == pytest.approx(288.15)


def test_bad_units_raise_as_xclim_raises():
    with pytest.raises(DimensionalityError):
        convert_units_to("3 parsecs/fortnight", "degC")
    with pytest.raises(DimensionalityError):
        convert_units_to(_array([1.0], "m"), "degC")
    with pytest.raises(DimensionalityError):
        convert_units_to(_array([1.0], "m"), _array([1.0], "K"))
