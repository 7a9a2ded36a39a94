"""Land indicators of heritage risk from Sentinel-2, EGMS and CLMS variables: vegetation, burn severity,
ground motion and soil sealing around the sites.

Every function works on the whole (site, time) cube at once; loops run over calendar months, classes or
window positions, never over sites. A NaN (or absent) time step is masked, never counted: a cloudy day adds
nothing to a monthly mean, a year without enough clear days has no annual median, an EGMS release with too
few points gives NaN. A period without valid data is NaN, not 0.

Indicators that compare a site with its own past (`ndvi_anomaly`, `vegetation_encroachment`,
`imperviousness_change`) declare `history=True`: they need the whole stored record, and a value of the
past can change when the record grows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pint
import xarray as xr

from indicators.core import IndicatorSpec, Parameter, Reference, Thresholds, register
from indicators.errors import IndicatorInputError
from indicators.units import convert_units_to

#: Materials whose fabric roots and woody growth damage (root wedging in joints, moisture retention).
MASONRY = ("limestone", "marble", "sandstone", "granite", "brick", "earthen", "plaster")

SENTINEL2 = Reference(
    "ESA, Sentinel-2 L2A Scene Classification and the Sentinel Hub Statistical API (CDSE)",
    "NDVI (B08, B04), NBR (B8A, B12) of cloud-free pixels per site and day",
)
KEY_BENSON_2006 = Reference(
    "Key C.H., Benson N.C. 2006, Landscape Assessment (LA): sampling and analysis methods, in FIREMON: Fire "
    "Effects Monitoring and Inventory System, USDA Forest Service Gen. Tech. Rep. RMRS-GTR-164-CD, LA 1–55",
    "dNBR = NBR_pre − NBR_post and the burn severity classes −0.25, −0.10, 0.10, 0.27, 0.44, 0.66 (as "
    "reproduced by the UN-SPIDER recommended practice for burn severity)",
    "https://un-spider.org/advisory-support/recommended-practices/recommended-practice-burn-severity",
)
EGMS = Reference(
    "Crosetto M. et al. 2021, Deformation monitoring at European scale: the Copernicus Ground Motion "
    "Service, Int. Arch. Photogramm. Remote Sens. Spatial Inf. Sci. XLIII-B3-2021:141–146",
    "EGMS velocities (mm/yr) of persistent and distributed scatterers",
)
TAPETE_CIGNA_2012 = Reference(
    "Tapete D., Cigna F. 2012, Rapid mapping and deformation analysis over cultural heritage and rural "
    "sites based on persistent scatterer interferometry, Int. J. Geophysics 2012:618609",
    "PSI velocities classified into levels of conservation criticality at heritage sites; the ±2 mm/yr "
    "stability band of C-band PSI (the numeric classes 2/5/10 mm/yr are common practice, not from the paper)",
)
BJERRUM_1963 = Reference(
    "Bjerrum L. 1963, Allowable settlement of structures, Proc. European Conf. Soil Mech. Found. Eng., "
    "Wiesbaden, vol. 2:135–137",
    "angular distortion limits (1/500 safe against cracking, 1/300 first cracks, 1/150 structural damage) "
    "behind the differential-velocity levels",
)
HRL_IMD = Reference(
    "Copernicus Land Monitoring Service, High Resolution Layer Imperviousness Density (IMD) 2006–2018, "
    "European Environment Agency",
    "sealing degree 0–100 % per cell at the reference years 2006, 2009, 2012, 2015, 2018",
    "https://land.copernicus.eu/en/products/high-resolution-layer-imperviousness",
)


def _spec(**kwargs) -> IndicatorSpec:
    return register(IndicatorSpec(version="1", family="land", **kwargs))


def _in_units(da: xr.DataArray, units: str, name: str) -> xr.DataArray:
    """`da` as float64 in `units` ("1" is taken as is); a clear error when its units are absent or wrong."""
    if not isinstance(da, xr.DataArray) or "time" not in da.dims:
        raise IndicatorInputError(f"{name} must be a DataArray with a 'time' dimension")
    given = str(da.attrs.get("units", "")).strip()
    if units == "1" and given in ("", "1", "-"):
        return da.astype("float64")
    if not given:
        raise IndicatorInputError(f"{name} has no 'units' attribute")
    try:
        return convert_units_to(da, units).astype("float64")
    except (pint.errors.PintError, ValueError) as exc:
        raise IndicatorInputError(f"{name} in {given!r} cannot be converted to {units}") from exc


def _period_counts(valid: xr.DataArray, freq: str) -> xr.DataArray:
    return valid.astype("int64").resample(time=freq).sum()


# --- NDVI anomaly -------------------------------------------------------------------------------------


def monthly_mean(ndvi: xr.DataArray, min_obs: int = 2) -> xr.DataArray:
    """Mean of the valid (finite, in [−1, 1]) observations of each month; NaN with fewer than `min_obs`."""
    ndvi = _in_units(ndvi, "1", "ndvi")
    valid = np.isfinite(ndvi) & (abs(ndvi) <= 1.0)
    total = ndvi.where(valid, 0.0).resample(time="MS").sum()
    count = _period_counts(valid, "MS")
    return (total / count.where(count > 0)).where(count >= max(int(min_obs), 1))


def ndvi_anomaly(ndvi: xr.DataArray, min_obs: int = 2, min_years: int = 3) -> xr.DataArray:
    """Monthly mean NDVI minus the site's own mean NDVI of that calendar month in the record's other years.

    anomaly(y, m) = NDVI(y, m) − Σ_{y'≠y} NDVI(y', m) / (N_m − 1), with NDVI(y, m) the mean of the month's
    valid observations (at least `min_obs`) and N_m the number of years with a valid month m. Leaving the
    month itself out of its climatology keeps a single extreme month from hiding in its own baseline. NaN
    when fewer than `min_years` other years have that month.
    """
    monthly = monthly_mean(ndvi, min_obs).transpose(..., "time")
    values = monthly.values
    ok = np.isfinite(values)
    filled = np.where(ok, values, 0.0)
    months = monthly["time"].dt.month.values
    out = np.full(values.shape, np.nan)
    for m in np.unique(months):
        sel = months == m
        total = filled[..., sel].sum(axis=-1, keepdims=True)
        count = ok[..., sel].sum(axis=-1, keepdims=True)
        others = count - ok[..., sel]
        with np.errstate(invalid="ignore", divide="ignore"):
            clim = (total - filled[..., sel]) / others
        out[..., sel] = np.where(
            ok[..., sel] & (others >= max(int(min_years), 1)), values[..., sel] - clim, np.nan
        )
    return monthly.copy(data=out).assign_attrs(units="1", baseline="all other years of the stored record")


_spec(
    id="ndvi_anomaly",
    history=True,  # the per-month climatology needs the whole stored record
    title="NDVI anomaly (monthly, against the site's own climatology)",
    description="Monthly mean NDVI of the site and its buffer minus the site's mean NDVI of the same "
    "calendar month in the other years of the record. The alert watches negative anomalies: a sudden loss "
    "of green cover around a monument means drought stress, fire, clearance, earthworks or construction, "
    "which expose slopes, foundations and buried archaeology to erosion. Slow growth of vegetation on and "
    "around structures is watched by vegetation_encroachment instead, because a single green month is "
    "weather, not encroachment.",
    units="1",
    inputs=("ndvi",),
    freq="MS",
    func=ndvi_anomaly,
    parameters={
        "min_obs": Parameter(2, "1", "Valid (cloud-free) observations needed for a monthly mean."),
        "min_years": Parameter(3, "years", "Other years with that calendar month needed for a climatology."),
    },
    levels=Thresholds(low=-0.05, moderate=-0.10, high=-0.15, severe=-0.25, direction="lower_is_worse"),
    hazard="vegetation loss, drought and land disturbance",
    references=(SENTINEL2,),
    provisional=True,
    provisional_note="Level thresholds (−0.05/−0.10/−0.15/−0.25 NDVI) are project defaults: the "
    "interannual standard deviation of a monthly site-mean NDVI is typically 0.02–0.06, so −0.10 is about "
    "two standard deviations and −0.25 is the loss of most green cover (e.g. a burnt scrubland). Sites with "
    "little vegetation (historic centres) should raise them.",
)


# --- vegetation encroachment --------------------------------------------------------------------------


def _windows(values: np.ndarray, window: int) -> np.ndarray:
    """(..., n, window) views of the `window` values ending at each position; NaN before the first."""
    pad = np.full((*values.shape[:-1], window - 1), np.nan)
    return np.lib.stride_tricks.sliding_window_view(np.concatenate([pad, values], axis=-1), window, axis=-1)


def vegetation_encroachment(
    ndvi: xr.DataArray,
    window_years: int = 5,
    min_years: int = 3,
    min_obs_per_year: int = 6,
    months: Sequence[int] | None = None,
) -> xr.DataArray:
    """Least-squares slope of the annual median NDVI over the `window_years` years ending at each year, per
    decade.

    m_y = median over the valid observations d of year y (in `months` if given; NaN with fewer than
    `min_obs_per_year`) of NDVI(d) − C(month of d), where C is the site's mean NDVI of each calendar month
    over the record: removing the seasonal cycle first keeps the cloud-driven sampling of the seasons
    (cloudy winters, clear summers) out of the medians, and a constant per month does not change the
    trend. Over the window's years x with a median, slope = Σ (x − x̄)(m − m̄) / Σ (x − x̄)², × 10 for a
    decade; NaN with fewer than `min_years` medians. Coordinates `valid_years_fraction` (the share of the
    window's years with a median) and `n_obs` (valid observations in the window) qualify it.
    """
    ndvi = _in_units(ndvi, "1", "ndvi")
    if int(window_years) < 2 or not 2 <= int(min_years) <= int(window_years):
        raise IndicatorInputError("need 2 <= min_years <= window_years")
    valid = np.isfinite(ndvi) & (abs(ndvi) <= 1.0)
    if months is not None:
        valid = valid & ndvi["time"].dt.month.isin(list(months))
    obs = ndvi.where(valid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN months and years: NaN, masked below
        seasonal = obs.groupby("time.month").mean()
        median = (obs.groupby("time.month") - seasonal).drop_vars("month").resample(time="YS").median()
    count = _period_counts(valid, "YS")
    annual = median.where(count >= max(int(min_obs_per_year), 1)).transpose(..., "time")

    w = int(window_years)
    y = _windows(annual.values, w)
    n_obs = _windows(count.transpose(..., "time").values.astype(float), w)
    ok = np.isfinite(y)
    n = ok.sum(axis=-1)
    x = np.broadcast_to(np.arange(w, dtype=float), y.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_mean = np.where(ok, x, 0.0).sum(axis=-1) / n
        y_mean = np.where(ok, y, 0.0).sum(axis=-1) / n
        dx = np.where(ok, x - x_mean[..., None], 0.0)
        dy = np.where(ok, y - y_mean[..., None], 0.0)
        slope = (dx * dy).sum(axis=-1) / (dx * dx).sum(axis=-1) * 10.0
    slope = np.where(n >= int(min_years), slope, np.nan)
    dims = annual.dims
    return (
        annual.copy(data=slope)
        .assign_coords(
            valid_years_fraction=(dims, n / w),
            n_obs=(dims, np.nansum(n_obs, axis=-1)),
        )
        .assign_attrs(units="1/decade", window_years=w)
    )


_spec(
    id="vegetation_encroachment",
    history=True,  # the window reaches back several years
    title="Vegetation encroachment (NDVI trend)",
    description="Trend of the annual median NDVI of the site and its buffer (seasonal cycle removed) over "
    "the last five years, per decade. A persistent greening of a ruin, a wall top or a historic garden "
    "is plants colonising the fabric: roots wedge joints open, keep masonry wet and feed "
    "biodeterioration, and woody growth hides and destabilises archaeological structures. The "
    "coordinates valid_years_fraction and n_obs say how much clear-sky data the trend rests on.",
    units="1/decade",
    inputs=("ndvi",),
    freq="YS",
    func=vegetation_encroachment,
    parameters={
        "window_years": Parameter(5, "years", "Years of annual medians in the trend (ending at the year)."),
        "min_years": Parameter(3, "years", "Annual medians needed in the window."),
        "min_obs_per_year": Parameter(6, "1", "Valid observations needed for an annual median."),
        "months": Parameter(None, "", "Calendar months used for the medians (None: all)."),
    },
    levels=Thresholds(low=0.03, moderate=0.06, high=0.10, severe=0.20),
    hazard="vegetation encroachment and biodeterioration",
    materials=MASONRY,
    references=(
        SENTINEL2,
        Reference(
            "Project practice (SCIENCE.md §3.6): vegetation present at NDVI > 0.2–0.3, dense at > 0.5–0.6; "
            "encroachment as a positive trend of the median NDVI in the polygon or buffer",
            "the choice of a trend of annual medians; no published threshold exists",
        ),
    ),
    provisional=True,
    provisional_note="Level thresholds (+0.03/+0.06/+0.10/+0.20 NDVI per decade) are project defaults: "
    "large-scale greening in Europe is about +0.01–0.02 per decade, shrub encroachment of abandoned land "
    "+0.05–0.1, and +0.2 per decade turns bare ground into dense vegetation within a decade.",
)


# --- burn severity (dNBR histogram) -------------------------------------------------------------------

#: Key & Benson (2006) dNBR classes: lower bound inclusive, upper bound excluded.
BURN_CLASSES = (
    "enhanced_regrowth_high",
    "enhanced_regrowth_low",
    "unburned",
    "low",
    "moderate_low",
    "moderate_high",
    "high",
)
BURN_EDGES = (-np.inf, -0.25, -0.10, 0.10, 0.27, 0.44, 0.66, np.inf)
#: dNBR from which a pixel counts as burnt (the lower bound of the "low" severity class).
BURNT_FROM = 0.10
HIGH_FROM = 0.44


def _class_weights(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(bin, class) share of each histogram bin inside each class, assuming uniform values within a bin.

    A bin lying across a class edge is split by length; an open-ended bin (an infinite edge) goes to the
    class of its finite edge.
    """
    lo_c, hi_c = np.array(BURN_EDGES[:-1]), np.array(BURN_EDGES[1:])
    lo_b, hi_b = low[:, None], high[:, None]
    width = hi_b - lo_b
    with np.errstate(invalid="ignore"):
        overlap = np.clip(np.minimum(hi_b, hi_c) - np.maximum(lo_b, lo_c), 0.0, None) / width
    point = np.where(np.isfinite(lo_b), lo_b, hi_b - 1e-9)  # where the bin is in the classes if unbounded
    fallback = ((point >= lo_c) & (point < hi_c)).astype(float)
    weights = np.where(np.isfinite(width) & (width > 0), overlap, fallback)
    return weights / weights.sum(axis=1, keepdims=True)


def burn_severity_classes(dnbr_hist: xr.DataArray, freq: str | None = "MS") -> xr.DataArray:
    """Fraction of the valid pixels of each site in each Key & Benson dNBR class, dims (…, burn_class).

    `dnbr_hist` counts valid pixels per dNBR bin (dims site, time, dnbr_bin; coordinates dnbr_bin_low,
    dnbr_bin_high). Histograms of one period (`freq`; None keeps each time step) are pooled by summing their
    counts. NaN where a period has no valid pixel.
    """
    if "dnbr_bin" not in dnbr_hist.dims or "time" not in dnbr_hist.dims:
        raise IndicatorInputError("dnbr_hist must have dims including 'time' and 'dnbr_bin'")
    missing = [c for c in ("dnbr_bin_low", "dnbr_bin_high") if c not in dnbr_hist.coords]
    if missing:
        raise IndicatorInputError(f"dnbr_hist lacks the bin edge coordinate(s) {missing}")
    low = np.asarray(dnbr_hist["dnbr_bin_low"].values, dtype=float)
    high = np.asarray(dnbr_hist["dnbr_bin_high"].values, dtype=float)
    if np.any(~(high > low)):
        raise IndicatorInputError("dnbr_hist bins must have dnbr_bin_high > dnbr_bin_low")
    counts = dnbr_hist.astype("float64").drop_vars(["dnbr_bin_low", "dnbr_bin_high"])
    counts = counts.where(counts >= 0)  # negative counts are corrupt, treated as missing
    if freq is not None:
        counts = counts.resample(time=freq).sum(min_count=1)
    weights = xr.DataArray(
        _class_weights(low, high),
        dims=("dnbr_bin", "burn_class"),
        coords={"burn_class": list(BURN_CLASSES)},
    )
    total = counts.sum("dnbr_bin", min_count=1)
    by_class = xr.dot(counts.fillna(0.0), weights, dim="dnbr_bin")
    fractions = (by_class / total.where(total > 0)).where(counts.notnull().any("dnbr_bin"))
    return fractions.transpose(*[d for d in dnbr_hist.dims if d != "dnbr_bin"], "burn_class").assign_attrs(
        units="1"
    )


def _burnt_share(dnbr_hist: xr.DataArray, freq: str, first_class: str) -> xr.DataArray:
    """Share of valid pixels with dNBR at or above the lower bound of `first_class`, with one coordinate per
    class (`fraction_<class>`) so that the full breakdown travels with the value."""
    fractions = burn_severity_classes(dnbr_hist, freq)
    burnt = BURN_CLASSES[BURN_CLASSES.index(first_class) :]
    share = fractions.sel(burn_class=list(burnt)).sum("burn_class", min_count=1)
    share = share.where(fractions.notnull().all("burn_class"))
    share = share.assign_coords(
        {f"fraction_{c}": fractions.sel(burn_class=c, drop=True) for c in BURN_CLASSES}
    )
    return share.drop_vars("burn_class", errors="ignore").assign_attrs(units="1")


def burn_severity(dnbr_hist: xr.DataArray, freq: str = "MS") -> xr.DataArray:
    """Fraction of the valid pixels of the site+buffer with dNBR ≥ 0.10 (burnt at any Key & Benson severity).

    Coordinates `fraction_<class>` give the share of every class (see `burn_severity_classes`).
    """
    return _burnt_share(dnbr_hist, freq, "low")


def burn_severity_high_fraction(dnbr_hist: xr.DataArray, freq: str = "MS") -> xr.DataArray:
    """Fraction of the valid pixels of the site+buffer with dNBR ≥ 0.44 (moderate-high and high severity)."""
    return _burnt_share(dnbr_hist, freq, "moderate_high")


_BURN_PARAMETERS = {
    "freq": Parameter("MS", "", "Period of one value; the histograms of a period are pooled."),
}
_BURN_NOTE = (
    "dNBR classes were calibrated in US forests (Key & Benson 2006); grass and Mediterranean scrub fires "
    "fall mostly in the low classes. Histograms come from a pre-fire and a post-fire window one year apart "
    "(same season), see monitor.sources.sentinel2."
)

_spec(
    id="burn_severity",
    title="Burnt fraction (dNBR ≥ 0.10)",
    description="Share of the cloud-free pixels of the site and its buffer whose differenced Normalized "
    "Burn Ratio (pre-fire minus post-fire) reaches the Key & Benson 'low severity' class or above: the "
    "area a wildfire burnt around or inside the site. Fire spalls and calcines stone, burns timber and "
    "thatch, and leaves slopes bare to erosion and debris flows in the next rains. The share of each "
    "Key & Benson class is in the coordinates fraction_<class>; burn_severity_high_fraction watches the "
    "severe part alone.",
    units="1",
    inputs=("dnbr_hist",),
    freq="MS",
    func=burn_severity,
    parameters=_BURN_PARAMETERS,
    levels=Thresholds(low=0.05, moderate=0.10, high=0.25, severe=0.50),
    hazard="wildfire",
    materials=("timber", "limestone", "marble", "sandstone", "plaster"),
    references=(KEY_BENSON_2006, SENTINEL2),
    provisional=True,
    provisional_note="Level thresholds (5/10/25/50 % of the site+buffer burnt) are project defaults. Below "
    "5 % the low class is mostly reached by other changes (harvest, drought, a phenology mismatch between "
    "the two windows); a quarter of the surroundings burnt means the fire front reached the site. "
    + _BURN_NOTE,
)

_spec(
    id="burn_severity_high_fraction",
    title="High-severity burnt fraction (dNBR ≥ 0.44)",
    description="Share of the cloud-free pixels of the site and its buffer in the Key & Benson "
    "moderate-high and high severity classes (dNBR ≥ 0.44): the fire consumed the canopy and scorched the "
    "ground, with the heat that cracks and spalls stone, chars timber and destroys surface archaeology.",
    units="1",
    inputs=("dnbr_hist",),
    freq="MS",
    func=burn_severity_high_fraction,
    parameters=_BURN_PARAMETERS,
    levels=Thresholds(low=0.01, moderate=0.03, high=0.10, severe=0.25),
    hazard="wildfire",
    materials=("timber", "limestone", "marble", "sandstone", "plaster"),
    references=(KEY_BENSON_2006, SENTINEL2),
    provisional=True,
    provisional_note="Level thresholds (1/3/10/25 % of the site+buffer at dNBR ≥ 0.44) are project defaults: "
    "other land changes rarely reach dNBR 0.44, so even a few per cent is a fire signal. " + _BURN_NOTE,
)


# --- ground motion (EGMS) -----------------------------------------------------------------------------


def _yearly(da: xr.DataArray, how: str) -> xr.DataArray:
    """One value per year that has time steps (`how`: "mean" or "last" valid), stamped on 1 January.

    Unlike a resampling, years without any time step get no row, so sparse products (EGMS releases, CLMS
    reference years) do not turn into runs of empty years.
    """
    grouped = da.groupby(da["time"].dt.year)
    out = grouped.last(skipna=True) if how == "last" else grouped.mean()
    stamps = np.array([np.datetime64(f"{int(y):04d}-01-01", "ns") for y in out["year"].values])
    return out.rename(year="time").assign_coords(time=("time", stamps.astype("datetime64[ns]")))


def _release_values(values: xr.DataArray, egms_points: xr.DataArray, min_points: int) -> xr.DataArray:
    """`values` of releases with at least `min_points` EGMS points; the last such release of each year."""
    points = _in_units(egms_points, "1", "egms_points")
    values, points = xr.align(values, points, join="left")
    return _yearly(values.where(points >= int(min_points)), "last")


def ground_motion_velocity(
    ground_velocity_mean: xr.DataArray, egms_points: xr.DataArray, min_points: int = 5
) -> xr.DataArray:
    """|mean EGMS velocity| of the points in the site+buffer (mm/yr), NaN with fewer than `min_points`."""
    v = _in_units(ground_velocity_mean, "mm/yr", "ground_velocity_mean")
    return abs(_release_values(v, egms_points, min_points)).assign_attrs(units="mm/yr")


def ground_motion_differential(
    ground_velocity_differential: xr.DataArray,
    egms_points: xr.DataArray,
    min_points: int = 5,
) -> xr.DataArray:
    """Max − min EGMS velocity among the points inside the site polygon (mm/yr), NaN with fewer than
    `min_points` points in the site+buffer (the source gives NaN with fewer than two inside the polygon)."""
    d = _in_units(ground_velocity_differential, "mm/yr", "ground_velocity_differential")
    return _release_values(abs(d), egms_points, min_points).assign_attrs(units="mm/yr")


_EGMS_PARAMETERS = {
    "min_points": Parameter(
        5, "1", "EGMS points passing the quality filter needed in the site+buffer.", "SCIENCE.md §3.5 (b)"
    ),
}

_spec(
    id="ground_motion_velocity",
    title="Ground motion velocity (EGMS)",
    description="Absolute mean velocity of the EGMS measurement points in the site and its buffer: "
    "subsidence (or uplift) of the ground under a monument from groundwater extraction, compaction of soft "
    "soils, landslides or mining, which tilts, cracks and floods historic structures. Within ±2 mm/yr the "
    "ground is stable for Sentinel-1 interferometry.",
    units="mm/yr",
    inputs=("ground_velocity_mean", "egms_points"),
    freq="YS",
    func=ground_motion_velocity,
    parameters=_EGMS_PARAMETERS,
    levels=Thresholds(low=2.0, moderate=5.0, high=10.0, severe=20.0),
    hazard="subsidence and landslides",
    references=(EGMS, TAPETE_CIGNA_2012),
    provisional=True,
    provisional_note="Level thresholds follow the common Italian PSI heritage practice (SCIENCE.md §3.5, "
    "tagged [R], not confirmed in a source): |v| ≤ 2 mm/yr stable, 2–5 slow, 5–10 moderate, > 10 high; "
    "20 mm/yr for 'severe' is a project default. Velocities are line of sight for L2a/L2b and vertical "
    "for L3.",
)

_spec(
    id="ground_motion_differential",
    title="Differential ground motion across the site (EGMS)",
    description="Difference between the fastest and slowest EGMS points inside the site polygon: parts of "
    "one structure moving at different rates is differential settlement, which distorts and cracks walls "
    "and vaults long before the mean motion looks alarming.",
    units="mm/yr",
    inputs=("ground_velocity_differential", "egms_points"),
    freq="YS",
    func=ground_motion_differential,
    parameters=_EGMS_PARAMETERS,
    levels=Thresholds(low=5.0, moderate=10.0, high=15.0, severe=25.0),
    hazard="differential settlement",
    references=(EGMS, BJERRUM_1963),
    provisional=True,
    provisional_note="Level thresholds (5/10/15/25 mm/yr) are project defaults. The range of n noisy "
    "velocities grows with n (about 4σ for 30 points at σ ≈ 1 mm/yr), so values under 5 mm/yr are mostly "
    "noise. For points about 20 m apart, 10 mm/yr adds an angular distortion of 1/2000 a year and reaches "
    "Bjerrum's 1/500 cracking limit in about four years; sites should set thresholds from their own "
    "dimensions.",
)


# --- imperviousness change (HRL IMD) ------------------------------------------------------------------


def imperviousness_change(imperviousness_mean_buffer: xr.DataArray) -> xr.DataArray:
    """Change of the mean imperviousness of the buffer ring since the site's previous reference year
    (percentage points), at each reference year: IMD(y) − IMD(y_prev).

    One value per year with time steps (their mean, stamped on 1 January); `y_prev` is the latest earlier
    year with a value, given in the coordinate `previous_year`. NaN at a site's first reference year.
    """
    imd = _in_units(imperviousness_mean_buffer, "%", "imperviousness_mean_buffer")
    imd = imd.where((imd >= 0) & (imd <= 100))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a year without a value at a site: NaN
        annual = _yearly(imd, "mean").transpose(..., "time")
    values = annual.values
    ok = np.isfinite(values)
    n = values.shape[-1]
    last = np.maximum.accumulate(np.where(ok, np.arange(n), -1), axis=-1)
    prev = np.concatenate([np.full((*values.shape[:-1], 1), -1), last[..., :-1]], axis=-1)
    before = np.take_along_axis(values, np.clip(prev, 0, None), axis=-1)
    has = ok & (prev >= 0)
    change = np.where(has, values - before, np.nan)
    years = annual["time"].dt.year.values
    prev_year = np.where(has, years[np.clip(prev, 0, None)], -1)
    return (
        annual.copy(data=change).assign_coords(previous_year=(annual.dims, prev_year)).assign_attrs(units="%")
    )


_spec(
    id="imperviousness_change",
    history=True,  # the previous reference year may lie anywhere in the stored record
    title="Imperviousness change in the buffer (HRL IMD)",
    description="Change, in percentage points, of the mean sealing degree of the site's buffer ring "
    "between its two latest Copernicus imperviousness reference years. New roofs, roads and car parks "
    "around a site raise and speed up its flood runoff, cut off groundwater recharge (subsidence of soft "
    "soils), heat the surroundings and are the footprint of urban pressure on the setting of the site.",
    units="%",
    inputs=("imperviousness_mean_buffer",),
    freq="YS",
    func=imperviousness_change,
    levels=Thresholds(low=1.0, moderate=2.0, high=5.0, severe=10.0),
    hazard="urbanisation and soil sealing",
    references=(HRL_IMD,),
    provisional=True,
    provisional_note="Level thresholds (+1/+2/+5/+10 percentage points between reference years three "
    "years apart) are project defaults; the change layers of the HRL are only reliable above a few "
    "percentage points, and a buffer ring of a few hundred metres turns one new building block into "
    "several points.",
)
