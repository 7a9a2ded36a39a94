"""Plumbing shared by the CDS-family sources (CDS, ADS, EWDS): the cdsapi client we run, failure mapping,
the raw-download cache, request splitting, the file → site-series reduction and the final site cube.

The client is cdsapi's own (≥ 0.7: with a personal access token it is ecmwf-datastores' `LegacyClient`),
built at the first download only — its constructor already calls the service — from our settings only,
never from ``~/.cdsapirc`` or ``CDSAPI_*`` variables, with:

- bounded retries: `HM_CDS_RETRY_MAX` attempts per HTTP call sleeping `HM_CDS_SLEEP_MAX` seconds
  (cdsapi would try 500 times, 120 s apart);
- our own job polling (``accepted`` → ``running`` → ``successful``) under a wall-clock budget
  (`HM_CDS_TIME_BUDGET_SECONDS`) for the whole fetch;
- results downloaded by cdsapi (HEAD + streamed GET of the asset ``href``, without the token; sizes checked
  against ``file:size``) into a scratch folder, then moved into the cache atomically;
- the client's debug log (which prints the key) discarded.

Failures become our errors, chained to the original: 401/403 (bad token, licence not accepted) →
`SourceAuthError`; other 4xx, failed or rejected jobs → `SourceRequestError` carrying the service's title and
detail; 408/429/5xx, timeouts, connection errors, truncated downloads after the retries, an exhausted time
budget → `SourceUnavailableError`. Nothing is written to the cache unless the whole download succeeded.

Cache: ``<HM_DATA_DIR>/cache/<source>/<sha256>.<ext>`` where the hash is over the canonical JSON of
(dataset, request) and ``ext`` is ``nc``, ``grib`` or ``zip`` from the file's first bytes; a sidecar
``<sha256>.json`` (written last, it is the commit mark) records the request as sent and when it was retrieved.
Downloads land first in ``<HM_DATA_DIR>/tmp`` (removed whatever happens).

Requests are split by calendar month and by group of nearby sites (`tiles`: 5° squares, each with its own
area), so that sites spread over Europe never become one continent-wide download; each file then serves
only the sites it was asked for (`reduce_files(sites_of=…)`). Hourly sources reduce long periods a year at
a time (`chunks`).
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from shapely.geometry.base import BaseGeometry

from monitor.extract import reduce_to_sites
from monitor.settings import Settings
from monitor.sources import SOURCES, attribution
from monitor.sources.base import (
    SourceAuthError,
    SourceError,
    SourceNotAvailableError,
    SourceRequestError,
    SourceUnavailableError,
)
from monitor.sources.normalise import file_kind, iter_files, open_normalised
from sites import SiteSet

log = logging.getLogger(__name__)

EXTENSIONS = {"netcdf": "nc", "grib": "grib", "zip": "zip"}
#: How many local files check() tries to open (GRIB indexing makes opening slow).
CHECK_FILES = 3


# --- which data store serves which source ------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """One Copernicus data store: its name, the settings that hold its URL and key, its web address."""

    name: str
    url_setting: str
    key_setting: str
    web: str

    def url(self, settings: Settings) -> str:
        return str(getattr(settings, self.url_setting)).rstrip("/")

    def key(self, settings: Settings) -> str | None:
        secret = getattr(settings, self.key_setting)
        return secret.get_secret_value() if secret is not None else None


CDS = Store("CDS", "cds_url", "cds_key", "https://cds.climate.copernicus.eu")
ADS = Store("ADS", "ads_url", "ads_key", "https://ads.atmosphere.copernicus.eu")
EWDS = Store("EWDS", "ewds_url", "ewds_key", "https://ewds.climate.copernicus.eu")


# --- failures -----------------------------------------------------------------------------------------


def _problem(response: Any) -> tuple[str, str]:
    """(title, detail) of an RFC 7807 problem answer, as the data stores send them."""
    try:
        body = response.json()
    except Exception:
        return (str(getattr(response, "reason", "") or ""), "")
    if not isinstance(body, dict):
        return ("", "")
    title = str(body.get("title") or body.get("message") or "")
    detail = body.get("detail") or ""
    if isinstance(detail, list | dict):
        detail = json.dumps(detail)
    return (title, str(detail))


def classify(exc: BaseException, store: Store, dataset: str) -> SourceError:
    """Our error for an exception raised by cdsapi / ecmwf-datastores / requests (never holds the key)."""
    import requests
    from ecmwf.datastores.processing import DownloadError, ProcessingFailedError

    where = f"{store.name} {dataset}"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        title, detail = _problem(exc.response)
        text = ": ".join(p for p in (title, detail) if p) or str(exc.response.reason or "")
        if code == 401:
            return SourceAuthError(f"{store.name} refused the credentials (401): {text}")
        if code == 403:
            if "licen" in f"{title} {detail}".lower():
                return SourceAuthError(
                    f"{store.name} licence of {dataset} not accepted (403): {text}; accept it once at "
                    f"{store.web}/datasets/{dataset}?tab=download"
                )
            return SourceAuthError(f"{store.name} refused access to {dataset} (403): {text}")
        if code in (408, 429) or code >= 500:
            return SourceUnavailableError(f"{where}: service kept answering {code} after the retries: {text}")
        return SourceRequestError(f"{where}: request refused ({code}): {text}")
    if isinstance(exc, ProcessingFailedError):
        return SourceRequestError(f"{where}: the job failed: {exc}")
    if isinstance(exc, DownloadError | requests.exceptions.ChunkedEncodingError):
        return SourceUnavailableError(
            f"{where}: download incomplete after the retries ({type(exc).__name__})"
        )
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return SourceUnavailableError(f"{where}: service unreachable ({type(exc).__name__})")
    if isinstance(exc, AssertionError | OSError):
        return SourceUnavailableError(f"{where}: download failed ({type(exc).__name__}: {exc})")
    return SourceUnavailableError(f"{where}: unexpected client failure ({type(exc).__name__})")


# --- the time budget ------------------------------------------------------------------------------------


@dataclass
class Deadline:
    """A wall-clock budget shared by every step of one fetch."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def check(self, what: str) -> None:
        if self.remaining() <= 0:
            raise SourceUnavailableError(
                f"time budget of {self.seconds:g} s exhausted while {what}; files already downloaded are "
                "cached and will not be fetched again (HM_CDS_TIME_BUDGET_SECONDS)"
            )


# --- the raw-download cache -----------------------------------------------------------------------------


def request_key(dataset: str, request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of (dataset, request)."""
    canonical = json.dumps({"dataset": dataset, "request": request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Raw:
    """A downloaded (or cached) provider file and what was asked to get it."""

    path: Path
    dataset: str
    request: dict[str, Any]
    retrieved_at: str
    from_cache: bool


class RawCache:
    """Provider files in ``<folder>/<sha256>.<ext>`` with a ``<sha256>.json`` sidecar, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def get(self, key: str) -> Raw | None:
        meta_path = self.folder / f"{key}.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            path = self.folder / meta["file"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not path.is_file() or path.stat().st_size != meta.get("size"):
            return None
        return Raw(path, meta["dataset"], meta["request"], meta["retrieved_at"], True)

    def put(self, key: str, source: Path, dataset: str, request: dict[str, Any]) -> Raw:
        kind = file_kind(source)
        ext = EXTENSIONS.get(kind or "", "bin")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{key}.{ext}"
        retrieved_at = datetime.now(UTC).isoformat(timespec="seconds")
        meta = {
            "file": target.name,
            "size": source.stat().st_size,
            "dataset": dataset,
            "request": request,
            "retrieved_at": retrieved_at,
        }
        os.replace(source, target)
        _write_atomic(self.folder / f"{key}.json", json.dumps(meta, indent=1, sort_keys=True))
        return Raw(target, dataset, request, retrieved_at, False)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- the client -------------------------------------------------------------------------------------------


def _drop(*args: Any, **kwargs: Any) -> None:
    """cdsapi's debug stream prints the key: it goes nowhere."""


class CdsRetriever:
    """Downloads (dataset, request) pairs from one data store into the raw cache; no network at creation."""

    def __init__(self, settings: Settings, source_id: str, store: Store) -> None:
        self.settings = settings
        self.source_id = source_id
        self.store = store
        self.cache = RawCache(Path(settings.data_dir) / "cache" / source_id)
        self.scratch = Path(settings.data_dir) / "tmp"
        self._client: Any = None
        self._inputs: dict[str, dict[str, Any]] = {}

    # .. client .........................................................................................

    def client(self) -> Any:
        """The cdsapi client, built on first use (its constructor calls ``GET …/catalogue/v1/messages``)."""
        if self._client is not None:
            return self._client
        key = self.store.key(self.settings)
        if not key:
            raise SourceAuthError(
                f"no {self.store.name} personal access token: set HM_{self.store.key_setting.upper()}"
            )
        if ":" in key:
            raise SourceAuthError(
                f"HM_{self.store.key_setting.upper()} looks like an old 'UID:KEY' key; the current "
                f"{self.store.name} needs the personal access token shown on your profile page"
            )
        import cdsapi

        s = self.settings
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._client = cdsapi.Client(
                    url=self.store.url(s),
                    key=key,
                    quiet=True,
                    debug=False,
                    verify=True,
                    timeout=s.cds_timeout_seconds,
                    progress=False,
                    delete=False,
                    retry_max=s.cds_retry_max,
                    sleep_max=s.cds_sleep_max,
                    wait_until_complete=False,
                    info_callback=lambda *a, **k: log.debug(*a, **k),
                    warning_callback=lambda *a, **k: log.warning(*a, **k),
                    error_callback=lambda *a, **k: log.error(*a, **k),
                    debug_callback=_drop,
                )
            for warning in caught:  # e.g. the service messages could not be read
                log.warning("%s: %s", self.store.name, warning.message)
        except Exception as exc:
            raise classify(exc, self.store, "client") from exc
        return self._client

    def process_inputs(self, dataset: str) -> dict[str, Any]:
        """The live request schema of a dataset (``inputs`` of ``GET …/retrieve/v1/processes/{dataset}``)."""
        if dataset not in self._inputs:
            try:
                process = self.client().client.get_process(dataset)
                self._inputs[dataset] = dict(process.json.get("inputs") or {})
            except SourceError:
                raise
            except Exception as exc:
                raise classify(exc, self.store, dataset) from exc
        return self._inputs[dataset]

    # .. retrieval .......................................................................................

    def retrieve(
        self,
        dataset: str,
        request: dict[str, Any],
        deadline: Deadline,
        adapt: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Raw:
        """The file answering `request` (keyed as given): from the cache, else submitted, waited for and
        downloaded. `adapt(request, live_inputs)` may rewrite the request to the live schema first."""
        key = request_key(dataset, request)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        deadline.check(f"starting {dataset}")
        sent = adapt(request, self.process_inputs(dataset)) if adapt is not None else request
        client = self.client()
        self.scratch.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{self.source_id}-", dir=self.scratch))
        try:
            try:
                remote = client.retrieve(dataset, sent)
                self._wait(remote, dataset, deadline)
                results = remote.get_results()
            except SourceError:
                raise
            except Exception as exc:
                raise classify(exc, self.store, dataset) from exc
            target = self._download(results, work, dataset, deadline)
            return self.cache.put(key, target, dataset, sent)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _wait(self, remote: Any, dataset: str, deadline: Deadline) -> None:
        pause = max(min(1.0, self.settings.cds_sleep_max), 0.01)
        while True:
            status = remote.status
            if status == "successful":
                return
            if status in ("failed", "rejected"):
                remote.get_results()  # raises with the service's title and detail
                raise SourceRequestError(f"{self.store.name} {dataset}: job {status}")
            if status not in ("accepted", "running"):
                raise SourceRequestError(f"{self.store.name} {dataset}: job in state {status!r}")
            if deadline.remaining() <= 0:
                with contextlib.suppress(Exception):
                    remote.delete()  # free our place in the store's queue
                deadline.check(f"waiting for the {dataset} job ({status})")
            time.sleep(max(min(pause, deadline.remaining()), 0.0))
            pause = min(pause * 1.5, max(self.settings.cds_sleep_max, 0.01))

    def _download(self, results: Any, work: Path, dataset: str, deadline: Deadline) -> Path:
        """cdsapi's download (which already retries broken transfers) — repeated when the file it produced
        does not have the announced size."""
        from ecmwf.datastores.processing import DownloadError

        target = work / "download"
        last: BaseException | None = None
        for attempt in range(self.settings.cds_retry_max):
            deadline.check(f"downloading {dataset}")
            try:
                results.download(str(target))
                return target
            except DownloadError as exc:
                last = exc
                log.warning("%s %s: %s (attempt %d)", self.store.name, dataset, exc, attempt + 1)
                time.sleep(min(self.settings.cds_sleep_max, max(deadline.remaining(), 0.0)))
            except Exception as exc:
                raise classify(exc, self.store, dataset) from exc
        assert last is not None
        raise classify(last, self.store, dataset) from last


# --- check() -------------------------------------------------------------------------------------------


def check_local(settings: Settings, source_id: str) -> dict[str, Any]:
    """Local mode: the path exists and holds at least one file our readers open."""
    path = settings.source_path(source_id)
    env = f"HM_{source_id.upper()}_PATH"
    if path is None:
        return _check("local", False, None, f"{env} is not set")
    path = Path(path)
    if not path.exists():
        return _check("local", False, None, f"{env}={path} does not exist")
    files = iter_files(path)
    failures = []
    for f in files[:CHECK_FILES]:
        try:
            with open_normalised(f) as datasets:
                if any(ds.data_vars for ds in datasets):
                    return _check(
                        "local", True, None, f"{len(files)} file(s) under {path}; {f.name} is readable"
                    )
        except Exception as exc:
            failures.append(f"{f.name}: {type(exc).__name__}")
    why = "; ".join(failures) or "no files"
    return _check("local", False, None, f"{path}: no readable NetCDF/GRIB/ZIP file ({why})")


def check_remote(settings: Settings, source_id: str, store: Store, dataset: str) -> dict[str, Any]:
    """Remote mode: does the store answer with these credentials, and is the dataset's licence accepted?

    The data stores refuse a job (403 "required licences not accepted") when the user has not accepted the
    dataset's licences. We read the same facts: the dataset's licences (``license`` links of
    ``GET …/catalogue/v1/collections/{dataset}``, matched by title to ids and current revisions in
    ``GET …/catalogue/v1/vocabularies/licences``) against ``GET …/profiles/v1/account/licences``.
    """
    import requests

    retriever = CdsRetriever(settings, source_id, store)
    try:
        client = retriever.client().client
        accepted = client.get_accepted_licences()
    except SourceAuthError as exc:
        return _check("remote", None, None, str(exc))
    except requests.HTTPError as exc:
        err = classify(exc, store, dataset)
        reachable = exc.response is not None and exc.response.status_code < 500
        return _check("remote", reachable, None, str(err))
    except Exception as exc:
        return _check("remote", False, None, str(classify(exc, store, dataset)))
    try:
        links = client.get_collection(dataset).json.get("links", [])
        vocabulary = client.get_licences()
    except Exception as exc:
        return _check("remote", True, None, f"credentials accepted; licences of {dataset} unknown: {exc}")
    titles = {str(link.get("title", "")).strip().lower() for link in links if link.get("rel") == "license"}
    required = {
        str(lic["id"]): int(lic.get("revision", 0))
        for lic in vocabulary
        if str(lic.get("label", "")).strip().lower() in titles
    }
    if not required:
        return _check(
            "remote", True, None, f"credentials accepted; no licence of {dataset} could be identified"
        )
    have = {str(lic["id"]): int(lic.get("revision", 0)) for lic in accepted}
    missing = [f"{i} (revision {r})" for i, r in sorted(required.items()) if have.get(i, -1) < r]
    if missing:
        return _check(
            "remote",
            True,
            False,
            f"credentials accepted; licence not accepted: {', '.join(missing)} — accept it at "
            f"{store.web}/datasets/{dataset}?tab=download",
        )
    return _check("remote", True, True, f"credentials accepted; licences of {dataset} accepted")


def _check(mode: str, reachable: bool | None, licence: bool | None, message: str) -> dict[str, Any]:
    return {"mode": mode, "reachable": reachable, "licence_accepted": licence, "message": message}


def check_source(settings: Settings, source_id: str, store: Store, dataset: str) -> dict[str, Any]:
    """The `check()` of a CDS-family source in its configured mode."""
    mode = settings.source_mode(source_id)
    if mode == "local":
        return check_local(settings, source_id)
    if mode == "remote":
        return check_remote(settings, source_id, store, dataset)
    return _check(mode, None, None, "demo data: synthetic, no service involved")


# --- requests ---------------------------------------------------------------------------------------------


def month_spans(first: date, last: date) -> list[tuple[int, int, list[int]]]:
    """(year, month, days) for each calendar month between two days inclusive."""
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        n = calendar.monthrange(y, m)[1]
        d0 = first.day if (y, m) == (first.year, first.month) else 1
        d1 = last.day if (y, m) == (last.year, last.month) else n
        out.append((y, m, list(range(d0, d1 + 1))))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def request_area(geometries: Sequence[BaseGeometry], cell: float, decimals: int = 2) -> list[float]:
    """[N, W, S, E] of the geometries, padded by one grid cell and snapped outwards to the grid."""
    import shapely

    west, south, east, north = shapely.total_bounds(list(geometries))

    def snap(v: float, up: bool) -> float:
        k = v / cell
        return round((math.ceil(k - 1e-9) if up else math.floor(k + 1e-9)) * cell, decimals)

    return [
        min(snap(north + cell, True), 90.0),
        max(snap(west - cell, False), -180.0),
        max(snap(south - cell, False), -90.0),
        min(snap(east + cell, True), 180.0),
    ]


# --- files -> site series -------------------------------------------------------------------------------


@dataclass
class SiteSeries:
    """Site-level time series of several variables, before daily aggregation."""

    data: xr.Dataset  # dims (site, time); optional coordinate `product_version` on time
    coverage: np.ndarray
    covered: np.ndarray
    extraction: np.ndarray
    files: list[str]

    def has(self, name: str) -> bool:
        return name in self.data.data_vars


_EXTRACTION_RANK = {"mean": 0, "river_pixel": 0, "nearest": 1, "none": 2, "outside": 3}


def _better(coverage, extraction, new_coverage, new_extraction) -> np.ndarray:
    rank_new = np.array([_EXTRACTION_RANK[str(e)] for e in new_extraction])
    rank_old = np.array([_EXTRACTION_RANK[str(e)] for e in extraction])
    return (rank_new < rank_old) | ((rank_new == rank_old) & (new_coverage > coverage))


def merge_stats(parts: Sequence[SiteSeries]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """coverage, covered, extraction of several series of the same sites: the best of each."""
    coverage = parts[0].coverage.copy()
    covered = parts[0].covered.copy()
    extraction = parts[0].extraction.copy()
    for part in parts[1:]:
        take = _better(coverage, extraction, part.coverage, part.extraction)
        coverage = np.where(take, part.coverage, coverage)
        extraction = np.where(take, part.extraction, extraction)
        covered |= part.covered
    return coverage, covered, extraction


def _layered(pieces: list[xr.DataArray]) -> xr.DataArray:
    """(site, time) pieces, possibly repeating times (files split by area or overlapping in time), merged:
    per site and time the first non-missing value in file order."""
    if len(pieces) == 1:
        da = pieces[0]
        return da.sortby("time") if "time" in da.dims else da
    values = np.concatenate([p.transpose("site", "time").values for p in pieces], axis=1)
    times = np.concatenate([p["time"].values for p in pieces])
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[:, order]
    unique, first, counts = np.unique(times, return_index=True, return_counts=True)
    out = values[:, first].copy()
    for j in range(1, int(counts.max())):
        has = counts > j
        idx = first[has] + j
        sub = out[:, has]
        out[:, has] = np.where(np.isnan(sub), values[:, idx], sub)
    return xr.DataArray(out, dims=("site", "time"), coords={"time": unique}, attrs=pieces[0].attrs)


def reduce_files(
    files: Iterable[Path],
    sites: SiteSet,
    geometries: Sequence[BaseGeometry],
    window: tuple[datetime, datetime],
    prepare: Callable[[xr.Dataset, Path], xr.Dataset | None],
    *,
    mask_variable: Callable[[xr.Dataset], str | None] | None = None,
    resolution: Callable[[xr.Dataset], float | tuple[float, float] | None] | None = None,
    reducer: Callable[..., xr.Dataset] | None = None,
    sites_of: Callable[[Path], np.ndarray | None] | None = None,
) -> SiteSeries:
    """Open each file, normalise it, let the source `prepare` it (select, convert, derive per cell) and reduce
    every variable to the sites over the time `window` (inclusive).

    Files may split the data by time, by variable or by area; where they overlap the first file's values
    win. `sites_of(path)` may restrict a file to the sites it was downloaded for (a boolean mask; None: all).
    The cell size of single-cell grids comes from `resolution(prepared)` or the prepared dataset's
    ``grid_degrees`` attribute."""
    n = len(sites)
    t0, t1 = np.datetime64(window[0], "ns"), np.datetime64(window[1], "ns")
    parts: dict[str, list[xr.DataArray]] = {}
    versions: list[pd.Series] = []
    coverage = np.zeros(n)
    covered = np.zeros(n, dtype=bool)
    extraction = np.array(["outside"] * n, dtype=object)
    used: list[str] = []
    reduce = reducer or reduce_to_sites
    for path in files:
        own = sites_of(path) if sites_of is not None else None
        own = np.ones(n, dtype=bool) if own is None else np.asarray(own, dtype=bool)
        try:
            context = open_normalised(path)
            datasets = context.__enter__()
        except ImportError:  # a missing engine (cfgrib) is an installation error, not a bad file
            raise
        except Exception as exc:
            log.warning("%s: skipped, not readable (%s)", path.name, exc)
            continue
        try:
            for raw in datasets:
                ds = prepare(raw, path)
                if ds is None or not ds.data_vars:
                    continue
                in_window = ds
                if "time" in ds.dims:
                    times = ds["time"].values
                    in_window = ds.isel(time=np.flatnonzero((times >= t0) & (times <= t1)))
                has_data = "time" not in ds.dims or in_window.sizes["time"] > 0
                target = in_window if has_data else ds.isel(time=slice(0, 1))
                mask = mask_variable(ds) if mask_variable else None
                reduced = reduce(
                    target,
                    sites,
                    mask_variable=mask if mask in ds.data_vars else None,
                    resolution=resolution(ds) if resolution else ds.attrs.get("grid_degrees"),
                    geometries=geometries,
                )
                covered |= reduced["covered"].values & own
                if not has_data:
                    continue
                used.append(path.name)
                take = own & _better(
                    coverage, extraction, reduced["coverage"].values, reduced["extraction"].values
                )
                coverage = np.where(take, reduced["coverage"].values, coverage)
                extraction = np.where(take, reduced["extraction"].values, extraction)
                if "product_version" in reduced.coords and "time" in reduced.dims:
                    versions.append(
                        pd.Series(reduced["product_version"].values, index=reduced["time"].values)
                    )
                for name in ds.data_vars:
                    da = reduced[name]
                    da = da.drop_vars([c for c in da.coords if c not in da.dims])
                    if not own.all():
                        da = da.where(xr.DataArray(own, dims="site"))
                    parts.setdefault(str(name), []).append(da)
        finally:
            context.__exit__(None, None, None)

    variables = {name: _layered(pieces) for name, pieces in parts.items()}
    data = xr.Dataset(variables) if variables else xr.Dataset()
    if variables:
        data = data.assign_coords(site=("site", np.array(sites.ids, dtype=object)))
    if versions and "time" in data.dims:
        merged = pd.concat(versions)
        merged = merged[merged.astype(str) != ""]
        merged = merged[~merged.index.duplicated(keep="first")]
        data = data.assign_coords(
            product_version=("time", merged.reindex(data["time"].values).fillna("").astype(str).to_numpy())
        )
    return SiteSeries(data, coverage, covered, extraction, used)


# --- splitting requests and periods ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """A group of sites asked together: which sites, and the [N, W, S, E] area of the request."""

    sites: np.ndarray
    area: list[float]


def tiles(
    geometries: Sequence[BaseGeometry], cell: float, size: float = 5.0, decimals: int = 2
) -> list[Tile]:
    """Sites grouped by the `size`° square their representative point falls in, each group with its own
    request area (its buffered bounds padded by one cell): sites spread over a continent do not turn into
    one continent-wide download."""
    import shapely

    points = shapely.point_on_surface(np.asarray(list(geometries), dtype=object))
    keys = np.stack([np.floor(shapely.get_x(points) / size), np.floor(shapely.get_y(points) / size)], axis=1)
    out = []
    for key in np.unique(keys, axis=0):
        member = np.all(keys == key, axis=1)
        group = [g for g, m in zip(geometries, member, strict=True) if m]
        out.append(Tile(member, request_area(group, cell, decimals)))
    return out


def chunks(start: date, end: date, days: int = 366) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive pieces of at most `days` days (bounds memory for hourly data)."""
    out = []
    first = start
    while first <= end:
        last = min(first + timedelta(days=days - 1), end)
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


# --- the site cube ------------------------------------------------------------------------------------------


def local_files(settings: Settings, source_id: str) -> list[Path]:
    """The files of `HM_<SOURCE>_PATH`, or an error saying what is wrong with the setting."""
    path = settings.source_path(source_id)
    env = f"HM_{source_id.upper()}_PATH"
    if path is None:
        raise SourceNotAvailableError(f"{source_id} in local mode needs {env} (a file or a folder of files)")
    path = Path(path)
    if not path.exists():
        raise SourceNotAvailableError(f"{env}={path} does not exist")
    files = iter_files(path)
    if not files:
        raise SourceNotAvailableError(f"{env}={path} holds no file")
    return files


def daily_index(start: date, end: date) -> pd.DatetimeIndex:
    """Daily 00:00 UTC stamps from start to end inclusive (naive datetimes, UTC by convention)."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D").as_unit("ns")


def finish_cube(
    daily: xr.Dataset,
    sites: SiteSet,
    start: date,
    end: date,
    *,
    source_id: str,
    product: str,
    stats: tuple[np.ndarray, np.ndarray, np.ndarray],
    variables: dict[str, dict[str, str]],
    requests: list[dict[str, Any]],
    retrieved_at: str,
    default_version: str,
    extra_attrs: dict[str, str] | None = None,
) -> xr.Dataset:
    """The site cube of the contract: (site, time) daily from start to end, every declared variable (NaN
    where absent), `stats` = (coverage, covered, extraction) per site, and provenance attributes."""
    coverage, covered, extraction = stats
    index = daily_index(start, end)
    ids = np.array(sites.ids, dtype=object)
    out = xr.Dataset(coords={"site": ("site", ids, {"long_name": "site id"})})
    out = out.assign_coords(time=("time", index.to_numpy(), {"standard_name": "time", "long_name": "time"}))
    for name, attrs in variables.items():
        if name in daily.data_vars:
            da = daily[name].reindex(time=index.to_numpy()).transpose("site", "time")
            values = da.values.astype(np.float32)
        else:
            values = np.full((len(sites), index.size), np.nan, dtype=np.float32)
        out[name] = xr.DataArray(values, dims=("site", "time"), attrs=dict(attrs))

    out["coverage"] = xr.DataArray(
        np.asarray(coverage, dtype=np.float32),
        dims="site",
        attrs={"units": "1", "long_name": "Fraction of the site polygon+buffer covered by valid data cells"},
    )
    out["covered"] = xr.DataArray(
        np.asarray(covered, dtype=bool),
        dims="site",
        attrs={"long_name": "Site lies inside the product's domain"},
    )
    out["extraction"] = xr.DataArray(
        np.asarray(extraction).astype(str).astype(object),
        dims="site",
        attrs={"long_name": "How site values were taken: mean | nearest | none | outside | river_pixel"},
    )
    lon, lat = sites.centroids().T
    out = out.assign_coords(
        lat=("site", lat, {"units": "degrees_north", "standard_name": "latitude"}),
        lon=("site", lon, {"units": "degrees_east", "standard_name": "longitude"}),
    )

    version = default_version
    if "product_version" in daily.coords and "time" in daily["product_version"].dims:
        pv = pd.Series(daily["product_version"].values, index=daily["time"].values).reindex(index).fillna("")
        present = [v for v in dict.fromkeys(pv.astype(str)) if v]
        if len(present) == 1:
            version = present[0]
        elif len(present) > 1:
            version = "; ".join(present)
            out = out.assign_coords(
                product_version=(
                    "time",
                    pv.astype(str).to_numpy().astype(object),
                    {"long_name": "product version"},
                )
            )
    info = SOURCES[source_id]
    out.attrs = {
        "title": f"{info.title}: daily values at heritage sites",
        "source": source_id,
        "product": product,
        "product_version": version,
        "attribution": attribution(source_id),
        "request": json.dumps(requests, sort_keys=True, separators=(",", ":")),
        "retrieved_at": retrieved_at,
        "synthetic": "false",
        "Conventions": "CF-1.8",
        **(extra_attrs or {}),
    }
    return out


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def newest_mtime(files: Sequence[Path]) -> str:
    """When the newest of local files was written (UTC, ISO 8601): the retrieval time of local data."""
    return max(datetime.fromtimestamp(f.stat().st_mtime, UTC) for f in files).isoformat(timespec="seconds")


def window_of(start: date, end: date, before_days: int = 0, after_days: int = 0) -> tuple[datetime, datetime]:
    """[start − before, end + after] as datetimes covering whole days."""
    first = datetime.combine(start - timedelta(days=before_days), datetime.min.time())
    last = datetime.combine(end + timedelta(days=after_days), datetime.max.time())
    return first, last


def daily_mean(da: xr.DataArray, start: date, end: date, min_count: int = 1) -> xr.DataArray:
    """Mean per UTC day of a (site, time) series, NaN for days with fewer than `min_count` valid values."""
    days = daily_index(start, end)
    if "time" not in da.dims or da.sizes["time"] == 0:
        return xr.DataArray(
            np.full((da.sizes.get("site", 0), days.size), np.nan),
            dims=("site", "time"),
            coords={"time": days},
        )
    day = xr.DataArray(pd.DatetimeIndex(da["time"].values).floor("D").to_numpy(), dims="time", name="day")
    grouped = da.groupby(day)
    mean = grouped.mean("time", skipna=True)
    count = grouped.count("time")
    mean = mean.where(count >= min_count).rename(day="time")
    return mean.reindex(time=days.to_numpy()).transpose("site", "time")


def daily_labels(labels: xr.DataArray, start: date, end: date) -> np.ndarray:
    """Per-day product-version labels from a per-time label coordinate (several in a day: joined)."""
    days = daily_index(start, end)
    series = pd.Series(labels.values.astype(str), index=pd.DatetimeIndex(labels["time"].values).floor("D"))
    series = series[series != ""]
    per_day = series.groupby(level=0).agg(lambda s: "; ".join(dict.fromkeys(s)))
    return per_day.reindex(days).fillna("").to_numpy().astype(object)


def time_ranges(files: Sequence[Path]) -> dict[Path, tuple[np.datetime64, np.datetime64] | None]:
    """First and last time stamp of each file (None: no time axis or unreadable), reading coordinates only."""
    out: dict[Path, tuple[np.datetime64, np.datetime64] | None] = {}
    for path in files:
        bounds = None
        try:
            with open_normalised(path) as datasets:
                stamps = [ds["time"].values for ds in datasets if "time" in ds.dims and ds.sizes["time"]]
                if stamps:
                    every = np.concatenate(stamps)
                    bounds = (every.min(), every.max())
        except ImportError:
            raise
        except Exception as exc:
            log.warning("%s: not readable (%s)", path.name, exc)
        out[path] = bounds
    return out


def files_in(
    ranges: dict[Path, tuple[np.datetime64, np.datetime64] | None], window: tuple[datetime, datetime]
) -> list[Path]:
    """The files whose time span meets `window` (files without a time axis are kept)."""
    t0, t1 = np.datetime64(window[0], "ns"), np.datetime64(window[1], "ns")
    return [p for p, r in ranges.items() if r is None or (r[0] <= t1 and r[1] >= t0)]


def concat_daily(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """Daily datasets of consecutive periods joined along time (a variable absent from a part: NaN there)."""
    parts = [p for p in parts if p.sizes.get("time", 0)]
    if not parts:
        return xr.Dataset()
    if len(parts) == 1:
        return parts[0]
    names = list(dict.fromkeys(str(v) for p in parts for v in p.data_vars))
    pieces = []
    for part in parts:
        missing = {
            name: xr.DataArray(
                np.full((part.sizes["site"], part.sizes["time"]), np.nan),
                dims=("site", "time"),
                coords={"time": part["time"].values},
            )
            for name in names
            if name not in part.data_vars
        }
        pieces.append(part.assign(missing) if missing else part)
    return xr.concat(pieces, dim="time", data_vars="all", coords="minimal", compat="override", join="outer")
