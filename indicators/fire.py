"""Wildfire indicators: the Canadian Forest Fire Weather Index System computed from local-noon weather.

The CEMS product gives a daily `fwi` (see `indicators.emergency.fire_danger_class`); this module computes
the six codes from noon weather for sites and periods that product does not cover.

Path taken: xclim. `xclim.indices.fire.fire_weather_ufunc` in its "always on" mode (`season_method=None`,
the `fire` function of the R package cffdrs) reproduces the published 49-day table of Van Wagner & Pickett
(1985) and Wang, Anderson & Suddaby (2015) to its one decimal for all six codes on all 49 days (294 values,
no exception), and the R cffdrs 1.8.18 outputs in `cffdrs_test_fwi.nc` to about 1e-13 relative, from both the
standard start-up and a continued run. So no kernel of our own: xclim steps through time and is vectorised
over sites (numba ufuncs); this module adds units, per-site latitude, start codes, the rule for missing days
and the indicator declaration. The day-length tables are xclim's: the Van Wagner (1987) ones for lat >= 30 N
(DMC Le = 6.5 … 6.0, DC Lf = -1.6 … -1.6) and the GFWED ones (Field et al. 2015) for the other bands.

Missing days: a day on which any of the four inputs of a site is NaN has NaN codes at that site, and the
site's next valid day continues from its last valid codes (from the start codes if it had none). The xclim
iterator alone would carry the NaN on to every later day; the series is therefore cut into runs of days, and
each day on which a site lacks data but has data later is stepped through alone.
"""

from __future__ import annotations

import numpy as np
import pint
import xarray as xr
from xclim.core.units import convert_units_to, units2pint
from xclim.indices.fire import fire_weather_ufunc

from indicators.core import IndicatorSpec, Parameter, Reference, Thresholds, register
from indicators.emergency import EFFIS
from indicators.errors import IndicatorInputError

#: The six codes, in the order of the output Dataset, with their xclim names and long names.
CODES: dict[str, tuple[str, str]] = {
    "ffmc": ("FFMC", "Fine Fuel Moisture Code"),
    "dmc": ("DMC", "Duff Moisture Code"),
    "dc": ("DC", "Drought Code"),
    "isi": ("ISI", "Initial Spread Index"),
    "bui": ("BUI", "Buildup Index"),
    "fwi": ("FWI", "Fire Weather Index"),
}
#: Standard start-up codes (Van Wagner & Pickett 1985; Wang, Anderson & Suddaby 2015).
START_CODES = {"ffmc": 85.0, "dmc": 6.0, "dc": 15.0}

VAN_WAGNER_1987 = Reference(
    "Van Wagner C.E. 1987, Development and structure of the Canadian Forest Fire Weather Index System, "
    "Canadian Forestry Service, Forestry Technical Report 35",
    "equations of the six codes and the day-length tables for latitudes >= 30 N",
)
WANG_2015 = Reference(
    "Wang Y., Anderson K.R., Suddaby R.M. 2015, Updated source code for calculating fire danger indices "
    "in the Canadian Forest Fire Weather Index System, Natural Resources Canada, Information Report "
    "NOR-X-424",
    "reference implementation and the 49-day test table (inputs and expected outputs)",
)
XCLIM_FIRE = Reference(
    "Bourgault et al. 2023, xclim: xarray-based climate data analytics, JOSS 8(85):5415; "
    "xclim.indices.fire.fire_weather_ufunc",
    "the computation (a port of cffdrs) and the GFWED day-length tables for latitudes below 30 N",
)


def _convert(da: xr.DataArray, units: str, name: str, context: str | None = None) -> xr.DataArray:
    """`da` in `units` as float64, or a clear error when its units are absent or of the wrong kind."""
    if "units" not in da.attrs:
        raise IndicatorInputError(f"{name} has no 'units' attribute")
    try:
        return convert_units_to(da, units, context=context).astype("float64")
    except (pint.errors.PintError, ValueError) as exc:
        raise IndicatorInputError(f"{name} in {da.attrs['units']!r} cannot be converted to {units}") from exc


def _daily_precipitation(pr: xr.DataArray) -> xr.DataArray:
    """The 24 h precipitation to noon in mm/day: a rate is converted, an amount is read as the 24 h total."""
    if "units" not in pr.attrs:
        raise IndicatorInputError("pr_noon has no 'units' attribute")
    try:
        dims = units2pint(pr).dimensionality
    except (pint.errors.PintError, ValueError) as exc:
        raise IndicatorInputError(f"pr_noon has unreadable units {pr.attrs['units']!r}") from exc
    if dims in ({"[length]": 1}, {"[mass]": 1, "[length]": -2}):
        return _convert(pr, "mm", "pr_noon", context="hydro").assign_attrs(units="mm/d")
    return _convert(pr, "mm/d", "pr_noon", context="hydro")


def _per_site(value: xr.DataArray | float, template: xr.DataArray, name: str) -> np.ndarray:
    """A per-site quantity (scalar, array shaped like the sites, or DataArray) as a flat float64 array."""
    if isinstance(value, xr.DataArray):
        da = value
    elif np.ndim(value) == 0:
        da = xr.DataArray(float(value))
    elif np.shape(value) == template.shape:
        da = xr.DataArray(np.asarray(value, dtype=float), dims=template.dims)
    else:
        raise IndicatorInputError(f"{name} has shape {np.shape(value)}, the sites {template.shape}")
    if "time" in da.dims:
        raise IndicatorInputError(f"{name} must not vary in time")
    try:
        da = da.broadcast_like(template).transpose(*template.dims)
    except ValueError as exc:
        raise IndicatorInputError(f"{name} does not broadcast against dims {template.dims}") from exc
    return np.asarray(da.values, dtype=float).reshape(-1)


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Runs of days xclim can step through in one call: a day on which a site lacks data but has valid data
    later is a run of its own, so that the site's codes can carry over it."""
    n_time = valid.shape[1]
    valid_from = np.logical_or.accumulate(valid[:, ::-1], axis=1)[:, ::-1]  # valid on that day or later
    gaps = np.flatnonzero((~valid[:, :-1] & valid_from[:, 1:]).any(axis=0))
    edges = np.unique(np.concatenate(([0, n_time], gaps, gaps + 1)))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _xclim_run(
    weather: dict[str, np.ndarray], lat: np.ndarray, time: np.ndarray, state: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The six codes over a run of days, for all sites at once, from the previous day's codes `state`."""

    def series(values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values, dims=("site", "time"), coords={"time": time})

    def sites(values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values, dims="site")

    with np.errstate(invalid="ignore"):  # missing days are NaN throughout; their codes are masked after
        out = fire_weather_ufunc(
            tas=series(weather["tas"]),
            pr=series(weather["pr"]),
            hurs=series(weather["hurs"]),
            sfcWind=series(weather["sfcWind"]),
            lat=sites(lat),
            ffmc0=sites(state["ffmc"]),
            dmc0=sites(state["dmc"]),
            dc0=sites(state["dc"]),
            indexes=[xname for xname, _ in CODES.values()],
            season_method=None,
        )
    return {name: out[xname].values for name, (xname, _) in CODES.items()}


def cffwis(
    tas_noon: xr.DataArray,
    hurs_noon: xr.DataArray,
    sfcWind_noon: xr.DataArray,
    pr_noon: xr.DataArray,
    lat: xr.DataArray | np.ndarray | float,
    ffmc0: xr.DataArray | float = START_CODES["ffmc"],
    dmc0: xr.DataArray | float = START_CODES["dmc"],
    dc0: xr.DataArray | float = START_CODES["dc"],
) -> xr.Dataset:
    """The six daily codes of the Canadian Forest Fire Weather Index System (FFMC, DMC, DC, ISI, BUI, FWI).

    Van Wagner (1987) FTR-35, as coded by Wang, Anderson & Suddaby (2015) NOR-X-424 and xclim; with T noon
    temperature (°C), H relative humidity (%), W 10 m wind (km/h), r_o 24 h rain (mm), m fine-fuel moisture:
      FFMC: m_o = 147.2 (101 - F_o)/(59.5 + F_o), wetted by r_f = r_o - 0.5 when r_o > 0.5 (Eqs. 2-3);
            E_d = 0.942 H^0.679 + 11 e^((H-100)/10) + 0.18 (21.1 - T)(1 - e^(-0.115 H))
            (E_w: 0.618 H^0.753 + 10 e^((H-100)/10) + the same last term);
            k = (0.424 (1 - (H/100)^1.7) + 0.0694 √W (1 - (H/100)^8)) · 0.581 e^(0.0365 T)
            (wetting: H → 100 - H); m = E + (m_o - E) 10^(-k); F = 59.5 (250 - m)/(147.2 + m)
      DMC:  P = P_o (after rain when r_o > 1.5, Eqs. 11-15) + 1.894 (T + 1.1)(100 - H) L_e 1e-4
      DC:   D = D_o (after rain when r_o > 2.8, Eqs. 18-21) + (0.36 (T + 2.8) + L_f)/2
      ISI = 0.208 e^(0.05039 W) · 91.9 e^(-0.1386 m)(1 + m^5.31/4.93e7)
      BUI = 0.8 P D/(P + 0.4 D) if P <= 0.4 D, else P - (1 - 0.8 D/(P + 0.4 D))(0.92 + (0.0114 P)^1.7)
      FWI: B = 0.1 ISI f(U), f(U) = 0.626 U^0.809 + 2 (U <= 80) or 1000/(25 + 108.64 e^(-0.023 U));
           FWI = e^(2.72 (0.434 ln B)^0.647) if B > 1, else B.
    L_e and L_f are the monthly day-length tables of the site's latitude band (`lat`, °N). Inputs share dims
    (site, time) and are converted from any units (precipitation: a rate, or an amount read as the 24 h
    total); RH is clipped to [0, 100] % (reanalysis RH slightly exceeds 100 %), negative precipitation counts
    as none and a negative wind speed as missing. `ffmc0`, `dmc0`, `dc0` are the codes of the day before the
    first (per site to continue a run; NaN means the standard start-up). Missing days: see the module doc.
    """
    named = {"tas_noon": tas_noon, "hurs_noon": hurs_noon, "sfcWind_noon": sfcWind_noon, "pr_noon": pr_noon}
    for name, da in named.items():
        if not isinstance(da, xr.DataArray) or "time" not in da.dims:
            raise IndicatorInputError(f"{name} must be a DataArray with a 'time' dimension")
    time_dtype = tas_noon["time"].dtype
    if time_dtype.kind not in "MO":  # numpy datetime64 or cftime dates
        raise IndicatorInputError("'time' must hold dates (the day-length tables are monthly)")
    tas = _convert(tas_noon, "degC", "tas_noon")
    hurs = _convert(hurs_noon, "%", "hurs_noon")
    wind = _convert(sfcWind_noon, "km/h", "sfcWind_noon")
    pr = _daily_precipitation(pr_noon)
    tas, hurs, wind, pr = (da.transpose(..., "time") for da in xr.broadcast(tas, hurs, wind, pr))
    template = tas.isel(time=0, drop=True) if tas.sizes["time"] else tas.sum("time")
    n_sites, n_time = template.size, tas.sizes["time"]

    lats = _per_site(lat, template, "lat")
    if not np.all(np.isfinite(lats) & (np.abs(lats) <= 90)):
        raise IndicatorInputError("lat must be a finite latitude in [-90, 90] °N at every site")
    state = {}
    for name, value in (("ffmc", ffmc0), ("dmc", dmc0), ("dc", dc0)):
        start = _per_site(value, template, f"{name}0")
        state[name] = np.where(np.isnan(start), START_CODES[name], start)

    weather = {
        "tas": tas.values.reshape(n_sites, n_time),
        "hurs": hurs.values.reshape(n_sites, n_time),
        "sfcWind": wind.values.reshape(n_sites, n_time),
        "pr": pr.values.reshape(n_sites, n_time),
    }
    valid = np.logical_and.reduce([np.isfinite(v) for v in weather.values()]) & (weather["sfcWind"] >= 0)
    weather = {k: np.where(valid, v, np.nan) for k, v in weather.items()}
    weather["hurs"] = np.clip(weather["hurs"], 0.0, 100.0)
    weather["pr"] = np.maximum(weather["pr"], 0.0)

    codes = {name: np.full((n_sites, n_time), np.nan) for name in CODES}
    for a, b in _runs(valid) if n_sites else []:
        run = _xclim_run({k: v[:, a:b] for k, v in weather.items()}, lats, tas["time"].values[a:b], state)
        for name in CODES:
            codes[name][:, a:b] = np.where(valid[:, a:b], run[name], np.nan)
        for name in state:
            state[name] = np.where(valid[:, b - 1], codes[name][:, b - 1], state[name])

    return xr.Dataset(
        {
            name: (tas.dims, codes[name].reshape(tas.shape), {"units": "1", "long_name": long_name})
            for name, (_, long_name) in CODES.items()
        },
        coords=tas.coords,
        attrs={"method": "xclim.indices.fire.fire_weather_ufunc, season_method=None (cffdrs 'fire')"},
    )


def _site_latitude(*inputs: xr.DataArray) -> xr.DataArray:
    """The `lat` coordinate of the inputs (°N, one per site)."""
    for da in inputs:
        if "lat" in da.coords:
            return da.coords["lat"]
    raise IndicatorInputError(
        "fire_weather_index needs the site latitude: the inputs have no 'lat' coordinate "
        "(the DMC and DC day-length tables depend on it)"
    )


def fire_weather_index(
    tas_noon: xr.DataArray,
    hurs_noon: xr.DataArray,
    sfcWind_noon: xr.DataArray,
    pr_noon: xr.DataArray,
    freq: str = "D",
) -> xr.DataArray:
    """Daily Fire Weather Index from local-noon weather (see `cffwis`); else the maximum of each period.

    Always on from the standard start-up codes on the first day: allow a few weeks of spin-up for the DMC
    and DC (their time lags are about 12 and 52 days) before reading the values.
    """
    lat = _site_latitude(tas_noon, hurs_noon, sfcWind_noon, pr_noon)
    fwi = cffwis(tas_noon, hurs_noon, sfcWind_noon, pr_noon, lat=lat)["fwi"]
    if freq != "D":
        fwi = fwi.resample(time=freq).max()
    return fwi.assign_attrs(units="1")


register(
    IndicatorSpec(
        id="fire_weather_index",
        title="Fire Weather Index (from noon weather)",
        description="Canadian Fire Weather Index computed from local-noon temperature, humidity, wind and "
        "24 h precipitation, for sites and periods the CEMS fire danger product does not cover: wildfire "
        "threat to sites in or near vegetation, and to timber and thatch. Level bounds are the EFFIS class "
        "limits from 'moderate' (11.2) up.",
        units="1",
        inputs=("tas_noon", "hurs_noon", "sfcWind_noon", "pr_noon"),
        freq="D",
        func=fire_weather_index,
        parameters={"freq": Parameter("D", "", "Period of one value (the period's maximum FWI).")},
        levels=Thresholds(low=11.2, moderate=21.3, high=38.0, severe=50.0),
        version="1",
        family="emergency",
        hazard="wildfire",
        references=(VAN_WAGNER_1987, WANG_2015, EFFIS, XCLIM_FIRE),
        resolve_after=3,
        history=True,  # recursive codes: recomputed from the start of the record so reruns agree exactly
    )
)
