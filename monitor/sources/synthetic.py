"""Deterministic synthetic weather, air quality and land data for the demo, as a site cube.

Every value is a pure function of (site id, date, variable): there is no sequential random state.
Noise comes from a counter-based hash (splitmix64 over uint64 arrays) of a per-site seed (blake2b of
the id), the day number and a stream code, turned into uniforms and near-normal deviates. Weather
persistence comes from finite-impulse-response filters over the hashed noise of the previous days
(computed over internal lead-in days that are then dropped), so a day's value does not depend on
the requested period nor on the other sites. Large-scale weather is shared between nearby sites by
hashing the noise on a coarse lon/lat grid and interpolating it to the site.

The climate is plausible, not real: seasonal cycles of temperature and precipitation follow
latitude, continentality (eastwards and away from the sea), Atlantic exposure, Mediterranean
summer drought and a crude orography of the main European ranges. Fixed events (`EVENTS`) are
added inside lon/lat boxes so that any site set sees them.

Forecasts (`forecast`) are the synthetic truth of their valid days plus an error that grows with the
lead (a random walk over the leads, hashed from site, issue day and variable), with forecast events
(`FORECAST_EVENTS`) placed at fixed leads after the issue day, so every demo issue forecasts them.

Values are exactly reproducible on one platform; transcendental functions (exp, log, cos) may
differ in the last bit between numpy builds, which float32 output mostly hides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import xarray as xr
from scipy import signal, special

from sites.model import SiteSet

__all__ = [
    "EVENTS",
    "FORECAST_ERROR",
    "FORECAST_EVENTS",
    "VARIABLES",
    "Event",
    "ForecastEvent",
    "forecast",
    "generate",
]

#: Variables of the synthetic cube: CF short name -> attributes (CF standard_name where one exists).
VARIABLES: dict[str, dict] = {
    "tas": {
        "units": "degC",
        "long_name": "Daily mean near-surface air temperature",
        "standard_name": "air_temperature",
        "cell_methods": "time: mean",
    },
    "tasmin": {
        "units": "degC",
        "long_name": "Daily minimum near-surface air temperature",
        "standard_name": "air_temperature",
        "cell_methods": "time: minimum",
    },
    "tasmax": {
        "units": "degC",
        "long_name": "Daily maximum near-surface air temperature",
        "standard_name": "air_temperature",
        "cell_methods": "time: maximum",
    },
    "pr": {
        "units": "mm d-1",
        "long_name": "Daily total precipitation",
        "standard_name": "lwe_precipitation_rate",
        "cell_methods": "time: mean",
    },
    "hurs": {
        "units": "%",
        "long_name": "Daily mean near-surface relative humidity",
        "standard_name": "relative_humidity",
        "cell_methods": "time: mean",
    },
    "sfcWind": {
        "units": "m s-1",
        "long_name": "Daily mean near-surface wind speed",
        "standard_name": "wind_speed",
        "cell_methods": "time: mean",
    },
    "so2": {
        "units": "ug m-3",
        "long_name": "Daily mean surface concentration of sulphur dioxide",
        "standard_name": "mass_concentration_of_sulfur_dioxide_in_air",
        "cell_methods": "time: mean",
    },
    "no2": {
        "units": "ug m-3",
        "long_name": "Daily mean surface concentration of nitrogen dioxide",
        "standard_name": "mass_concentration_of_nitrogen_dioxide_in_air",
        "cell_methods": "time: mean",
    },
    "o3": {
        "units": "ug m-3",
        "long_name": "Daily mean surface concentration of ozone",
        "standard_name": "mass_concentration_of_ozone_in_air",
        "cell_methods": "time: mean",
    },
    "pm10": {
        "units": "ug m-3",
        "long_name": "Daily mean surface concentration of PM10",
        "standard_name": "mass_concentration_of_pm10_ambient_aerosol_particles_in_air",
        "cell_methods": "time: mean",
    },
    "pm2p5": {
        "units": "ug m-3",
        "long_name": "Daily mean surface concentration of PM2.5",
        "standard_name": "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air",
        "cell_methods": "time: mean",
    },
    "fwi": {
        "units": "1",
        "long_name": "Canadian Fire Weather Index (daily, synthetic approximation)",
    },
    "ndvi": {
        "units": "1",
        "long_name": "Normalized difference vegetation index",
    },
    "dis24": {
        "units": "m3 s-1",
        "long_name": "Mean daily river discharge",
        "standard_name": "water_volume_transport_in_river_channel",
        "cell_methods": "time: mean",
    },
}

DATASET_ATTRS = {
    "synthetic": "true",
    "product": "Heritage Monitor synthetic demo data",
    "product_version": "synthetic-1",
    "attribution": "Synthetic data generated by Heritage Monitor for demonstration; not Copernicus data.",
    "source": "synthetic",
}


@dataclass(frozen=True)
class Event:
    """A weather or pollution episode injected at fixed dates into the sites inside a lon/lat box.

    `kind` is one of "heat", "rain", "fire", "pollution". `magnitude` is, by kind, the tasmax rise
    (°C), the precipitation of the peak day (mm), the Fire Weather Index or the PM10 level (µg m-3)
    at the peak. Heat adds to the temperatures, rain sets a floor to precipitation, fire and
    pollution blend the natural values towards the event's by the day's weight. Each site gets the
    magnitude within ± `spread` (a fraction); the daily `profile` (default: a trapezoid rising and
    falling over `ramp_days`) scales it from day to day.
    """

    name: str
    kind: str
    variables: tuple[str, ...]
    start: dt.date
    end: dt.date
    box: tuple[float, float, float, float]  # west, south, east, north (degrees)
    magnitude: float
    spread: float = 0.1
    ramp_days: int = 3
    profile: tuple[float, ...] | None = None
    description: str = ""

    def daily_profile(self) -> np.ndarray:
        """Weight (0–1) of each day from `start` to `end`."""
        n = (self.end - self.start).days + 1
        if self.profile is not None:
            if len(self.profile) != n:
                raise ValueError(f"event {self.name!r}: profile has {len(self.profile)} days, not {n}")
            return np.asarray(self.profile, dtype=np.float64)
        i = np.arange(n, dtype=np.float64)
        return np.minimum(1.0, np.minimum(i + 1, n - i) / (self.ramp_days + 1))

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        west, south, east, north = self.box
        return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


_HEAT_VARS = ("tas", "tasmin", "tasmax", "hurs", "pr", "fwi", "o3")
_RAIN_VARS = ("pr", "hurs", "sfcWind", "dis24")
_POLLUTION_VARS = ("pm10", "pm2p5", "so2", "no2")

#: Injected episodes. The 2026 ones drive the demo's alerts; the others add historical realism.
EVENTS: list[Event] = [
    Event(
        "Heat wave, southern and central Europe, July 2026",
        "heat",
        _HEAT_VARS,
        dt.date(2026, 7, 8),
        dt.date(2026, 7, 21),
        (-10.0, 34.0, 30.0, 48.0),
        9.0,
        spread=0.11,
        ramp_days=4,
        description="tasmax +8 to +10 °C at the peak (tas +0.9x, tasmin +0.8x), ramping in and out over "
        "4 days; rain suppressed, air drier.",
    ),
    Event(
        "Extreme rain, northern Adriatic and Italy, October 2026",
        "rain",
        _RAIN_VARS,
        dt.date(2026, 10, 29),
        dt.date(2026, 10, 30),
        (10.0, 40.0, 20.0, 47.0),
        130.0,
        spread=0.12,
        profile=(0.55, 1.0),
        description="About 70 mm then 115–145 mm: more than 100 mm on 30 October (Venice, Pompeii, "
        "Dubrovnik); river discharge rises in the following days.",
    ),
    Event(
        "Fire-danger spell, Mediterranean, August 2026",
        "fire",
        ("fwi",),
        dt.date(2026, 8, 1),
        dt.date(2026, 8, 25),
        (-10.0, 34.0, 36.0, 42.5),
        50.0,
        spread=0.12,
        ramp_days=4,
        description="Fire Weather Index pushed to 42–59 at the peak (EFFIS very high to extreme), "
        "rising over 4 days and falling over 4 days.",
    ),
    Event(
        "Winter smog, central and eastern Europe, January 2026",
        "pollution",
        _POLLUTION_VARS,
        dt.date(2026, 1, 12),
        dt.date(2026, 1, 26),
        (14.0, 45.0, 30.0, 55.0),
        165.0,
        spread=0.12,
        ramp_days=4,
        description="PM10 at 130–200 µg m-3 at the peak (Kraków), PM2.5 about 75 % of it, SO2 raised by "
        "about 60 µg m-3, NO2 by about 25 µg m-3 (temperature inversion, coal heating).",
    ),
    Event(
        "European heat wave, August 2003",
        "heat",
        _HEAT_VARS,
        dt.date(2003, 8, 1),
        dt.date(2003, 8, 15),
        (-5.0, 40.0, 16.0, 52.0),
        10.0,
        ramp_days=4,
        description="France, Switzerland, northern Italy, southern Germany: tasmax +9 to +11 °C.",
    ),
    Event(
        "Central European floods, August 2002",
        "rain",
        _RAIN_VARS,
        dt.date(2002, 8, 11),
        dt.date(2002, 8, 13),
        (12.0, 47.5, 17.0, 51.0),
        110.0,
        profile=(0.5, 1.0, 0.45),
        description="Bohemia, Saxony and Austria: about 100 mm in a day, then the Elbe and Danube rise.",
    ),
    Event(
        "Greek wildfires, August 2007",
        "fire",
        ("fwi",),
        dt.date(2007, 8, 20),
        dt.date(2007, 8, 31),
        (20.0, 36.5, 24.5, 39.0),
        58.0,
        ramp_days=3,
        description="Peloponnese and Attica: Fire Weather Index above 50.",
    ),
    Event(
        "Heat wave, France and the Alps, June 2019",
        "heat",
        _HEAT_VARS,
        dt.date(2019, 6, 24),
        dt.date(2019, 7, 1),
        (-2.0, 42.0, 12.0, 50.0),
        9.0,
        ramp_days=2,
        description="Late-June heat wave: tasmax +8 to +10 °C.",
    ),
    Event(
        "Floods in Belgium and western Germany, July 2021",
        "rain",
        _RAIN_VARS,
        dt.date(2021, 7, 13),
        dt.date(2021, 7, 15),
        (5.0, 49.5, 8.0, 51.5),
        120.0,
        profile=(0.45, 1.0, 0.3),
        description="Ahr, Erft and Meuse catchments: more than 100 mm in a day.",
    ),
    Event(
        "Heat wave, British Isles and northern France, July 2022",
        "heat",
        _HEAT_VARS,
        dt.date(2022, 7, 16),
        dt.date(2022, 7, 20),
        (-6.0, 48.0, 3.0, 56.0),
        11.0,
        ramp_days=1,
        description="Short extreme heat: tasmax +10 to +12 °C (40 °C was reached near London on 19 July).",
    ),
]

# ---------------------------------------------------------------------------------------------
# Counter-based hashing: uint64 arrays -> uniforms -> normals.
# ---------------------------------------------------------------------------------------------

_EPOCH = dt.date(1970, 1, 1)
_YEAR = 365.2425
_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_LOW16 = _U64(0xFFFF)
_TWO_PI = 2.0 * np.pi
_IRWIN_HALL_SCALE = np.sqrt(3.0) / 65536.0  # sum of 4 uniforms on 0..65535: mean 131070, sd 65536/sqrt(3)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (Steele, Lea, Flood 2014), element-wise on a new uint64 array."""
    x = x ^ (x >> _U64(30))
    x *= _M1
    x ^= x >> _U64(27)
    x *= _M2
    x ^= x >> _U64(31)
    return x


def _stable_u64(text: str) -> int:
    """A platform-independent 64-bit hash of a string."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8, person=b"hm-synthetic").digest(), "little"
    )


def _stream_keys(seeds: np.ndarray, stream: int) -> np.ndarray:
    return _mix(seeds ^ _mix(np.full(seeds.shape, stream, dtype=np.uint64) * _GOLDEN))


def _day_keys(days: np.ndarray) -> np.ndarray:
    return _mix(days.astype(np.int64).view(np.uint64) * _GOLDEN + _M2)


def _hash(seeds: np.ndarray, stream: int, days: np.ndarray) -> np.ndarray:
    """(n_seeds, n_days) uint64 hashes of (seed, stream, day)."""
    return _mix(_stream_keys(seeds, stream)[:, None] ^ _day_keys(days)[None, :])


def _uniform(seeds: np.ndarray, stream: int, days: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1), one per (seed, day)."""
    return ((_hash(seeds, stream, days) >> _U64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _normal(seeds: np.ndarray, stream: int, days: np.ndarray) -> np.ndarray:
    """Unit normals, one per (seed, day), as the Irwin–Hall sum of the four 16-bit quarters of a hash.

    Integer arithmetic then one exact scaling: identical on every machine, and 3–4 times faster than
    Box–Muller. The tails stop at ±3.46; the persistence filters sum several of them.
    """
    h = _hash(seeds, stream, days)
    s = h & _LOW16
    s += (h >> _U64(16)) & _LOW16
    s += (h >> _U64(32)) & _LOW16
    s += h >> _U64(48)
    return (s.astype(np.float64) - 131070.0) * _IRWIN_HALL_SCALE


def _site_uniform(seeds: np.ndarray, stream: int) -> np.ndarray:
    """One uniform in (0, 1) per seed, constant in time."""
    return ((_stream_keys(seeds, stream) >> _U64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _fir(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """y[t] = sum_k weights[k] * x[t - k] along the last axis; the first len(weights) - 1 are dropped.

    The sum is accumulated in the same order for every t, so y[t] does not depend on where x starts.
    """
    k = len(weights)
    n = x.shape[-1] - k + 1
    y = weights[0] * x[..., k - 1 :]
    for j in range(1, k):
        y += weights[j] * x[..., k - 1 - j : k - 1 - j + n]
    return y


def _kernel(decay: float, taps: int) -> np.ndarray:
    """Exponentially decaying FIR weights with unit sum of squares (a unit-variance smoother)."""
    w = decay ** np.arange(taps, dtype=np.float64)
    return w / np.sqrt(np.sum(w**2))


# Stream codes: one per independent noise source.
_S_TEMP, _S_TEMP_REG, _S_TEMP_SLOW, _S_PR, _S_PR_REG, _S_PR_AMOUNT = 1, 2, 3, 4, 5, 6
_S_HURS, _S_WIND, _S_WIND_REG, _S_DTR, _S_NDVI, _S_PM_RATIO = 7, 8, 9, 10, 11, 12
_S_POLLUTANT = {"so2": 13, "no2": 14, "o3": 15, "pm10": 16}
_S_POLL_REG = 17
_S_CATCHMENT, _S_EVENT = 30, 1000

_K_TEMP = _kernel(0.65, 8)
_K_TEMP_SLOW = _kernel(0.93, 40)
_K_PR = _kernel(0.45, 3)
_K_HURS = _kernel(0.55, 4)
_K_WIND = _kernel(0.5, 4)
_K_POLL = _kernel(0.6, 6)
_K_NDVI = _kernel(0.8, 10)

# Regional (large-scale) noise lives on a grid of nodes, hashed by node index.
_GRID_DLON, _GRID_DLAT = 6.0, 4.0


class _Regional:
    """Bilinear interpolation of node noise to the sites, normalised back to unit variance."""

    def __init__(self, lon: np.ndarray, lat: np.ndarray) -> None:
        gx, gy = lon / _GRID_DLON, lat / _GRID_DLAT
        ix, iy = np.floor(gx), np.floor(gy)
        fx, fy = gx - ix, gy - iy
        corners = [(0, 0), (1, 0), (0, 1), (1, 1)]
        keys = np.stack(
            [((ix + dx + 4096) * 65536 + (iy + dy + 4096)).astype(np.int64) for dx, dy in corners], axis=1
        )
        weights = np.stack([(fx if dx else 1 - fx) * (fy if dy else 1 - fy) for dx, dy in corners], axis=1)
        self.weights = weights / np.sqrt(np.sum(weights**2, axis=1, keepdims=True))
        nodes, inverse = np.unique(keys, return_inverse=True)
        self.inverse = inverse.reshape(keys.shape)
        self.node_seeds = _mix(nodes.view(np.uint64) ^ _U64(0x5851F42D4C957F2D))

    def noise(self, stream: int, days: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Unit-variance smoothed noise for days[len(kernel) - 1:], per site."""
        node = _fir(_normal(self.node_seeds, stream, days), kernel)
        out = self.weights[:, 0, None] * node[self.inverse[:, 0]]
        for c in range(1, 4):
            out += self.weights[:, c, None] * node[self.inverse[:, c]]
        return out


# ---------------------------------------------------------------------------------------------
# Geography: coasts, orography, cities, coal heating. Coarse, hand-made, enough for a demo.
# ---------------------------------------------------------------------------------------------

# West-facing Atlantic coasts (lon lat pairs).
_COAST_ATLANTIC_WEST = """
-8.9 37.0  -8.8 38.5  -9.4 38.7  -9.0 39.6  -8.7 40.6  -8.7 41.2  -8.9 42.2  -9.2 43.0  -8.4 43.4
-1.5 43.6  -1.2 44.6  -1.2 45.7  -1.2 46.2  -2.2 47.2  -3.4 47.7  -4.5 48.4  -5.7 50.1  -4.5 51.2
-5.1 51.7  -4.6 52.4  -4.2 53.2  -5.0 54.8  -4.9 55.6  -5.6 56.4  -5.7 57.3  -5.0 58.5  -8.4 51.9
-10.0 51.8 -9.9 52.3  -9.1 53.2  -10.0 53.9 -8.5 54.3  -7.3 55.2  -21.9 64.1 -22.7 65.5 5.7 58.9
5.2 59.4  5.1 60.4  5.0 61.5  6.1 62.5  7.2 62.9  8.5 63.5  12.5 65.5 14.4 67.3 18.9 69.6  25.8 71.0
"""
# Other Atlantic, Channel, North Sea and Kattegat coasts.
_COAST_ATLANTIC_OTHER = """
-7.9 37.0  -7.0 43.6  -5.8 43.6  -3.8 43.5  -2.9 43.4  -1.8 43.4  -3.5 48.8  -2.0 48.6  -1.6 49.6
-0.3 49.3  0.1 49.5  1.1 49.9  1.6 50.7  2.4 51.0  -4.1 50.4  -3.4 50.6  -1.9 50.7  -1.1 50.8  0.3 50.8
1.4 51.1  1.4 51.4  0.6 51.5  1.3 52.0  1.7 52.6  0.3 53.0  0.1 53.6  -0.4 54.3  -1.2 54.6  -1.4 55.0
-2.0 55.8  -3.0 56.0  -2.1 57.1  -3.5 57.7  -3.1 58.6  -3.4 54.9  -3.0 53.6  -3.0 53.4  -3.2 51.5
-2.7 51.5  -6.2 53.3  -6.3 52.2  -5.9 54.6  3.2 51.3  4.0 51.9  4.6 52.4  4.8 53.0  6.0 53.4  7.2 53.6
8.1 53.5  8.7 53.9  8.6 54.5  8.3 55.5  8.2 56.5  8.6 57.1  10.6 57.7  7.9 58.1  9.6 59.0  10.7 59.9
11.9 57.7  12.8 56.7  10.4 63.4
"""
_COAST_BALTIC = """
12.6 55.7  12.9 55.6  14.4 56.0  15.5 56.2  16.4 56.7  16.6 57.8  18.1 59.3  17.2 60.7  17.3 62.4
20.3 63.8  22.2 65.6  25.5 65.0  21.6 63.1  21.8 61.5  22.3 60.4  25.0 60.2  28.0 60.5  30.3 59.9
28.0 59.5  24.7 59.4  23.5 58.9  24.1 57.0  21.0 56.5  21.1 55.7  20.5 54.9  18.7 54.4  17.0 54.7
14.6 54.0  13.4 54.1  12.1 54.2  10.9 54.0  10.2 54.4  10.4 55.4
"""
_COAST_MEDITERRANEAN = """
-5.4 36.1  -4.4 36.7  -2.5 36.8  -1.0 37.6  -0.5 38.3  -0.3 39.5  0.5 40.6  1.2 41.1  2.2 41.4
3.2 42.1  3.1 43.0  3.9 43.5  4.8 43.4  5.4 43.3  6.0 43.1  7.0 43.5  7.3 43.7  8.9 44.4  10.3 43.5
10.9 42.8  11.8 42.1  12.5 41.7  13.6 41.2  14.3 40.8  15.0 40.3  15.8 39.9  16.1 38.7  15.7 38.2
16.6 38.4  17.1 39.0  16.9 40.2  17.2 40.5  18.5 40.1  17.9 40.6  16.9 41.1  15.9 41.6  14.2 42.4
13.5 43.6  12.6 44.1  12.3 45.0  12.3 45.4  13.8 45.6  13.6 45.1  14.4 45.3  15.2 44.1  16.4 43.5
18.1 42.6  19.1 42.1  19.5 41.3  19.4 40.5  20.0 39.6  20.7 38.8  21.4 38.3  21.7 37.0  22.4 36.5
22.9 37.9  23.6 37.9  24.0 38.2  22.9 39.4  22.9 40.6  24.4 40.9  25.9 40.8  26.5 40.4  26.2 39.5
27.1 38.4  27.3 37.0  28.2 36.6  30.7 36.9  34.6 36.8  25.1 35.3  23.6 35.5  14.5 35.9  13.4 38.1
12.5 38.0  12.6 37.6  14.1 37.1  15.1 37.1  15.1 37.5  15.6 38.2  9.1 39.2  8.4 40.6  9.7 40.9
9.7 40.0  8.7 41.9  9.4 42.7  2.6 39.6  33.0 34.7  29.0 41.0  27.5 40.9
"""
_COAST_BLACK_SEA = """
28.6 44.2  27.9 43.2  27.5 42.5  29.1 41.2  31.4 41.3  36.3 41.3  30.7 46.5  33.5 44.6  38.0 44.6
41.6 41.6
"""


def _points(text: str) -> np.ndarray:
    return np.array(text.split(), dtype=np.float64).reshape(-1, 2)


_ATLANTIC_WEST = _points(_COAST_ATLANTIC_WEST)
_ALL_COASTS = np.concatenate(
    [
        _ATLANTIC_WEST,
        _points(_COAST_ATLANTIC_OTHER),
        _points(_COAST_BALTIC),
        _points(_COAST_MEDITERRANEAN),
        _points(_COAST_BLACK_SEA),
    ]
)

# Mountain ranges as Gaussian bumps: lon, lat, height (m), width (degrees), orographic rain (mm/yr per km).
_OROGRAPHY = np.array(
    [
        (6.9, 45.0, 1000, 0.7, 1000),  # western Alps
        (7.8, 46.1, 1400, 0.7, 1000),
        (9.5, 46.5, 1300, 0.8, 1000),
        (11.5, 46.9, 1300, 0.8, 1000),
        (13.3, 47.2, 1000, 0.7, 1000),  # Salzkammergut, Hohe Tauern
        (14.8, 47.4, 700, 0.6, 800),
        (0.5, 42.7, 1000, 0.6, 800),  # Pyrenees
        (-1.0, 42.9, 700, 0.5, 800),
        (2.8, 45.3, 700, 0.7, 700),  # Massif Central
        (20.0, 49.2, 800, 0.5, 600),  # Tatras
        (24.5, 47.5, 700, 0.9, 500),  # eastern Carpathians
        (25.0, 45.5, 800, 0.7, 500),
        (18.4, 43.9, 800, 0.6, 900),  # Dinaric Alps
        (21.0, 39.9, 400, 0.4, 600),  # Pindus
        (-3.8, 40.3, 400, 2.0, 0),  # Meseta: a dry plateau
        (-3.3, 37.1, 900, 0.4, 100),  # Sierra Nevada
        (13.5, 42.2, 600, 0.5, 600),  # Apennines
        (8.5, 61.5, 900, 1.0, 400),  # Scandinavian mountains
        (14.0, 64.5, 600, 1.2, 400),
        (-4.5, 57.0, 400, 0.7, 800),  # Scottish Highlands
    ]
)

# Large cities: lon, lat, population (millions). Drives NO2 (traffic), some PM, and lower NDVI.
_CITIES = np.array(
    [
        (-0.12, 51.51, 9.0), (2.35, 48.86, 11.0), (-3.70, 40.42, 6.7), (2.17, 41.39, 5.6),
        (13.40, 52.52, 3.8), (12.50, 41.90, 4.3), (9.19, 45.46, 4.3), (14.27, 40.85, 3.1),
        (23.73, 37.98, 3.7), (28.98, 41.01, 15.0), (37.62, 55.75, 12.5), (30.30, 59.94, 5.4),
        (30.52, 50.45, 3.0), (21.01, 52.23, 3.1), (19.04, 47.50, 3.0), (16.37, 48.21, 2.9),
        (9.99, 53.55, 2.5), (11.58, 48.14, 2.6), (14.42, 50.08, 2.2), (26.10, 44.43, 2.3),
        (4.35, 50.85, 2.1), (4.90, 52.37, 2.5), (4.48, 51.92, 1.8), (-9.14, 38.72, 2.9),
        (-8.61, 41.15, 1.7), (-2.24, 53.48, 2.8), (-1.90, 52.48, 2.6), (4.83, 45.76, 2.3),
        (5.37, 43.30, 1.9), (7.01, 51.46, 5.0), (6.96, 50.94, 1.8), (8.68, 50.11, 2.3),
        (9.18, 48.78, 2.7), (18.07, 59.33, 2.4), (12.57, 55.68, 2.1), (10.75, 59.91, 1.5),
        (24.94, 60.17, 1.5), (-6.26, 53.35, 2.0), (-4.25, 55.86, 1.8), (7.69, 45.07, 2.2),
        (23.32, 42.70, 1.5), (20.46, 44.82, 1.7), (15.98, 45.81, 1.1), (19.94, 50.06, 1.4),
        (19.02, 50.26, 2.5), (22.94, 40.64, 1.1), (-0.38, 39.47, 1.7), (-5.98, 37.39, 1.5),
        (27.56, 53.90, 2.0), (24.11, 56.95, 0.9), (-3.19, 55.95, 0.9), (12.33, 45.44, 0.6),
        (11.25, 43.77, 1.0), (11.34, 44.49, 1.0), (-3.60, 37.18, 0.5), (5.32, 60.39, 0.4),
    ]
)  # fmt: skip


def _haversine_km(lon: np.ndarray, lat: np.ndarray, plon: np.ndarray, plat: np.ndarray) -> np.ndarray:
    """(n_sites, n_points) great-circle distances."""
    la1, la2 = np.radians(lat)[:, None], np.radians(plat)[None, :]
    dlon = np.radians(lon)[:, None] - np.radians(plon)[None, :]
    a = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin(dlon / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


#: `_Geo` of the last site sets, by a hash of what it depends on (seeds, points, distances to the sea).
_GEO_CACHE: OrderedDict[bytes, _Geo] = OrderedDict()
_GEO_CACHE_SIZE = 4
_GEO_LOCK = threading.Lock()
#: Sites whose parameters are computed together: their (sites × coast points) distances stay in cache.
_GEO_BLOCK = 2048


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class _Geo:
    """Per-site climate parameters (arrays of shape (n_sites,))."""

    seeds: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    cont: np.ndarray  # continentality, 0 (oceanic) .. 1
    atlantic: np.ndarray  # exposure to Atlantic westerlies, 0 .. 1
    med_dry: np.ndarray  # Mediterranean summer drought, 0 .. 1
    med_warm: np.ndarray  # Mediterranean summer warmth, 0 .. 1
    elev_km: np.ndarray
    orographic_rain: np.ndarray  # mm per year added by mountains
    urban: np.ndarray  # 0 (rural) .. 1 (centre of a metropolis)
    coal: np.ndarray  # domestic coal heating, 0 .. ~1.2 (Upper Silesia, Kraków)
    coast: np.ndarray  # 1 at the coast, 0 inland

    @classmethod
    def from_sites(cls, sites: SiteSet) -> _Geo:
        """The parameters of `sites`: kept with the set, and the last few sets' by what they depend on (a
        pass asks once per source, and the API for sets equal to earlier ones)."""
        return sites.derived("synthetic.geo", lambda: cls._cached(sites))

    @classmethod
    def _cached(cls, sites: SiteSet) -> _Geo:
        seeds = np.fromiter((_stable_u64(s.id) for s in sites), dtype=np.uint64, count=len(sites))
        lonlat = sites.centroids()
        given = np.fromiter(
            (np.nan if s.params.distance_to_sea_km is None else s.params.distance_to_sea_km for s in sites),
            dtype=np.float64,
            count=len(sites),
        )
        key = hashlib.blake2b(seeds.tobytes() + lonlat.tobytes() + given.tobytes(), digest_size=16).digest()
        with _GEO_LOCK:
            geo = _GEO_CACHE.get(key)
            if geo is not None:
                _GEO_CACHE.move_to_end(key)
                return geo
        blocks = [
            cls._compute(seeds[i : i + _GEO_BLOCK], lonlat[i : i + _GEO_BLOCK], given[i : i + _GEO_BLOCK])
            for i in range(0, max(len(sites), 1), _GEO_BLOCK)
        ]
        geo = cls(**{f.name: np.concatenate([getattr(b, f.name) for b in blocks]) for f in fields(cls)})
        for array in vars(geo).values():
            array.setflags(write=False)  # shared between callers
        with _GEO_LOCK:
            _GEO_CACHE[key] = geo
            while len(_GEO_CACHE) > _GEO_CACHE_SIZE:
                _GEO_CACHE.popitem(last=False)
        return geo

    @classmethod
    def _compute(cls, seeds: np.ndarray, lonlat: np.ndarray, given: np.ndarray) -> _Geo:
        lon, lat = lonlat[:, 0], lonlat[:, 1]
        d_sea = _haversine_km(lon, lat, _ALL_COASTS[:, 0], _ALL_COASTS[:, 1]).min(axis=1, initial=np.inf)
        d_sea = np.where(np.isnan(given), d_sea, given)
        d_atl = _haversine_km(lon, lat, _ATLANTIC_WEST[:, 0], _ATLANTIC_WEST[:, 1]).min(
            axis=1, initial=np.inf
        )
        east = np.clip((lon + 10.0) / 50.0, 0.0, 1.0)
        cont = np.clip(0.5 * east + 0.5 * (1.0 - np.exp(-d_sea / 400.0)), 0.0, 1.0)
        atlantic = np.exp(-d_atl / 50.0) * np.clip((lat - 40.0) / 12.0, 0.0, 1.0)
        med_band = np.exp(-(((lat - 38.5) / 4.5) ** 2)) * (lon > -10.5)
        med_dry = np.clip(med_band * 1.1, 0.0, 1.0)
        med_warm = med_band * _sigmoid((lon + 6.0) / 1.5)
        olon, olat, oh, ow, orain = _OROGRAPHY.T
        d2 = (lon[:, None] - olon[None, :]) ** 2 + (lat[:, None] - olat[None, :]) ** 2
        bumps = np.exp(-0.5 * d2 / ow[None, :] ** 2)
        elev_km = (bumps * oh).max(axis=1, initial=0.0) / 1000.0
        orographic_rain = (bumps * oh * orain).max(axis=1, initial=0.0) / 1000.0
        clon, clat, cpop = _CITIES.T
        d_city = _haversine_km(lon, lat, clon, clat)
        sigma = 6.0 * cpop**0.4
        urban = np.clip(np.sum(np.sqrt(cpop / 5.0) * np.exp(-0.5 * (d_city / sigma) ** 2), axis=1), 0, 1)
        coal = np.exp(-0.5 * (((lon - 19.3) / 2.5) ** 2 + ((lat - 50.0) / 1.3) ** 2)) + 0.35 * np.exp(
            -0.5 * (((lon - 22.0) / 7.0) ** 2 + ((lat - 47.5) / 4.0) ** 2)
        )
        coast = np.exp(-d_sea / 40.0)
        return cls(
            seeds, lon, lat, cont, atlantic, med_dry, med_warm, elev_km, orographic_rain, urban, coal, coast
        )

    def subset(self, part: slice) -> _Geo:
        return _Geo(**{f.name: getattr(self, f.name)[part] for f in fields(self)})


# ---------------------------------------------------------------------------------------------
# The generator.
# ---------------------------------------------------------------------------------------------

#: Lead-in days of the weather (covers the 90-day memory of the fire-weather drought terms).
_LEAD = 96
#: River discharge: linear reservoirs restarted at fixed 180-day anchors after 300 days of spin-up,
#: so a day's discharge only depends on the precipitation of fixed dates before it.
_DIS_BLOCK, _DIS_SPINUP = 180, 300
#: Sites computed together (bounds the size of the temporaries).
_CHUNK = 256


def _phase(days: np.ndarray, peak_day: float | np.ndarray) -> np.ndarray:
    """cos of the annual cycle, 1 on `peak_day` (day of year, 0 = 1 January)."""
    return np.cos(_TWO_PI * (days[None, :] - np.asarray(peak_day, dtype=np.float64).reshape(-1, 1)) / _YEAR)


def _events_for(days: np.ndarray, kind: str) -> list[tuple[Event, np.ndarray, np.ndarray]]:
    """(event, day weights over `days`, index of days) for events of `kind` overlapping `days`."""
    found = []
    for ev in EVENTS:
        if ev.kind != kind:
            continue
        first = (ev.start - _EPOCH).days
        weights = ev.daily_profile()
        pos = np.arange(first, first + len(weights)) - days[0]
        keep = (pos >= 0) & (pos < len(days))
        if keep.any():
            found.append((ev, weights[keep], pos[keep]))
    return found


def _event_field(geo: _Geo, days: np.ndarray, kind: str, with_weight: bool = False):
    """Events of `kind` as (n_sites, n_days): the day's profile x the site's magnitude, 0 outside.

    With `with_weight`, also the profile alone (0–1) where the site is inside, for blending.
    """
    out = np.zeros((len(geo.seeds), len(days)))
    weight = np.zeros_like(out)
    for ev, weights, pos in _events_for(days, kind):
        inside = ev.contains(geo.lon, geo.lat)
        if not inside.any():
            continue
        u = _site_uniform(geo.seeds, _S_EVENT + _stable_u64(ev.name) % 100_000)
        magnitude = ev.magnitude * (1.0 + ev.spread * (2.0 * u - 1.0)) * inside
        out[:, pos] = np.maximum(out[:, pos], magnitude[:, None] * weights[None, :])
        weight[:, pos] = np.maximum(weight[:, pos], inside[:, None] * weights[None, :])
    return (out, weight) if with_weight else out


def _precipitation(geo: _Geo, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Daily precipitation (mm), and the heat-event temperature rise (°C) that also drives the rest.

    Wet days are where a persistent, partly regional latent normal exceeds the seasonal wet-day
    quantile; amounts are Weibull (shape 1/1.4) around the seasonal wet-day mean. Heat events dry the
    days up, rain events set a floor.
    """
    k = len(_K_PR) - 1
    ext = np.arange(days[0] - k, days[-1] + 1)
    regional = _Regional(geo.lon, geo.lat).noise(_S_PR_REG, ext, _K_PR)
    local = _fir(_normal(geo.seeds, _S_PR, ext), _K_PR)
    latent = np.sqrt(0.6) * regional + np.sqrt(0.4) * local

    annual = 560.0 + 1800.0 * geo.atlantic + geo.orographic_rain - 160.0 * geo.med_dry
    season = np.clip(
        0.9 * geo.med_dry + 0.35 * geo.atlantic - 0.45 * geo.cont * (1 - geo.med_dry), -0.6, 0.92
    )
    m = 1.0 + season[:, None] * _phase(days, 350.0)
    p0 = np.clip(0.36 + 0.32 * geo.atlantic + 0.08 * geo.elev_km - 0.06 * geo.med_dry, 0.1, 0.75)
    p_wet = np.clip(p0[:, None] * np.sqrt(m), 0.01, 0.85)
    # Mediterranean rain is more intense in autumn.
    intensity = 1.0 + 0.45 * geo.med_dry[:, None] * _phase(days, 290.0)
    mean_wet = (annual / _YEAR)[:, None] * m / p_wet * intensity
    wet = latent > special.ndtri(1.0 - p_wet)
    # Wet-day amounts: Weibull with shape 1/1.4 (a heavy tail) and mean `mean_wet`.
    u = _uniform(geo.seeds, _S_PR_AMOUNT, days)[wet]
    pr = np.zeros(wet.shape)
    pr[wet] = 0.1 + np.maximum(mean_wet[wet] - 0.1, 0.0) * (-np.log(u)) ** 1.4 / special.gamma(2.4)
    heat = _event_field(geo, days, "heat")
    heat_weight = np.clip(heat / 6.0, 0.0, 1.0)
    pr = pr * (1.0 - heat_weight)
    pr = np.maximum(pr, _event_field(geo, days, "rain"))
    return pr, heat


def _days_since(mask: np.ndarray, cap: int) -> np.ndarray:
    """Days since the last True along time (0 on a True day), capped at `cap`; exact integers."""
    idx = np.arange(mask.shape[-1])
    last = np.maximum.accumulate(np.where(mask, idx, -(cap + 1) - 1), axis=-1)
    return np.minimum(idx - last, cap)


def _sum_since(values: np.ndarray, since: np.ndarray) -> np.ndarray:
    """sum of values[t - since[t] + 1 .. t], exactly, via integer cumulative sums (values >= 0).

    Quantised to 1/1024 so that the sum does not depend on where the arrays start; entries with
    t - since[t] < 0 are meaningless and must be in the dropped lead-in.
    """
    q = np.round(values * 1024.0).astype(np.int64)
    c = np.concatenate([np.zeros((*q.shape[:-1], 1), np.int64), np.cumsum(q, axis=-1)], axis=-1)
    upper = np.arange(1, q.shape[-1] + 1)
    lower = np.clip(upper - since, 0, None)
    return (c[..., 1:] - np.take_along_axis(c, lower, axis=-1)) / 1024.0


def _fire_weather_index(
    days: np.ndarray,
    tasmax: np.ndarray,
    hurs: np.ndarray,
    wind: np.ndarray,
    pr: np.ndarray,
    dtr: np.ndarray,
    lead: int,
) -> np.ndarray:
    """A Fire Weather Index from the equations of Van Wagner (1987) with the moisture codes simplified.

    The fine fuel moisture comes from the equilibrium moisture content at noon (tasmax, hurs minus
    the diurnal drop) wetted by today's and yesterday's rain; the Duff Moisture and Drought Codes are
    the sums of their daily drying increments since the last rain of 2 mm (DMC, up to 60 days) and of
    8 mm (DC, up to 90 days), instead of the full recursive bookkeeping. ISI, BUI and FWI then follow
    the published formulas. Inputs cover `lead` days before the result.
    """
    t = tasmax
    h = np.clip(hurs - 0.9 * dtr, 5.0, 100.0)
    le = (9.8 + 4.0 * _phase(days, 165.0))[0]  # DMC effective day length, ~46°N
    lf = np.maximum(1.9 + 4.3 * _phase(days, 195.0)[0], -1.6)  # DC day-length adjustment
    dmc_inc = np.maximum(1.894 * (t + 1.1) * (100.0 - h) * le[None, :] * 1e-4, 0.0)
    dc_inc = np.maximum(0.5 * (0.36 * (t + 2.8) + lf[None, :]), 0.0)
    dmc = 2.0 + _sum_since(dmc_inc, _days_since(pr >= 2.0, 60))[:, lead:]
    dc = 15.0 + _sum_since(dc_inc, _days_since(pr >= 8.0, 90))[:, lead:]

    # The rest is element-wise on the result days only, in float32 (4 times faster, ample precision).
    f32 = np.float32
    rain_yesterday = pr[:, lead - 1 : -1].astype(f32)
    t, h, pr, w_kmh = (a[:, lead:].astype(f32) for a in (t, h, pr, 3.6 * 1.1 * wind))
    dmc, dc = dmc.astype(f32), dc.astype(f32)
    ed = 0.942 * h**0.679 + 11.0 * np.exp((h - 100.0) / 10.0) + 0.18 * (21.1 - t) * (1.0 - np.exp(-0.115 * h))
    m = ed + 40.0 * (1.0 - np.exp(-pr / 3.0)) + 15.0 * (1.0 - np.exp(-rain_yesterday / 3.0))
    m = np.clip(m, 1.5, 150.0)
    f_f = 91.9 * np.exp(-0.1386 * m) * (1.0 + m**5.31 / 4.93e7)
    isi = 0.208 * np.exp(0.05039 * w_kmh) * f_f
    bui = np.where(
        dmc <= 0.4 * dc,
        0.8 * dmc * dc / (dmc + 0.4 * dc),
        dmc - (1.0 - 0.8 * dc / (dmc + 0.4 * dc)) * (0.92 + (0.0114 * dmc) ** 1.7),
    )
    bui = np.maximum(bui, 0.0)
    fd = np.where(bui <= 80.0, 0.626 * bui**0.809 + 2.0, 1000.0 / (25.0 + 108.64 * np.exp(-0.023 * bui)))
    b = 0.1 * isi * fd
    fwi = np.where(b > 1.0, np.exp(2.72 * (0.434 * np.log(np.maximum(b, 1.0))) ** 0.647), b)
    return np.maximum(fwi, 0.0).astype(np.float64)


def _discharge(geo: _Geo, pr: np.ndarray, first_day: int, days: np.ndarray) -> np.ndarray:
    """River discharge (m3 s-1) of a synthetic catchment per site from precipitation since `first_day`.

    Runoff feeds a fast two-reservoir cascade (3-day) and a slow reservoir (40-day); each block of
    _DIS_BLOCK days is computed from zero storage _DIS_SPINUP days before it, so the result depends
    only on fixed dates.
    """
    season = _phase(np.arange(first_day, first_day + pr.shape[1]), 200.0)
    coeff = np.clip(0.35 + 0.3 * geo.atlantic + 0.15 * geo.elev_km, 0.2, 0.8)[:, None] * (1.0 - 0.35 * season)
    runoff = np.pad(pr * coeff, ((0, 0), (0, _DIS_BLOCK)))  # the filter is causal: the future is never used
    b0, b1 = days[0] // _DIS_BLOCK, days[-1] // _DIS_BLOCK
    starts = np.arange(b0, b1 + 1) * _DIS_BLOCK - _DIS_SPINUP
    idx = starts[:, None] + np.arange(_DIS_SPINUP + _DIS_BLOCK)[None, :] - first_day
    x = runoff[:, idx]
    beta_f, beta_s = np.exp(-1.0 / 3.0), np.exp(-1.0 / 40.0)
    fast = signal.lfilter([(1 - beta_f) ** 2], [1.0, -2 * beta_f, beta_f**2], x, axis=-1)
    slow = signal.lfilter([1 - beta_s], [1.0, -beta_s], x, axis=-1)
    q_mm = (0.6 * fast + 0.4 * slow)[..., _DIS_SPINUP:].reshape(len(geo.seeds), -1)
    off = days[0] - b0 * _DIS_BLOCK
    q_mm = q_mm[:, off : off + len(days)]
    area_km2 = np.exp(np.log(300.0) + _site_uniform(geo.seeds, _S_CATCHMENT) * np.log(100.0))
    return area_km2[:, None] * (0.15 + q_mm) * 1000.0 / 86400.0


def _pollution(
    geo: _Geo, days: np.ndarray, tas_clim: np.ndarray, tasmax: np.ndarray, wind: np.ndarray, wet: np.ndarray
) -> dict[str, np.ndarray]:
    """Daily mean SO2, NO2, O3, PM10 and PM2.5 (µg m-3), lognormal around a seasonal baseline."""
    k = len(_K_POLL) - 1
    ext = np.arange(days[0] - k, days[-1] + 1)
    regional = _Regional(geo.lon, geo.lat).noise(_S_POLL_REG, ext, _K_POLL)
    heating = np.clip((15.0 - tas_clim) / 15.0, 0.0, 1.5)
    summer = 0.5 * (1.0 + _phase(days, 190.0))
    stagnation = np.exp(-0.3 * (wind - 3.5) / 3.5) * (1.0 - 0.25 * wet)
    weekday = (days + 3) % 7  # 0 = Monday; 1970-01-01 was a Thursday
    traffic = np.where(weekday == 6, 0.72, np.where(weekday == 5, 0.85, 1.0))[None, :]
    u, coal = geo.urban[:, None], geo.coal[:, None]

    def lognormal(name: str, sigma: float) -> np.ndarray:
        z = np.sqrt(0.5) * regional + np.sqrt(0.5) * _fir(
            _normal(geo.seeds, _S_POLLUTANT[name], ext), _K_POLL
        )
        return np.exp(sigma * z - 0.5 * sigma**2)

    out = {}
    out["so2"] = (1.5 + 3.0 * u + heating * (1.0 + 22.0 * coal)) * stagnation * lognormal("so2", 0.5)
    out["no2"] = (5.0 + 30.0 * u * traffic + 12.0 * u * heating) * stagnation * lognormal("no2", 0.35)
    med = geo.med_warm[:, None]
    o3_base = 48.0 + 40.0 * summer * (0.35 + med) + 1.6 * np.maximum(tasmax - 25.0, 0.0) - 14.0 * u
    out["o3"] = np.maximum(o3_base, 8.0) * np.exp(0.1 * (wind - 3.5) / 3.5) * lognormal("o3", 0.2)
    pm_base = 11.0 + 8.0 * u + 8.0 * geo.med_dry[:, None] * summer + heating * (3.0 + 45.0 * coal + 6.0 * u)
    pm10 = pm_base * stagnation * lognormal("pm10", 0.32)
    ratio = 0.5 + 0.2 * np.minimum(heating, 1.0) + 0.04 * (_uniform(geo.seeds, _S_PM_RATIO, days) - 0.5)

    smog, weight = _event_field(geo, days, "pollution", with_weight=True)
    if smog.any():
        wiggle = 1.0 + np.clip(0.04 * _normal(geo.seeds, _S_EVENT - 1, days), -0.08, 0.08)
        pm10 = (1.0 - weight) * pm10 + smog * wiggle
        ratio = (1.0 - weight) * ratio + weight * 0.75
        out["so2"] = out["so2"] + smog * (60.0 / 165.0)
        out["no2"] = out["no2"] + smog * (25.0 / 165.0)
    out["pm10"] = pm10
    out["pm2p5"] = pm10 * np.clip(ratio, 0.4, 0.85)
    return out


def _compute(geo: _Geo, days: np.ndarray, wanted: set[str]) -> dict[str, np.ndarray]:
    """All the variables in `wanted` over `days`, computed with internal lead-in days."""
    d0, d1 = int(days[0]), int(days[-1])
    out: dict[str, np.ndarray] = {}

    # Precipitation is computed over the widest period any variable needs, then cut.
    pr_first = d0 - _LEAD
    if "dis24" in wanted:
        pr_first = min(pr_first, (d0 // _DIS_BLOCK) * _DIS_BLOCK - _DIS_SPINUP)
    pr_days = np.arange(pr_first, d1 + 1)
    pr_all, heat_all = _precipitation(geo, pr_days)
    if "dis24" in wanted:
        out["dis24"] = _discharge(geo, pr_all, pr_first, days)
    if not wanted - {"pr", "dis24"}:
        if "pr" in wanted:
            out["pr"] = pr_all[:, d0 - pr_first :]
        return out

    # Weather over the lead-in period plus the request.
    wdays = np.arange(d0 - _LEAD, d1 + 1)
    cut = slice(_LEAD, None)
    pr = pr_all[:, wdays[0] - pr_first :]
    heat = heat_all[:, wdays[0] - pr_first :]
    wet = np.clip(pr / 5.0, 0.0, 1.0)
    lat = geo.lat
    jan = 10.3 - 0.4 * (lat - 45.0) - 16.0 * geo.cont - 6.5 * geo.elev_km
    jul = 21.5 - 0.45 * (lat - 45.0) + 2.7 * geo.cont + 3.0 * geo.med_warm - 6.5 * geo.elev_km
    coldest = 15.0 + 12.0 * (1.0 - geo.cont)
    tas_clim = (0.5 * (jan + jul))[:, None] - (0.5 * (jul - jan))[:, None] * _phase(wdays, coldest)
    summer = 0.5 * (1.0 + _phase(wdays, 196.0))

    kt, ks = len(_K_TEMP) - 1, len(_K_TEMP_SLOW) - 1
    regional = _Regional(geo.lon, geo.lat)
    fast = np.sqrt(0.7) * regional.noise(_S_TEMP_REG, np.arange(wdays[0] - kt, d1 + 1), _K_TEMP)
    fast += np.sqrt(0.3) * _fir(_normal(geo.seeds, _S_TEMP, np.arange(wdays[0] - kt, d1 + 1)), _K_TEMP)
    slow = regional.noise(_S_TEMP_SLOW, np.arange(wdays[0] - ks, d1 + 1), _K_TEMP_SLOW)
    sd = (1.5 + 0.6 * geo.cont + 0.4 * (1.0 - geo.atlantic))[:, None] + 2.6 * geo.cont[:, None] * (
        1.0 - summer
    )
    anomaly = sd * (0.8 * fast + 0.6 * slow)
    tas = tas_clim + anomaly - 1.2 * wet * summer + 0.9 * heat

    dtr_clim = (5.0 + 2.0 * geo.cont - 1.0 * geo.atlantic)[:, None] + summer * (
        2.0 + 3.0 * geo.cont + 2.5 * geo.med_dry
    )[:, None]
    dtr = dtr_clim * (1.0 - 0.3 * wet) + 0.8 * _normal(geo.seeds, _S_DTR, wdays) + 0.2 * heat
    dtr = np.clip(dtr, 5.0, 14.0)
    tasmax = tas + 0.55 * dtr
    tasmin = tas - 0.45 * dtr

    hurs_mean = 78.0 + 5.0 * geo.atlantic - 16.0 * geo.med_dry - 4.0 * geo.cont
    hurs_amp = 4.0 + 12.0 * geo.med_dry + 6.0 * geo.cont
    hurs_clim = hurs_mean[:, None] + hurs_amp[:, None] * _phase(wdays, 15.0)
    kh = len(_K_HURS) - 1
    hurs_noise = _fir(_normal(geo.seeds, _S_HURS, np.arange(wdays[0] - kh, d1 + 1)), _K_HURS)
    hurs = hurs_clim - 2.0 * (tas - tas_clim) + 12.0 * wet + 5.0 * hurs_noise
    rain_event = _event_field(geo, wdays, "rain")
    hurs = np.clip(np.maximum(hurs, np.where(rain_event > 0, 95.0, 0.0)), 5.0, 100.0)

    kw = len(_K_WIND) - 1
    wext = np.arange(wdays[0] - kw, d1 + 1)
    wind_z = np.sqrt(0.5) * regional.noise(_S_WIND_REG, wext, _K_WIND)
    wind_z += np.sqrt(0.5) * _fir(_normal(geo.seeds, _S_WIND, wext), _K_WIND)
    wind_mean = (3.0 + 1.8 * geo.coast + 1.2 * geo.atlantic + 0.6 * geo.elev_km)[:, None] * (
        1.0 + 0.15 * (geo.lat[:, None] > 45) * _phase(wdays, 15.0)
    )
    wind = wind_mean * np.exp(0.35 * wind_z - 0.06) + 1.0 * wet + 4.0 * np.clip(rain_event / 100.0, 0, 1)
    wind = np.maximum(wind, 0.2)

    keep = {"tas": tas, "tasmin": tasmin, "tasmax": tasmax, "pr": pr, "hurs": hurs, "sfcWind": wind}
    for name, arr in keep.items():
        if name in wanted:
            out[name] = arr[:, cut]

    if "fwi" in wanted:
        fwi = _fire_weather_index(wdays, tasmax, hurs, wind, pr, dtr, _LEAD)
        fire, weight = _event_field(geo, days, "fire", with_weight=True)
        if fire.any():
            wiggle = 1.0 + np.clip(0.025 * _normal(geo.seeds, _S_EVENT - 2, days), -0.05, 0.05)
            fwi = (1.0 - weight) * fwi + fire * wiggle
        out["fwi"] = fwi

    if "ndvi" in wanted:
        dry_days = _days_since(pr >= 5.0, 90)[:, cut]
        green_clim = (0.5 * (jan + jul))[:, None] - (0.5 * (jul - jan))[:, None] * _phase(
            days, coldest + 25.0
        )
        greenness = _sigmoid((green_clim - 7.0) / 2.5) * (
            1.0 - 0.55 * geo.med_dry[:, None] * summer[:, cut] ** 2
        )
        wetness = np.clip(0.35 + 0.65 * geo.atlantic + 0.5 * geo.elev_km - 0.2 * geo.med_dry, 0.0, 1.0)
        ndvi_max = 0.62 + 0.22 * wetness - 0.3 * geo.urban
        ndvi_min = 0.22 + 0.2 * wetness - 0.12 * geo.urban
        kn = len(_K_NDVI) - 1
        noise = _fir(_normal(geo.seeds, _S_NDVI, np.arange(d0 - kn, d1 + 1)), _K_NDVI)
        snow = np.clip(-(tas[:, cut] + 1.0) / 5.0, 0.0, 1.0)
        ndvi = (
            ndvi_min[:, None]
            + (ndvi_max - ndvi_min)[:, None] * greenness
            - 0.12 * greenness * dry_days / 90.0
            - 0.25 * snow
            + 0.025 * noise
        )
        out["ndvi"] = np.clip(ndvi, -1.0, 1.0)

    if wanted & {"so2", "no2", "o3", "pm10", "pm2p5"}:
        pollution = _pollution(geo, days, tas_clim[:, cut], tasmax[:, cut], wind[:, cut], wet[:, cut])
        out.update({k: v for k, v in pollution.items() if k in wanted})

    return out


def generate(
    sites: SiteSet, start: dt.date, end: dt.date, variables: Sequence[str] | None = None
) -> xr.Dataset:
    """Synthetic daily site cube (site, time) from `start` to `end` inclusive.

    Each value is a pure function of (site id, date, variable): the same whatever the period asked
    and whatever the other sites of the set. `variables=None` means all of `VARIABLES`.
    """
    start, end = (d.date() if isinstance(d, dt.datetime) else d for d in (start, end))
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    names = list(VARIABLES) if variables is None else list(dict.fromkeys(variables))
    unknown = [v for v in names if v not in VARIABLES]
    if unknown:
        raise ValueError(f"unknown synthetic variables {unknown}; known: {sorted(VARIABLES)}")

    d0, d1 = (start - _EPOCH).days, (end - _EPOCH).days
    days = np.arange(d0, d1 + 1, dtype=np.int64)
    time = (np.datetime64("1970-01-01", "D") + days).astype("datetime64[ns]")
    geo = _Geo.from_sites(sites)
    data = {name: np.empty((len(sites), len(days)), dtype=np.float32) for name in names}
    # Sites are independent: work on blocks of them to keep the temporaries small and in cache.
    for first in range(0, len(sites), _CHUNK):
        part = slice(first, first + _CHUNK)
        for name, values in _compute(geo.subset(part), days, set(names)).items():
            data[name][part] = values

    ds = xr.Dataset(
        {
            name: xr.DataArray(data[name], dims=("site", "time"), attrs=dict(VARIABLES[name]))
            for name in names
        },
        coords={
            "site": ("site", np.array(sites.ids, dtype=object), {"long_name": "site id"}),
            "time": ("time", time, {"standard_name": "time", "long_name": "time"}),
            "lat": ("site", geo.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("site", geo.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={
            **DATASET_ATTRS,
            "title": "Synthetic daily weather, air quality and land variables at heritage sites",
            "request": f"start={start.isoformat()} end={end.isoformat()} variables={','.join(names)}",
            "injected_events": "; ".join(f"{e.name} ({e.start}..{e.end})" for e in EVENTS),
        },
    )
    return ds


# ---------------------------------------------------------------------------------------------
# Forecasts: the truth of the valid days, a lead-dependent error, and injected forecast events.
# ---------------------------------------------------------------------------------------------

#: Per variable: how the forecast error applies ("log": a factor exp(e), "add": an amount) and the standard
#: deviation of one day's step of its random walk over the leads (so the spread grows as sqrt(lead + 1)).
#: Variables not listed are forecast without error.
FORECAST_ERROR: dict[str, tuple[str, float]] = {
    "dis24": ("log", 0.06),
    "fwi": ("add", 1.5),
    "so2": ("log", 0.12),
    "no2": ("log", 0.10),
    "o3": ("log", 0.06),
    "pm10": ("log", 0.10),
    "pm2p5": ("log", 0.10),
}
_S_FORECAST = 2000


@dataclass(frozen=True)
class ForecastEvent:
    """An episode every synthetic forecast shows at fixed leads (days after the issue day) for the sites
    inside a lon/lat box: per lead from `first_lead`, a floor under the forecast value, absolute or a
    multiple of the per-site reference `relative_to` that the caller passes (e.g. the 20-year discharge)."""

    name: str
    variable: str
    first_lead: int
    floors: tuple[float, ...]
    box: tuple[float, float, float, float]  # west, south, east, north (degrees)
    relative_to: str | None = None
    description: str = ""

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        west, south, east, north = self.box
        return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


FORECAST_EVENTS: list[ForecastEvent] = [
    ForecastEvent(
        "River flood forecast, Rhine at Cologne",
        "dis24",
        3,
        (0.9, 1.1, 1.15, 0.9),
        (6.5, 50.5, 7.5, 51.5),
        relative_to="dis24_rp20",
        description="Discharge forecast at 0.9, 1.1, 1.15 and 0.9 times the 20-year flood at leads 3 to 6 "
        "days: a flood peak expected at the riverside site.",
    ),
    ForecastEvent(
        "Fire-danger spell forecast, Attica",
        "fwi",
        2,
        (30.0, 42.0, 52.0, 55.0, 48.0, 35.0),
        (23.0, 37.5, 24.5, 38.5),
        description="Fire Weather Index forecast at 30 to 55 at leads 2 to 7 days (EFFIS high to extreme).",
    ),
]


def forecast(
    sites: SiteSet,
    issued: dt.date,
    days: int,
    variables: Sequence[str],
    references: dict[str, np.ndarray] | None = None,
) -> xr.Dataset:
    """Synthetic forecast issued on `issued`: `days` valid days from the issue day (lead 0) on.

    Each value is the synthetic truth of its day with an error whose spread grows with the lead
    (`FORECAST_ERROR`), then raised to the floors of `FORECAST_EVENTS`; `references` holds the per-site
    values (site order) that relative events scale. A pure function of (site, issue day, lead, variable).
    """
    if days < 1:
        raise ValueError(f"a forecast covers at least one day, not {days}")
    issued = issued.date() if isinstance(issued, dt.datetime) else issued
    cube = generate(sites, issued, issued + dt.timedelta(days=days - 1), variables)
    geo = _Geo.from_sites(sites)
    keys = (issued - _EPOCH).days * 64 + np.arange(days, dtype=np.int64)
    for name in cube.data_vars:
        values = cube[name].values.astype(np.float64)
        kind, step = FORECAST_ERROR.get(str(name), ("add", 0.0))
        if step:
            stream = _S_FORECAST + _stable_u64(str(name)) % 997
            walk = step * np.cumsum(_normal(geo.seeds, stream, keys), axis=1)
            values = values * np.exp(walk) if kind == "log" else np.maximum(values + walk, 0.0)
        for event in FORECAST_EVENTS:
            if event.variable != name:
                continue
            inside = event.contains(geo.lon, geo.lat)
            scale = np.ones(len(sites))
            if event.relative_to is not None:
                if references is None or event.relative_to not in references:
                    raise ValueError(
                        f"forecast event {event.name!r} needs the reference {event.relative_to!r}"
                    )
                scale = np.asarray(references[event.relative_to], dtype=np.float64)
            for k, floor in enumerate(event.floors):
                lead = event.first_lead + k
                if lead < days:
                    raised = np.maximum(values[:, lead], floor * scale)
                    values[:, lead] = np.where(inside & np.isfinite(raised), raised, values[:, lead])
        cube[name] = cube[name].copy(data=values.astype(np.float32))
    cube.attrs.update(
        title="Synthetic daily forecast at heritage sites",
        request=f"issued={issued.isoformat()} days={days} variables={','.join(map(str, cube.data_vars))}",
        injected_events="; ".join(
            f"{e.name} (leads {e.first_lead}..{e.first_lead + len(e.floors) - 1})" for e in FORECAST_EVENTS
        ),
        forecast_error="truth of the valid day plus a random walk over the leads: "
        + ", ".join(f"{v} {k} {s:g}/day" for v, (k, s) in FORECAST_ERROR.items()),
    )
    return cube
