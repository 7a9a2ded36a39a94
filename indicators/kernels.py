"""Vectorised kernels for hot paths where xclim is slow; each is validated against xclim in the tests.

Time is the last axis of every array; any leading axes (sites) are reduced together, never one at a time.
Period reductions take `starts`, the index of the first time step of each period (ascending; an empty
period repeats the next start), as `period_starts` computes once from the time axis and the period labels,
and reduce each contiguous slice with `ufunc.reduceat` — no groupby, no loop over sites or periods.

Missing data: a NaN time step never counts and adds nothing; a period without a valid step is NaN.
"""

from __future__ import annotations

import numpy as np


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


def count_per_period(mask: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Steps per period where `mask` is True (float), NaN where a period has no `valid` step.

    `mask` must be False on the steps that may not count: a comparison with NaN is.
    """
    mask = np.asarray(mask, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    hits = _reduceat(np.add, mask.view(np.uint8), starts, dtype=np.int32)
    n_valid = _reduceat(np.add, valid.view(np.uint8), starts, dtype=np.int32)
    empty = _lengths(starts, mask.shape[-1]) == 0
    return np.where((n_valid > 0) & ~empty, hits.astype(float), np.nan)


def max_per_period(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Largest non-NaN value of each period; NaN where a period has none (xarray's skipna max)."""
    values = np.asarray(values)
    out = _reduceat(np.fmax, values, starts)
    empty = _lengths(starts, values.shape[-1]) == 0
    return np.where(empty, np.nan, out)


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
