"""Climate indicators of heritage risk, computed from daily (or hourly) ERA5-Land-like variables.

Where xclim has the index, xclim computes it: these functions only fix the heritage definition
(thresholds, operators, frequency) and declare it. What xclim lacks (wet frost, salt crystallisation
cycles, time of wetness, the Scheffer index, the R95p amount) is written here with numpy/xarray
operations over the whole (site, time) cube at once, never one site at a time.

Missing data rule (every indicator of this module): a NaN time step is masked, never counted, so a NaN
day is never a freeze–thaw, wet-frost, hot or heat-wave day and adds nothing to a total; a period with
no valid time step is NaN, not 0 (xclim counts return 0 there: `_mask_empty_periods` fixes that). A time
step is valid when every input of the indicator is valid on it. A partly missing period counts its valid
steps only.

Hourly versus daily: counts from hourly data can exceed daily counts several-fold (Godts et al. 2021;
Brimblecombe & Richards 2023), so the indicators that accept both say in `attrs["method"]` which
resolution and algorithm produced the values.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import xclim.indices as xci
from xclim.core.units import ensure_delta, str2pint, units, units2pint
from xclim.indices import generic

from indicators import kernels
from indicators.core import IndicatorSpec, Parameter, Reference, Thresholds, register
from indicators.errors import IndicatorInputError
from indicators.kernels import days_in_runs
from indicators.units import convert_units_to

POROUS = ("limestone", "marble", "sandstone", "granite", "brick", "earthen", "plaster")
STONE = ("limestone", "marble", "sandstone", "granite")
METALS = ("metal", "carbon_steel", "zinc", "copper", "bronze")

XCLIM = Reference("Bourgault et al. 2023, xclim: xarray-based climate data analytics, JOSS 8(85):5415")
GROSSI_2007 = Reference(
    "Grossi C.M., Brimblecombe P., Harris I. 2007, Predicting long term freeze–thaw risks on "
    "Europe built heritage and archaeological sites in a changing climate, "
    "Sci. Total Environ. 377:273–281",
    "definition of a freeze–thaw cycle from daily Tmax/Tmin",
)
NOAHS_ARK = Reference(
    "Sabbioni C., Brimblecombe P., Cassar M. (eds) 2010, The Atlas of Climate Change Impact on European "
    "Cultural Heritage: Scientific Analysis and Management Strategies (Noah's Ark project), Anthem Press",
    "heritage climate parameters computed from daily data (wet frost, salt crystallisation, thermal "
    "stress); the atlas pages themselves were not consulted",
)
ETCCDI = Reference(
    "Zhang X. et al. 2011, Indices for monitoring changes in extremes (ETCCDI), WIREs Clim. Change 2:851–870",
    "Rx1day, Rx5day, R95p, R95pTOT and TR (tropical nights, TN > 20 °C) definitions",
)
TEMPORAL_RESOLUTION = Reference(
    "Brimblecombe P., Richards J. 2023, Temporal resolution of climate pressures on façades in Oxford "
    "1815–2021, Theor. Appl. Climatol., doi:10.1007/s00704-023-04498-x",
    "heritage parameters need daily data; hourly and daily counts differ",
)

ANNUAL = "YS"
MONTHLY = "MS"


# --- shared helpers -------------------------------------------------------------------------------


def _mask_empty_periods(out: xr.DataArray, freq: str, *inputs: xr.DataArray) -> xr.DataArray:
    """`out` with NaN in every period where no time step has all `inputs` valid (xclim would say 0)."""
    valid = inputs[0].notnull()
    for da in inputs[1:]:
        valid = valid & da.notnull()
    has_data = valid.resample(time=freq).sum() > 0
    return out.where(has_data).assign_attrs(out.attrs)


#: Bytes of each input a kernel call reduces at once: big enough that a call's fixed cost (a thread
#: pool task, the slicing) is small beside its arithmetic, small enough for its temporaries to stay in
#: cache (a fresh 10,000-site × 30-year temporary costs more in page faults than the arithmetic).
_BLOCK_BYTES = 8 * 2**20


#: Threads reducing blocks at once: the numba kernels release the GIL, so the blocks of one call run on
#: every core this process may use (xclim and numpy reductions run on one).
_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor | None:
    """This process's pool of kernel threads (a forked child never inherits its parent's threads)."""
    if _THREADS < 2:
        return None
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS.clear()
        _POOLS[pid] = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="hm-kernel")
    return _POOLS[pid]


def _block_rows(flat: np.ndarray) -> int:
    """Rows of `flat` (sites × time) in one block of about `_BLOCK_BYTES`: at least 16."""
    return max(16, _BLOCK_BYTES // max(flat.shape[-1] * flat.itemsize, 1))


def _blockwise(*arrays: np.ndarray, func: Any, n_out: int, **kwargs: Any) -> np.ndarray:
    """`func(*blocks, **kwargs)` over blocks of about `_BLOCK_BYTES` per input (leading axes flattened)
    → (..., n_out), the blocks spread over `_THREADS` threads."""
    lead = arrays[0].shape[:-1]
    flat = [np.asarray(a).reshape(-1, a.shape[-1]) for a in arrays]
    rows = flat[0].shape[0]
    size = _block_rows(flat[0])
    firsts = range(0, rows, size)  # blocks of sites, never single sites

    def block(first: int) -> np.ndarray:
        return func(*(a[first : first + size] for a in flat), **kwargs)

    pool = _pool() if len(firsts) > 1 else None
    parts = pool.map(block, firsts) if pool is not None else map(block, firsts)
    out: np.ndarray | None = None
    for first, part in zip(firsts, parts, strict=True):
        if out is None:
            out = np.empty((rows, n_out), dtype=part.dtype)
        out[first : first + size] = part
    if out is None:
        out = np.empty((0, n_out))
    return out.reshape(*lead, n_out)


#: numpy units of the calendar periods whose labels `_period_labels` computes without pandas.
_CALENDAR_UNITS = {"MS": "M", "YS": "Y"}


def _period_labels(time: xr.DataArray, freq: str) -> np.ndarray:
    """The period starts `time.resample(time=freq)` labels: every month or year from the first step's to
    the last's (empty ones included) by numpy; other frequencies and cftime calendars by (x)pandas."""
    values = time.values
    unit = _CALENDAR_UNITS.get(freq)
    if values.dtype.kind == "M" and unit and values.size:
        first, last = values.min().astype(f"datetime64[{unit}]"), values.max().astype(f"datetime64[{unit}]")
        return np.arange(first, last + 1).astype(values.dtype)
    index = time.to_index()
    if isinstance(index, pd.DatetimeIndex):  # pandas finds the labels ~100x faster than xarray's groupby
        return pd.Series(np.zeros(index.size), index=index).resample(freq).count().index.values
    return time.resample(time=freq).count()["time"].values  # cftime calendars


def _per_period(func: Any, freq: str, *inputs: xr.DataArray, units: str, **kwargs: Any) -> xr.DataArray:
    """`func(*values, starts=..., **kwargs)` — a kernel reducing (sites, time) arrays to (sites, periods) —
    applied to `inputs` (same dims) and labelled like `inputs[0].resample(time=freq)`, in `units`.

    The period starts are computed once from the time axis; a dask-backed input is reduced chunk by chunk
    over its non-time dims (time must be, or is made, one chunk). The result is a new array with its own
    attrs (the first input's, with `units`).
    """
    time = inputs[0]["time"]
    labels = _period_labels(time, freq)
    starts = kernels.period_starts(time.values, labels)
    if _in_memory_alike(inputs):
        return _per_period_in_memory(func, labels, starts, inputs, kwargs, units)
    out = xr.apply_ufunc(
        _blockwise,
        *inputs,
        kwargs={"func": func, "n_out": labels.size, "starts": starts, **kwargs},
        input_core_dims=[["time"]] * len(inputs),
        output_core_dims=[["period"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"period": labels.size}, "allow_rechunk": True},
    )
    out = out.rename(period="time")
    # the new time labels set on the variable's coordinate directly: `assign_coords` would align and copy
    # every other coordinate, half the fixed cost of a call
    out.coords["time"] = xr.Variable("time", labels)
    out = out.transpose(*inputs[0].dims)
    out.attrs = _output_attrs(inputs[0], units)
    return out


#: Attributes of an input that describe its quantity, not a count or total made from it.
_INPUT_QUANTITY_ATTRS = ("standard_name", "units_metadata")


def _output_attrs(first: xr.DataArray, units: str) -> dict[str, Any]:
    """The attrs of a period output: the first input's, without those naming its quantity, in `units`."""
    attrs = {k: v for k, v in first.attrs.items() if k not in _INPUT_QUANTITY_ATTRS}
    attrs["units"] = units
    return attrs


def _in_memory_alike(inputs: tuple[xr.DataArray, ...]) -> bool:
    """Whether `inputs` are in-memory arrays on the same dims and indexes (one cube's variables), which
    need no alignment: `_per_period` then labels the kernel's output itself."""
    first = inputs[0]
    if first.chunks is not None or "time" not in first.dims:
        return False
    for other in inputs[1:]:
        if other.chunks is not None or other.dims != first.dims:
            return False
        for dim in first.dims:
            mine, theirs = first.xindexes.get(dim), other.xindexes.get(dim)
            if (mine is None) != (theirs is None) or (mine is not theirs and not mine.equals(theirs)):
                return False
    return True


def _per_period_in_memory(
    func: Any,
    labels: np.ndarray,
    starts: np.ndarray,
    inputs: tuple[xr.DataArray, ...],
    kwargs: dict,
    units: str,
) -> xr.DataArray:
    """`_per_period` of in-memory inputs: the kernel over the arrays, labelled as `apply_ufunc` labels
    them (the inputs' coordinates without time, the period starts, the first input's name and attrs),
    without its alignment and coordinate merging (most of a call's fixed cost)."""
    first = inputs[0]
    dims = tuple(d for d in first.dims if d != "time")
    arrays = [a.variable.transpose(*dims, "time").values for a in inputs]  # views when time is last
    values = _blockwise(*arrays, func=func, n_out=labels.size, starts=starts, **kwargs)
    out = _labelled(values, (*dims, "time"), inputs, labels, _output_attrs(first, units))
    return out if out.dims == first.dims else out.transpose(*first.dims)


def _labelled(
    values: np.ndarray, dims: tuple, inputs: tuple[xr.DataArray, ...], labels: np.ndarray, attrs: dict
) -> xr.DataArray:
    """A DataArray of `values` with the inputs' coordinates that lack time (first input first: shallow
    copies, so that editing the output's coordinates leaves the inputs' alone), their indexes reused as
    they are, and a new time index of `labels`.

    Built directly from the parts when xarray allows it: the public constructor checks and copies every
    coordinate again, which costs ten times the rest of the labelling.
    """
    variables: dict[str, xr.Variable] = {}
    indexes: dict[str, Any] = {}
    for da in inputs:
        da_indexes = da.xindexes
        for name, variable in da.coords.variables.items():
            if name not in variables and "time" not in variable.dims:
                variables[name] = variable.copy(deep=False)
                if name in da_indexes:
                    indexes[name] = da_indexes[name]
    time_index = xr.indexes.PandasIndex(pd.Index(labels), "time")
    variables.update(time_index.create_variables())
    indexes["time"] = time_index
    data = xr.Variable(dims, values, attrs=attrs)
    construct = getattr(xr.DataArray, "_construct_direct", None)
    if construct is not None:
        return construct(data, variables, inputs[0].name, indexes)
    return xr.DataArray(data, coords=xr.Coordinates(variables, indexes=indexes), name=inputs[0].name)


def _step_hours(*arrays: xr.DataArray) -> float:
    """Hours between time steps (the median step), the same for every input; 24 for a single step."""
    steps = set()
    measured: list[Any] = []  # the time indexes already measured (one cube's inputs share one)
    for da in arrays:
        index = da.xindexes.get("time")
        if index is not None and any(index is other for other in measured):
            continue
        measured.append(index)
        time = da["time"].values
        if time.size < 2:
            steps.add(24.0)
            continue
        diffs = np.diff(time)
        lo, hi = diffs.min(), diffs.max()  # a regular axis (the usual case) needs no median
        steps.add(float((lo if lo == hi else np.median(diffs)) / np.timedelta64(1, "h")))
    if len(steps) > 1:
        raise IndicatorInputError(f"inputs are on different time steps ({sorted(steps)} hours)")
    step = steps.pop()
    if step > 24.0:
        raise IndicatorInputError(f"needs daily or sub-daily inputs, got a {step:g}-hour time step")
    return step


def _require_daily(*arrays: xr.DataArray) -> None:
    """Raise unless the inputs are daily (these indices count or sum days)."""
    if _step_hours(*arrays) != 24.0:
        raise IndicatorInputError("needs daily inputs")


@lru_cache(maxsize=64)
def _temperature_difference(value: str) -> float:
    """A temperature difference in K (= °C): '15 K', '15 delta_degC' and also '15 degC' mean 15 K."""
    q = str2pint(value)
    return float(units.Quantity(q.magnitude, units2pint(ensure_delta(str(q.units)))).to("K").magnitude)


def _ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along the last axis (leading NaN stay NaN)."""
    idx = np.where(np.isnan(a), 0, np.arange(a.shape[-1]))
    np.maximum.accumulate(idx, axis=-1, out=idx)
    return np.take_along_axis(a, idx, axis=-1)


def _nanquantile_type8(a: np.ndarray, q: float) -> np.ndarray:
    """Hyndman & Fan type 8 quantile of the valid values along the last axis, NaN where there are none.

    numpy's `nanquantile(..., method="median_unbiased")` in one vectorised step (numpy loops over rows).
    """
    x = np.sort(a, axis=-1)  # NaN sort last
    n = np.sum(~np.isnan(a), axis=-1)
    last = np.maximum(n - 1, 0)
    h = np.clip((n + 1.0 / 3.0) * q + 1.0 / 3.0 - 1.0, 0, last)
    lo = np.floor(h).astype(int)
    t = h - lo
    below = np.take_along_axis(x, lo[..., None], axis=-1)[..., 0]
    above = np.take_along_axis(x, np.minimum(lo + 1, last)[..., None], axis=-1)[..., 0]
    diff = above - below
    out = np.where(t >= 0.5, above - diff * (1 - t), below + diff * t)  # numpy's _lerp
    return np.where(n > 0, out, np.nan)


def _state_changes(x: np.ndarray, upper: float, lower: float) -> np.ndarray:
    """1 where the series crosses a level, 0 elsewhere (last axis is time).

    The state is "above" where x >= upper and "below" where x < lower; between the two (the hysteresis
    band) and on NaN steps the previous state persists. A crossing is a change of state, counted on the
    first valid step of the new state (after a gap, on the first valid step after it).
    """
    state = np.where(x >= upper, 1.0, np.where(x < lower, -1.0, np.nan))
    filled = _ffill(state)
    prev = np.concatenate([np.full((*filled.shape[:-1], 1), np.nan), filled[..., :-1]], axis=-1)
    return ((filled != prev) & ~np.isnan(prev) & ~np.isnan(state)).astype(float)


def _ymd(t: Any) -> int:
    """A date (pandas Timestamp, datetime or cftime object of any calendar) as the integer YYYYMMDD."""
    return t.year * 10_000 + t.month * 100 + t.day


def _day_text(t: Any) -> str:
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}"


def _covers(time: pd.Index, first_day: str, last_day: str) -> bool:
    """Whether a time axis (Gregorian or any cftime calendar) covers the days `first_day`..`last_day`
    (YYYY-MM-DD). The end is judged by the day after the last step, so a 360-day year ending on 30
    December covers "…-12-31"."""
    first, last = time.min(), time.max()
    start, end = (int(d.replace("-", "")) for d in (first_day, last_day))
    return _ymd(first) <= start and _ymd(last + pd.Timedelta(days=1)) > end


def _baseline(time: pd.Index, start: int, end: int) -> tuple[slice | None, str]:
    """The baseline years [start, end] if the record covers them, else None (use the whole record).

    Calendar-agnostic: `time` may be a DatetimeIndex or a CFTimeIndex (360_day, noleap, …)."""
    if _covers(time, f"{start:04d}-01-01", f"{end:04d}-12-31"):
        return slice(f"{start:04d}", f"{end:04d}"), f"{start}-01-01/{end}-12-31"
    whole = f"whole record {_day_text(time.min())}/{_day_text(time.max())}"
    return None, f"{whole} (the baseline {start}–{end} is not covered by the data)"


# --- frost ----------------------------------------------------------------------------------------


def freeze_thaw_cycles(
    tasmax: xr.DataArray, tasmin: xr.DataArray, thresh: str = "0 degC", freq: str = "YS"
) -> xr.DataArray:
    """Days per period on which air temperature crosses `thresh`: tasmax > thresh and tasmin <= thresh.

    The count of xclim's `daily_freezethaw_cycles` (`multiday_temperature_swing` with window 1, op "sum"),
    computed with the vectorised kernel `indicators.kernels.count_per_period` (checked against xclim's
    `count_level_crossings` in the tests).
    """
    tmax = convert_units_to(tasmax, tasmin)  # xclim's units handling: tasmax and thresh in tasmin's units
    level = convert_units_to(thresh, tasmin)
    return _per_period(_crossing_days, freq, tasmin, tmax, units="days", thresh=level)


def _crossing_days(low: np.ndarray, high: np.ndarray, starts: np.ndarray, thresh: float) -> np.ndarray:
    """Days per period with low <= thresh < high (NaN when no day has both valid)."""
    return kernels.crossing_days(low, high, starts, thresh)


def wet_frost_days(
    tasmin: xr.DataArray,
    pr: xr.DataArray,
    thresh: str = "0 degC",
    pr_thresh: str = "1 mm/d",
    window: int = 2,
    freq: str = "YS",
) -> xr.DataArray:
    """Wet-frost days: tasmin <= `thresh` on a day when, that day or on one of the `window` − 1 days
    before, precipitation was >= `pr_thresh` (window 2: rain the same or the previous day)."""
    if window < 1:
        raise IndicatorInputError("window must be at least 1 day")
    _require_daily(tasmin, pr)
    tmin = convert_units_to(tasmin, "degC")
    daily = convert_units_to(pr, "mm/d", context="hydro")
    return _per_period(
        _wet_frost_days,
        freq,
        tmin,
        daily,
        units="days",
        thresh=convert_units_to(thresh, "degC"),
        pr_thresh=convert_units_to(pr_thresh, "mm/d", context="hydro"),
        window=int(window),
    )


def _wet_frost_days(
    tmin: np.ndarray, pr: np.ndarray, starts: np.ndarray, thresh: float, pr_thresh: float, window: int
) -> np.ndarray:
    """Frost days with rain on the day or the `window` − 1 days before (a NaN rain day is not wet).

    The rain window looks back across period boundaries, as a rolling window over the whole series does.
    """
    return kernels.wet_frost_days(tmin, pr, starts, thresh, pr_thresh, window)


# --- humidity -------------------------------------------------------------------------------------


def salt_crystallisation_cycles(
    hurs: xr.DataArray,
    thresh: str = "75.3 %",
    hysteresis: str = "0 %",
    freq: str = "YS",
    hurs_min: xr.DataArray | None = None,
    hurs_max: xr.DataArray | None = None,
) -> xr.DataArray:
    """Crystallisation–dissolution cycles of a salt: half the crossings of RH through its deliquescence RH.

    `attrs["method"]` says which series was used:

    - "hourly": `hurs` on a sub-daily time axis, crossings of that series;
    - "daily proxy (days whose min/max RH straddle the threshold)": daily `hurs_min` and `hurs_max` given,
      a day with min < `thresh` <= max is two crossings, one cycle (xclim `count_level_crossings`);
    - "daily proxy (crossings of the daily mean RH)": otherwise (Grossi et al. 2011).

    RH at or above `thresh` + `hysteresis` is "above" (salt dissolved), below `thresh` − `hysteresis` is
    "below" (crystallised); inside the band the previous state persists (not used by the min/max proxy).
    `indicators.compute` passes only the declared input `hurs`; `hurs_min`/`hurs_max` are for direct calls.
    """
    step = _step_hours(hurs)
    level = convert_units_to(thresh, "%")
    band = convert_units_to(hysteresis, "%")
    if step < 24.0 or hurs_min is None or hurs_max is None:
        rh = convert_units_to(hurs, "%")
        crossings = xr.apply_ufunc(
            _state_changes,
            rh,
            kwargs={"upper": level + band, "lower": level - band},
            input_core_dims=[["time"]],
            output_core_dims=[["time"]],
        ).transpose(*rh.dims)
        out = _mask_empty_periods(crossings.resample(time=freq).sum() / 2.0, freq, hurs)
        method = "hourly" if step < 24.0 else "daily proxy (crossings of the daily mean RH)"
    else:
        straddles = generic.count_level_crossings(hurs_min, hurs_max, thresh, freq, op_low="<", op_high=">=")
        out = _mask_empty_periods(straddles.astype(float), freq, hurs_min, hurs_max)
        method = "daily proxy (days whose min/max RH straddle the threshold)"
    return out.assign_attrs(
        units="cycles",
        method=method,
        time_step_hours=step,
        threshold=f"{level:g} %",
        hysteresis=f"{band:g} %",
    )


def time_of_wetness(
    tas: xr.DataArray,
    hurs: xr.DataArray,
    rh_thresh: str = "80 %",
    thresh: str = "0 degC",
    freq: str = "YS",
) -> xr.DataArray:
    """Time of wetness (ISO 9223): hours per period with RH > `rh_thresh` and T > `thresh`.

    From hourly (sub-daily) inputs each wet step counts its length in hours (`method` = "hourly"). From
    daily inputs it is an estimate: 24 h for each day whose mean RH and mean T pass both thresholds
    (`method` = "daily estimate ..."); it ignores the diurnal cycle of RH, so it is not the ISO quantity.
    """
    step = _step_hours(tas, hurs)
    rh = convert_units_to(hurs, "%")
    t = convert_units_to(tas, "degC")
    wet = (rh > convert_units_to(rh_thresh, "%")) & (t > convert_units_to(thresh, "degC"))
    out = _mask_empty_periods(wet.resample(time=freq).sum() * step, freq, tas, hurs)
    method = (
        "hourly"
        if step < 24.0
        else "daily estimate: 24 h per day whose daily mean RH and mean T pass the thresholds"
    )
    return out.assign_attrs(units="h", method=method, time_step_hours=step)


# --- precipitation --------------------------------------------------------------------------------


def max_1day_precipitation(pr: xr.DataArray, freq: str = "MS") -> xr.DataArray:
    """Rx1day: the largest one-day precipitation total of each period, in mm."""
    daily = convert_units_to(pr, "mm/d", context="hydro")
    # xclim's max_1day_precipitation_amount, vectorised; one day's total in mm
    return _per_period(_period_max, freq, daily, units="mm")


def _period_max(values: np.ndarray, starts: np.ndarray, window: int = 1) -> np.ndarray:
    """Largest `window`-step total of each period (windows ending in it; a window with a NaN is no total)."""
    return kernels.max_per_period(values, starts, window)


def max_5day_precipitation(pr: xr.DataArray, freq: str = "MS") -> xr.DataArray:
    """Rx5day: the largest precipitation total over 5 consecutive days ending in each period, in mm.

    A 5-day window with a missing day is not a total (xclim sums with skipna=False).
    """
    daily = convert_units_to(pr, "mm/d", context="hydro")  # × 1 day: the 5-day sum is in mm
    return _per_period(_period_max, freq, daily, units="mm", window=5)  # max_n_day_precipitation_amount


def _wet_day_threshold(
    pr: xr.DataArray, wet_thresh: str, percentile: float, baseline_start: int, baseline_end: int
) -> tuple[xr.DataArray, xr.DataArray, str]:
    """Daily pr in mm/d and each site's `percentile` of wet-day pr in the baseline (or whole record).

    The percentile is the Hyndman & Fan type 8 estimate (median-unbiased, as climdex and xclim's
    `percentile_doy` use) of the wet days (pr >= `wet_thresh`) only.
    """
    _require_daily(pr)
    daily = convert_units_to(pr, "mm/d", context="hydro")
    wet = convert_units_to(wet_thresh, "mm/d", context="hydro")
    period, baseline = _baseline(daily.indexes["time"], baseline_start, baseline_end)
    base = daily if period is None else daily.sel(time=period)
    per = xr.apply_ufunc(
        _nanquantile_type8, base.where(base >= wet), percentile / 100.0, input_core_dims=[["time"], []]
    )
    return daily, per.assign_attrs(units="mm/d"), baseline


def very_wet_days(
    pr: xr.DataArray,
    wet_thresh: str = "1 mm/d",
    percentile: float = 95.0,
    baseline_start: int = 1991,
    baseline_end: int = 2020,
    freq: str = "YS",
) -> xr.DataArray:
    """R95p days: days with pr above the site's own baseline `percentile` of wet-day precipitation.

    When the data do not cover the baseline years, the whole available record is the baseline
    (`attrs["baseline"]` says which).
    """
    daily, per, baseline = _wet_day_threshold(pr, wet_thresh, percentile, baseline_start, baseline_end)
    out = xci.days_over_precip_thresh(daily, per, thresh=wet_thresh, freq=freq, op=">")
    return _mask_empty_periods(out, freq, pr).assign_attrs(units="days", baseline=baseline)


def very_wet_days_total(
    pr: xr.DataArray,
    wet_thresh: str = "1 mm/d",
    percentile: float = 95.0,
    baseline_start: int = 1991,
    baseline_end: int = 2020,
    freq: str = "YS",
) -> xr.DataArray:
    """R95pTOT: precipitation (mm) of the days counted by `very_wet_days` (pr > max(p95, wet_thresh))."""
    daily, per, baseline = _wet_day_threshold(pr, wet_thresh, percentile, baseline_start, baseline_end)
    wet = convert_units_to(wet_thresh, "mm/d", context="hydro")
    over = daily.where(daily > per.where(per > wet, wet), 0.0)  # xclim's rule: the larger of the two
    out = over.resample(time=freq).sum()  # mm/d over days: mm
    return _mask_empty_periods(out, freq, pr).assign_attrs(units="mm", baseline=baseline)


def drought_spi3(
    pr: xr.DataArray,
    window: int = 3,
    cal_start: str = "1991-01-01",
    cal_end: str = "2020-12-31",
) -> xr.DataArray:
    """Standardized Precipitation Index over `window` months, monthly (xclim, gamma distribution).

    The gamma parameters are fitted per calendar month with Thom's (1958) approximation of the maximum
    likelihood estimates and loc = 0 (xclim `method="APP"`, `floc=0`: the SPI of McKee et al. 1993 and of
    the `climate_indices` package, and vectorised, where xclim's "ML" loops a numerical fit per site).
    xclim's fit and transform loop over sites; `kernels.spi_gamma_app` computes the same for all sites at
    once (checked against xclim in the tests). When the data do not cover the calibration period, the whole
    record calibrates (`attrs["calibration"]`).
    """
    time = pr.indexes["time"]  # a DatetimeIndex or a CFTimeIndex: compared as YYYYMMDD integers
    months = pr.resample(time=MONTHLY).mean()
    if months.sizes["time"] < max(window, 3):  # too short to fit a distribution: no SPI, not zero
        return xr.full_like(months, np.nan).assign_attrs(units="1", calibration="none: record too short")
    if _covers(time, cal_start, cal_end):
        cal = {"cal_start": cal_start, "cal_end": cal_end}
        calibration = f"{cal_start}/{cal_end}"
    else:
        cal = {"cal_start": None, "cal_end": None}
        calibration = (
            f"whole record {_day_text(time.min())}/{_day_text(time.max())} "
            f"(the calibration period {cal_start}/{cal_end} is not covered by the data)"
        )
    # xclim's preprocessing (monthly means, then a rolling mean with skipna=False), then its fit and
    # transform vectorised over sites (`kernels.spi_gamma_app`; scale-free: pr in any precipitation units)
    rolled = months.rolling(time=window).mean(skipna=False)
    calibrate = np.ones(rolled.sizes["time"], dtype=bool)
    if cal["cal_start"] is not None:
        stamps = np.array([_ymd(t) for t in rolled.indexes["time"]])
        first, last = (int(d.replace("-", "")) for d in (cal_start, cal_end))
        calibrate = (stamps >= first) & (stamps <= last)
    out = xr.apply_ufunc(
        kernels.spi_gamma_app,
        rolled,
        kwargs={"month": rolled["time"].dt.month.values, "calibrate": calibrate},
        input_core_dims=[["time"]],
        output_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*rolled.dims)
    return out.assign_attrs(
        units="1",
        calibration=calibration,
        method=f"SPI-{window}: monthly totals, gamma per calendar month (Thom 1958 approximation, loc 0)",
    )


def scheffer_decay_index(tas: xr.DataArray, pr: xr.DataArray, wet_thresh: str = "0.25 mm/d") -> xr.DataArray:
    """Scheffer (1971) climate index of timber decay above ground, annual, metric form.

    CI = Σ over the months of the year of (T − 2)(D − 3) / 16.7, with T the monthly mean of daily mean
    temperature (°C) and D the days of the month with precipitation >= `wet_thresh`; a negative factor is
    set to 0. A month without any valid day adds nothing; a year without any is NaN.
    """
    _require_daily(tas, pr)
    t = convert_units_to(xci.tg_mean(tas, freq=MONTHLY), "degC")
    d = xci.wetdays(pr, thresh=wet_thresh, freq=MONTHLY, op=">=")
    monthly = (t - 2.0).clip(min=0.0) * (d - 3.0).clip(min=0.0) / 16.7
    out = monthly.resample(time=ANNUAL).sum()
    return _mask_empty_periods(out, ANNUAL, tas, pr).assign_attrs(units="1")


# --- heat -----------------------------------------------------------------------------------------


def hot_days(tasmax: xr.DataArray, thresh: str = "30 degC", freq: str = "MS") -> xr.DataArray:
    """Days per period with daily maximum temperature above `thresh`."""
    level = convert_units_to(thresh, tasmax)  # xclim's tx_days_above: the threshold in the data's units
    return _per_period(_days_above, freq, tasmax, units="days", thresh=level)


def _days_above(values: np.ndarray, starts: np.ndarray, thresh: float, op: str = ">") -> np.ndarray:
    """Days per period with values `op` thresh (NaN when no day is valid)."""
    return kernels.days_above(values, starts, thresh, op)


def heat_wave_days(
    tasmin: xr.DataArray,
    tasmax: xr.DataArray,
    thresh_tasmin: str = "20 degC",
    thresh_tasmax: str = "30 degC",
    window: int = 3,
    freq: str = "YS",
) -> xr.DataArray:
    """Days in heat waves: runs of at least `window` days with tasmin > `thresh_tasmin` and tasmax >
    `thresh_tasmax`, a run cut at the period boundary — xclim's `heat_wave_total_length`, computed by a
    vectorised kernel (`indicators.kernels.days_in_runs`) that the tests check against xclim."""
    _require_daily(tasmin, tasmax)
    hot = (convert_units_to(tasmin, "degC") > convert_units_to(thresh_tasmin, "degC")) & (
        convert_units_to(tasmax, "degC") > convert_units_to(thresh_tasmax, "degC")
    )
    labels = hot.time.resample(time=freq).first().time  # period starts
    period = np.searchsorted(labels.values, hot.time.values, side="right")
    in_run = xr.apply_ufunc(
        days_in_runs,
        hot,
        kwargs={"period": period, "window": int(window)},
        input_core_dims=[["time"]],
        output_core_dims=[["time"]],
    )
    out = in_run.transpose(*hot.dims).astype(float).resample(time=freq).sum()
    return _mask_empty_periods(out, freq, tasmin, tasmax).assign_attrs(units="days")


def thermal_stress_days(
    tasmax: xr.DataArray, tasmin: xr.DataArray, thresh: str = "15 K", freq: str = "YS"
) -> xr.DataArray:
    """Days with a daily temperature range tasmax − tasmin >= `thresh` (a temperature difference)."""
    _require_daily(tasmax, tasmin)
    tmax, tmin = convert_units_to(tasmax, "degC"), convert_units_to(tasmin, "degC")
    return _per_period(_range_days, freq, tmax, tmin, units="days", thresh=_temperature_difference(thresh))


def _range_days(tmax: np.ndarray, tmin: np.ndarray, starts: np.ndarray, thresh: float) -> np.ndarray:
    """Days per period with tmax − tmin >= thresh (NaN when no day has both valid)."""
    return kernels.range_days(tmax, tmin, starts, thresh)


# --- declarations ---------------------------------------------------------------------------------


def _freq(default: str) -> Parameter:
    return Parameter(default, "", "Period of one value.")


def _spec(**kwargs: Any) -> IndicatorSpec:
    return register(IndicatorSpec(version="1", family="climate", **kwargs))


_spec(
    id="freeze_thaw_cycles",
    title="Freeze–thaw cycles",
    description="Days per year on which the air temperature crosses 0 °C (Tmax > 0 °C and Tmin ≤ 0 °C). "
    "Water freezing in pores expands by about 9 % and cracks porous stone, brick and mortar.",
    units="days",
    inputs=("tasmax", "tasmin"),
    freq="YS",
    func=freeze_thaw_cycles,
    parameters={
        "thresh": Parameter("0 degC", "degC", "Temperature that is crossed.", "Grossi et al. 2007"),
        "freq": _freq("YS"),
    },
    levels=Thresholds(low=10, moderate=30, high=60, severe=90),
    hazard="frost weathering",
    materials=POROUS,
    references=(GROSSI_2007, XCLIM),
    provisional=True,
    provisional_note="Level thresholds (10/30/60/90 days a year) are project defaults, not published.",
)

_spec(
    id="wet_frost_days",
    title="Wet-frost days",
    description="Days per year with a frost (Tmin ≤ 0 °C) on the day of, or the day after, at least 1 mm "
    "of precipitation. Frost is most damaging when pores are wet: rain soaks stone, brick, mortar and "
    "earthen walls, and the next frost freezes that water in the pores.",
    units="days",
    inputs=("tasmin", "pr"),
    freq="YS",
    func=wet_frost_days,
    parameters={
        "thresh": Parameter("0 degC", "degC", "Daily minimum temperature at or below which a day freezes."),
        "pr_thresh": Parameter("1 mm/d", "mm/d", "Daily precipitation from which a day wets the walls."),
        "window": Parameter(
            2, "days", "Days in which the rain may fall: the frost day and the window − 1 days before it."
        ),
        "freq": _freq("YS"),
    },
    levels=Thresholds(low=5, moderate=15, high=30, severe=50),
    hazard="frost weathering",
    materials=POROUS,
    references=(
        GROSSI_2007,
        NOAHS_ARK,
        Reference(
            "Melada J. et al. 2024, Evaluating the freeze–thaw vulnerability of soapstone monuments and "
            "geoheritage sites in the Parco del Paradiso, Chiavenna, Italy, Procedia Struct. Integrity "
            "55:64–71",
            "wet frost days (WFD) listed among the freeze–thaw damage functions for heritage (nomenclature, "
            "p. 65); the thresholds are not given there",
        ),
    ),
    provisional=True,
    provisional_note="The definition (Tmin ≤ 0 °C with ≥ 1 mm of precipitation the same or the previous "
    "day) reconstructs Grossi et al. 2007 / Noah's Ark from secondary descriptions: the exact published "
    "thresholds were not retrieved (SCIENCE.md §2.1c suggests Tmin < −1 °C). Level thresholds "
    "(5/15/30/50 days a year) are project defaults.",
)

_spec(
    id="salt_crystallisation_cycles",
    title="Salt crystallisation cycles (NaCl)",
    description="Cycles per year of relative humidity crossing the deliquescence point of halite (75.3 % "
    "RH): each crossing dissolves or recrystallises the salt in the pores, and repeated crystallisation "
    "pressure powders and flakes stone, brick, plaster and wall paintings. From hourly RH when the cube "
    "is hourly, else from daily RH (attrs['method'] says which).",
    units="cycles",
    inputs=("hurs",),
    freq="YS",
    func=salt_crystallisation_cycles,
    parameters={
        "thresh": Parameter(
            "75.3 %",
            "%",
            "Deliquescence RH of the salt (NaCl at 25 °C; 75.7 % at 10 °C).",
            "Saltwiki, Halite (saltwiki.net); Greenspan 1977",
        ),
        "hysteresis": Parameter(
            "0 %", "%", "Half-width of a band around the threshold inside which the previous state holds."
        ),
        "freq": _freq("YS"),
    },
    levels=Thresholds(low=10, moderate=25, high=50, severe=75),
    hazard="salt weathering",
    materials=POROUS,
    references=(
        Reference(
            "Grossi C.M., Brimblecombe P., Menéndez B., Benavente D., Harris I., Déqué M. 2011, Climatology "
            "of salt transitions and implications for stone weathering, Sci. Total Environ. 409:2577–2585",
            "cycles = half the crossings of the daily mean RH through the deliquescence RH (paper not "
            "re-read here)",
        ),
        Reference(
            "Godts S. et al. 2021, Heritage Science, doi:10.1186/s40494-021-00514-3",
            "NaCl RHeq 75.5 % (65.5 % in a typical salt mixture); counts depend on the measurement interval",
        ),
        NOAHS_ARK,
        TEMPORAL_RESOLUTION,
        XCLIM,
    ),
    provisional=True,
    provisional_note="Level thresholds (10/25/50/75 cycles a year) are project defaults for the daily "
    "proxy; hourly counts are several-fold larger (Godts et al. 2021), so sites computed from hourly data "
    "need their own thresholds.",
)

_spec(
    id="time_of_wetness",
    title="Time of wetness (ISO 9223)",
    description="Hours per year with relative humidity above 80 % and temperature above 0 °C: the time a "
    "metal surface carries an electrolyte film and corrodes (iron, bronze, copper, zinc, lead roofs). From "
    "hourly data when the cube is hourly, else a daily estimate (attrs['method'] says which).",
    units="h",
    inputs=("tas", "hurs"),
    freq="YS",
    func=time_of_wetness,
    parameters={
        "rh_thresh": Parameter("80 %", "%", "RH above which a surface is wet.", "ISO 9223:1992"),
        "thresh": Parameter("0 degC", "degC", "Temperature above which the film is liquid.", "ISO 9223:1992"),
        "freq": _freq("YS"),
    },
    # ISO 9223:1992 classes: τ1 ≤ 10 h, τ2 10–250, τ3 250–2500, τ4 2500–5500, τ5 > 5500 h a year
    levels=Thresholds(low=10, moderate=250, high=2500, severe=5500),
    hazard="metal corrosion",
    materials=METALS,
    references=(
        Reference(
            "ISO 9223:1992, Corrosion of metals and alloys — Corrosivity of atmospheres — Classification",
            "TOW = hours with RH > 80 % and T > 0 °C; categories τ1–τ5 (10/250/2500/5500 h a year): τ1 → "
            "none, τ2 → low, τ3 → moderate, τ4 → high, τ5 → severe. Not checked in the standard itself "
            "(SCIENCE.md §1.3); ISO 9223:2012 keeps TOW only as informative",
        ),
        TEMPORAL_RESOLUTION,
    ),
    provisional=True,
    provisional_note="The τ class limits are quoted from secondary sources, not read in ISO 9223:1992; a "
    "limit itself falls in the upper class here (the standard's classes include their upper bound); the "
    "daily estimate is not the ISO quantity.",
)

_spec(
    id="max_1day_precipitation",
    title="Maximum one-day precipitation (Rx1day)",
    description="Largest daily precipitation of each month: flash floods, runoff erosion, roof overload.",
    units="mm",
    inputs=("pr",),
    freq="MS",
    func=max_1day_precipitation,
    parameters={"freq": _freq("MS")},
    levels=Thresholds(low=20, moderate=40, high=70, severe=100),
    hazard="heavy rain and flooding",
    references=(
        Reference(ETCCDI.citation, "Rx1day definition"),
        XCLIM,
    ),
    provisional=True,
    provisional_note="Level thresholds (20/40/70/100 mm in a day) are project defaults.",
)

_spec(
    id="max_5day_precipitation",
    title="Maximum five-day precipitation (Rx5day)",
    description="Largest precipitation total over five consecutive days, per month: prolonged rain "
    "saturates masonry and soils, raises groundwater under foundations, triggers landslides and river "
    "floods that a single day's total does not show.",
    units="mm",
    inputs=("pr",),
    freq="MS",
    func=max_5day_precipitation,
    parameters={"freq": _freq("MS")},
    levels=Thresholds(low=40, moderate=70, high=100, severe=150),
    hazard="heavy rain and flooding",
    references=(Reference(ETCCDI.citation, "Rx5day definition"), XCLIM),
    provisional=True,
    provisional_note="Level thresholds (40/70/100/150 mm in five days) are project defaults.",
)

_VERY_WET_PARAMETERS = {
    "wet_thresh": Parameter("1 mm/d", "mm/d", "A wet day has at least this much precipitation.", "ETCCDI"),
    "percentile": Parameter(95.0, "%", "Percentile of the baseline wet days above which a day is very wet."),
    "baseline_start": Parameter(1991, "year", "First year of the baseline (WMO climate normal 1991–2020)."),
    "baseline_end": Parameter(
        2020, "year", "Last year of the baseline; the whole record is used when the data do not cover it."
    ),
    "freq": _freq("YS"),
}
_KLEIN_TANK = Reference(
    "Klein Tank A.M.G., Zwiers F.W., Zhang X. 2009, Guidelines on analysis of extremes in a changing "
    "climate in support of informed decisions for adaptation, WMO-TD No. 1500",
    "R95p / R95pTOT from the 95th percentile of wet days (RR ≥ 1 mm) in a base period",
)

_spec(
    id="very_wet_days",
    history=True,  # the baseline / calibration needs the whole stored record
    title="Very wet days (R95p days)",
    description="Days per year wetter than the site's own 95th percentile of wet-day precipitation "
    "(baseline 1991–2020, else the whole record; attrs['baseline'] says which): the rain that is "
    "exceptional for the local drainage, roofs and gutters the site was built for.",
    units="days",
    inputs=("pr",),
    freq="YS",
    func=very_wet_days,
    parameters=_VERY_WET_PARAMETERS,
    levels=Thresholds(low=8, moderate=12, high=16, severe=20),
    hazard="heavy rain and flooding",
    references=(Reference(ETCCDI.citation, "R95p definition"), _KLEIN_TANK, XCLIM),
    provisional=True,
    provisional_note="Level thresholds (8/12/16/20 days a year) are project defaults: by construction "
    "about 5 % of the wet days (some 5–9 days a year in Europe) exceed the baseline 95th percentile.",
)

_spec(
    id="very_wet_days_total",
    history=True,  # the baseline / calibration needs the whole stored record
    title="Precipitation on very wet days (R95pTOT)",
    description="Precipitation (mm) per year that fell on the days counted by very_wet_days: the water "
    "delivered by the site's exceptional rains, which drives runoff erosion and flooding.",
    units="mm",
    inputs=("pr",),
    freq="YS",
    func=very_wet_days_total,
    parameters=_VERY_WET_PARAMETERS,
    levels=Thresholds(low=150, moderate=250, high=400, severe=600),
    hazard="heavy rain and flooding",
    references=(Reference(ETCCDI.citation, "R95pTOT: annual total PRCP when RR > 95p"), _KLEIN_TANK, XCLIM),
    provisional=True,
    provisional_note="Level thresholds (150/250/400/600 mm a year) are project defaults; the amount "
    "depends on the local climate, so sites should override them.",
)

_spec(
    id="drought_spi3",
    history=True,  # the baseline / calibration needs the whole stored record
    title="Drought: 3-month Standardized Precipitation Index (SPI-3)",
    description="Precipitation of the last three months as a standard normal deviate of the site's own "
    "climate (gamma fit per calendar month): seasonal drought shrinks clay soils under foundations, dries "
    "earthen structures and historic gardens. Negative is dry.",
    units="1",
    inputs=("pr",),
    freq="MS",
    func=drought_spi3,
    parameters={
        "window": Parameter(3, "months", "Months of precipitation accumulated."),
        "cal_start": Parameter("1991-01-01", "date", "Start of the calibration period."),
        "cal_end": Parameter(
            "2020-12-31",
            "date",
            "End of the calibration period; the whole record if the data do not cover it.",
        ),
    },
    # WMO SPI classes: ≤ −1.0 moderately dry, ≤ −1.5 severely dry, ≤ −2.0 extremely dry
    levels=Thresholds(moderate=-1.0, high=-1.5, severe=-2.0, direction="lower_is_worse"),
    hazard="drought",
    materials=("earthen", "vegetation"),
    references=(
        Reference(
            "McKee T.B., Doesken N.J., Kleist J. 1993, The relationship of drought frequency and duration to "
            "time scales, Proc. 8th Conf. on Applied Climatology, AMS, 179–184",
            "SPI definition; a drought event reaches SPI ≤ −1.0",
        ),
        Reference(
            "WMO 2012, Standardized Precipitation Index User Guide (Svoboda M., Hayes M., Wood D.), "
            "WMO-No. 1090",
            "SPI value classes (Table 1): −1.0 to −1.49 moderately dry, −1.5 to −1.99 severely dry, ≤ −2.0 "
            "extremely dry → levels moderate, high, severe; near normal (−0.99 to 0.99) → none. Read in "
            "several secondary reproductions of the table, not in the guide itself",
        ),
        Reference(
            "Thom H.C.S. 1958, A note on the gamma distribution, Mon. Weather Rev. 86(4):117–122",
            "approximate maximum-likelihood gamma parameters (xclim method 'APP')",
        ),
        XCLIM,
    ),
)

_spec(
    id="scheffer_decay_index",
    title="Scheffer decay index (timber)",
    description="Scheffer's climate index of the potential for fungal decay of timber above ground, each "
    "year: warm months with many rainy days wet the wood and let decay fungi grow (timber frames, roofs, "
    "stave churches, wooden bridges).",
    units="1",
    inputs=("tas", "pr"),
    freq="YS",
    func=scheffer_decay_index,
    parameters={
        "wet_thresh": Parameter(
            "0.25 mm/d",
            "mm/d",
            "A rainy day has at least this much precipitation (0.01 in).",
            "Scheffer 1971",
        ),
    },
    # Scheffer 1971 classes: < 35 low, 35–65 moderate, > 65 high decay hazard (exactly 65 is high here)
    levels=Thresholds(low=0, moderate=35, high=65),
    hazard="timber decay",
    materials=("timber",),
    references=(
        Reference(
            "Scheffer T.C. 1971, A climate index for estimating potential for decay in wood structures "
            "above ground, Forest Prod. J. 21(10):25–31",
            "CI = Σ (T − 35 °F)(D − 3)/30; metric form Σ (T − 2 °C)(D − 3)/16.7 with D the days with "
            "≥ 0.01 in (0.25 mm); negative factors set to 0; classes < 35, 35–65, > 65",
        ),
        Reference(
            "Brimblecombe P., Richards J. 2023, Köppen climates and Scheffer index as indicators of timber "
            "risk in Europe (1901–2020), Heritage Science 11, doi:10.1186/s40494-023-00992-7",
            "Scheffer index of European heritage sites from daily observations, year by year",
        ),
        XCLIM,
    ),
)

_spec(
    id="hot_days",
    title="Hot days",
    description="Days per month with a maximum temperature above 30 °C: thermal stress on stone and "
    "timber, drying of earthen structures, visitor heat risk.",
    units="days",
    inputs=("tasmax",),
    freq="MS",
    func=hot_days,
    parameters={
        "thresh": Parameter("30 degC", "degC", "Daily maximum temperature above which a day is hot."),
        "freq": _freq("MS"),
    },
    levels=Thresholds(low=5, moderate=10, high=15, severe=22),
    hazard="heat",
    references=(XCLIM,),
    provisional=True,
    provisional_note="Level thresholds (5/10/15/22 days a month) are project defaults.",
)

_spec(
    id="heat_wave_days",
    title="Heat-wave days",
    description="Days per year inside heat waves: at least 3 consecutive days with Tmax > 30 °C and "
    "Tmin > 20 °C. Warm nights stop masonry and timber from cooling, so expansion stress, drying of "
    "earthen walls and timber, and visitor heat risk accumulate over the wave.",
    units="days",
    inputs=("tasmin", "tasmax"),
    freq="YS",
    func=heat_wave_days,
    parameters={
        "thresh_tasmin": Parameter(
            "20 degC", "degC", "Daily minimum above which a night is hot: the ETCCDI tropical night (TR)."
        ),
        "thresh_tasmax": Parameter(
            "30 degC", "degC", "Daily maximum above which a day is hot (the hot_days threshold)."
        ),
        "window": Parameter(3, "days", "Minimum length of a heat wave."),
        "freq": _freq("YS"),
    },
    levels=Thresholds(low=3, moderate=10, high=20, severe=35),
    hazard="heat",
    references=(
        Reference(
            "xclim heat_wave_total_length (after Casati et al. 2013 and Robinson 2001)",
            "heat wave = ≥ window days with Tmin and Tmax above thresholds; xclim's defaults (22/30 °C) are "
            "Québec health thresholds, lowered to 20 °C for Tmin here",
        ),
        Reference(ETCCDI.citation, "TR: tropical nights with TN > 20 °C"),
        XCLIM,
    ),
    provisional=True,
    provisional_note="The fixed 30/20 °C, 3-day definition is a project choice for Europe-wide "
    "comparability (xclim's 30/22 °C with the ETCCDI tropical-night threshold); percentile definitions "
    "(EuroHEAT, C3S) adapt better to cool climates. Level thresholds (3/10/20/35 days a year) are "
    "project defaults.",
)

_spec(
    id="thermal_stress_days",
    title="Thermal stress days",
    description="Days per year with a daily temperature range (Tmax − Tmin) of at least 15 °C: daily "
    "heating and cooling of stone makes calcite grains expand anisotropically and loosens marble and "
    "limestone (thermoclastism, granular decohesion). Air temperature underestimates the surface range.",
    units="days",
    inputs=("tasmax", "tasmin"),
    freq="YS",
    func=thermal_stress_days,
    parameters={
        "thresh": Parameter("15 K", "K", "Daily temperature range from which a day stresses stone."),
        "freq": _freq("YS"),
    },
    levels=Thresholds(low=10, moderate=30, high=60, severe=100),
    hazard="thermal stress",
    materials=STONE,
    references=(
        Reference(
            "Bonazza A., Sabbioni C., Messina P., Guaraldi C., De Nuntiis P. 2009, Climate change impact: "
            "mapping thermal stress on Carrara marble in Europe, Sci. Total Environ. 407:4506–4512",
            "thermal stress on marble mapped from daily temperature ranges; the threshold was not retrieved",
        ),
        NOAHS_ARK,
        XCLIM,
    ),
    provisional=True,
    provisional_note="The 15 °C range threshold is a project default within the 10–20 °C range used for "
    "marble thermoclastism (SCIENCE.md §2.3), not a published value; level thresholds (10/30/60/100 days "
    "a year) are project defaults.",
)
