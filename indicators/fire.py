"""Wildfire indicators: the Canadian Forest Fire Weather Index System computed from local-noon weather.

The CEMS product gives a daily `fwi` (see `indicators.emergency.fire_danger_class`); this module computes
the six codes from noon weather for sites and periods that product does not cover.

Path taken: a numba kernel (`_cffwis_kernel`), a line-by-line port of xclim's `fire_weather_ufunc` in its
"always on" mode (`season_method=None`, the `fire` function of the R package cffdrs), whose equations and
branches it copies. xclim steps through time in Python, calling numba ufuncs once per day for all sites;
the kernel keeps each site's three codes in registers and runs its days in one compiled loop (sites outer,
days inner, over contiguous (site, time) rows), which is many times faster at any number of sites and
handles missing days without cutting the series. It reproduces the published 49-day table of Van Wagner &
Pickett (1985) and Wang, Anderson & Suddaby (2015) to its one decimal for all six codes on all 49 days
(294 values, no exception), the R cffdrs 1.8.18 outputs in `cffdrs_test_fwi.nc` to about 1e-13 relative,
and xclim's own codes (tests/unit/test_fire_kernel.py). The day-length tables are xclim's: the Van Wagner
(1987) ones for lat >= 30 N (DMC Le = 6.5 … 6.0, DC Lf = -1.6 … -1.6) and the GFWED ones (Field et al.
2015) for the other bands.

Missing days: a day on which any of the four inputs of a site is NaN has NaN codes at that site, and the
site's next valid day continues from its last valid codes (from the start codes if it had none): the kernel
skips the day and keeps the codes.
"""

from __future__ import annotations

import numpy as np
import pint
import xarray as xr
from numba import njit
from xclim.core.units import units2pint

from indicators.core import IndicatorSpec, Parameter, Reference, Thresholds, register
from indicators.emergency import EFFIS
from indicators.errors import IndicatorInputError
from indicators.units import convert_units_to

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
    """`da` in `units` as floats, or a clear error when its units are absent or of the wrong kind."""
    if "units" not in da.attrs:
        raise IndicatorInputError(f"{name} has no 'units' attribute")
    try:
        out = convert_units_to(da, units, context=context)
        return out if out.dtype.kind == "f" else out.astype("float64")  # float32 stays: the kernel widens
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


#: Day-length tables of xclim (`xclim.indices.fire._cffwis`): DMC effective day length Le by latitude band
#: (rows: 90-30 S, 30-15 S, 15 S-15 N, 15-30 N, 30-90 N) and DC day-length factor Lf (rows: 90-15 S,
#: 15 S-15 N, 15-90 N), by month.
DAY_LENGTHS = np.array(
    [
        [11.5, 10.5, 9.2, 7.9, 6.8, 6.2, 6.5, 7.4, 8.7, 10, 11.2, 11.8],
        [10.1, 9.6, 9.1, 8.5, 8.1, 7.8, 7.9, 8.3, 8.9, 9.4, 9.9, 10.2],
        12 * [9],
        [7.9, 8.4, 8.9, 9.5, 9.9, 10.2, 10.1, 9.7, 9.1, 8.6, 8.1, 7.8],
        [6.5, 7.5, 9, 12.8, 13.9, 13.9, 12.4, 10.9, 9.4, 8, 7, 6],
    ]
)
DAY_LENGTH_FACTORS = np.array(
    [
        [6.4, 5.0, 2.4, 0.4, -1.6, -1.6, -1.6, -1.6, -1.6, 0.9, 3.8, 5.8],
        12 * [1.39],
        [-1.6, -1.6, -1.6, 0.9, 3.8, 5.8, 6.4, 5.0, 2.4, 0.4, -1.6, -1.6],
    ]
)


def _band_rows(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of `DAY_LENGTHS` and of `DAY_LENGTH_FACTORS` for each latitude (xclim's band limits)."""
    le = np.select([lat < -30, lat < -15, lat < 15, lat < 30], [0, 1, 2, 3], 4)
    lf = np.select([lat < -15, lat < 15], [0, 1], 2)
    return le.astype(np.intp), lf.astype(np.intp)


@njit(cache=True, nogil=True)
def _cffwis_kernel(t, h, w, p, month, le_row, lf_row, ffmc0, dmc0, dc0, out):  # pragma: no cover
    """The six codes of every (site, day) into `out` (6, site, time), in float64 from inputs of any float
    dtype. A day with a non-finite input or a negative wind is NaN and the site's codes carry over it; RH
    is clipped to [0, 100] % and negative precipitation counts as none. Equations and branches as xclim's
    `_fine_fuel_moisture_code`, `_duff_moisture_code`, `_drought_code`, `initial_spread_index`,
    `build_up_index` and `fire_weather_index` (cffdrs), in the same order of operations."""
    n_sites, n_days = t.shape
    for s in range(n_sites):
        ffmc = ffmc0[s]
        dmc = dmc0[s]
        dc = dc0[s]
        for d in range(n_days):
            tt = np.float64(t[s, d])
            hh = np.float64(h[s, d])
            ww = np.float64(w[s, d])
            pp = np.float64(p[s, d])
            if not (np.isfinite(tt) and np.isfinite(hh) and np.isfinite(ww) and np.isfinite(pp) and ww >= 0):
                for k in range(6):
                    out[k, s, d] = np.nan
                continue
            hh = min(max(hh, 0.0), 100.0)
            pp = max(pp, 0.0)
            mth = month[d] - 1
            # DC
            fl = DAY_LENGTH_FACTORS[lf_row[s], mth]
            td = max(tt, -2.8)
            pe = (0.36 * (td + 2.8) + fl) / 2
            pe = max(pe, 0.0)
            if pp > 2.8:
                rw = 0.83 * pp - 1.27
                smi = 800.0 * np.exp(-dc / 400.0)
                dr = dc - 400.0 * np.log(1.0 + ((3.937 * rw) / smi))
                dc = dr + pe if dr > 0.0 else pe
            else:
                dc = dc + pe
            # DMC
            dl = DAY_LENGTHS[le_row[s], mth]
            rk = 0.0 if tt < -1.1 else 1.894 * (tt + 1.1) * (100.0 - hh) * dl * 0.0001
            if pp > 1.5:
                rw = 0.92 * pp - 1.27
                wmi = 20.0 + 280.0 / np.exp(0.023 * dmc)
                if dmc <= 33.0:
                    b = 100.0 / (0.5 + 0.3 * dmc)
                elif dmc <= 65.0:
                    b = 14.0 - 1.3 * np.log(dmc)
                else:
                    b = 6.2 * np.log(dmc) - 17.2
                wmr = wmi + (1000 * rw) / (48.77 + b * rw)
                pr_ = 43.43 * (5.6348 - np.log(wmr - 20.0))
            else:
                pr_ = dmc
            pr_ = max(pr_, 0.0)
            dmc = max(pr_ + rk, 0.0)
            # FFMC
            mo = (147.2 * (101.0 - ffmc)) / (59.5 + ffmc)
            if pp > 0.5:
                rf = pp - 0.5
                if mo > 150.0:
                    mo = (mo + 42.5 * rf * np.exp(-100.0 / (251.0 - mo)) * (1.0 - np.exp(-6.93 / rf))) + (
                        0.0015 * (mo - 150.0) ** 2
                    ) * np.sqrt(rf)
                else:
                    mo = mo + 42.5 * rf * np.exp(-100.0 / (251.0 - mo)) * (1.0 - np.exp(-6.93 / rf))
                mo = min(mo, 250.0)
            ed = (
                0.942 * (hh**0.679)
                + (11.0 * np.exp((hh - 100.0) / 10.0))
                + 0.18 * (21.1 - tt) * (1.0 - 1.0 / np.exp(0.1150 * hh))
            )
            if mo < ed:
                ew = (
                    0.618 * (hh**0.753)
                    + (10.0 * np.exp((hh - 100.0) / 10.0))
                    + 0.18 * (21.1 - tt) * (1.0 - 1.0 / np.exp(0.115 * hh))
                )
                if mo < ew:
                    kl = 0.424 * (1.0 - ((100.0 - hh) / 100.0) ** 1.7) + (0.0694 * np.sqrt(ww)) * (
                        1.0 - ((100.0 - hh) / 100.0) ** 8
                    )
                    kw = kl * (0.581 * np.exp(0.0365 * tt))
                    m = ew - (ew - mo) / 10.0**kw
                else:
                    m = mo
            elif mo == ed:
                m = mo
            else:
                kl = 0.424 * (1.0 - (hh / 100.0) ** 1.7) + (0.0694 * np.sqrt(ww)) * (1.0 - (hh / 100.0) ** 8)
                kw = kl * (0.581 * np.exp(0.0365 * tt))
                m = ed + (mo - ed) / 10.0**kw
            ffmc = (59.5 * (250.0 - m)) / (147.2 + m)
            if ffmc > 101.0:
                ffmc = 101.0
            elif ffmc <= 0.0:
                ffmc = 0.0
            # ISI, BUI, FWI
            mo = 147.2 * (101.0 - ffmc) / (59.5 + ffmc)
            ff = 19.1152 * np.exp(mo * -0.1386) * (1.0 + (mo**5.31) / 49300000.0)
            isi = ff * np.exp(0.05039 * ww)
            if dmc == 0 and dc == 0:
                bui = 0.0
            elif dmc <= 0.4 * dc:
                bui = (0.8 * dc * dmc) / (dmc + 0.4 * dc)
            else:
                bui = dmc - (1.0 - 0.8 * dc / (dmc + 0.4 * dc)) * (0.92 + (0.0114 * dmc) ** 1.7)
            bui = max(bui, 0.0)
            if bui <= 80.0:
                fwi = 0.1 * isi * (0.626 * bui**0.809 + 2.0)
            else:
                fwi = 0.1 * isi * (1000.0 / (25.0 + 108.64 / np.exp(0.023 * bui)))
            if fwi > 1:
                fwi = np.exp(2.72 * (0.434 * np.log(fwi)) ** 0.647)
            out[0, s, d] = ffmc
            out[1, s, d] = dmc
            out[2, s, d] = dc
            out[3, s, d] = isi
            out[4, s, d] = bui
            out[5, s, d] = fwi


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
    months = tas["time"].dt.month.values.astype(np.int64)
    le_row, lf_row = _band_rows(lats)
    out = np.empty((len(CODES), n_sites, n_time))
    _cffwis_kernel(
        weather["tas"],
        weather["hurs"],
        weather["sfcWind"],
        weather["pr"],
        months,
        le_row,
        lf_row,
        *(np.ascontiguousarray(state[name], dtype=np.float64) for name in ("ffmc", "dmc", "dc")),
        out,
    )
    codes = dict(zip(CODES, out, strict=True))

    return xr.Dataset(
        {
            name: (tas.dims, codes[name].reshape(tas.shape), {"units": "1", "long_name": long_name})
            for name, (_, long_name) in CODES.items()
        },
        coords=tas.coords,
        attrs={"method": "cffdrs 'fire' (always on), numba port of xclim.indices.fire.fire_weather_ufunc"},
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
