"""Atmospheric indicators: dose–response functions, ISO 9223 corrosivity, PM10 exceedance days.

Published input→output pairs exist only for the ISO 9223 Table 2 category limits and the PM10 limit
value; every other expected number below is a HAND CALCULATION written out in the test (not a
published value), and the indicators concerned are declared provisional.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indicators.atmosphere as atm
from indicators.core import classify, compute, get, level_name

IDS = (
    "limestone_recession_lipfert",
    "limestone_recession_icp",
    "carbon_steel_corrosion_icp",
    "zinc_corrosion_icp",
    "copper_corrosion_icp",
    "corrosivity_category",
    "pm10_exceedance_days",
)
DRF_IDS = IDS[:6]
YEAR = pd.date_range("2021-01-01", "2021-12-31", freq="D")
#: Constant daily values of the reference cube (so annual means equal them; rain 2 mm/d → 730 mm).
BASE = {
    "so2": (5.0, "ug m-3"),
    "no2": (20.0, "ug m-3"),
    "o3": (50.0, "ug m-3"),
    "pm10": (20.0, "ug m-3"),
    "pm2p5": (10.0, "ug m-3"),
    "tas": (10.0, "degC"),
    "hurs": (75.0, "%"),
    "pr": (2.0, "mm/d"),
}


def field(values, units: str, time=YEAR) -> xr.DataArray:
    """A (site, time) DataArray; `values` is a scalar, a 1-D daily series or a (site, time) array."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = np.full((1, time.size), float(arr))
    elif arr.ndim == 1:
        arr = arr[np.newaxis, :]
    sites = [f"s{i}" for i in range(arr.shape[0])]
    return xr.DataArray(
        arr, dims=("site", "time"), coords={"site": sites, "time": time}, attrs={"units": units}
    )


def cube(time=YEAR, **overrides) -> xr.Dataset:
    """The reference cube, with some variables replaced by (values, units)."""
    spec = BASE | overrides
    return xr.Dataset({name: field(v, u, time) for name, (v, u) in spec.items()})


# --- declarations ---------------------------------------------------------------------------------


class TestDeclarations:
    @pytest.mark.parametrize("indicator_id", IDS)
    def test_registered_as_atmosphere_v1(self, indicator_id):
        spec = get(indicator_id)
        assert spec.family == "atmosphere"
        assert spec.version == "1"
        assert spec.freq == "YS"
        assert spec.materials
        assert spec.references
        assert spec.provisional and spec.provisional_note

    @pytest.mark.parametrize("indicator_id", IDS)
    def test_parameters_and_inputs_match_the_function(self, indicator_id):
        spec = get(indicator_id)
        signature = inspect.signature(spec.func).parameters
        assert set(spec.inputs) | set(spec.parameters) == set(signature)
        for name, param in spec.parameters.items():
            assert param.description and param.reference, name

    def test_materials(self):
        assert set(get("limestone_recession_icp").materials) == {"limestone", "marble"}
        assert set(get("limestone_recession_lipfert").materials) == {"limestone", "marble"}
        assert "carbon_steel" in get("carbon_steel_corrosion_icp").materials
        assert get("zinc_corrosion_icp").materials == ("zinc",)
        assert {"copper", "bronze"} <= set(get("copper_corrosion_icp").materials)

    def test_metal_levels_are_iso_9223_table_2_limits(self):
        # ISO 9223:2012 Table 2, g/(m²·a): lower limits of C2, C3, C4, C5 (CorWiz page_13.csv).
        steel = get("carbon_steel_corrosion_icp").levels
        assert (steel.low, steel.moderate, steel.high, steel.severe) == (10, 200, 400, 650)
        zinc = get("zinc_corrosion_icp").levels
        assert (zinc.low, zinc.moderate, zinc.high, zinc.severe) == (0.7, 5, 15, 30)
        copper = get("copper_corrosion_icp").levels
        assert (copper.low, copper.moderate, copper.high, copper.severe) == (0.9, 5, 12, 25)


# --- shared annual pieces -------------------------------------------------------------------------


class TestAnnualInputs:
    def test_hno3_parameterisation_hand_calculation(self):
        # HAND CALCULATION (not a published value): T = 10 °C, NO2 = 20, O3 = 50 µg m-3, RH = 75 %.
        # 3400 / 283 = 12.014134; exp(−12.014134) = 6.057979e-6; × 516 = 3.125917e-3
        # sqrt(20 × 50 × 75) = sqrt(75000) = 273.861279; HNO3 = 3.125917e-3 × 273.861279 = 0.856068
        assert atm.hno3_icp(20.0, 50.0, 10.0, 75.0) == pytest.approx(0.856068, rel=1e-6)

    def test_h_plus_conventions(self):
        assert atm.h_plus_mg_per_l(5.0) == pytest.approx(0.01008)  # 10^-5 mol/l × 1008 mg/mol
        assert atm.h_plus_umol_per_l(5.0) == pytest.approx(10.0)  # 10^-5 mol/l × 10^6

    def test_rh60(self):
        assert atm.rh60(75.0) == 15.0
        assert atm.rh60(55.0) == 0.0

    def test_annual_rain_masks_nan_days(self):
        daily = np.full(YEAR.size, 2.0)
        daily[:100] = np.nan
        rain = atm.annual_rain(field(daily, "mm/d"))
        # 2 mm/d over the 265 valid days, × 365 days: the NaN days are not dry days.
        assert float(rain.squeeze()) == pytest.approx(730.0)
        leap = pd.date_range("2024-01-01", "2024-12-31", freq="D")
        assert float(atm.annual_rain(field(1.0, "mm/d", leap)).squeeze()) == pytest.approx(366.0)

    def test_rh60_is_taken_from_the_annual_mean_rh(self):
        # Daily RH alternating 50 % and 90 %: annual mean 70 → Rh60 = 10 (the mean of the daily Rh60
        # would be 15). The ICP functions use Rh60 of the annual mean RH.
        hurs = np.where(np.arange(YEAR.size) % 2 == 0, 50.0, 90.0)
        hurs[-1] = 70.0  # 365 days: make the mean exactly 70
        out = compute("limestone_recession_icp", cube(hurs=(hurs, "%")))
        hno3 = atm.hno3_icp(20.0, 50.0, 10.0, 70.0)
        expected = atm.icp_limestone_recession(5.0, hno3, 20.0, 70.0, 730.0, atm.h_plus_mg_per_l(5.3))
        assert float(out.squeeze()) == pytest.approx(expected, rel=1e-12)


# --- Lipfert -------------------------------------------------------------------------------------


class TestLipfert:
    def test_kernel_hand_calculation(self):
        # HAND CALCULATION (not a published value; also the computed case of SCIENCE.md §1.1):
        # R = 0.8 m, pH 5 → [H+] = 10 µmol/l, SO2 = 5, HNO3 = 1 µg m-3, V_dS = 0.8, V_dN = 2.0 cm/s
        # 18.8 × 0.8 = 15.04; 0.016 × 10 × 0.8 = 0.128; 0.18 × (0.8 × 5 + 2.0 × 1) = 1.08 → 16.248
        assert atm.lipfert_recession(0.8, 10.0, 5.0, 1.0, 0.8, 2.0) == pytest.approx(16.248)

    def test_indicator_hand_calculation(self):
        # HAND CALCULATION on the reference cube: R = 2 mm/d × 365 = 0.73 m, pH 5.3 → [H+] = 5.011872,
        # HNO3 = 0.856068 (see test_hno3_parameterisation_hand_calculation)
        # 18.8 × 0.73 = 13.724; 0.016 × 5.011872 × 0.73 = 0.058539; 0.18 × (0.8 × 5 + 2 × 0.856068)
        # = 1.028184 → 14.810723 µm/yr
        out = compute("limestone_recession_lipfert", cube())
        assert out.attrs["units"] == "um/yr"
        assert float(out.squeeze()) == pytest.approx(14.810723, rel=1e-6)

    def test_deposition_velocities_are_quantities(self):
        slow = compute("limestone_recession_lipfert", cube(), vd_so2="0.004 m/s")
        fast = compute("limestone_recession_lipfert", cube(), vd_so2="0.8 cm/s")
        # 0.18 × (0.8 − 0.4) cm/s × 5 µg m-3 = 0.36 µm/yr
        assert float((fast - slow).squeeze()) == pytest.approx(0.36)


# --- ICP Materials --------------------------------------------------------------------------------

# Kernel inputs of the hand calculations: SO2 = 5, HNO3 = 1, PM10 = 20, O3 = 60 µg m-3, RH = 75 %
# (Rh60 = 15), Rain = 800 mm, pH 5 → [H+] = 0.01008 mg/l, t = 1 year.
H5 = 0.01008


class TestIcpFunctions:
    def test_limestone_hand_calculation(self):
        # 3.1 + 0.85 + 0.0059·5·15 (0.4425) + 0.054·800·0.01008 (0.435456) + 0.078·1·15 (1.17)
        # + 0.0258·20 (0.516) = 6.513956 µm
        assert atm.icp_limestone_recession(5.0, 1.0, 20.0, 75.0, 800.0, H5) == pytest.approx(6.513956)

    @pytest.mark.parametrize(
        ("t", "expected"),
        [
            # f(T) = 0: 29.1 + 21.7 + 1.39·5^0.6·15 (5^0.6 = 2.626528 → 54.763105)
            #           + 1.29·800·0.01008 (10.40256) + 0.593·20 (11.86) = 127.825665
            (10.0, 127.825665),
            # T = 5: f = 0.150·(−5) = −0.75, e^f = 0.472367 → 54.763105·0.472367 = 25.868154 → 98.930819
            (5.0, 98.930819),
            # T = 20: f = −0.054·10 = −0.54, e^f = 0.582748 → 31.913071 → 104.975664
            (20.0, 104.975664),
        ],
    )
    def test_carbon_steel_hand_calculation(self, t, expected):
        assert atm.icp_carbon_steel_mass_loss(5.0, 20.0, 75.0, t, 800.0, H5) == pytest.approx(expected)

    @pytest.mark.parametrize(
        ("t", "expected"),
        [
            # 1.82 + 1.71 + 0.471·5^0.22·e^(0.018·75) (1.424864·3.857426 → 2.588760)
            # + 0.041·800·0.01008 (0.330624) + 1.37·1 = 7.819384
            (10.0, 7.819384),
            (0.0, 6.623233),  # f = 0.062·(−10) = −0.62
            (20.0, 7.329032),  # f = −0.021·10 = −0.21
        ],
    )
    def test_zinc_hand_calculation(self, t, expected):
        assert atm.icp_zinc_mass_loss(5.0, 1.0, 75.0, t, 800.0, H5) == pytest.approx(expected, rel=1e-6)

    @pytest.mark.parametrize(
        ("t", "expected"),
        [
            # 3.12 + 1.09 + 0.00201·5^0.4·60·15 (1.903654 → 3.443710) + 0.0878·800·0.01008 (0.708019)
            # = 8.361729
            (10.0, 8.361729),
            (0.0, 6.419646),  # f = 0.083·(−10) = −0.83
            (20.0, 7.418666),  # f = −0.032·10 = −0.32
        ],
    )
    def test_copper_hand_calculation(self, t, expected):
        assert atm.icp_copper_mass_loss(5.0, 60.0, 75.0, t, 800.0, H5) == pytest.approx(expected, rel=1e-6)

    def test_indicators_equal_the_kernels_on_annual_values(self):
        ds = cube()
        h, hno3 = atm.h_plus_mg_per_l(5.3), atm.hno3_icp(20.0, 50.0, 10.0, 75.0)
        expected = {
            "limestone_recession_icp": atm.icp_limestone_recession(5.0, hno3, 20.0, 75.0, 730.0, h),
            "carbon_steel_corrosion_icp": atm.icp_carbon_steel_mass_loss(5.0, 20.0, 75.0, 10.0, 730.0, h),
            "zinc_corrosion_icp": atm.icp_zinc_mass_loss(5.0, hno3, 75.0, 10.0, 730.0, h),
            "copper_corrosion_icp": atm.icp_copper_mass_loss(5.0, 50.0, 75.0, 10.0, 730.0, h),
        }
        for indicator_id, value in expected.items():
            assert float(compute(indicator_id, ds).squeeze()) == pytest.approx(value, rel=1e-12)

    def test_rain_ph_per_site(self):
        ds = xr.concat([cube(), cube()], dim="site").assign_coords(site=["a", "b"])
        ph = xr.DataArray([4.5, 6.0], dims="site", coords={"site": ["a", "b"]})
        both = compute("carbon_steel_corrosion_icp", ds, rain_ph=ph)
        for site, value in (("a", 4.5), ("b", 6.0)):
            alone = compute("carbon_steel_corrosion_icp", cube(), rain_ph=value)
            assert float(both.sel(site=site).squeeze()) == pytest.approx(float(alone.squeeze()))


# --- ISO 9223 -------------------------------------------------------------------------------------


class TestIso9223:
    @pytest.mark.parametrize(
        ("t", "expected"),
        [
            # Pd = 10, Sd = 20 mg m-2 d-1, RH = 80 %. T = 15: f_St = −0.054·5 = −0.27
            # 1.77·10^0.52 (3.311311)·exp(1.6 − 0.27) = 22.160774; 0.102·20^0.62 (6.406762)
            # ·exp(2.64 + 0.6) = 16.686025 → 38.846799 µm/a
            (15.0, 38.846799),
            # T = 5: f_St = 0.150·(−5) = −0.75 → 13.712719 + 11.184977 = 24.897696 µm/a
            (5.0, 24.897696),
        ],
    )
    def test_carbon_steel_rate_hand_calculation(self, t, expected):
        assert atm.iso9223_carbon_steel_rate(10.0, 20.0, 80.0, t) == pytest.approx(expected, rel=1e-6)

    @pytest.mark.parametrize(
        ("t", "expected"),
        [
            # T = 15: f_Zn = −0.071·5 = −0.355; 0.0129·10^0.44 (2.754229)·exp(3.68 − 0.355) = 0.987686
            # + 0.0175·20^0.57 (5.515528)·exp(0.64 + 1.275) = 0.655087 → 1.642773 µm/a
            (15.0, 1.642773),
            (5.0, 1.444864),  # f_Zn = 0.038·(−5) = −0.19
        ],
    )
    def test_zinc_rate_hand_calculation(self, t, expected):
        assert atm.iso9223_zinc_rate(10.0, 20.0, 80.0, t) == pytest.approx(expected, rel=1e-6)

    # Published: ISO 9223:2012 Table 2 (upper limit inclusive), transcribed in CorWiz
    # data/tables/din-en-iso-92232012-05_tables_table_2.csv and grams_to_um_map; the same cases are in
    # shared/reference/cases.json ("iso9223_corrosivity_category").
    @pytest.mark.parametrize(
        ("rate", "units", "expected"),
        [
            (5.0, "g m-2 a-1", "C1"),
            (10.0, "g m-2 a-1", "C1"),
            (105.0, "g m-2 a-1", "C2"),
            (300.0, "g m-2 a-1", "C3"),
            (525.0, "g m-2 a-1", "C4"),
            (1075.0, "g m-2 a-1", "C5"),
            (3500.0, "g m-2 a-1", "CX"),
            (0.65, "um/a", "C1"),
            (1.3, "um/a", "C1"),
            (13.15, "um/a", "C2"),
            (37.5, "um/a", "C3"),
            (65.0, "um/a", "C4"),
            (140.0, "um/a", "C5"),
            (450.0, "um/a", "CX"),
        ],
    )
    def test_carbon_steel_category_published_limits(self, rate, units, expected):
        code = atm.iso9223_category(rate, "carbon_steel", units)
        assert atm.CORROSIVITY_CATEGORIES[int(code)] == expected

    # Published: ISO 9223:2012 Table 2 zinc and copper columns, CorWiz data/output/tables/
    # Korrosion_und_Korrosionsschutz_1_..._(DIN_EN_ISO_9223_).pdf_page_13.csv (DIN EN ISO 9223 p. 13).
    @pytest.mark.parametrize(
        ("metal", "rate", "units", "expected"),
        [
            ("zinc", 0.7, "g m-2 a-1", "C1"),
            ("zinc", 0.71, "g m-2 a-1", "C2"),
            ("zinc", 0.1, "um/a", "C1"),
            ("zinc", 2.1, "um/a", "C3"),
            ("zinc", 8.5, "um/a", "CX"),
            ("copper", 0.9, "g m-2 a-1", "C1"),
            ("copper", 12.0, "g m-2 a-1", "C3"),
            ("copper", 5.6, "um/a", "C5"),
            ("copper", 5.61, "um/a", "CX"),
        ],
    )
    def test_zinc_and_copper_category_published_limits(self, metal, rate, units, expected):
        assert atm.CORROSIVITY_CATEGORIES[int(atm.iso9223_category(rate, metal, units))] == expected

    def test_category_cases_from_shared_reference(self):
        path = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cases.json"
        if not path.is_file():
            pytest.skip("shared/reference/cases.json is absent")
        cases = [c for c in json.loads(path.read_text()) if c["indicator"] == "iso9223_corrosivity_category"]
        assert cases
        units = {"carbon_steel_g_m2_a": "g m-2 a-1", "carbon_steel_um_a": "um/a"}
        for case in cases:
            rate, metal = case["inputs"]["first_year_rate"], case["inputs"]["metal"]
            code = atm.iso9223_category(rate, "carbon_steel", units[metal])
            assert atm.CORROSIVITY_CATEGORIES[int(code)] == case["expected"], case

    def test_category_keeps_nan(self):
        codes = atm.iso9223_category(np.array([np.nan, 30.0]))
        assert np.isnan(codes[0]) and codes[1] == 3

    def test_so2_deposition(self):
        # 1 cm/s × 10 µg m-3 = 0.01 m/s × 86400 s/d × 10 µg m-3 = 8640 µg m-2 d-1 = 8.64 mg m-2 d-1
        assert atm.so2_deposition(10.0, 1.0) == pytest.approx(8.64)

    def test_chloride_from_distance(self):
        assert atm.chloride_deposition_from_distance(None) == atm.SD_BACKGROUND
        assert float(atm.chloride_deposition_from_distance(0.0)) == pytest.approx(atm.SD_COAST)
        assert float(atm.chloride_deposition_from_distance(np.nan)) == pytest.approx(atm.SD_BACKGROUND)
        # 1 + 99·e^(−1) = 37.420065
        assert float(atm.chloride_deposition_from_distance(1.0)) == pytest.approx(37.420065)

    def test_indicator_hand_calculation(self):
        # HAND CALCULATION on the reference cube: Pd = 0.8 cm/s × 0.864 × 5 = 3.456 mg m-2 d-1,
        # Sd = 1 (inland), RH = 75, T = 10 (f = 0):
        # steel: 1.77·3.456^0.52 (1.905717)·e^1.5 + 0.102·1·e^(2.475 + 0.4) = 16.925262 µm/a → C2
        # zinc: 0.0129·3.456^0.44 (1.725728)·e^3.45 + 0.0175·1·e^(0.6 + 0.85) = 0.775863 µm/a → C3
        out = compute("corrosivity_category", cube())
        assert float(out.squeeze()) == 3
        steel = compute("corrosivity_category", cube(), metals=("carbon_steel",))
        assert float(steel.squeeze()) == 2

    def test_distance_to_sea_per_site(self):
        # Site a on the shore (Sd = 100): steel 1.77·1.905717·e^1.5 + 0.102·100^0.62·e^2.875 = 46.536591
        # µm/a → C3; site b of unknown distance (NaN → inland background) stays C2.
        ds = xr.concat([cube(), cube()], dim="site").assign_coords(site=["a", "b"])
        distance = xr.DataArray(
            [0.0, np.nan], dims="site", coords={"site": ["a", "b"]}, attrs={"units": "km"}
        )
        out = compute("corrosivity_category", ds, distance_to_sea_km=distance, metals=("carbon_steel",))
        assert out.sel(site="a").item() == 3
        assert out.sel(site="b").item() == 2
        measured = compute(
            "corrosivity_category", cube(), chloride_deposition=100.0, metals=("carbon_steel",)
        )
        assert float(measured.squeeze()) == 3

    def test_category_levels(self):
        codes = np.array([1, 2, 3, 4, 5, 6, np.nan])
        names = [level_name(c) for c in classify("corrosivity_category", codes)]
        assert names == ["none", "low", "moderate", "high", "severe", "severe", "no_data"]

    def test_unknown_metal_is_refused(self):
        with pytest.raises(ValueError, match="metals"):
            compute("corrosivity_category", cube(), metals=("aluminium",))


# --- PM10 -----------------------------------------------------------------------------------------


class TestPm10:
    def test_counts_days_strictly_above_the_limit(self):
        # Directive 2008/50/EC: daily mean 50 µg m-3 "not to be exceeded" → 50.0 is not an exceedance.
        daily = np.full(YEAR.size, 20.0)
        daily[:4] = [49.9, 50.0, 50.1, 120.0]
        daily[10:20] = np.nan  # masked, not counted
        out = compute("pm10_exceedance_days", cube(pm10=(daily, "ug m-3")))
        assert float(out.squeeze()) == 2
        assert out.attrs["units"] == "days" and out.attrs["allowed_exceedances"] == 35

    def test_2030_alternative(self):
        daily = np.full(YEAR.size, 47.0)
        assert float(compute("pm10_exceedance_days", cube(pm10=(daily, "ug m-3"))).squeeze()) == 0
        out = compute("pm10_exceedance_days", cube(pm10=(daily, "ug m-3")), **atm.PM10_2030)
        assert float(out.squeeze()) == 365

    def test_year_without_data_is_nan(self):
        out = compute("pm10_exceedance_days", cube(pm10=(np.full(YEAR.size, np.nan), "ug m-3")))
        assert np.isnan(out).all()

    def test_units(self):
        daily = np.where(np.arange(YEAR.size) < 40, 60.0, 10.0)
        ug = compute("pm10_exceedance_days", cube(pm10=(daily, "ug m-3")))
        kg = compute("pm10_exceedance_days", cube(pm10=(daily * 1e-9, "kg m-3")))
        assert float(ug.squeeze()) == float(kg.squeeze()) == 40

    def test_levels_relative_to_allowed(self):
        levels = atm.pm10_exceedance_levels(35)
        assert (levels.low, levels.moderate, levels.high, levels.severe) == (18, 27, 36, 70)
        assert atm.PM10_2030_LEVEL_OVERRIDES == {"low": 9, "moderate": 14, "high": 19, "severe": 36}
        names = [level_name(c) for c in classify("pm10_exceedance_days", [0, 18, 35, 36, 70])]
        assert names == ["none", "low", "moderate", "high", "severe"]


# --- units, NaN days, batches ---------------------------------------------------------------------


class TestUnitsAndMasking:
    @pytest.mark.parametrize("indicator_id", DRF_IDS)
    def test_kelvin_equals_celsius(self, indicator_id):
        celsius = compute(indicator_id, cube(tas=(12.5, "degC")))
        kelvin = compute(indicator_id, cube(tas=(285.65, "K")))
        xr.testing.assert_allclose(celsius, kelvin)

    @pytest.mark.parametrize("indicator_id", DRF_IDS)
    def test_mm_per_day_equals_flux(self, indicator_id):
        mm = compute(indicator_id, cube(pr=(3.0, "mm/d")))
        flux = compute(indicator_id, cube(pr=(3.0 / 86400.0, "kg m-2 s-1")))
        xr.testing.assert_allclose(mm, flux)

    @pytest.mark.parametrize("indicator_id", DRF_IDS)
    def test_humidity_fraction_equals_percent(self, indicator_id):
        percent = compute(indicator_id, cube(hurs=(80.0, "%")))
        fraction = compute(indicator_id, cube(hurs=(0.8, "1")))
        xr.testing.assert_allclose(percent, fraction)

    @pytest.mark.parametrize("indicator_id", DRF_IDS)
    def test_nan_days_are_masked(self, indicator_id):
        holes = {}
        for name, (value, units) in BASE.items():
            daily = np.full(YEAR.size, value)
            daily[np.random.default_rng(len(name)).choice(YEAR.size, 60, replace=False)] = np.nan
            holes[name] = (daily, units)
        xr.testing.assert_allclose(compute(indicator_id, cube(**holes)), compute(indicator_id, cube()))

    @pytest.mark.parametrize("indicator_id", DRF_IDS)
    def test_year_without_data_is_nan(self, indicator_id):
        two_years = pd.date_range("2021-01-01", "2022-12-31", freq="D")
        so2 = np.full(two_years.size, 5.0)
        so2[two_years.year == 2022] = np.nan
        out = compute(indicator_id, cube(time=two_years, so2=(so2, "ug m-3")))
        assert np.isfinite(out.sel(time="2021")).all()
        assert np.isnan(out.sel(time="2022")).all()


def _random_cube(rng: np.random.Generator, n_sites: int) -> xr.Dataset:
    shape = (n_sites, YEAR.size)
    values = {
        "so2": (rng.uniform(0.0, 30.0, shape), "ug m-3"),
        "no2": (rng.uniform(1.0, 80.0, shape), "ug m-3"),
        "o3": (rng.uniform(5.0, 120.0, shape), "ug m-3"),
        "pm10": (rng.uniform(2.0, 90.0, shape), "ug m-3"),
        "pm2p5": (rng.uniform(1.0, 60.0, shape), "ug m-3"),
        "tas": (rng.uniform(250.0, 305.0, shape), "K"),
        "hurs": (rng.uniform(30.0, 100.0, shape), "%"),
        "pr": (rng.exponential(2.0, shape) / 86400.0, "kg m-2 s-1"),
    }
    for name, (arr, _) in values.items():
        arr[rng.random(shape) < 0.05] = np.nan
        values[name] = (arr, values[name][1])
    return cube(**values)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    position=st.integers(0, 999),
    indicator_id=st.sampled_from(IDS),
)
def test_one_site_alone_equals_the_same_site_in_a_batch_of_1000(seed, position, indicator_id):
    batch = _random_cube(np.random.default_rng(seed), 1000)
    alone = compute(indicator_id, batch.isel(site=[position]))
    together = compute(indicator_id, batch).isel(site=[position])
    np.testing.assert_allclose(alone.values, together.values, rtol=1e-12, equal_nan=True)
