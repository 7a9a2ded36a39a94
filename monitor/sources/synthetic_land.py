"""Deterministic synthetic land and emergency variables for the demo: Sentinel-2 NBR/NDMI and monthly dNBR
histograms, EGMS ground motion, CLMS imperviousness, CEMS Rapid Mapping activations and GloFAS
return-period thresholds, as a site cube.

Same rules as `monitor.sources.synthetic`, whose counter-based hashing this module reuses: every value is
a pure function of (site, date, variable), independent of the requested period and of the other sites;
events are placed in lon/lat boxes so that any site set sees them.

Time axis: the union of the days on which the requested variables have values, as the real sources
deliver them: every day for the daily variables (`nbr`, `ndmi`, `ems_active`, `ems_flooded_fraction`,
`dis24_rp*`), the first day of each month for `dnbr_hist`, 1 January of each year from 2021 for the EGMS
releases, and 1 January of the CLMS reference years 2006, 2009, 2012, 2015 and 2018 for imperviousness.
A variable is NaN on the days of the axis that are not its own.

- `nbr`, `ndmi`: daily, from the synthetic NDVI (dense: no clouds) plus noise; a burn lowers NBR.
- `dnbr_hist` (site, time, dnbr_bin): counts of valid 20 m pixels of the site+buffer per dNBR bin between
  the month of the time stamp (post) and the same month a year earlier (pre), from 2016-07 on (one year
  after the Sentinel-2A launch). Unburnt pixels scatter around 0 (sd 0.035: phenology and registration);
  burnt pixels around their NBR loss, which recovers with an 18-month e-folding time, so that a year
  after the fire the anniversary pair shows enhanced regrowth.
- EGMS: mean/min/max velocity (mm/yr), max − min inside the polygon, acceleration (mm/yr²), points.
- `imperviousness_mean`, `imperviousness_mean_buffer` (%): slow sealing growth between reference years.
- `ems_active` (count), `ems_flooded_fraction` (NaN except on delineation days inside the activation).
- `dis24_rp2|5|20` (m3 s-1): the Gumbel/L-moment return levels of the annual maxima of the synthetic
  `dis24` of 1991–2020 (the GloFAS method), repeated on every day so that the variable store keeps them.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import special

from monitor.sources import synthetic
from monitor.sources.synthetic import (
    _EPOCH,
    _Geo,
    _normal,
    _site_uniform,
    _stable_u64,
    _uniform,
)
from sites.model import SiteSet

__all__ = ["ACTIVATIONS", "BURNS", "DNBR_EDGES", "VARIABLES", "Activation", "Burn", "generate_land"]

VARIABLES: dict[str, dict[str, str]] = {
    "nbr": {"units": "1", "long_name": "Normalized burn ratio (B8A, B12), site+buffer mean"},
    "ndmi": {"units": "1", "long_name": "Normalized difference moisture index (B8A, B11), site+buffer mean"},
    "dnbr_hist": {
        "units": "1",
        "long_name": "Valid pixels per dNBR bin, post (month of the time stamp) minus pre (a year earlier)",
    },
    "ground_velocity_mean": {"units": "mm yr-1", "long_name": "Mean velocity of EGMS points in site+buffer"},
    "ground_velocity_min": {"units": "mm yr-1", "long_name": "Lowest velocity of EGMS points in site+buffer"},
    "ground_velocity_max": {
        "units": "mm yr-1",
        "long_name": "Highest velocity of EGMS points in site+buffer",
    },
    "ground_velocity_differential": {
        "units": "mm yr-1",
        "long_name": "Max minus min velocity of EGMS points inside the site polygon",
    },
    "ground_acceleration_mean": {
        "units": "mm yr-2",
        "long_name": "Mean acceleration of EGMS points in site+buffer",
    },
    "egms_points": {"units": "1", "long_name": "EGMS points in site+buffer passing the quality filter"},
    "imperviousness_mean": {"units": "%", "long_name": "Mean imperviousness density in the site polygon"},
    "imperviousness_mean_buffer": {
        "units": "%",
        "long_name": "Mean imperviousness density in the buffer ring",
    },
    "ems_active": {
        "units": "1",
        "long_name": "Active CEMS Rapid Mapping activations overlapping the site+buffer",
    },
    "ems_flooded_fraction": {
        "units": "1",
        "long_name": "Fraction of the site+buffer inside observed flood delineations",
    },
    "dis24_rp2": {"units": "m3 s-1", "long_name": "2-year return-period discharge (synthetic)"},
    "dis24_rp5": {"units": "m3 s-1", "long_name": "5-year return-period discharge (synthetic)"},
    "dis24_rp20": {"units": "m3 s-1", "long_name": "20-year return-period discharge (synthetic)"},
}

DAILY = ("nbr", "ndmi", "ems_active", "ems_flooded_fraction", "dis24_rp2", "dis24_rp5", "dis24_rp20")
EGMS = (
    "ground_velocity_mean",
    "ground_velocity_min",
    "ground_velocity_max",
    "ground_velocity_differential",
    "ground_acceleration_mean",
    "egms_points",
)
IMPERVIOUSNESS = ("imperviousness_mean", "imperviousness_mean_buffer")
#: Year of the first EGMS release on the time axis (the 2015–2020 release, published in 2022, stamped here
#: on 1 January of the year after its last acquisition).
EGMS_FIRST_YEAR = 2021
IMD_YEARS = (2006, 2009, 2012, 2015, 2018)
#: dNBR histogram bins: every Key & Benson class edge is a bin edge.
DNBR_EDGES = np.array(
    [-2.0, -0.5, -0.25, -0.10, 0.0, 0.10, 0.20, 0.27, 0.35, 0.44, 0.55, 0.66, 0.80, 1.0, 1.3, 2.0]
)
DNBR_FIRST = dt.date(2016, 7, 1)
#: Size of one pixel of the burn ratio (B12 is a 20 m band), m².
PIXEL_M2 = 400.0
#: Reference period of the synthetic return-period discharges.
RP_PERIOD = (dt.date(1991, 1, 1), dt.date(2020, 12, 31))

# Stream codes (synthetic.py uses 1–30 and 998 upwards).
_S_NBR, _S_NDMI, _S_DNBR_MU, _S_DNBR_VALID = 200, 201, 202, 203
_S_V_SITE, _S_V_RELEASE, _S_V_SPREAD, _S_V_DIFF, _S_ACC, _S_POINTS, _S_SUBSIDE = (
    210,
    211,
    212,
    213,
    214,
    215,
    216,
)
_S_IMD, _S_IMD_BUF, _S_IMD_GROWTH, _S_IMD_NOISE = 220, 221, 222, 223
_S_FLOODED = 230


@dataclass(frozen=True)
class Burn:
    """A wildfire burning a share of the site+buffer of every site inside `box` on `date`."""

    name: str
    date: dt.date
    box: tuple[float, float, float, float]  # west, south, east, north
    burnt_fraction: float  # share of the site+buffer burnt
    nbr_loss: float  # mean NBR drop of the burnt pixels right after the fire
    description: str = ""

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        west, south, east, north = self.box
        return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


@dataclass(frozen=True)
class Activation:
    """A Rapid Mapping activation whose area of interest is `box`, active from `start` to `end` inclusive;
    `delineations` maps the dates of observed-event maps to the flooded share (of the site+buffer) they
    show, within ± 25 % per site."""

    name: str
    start: dt.date
    end: dt.date
    box: tuple[float, float, float, float]
    delineations: dict[dt.date, float] = field(default_factory=dict)
    description: str = ""

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        west, south, east, north = self.box
        return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


#: Wildfires after the Mediterranean fire-danger spell of August 2026 (synthetic.EVENTS).
BURNS: list[Burn] = [
    Burn(
        "Wildfire on the slopes around Meteora, August 2026",
        dt.date(2026, 8, 18),
        (21.45, 39.60, 21.80, 39.85),
        0.35,
        0.55,
        "About a third of the site+buffer burnt, mostly moderate-high severity (dNBR ≈ 0.5).",
    ),
    Burn(
        "Wildfire on Vesuvius reaching the Pompeii buffer, August 2026",
        dt.date(2026, 8, 22),
        (14.35, 40.70, 14.55, 40.85),
        0.12,
        0.40,
        "A tenth of the site+buffer burnt at low to moderate severity.",
    ),
]

#: Activations of CEMS Rapid Mapping.
ACTIVATIONS: list[Activation] = [
    Activation(
        "Flood in Venice and the northern Adriatic coast, October–November 2026",
        dt.date(2026, 10, 30),
        dt.date(2026, 11, 8),
        (12.0, 45.2, 12.7, 45.7),
        {dt.date(2026, 10, 31): 0.2, dt.date(2026, 11, 3): 0.1},
        "Activated the day after the onset of the 29–30 October 2026 rain (synthetic.EVENTS); observed "
        "flood delineations on 31 October and 3 November.",
    ),
    Activation(
        "Flood in Veneto, October–November 2018 (like EMSR332)",
        dt.date(2018, 10, 30),
        dt.date(2018, 11, 16),
        (11.5, 45.0, 13.0, 46.7),
        description="Historical activation, no delineation over the sites.",
    ),
]

#: Venice lagoon: slow subsidence in the EGMS releases.
SUBSIDENCE_BOX = (12.15, 45.30, 12.55, 45.60)
#: Acropolis hill: differential motion of the rock slopes under the monuments.
DIFFERENTIAL_BOX = (23.70, 37.95, 23.75, 37.99)

DATASET_ATTRS = {
    **synthetic.DATASET_ATTRS,
    "product": "Heritage Monitor synthetic demo data (land and emergency)",
    "product_version": "synthetic-land-1",
}

#: Return levels by site key (`_rp_keys`), in memory; on disk under `_RP_CACHE_DIR` when set.
_RP_CACHE: OrderedDict[int, np.ndarray] = OrderedDict()
_RP_CACHE_SIZE = 250_000
_RP_CACHE_DIR: Path | None = None
_RP_LOADED: set[Path] = set()
#: Bump when the synthetic discharge or the fit changes: the cache file name carries it.
_RP_CACHE_VERSION = 1
#: Sites whose 30 years of discharge are generated together.
_RP_BLOCK = 64


def _in_box(box: tuple[float, float, float, float], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    west, south, east, north = box
    return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


def _day_numbers(dates: Sequence[dt.date]) -> np.ndarray:
    return np.array([(d - _EPOCH).days for d in dates], dtype=np.int64)


def _site_normal(seeds: np.ndarray, stream: int) -> np.ndarray:
    """One near-normal deviate per site, constant in time."""
    return _normal(seeds, stream, np.zeros(1, dtype=np.int64))[:, 0]


# --- Sentinel-2 -----------------------------------------------------------------------------------------


def _nbr_loss(geo: _Geo, days: np.ndarray) -> np.ndarray:
    """(site, day) mean NBR loss of the site+buffer from the fires: burnt share × loss × recovery."""
    out = np.zeros((len(geo.seeds), len(days)))
    for burn in BURNS:
        inside = burn.contains(geo.lon, geo.lat)
        if not inside.any():
            continue
        since = (days - (burn.date - _EPOCH).days).astype(float)  # days since the fire
        recovery = np.where(since >= 0, np.exp(-np.maximum(since, 0.0) / (18 * 30.44)), 0.0)
        out += (inside * burn.burnt_fraction * burn.nbr_loss)[:, None] * recovery[None, :]
    return out


def _indices(geo: _Geo, sites: SiteSet, days: np.ndarray, wanted: set[str]) -> dict[str, np.ndarray]:
    """Daily NBR and NDMI of the site+buffer from the synthetic NDVI (same days)."""
    start, end = (_EPOCH + dt.timedelta(days=int(d)) for d in (days[0], days[-1]))
    ndvi = synthetic.generate(sites, start, end, ["ndvi"])["ndvi"].values.astype(np.float64)
    out = {}
    if "nbr" in wanted:
        nbr = 1.05 * ndvi - 0.18 + 0.02 * _normal(geo.seeds, _S_NBR, days) - _nbr_loss(geo, days)
        out["nbr"] = np.clip(nbr, -1.0, 1.0)
    if "ndmi" in wanted:
        ndmi = 0.75 * ndvi - 0.22 + 0.02 * _normal(geo.seeds, _S_NDMI, days)
        out["ndmi"] = np.clip(ndmi, -1.0, 1.0)
    return out


def _dnbr_hist(geo: _Geo, pixels: np.ndarray, months: list[dt.date]) -> np.ndarray:
    """(site, month, bin) valid-pixel counts per dNBR bin, post = that month, pre = a year earlier."""
    days = _day_numbers(months)
    n_sites = len(geo.seeds)
    out = np.full((n_sites, len(months), len(DNBR_EDGES) - 1), np.nan)
    ok = np.array([m >= DNBR_FIRST for m in months])
    if not ok.any():
        return out
    days = days[ok]
    valid = np.round(pixels[:, None] * (0.7 + 0.3 * _uniform(geo.seeds, _S_DNBR_VALID, days)))
    mu = 0.01 * _normal(geo.seeds, _S_DNBR_MU, days)  # phenology offset of the pair
    sd = 0.035

    def share(center: np.ndarray, spread: float) -> np.ndarray:
        cdf = special.ndtr((DNBR_EDGES[None, None, :] - center[..., None]) / spread)
        return np.diff(cdf, axis=-1)

    counts = valid[..., None] * share(mu, sd)
    year_ago = _day_numbers([m.replace(year=m.year - 1) for m, keep in zip(months, ok, strict=True) if keep])
    for burn in BURNS:
        inside = burn.contains(geo.lon, geo.lat)
        if not inside.any():
            continue
        fire = (burn.date - _EPOCH).days
        # NBR loss of the burnt pixels (15 days into the month: the composite's middle) minus a year before
        loss = [
            np.where(d + 15 >= fire, np.exp(-(d + 15 - fire) / (18 * 30.44)), 0.0) for d in (days, year_ago)
        ]
        dnbr = burn.nbr_loss * (loss[0] - loss[1])
        affected = inside[:, None] & (dnbr != 0)[None, :]
        burnt = np.round(valid * burn.burnt_fraction) * affected
        moved = burnt[..., None] * (share(mu + dnbr[None, :], 0.15) - share(mu, sd))
        counts = counts + moved
    out[:, ok] = np.round(np.clip(counts, 0.0, None))
    return out


# --- EGMS ---------------------------------------------------------------------------------------------


def _egms(geo: _Geo, area_km2: np.ndarray, years: list[int]) -> dict[str, np.ndarray]:
    """Per release (1 January of `years`): velocities (mm/yr), acceleration (mm/yr²) and point counts."""
    days = _day_numbers([dt.date(y, 1, 1) for y in years])
    seeds = geo.seeds
    density = (120.0 + 2500.0 * geo.urban) * (0.8 + 0.4 * _site_uniform(seeds, _S_POINTS))  # points/km²
    points = np.round(area_km2 * density)[:, None] * np.ones(len(days))
    base = 0.7 * _site_normal(seeds, _S_V_SITE)
    subsiding = _in_box(SUBSIDENCE_BOX, geo.lon, geo.lat)
    base = np.where(subsiding, -(2.0 + 2.0 * _site_uniform(seeds, _S_SUBSIDE)), base)
    mean = base[:, None] + 0.25 * _normal(seeds, _S_V_RELEASE, days)
    mean = np.where(subsiding[:, None], np.clip(mean, -4.0, -2.0), mean)
    spread = (1.5 + 2.5 * _site_uniform(seeds, _S_V_SPREAD))[:, None] + 0.2 * _normal(
        seeds, _S_V_SPREAD, days
    )
    diff = 2.0 + 2.0 * _uniform(seeds, _S_V_DIFF, days)
    tilted = _in_box(DIFFERENTIAL_BOX, geo.lon, geo.lat)
    grow = 10.0 + 1.5 * np.maximum(np.array(years) - EGMS_FIRST_YEAR, 0)
    diff = np.where(tilted[:, None], grow[None, :] + 0.5 * _uniform(seeds, _S_V_DIFF, days), diff)
    spread = np.maximum(spread, 0.6 * diff)
    none = points < 1
    nan = np.nan
    return {
        "ground_velocity_mean": np.where(none, nan, mean),
        "ground_velocity_min": np.where(none, nan, mean - spread),
        "ground_velocity_max": np.where(none, nan, mean + spread),
        "ground_velocity_differential": np.where(points < 2, nan, diff),
        "ground_acceleration_mean": np.where(none, nan, 0.15 * _normal(seeds, _S_ACC, days)),
        "egms_points": points,
    }


# --- CLMS imperviousness -------------------------------------------------------------------------------


def _imperviousness(geo: _Geo, years: list[int]) -> dict[str, np.ndarray]:
    """Mean sealing degree (%) of the polygon and of the buffer ring at the reference `years`."""
    seeds = geo.seeds
    step = np.array([IMD_YEARS.index(y) for y in years], dtype=float)
    days = _day_numbers([dt.date(y, 1, 1) for y in years])
    growth = 0.2 + 1.8 * _site_uniform(seeds, _S_IMD_GROWTH)  # percentage points per reference step
    polygon = 5.0 + 80.0 * geo.urban + 10.0 * (_site_uniform(seeds, _S_IMD) - 0.5)
    buffer = 3.0 + 60.0 * geo.urban + 8.0 * (_site_uniform(seeds, _S_IMD_BUF) - 0.5)
    noise = 0.3 * _normal(seeds, _S_IMD_NOISE, days)
    return {
        "imperviousness_mean": np.clip(polygon[:, None] + 0.3 * growth[:, None] * step[None, :], 0, 100),
        "imperviousness_mean_buffer": np.clip(
            buffer[:, None] + growth[:, None] * step[None, :] + noise, 0, 100
        ),
    }


# --- CEMS Rapid Mapping and GloFAS thresholds ----------------------------------------------------------


def _ems(geo: _Geo, days: np.ndarray) -> dict[str, np.ndarray]:
    active = np.zeros((len(geo.seeds), len(days)))
    flooded = np.full(active.shape, np.nan)
    for act in ACTIVATIONS:
        inside = act.contains(geo.lon, geo.lat)
        if not inside.any():
            continue
        on = (days >= (act.start - _EPOCH).days) & (days <= (act.end - _EPOCH).days)
        active += inside[:, None] & on[None, :]
        for day, fraction in act.delineations.items():
            hit = days == (day - _EPOCH).days
            if hit.any():
                u = _site_uniform(geo.seeds, _S_FLOODED + _stable_u64(act.name + day.isoformat()) % 1000)
                value = fraction * (0.75 + 0.5 * u)
                flooded[:, hit] = np.where(inside[:, None], value[:, None], flooded[:, hit])
    return {"ems_active": active, "ems_flooded_fraction": flooded}


def _rp_keys(sites: SiteSet) -> np.ndarray:
    """uint64 per site of what its return levels depend on: id, centroid and distance to the sea."""
    points = np.round(sites.centroids(), 9)
    texts = (
        f"{s.id}|{lon!r}|{lat!r}|{s.params.distance_to_sea_km!r}"
        for s, (lon, lat) in zip(sites, points.tolist(), strict=True)
    )
    return np.fromiter((_stable_u64(t) for t in texts), dtype=np.uint64, count=len(sites))


def use_cache_dir(path: Path | None) -> None:
    """Keep the return levels computed by this process in `path` (None: in memory only), so that another
    process (the next daily pass, the API) does not recompute 30 years of discharge per site."""
    global _RP_CACHE_DIR
    if path != _RP_CACHE_DIR:
        _RP_CACHE_DIR = path
        _RP_LOADED.clear()


def _rp_file() -> Path | None:
    return None if _RP_CACHE_DIR is None else _RP_CACHE_DIR / f"return-levels-{_RP_CACHE_VERSION}.npz"


def _load_rp_file() -> None:
    """Merge the cache file into the in-memory cache, once per file (a damaged file is ignored)."""
    path = _rp_file()
    if path is None or path in _RP_LOADED:
        return
    _RP_LOADED.add(path)
    try:
        with np.load(path) as f:
            keys, levels = f["keys"], f["levels"]
    except (OSError, KeyError, ValueError):
        return
    for key, row in zip(keys.tolist(), levels, strict=True):
        _RP_CACHE.setdefault(key, row)


def _save_rp_file(keys: np.ndarray, levels: np.ndarray) -> None:
    """Add computed levels to the cache file (merged with what another process may have written)."""
    path = _rp_file()
    if path is None:
        return
    try:
        with np.load(path) as f:
            old_keys, old_levels = f["keys"], f["levels"]
        keep = ~np.isin(old_keys, keys)
        keys = np.concatenate([old_keys[keep], keys])
        levels = np.concatenate([old_levels[keep], levels])
    except (OSError, KeyError, ValueError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=keys, levels=levels)
        os.replace(tmp, path)
    except OSError:  # a read-only data dir: the levels stay in memory
        pass


def _return_levels(sites: SiteSet) -> np.ndarray:
    """(site, 3) 2-, 5- and 20-year discharges of each site's synthetic river.

    Cached per site key in memory and, after `use_cache_dir`, on disk; the missing ones are computed by
    blocks of `_RP_BLOCK` sites so that 30 years of daily discharge never exist for all sites at once.
    """
    from indicators.flood import RETURN_PERIODS, annual_maxima, gumbel_return_levels

    keys = _rp_keys(sites)
    if any(k not in _RP_CACHE for k in keys.tolist()):
        _load_rp_file()
    todo = np.array([i for i, k in enumerate(keys.tolist()) if k not in _RP_CACHE], dtype=np.int64)
    if todo.size:
        computed = np.empty((todo.size, 3))
        for first in range(0, todo.size, _RP_BLOCK):
            block = todo[first : first + _RP_BLOCK]
            part = SiteSet([sites[int(i)] for i in block])
            dis = synthetic.generate(part, *RP_PERIOD, ["dis24"])["dis24"].astype(np.float64)
            levels = gumbel_return_levels(annual_maxima(dis, 360), RETURN_PERIODS, min_years=20).values
            computed[first : first + block.size] = levels
        for key, row in zip(keys[todo].tolist(), computed, strict=True):
            _RP_CACHE[key] = row
        _save_rp_file(keys[todo], computed)
        while len(_RP_CACHE) > _RP_CACHE_SIZE:
            _RP_CACHE.popitem(last=False)
        found = {int(k): computed[j] for j, k in enumerate(keys[todo].tolist())}
        return np.array([found.get(k, _RP_CACHE.get(k)) for k in keys.tolist()]).reshape(len(sites), 3)
    return np.array([_RP_CACHE[k] for k in keys.tolist()]).reshape(len(sites), 3)


# --- the generator -------------------------------------------------------------------------------------


def _month_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    first = dt.date(start.year, start.month, 1)
    if first < start:
        first = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    out = []
    while first <= end:
        out.append(first)
        first = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return out


def generate_land(
    sites: SiteSet, start: dt.date, end: dt.date, variables: Sequence[str] | None = None
) -> xr.Dataset:
    """Synthetic land and emergency cube (site, time; `dnbr_hist` also dnbr_bin) from `start` to `end`.

    Each value is a pure function of (site, date, variable). The time axis holds the days on which the
    requested variables have values (see the module doc); `variables=None` means all of `VARIABLES`.
    """
    start, end = (d.date() if isinstance(d, dt.datetime) else d for d in (start, end))
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    names = list(VARIABLES) if variables is None else list(dict.fromkeys(variables))
    unknown = [v for v in names if v not in VARIABLES]
    if unknown:
        raise ValueError(f"unknown synthetic land variables {unknown}; known: {sorted(VARIABLES)}")
    wanted = set(names)

    months = _month_starts(start, end) if "dnbr_hist" in wanted else []
    egms_years = [
        y for y in range(max(start.year, EGMS_FIRST_YEAR), end.year + 1) if dt.date(y, 1, 1) >= start
    ]
    egms_years = egms_years if wanted & set(EGMS) else []
    imd_years = (
        [y for y in IMD_YEARS if start <= dt.date(y, 1, 1) <= end] if wanted & set(IMPERVIOUSNESS) else []
    )
    days_of: dict[str, list[dt.date]] = {}
    if wanted & set(DAILY):
        daily = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        days_of.update({name: daily for name in DAILY})
    days_of["dnbr_hist"] = months
    days_of.update({name: [dt.date(y, 1, 1) for y in egms_years] for name in EGMS})
    days_of.update({name: [dt.date(y, 1, 1) for y in imd_years] for name in IMPERVIOUSNESS})
    axis = sorted({d for name in names for d in days_of[name]})
    col = {d: j for j, d in enumerate(axis)}
    days = _day_numbers(axis)

    geo = _Geo.from_sites(sites)
    n_sites = len(sites)
    values: dict[str, np.ndarray] = {}

    def place(name: str, dates: list[dt.date], data: np.ndarray) -> None:
        full = np.full((n_sites, len(axis), *data.shape[2:]), np.nan, dtype=np.float32)
        full[:, [col[d] for d in dates]] = data
        values[name] = full

    if n_sites and axis:
        if wanted & {"nbr", "ndmi"}:
            for name, data in _indices(geo, sites, _day_numbers(days_of["nbr"]), wanted).items():
                place(name, days_of[name], data)
        if months:
            from sites.geometry import areas_m2

            pixels = np.round(areas_m2(sites.geometries(buffered=True)) / PIXEL_M2)
            place("dnbr_hist", months, _dnbr_hist(geo, pixels, months))
        if egms_years:
            from sites.geometry import areas_m2

            area_km2 = areas_m2(sites.geometries(buffered=True)) / 1e6
            for name, data in _egms(geo, area_km2, egms_years).items():
                place(name, days_of[name], data)
        if imd_years:
            for name, data in _imperviousness(geo, imd_years).items():
                place(name, days_of[name], data)
        if wanted & {"ems_active", "ems_flooded_fraction"}:
            for name, data in _ems(geo, _day_numbers(days_of["ems_active"])).items():
                place(name, days_of[name], data)
        if wanted & {"dis24_rp2", "dis24_rp5", "dis24_rp20"}:
            levels = _return_levels(sites)
            n_days = len(days_of["dis24_rp2"])
            for k, period in enumerate((2, 5, 20)):
                place(
                    f"dis24_rp{period}", days_of["dis24_rp2"], np.repeat(levels[:, k : k + 1], n_days, axis=1)
                )

    time = (np.datetime64("1970-01-01", "D") + days).astype("datetime64[ns]")
    data_vars = {}
    for name in names:
        dims = ("site", "time", "dnbr_bin") if name == "dnbr_hist" else ("site", "time")
        shape = (n_sites, len(axis), len(DNBR_EDGES) - 1)[: len(dims)]
        data = values.get(name, np.full(shape, np.nan, dtype=np.float32))
        data_vars[name] = xr.DataArray(data, dims=dims, attrs=dict(VARIABLES[name]))
    coords = {
        "site": ("site", np.array(sites.ids, dtype=object), {"long_name": "site id"}),
        "time": ("time", time, {"standard_name": "time", "long_name": "time"}),
        "lat": ("site", geo.lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("site", geo.lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    if "dnbr_hist" in wanted:
        coords["dnbr_bin_low"] = (
            "dnbr_bin",
            DNBR_EDGES[:-1],
            {"units": "1", "long_name": "dNBR bin low edge"},
        )
        coords["dnbr_bin_high"] = (
            "dnbr_bin",
            DNBR_EDGES[1:],
            {"units": "1", "long_name": "dNBR bin high edge"},
        )
    events = [f"{b.name} ({b.date})" for b in BURNS] + [f"{a.name} ({a.start}..{a.end})" for a in ACTIVATIONS]
    return xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            **DATASET_ATTRS,
            "title": "Synthetic land and emergency variables at heritage sites",
            "request": f"start={start.isoformat()} end={end.isoformat()} variables={','.join(names)}",
            "injected_events": "; ".join(events),
        },
    )
