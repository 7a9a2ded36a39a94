"""Vectorised kernels for hot paths where xclim is slow; each is validated against xclim in the tests.

Time is the last axis of every array; any leading axes (sites) are reduced together, never one at a time.
Period reductions take `starts`, the index of the first time step of each period (ascending; an empty
period repeats the next start), as `period_starts` computes once from the time axis and the period labels.

The reductions of the indicator suite (day counts, period maxima, maxima of n-day sums) are fused numba
kernels: one pass over each (site, time) row packs the day's condition and its validity into an int32
code without materialising a mask, each period's count is the sum of its codes, float32 maxima are integer
maxima of order-preserving keys, and the arithmetic stays in the data's dtype (float32 ERA5-Land values are
never copied to float64). Every inner loop runs from 0 over a contiguous slice, which LLVM vectorises; a
loop over `range(a, b)` of a whole buffer stays scalar (numba's negative-index wraparound check). A
threshold is cast to the data's dtype before comparing, as numpy compares an array with a Python float,
so the counts equal xclim's exactly. They are compiled on first use and cached on disk (`cache=True`).

Missing data: a NaN time step never counts and adds nothing; a period without a valid step is NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import stats

#: Bit offset of the valid-step count in the packed int32 day codes of `_tally`: a period of up to
#: 2**15 − 1 steps (90 years of days, 3.7 years of hours) fits; longer ones take the numpy path.
_VALID = 16
_LONGEST = 2**15 - 1


def period_starts(time: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Index of the first step of each period: `time` ascending, `labels` the ascending period starts."""
    return np.searchsorted(np.asarray(time), np.asarray(labels), side="left").astype(np.intp)


def _lengths(starts: np.ndarray, n: int) -> np.ndarray:
    return np.diff(np.append(starts, n))


def _reduceat(ufunc: np.ufunc, a: np.ndarray, starts: np.ndarray, **kwargs) -> np.ndarray:
    """`ufunc.reduceat` over the last axis; the slot of an empty period holds garbage (callers mask it)."""
    n = a.shape[-1]
    if n == 0:
        return np.zeros((*a.shape[:-1], starts.size), dtype=kwargs.get("dtype", a.dtype))
    return ufunc.reduceat(a, np.minimum(starts, n - 1), axis=-1, **kwargs)


def _rows(a: np.ndarray) -> np.ndarray:
    """`a` as a 2-D (rows, time) array (leading axes flattened; a view when possible)."""
    a = np.asarray(a)
    return a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a


def _shaped(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    return out.reshape(*np.shape(like)[:-1], out.shape[-1])


def _too_long(starts: np.ndarray, n: int) -> bool:
    """Whether a period is too long for the packed int32 day codes (then numpy counts it)."""
    return starts.size > 0 and int(_lengths(starts, n).max()) > _LONGEST


def _count_numpy(mask: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """`count_per_period` by `np.add.reduceat` over materialised masks (periods of any length)."""
    hits = _reduceat(np.add, mask.view(np.uint8), starts, dtype=np.int64)
    n_valid = _reduceat(np.add, valid.view(np.uint8), starts, dtype=np.int64)
    empty = _lengths(starts, mask.shape[-1]) == 0
    return np.where((n_valid > 0) & ~empty, hits.astype(float), np.nan)


def _cast(thresh: float, values: np.ndarray) -> np.floating:
    """The threshold in the data's float dtype (float64 for integer data)."""
    dtype = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    return dtype.type(thresh)


# --- numba building blocks ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _sum_codes(codes: np.ndarray) -> np.int32:  # pragma: no cover (numba)
    """Sum of a contiguous run of day codes (a loop from 0 over a slice: LLVM vectorises it, where a loop
    over range(a, b) of the whole buffer is kept scalar by the negative-index wraparound check)."""
    total = np.int32(0)
    for t in range(codes.size):
        total += codes[t]
    return total


@njit(cache=True, nogil=True)
def _tally(code: np.ndarray, starts: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover (numba)
    """Per period: the hits (low 16 bits of the sum of `code`), NaN without a valid step (high bits)."""
    n = code.size
    n_periods = starts.size
    for p in range(n_periods):
        a = starts[p]
        b = min(starts[p + 1] if p + 1 < n_periods else n, n)
        total = _sum_codes(code[a:b]) if b > a else np.int32(0)
        valid = total >> _VALID
        out[p] = np.float64(total & 0xFFFF) if valid > 0 else np.nan


@njit(cache=True, nogil=True)
def _count_rows(mask, valid, starts):  # pragma: no cover (numba)
    rows, n = mask.shape
    out = np.empty((rows, starts.size))
    code = np.empty(n, dtype=np.int32)
    for r in range(rows):
        for t in range(n):
            code[t] = np.int32(mask[r, t]) | (np.int32(valid[r, t]) << _VALID)
        _tally(code, starts, out[r])
    return out


@njit(cache=True, nogil=True)
def _crossing_rows(low, high, starts, thresh):  # pragma: no cover (numba)
    rows, n = low.shape
    out = np.empty((rows, starts.size))
    code = np.empty(n, dtype=np.int32)
    for r in range(rows):
        for t in range(n):
            lo = low[r, t]
            hi = high[r, t]
            hit = (lo <= thresh) & (hi > thresh)
            ok = (lo == lo) & (hi == hi)
            code[t] = np.int32(hit) | (np.int32(ok) << _VALID)
        _tally(code, starts, out[r])
    return out


@njit(cache=True, nogil=True)
def _above_rows(values, starts, thresh, inclusive):  # pragma: no cover (numba)
    rows, n = values.shape
    out = np.empty((rows, starts.size))
    code = np.empty(n, dtype=np.int32)
    for r in range(rows):
        if inclusive:
            for t in range(n):
                v = values[r, t]
                code[t] = np.int32(v >= thresh) | (np.int32(v == v) << _VALID)
        else:
            for t in range(n):
                v = values[r, t]
                code[t] = np.int32(v > thresh) | (np.int32(v == v) << _VALID)
        _tally(code, starts, out[r])
    return out


@njit(cache=True, nogil=True)
def _range_rows(high, low, starts, thresh):  # pragma: no cover (numba)
    rows, n = high.shape
    out = np.empty((rows, starts.size))
    code = np.empty(n, dtype=np.int32)
    for r in range(rows):
        for t in range(n):
            d = high[r, t] - low[r, t]
            code[t] = np.int32(d >= thresh) | (np.int32(d == d) << _VALID)
        _tally(code, starts, out[r])
    return out


@njit(cache=True, nogil=True)
def _wet_frost_rows(tmin, pr, starts, thresh, pr_thresh, window):  # pragma: no cover (numba)
    rows, n = tmin.shape
    out = np.empty((rows, starts.size))
    code = np.empty(n, dtype=np.int32)
    recent = np.empty(n, dtype=np.int32)
    wet = np.empty(n, dtype=np.int32)
    for r in range(rows):
        tn_row, pr_row = tmin[r], pr[r]
        for t in range(n):
            wet[t] = np.int32(pr_row[t] >= pr_thresh)
            recent[t] = wet[t]
        for k in range(1, min(window, n)):  # a loop over the window length
            # loops from 0 over slices (vectorised), not over range(k, n) of the buffers
            later, earlier = recent[k:], wet[: n - k]
            for t in range(later.size):
                later[t] |= earlier[t]
        for t in range(n):
            tn = tn_row[t]
            p = pr_row[t]
            code[t] = (np.int32(tn <= thresh) & recent[t]) | (np.int32((tn == tn) & (p == p)) << _VALID)
        _tally(code, starts, out[r])
    return out


@njit(cache=True, nogil=True)
def _period_max(sums, offset, starts, n, out):  # pragma: no cover (numba)
    """Largest non-NaN `sums[t - offset]` of each period's steps t (NaN if none) into `out` (any float
    dtype; the float32 rows go through `_max_rows_f32`, which is vectorised)."""
    n_periods = starts.size
    for p in range(n_periods):
        a = max(starts[p], offset)
        b = min(starts[p + 1] if p + 1 < n_periods else n, n)
        best = -np.inf
        found = False
        for t in range(a, b):
            s = sums[t - offset]
            found |= s == s
            best = s if s > best else best  # a NaN never compares greater
        out[p] = best if found else np.nan


@njit(cache=True, nogil=True)
def _window_sums(row, window, sums):  # pragma: no cover (numba)
    """`sums[t]` = row[t] + … + row[t + window − 1], added in that order in the row's dtype."""
    m = sums.size
    for t in range(m):
        sums[t] = row[t]
    for k in range(1, window):  # a loop over the window length; each pass is vectorised
        later = row[k : k + m]
        for t in range(m):
            sums[t] += later[t]


@njit(cache=True, nogil=True)
def _max_rows(values, starts, window):  # pragma: no cover (numba)
    """Largest `window`-step sum (window order, the data's dtype) ending in each period; NaN if none."""
    rows, n = values.shape
    out = np.empty((rows, starts.size))
    sums = np.empty(max(n - window + 1, 0), dtype=values.dtype)
    for r in range(rows):
        _window_sums(values[r], window, sums)
        _period_max(sums, window - 1, starts, n, out[r])
    return out


_NO_KEY = np.int32(-(2**31))  # the key of a NaN: below every number's


@njit(cache=True, nogil=True)
def _max_key(keys):  # pragma: no cover (numba)
    """Largest of a contiguous run of int32 keys (a loop from 0 over a slice: LLVM vectorises it)."""
    best = _NO_KEY
    for t in range(keys.size):
        best = max(best, keys[t])
    return best


@njit(cache=True, nogil=True)
def _max_rows_f32(values, starts, window):  # pragma: no cover (numba)
    """`_max_rows` of float32 rows through integer keys: a float's bits `i` map to the int32
    `i ^ ((i >> 31) & 0x7FFFFFFF)`, which orders as the floats do (−0 just below +0), and NaN to the
    lowest key, so each period's maximum is an integer maximum, which LLVM vectorises (float maxima with
    NaN it does not), mapped back to the float it came from."""
    rows, n = values.shape
    n_periods = starts.size
    out = np.empty((rows, n_periods))
    offset = window - 1
    sums = np.empty(max(n - offset, 0), dtype=np.float32)
    bits = sums.view(np.int32)
    keys = np.empty(sums.size, dtype=np.int32)
    best = np.empty(n_periods, dtype=np.int32)
    found = np.empty(n_periods, dtype=np.bool_)
    for r in range(rows):
        _window_sums(values[r], window, sums)
        for t in range(sums.size):
            i = bits[t]
            s = sums[t]
            keys[t] = (i ^ ((i >> 31) & np.int32(0x7FFFFFFF))) if s == s else _NO_KEY
        for p in range(n_periods):
            a = max(starts[p], offset) - offset
            b = min(starts[p + 1] if p + 1 < n_periods else n, n) - offset
            k = _max_key(keys[a:b]) if b > a else _NO_KEY
            found[p] = k != _NO_KEY  # (the bits of -0.0 are the key of NaN: test the key)
            best[p] = k ^ ((k >> 31) & np.int32(0x7FFFFFFF))
        floats = best.view(np.float32)
        for p in range(n_periods):
            out[r, p] = np.float64(floats[p]) if found[p] else np.nan
    return out


# --- public kernels ----------------------------------------------------------------------------------


def count_per_period(mask: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Steps per period where `mask` is True (float), NaN where a period has no `valid` step.

    `mask` must be False on the steps that may not count: a comparison with NaN is.
    """
    mask, valid = np.asarray(mask, dtype=bool), np.asarray(valid, dtype=bool)
    starts = np.asarray(starts, np.intp)
    if _too_long(starts, mask.shape[-1]):
        return _count_numpy(mask, valid, starts)
    return _shaped(_count_rows(_rows(mask), _rows(valid), starts), mask)


def crossing_days(low: np.ndarray, high: np.ndarray, starts: np.ndarray, thresh: float) -> np.ndarray:
    """Days per period with low <= thresh < high (freeze–thaw days), NaN when no day has both valid."""
    low, high, starts = np.asarray(low), np.asarray(high), np.asarray(starts, np.intp)
    high = high.astype(low.dtype, copy=False)
    thresh = _cast(thresh, low)
    if _too_long(starts, low.shape[-1]):
        return _count_numpy((low <= thresh) & (high > thresh), ~np.isnan(low) & ~np.isnan(high), starts)
    return _shaped(_crossing_rows(_rows(low), _rows(high), starts, thresh), low)


def days_above(values: np.ndarray, starts: np.ndarray, thresh: float, op: str = ">") -> np.ndarray:
    """Days per period with values > thresh (`op` ">") or >= thresh (">="), NaN when no day is valid."""
    if op not in (">", ">="):
        raise ValueError(f"op must be '>' or '>=', not {op!r}")
    values, starts = np.asarray(values), np.asarray(starts, np.intp)
    thresh = _cast(thresh, values)
    if _too_long(starts, values.shape[-1]):
        mask = values >= thresh if op == ">=" else values > thresh
        return _count_numpy(mask, ~np.isnan(values), starts)
    return _shaped(_above_rows(_rows(values), starts, thresh, op == ">="), values)


def range_days(high: np.ndarray, low: np.ndarray, starts: np.ndarray, thresh: float) -> np.ndarray:
    """Days per period with high − low >= thresh (in the data's dtype), NaN when no day has both valid."""
    high, low, starts = np.asarray(high), np.asarray(low), np.asarray(starts, np.intp)
    low = low.astype(high.dtype, copy=False)
    thresh = _cast(thresh, high)
    if _too_long(starts, high.shape[-1]):
        diff = high - low
        return _count_numpy(diff >= thresh, ~np.isnan(diff), starts)
    return _shaped(_range_rows(_rows(high), _rows(low), starts, thresh), high)


def wet_frost_days(
    tmin: np.ndarray, pr: np.ndarray, starts: np.ndarray, thresh: float, pr_thresh: float, window: int
) -> np.ndarray:
    """Days per period with tmin <= thresh and pr >= pr_thresh on the day or one of the `window` − 1 days
    before (across period boundaries; a NaN rain day is not wet), NaN when no day has both valid."""
    tmin, pr, starts = np.asarray(tmin), np.asarray(pr), np.asarray(starts, np.intp)
    thresh, pr_thresh, window = _cast(thresh, tmin), _cast(pr_thresh, pr), max(int(window), 1)
    if _too_long(starts, tmin.shape[-1]):
        mask = (tmin <= thresh) & rolling_any(pr >= pr_thresh, window)
        return _count_numpy(mask, ~np.isnan(tmin) & ~np.isnan(pr), starts)
    return _shaped(_wet_frost_rows(_rows(tmin), _rows(pr), starts, thresh, pr_thresh, window), tmin)


def max_per_period(values: np.ndarray, starts: np.ndarray, window: int = 1) -> np.ndarray:
    """Largest non-NaN value (`window` 1) or `window`-step sum ending in each period; NaN where none.

    A sum with a NaN step is no sum (xarray's `rolling(...).sum(skipna=False)`); sums are taken in window
    order in the data's dtype, so the last bit may differ from xarray's moving sum.
    """
    values = np.asarray(values)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    kernel = _max_rows_f32 if values.dtype == np.float32 else _max_rows
    return _shaped(kernel(_rows(values), np.asarray(starts, np.intp), max(int(window), 1)), values)


def sum_per_period(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of the non-NaN values of each period; NaN where a period has none."""
    values = np.asarray(values)
    valid = ~np.isnan(values)
    total = _reduceat(np.add, np.where(valid, values, 0.0), starts)
    n_valid = _reduceat(np.add, valid.view(np.uint8), starts, dtype=np.int32)
    empty = _lengths(starts, values.shape[-1]) == 0
    return np.where((n_valid > 0) & ~empty, total, np.nan)


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of the `window` steps ending at each step; NaN if one of them is NaN or missing (the start).

    xarray's `rolling(time=window).sum(skipna=False)`, summed in window order rather than as a running
    sum (the last bit may differ from xarray's moving sum).
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[-1]
    out = np.full(values.shape, np.nan)
    if window < 1 or n < window:
        return out
    acc = values[..., : n - window + 1].copy()
    for k in range(1, window):  # a loop over the window length, never over sites or days
        acc += values[..., k : n - window + 1 + k]
    out[..., window - 1 :] = acc
    return out


def rolling_any(mask: np.ndarray, window: int) -> np.ndarray:
    """True where `mask` is True on the step or one of the `window` − 1 steps before it (partial at the
    start), i.e. `rolling(time=window, min_periods=1).max() == 1` over a 0/1 series with NaN ignored."""
    mask = np.asarray(mask, dtype=bool)
    out = mask.copy()
    n = mask.shape[-1]
    for k in range(1, min(window, n)):
        out[..., k:] |= mask[..., : n - k]
    return out


def days_in_runs(mask: np.ndarray, period: np.ndarray, window: int) -> np.ndarray:
    """Which days belong to a run of at least `window` consecutive True days inside one period.

    `mask` is (..., time) boolean, `period` is (time,) labels (e.g. the year): a run is cut where the
    label changes, as xclim's run-length statistics cut runs at resampling boundaries. No loop over sites:
    a day ends a full window when the rolling count equals `window` within one period, and every day of
    such a window is in a run.
    """
    mask = np.asarray(mask, dtype=bool)
    if window <= 1:
        return mask.copy()
    n = mask.shape[-1]
    if n < window:
        return np.zeros_like(mask)
    counts = np.cumsum(mask, axis=-1, dtype=np.int32)
    rolling = counts.copy()
    rolling[..., window:] -= counts[..., :-window]
    period = np.asarray(period)
    same = np.zeros(n, dtype=bool)
    same[window - 1 :] = period[window - 1 :] == period[: n - window + 1]
    ends = (rolling == window) & same
    ends[..., : window - 1] = False
    out = np.zeros_like(mask)
    for k in range(window):  # a loop over the window length, never over sites or days
        out[..., : n - k] |= ends[..., k:]
    return out


def spi_gamma_app(values: np.ndarray, month: np.ndarray, calibrate: np.ndarray) -> np.ndarray:
    """Standardized index of (..., time) accumulations: a zero-inflated gamma per calendar month, fitted by
    Thom's (1958) approximation of the maximum likelihood (loc 0), for all sites at once.

    xclim's `standardized_index` with `dist="gamma"`, `method="APP"`, `fitkwargs={"floc": 0}`, zero
    inflation, `prob_zero_interpolation="upper"` and `plotting_position_zero="ecdf"` (the defaults of
    `standardized_precipitation_index`), step for step: per site and calendar month of the `calibrate`
    steps, with x the non-zero valid values (no fit when there are fewer than two) and x⁺ the positive ones,
    A = ln(mean x⁺) − mean(ln x⁺), shape a = (1 + √(1 + 4A/3)) / (4A), scale = mean x⁺ / a; p₀ the share of
    zeros among the valid values; a value v ≠ 0 has probability p₀ + (1 − p₀) G(v; a, scale), a zero p₀;
    the index is the standard normal quantile of that probability, clipped to ±8.21. xclim fits each site
    and month in a Python loop; here each calendar month is one vectorised step over every site. The fit is
    computed in float64 (xclim computes it in the data's dtype).

    `month` is the calendar month (1–12) of each step, `calibrate` which steps calibrate the fit.
    """
    values = np.asarray(values, dtype=np.float64)
    month, calibrate = np.asarray(month), np.asarray(calibrate, dtype=bool)
    out = np.full(values.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in np.unique(month):  # a loop over the twelve calendar months, never over sites
            x = values[..., (month == m) & calibrate]
            valid = ~np.isnan(x)
            n_zeros = np.sum(x == 0, axis=-1)
            n_valid = np.sum(valid, axis=-1)
            n_fit = np.sum(valid & (x != 0), axis=-1)
            positive = x > 0
            n_pos = np.sum(positive, axis=-1)
            mean = np.sum(np.where(positive, x, 0.0), axis=-1) / n_pos
            mean_log = np.sum(np.where(positive, np.log(np.where(positive, x, 1.0)), 0.0), axis=-1) / n_pos
            a_stat = np.log(mean) - mean_log
            shape = (1 + np.sqrt(1 + 4 * a_stat / 3)) / (4 * a_stat)
            scale = mean / shape
            unfit = (n_fit <= 1) | np.isnan(shape) | np.isnan(scale)
            shape, scale = np.where(unfit, np.nan, shape), np.where(unfit, np.nan, scale)
            # plotting positions of the zeros: ecdf (alpha 0, beta 1), interpolation "upper" (factor 1)
            rank_1 = 1 / (n_valid + 1 - 0 - 1)
            rank_n = n_zeros / (n_valid + 1 - 0 - 1)
            rank_f = (1 - 1) * rank_1 + 1 * rank_n
            v = values[..., month == m]
            nonzero = v != 0
            cdf = stats.gamma.cdf(np.where(nonzero, v, np.nan), shape[..., None], 0.0, scale[..., None])
            probs = np.where(nonzero, rank_n[..., None] + (1 - rank_n[..., None]) * cdf, rank_f[..., None])
            out[..., month == m] = np.clip(stats.norm.ppf(probs, 0, 1), -8.21, 8.21)
    return out
