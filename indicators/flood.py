"""Flood indicators: river discharge against return-period thresholds (CEMS GloFAS) and Rapid Mapping
activations over the sites (CEMS EMS).

Both are categorical and daily. Optional inputs (the GloFAS thresholds `dis24_rp2|5|20`, the observed
flooded fraction `ems_flooded_fraction`) are parameters of the same names that default to None: a caller
holding a cube passes them when the cube has them (`optional_inputs(spec_id, cube)` picks them), and the
indicator falls back to what it can do without them.
"""

from __future__ import annotations

import numpy as np
import pint
import xarray as xr

from indicators.core import CategoryLevels, IndicatorSpec, Parameter, Reference, register
from indicators.errors import IndicatorInputError
from indicators.units import convert_units_to

#: Return periods (years) of the GloFAS flood thresholds, in increasing order.
RETURN_PERIODS = (2, 5, 20)
#: Flood categories: discharge below the 2-year flood, then at or above the 2-, 5- and 20-year floods.
FLOOD_CATEGORIES = ("below_2y", "above_2y", "above_5y", "above_20y")
EULER_GAMMA = 0.5772156649015329

GLOFAS_THRESHOLDS = Reference(
    "ECMWF CEMS-Flood wiki, GloFAS flood thresholds (confluence.ecmwf.int, CEMS space): return-period "
    "thresholds from annual maxima of the GloFAS reanalysis, Gumbel distribution fitted with the first two "
    "L-moments",
    "2-, 5- and 20-year thresholds; the Gumbel/L-moment fit used when the thresholds are absent",
    "https://confluence.ecmwf.int/plugins/viewsource/viewpagesrc.action?pageId=715615750",
)
GLOFAS_SUMMARY = Reference(
    "ECMWF CEMS-Flood wiki, GloFAS Flood Summary: 2-, 5- and 20-year exceedance shown yellow, red and "
    "purple, the 20-year signal dominant",
    "the mapping of the three thresholds onto moderate, high and severe",
    "https://confluence.ecmwf.int/display/CEMS/GloFAS+Flood+Summary",
)
EFAS_NOTIFICATION = Reference(
    "ECMWF CEMS-Flood wiki, 4.2.1 EFAS Formal Flood Notification: notification when the probability of "
    "exceeding the 5-year return period reaches 50 %",
    "the 5-year flood as the level of a formal warning, hence 'high'",
)
HOSKING_WALLIS_1997 = Reference(
    "Hosking J.R.M., Wallis J.R. 1997, Regional Frequency Analysis: an approach based on L-moments, "
    "Cambridge University Press",
    "L-moment estimators b0, b1, λ2 = 2 b1 − b0 and the Gumbel parameters α = λ2/ln 2, ξ = λ1 − γ α",
)
EMS_RAPID_MAPPING = Reference(
    "Copernicus Emergency Management Service, Rapid Mapping activations and observed-event delineations "
    "(emergency.copernicus.eu/mapping)",
    "activation periods and areas of interest; flooded-area delineations",
)


def _discharge(da: xr.DataArray, name: str) -> xr.DataArray:
    if "units" not in da.attrs:
        raise IndicatorInputError(f"{name} has no 'units' attribute")
    try:
        return convert_units_to(da, "m3 s-1").astype("float64")
    except (pint.errors.PintError, ValueError) as exc:
        raise IndicatorInputError(f"{name} in {da.attrs['units']!r} cannot be converted to m3 s-1") from exc


def _like(value: xr.DataArray, target: xr.DataArray) -> xr.DataArray:
    """A per-site (or per site and day) input aligned on `target`'s sites and days: NaN where it has none."""
    if "time" in value.dims:
        value = value.reindex(time=target["time"])
    if "site" in value.dims and "site" in target.dims:
        value = value.reindex(site=target["site"])
    return value.broadcast_like(target)


def annual_maxima(dis24: xr.DataArray, min_days: int = 300) -> xr.DataArray:
    """Largest daily discharge of each calendar year with at least `min_days` valid days (else NaN)."""
    valid = np.isfinite(dis24)
    count = valid.astype("int64").resample(time="YS").sum()
    return dis24.where(valid).resample(time="YS").max().where(count >= int(min_days))


def gumbel_return_levels(
    annual_max: xr.DataArray, periods: tuple[int, ...] = RETURN_PERIODS, min_years: int = 10
) -> xr.DataArray:
    """Discharges of the T-year floods from a Gumbel fit by L-moments of the annual maxima, per site.

    With x_(1) ≤ … ≤ x_(n) the n valid maxima: b0 = mean, b1 = Σ (j − 1)/(n − 1) x_(j) / n,
    λ2 = 2 b1 − b0, α = λ2 / ln 2, ξ = b0 − γ α (γ Euler's constant) and x_T = ξ − α ln(−ln(1 − 1/T))
    (Hosking & Wallis 1997; the GloFAS threshold method). NaN with fewer than `min_years` maxima.
    Dims: those of `annual_max` without time, plus `return_period`.
    """
    am = annual_max.transpose(..., "time")
    x = np.sort(am.values, axis=-1)  # NaN sort last
    n = np.isfinite(x).sum(axis=-1)
    j = np.arange(x.shape[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        rank_weight = np.where(j < n[..., None], j / (n[..., None] - 1), 0.0)
        filled = np.where(np.isfinite(x), x, 0.0)
        b0 = filled.sum(axis=-1) / n
        b1 = (rank_weight * filled).sum(axis=-1) / n
        alpha = (2.0 * b1 - b0) / np.log(2.0)
        xi = b0 - EULER_GAMMA * alpha
    reduced = -np.log(-np.log(1.0 - 1.0 / np.asarray(periods, dtype=float)))
    levels = xi[..., None] + alpha[..., None] * reduced
    levels = np.where((n >= max(int(min_years), 2))[..., None], levels, np.nan)
    dims = [d for d in am.dims if d != "time"]
    coords = {k: v for k, v in am.coords.items() if "time" not in v.dims}
    return xr.DataArray(
        levels,
        dims=(*dims, "return_period"),
        coords={**coords, "return_period": list(periods)},
        attrs={"units": am.attrs.get("units", "m3 s-1"), "method": "Gumbel, L-moments, annual maxima"},
    )


def flood_return_period(
    dis24: xr.DataArray,
    dis24_rp2: xr.DataArray | None = None,
    dis24_rp5: xr.DataArray | None = None,
    dis24_rp20: xr.DataArray | None = None,
    min_years: int = 10,
    min_days_per_year: int = 300,
) -> xr.DataArray:
    """Flood category of the daily discharge: 0 below the 2-year flood, 1 at or above it, 2 at or above the
    5-year flood, 3 at or above the 20-year flood; NaN on a day without discharge or thresholds.

    Thresholds are the GloFAS ones (`dis24_rp*`, per site or per site and day) on the days all three are
    given; otherwise all three are the site's own T-year discharges from a Gumbel fit by L-moments of the
    annual maxima of the whole `dis24` record (`gumbel_return_levels`: years with at least
    `min_days_per_year` valid days, at least `min_years` of them); the two sets are never mixed. The
    coordinate `threshold_source` says which served each site: "glofas" (on every day), "fitted" (a fit
    exists) or "none".
    """
    q = _discharge(dis24, "dis24")
    given = {2: dis24_rp2, 5: dis24_rp5, 20: dis24_rp20}
    site = q.isel(time=0, drop=True) if q.sizes["time"] else q.sum("time")
    # the GloFAS set serves a site and day only when all three of its thresholds are there: no mixing
    use_glofas = xr.full_like(q, all(v is not None for v in given.values()), dtype=bool)
    glofas = {}
    for p, v in given.items():
        if v is not None:
            glofas[p] = _like(_discharge(v, f"dis24_rp{p}"), q)
            use_glofas = use_glofas & glofas[p].notnull()
    fitted = None
    thresholds = {}
    if bool(use_glofas.all()):
        thresholds = glofas
    else:
        fitted = gumbel_return_levels(annual_maxima(q, min_days_per_year), RETURN_PERIODS, min_years)
        for p in RETURN_PERIODS:
            fit = fitted.sel(return_period=p, drop=True).broadcast_like(q)
            thresholds[p] = xr.where(use_glofas, glofas[p], fit) if p in glofas else fit

    category = xr.where(q >= thresholds[2], 1.0, 0.0)
    category = xr.where(q >= thresholds[5], 2.0, category)
    category = xr.where(q >= thresholds[20], 3.0, category)
    valid = q.notnull() & thresholds[2].notnull() & thresholds[5].notnull() & thresholds[20].notnull()
    category = category.where(valid).transpose(*q.dims)

    all_glofas = use_glofas.all("time").broadcast_like(site).values
    fit_ok = (
        fitted.notnull().all("return_period").broadcast_like(site).values
        if fitted is not None
        else np.zeros(site.shape, dtype=bool)
    )
    source = np.where(all_glofas, "glofas", np.where(fit_ok, "fitted", "none"))
    return category.assign_coords(threshold_source=(site.dims, source.astype(object))).assign_attrs(
        units="1",
        flag_values=list(range(len(FLOOD_CATEGORIES))),
        flag_meanings=" ".join(FLOOD_CATEGORIES),
    )


register(
    IndicatorSpec(
        id="flood_return_period",
        optional_inputs=("dis24_rp2", "dis24_rp5", "dis24_rp20"),
        title="River flood category (GloFAS return periods)",
        description="Daily river discharge at the site's GloFAS river pixel against the 2-, 5- and 20-year "
        "return-period discharges: the flood the site's river is in. River floods soak and undermine "
        "foundations, mobilise salts in masonry, deposit silt and wash out archaeological deposits. The "
        "GloFAS thresholds are used when the cube has them (dis24_rp2, dis24_rp5, dis24_rp20); otherwise "
        "the site's own return levels are fitted to the annual maxima of the stored record, as GloFAS "
        "does (Gumbel, L-moments).",
        units="1",
        inputs=("dis24",),
        freq="D",
        func=flood_return_period,
        parameters={
            "dis24_rp2": Parameter(None, "m3 s-1", "2-year return-period discharge (GloFAS), per site."),
            "dis24_rp5": Parameter(None, "m3 s-1", "5-year return-period discharge (GloFAS), per site."),
            "dis24_rp20": Parameter(None, "m3 s-1", "20-year return-period discharge (GloFAS), per site."),
            "min_years": Parameter(
                10, "years", "Complete years of annual maxima needed to fit the return levels."
            ),
            "min_days_per_year": Parameter(
                300, "days", "Valid days for a year's maximum to enter the fit (partial years bias it low)."
            ),
        },
        levels=CategoryLevels(
            categories=dict(enumerate(FLOOD_CATEGORIES)),
            levels={0: "none", 1: "moderate", 2: "high", 3: "severe"},
        ),
        version="1",
        family="emergency",
        hazard="river flood",
        references=(GLOFAS_THRESHOLDS, GLOFAS_SUMMARY, EFAS_NOTIFICATION, HOSKING_WALLIS_1997),
        history=True,  # the fitted return levels need the whole stored record
        provisional=True,
        provisional_note="The mapping onto levels is a project choice following the GloFAS colours: the "
        "2-year flood (yellow) is about bankfull discharge, when water first leaves the channel "
        "(moderate); the 5-year flood (red) is the EFAS formal-notification level (high); the 20-year "
        "flood (purple) is the highest GloFAS class (severe). GloFAS applies them to ensemble exceedance "
        "probabilities; here a single discharge series is compared with them. Fitted return levels from "
        "a short record are uncertain (GloFAS fits about 40 years).",
        resolve_after=2,
    )
)


# --- Rapid Mapping activations --------------------------------------------------------------------------

EMS_CATEGORIES = ("no_activation", "activation", "activation_flooded")


def ems_activation(
    ems_active: xr.DataArray, ems_flooded_fraction: xr.DataArray | None = None
) -> xr.DataArray:
    """1 on a day with at least one active Rapid Mapping activation overlapping the site or its buffer, else
    0; 2 when, in addition, an observed-event delineation floods part of the site+buffer
    (`ems_flooded_fraction` > 0, a delineation implies an activation). NaN on a day without information.
    """
    if "time" not in ems_active.dims:
        raise IndicatorInputError("ems_active must have a 'time' dimension")
    active = ems_active.astype("float64")
    category = xr.where(active >= 1, 1.0, 0.0).where(active.notnull())
    if ems_flooded_fraction is not None:
        flooded = _like(ems_flooded_fraction.astype("float64"), active)
        category = xr.where(flooded > 0, 2.0, category)
    return category.transpose(*ems_active.dims).assign_attrs(
        units="1",
        flag_values=list(range(len(EMS_CATEGORIES))),
        flag_meanings=" ".join(EMS_CATEGORIES),
    )


register(
    IndicatorSpec(
        id="ems_activation",
        optional_inputs=("ems_flooded_fraction",),
        title="Copernicus EMS Rapid Mapping activation",
        description="Whether a Copernicus Emergency Management Service Rapid Mapping activation (flood, "
        "fire, storm, earthquake…) covers the site or its buffer that day, and whether its observed-event "
        "delineation shows the site+buffer flooded. An activation means a disaster serious enough for a "
        "national authority to call for satellite mapping is under way at the site.",
        units="1",
        inputs=("ems_active",),
        freq="D",
        func=ems_activation,
        parameters={
            "ems_flooded_fraction": Parameter(
                None, "1", "Fraction of the site+buffer inside observed-event polygons, per site and day."
            ),
        },
        levels=CategoryLevels(
            categories=dict(enumerate(EMS_CATEGORIES)),
            levels={0: "none", 1: "high", 2: "severe"},
        ),
        version="1",
        family="emergency",
        hazard="disaster activation",
        references=(EMS_RAPID_MAPPING,),
        provisional=True,
        provisional_note="Levels are a project choice: an activation over the site is 'high' whatever its "
        "hazard; a mapped flood reaching the site+buffer is 'severe'. Activation end dates are "
        "approximated by the last update of a closed activation (see monitor.sources.ems_rapid_mapping).",
    )
)


#: Parameters of each indicator of this module that are optional inputs, taken from a cube when present.
OPTIONAL_INPUTS: dict[str, tuple[str, ...]] = {
    "flood_return_period": ("dis24_rp2", "dis24_rp5", "dis24_rp20"),
    "ems_activation": ("ems_flooded_fraction",),
}


def optional_inputs(indicator_id: str, dataset: xr.Dataset) -> dict[str, xr.DataArray]:
    """The optional inputs of an indicator that `dataset` holds, as keyword arguments for `compute`."""
    return {name: dataset[name] for name in OPTIONAL_INPUTS.get(indicator_id, ()) if name in dataset}
