"""Atmospheric indicators: material decay from air pollution, ISO 9223 corrosivity and PM10 exceedances.

Inputs are daily site cubes (dims site, time) with CF short names and units: `so2`, `no2`, `o3`, `pm10`
in µg m-3 (CAMS surface concentrations), `tas` (any temperature unit), `hurs` (%), `pr` (any
precipitation unit). The dose–response functions are annual: each indicator first reduces the daily
inputs to the annual values its function needs, over the valid days only (a NaN day is masked, never
counted as zero; a year without any valid day is NaN):

- annual mean concentrations (µg m-3), annual mean T (°C) and annual mean RH (%);
- Rh60 = max(RH − 60, 0) computed from the *annual mean* RH, as the ICP Materials functions define it;
- annual rain (mm) = mean daily rain of the valid days × the days of the calendar year;
- HNO3, which CAMS does not provide, from the annual means of NO2, O3, T and RH (`hno3_icp`).

Site parameters that are not Copernicus products (`rain_ph`, `distance_to_sea_km`, a measured chloride
deposition) accept a scalar or a DataArray over `site`.

Status of every coefficient (see each `Reference`): the ISO 9223:2012 carbon-steel function, its
validity range and the ISO 9223 Table 2 category limits for steel, zinc and copper were read in the
CorWiz transcription of DIN EN ISO 9223:2012; the PM10 limit value (50 µg m-3, 35 days) was read on EEA
pages. The Lipfert and ICP Materials coefficients, the HNO3 parameterisation and the ISO 9223 zinc
function could not be checked in a primary source: the indicators using them are provisional.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from xclim.indices import generic

from indicators.core import (
    CategoryLevels,
    IndicatorSpec,
    Parameter,
    Reference,
    Thresholds,
    register,
)
from indicators.errors import IndicatorInputError
from indicators.units import convert_units_to

ANNUAL = "YS"
LIMESTONE = ("limestone", "marble")
STEEL = ("carbon_steel", "metal")
ZINC = ("zinc",)
COPPER = ("copper", "bronze")
SOILING = ("limestone", "marble", "sandstone", "plaster", "glass")

CORWIZ = "https://github.com/Institute-of-Surface-Science/CorWiz"

LIPFERT_1989 = Reference(
    "Lipfert F.W. 1989, Atmospheric damage to calcareous stones: comparison and reconciliation of recent "
    "experimental findings, Atmos. Environ. 23(2):415–429",
    "L = 18.8·R + 0.016·[H+]·R + 0.18·(V_dS·[SO2] + V_dN·[HNO3]). NOT checked: neither the paper nor its "
    "bibliographic record was retrieved; coefficients as quoted in the project notes "
    "(shared/reference/SCIENCE.md §1.1).",
)
BONAZZA_2009 = Reference(
    "Bonazza A. et al. 2009, Sci. Total Environ. 407:2039",
    "context only: a Lipfert variant used for European recession maps",
)
KUCERA_2007 = Reference(
    "Kucera V., Tidblad J., Kreislova K., Knotkova D., Faller M., Reiss D., Snethlage R., Yates T., "
    "Henriksen J., Schreiner M., Melcher M., Ferm M., Lefèvre R.-A., Kobus J. 2007, UN/ECE ICP Materials "
    "dose-response functions for the multi-pollutant situation, Water Air Soil Pollut. Focus 7:249–258",
    "multi-pollutant functions for carbon steel, zinc, copper and limestone with SO2, rain pH, PM10 and "
    "HNO3 as parameters: confirmed from the abstract only (link.springer.com). The coefficients and the "
    "HNO3 parameterisation are NOT checked against the paper (quoted from SCIENCE.md §1.2 and the "
    "project notes).",
    "https://link.springer.com/article/10.1007/s11267-006-9080-z",
)
TIDBLAD_2012 = Reference(
    "Tidblad J. et al. 2012, ICP Materials celebrates 25 years of research, Int. J. Corrosion 2012:496321",
    "secondary statement of the ICP Materials functions; only the title page was seen (hindawi.com), the "
    "functions were not retrieved",
)
ISO_9223 = Reference(
    "ISO 9223:2012, Corrosion of metals and alloys — Corrosivity of atmospheres — Classification, "
    "determination and estimation (DIN EN ISO 9223:2012-05)",
    "carbon-steel dose–response function (r_corr in µm/a, f_St) read in CorWiz "
    "web_app/models/AC_model_iso9223.py @0415b6f6ab279095abc4f8ff3e73ae40e1fb09dc and "
    "data/kadi4mat_json/atmospheric_corrosion_models/din-corrosion-protection-model-iso-9223-compliant"
    ".json @1597de2e0179d9983e1336c0464da0b2413027ba; validity range (Table 3) in "
    "data/tables/din-en-iso-92232012-05_tables_table_3.csv @99f9db135a881fd360b3cdee0c128274925770a2; "
    "Table 2 category limits for steel, zinc and copper (g/(m²·a) and µm/a) in data/output/tables/"
    "Korrosion_und_Korrosionsschutz_1_Korrosion_von_Met..._----_(DIN_EN_ISO_9223_).pdf_page_13.csv "
    "@af5123f90837a3906124749eb256afa8c78f9130. "
    "The zinc function is NOT checked (quoted from SCIENCE.md §1.3).",
    CORWIZ,
)
SEA_DISTANCE_1999 = Reference(
    "Effect of distance from sea on atmospheric corrosion rate, Corrosion 55(9), 1999 (CENIM-CSIC, Madrid)",
    "form only: marine influence decays exponentially with distance from the shoreline (abstract, OSTI "
    "684446). The coefficients used here are project defaults, not from the paper.",
    "https://www.osti.gov/biblio/684446",
)
EU_2008_50 = Reference(
    "Directive 2008/50/EC of 21 May 2008 on ambient air quality and cleaner air for Europe, Annex XI",
    "PM10 daily limit value 50 µg/m³, not to be exceeded more than 35 times a calendar year (checked on "
    "the EEA figure page 'Particulate matter (PM10) - daily limit value for the protection of human "
    "health')",
    "http://www.eea.europa.eu/data-and-maps/figures/particulate-matter-pm10-daily-limit-value-for-the-"
    "protection-of-human-health-3/",
)
EU_2024_2881 = Reference(
    "Directive (EU) 2024/2881 of 23 October 2024 on ambient air quality and cleaner air for Europe "
    "(recast), Annex I",
    "alternative PM10 daily limit from 2030: 45 µg/m³, not more than 18 times a calendar year. The "
    "numbers, date and annex were NOT checked in a retrieved source.",
)

# --- small shared pieces -------------------------------------------------------------------------------


def _quantity(value: Any, units: str) -> Any:
    """A parameter in `units`: a quantity string, a DataArray with units, or a bare number (in `units`)."""
    if value is None:
        return None
    if isinstance(value, str):
        return convert_units_to(value, units)
    if isinstance(value, xr.DataArray) and "units" in value.attrs:
        return convert_units_to(value, units)
    return value


def _annual_mean(da: xr.DataArray) -> xr.DataArray:
    """Mean of the valid days of each calendar year (NaN days masked; NaN if no valid day)."""
    return da.resample(time=ANNUAL).mean(skipna=True)


def _annual_concentration(da: xr.DataArray) -> xr.DataArray:
    """Annual mean surface concentration in µg m-3; small negative model values are clipped to 0."""
    return _annual_mean(convert_units_to(da, "ug m-3")).clip(min=0)


def _annual_temperature(tas: xr.DataArray) -> xr.DataArray:
    return _annual_mean(convert_units_to(tas, "degC"))


def _annual_humidity(hurs: xr.DataArray) -> xr.DataArray:
    return _annual_mean(convert_units_to(hurs, "%"))


def annual_rain(pr: xr.DataArray) -> xr.DataArray:
    """Annual rain in mm: mean daily rain of the valid days × days of the calendar year (NaN days masked)."""
    daily = _annual_mean(convert_units_to(pr, "mm/d", context="hydro"))
    days = xr.where(daily.time.dt.is_leap_year, 366, 365)
    return (daily * days).assign_attrs(units="mm")


def rh60(hurs: xr.DataArray | float) -> xr.DataArray | float:
    """Rh60 = RH − 60 when RH > 60 %, else 0 (RH the annual mean in %, as the ICP functions define it)."""
    return np.maximum(hurs - 60.0, 0.0)


def h_plus_mg_per_l(ph: Any) -> Any:
    """[H+] of rain in mg/l from its pH: 10^(−pH) mol/l × 1.008 g/mol × 1000 mg/g (ICP convention)."""
    return 1008.0 * 10.0 ** (-1.0 * ph)


def h_plus_umol_per_l(ph: Any) -> Any:
    """[H+] of rain in µmol/l from its pH: 10^(−pH)·10^6 (Lipfert convention)."""
    return 1e6 * 10.0 ** (-1.0 * ph)


def hno3_icp(no2: Any, o3: Any, t: Any, rh: Any) -> Any:
    """Gaseous HNO3 (µg m-3) from annual means, the ICP Materials parameterisation.

    HNO3 = 516·exp(−3400/(T + 273))·(NO2·O3·RH)^0.5, NO2 and O3 in µg m-3, T in °C, RH in %.
    PROVISIONAL: the coefficients 516 and 3400 K are quoted from the project notes and were not checked
    in Kucera et al. 2007 or Tidblad et al. 2012.
    """
    return 516.0 * np.exp(-3400.0 / (t + 273.0)) * np.sqrt(no2 * o3 * rh)


# --- Lipfert (1989) ------------------------------------------------------------------------------------


def lipfert_recession(
    rain_m: Any, h_plus: Any, so2: Any, hno3: Any, vd_so2: Any = 0.8, vd_hno3: Any = 2.0
) -> Any:
    """Lipfert (1989) carbonate-stone surface recession, µm/yr, from annual values.

    L = 18.8·R + 0.016·[H+]·R + 0.18·(V_dS·[SO2] + V_dN·[HNO3])
    R rain (m/yr), [H+] in rain (µmol/l), V_dS and V_dN deposition velocities (cm/s), [SO2] and [HNO3]
    annual mean concentrations (µg m-3). 18.8 µm per metre of rain is the "karst" dissolution by clean
    rain in equilibrium with CO2.
    """
    return 18.8 * rain_m + 0.016 * h_plus * rain_m + 0.18 * (vd_so2 * so2 + vd_hno3 * hno3)


def limestone_recession_lipfert(
    so2: xr.DataArray,
    no2: xr.DataArray,
    o3: xr.DataArray,
    tas: xr.DataArray,
    hurs: xr.DataArray,
    pr: xr.DataArray,
    rain_ph: Any = 5.3,
    vd_so2: Any = "0.8 cm/s",
    vd_hno3: Any = "2.0 cm/s",
) -> xr.DataArray:
    """Annual Lipfert recession of limestone and marble (µm/yr); HNO3 from `hno3_icp` on annual means."""
    t, rh = _annual_temperature(tas), _annual_humidity(hurs)
    hno3 = hno3_icp(_annual_concentration(no2), _annual_concentration(o3), t, rh)
    out = lipfert_recession(
        annual_rain(pr) / 1000.0,
        h_plus_umol_per_l(rain_ph),
        _annual_concentration(so2),
        hno3,
        _quantity(vd_so2, "cm/s"),
        _quantity(vd_hno3, "cm/s"),
    )
    return out.assign_attrs(units="um/yr")


# --- ICP Materials multi-pollutant functions (Kucera et al. 2007) -----------------------------------------


def _f_t(t: Any, cold: float, warm: float) -> Any:
    """Piecewise temperature term: cold·(T−10) below 10 °C, else warm·(T−10) (both 0 at 10 °C)."""
    if isinstance(t, xr.DataArray):
        return xr.where(t < 10.0, cold * (t - 10.0), warm * (t - 10.0))
    t = np.asarray(t, dtype=float)
    return np.where(t < 10.0, cold * (t - 10.0), warm * (t - 10.0))


def icp_limestone_recession(
    so2: Any, hno3: Any, pm10: Any, rh: Any, rain: Any, h_plus: Any, years: float = 1.0
) -> Any:
    """ICP Materials limestone surface recession R (µm) after `years` of exposure.

    R = 3.1 + t·(0.85 + 0.0059·SO2·Rh60 + 0.054·Rain·[H+] + 0.078·HNO3·Rh60 + 0.0258·PM10)
    SO2, HNO3, PM10 annual means (µg m-3), Rh60 from the annual mean RH (%), Rain (mm/yr), [H+] (mg/l).
    """
    r60 = rh60(rh)
    return 3.1 + years * (
        0.85 + 0.0059 * so2 * r60 + 0.054 * rain * h_plus + 0.078 * hno3 * r60 + 0.0258 * pm10
    )


def icp_carbon_steel_mass_loss(
    so2: Any, pm10: Any, rh: Any, t: Any, rain: Any, h_plus: Any, years: float = 1.0
) -> Any:
    """ICP Materials carbon-steel mass loss ML (g/m²) after `years` of exposure.

    ML = 29.1 + t^0.6·(21.7 + 1.39·SO2^0.6·Rh60·e^f(T) + 1.29·Rain·[H+] + 0.593·PM10)
    f(T) = 0.150·(T−10) if T < 10 °C, else −0.054·(T−10).
    """
    f = _f_t(t, 0.150, -0.054)
    return 29.1 + years**0.6 * (
        21.7 + 1.39 * so2**0.6 * rh60(rh) * np.exp(f) + 1.29 * rain * h_plus + 0.593 * pm10
    )


def icp_zinc_mass_loss(
    so2: Any, hno3: Any, rh: Any, t: Any, rain: Any, h_plus: Any, years: float = 1.0
) -> Any:
    """ICP Materials zinc mass loss ML (g/m²) after `years` of exposure.

    ML = 1.82 + t·(1.71 + 0.471·SO2^0.22·e^(0.018·RH + f(T)) + 0.041·Rain·[H+] + 1.37·HNO3)
    f(T) = 0.062·(T−10) if T < 10 °C, else −0.021·(T−10); RH here is the annual mean itself (not Rh60).
    """
    f = _f_t(t, 0.062, -0.021)
    return 1.82 + years * (
        1.71 + 0.471 * so2**0.22 * np.exp(0.018 * rh + f) + 0.041 * rain * h_plus + 1.37 * hno3
    )


def icp_copper_mass_loss(
    so2: Any, o3: Any, rh: Any, t: Any, rain: Any, h_plus: Any, years: float = 1.0
) -> Any:
    """ICP Materials copper mass loss ML (g/m²) after `years` of exposure.

    ML = 3.12 + t·(1.09 + 0.00201·SO2^0.4·O3·Rh60·e^f(T) + 0.0878·Rain·[H+])
    f(T) = 0.083·(T−10) if T < 10 °C, else −0.032·(T−10).
    """
    f = _f_t(t, 0.083, -0.032)
    return 3.12 + years * (1.09 + 0.00201 * so2**0.4 * o3 * rh60(rh) * np.exp(f) + 0.0878 * rain * h_plus)


def limestone_recession_icp(
    so2: xr.DataArray,
    no2: xr.DataArray,
    o3: xr.DataArray,
    pm10: xr.DataArray,
    tas: xr.DataArray,
    hurs: xr.DataArray,
    pr: xr.DataArray,
    rain_ph: Any = 5.3,
) -> xr.DataArray:
    """First-year ICP limestone recession (µm) for each calendar year of the cube."""
    t, rh = _annual_temperature(tas), _annual_humidity(hurs)
    hno3 = hno3_icp(_annual_concentration(no2), _annual_concentration(o3), t, rh)
    out = icp_limestone_recession(
        _annual_concentration(so2),
        hno3,
        _annual_concentration(pm10),
        rh,
        annual_rain(pr),
        h_plus_mg_per_l(rain_ph),
    )
    return out.assign_attrs(units="um")


def carbon_steel_corrosion_icp(
    so2: xr.DataArray,
    pm10: xr.DataArray,
    tas: xr.DataArray,
    hurs: xr.DataArray,
    pr: xr.DataArray,
    rain_ph: Any = 5.3,
) -> xr.DataArray:
    """First-year ICP carbon-steel mass loss (g/m²) for each calendar year of the cube."""
    out = icp_carbon_steel_mass_loss(
        _annual_concentration(so2),
        _annual_concentration(pm10),
        _annual_humidity(hurs),
        _annual_temperature(tas),
        annual_rain(pr),
        h_plus_mg_per_l(rain_ph),
    )
    return out.assign_attrs(units="g m-2")


def zinc_corrosion_icp(
    so2: xr.DataArray,
    no2: xr.DataArray,
    o3: xr.DataArray,
    tas: xr.DataArray,
    hurs: xr.DataArray,
    pr: xr.DataArray,
    rain_ph: Any = 5.3,
) -> xr.DataArray:
    """First-year ICP zinc mass loss (g/m²) for each calendar year; HNO3 from `hno3_icp`."""
    t, rh = _annual_temperature(tas), _annual_humidity(hurs)
    hno3 = hno3_icp(_annual_concentration(no2), _annual_concentration(o3), t, rh)
    out = icp_zinc_mass_loss(
        _annual_concentration(so2), hno3, rh, t, annual_rain(pr), h_plus_mg_per_l(rain_ph)
    )
    return out.assign_attrs(units="g m-2")


def copper_corrosion_icp(
    so2: xr.DataArray,
    o3: xr.DataArray,
    tas: xr.DataArray,
    hurs: xr.DataArray,
    pr: xr.DataArray,
    rain_ph: Any = 5.3,
) -> xr.DataArray:
    """First-year ICP copper mass loss (g/m²) for each calendar year of the cube."""
    out = icp_copper_mass_loss(
        _annual_concentration(so2),
        _annual_concentration(o3),
        _annual_humidity(hurs),
        _annual_temperature(tas),
        annual_rain(pr),
        h_plus_mg_per_l(rain_ph),
    )
    return out.assign_attrs(units="g m-2")


# --- ISO 9223:2012 corrosivity ----------------------------------------------------------------------------

#: Corrosivity category codes and names.
CORROSIVITY_CATEGORIES = {1: "C1", 2: "C2", 3: "C3", 4: "C4", 5: "C5", 6: "CX"}

#: ISO 9223:2012 Table 2 upper limits of C1..C5 (the upper limit belongs to the lower category).
ISO9223_LIMITS: dict[str, dict[str, tuple[float, ...]]] = {
    "carbon_steel": {
        "um/a": (1.3, 25.0, 50.0, 80.0, 200.0),
        "g m-2 a-1": (10.0, 200.0, 400.0, 650.0, 1500.0),
    },
    "zinc": {"um/a": (0.1, 0.7, 2.1, 4.2, 8.4), "g m-2 a-1": (0.7, 5.0, 15.0, 30.0, 60.0)},
    "copper": {"um/a": (0.1, 0.6, 1.3, 2.8, 5.6), "g m-2 a-1": (0.9, 5.0, 12.0, 25.0, 50.0)},
}

#: Validity range of the ISO 9223 dose–response functions (Table 3): outside it they extrapolate.
ISO9223_VALIDITY = {"T": (-17.1, 28.7), "RH": (34.0, 93.0), "Pd": (0.7, 150.4), "Sd": (0.4, 760.5)}

#: Provisional chloride deposition vs distance to the sea (project defaults, mg m-2 d-1 and km).
SD_COAST = 100.0
SD_BACKGROUND = 1.0
SD_EFOLDING_KM = 1.0


def iso9223_carbon_steel_rate(pd: Any, sd: Any, rh: Any, t: Any) -> Any:
    """ISO 9223:2012 first-year corrosion rate of carbon steel, µm/a.

    r_corr = 1.77·Pd^0.52·exp(0.020·RH + f_St) + 0.102·Sd^0.62·exp(0.033·RH + 0.040·T)
    f_St = 0.150·(T−10) if T ≤ 10 °C, else −0.054·(T−10); Pd SO2 and Sd Cl⁻ deposition (mg m-2 d-1),
    RH annual mean (%), T annual mean (°C).
    """
    f = _f_t(t, 0.150, -0.054)
    return 1.77 * pd**0.52 * np.exp(0.020 * rh + f) + 0.102 * sd**0.62 * np.exp(0.033 * rh + 0.040 * t)


def iso9223_zinc_rate(pd: Any, sd: Any, rh: Any, t: Any) -> Any:
    """ISO 9223:2012 first-year corrosion rate of zinc, µm/a (PROVISIONAL: coefficients unchecked).

    r_corr = 0.0129·Pd^0.44·exp(0.046·RH + f_Zn) + 0.0175·Sd^0.57·exp(0.008·RH + 0.085·T)
    f_Zn = 0.038·(T−10) if T ≤ 10 °C, else −0.071·(T−10).
    """
    f = _f_t(t, 0.038, -0.071)
    return 0.0129 * pd**0.44 * np.exp(0.046 * rh + f) + 0.0175 * sd**0.57 * np.exp(0.008 * rh + 0.085 * t)


def iso9223_category(rate: Any, metal: str = "carbon_steel", units: str = "um/a") -> Any:
    """ISO 9223 Table 2 category code (1 = C1 … 6 = CX) of a first-year rate; NaN stays NaN.

    `units` is "um/a" or "g m-2 a-1". The upper limit of a category belongs to it (r ≤ 10 g/(m²·a) is C1
    for steel); rates above the CX upper limit are still CX.
    """
    try:
        limits = ISO9223_LIMITS[metal][units]
    except KeyError:
        raise IndicatorInputError(f"no ISO 9223 limits for metal {metal!r} in {units!r}") from None

    def codes(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        return np.where(np.isnan(v), np.nan, np.digitize(v, limits, right=True) + 1.0)

    return xr.apply_ufunc(codes, rate) if isinstance(rate, xr.DataArray) else codes(rate)


def so2_deposition(so2: Any, vd: Any) -> Any:
    """SO2 deposition Pd (mg m-2 d-1) = v_d·C: v_d in cm/s, C in µg m-3 (× 0.01 m/cm × 86400 s/d × 1e-3)."""
    return vd * 0.01 * 86400.0 * 1e-3 * so2


def chloride_deposition_from_distance(
    distance_km: Any,
    coast: float = SD_COAST,
    background: float = SD_BACKGROUND,
    efolding_km: float = SD_EFOLDING_KM,
) -> Any:
    """Cl⁻ deposition Sd (mg m-2 d-1) from the distance to the sea (km): PROVISIONAL project relation.

    Sd = background + (coast − background)·exp(−d / efolding_km); unknown (None/NaN) distance → background.
    The exponential form follows the CENIM-CSIC study (Corrosion 55(9), 1999); the defaults (100 mg m-2
    d-1 at the shoreline, inside ISO 9223 class S2; 1 mg m-2 d-1 inland, inside S0; e-folding 1 km) are
    project choices, not published.
    """
    if distance_km is None:
        return background
    d = distance_km if isinstance(distance_km, xr.DataArray) else np.asarray(distance_km, dtype=float)
    excess = (coast - background) * np.exp(-np.maximum(d, 0.0) / efolding_km)
    excess = excess.fillna(0.0) if isinstance(excess, xr.DataArray) else np.nan_to_num(excess, nan=0.0)
    return background + excess


def corrosivity_category(
    so2: xr.DataArray,
    tas: xr.DataArray,
    hurs: xr.DataArray,
    vd_so2: Any = "0.8 cm/s",
    distance_to_sea_km: Any = None,
    chloride_deposition: Any = None,
    metals: Sequence[str] = ("carbon_steel", "zinc"),
) -> xr.DataArray:
    """ISO 9223 corrosivity category (1 = C1 … 6 = CX) of each calendar year: the highest over `metals`.

    First-year rates come from the ISO 9223 dose–response functions with Pd = v_d·[SO2] (annual mean CAMS
    SO2), Sd = `chloride_deposition` if given (mg m-2 d-1) else `chloride_deposition_from_distance`, and
    the annual mean RH and T. When steel and zinc disagree the higher category is kept (conservative).
    """
    funcs = {"carbon_steel": iso9223_carbon_steel_rate, "zinc": iso9223_zinc_rate}
    unknown = set(metals) - set(funcs)
    if unknown or not metals:
        raise IndicatorInputError(f"corrosivity_category supports metals {sorted(funcs)}, got {list(metals)}")
    pd = so2_deposition(_annual_concentration(so2), _quantity(vd_so2, "cm/s"))
    sd = (
        chloride_deposition_from_distance(_quantity(distance_to_sea_km, "km"))
        if chloride_deposition is None
        else _quantity(chloride_deposition, "mg m-2 d-1")
    )
    rh, t = _annual_humidity(hurs), _annual_temperature(tas)
    cats = [iso9223_category(funcs[m](pd, sd, rh, t), m, "um/a") for m in metals]
    out = cats[0]
    for c in cats[1:]:
        out = np.maximum(out, c)
    return out.assign_attrs(
        units="1",
        flag_values=list(CORROSIVITY_CATEGORIES),
        flag_meanings=" ".join(CORROSIVITY_CATEGORIES.values()),
    )


# --- PM10 exceedances ---------------------------------------------------------------------------------


def pm10_exceedance_levels(allowed: int) -> Thresholds:
    """Levels of the yearly count of PM10 exceedance days relative to the `allowed` count.

    low ≥ half the allowance, moderate ≥ three quarters, high = the limit value is breached
    (more than `allowed` days), severe ≥ twice the allowance. Project defaults, not published.
    """
    return Thresholds(
        low=math.ceil(allowed / 2),
        moderate=math.ceil(3 * allowed / 4),
        high=allowed + 1,
        severe=2 * allowed,
    )


#: Per-site level overrides for the 2030 limit of Directive (EU) 2024/2881 (45 µg m-3, 18 days).
PM10_2030 = {"thresh": "45 ug m-3", "allowed": 18}
PM10_2030_LEVEL_OVERRIDES = {
    k: v for k, v in pm10_exceedance_levels(18).as_dict().items() if k != "direction"
}


def pm10_exceedance_days(pm10: xr.DataArray, thresh: Any = "50 ug m-3", allowed: int = 35) -> xr.DataArray:
    """Days per calendar year with a daily mean PM10 above `thresh` (NaN days are not counted).

    A year without any valid day is NaN. `allowed`, the number of exceedance days the limit value
    tolerates, is kept in the attrs: a count above it breaches the limit value.
    """
    daily = convert_units_to(pm10, "ug m-3")
    count = generic.threshold_count(daily, ">", _quantity(thresh, "ug m-3"), ANNUAL)
    valid = daily.notnull().resample(time=ANNUAL).sum()
    return count.where(valid > 0).assign_attrs(units="days", allowed_exceedances=allowed)


# --- declarations -------------------------------------------------------------------------------------

RAIN_PH = Parameter(
    5.3,
    "1",
    "pH of rain at the site (not a Copernicus product); [H+] derives from it.",
    "Project default, the SiteParams.rain_ph default (sites/model.py); a site value should come from "
    "EMEP or national wet-deposition data.",
)
VD_SO2 = Parameter(
    "0.8 cm/s",
    "cm/s",
    "Dry deposition velocity of SO2 onto the stone or metal surface.",
    "Project default inside the 0.3–0.8 cm/s range of the project notes (SCIENCE.md §1.1, unconfirmed).",
)
ICP_NOTE = (
    "The ICP Materials coefficients (Kucera et al. 2007) and the [H+] unit convention (mg/l = "
    "1008·10^−pH) were not checked against the paper, only its abstract; the HNO3 parameterisation "
    "516·exp(−3400/(T+273))·(NO2·O3·RH)^0.5 is unchecked too."
)
ISO_LEVELS_NOTE = (
    "Levels are the ISO 9223 Table 2 category limits (checked in the CorWiz transcription) applied to the "
    "ICP first-year mass loss: C2 → low, C3 → moderate, C4 → high, C5 and above → severe; a value equal "
    "to a limit counts in the upper level here, in the lower category in ISO 9223."
)

register(
    IndicatorSpec(
        id="limestone_recession_lipfert",
        title="Limestone surface recession (Lipfert)",
        description="Annual surface recession of carbonate stone (limestone, marble) by clean-rain "
        "dissolution, acid rain and dry deposition of SO2 and HNO3, Lipfert (1989): "
        "L = 18.8·R + 0.016·[H+]·R + 0.18·(V_dS·SO2 + V_dN·HNO3), R annual rain (m), [H+] in rain "
        "(µmol/l), annual mean SO2 and HNO3 (µg m-3), HNO3 from NO2, O3, T and RH.",
        units="um/yr",
        inputs=("so2", "no2", "o3", "tas", "hurs", "pr"),
        freq=ANNUAL,
        func=limestone_recession_lipfert,
        parameters={
            "rain_ph": RAIN_PH,
            "vd_so2": VD_SO2,
            "vd_hno3": Parameter(
                "2.0 cm/s",
                "cm/s",
                "Dry deposition velocity of HNO3.",
                "Project default inside the 1–2.5 cm/s range of the project notes (SCIENCE.md §1.1, "
                "unconfirmed).",
            ),
        },
        levels=Thresholds(low=15, moderate=25, high=40, severe=60),
        version="1",
        family="atmosphere",
        hazard="air pollution and acid rain: stone recession",
        materials=LIMESTONE,
        references=(LIPFERT_1989, KUCERA_2007, BONAZZA_2009),
        provisional=True,
        provisional_note="Unconfirmed: the Lipfert coefficients 18.8, 0.016, 0.18 and their unit "
        "conventions (R in m, [H+] in µmol/l, V_d in cm/s); the default deposition velocities; the ICP "
        "HNO3 parameterisation. Levels (15/25/40/60 µm/yr) are project defaults: the clean-rain term alone "
        "gives about 15 µm/yr for 0.8 m of rain.",
    )
)

register(
    IndicatorSpec(
        id="limestone_recession_icp",
        title="Limestone surface recession, first year (ICP Materials)",
        description="First-year surface recession of limestone from the ICP Materials multi-pollutant "
        "function: R = 3.1 + 0.85 + 0.0059·SO2·Rh60 + 0.054·Rain·[H+] + 0.078·HNO3·Rh60 + 0.0258·PM10 "
        "(t = 1 year; annual means, Rh60 from the annual mean RH, Rain in mm, [H+] in mg/l).",
        units="um",
        inputs=("so2", "no2", "o3", "pm10", "tas", "hurs", "pr"),
        freq=ANNUAL,
        func=limestone_recession_icp,
        parameters={"rain_ph": RAIN_PH},
        levels=Thresholds(low=6, moderate=8, high=12, severe=16),
        version="1",
        family="atmosphere",
        hazard="air pollution and acid rain: stone recession",
        materials=LIMESTONE,
        references=(KUCERA_2007, TIDBLAD_2012),
        provisional=True,
        provisional_note=ICP_NOTE + " Levels (6/8/12/16 µm) are project defaults: 1.5, 2, 3 and 4 times "
        "the function's pollution-free first-year recession (3.1 + 0.85 ≈ 4 µm), after the UNECE practice "
        "of tolerable rates as multiples of background (the mapping-manual values were not retrieved).",
    )
)

register(
    IndicatorSpec(
        id="carbon_steel_corrosion_icp",
        title="Carbon steel corrosion, first year (ICP Materials)",
        description="First-year mass loss of carbon steel from the ICP Materials multi-pollutant "
        "function: ML = 29.1 + 21.7 + 1.39·SO2^0.6·Rh60·e^f(T) + 1.29·Rain·[H+] + 0.593·PM10 (t = 1 year; "
        "f(T) = 0.150·(T−10) below 10 °C, −0.054·(T−10) above).",
        units="g m-2",
        inputs=("so2", "pm10", "tas", "hurs", "pr"),
        freq=ANNUAL,
        func=carbon_steel_corrosion_icp,
        parameters={"rain_ph": RAIN_PH},
        levels=Thresholds(low=10, moderate=200, high=400, severe=650),
        version="1",
        family="atmosphere",
        hazard="atmospheric corrosion",
        materials=STEEL,
        references=(KUCERA_2007, TIDBLAD_2012, ISO_9223),
        provisional=True,
        provisional_note=ICP_NOTE + " " + ISO_LEVELS_NOTE,
    )
)

register(
    IndicatorSpec(
        id="zinc_corrosion_icp",
        title="Zinc corrosion, first year (ICP Materials)",
        description="First-year mass loss of zinc from the ICP Materials multi-pollutant function: "
        "ML = 1.82 + 1.71 + 0.471·SO2^0.22·e^(0.018·RH + f(T)) + 0.041·Rain·[H+] + 1.37·HNO3 (t = 1 year; "
        "f(T) = 0.062·(T−10) below 10 °C, −0.021·(T−10) above; HNO3 from NO2, O3, T and RH).",
        units="g m-2",
        inputs=("so2", "no2", "o3", "tas", "hurs", "pr"),
        freq=ANNUAL,
        func=zinc_corrosion_icp,
        parameters={"rain_ph": RAIN_PH},
        levels=Thresholds(low=0.7, moderate=5, high=15, severe=30),
        version="1",
        family="atmosphere",
        hazard="atmospheric corrosion",
        materials=ZINC,
        references=(KUCERA_2007, TIDBLAD_2012, ISO_9223),
        provisional=True,
        provisional_note=ICP_NOTE + " " + ISO_LEVELS_NOTE,
    )
)

register(
    IndicatorSpec(
        id="copper_corrosion_icp",
        title="Copper corrosion, first year (ICP Materials)",
        description="First-year mass loss of copper from the ICP Materials multi-pollutant function: "
        "ML = 3.12 + 1.09 + 0.00201·SO2^0.4·O3·Rh60·e^f(T) + 0.0878·Rain·[H+] (t = 1 year; "
        "f(T) = 0.083·(T−10) below 10 °C, −0.032·(T−10) above). Bronze is taken as copper.",
        units="g m-2",
        inputs=("so2", "o3", "tas", "hurs", "pr"),
        freq=ANNUAL,
        func=copper_corrosion_icp,
        parameters={"rain_ph": RAIN_PH},
        levels=Thresholds(low=0.9, moderate=5, high=12, severe=25),
        version="1",
        family="atmosphere",
        hazard="atmospheric corrosion",
        materials=COPPER,
        references=(KUCERA_2007, TIDBLAD_2012, ISO_9223),
        provisional=True,
        provisional_note=ICP_NOTE + " " + ISO_LEVELS_NOTE + " Bronze has its own ICP function "
        "(coefficients not known here); it is classified with the copper function.",
    )
)

register(
    IndicatorSpec(
        id="corrosivity_category",
        title="Atmospheric corrosivity category (ISO 9223)",
        description="ISO 9223:2012 corrosivity category C1…CX of each year, from the first-year corrosion "
        "rates of carbon steel and zinc given by the ISO dose–response functions (annual mean SO2 "
        "deposition Pd = v_d·SO2, chloride deposition Sd from the distance to the sea or a measured value, "
        "annual mean RH and T); the higher of the two categories is kept.",
        units="1",
        inputs=("so2", "tas", "hurs"),
        freq=ANNUAL,
        func=corrosivity_category,
        parameters={
            "vd_so2": VD_SO2,
            "distance_to_sea_km": Parameter(
                None,
                "km",
                "Distance from the site to the coast; None (unknown or inland) gives the inland "
                "background chloride deposition.",
                "SiteParams.distance_to_sea_km; converted by chloride_deposition_from_distance "
                "(provisional project relation, exponential form after Corrosion 55(9), 1999).",
            ),
            "chloride_deposition": Parameter(
                None,
                "mg m-2 d-1",
                "Measured annual mean Cl⁻ deposition Sd; when given it replaces the distance relation.",
                "ISO 9225 measurement at or near the site.",
            ),
            "metals": Parameter(
                ("carbon_steel", "zinc"),
                "",
                "Standard metals whose categories are combined (the highest wins).",
                "ISO 9223:2012 dose–response functions",
            ),
        },
        levels=CategoryLevels(
            categories=CORROSIVITY_CATEGORIES,
            levels={1: "none", 2: "low", 3: "moderate", 4: "high", 5: "severe", 6: "severe"},
        ),
        version="1",
        family="atmosphere",
        hazard="atmospheric corrosion",
        materials=("carbon_steel", "metal", "zinc"),
        references=(ISO_9223, SEA_DISTANCE_1999),
        provisional=True,
        provisional_note="Unconfirmed: the ISO 9223 zinc dose–response coefficients; the SO2 deposition "
        "velocity (0.8 cm/s, so Pd ≈ 0.69·SO2); the chloride deposition vs distance relation (100 mg m-2 "
        "d-1 at the shoreline, 1 inland, e-folding 1 km: project defaults). The carbon-steel function, its "
        "validity range and the Table 2 limits are checked. Outside the validity range (T −17.1…28.7 °C, "
        "RH 34…93 %, Pd 0.7…150.4, Sd 0.4…760.5 mg m-2 d-1) the functions extrapolate.",
    )
)

register(
    IndicatorSpec(
        id="pm10_exceedance_days",
        title="PM10 exceedance days",
        description="Days per year with a daily mean PM10 above the EU limit value of 50 µg m-3, which may "
        "be exceeded on at most 35 days a year (Directive 2008/50/EC). Particles soil and blacken stone, "
        "plaster and glass. Directive (EU) 2024/2881 sets 45 µg m-3 and 18 days from 2030: pass "
        "thresh='45 ug m-3', allowed=18 and the PM10_2030_LEVEL_OVERRIDES levels.",
        units="days",
        inputs=("pm10",),
        freq=ANNUAL,
        func=pm10_exceedance_days,
        parameters={
            "thresh": Parameter(
                "50 ug m-3",
                "ug m-3",
                "Daily mean PM10 above which a day is an exceedance.",
                "Directive 2008/50/EC Annex XI (alternative: 45 ug m-3 from 2030, Directive (EU) 2024/2881)",
            ),
            "allowed": Parameter(
                35,
                "days",
                "Exceedance days a year the limit value tolerates.",
                "Directive 2008/50/EC Annex XI (alternative: 18 from 2030, Directive (EU) 2024/2881)",
            ),
        },
        levels=pm10_exceedance_levels(35),
        version="1",
        family="atmosphere",
        hazard="particulate soiling and air quality",
        materials=SOILING,
        references=(EU_2008_50, EU_2024_2881),
        provisional=True,
        provisional_note="The limit (50 µg m-3, 35 days) is checked; the levels relative to the allowed "
        "count (≥ 18, ≥ 27, > 35, ≥ 70 days) are project defaults, and the 2030 values of Directive (EU) "
        "2024/2881 were not checked in a retrieved source.",
    )
)
