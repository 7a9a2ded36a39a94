"""Vectorised kernels for hot paths where xclim is slow; each is validated against xclim in the tests."""

from __future__ import annotations

import numpy as np


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
