"""What every source is: a declaration (`SourceInfo`) and an object that fetches site cubes.

A source with a forecast product also fetches forecast cubes (`ForecastSource`): the valid days of one
forecast issue, dims (site, time), with the issue time in ``attrs["issued"]`` and the lead of each valid
day in days (coordinate ``lead_days`` on time). Forecast cubes are never stored as observed variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from sites import SiteSet


class SourceError(Exception):
    """Base class of source errors."""


class SourceAuthError(SourceError):
    """The service refused the credentials (or none were given)."""


class SourceRequestError(SourceError):
    """The service refused the request itself (4xx other than auth and rate limits)."""


class SourceUnavailableError(SourceError):
    """The service could not be reached or kept failing within the bounded retry time."""


class SourceNotAvailableError(SourceError):
    """This source cannot run in the configured mode here (e.g. a mode not implemented yet)."""


@dataclass(frozen=True)
class SourceInfo:
    """The declaration of a Copernicus source: what it serves and how it must be credited."""

    id: str
    title: str
    family: str  # land | atmosphere | climate | emergency
    product: str
    variables: tuple[str, ...]
    attribution: str
    latency_days: int = 1
    modes: tuple[str, ...] = ("demo", "local", "remote")
    forecast_product: str = ""  # the forecast dataset of the provider ("" when there is none)
    forecast_days: int = 0  # valid days of one forecast issue (0: no forecasts)
    forecast_modes: tuple[str, ...] = ("demo", "remote")


class Source(Protocol):
    """A source fetches one cube with dims (site, time) for all requested sites at once."""

    info: SourceInfo
    mode: str

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset: ...


@runtime_checkable
class ForecastSource(Protocol):
    """A source that also fetches the forecast issued at `issued` (valid days from the issue day on)."""

    info: SourceInfo
    mode: str

    def fetch_forecast(self, sites: SiteSet, issued: datetime) -> xr.Dataset: ...


def as_forecast(cube: xr.Dataset, issued: datetime, product: str) -> xr.Dataset:
    """A daily site cube marked as one forecast issue: coordinate ``lead_days`` (whole days from the issue
    day to each valid day) and attributes ``issued`` (ISO 8601, UTC), ``product`` and ``kind=forecast``."""
    issued = issued.replace(tzinfo=UTC) if issued.tzinfo is None else issued.astimezone(UTC)
    day = np.datetime64(issued.date(), "D")
    valid = pd.DatetimeIndex(cube["time"].values).to_numpy().astype("datetime64[D]")
    leads = (valid - day).astype(int)
    out = cube.assign_coords(
        lead_days=("time", leads, {"units": "days", "long_name": "lead time from the forecast issue day"})
    )
    out.attrs.update(issued=issued.isoformat(timespec="seconds"), product=product, kind="forecast")
    return out
