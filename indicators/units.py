"""xclim's `convert_units_to` with its unit parsing done once per pair of units.

xclim parses both units with pint on every call (about 0.1 ms each), which is most of the fixed cost of
an indicator over a small cube. Here the parsed answers are cached by the units' text:

- a threshold such as "30 degC" converted to a unit is a number, cached per (text, unit, context);
- an array whose units equal the target's (pint-equal, e.g. "mm d-1" and "mm/d") comes back as it is,
  with its own units text, instead of as a copy relabelled with the target's text;
- every other case (a real conversion, inferred contexts, CF conversions, pint objects) is xclim's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import xarray as xr
from xclim.core.units import convert_units_to as _xclim_convert
from xclim.core.units import units2pint

__all__ = ["convert_units_to"]

UnitsKey = tuple[str, str | None]


def _units_key(value: Any) -> UnitsKey | None:
    """(units, units_metadata) of a unit string or of a DataArray's attrs; None when neither applies."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, xr.DataArray):
        units = value.attrs.get("units")
        metadata = value.attrs.get("units_metadata")
        if isinstance(units, str) and (metadata is None or isinstance(metadata, str)):
            return units, metadata
    return None


def _as_target(key: UnitsKey) -> str | dict[str, str]:
    units, metadata = key
    return units if metadata is None else {"units": units, "units_metadata": metadata}


@lru_cache(maxsize=512)
def _same_units(source: UnitsKey, target: UnitsKey) -> bool:
    return units2pint(_as_target(source)) == units2pint(_as_target(target))


@lru_cache(maxsize=512)
def _quantity(value: str, target: UnitsKey, context: str | None) -> float:
    return _xclim_convert(value, _as_target(target), context=context)


def convert_units_to(source: Any, target: Any, context: str | None = None) -> Any:
    """`source` (a quantity string or a DataArray) in the units of `target` (a unit string or a DataArray);
    same arguments and results as `xclim.core.units.convert_units_to`, with parsing cached."""
    target_key = _units_key(target)
    if target_key is None or context == "infer":
        return _xclim_convert(source, target, context=context)
    if isinstance(source, str):
        return _quantity(source, target_key, context)
    source_key = _units_key(source)  # a str source has returned above
    if source_key is not None and _same_units(source_key, target_key):
        return source
    return _xclim_convert(source, target, context=context)
