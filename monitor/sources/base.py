"""What every source is: a declaration (`SourceInfo`) and an object that fetches site cubes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

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


class Source(Protocol):
    """A source fetches one cube with dims (site, time) for all requested sites at once."""

    info: SourceInfo
    mode: str

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset: ...
