"""Sentinel-2 L2A daily vegetation, moisture and burn indices per site, from the Sentinel Hub Statistical API.

Remote mode talks to Sentinel Hub on the Copernicus Data Space Ecosystem through the real `sentinelhub`
client: `SHConfig` built from our settings only (never from `~/.config/sentinelhub` or `SH_*` variables),
Sentinel-2 L2A rebound to `HM_SH_BASE_URL`, one `SentinelHubStatistical` request per site per run over the
site polygon grown by its buffer and projected to its UTM zone (resolution `HM_SENTINEL2_RESOLUTION_M`
metres), daily (`P1D`) intervals, and an evalscript that masks clouds, shadows, cirrus, snow and defective
pixels with the scene classification (SCL) through the `dataMask` output.

Outputs per site and day with an acquisition: `ndvi` (B08/B04), `ndmi` (B8A/B11), `nbr` (B8A/B12), the
mean of valid pixels, and `valid_fraction` = 1 − noDataCount/sampleCount; `nbr_hist` (site, time, nbr_bin)
keeps the NBR histogram for dNBR burn severity. Fully cloudy days (sampleCount == noDataCount) are dropped;
days without acquisition are absent from the response and NaN in the cube. A `PARTIAL` answer keeps its
good intervals; failed intervals are listed in the `failed_intervals` attribute (JSON).

`coverage` of a site is its best `valid_fraction` in the period (0 when no valid day); `covered` is always
true (Sentinel-2 images all land).

Local mode reads saved Statistical API answers from `HM_SENTINEL2_PATH`, one file per site named
`<site_id>.json`, holding a response object, a list of them (what `SentinelHubStatistical.get_data()`
returns) or Batch Statistical result entries (`{"id", "identifier", "response"}`).

dNBR (`Sentinel2Source.fetch_dnbr`): per site, the histogram of the per-pixel differenced Normalized Burn
Ratio between a pre-fire and a post-fire window (by default the same window a year earlier, so that both
see the same season), as `dnbr_hist` (site, time, dnbr_bin) stamped on the first day of the post window,
with bin edges `dnbr_bin_low`/`dnbr_bin_high` (400 bins of 0.01 from −2 to 2: every Key & Benson class
edge is a bin edge). dNBR is per pixel, so the two windows must meet in one evalscript: one request per
site whose time range runs from the start of the pre window to the end of the post window, aggregated as a
single interval (`P<n>D`), with `mosaicking: "ORBIT"`; `preProcessScenes` keeps only the orbits inside
the two windows, and `evaluatePixel` takes, per pixel, the median NBR of the clear (SCL-masked) pre and
post orbits and returns their difference, valid where both windows have a clear orbit. Underflow and
overflow counts (|dNBR| > 2, impossible) join the outer bins. Local mode reads `<site_id>.dnbr.json`.

Budget: each run reserves one request per site not served from the cache against
`HM_SH_MONTHLY_REQUEST_BUDGET` (file `<data dir>/cache/sentinel2/budget.json`) and then books the number of
HTTP requests actually sent (retries included).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from shapely.geometry.base import BaseGeometry

from monitor.settings import Settings
from monitor.sources import SOURCES, attribution
from monitor.sources.base import (
    SourceAuthError,
    SourceError,
    SourceNotAvailableError,
    SourceRequestError,
    SourceUnavailableError,
)
from monitor.sources.sh_client import (
    RawCache,
    RequestBudget,
    RetryAfterTooLongError,
    StatisticalClient,
    request_fingerprint,
    s2l2a_collection,
)
from sites import SiteSet

log = logging.getLogger(__name__)

SOURCE_ID = "sentinel2"
COLLECTION_TYPE = "sentinel-2-l2a"
#: First day with Sentinel-2 data (Sentinel-2A launch); nothing is requested before it.
MISSION_START = date(2015, 6, 23)

#: SCL classes masked out: no data, saturated/defective, cloud shadow, unclassified, cloud medium and high
#: probability, thin cirrus, snow/ice (as `examples/data/statapi_evalscript_cdse.js`, plus 1 and 11).
MASKED_SCL = (0, 1, 3, 7, 8, 9, 10, 11)

EVALSCRIPT = (
    """//VERSION=3
function setup() {
  return {
    input: [{bands: ["B04", "B08", "B8A", "B11", "B12", "SCL", "dataMask"]}],
    output: [
      {id: "ndvi", bands: 1, sampleType: "FLOAT32"},
      {id: "ndmi", bands: 1, sampleType: "FLOAT32"},
      {id: "nbr", bands: 1, sampleType: "FLOAT32"},
      {id: "dataMask", bands: 1}
    ]
  };
}

const MASKED_SCL = ["""
    + ", ".join(str(c) for c in MASKED_SCL)
    + """];

function evaluatePixel(samples) {
  let valid = samples.dataMask;
  if (MASKED_SCL.includes(samples.SCL)) {
    valid = 0;
  }
  return {
    ndvi: [index(samples.B08, samples.B04)],
    ndmi: [index(samples.B8A, samples.B11)],
    nbr: [index(samples.B8A, samples.B12)],
    dataMask: [valid]
  };
}
"""
)

NBR_BINS = 20
NBR_EDGES = np.linspace(-1.0, 1.0, NBR_BINS + 1)
CALCULATIONS = {"nbr": {"histograms": {"default": {"nBins": NBR_BINS, "lowEdge": -1.0, "highEdge": 1.0}}}}
EVALSCRIPT_SHA256 = hashlib.sha256(EVALSCRIPT.encode()).hexdigest()
PRODUCT_VERSION = f"L2A statistics, evalscript {EVALSCRIPT_SHA256[:12]}"

INDICES = ("ndvi", "ndmi", "nbr")
VARIABLES: dict[str, dict[str, str]] = {
    "ndvi": {
        "units": "1",
        "long_name": "Normalized difference vegetation index (B08, B04), mean of valid pixels",
        "cell_methods": "area: mean where valid",
    },
    "ndmi": {
        "units": "1",
        "long_name": "Normalized difference moisture index (B8A, B11), mean of valid pixels",
        "cell_methods": "area: mean where valid",
    },
    "nbr": {
        "units": "1",
        "long_name": "Normalized burn ratio (B8A, B12), mean of valid pixels",
        "cell_methods": "area: mean where valid",
    },
    "valid_fraction": {
        "units": "1",
        "long_name": "Fraction of polygon+buffer pixels with valid (cloud-free) data",
    },
}


# --- geometry ------------------------------------------------------------------------------------------


def utm_epsg(geom: BaseGeometry) -> int:
    """EPSG code of the UTM zone of a geometry's representative point (lon/lat)."""
    p = geom.representative_point()
    zone = min(max(math.floor((p.x + 180.0) / 6.0) + 1, 1), 60)
    return (32600 if p.y >= 0 else 32700) + zone


def to_utm(geom: BaseGeometry) -> tuple[BaseGeometry, int]:
    """A lon/lat geometry projected to its UTM zone, with the EPSG code."""
    import shapely
    from pyproj import Transformer

    epsg = utm_epsg(geom)
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    return shapely.transform(geom, lambda x, y: tr.transform(x, y), interleaved=False), epsg


# --- parsing ------------------------------------------------------------------------------------------


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _error_type(err: Any) -> str:
    if isinstance(err, dict):
        return str(err.get("type") or err.get("message") or "ERROR")
    return str(err)


def _responses(payload: Any) -> list[dict]:
    """Normalise a saved/returned answer to a list of Statistical API response objects."""
    if payload is None:
        return []
    if isinstance(payload, list):
        out: list[dict] = []
        for item in payload:
            out.extend(_responses(item))
        return out
    if not isinstance(payload, dict):
        return []
    if "response" in payload or ("identifier" in payload and "error" in payload):
        inner = payload.get("response")
        if inner is None:
            return [{"data": None, "status": "FAILED", "error": payload.get("error")}]
        return _responses(inner)
    return [payload]


def parse_statistics(payload: Any, start: date, end: date) -> dict[str, Any]:
    """Daily values of one site from Statistical API answers.

    Returns `{"days": {date: {var: value}}, "hist": {date: counts}, "failed": [...], "cloudy": n,
    "status": str}`. Intervals outside [start, end] are ignored.
    """
    days: dict[date, dict[str, float]] = {}
    hist: dict[date, np.ndarray] = {}
    failed: list[dict[str, str]] = []
    cloudy = 0
    statuses: list[str] = []
    for response in _responses(payload):
        status = str(response.get("status") or "OK")
        statuses.append(status)
        data = response.get("data")
        if not isinstance(data, list):
            failed.append({"from": start.isoformat(), "to": end.isoformat(), "error": status})
            continue
        for item in data:
            interval = item.get("interval") or {}
            try:
                day = datetime.fromisoformat(str(interval["from"]).replace("Z", "+00:00")).date()
            except (KeyError, ValueError):
                continue
            if not start <= day <= end:
                continue
            if "error" in item or not item.get("outputs"):
                failed.append(
                    {
                        "from": str(interval.get("from")),
                        "to": str(interval.get("to")),
                        "error": _error_type(item.get("error", "NO_OUTPUTS")),
                    }
                )
                continue
            values, counts = _interval_values(item["outputs"])
            if values is None:
                cloudy += 1
                continue
            days[day] = values
            if counts is not None:
                hist[day] = counts
    if not statuses:
        overall = "MISSING"
    elif "FAILED" in statuses and len(set(statuses)) == 1:
        overall = "FAILED"
    elif failed or "PARTIAL" in statuses:
        overall = "PARTIAL"
    else:
        overall = "OK"
    # a later successful answer for a day (e.g. a retried interval) wins over a failure
    failed = [f for f in failed if _day(f["from"]) not in days]
    return {"days": days, "hist": hist, "failed": failed, "cloudy": cloudy, "status": overall}


def _day(text: str) -> date | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _interval_values(outputs: dict) -> tuple[dict[str, float] | None, np.ndarray | None]:
    """Means of the index outputs of one interval and the NBR histogram; None when fully cloudy."""
    values: dict[str, float] = {}
    sample = nodata = None
    counts = None
    for name in INDICES:
        band = ((outputs.get(name) or {}).get("bands") or {}).get("B0")
        if not band:
            values[name] = float("nan")
            continue
        stats = band.get("stats") or {}
        if sample is None and "sampleCount" in stats:
            sample, nodata = int(stats["sampleCount"]), int(stats.get("noDataCount", 0))
        s_count, n_count = stats.get("sampleCount"), stats.get("noDataCount", 0)
        values[name] = (
            float("nan")
            if s_count is not None and int(s_count) == int(n_count)
            else _float(stats.get("mean"))
        )
        if name == "nbr":
            bins = (band.get("histogram") or {}).get("bins") or []
            if len(bins) == NBR_BINS:
                counts = np.array([int(b.get("count", 0)) for b in bins], dtype=np.float64)
    if sample is None or sample == 0 or sample == nodata:
        return None, None
    values["valid_fraction"] = 1.0 - nodata / sample
    return values, counts


# --- dNBR -----------------------------------------------------------------------------------------------

DNBR_BINS = 400
DNBR_LOW, DNBR_HIGH = -2.0, 2.0
#: Bin edges of `dnbr_hist` (0.01 wide: -0.25, -0.10, 0.10, 0.27, 0.44 and 0.66 are edges).
DNBR_EDGES = np.round(np.linspace(DNBR_LOW, DNBR_HIGH, DNBR_BINS + 1), 6)
DNBR_CALCULATIONS = {
    "dnbr": {"histograms": {"default": {"nBins": DNBR_BINS, "lowEdge": DNBR_LOW, "highEdge": DNBR_HIGH}}}
}

_DNBR_EVALSCRIPT = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["B8A", "B12", "SCL", "dataMask"]}],
    output: [
      {id: "dnbr", bands: 1, sampleType: "FLOAT32"},
      {id: "dataMask", bands: 1}
    ],
    mosaicking: "ORBIT"
  };
}

const MASKED_SCL = [%(masked)s];
const PRE = [Date.parse("%(pre0)s"), Date.parse("%(pre1)s")];
const POST = [Date.parse("%(post0)s"), Date.parse("%(post1)s")];

function inWindow(t, w) {
  return t >= w[0] && t < w[1];
}

function preProcessScenes(collections) {
  collections.scenes.orbits = collections.scenes.orbits.filter(function (orbit) {
    const t = Date.parse(orbit.dateFrom);
    return inWindow(t, PRE) || inWindow(t, POST);
  });
  return collections;
}

function median(values) {
  values.sort(function (a, b) { return a - b; });
  const m = Math.floor(values.length / 2);
  return values.length %% 2 ? values[m] : (values[m - 1] + values[m]) / 2;
}

function evaluatePixel(samples, scenes) {
  const pre = [];
  const post = [];
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    if (s.dataMask !== 1 || MASKED_SCL.includes(s.SCL)) {
      continue;
    }
    const t = Date.parse(scenes.orbits[i].dateFrom);
    const nbr = index(s.B8A, s.B12);
    if (inWindow(t, PRE)) {
      pre.push(nbr);
    } else if (inWindow(t, POST)) {
      post.push(nbr);
    }
  }
  if (pre.length === 0 || post.length === 0) {
    return {dnbr: [NaN], dataMask: [0]};
  }
  return {dnbr: [median(pre) - median(post)], dataMask: [1]};
}
"""

#: Hash of the evalscript template (the windows are filled in per request).
DNBR_EVALSCRIPT_SHA256 = hashlib.sha256(_DNBR_EVALSCRIPT.encode()).hexdigest()


def _utc(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def dnbr_evalscript(pre: tuple[date, date], post: tuple[date, date]) -> str:
    """The evalscript of one dNBR request: windows are [first day, last day] inclusive, pre before post."""
    return _DNBR_EVALSCRIPT % {
        "masked": ", ".join(str(c) for c in MASKED_SCL),
        "pre0": _utc(pre[0]),
        "pre1": _utc(pre[1] + timedelta(days=1)),
        "post0": _utc(post[0]),
        "post1": _utc(post[1] + timedelta(days=1)),
    }


def anniversary_window(post: tuple[date, date]) -> tuple[date, date]:
    """The same days one year before `post` (29 February becomes 28 February)."""

    def back(day: date) -> date:
        return day.replace(year=day.year - 1, day=min(day.day, 28) if day.month == 2 else day.day)

    return back(post[0]), back(post[1])


def check_windows(pre: tuple[date, date], post: tuple[date, date]) -> None:
    """Refuse empty windows and a pre window that does not end before the post window starts."""
    if pre[1] < pre[0] or post[1] < post[0]:
        raise SourceRequestError(f"empty dNBR window: pre {pre}, post {post}")
    if pre[1] >= post[0]:
        raise SourceRequestError(f"the pre-fire window {pre} must end before the post-fire window {post}")


def parse_dnbr(payload: Any) -> dict[str, Any]:
    """Counts per dNBR bin and the valid fraction of one site's dNBR answer.

    Returns `{"counts": array of DNBR_BINS or None, "valid_fraction": float, "status": str, "failed": [...]}`;
    counts are None when the answer failed or has no histogram of the requested bins.
    """
    counts = None
    valid = float("nan")
    failed: list[dict[str, str]] = []
    statuses: list[str] = []
    for response in _responses(payload):
        status = str(response.get("status") or "OK")
        statuses.append(status)
        data = response.get("data")
        if not isinstance(data, list):
            failed.append({"from": "", "to": "", "error": status})
            continue
        for item in data:
            interval = item.get("interval") or {}
            band = (((item.get("outputs") or {}).get("dnbr") or {}).get("bands") or {}).get("B0")
            if "error" in item or not band:
                failed.append(
                    {
                        "from": str(interval.get("from")),
                        "to": str(interval.get("to")),
                        "error": _error_type(item.get("error", "NO_OUTPUTS")),
                    }
                )
                continue
            histogram = band.get("histogram") or {}
            bins = histogram.get("bins") or []
            if len(bins) != DNBR_BINS:
                failed.append(
                    {"from": str(interval.get("from")), "to": str(interval.get("to")), "error": "BINS"}
                )
                continue
            here = np.array([float(b.get("count", 0)) for b in bins])
            here[0] += float(histogram.get("underflowCount", 0) or 0)
            here[-1] += float(histogram.get("overflowCount", 0) or 0)
            counts = here if counts is None else counts + here
            stats = band.get("stats") or {}
            sample, nodata = stats.get("sampleCount"), stats.get("noDataCount", 0)
            if sample:
                valid = 1.0 - int(nodata) / int(sample)
    if not statuses:
        overall = "MISSING"
    elif counts is None:
        overall = "FAILED"
    elif failed or "PARTIAL" in statuses:
        overall = "PARTIAL"
    else:
        overall = "OK"
    return {"counts": counts, "valid_fraction": valid, "status": overall, "failed": failed}


# --- the source ---------------------------------------------------------------------------------------


class Sentinel2Source:
    """Sentinel-2 L2A statistics per site (remote: Statistical API on CDSE; local: saved answers)."""

    def __init__(self, settings: Settings, mode: str) -> None:
        if mode not in ("local", "remote"):
            raise SourceNotAvailableError(f"sentinel2 has no {mode!r} mode here; use local or remote")
        self.info = SOURCES[SOURCE_ID]
        self.mode = mode
        self.settings = settings
        self.cache = RawCache(settings.data_dir / "cache" / SOURCE_ID)
        self.budget = RequestBudget(
            settings.data_dir / "cache" / SOURCE_ID / "budget.json", settings.sh_monthly_request_budget
        )
        self._session = None
        self._session_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Sentinel2Source(mode={self.mode!r})"

    # -- public --------------------------------------------------------------------------------------

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        if end < start:
            raise SourceRequestError(f"end {end} is before start {start}")
        if self.mode == "local":
            parsed, request = self._fetch_local(sites, start, end)
        else:
            parsed, request = self._fetch_remote(sites, start, end)
        return self._cube(sites, start, end, parsed, request)

    def fetch_dnbr(
        self, sites: SiteSet, post: tuple[date, date], pre: tuple[date, date] | None = None
    ) -> xr.Dataset:
        """The dNBR histogram of each site between `pre` and `post` (first and last day of each window;
        `pre` defaults to the same days a year before), as `dnbr_hist` (site, time, dnbr_bin) with one time
        step on the first day of `post`, and `dnbr_valid_fraction` (site, time)."""
        pre = anniversary_window(post) if pre is None else pre
        check_windows(pre, post)
        if self.mode == "local":
            parsed, request = self._fetch_dnbr_local(sites)
        else:
            parsed, request = self._fetch_dnbr_remote(sites, pre, post)
        return self._dnbr_cube(sites, pre, post, parsed, request)

    # -- local ---------------------------------------------------------------------------------------

    def _fetch_local(self, sites: SiteSet, start: date, end: date) -> tuple[dict, dict]:
        folder = self.settings.sentinel2_path
        if folder is None or not Path(folder).is_dir():
            raise SourceRequestError(
                "HM_SENTINEL2_PATH must name a folder of <site_id>.json files (local mode)"
            )
        parsed: dict[str, dict] = {}
        for site in sites:
            path = Path(folder) / f"{site.id}.json"
            if not path.is_file():
                parsed[site.id] = parse_statistics(None, start, end)
                continue
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise SourceRequestError(f"{path.name} is not valid JSON") from exc
            parsed[site.id] = parse_statistics(payload, start, end)
        return parsed, {
            "mode": "local",
            "path": str(folder),
            "start": start.isoformat(),
            "end": end.isoformat(),
        }

    def _fetch_dnbr_local(self, sites: SiteSet) -> tuple[dict, dict]:
        folder = self.settings.sentinel2_path
        if folder is None or not Path(folder).is_dir():
            raise SourceRequestError(
                "HM_SENTINEL2_PATH must name a folder of <site_id>.dnbr.json files (local mode)"
            )
        parsed: dict[str, dict] = {}
        for site in sites:
            path = Path(folder) / f"{site.id}.dnbr.json"
            try:
                payload = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            except ValueError as exc:
                raise SourceRequestError(f"{path.name} is not valid JSON") from exc
            parsed[site.id] = parse_dnbr(payload)
        return parsed, {"mode": "local", "path": str(folder)}

    # -- remote --------------------------------------------------------------------------------------

    def _config(self):
        from sentinelhub import SHConfig

        s = self.settings
        return SHConfig(
            use_defaults=True,
            sh_client_id=s.sh_client_id or "",
            sh_client_secret=s.sh_client_secret.get_secret_value() if s.sh_client_secret else "",
            sh_base_url=s.sh_base_url.rstrip("/"),
            sh_token_url=s.sh_token_url,
            max_download_attempts=s.sh_max_download_attempts,
            download_sleep_time=s.sh_download_sleep_seconds,
            download_timeout_seconds=s.sh_timeout_seconds,
            max_retries=s.sh_max_rate_limit_retries,
            number_of_download_processes=1,
        )

    def _get_session(self, config):
        """The OAuth session, made on first use and kept (sentinelhub refreshes its token before expiry)."""
        from sentinelhub import SentinelHubSession

        with self._session_lock:
            if self._session is None:
                try:
                    self._session = SentinelHubSession(config=config)
                except Exception as exc:
                    raise self._map_error(exc) from exc
            return self._session

    def _build_request(self, geom_utm: BaseGeometry, epsg: int, start: date, end: date, config):
        from sentinelhub import CRS, Geometry, SentinelHubStatistical

        t0 = datetime(start.year, start.month, start.day, tzinfo=UTC)
        t1 = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        res = float(self.settings.sentinel2_resolution_m)
        request = SentinelHubStatistical(
            aggregation=SentinelHubStatistical.aggregation(
                evalscript=EVALSCRIPT,
                time_interval=(t0, t1),
                aggregation_interval="P1D",
                resolution=(res, res),
            ),
            input_data=[SentinelHubStatistical.input_data(s2l2a_collection(config.sh_base_url))],
            geometry=Geometry(geom_utm, crs=CRS(epsg)),
            calculations=CALCULATIONS,
            config=config,
        )
        return request.download_list[0]

    def _fetch_remote(self, sites: SiteSet, start: date, end: date) -> tuple[dict, dict]:
        s = self.settings
        first = max(start, MISSION_START)
        config = self._remote_config()

        def download_for(geom_utm: BaseGeometry, epsg: int) -> Any:
            return self._build_request(geom_utm, epsg, first, end, config) if end >= first else None

        parsed, site_crs, sent, failed_sites = self._run_remote(
            sites,
            config,
            download_for,
            lambda payload: parse_statistics(payload, start, end),
            cacheable=end < datetime.now(UTC).date() - timedelta(days=self.info.latency_days),
        )
        request = {
            "mode": "remote",
            "endpoint": f"{config.sh_base_url}/api/v1/statistics",
            "collection": COLLECTION_TYPE,
            "time_range": [
                first.isoformat() + "T00:00:00Z",
                (end + timedelta(days=1)).isoformat() + "T00:00:00Z",
            ],
            "aggregation_interval": "P1D",
            "resolution_m": float(s.sentinel2_resolution_m),
            "evalscript_sha256": EVALSCRIPT_SHA256,
            "masked_scl": list(MASKED_SCL),
            "site_crs": site_crs,
            "requests_sent": sent,
            "failed_sites": failed_sites,
        }
        return parsed, request

    def _build_dnbr_request(
        self, geom_utm: BaseGeometry, epsg: int, pre: tuple[date, date], post: tuple[date, date], config
    ):
        from sentinelhub import CRS, Geometry, SentinelHubStatistical

        t0 = datetime(pre[0].year, pre[0].month, pre[0].day, tzinfo=UTC)
        t1 = datetime(post[1].year, post[1].month, post[1].day, tzinfo=UTC) + timedelta(days=1)
        res = float(self.settings.sentinel2_resolution_m)
        request = SentinelHubStatistical(
            aggregation=SentinelHubStatistical.aggregation(
                evalscript=dnbr_evalscript(pre, post),
                time_interval=(t0, t1),
                aggregation_interval=f"P{(t1 - t0).days}D",  # the whole span: one interval
                resolution=(res, res),
            ),
            input_data=[SentinelHubStatistical.input_data(s2l2a_collection(config.sh_base_url))],
            geometry=Geometry(geom_utm, crs=CRS(epsg)),
            calculations=DNBR_CALCULATIONS,
            config=config,
        )
        return request.download_list[0]

    def _fetch_dnbr_remote(
        self, sites: SiteSet, pre: tuple[date, date], post: tuple[date, date]
    ) -> tuple[dict, dict]:
        if pre[0] < MISSION_START:
            raise SourceRequestError(f"the pre-fire window {pre} starts before Sentinel-2 ({MISSION_START})")
        config = self._remote_config()
        parsed, site_crs, sent, failed_sites = self._run_remote(
            sites,
            config,
            lambda geom_utm, epsg: self._build_dnbr_request(geom_utm, epsg, pre, post, config),
            parse_dnbr,
            cacheable=post[1] < datetime.now(UTC).date() - timedelta(days=self.info.latency_days),
        )
        request = {
            "mode": "remote",
            "endpoint": f"{config.sh_base_url}/api/v1/statistics",
            "collection": COLLECTION_TYPE,
            "mosaicking": "ORBIT",
            "resolution_m": float(self.settings.sentinel2_resolution_m),
            "masked_scl": list(MASKED_SCL),
            "site_crs": site_crs,
            "requests_sent": sent,
            "failed_sites": failed_sites,
        }
        return parsed, request

    def _remote_config(self):
        s = self.settings
        if not s.sh_client_id or not s.sh_client_secret:
            raise SourceAuthError(
                "Sentinel Hub credentials missing: set HM_SH_CLIENT_ID and HM_SH_CLIENT_SECRET"
            )
        return self._config()

    def _run_remote(
        self,
        sites: SiteSet,
        config,
        download_for: Callable[[BaseGeometry, int], Any],
        parse: Callable[[Any], dict],
        cacheable: bool,
    ) -> tuple[dict[str, dict], dict[str, str], int, dict[str, str]]:
        """One Statistical API request per site (`download_for` its UTM geometry; None: nothing to ask),
        served from the raw cache when `cacheable`, within the request budget, parsed by `parse`.

        Returns (parsed answer per site, site CRS, HTTP requests sent, request errors per site). An auth or
        availability error, or the refusal of every request, is raised; other request errors leave that
        site with `parse(None)`.
        """
        s = self.settings
        parsed: dict[str, dict] = {}
        site_crs: dict[str, str] = {}
        todo: dict[str, tuple[Any, str]] = {}
        geoms = sites.geometries(buffered=True)
        for site, geom in zip(sites, geoms, strict=True):
            geom_utm, epsg = to_utm(geom)
            download = download_for(geom_utm, epsg)
            if download is None:
                parsed[site.id] = parse(None)
                continue
            site_crs[site.id] = f"EPSG:{epsg}"
            key = RawCache.key(request_fingerprint(download))
            cached = self.cache.get(key) if cacheable else None
            if cached is not None:
                parsed[site.id] = parse(cached)
            else:
                todo[site.id] = (download, key)

        sent = 0
        sent_lock = threading.Lock()

        def count() -> None:
            nonlocal sent
            with sent_lock:
                sent += 1

        month = self.budget.reserve(len(todo)) if todo else None
        errors: dict[str, SourceError] = {}
        try:
            if todo:
                session = self._get_session(config)

                def run(site_id: str) -> Any:
                    download, _ = todo[site_id]
                    client = StatisticalClient(
                        config=config,
                        session=session,
                        max_retry_after_seconds=s.sh_max_retry_after_seconds,
                        default_retry_time=min(30.0, s.sh_max_retry_after_seconds),
                        on_request=count,
                    )
                    return client.download([download], max_threads=1)[0]

                workers = min(s.sh_max_threads, len(todo))
                with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                    futures = {pool.submit(run, sid): sid for sid in todo}
                    for fut in concurrent.futures.as_completed(futures):
                        sid = futures[fut]
                        try:
                            payload = fut.result()
                        except Exception as exc:
                            mapped = self._map_error(exc)
                            if mapped is not exc:
                                mapped.__cause__ = exc
                            errors[sid] = mapped
                            continue
                        result = parse(payload)
                        parsed[sid] = result
                        if cacheable and result["status"] == "OK":
                            self.cache.put(todo[sid][1], payload)
        finally:
            if month is not None:
                self.budget.settle(month, len(todo), sent)

        for kind in (SourceAuthError, SourceUnavailableError):
            hit = [sid for sid, err in errors.items() if isinstance(err, kind)]
            if hit:
                raise errors[hit[0]]
        if errors and len(errors) == len(todo):  # the service refused every request: a fault of ours
            raise next(iter(errors.values()))
        failed_sites = {}
        for sid, err in errors.items():  # request errors: that site cannot be served, the others can
            failed_sites[sid] = str(err)
            parsed[sid] = parse(None)
        return parsed, site_crs, sent, failed_sites

    def _map_error(self, exc: BaseException) -> SourceError:
        """Our error class for an exception of sentinelhub/oauthlib/requests, with secrets scrubbed."""
        import requests
        from oauthlib.oauth2.rfc6749.errors import InsecureTransportError, OAuth2Error
        from sentinelhub.exceptions import DownloadFailedException, OutOfRequestsException

        msg = self._scrub(str(exc))
        if isinstance(exc, SourceError):
            return exc
        if isinstance(exc, RetryAfterTooLongError):
            return SourceUnavailableError(msg)
        if isinstance(exc, OutOfRequestsException):
            return SourceUnavailableError(f"Sentinel Hub kept answering 429 Too Many Requests: {msg}")
        if isinstance(exc, InsecureTransportError):
            return SourceRequestError(
                "the Sentinel Hub token URL is plain http; oauthlib refuses it unless "
                "OAUTHLIB_INSECURE_TRANSPORT=1 (only for a local test service)"
            )
        if isinstance(exc, OAuth2Error):
            if exc.status_code in (401, 403) or exc.error in (
                "invalid_client",
                "unauthorized_client",
                "invalid_grant",
                "access_denied",
            ):
                return SourceAuthError(f"Sentinel Hub refused the credentials ({exc.error})")
            return SourceRequestError(f"Sentinel Hub token request failed ({exc.error})")
        if isinstance(exc, DownloadFailedException):
            inner = exc.request_exception
            status = getattr(getattr(inner, "response", None), "status_code", None)
            if status in (401, 403):
                return SourceAuthError(f"Sentinel Hub refused the request (HTTP {status})")
            if status is not None and 400 <= status < 500 and status != 429:
                return SourceRequestError(f"Sentinel Hub rejected the request (HTTP {status}): {msg}")
            return SourceUnavailableError(f"Sentinel Hub unavailable after retries: {msg}")
        if isinstance(exc, requests.RequestException):
            return SourceUnavailableError(f"Sentinel Hub unreachable: {msg}")
        if isinstance(exc, ValueError) and "sh_client" in msg:
            return SourceAuthError("Sentinel Hub credentials missing")
        return SourceUnavailableError(f"Sentinel Hub request failed: {type(exc).__name__}: {msg}")

    def _scrub(self, text: str) -> str:
        secret = self.settings.sh_client_secret
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "***")
        return text

    # -- cube ----------------------------------------------------------------------------------------

    def _cube(
        self, sites: SiteSet, start: date, end: date, parsed: dict[str, dict], request: dict
    ) -> xr.Dataset:
        ids = sites.ids
        all_days = sorted({d for sid in ids for d in parsed.get(sid, {}).get("days", {})})
        time = np.array([np.datetime64(d.isoformat(), "ns") for d in all_days], dtype="datetime64[ns]")
        col = {d: j for j, d in enumerate(all_days)}
        shape = (len(ids), len(all_days))
        arrays = {name: np.full(shape, np.nan, dtype=np.float32) for name in VARIABLES}
        hist = np.full((*shape, NBR_BINS), np.nan, dtype=np.float32)
        failed: dict[str, list] = {}
        statuses: dict[str, str] = {}
        cloudy: dict[str, int] = {}
        for i, sid in enumerate(ids):
            result = parsed.get(sid) or parse_statistics(None, start, end)
            statuses[sid] = result["status"]
            cloudy[sid] = result["cloudy"]
            if result["failed"]:
                failed[sid] = result["failed"]
            for day, values in result["days"].items():
                for name in VARIABLES:
                    arrays[name][i, col[day]] = values.get(name, np.nan)
            for day, counts in result["hist"].items():
                hist[i, col[day]] = counts
        vf = arrays["valid_fraction"]
        coverage = (
            np.clip(np.nan_to_num(vf, nan=0.0).max(axis=1), 0.0, 1.0) if all_days else np.zeros(len(ids))
        )
        ds = xr.Dataset(
            {name: (("site", "time"), arrays[name], dict(attrs)) for name, attrs in VARIABLES.items()},
            coords={
                "site": ("site", np.array(ids, dtype=object), {"long_name": "site id"}),
                "time": ("time", time, {"standard_name": "time", "long_name": "time"}),
                "nbr_bin_low": ("nbr_bin", NBR_EDGES[:-1], {"units": "1", "long_name": "NBR bin low edge"}),
                "nbr_bin_high": ("nbr_bin", NBR_EDGES[1:], {"units": "1", "long_name": "NBR bin high edge"}),
            },
        )
        ds["nbr_hist"] = (
            ("site", "time", "nbr_bin"),
            hist,
            {"units": "1", "long_name": "Count of valid pixels per NBR bin (for dNBR burn severity)"},
        )
        ds["coverage"] = (
            "site",
            coverage.astype(np.float64),
            {"units": "1", "long_name": "Best fraction of polygon+buffer with valid data in the period"},
        )
        ds["covered"] = ("site", np.ones(len(ids), dtype=bool), {"long_name": "site inside product coverage"})
        ds.attrs.update(
            source=SOURCE_ID,
            product=f"{COLLECTION_TYPE} via Sentinel Hub Statistical API (CDSE)",
            product_version=PRODUCT_VERSION,
            attribution=attribution(SOURCE_ID, end.year),
            request=json.dumps(
                {**request, "start": start.isoformat(), "end": end.isoformat()}, sort_keys=True
            ),
            retrieved_at=datetime.now(UTC).isoformat(timespec="seconds"),
            synthetic="false",
            response_status=json.dumps(statuses, sort_keys=True),
            failed_intervals=json.dumps(failed, sort_keys=True),
            cloudy_days_dropped=json.dumps(cloudy, sort_keys=True),
        )
        return ds

    def _dnbr_cube(
        self,
        sites: SiteSet,
        pre: tuple[date, date],
        post: tuple[date, date],
        parsed: dict[str, dict],
        request: dict,
    ) -> xr.Dataset:
        ids = sites.ids
        hist = np.full((len(ids), 1, DNBR_BINS), np.nan, dtype=np.float32)
        valid = np.full((len(ids), 1), np.nan, dtype=np.float32)
        statuses: dict[str, str] = {}
        failed: dict[str, list] = {}
        for i, sid in enumerate(ids):
            result = parsed.get(sid) or parse_dnbr(None)
            statuses[sid] = result["status"]
            if result["failed"]:
                failed[sid] = result["failed"]
            if result["counts"] is not None:
                hist[i, 0] = result["counts"]
                valid[i, 0] = result["valid_fraction"]
        windows = {"pre": [d.isoformat() for d in pre], "post": [d.isoformat() for d in post]}
        return xr.Dataset(
            {
                "dnbr_hist": (
                    ("site", "time", "dnbr_bin"),
                    hist,
                    {
                        "units": "1",
                        "long_name": "Valid pixels per dNBR bin (median NBR of the pre window minus post)",
                    },
                ),
                "dnbr_valid_fraction": (
                    ("site", "time"),
                    valid,
                    {"units": "1", "long_name": "Fraction of site+buffer pixels clear in both windows"},
                ),
            },
            coords={
                "site": ("site", np.array(ids, dtype=object), {"long_name": "site id"}),
                "time": (
                    "time",
                    np.array([np.datetime64(post[0].isoformat(), "ns")], dtype="datetime64[ns]"),
                    {"standard_name": "time", "long_name": "first day of the post-fire window"},
                ),
                "dnbr_bin_low": (
                    "dnbr_bin",
                    DNBR_EDGES[:-1],
                    {"units": "1", "long_name": "dNBR bin low edge"},
                ),
                "dnbr_bin_high": (
                    "dnbr_bin",
                    DNBR_EDGES[1:],
                    {"units": "1", "long_name": "dNBR bin high edge"},
                ),
            },
            attrs={
                "source": SOURCE_ID,
                "product": f"{COLLECTION_TYPE} dNBR via Sentinel Hub Statistical API (CDSE)",
                "product_version": f"L2A dNBR, evalscript {DNBR_EVALSCRIPT_SHA256[:12]}",
                "attribution": attribution(SOURCE_ID, post[1].year),
                "request": json.dumps({**request, "windows": windows}, sort_keys=True),
                "dnbr_windows": json.dumps(windows),
                "retrieved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "synthetic": "false",
                "response_status": json.dumps(statuses, sort_keys=True),
                "failed_intervals": json.dumps(failed, sort_keys=True),
            },
        )


def build(settings: Settings, mode: str) -> Sentinel2Source:
    """The Sentinel-2 source in `mode` (local | remote); needs neither network nor credentials."""
    return Sentinel2Source(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    """Whether the source can run as configured (remote: one token request, no Statistical API request)."""
    mode = settings.source_mode(SOURCE_ID)
    if mode == "local":
        path = settings.sentinel2_path
        ok = path is not None and Path(path).is_dir()
        n = len(list(Path(path).glob("*.json"))) if ok else 0
        return {
            "mode": mode,
            "reachable": ok,
            "licence_accepted": None,
            "message": f"{n} saved responses in {path}" if ok else "HM_SENTINEL2_PATH is not a folder",
        }
    if mode != "remote":
        return {
            "mode": mode,
            "reachable": None,
            "licence_accepted": None,
            "message": f"mode {mode}: nothing to check",
        }
    budget = RequestBudget(
        settings.data_dir / "cache" / SOURCE_ID / "budget.json", settings.sh_monthly_request_budget
    )
    used = f"{budget.used()} of {settings.sh_monthly_request_budget} requests used this month"
    if not settings.sh_client_id or not settings.sh_client_secret:
        return {
            "mode": mode,
            "reachable": None,
            "licence_accepted": None,
            "message": f"HM_SH_CLIENT_ID / HM_SH_CLIENT_SECRET not set; {used}",
        }
    source = Sentinel2Source(settings, mode)
    try:
        source._get_session(source._config())
    except SourceError as exc:
        return {
            "mode": mode,
            "reachable": isinstance(exc, SourceAuthError),
            "licence_accepted": None,
            "message": f"{type(exc).__name__}: {exc}; {used}",
        }
    return {"mode": mode, "reachable": True, "licence_accepted": None, "message": f"token obtained; {used}"}
