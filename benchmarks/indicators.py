"""Indicator suite on 1,000 and 10,000 sites × 30 years of daily data, against two baselines.

Data: the synthetic generator (`monitor.sources.synthetic.generate`, float32, realistic European weather)
for 1,000 random small square sites over Europe, 1991–2020. The 10,000-site cube repeats those 1,000 sites'
series ten times under new site ids (generating 10,000 sites takes ~7 minutes on 2 cores; the indicators do
not care whether two rows are equal). No NaN in the synthetic data: every day is valid.

Baselines computing the same values (asserted equal: counts exactly, precipitation maxima to 1e-5 because
the float32 5-day sums are summed in another order):
- `loop`: one pandas DataFrame per site, `resample` per indicator, as a researcher would write it;
- `xclim`: xclim's indices called once on the whole cube (what `indicators.climate` did before the kernels).
FWI and SPI are compared with xclim only (`fire_weather_ufunc`, `standardized_precipitation_index`): FWI
from the numba kernel of `indicators.fire`, SPI from the vectorised fit `indicators.kernels.spi_gamma_app`
(on float64 precipitation, since xclim fits in the input dtype and ours in float64).

Run: `python -m benchmarks.indicators [--sites 1000 10000] [--skip-fire]`. Prints figures, asserts no timing.
"""

from __future__ import annotations

import argparse
import datetime as dt

import numpy as np
import pandas as pd
import xarray as xr
import xclim.indices as xci
from xclim.core.units import convert_units_to
from xclim.indices import generic
from xclim.indices.fire import fire_weather_ufunc

import indicators
from benchmarks.common import european_sites, machine, timed, timed_together
from indicators.climate import _mask_empty_periods
from monitor.sources import synthetic

START, END = dt.date(1991, 1, 1), dt.date(2020, 12, 31)
VARIABLES = ("tasmin", "tasmax", "pr", "hurs", "sfcWind", "tas")
#: The reduction-type indicators computed by the numpy kernels.
SUITE = (
    "freeze_thaw_cycles",
    "wet_frost_days",
    "hot_days",
    "thermal_stress_days",
    "max_1day_precipitation",
    "max_5day_precipitation",
)
#: Rounds of our kernels and xclim, run in turn, the best run of each counting (the per-site loop,
#: 300-500x slower, runs once): at 1,000 sites, where our suite takes tens of milliseconds and one slow
#: moment of a shared machine moves it by a third, `REPEAT_SMALL` rounds; above, `REPEAT`. In each round
#: our suite runs `OURS_RUNS` times in a row, as its first run after xclim's pays for the memory xclim
#: just churned (1,000 sites: 35-39 ms, then 31-33 ms).
REPEAT = 3
REPEAT_SMALL = 7
OURS_RUNS = 3
EXACT = {"freeze_thaw_cycles", "wet_frost_days", "hot_days", "thermal_stress_days", "max_1day_precipitation"}


def build_cube(n_sites: int, base: int = 1000) -> xr.Dataset:
    """`n_sites` × 30 years: synthetic data of `base` sites, repeated under new ids beyond `base`."""
    ds = synthetic.generate(european_sites(min(n_sites, base)), START, END, VARIABLES)
    if n_sites <= base:
        return ds
    reps = -(-n_sites // base)
    tiled = xr.concat([ds] * reps, dim="site").isel(site=slice(0, n_sites))
    return tiled.assign_coords(site=[f"t{i:06d}" for i in range(n_sites)])


def ours(ds: xr.Dataset) -> dict[str, np.ndarray]:
    return {i: indicators.compute(i, ds).values for i in SUITE}


def xclim_cube(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """The same values from xclim on the whole cube (the former `indicators.climate` code)."""
    tn, tx = ds.tasmin, ds.tasmax
    pr = convert_units_to(ds.pr, "mm/d", context="hydro")
    ft = generic.count_level_crossings(tn, tx, "0 degC", "YS", op_low="<=", op_high=">")
    wet = (pr >= 1.0).where(pr.notnull())
    recent = wet.rolling(time=2, min_periods=1).max() == 1
    wf = ((convert_units_to(tn, "degC") <= 0) & recent).resample(time="YS").sum()
    dtr = convert_units_to(tx, "degC") - convert_units_to(tn, "degC")
    return {
        "freeze_thaw_cycles": _mask_empty_periods(ft.astype(float), "YS", tx, tn).values,
        "wet_frost_days": _mask_empty_periods(wf, "YS", tn, pr).values,
        "hot_days": _mask_empty_periods(xci.tx_days_above(tx, "30 degC", freq="MS"), "MS", tx).values,
        "thermal_stress_days": _mask_empty_periods(
            generic.threshold_count(dtr, ">=", 15.0, "YS"), "YS", tx, tn
        ).values,
        "max_1day_precipitation": xci.max_1day_precipitation_amount(pr, freq="MS").values,
        "max_5day_precipitation": xci.max_n_day_precipitation_amount(pr, window=5, freq="MS").values,
    }


def _count(mask: pd.Series, valid: pd.Series, freq: str) -> np.ndarray:
    return mask.resample(freq).sum().where(valid.resample(freq).sum() > 0).to_numpy(dtype=float)


def pandas_loop(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """One DataFrame per site (degC, mm/d), pandas resample per indicator."""
    index = ds.indexes["time"]
    columns = {v: ds[v].values for v in ("tasmin", "tasmax", "pr")}
    out: dict[str, list[np.ndarray]] = {i: [] for i in SUITE}
    for s in range(ds.sizes["site"]):
        df = pd.DataFrame({v: a[s] for v, a in columns.items()}, index=index)
        tn, tx, pr = df["tasmin"], df["tasmax"], df["pr"]
        both = tn.notna() & tx.notna()
        out["freeze_thaw_cycles"].append(_count((tn <= 0) & (tx > 0), both, "YS"))
        recent = (pr >= 1.0).where(pr.notna()).rolling(2, min_periods=1).max() == 1
        out["wet_frost_days"].append(_count((tn <= 0) & recent, tn.notna() & pr.notna(), "YS"))
        out["hot_days"].append(_count(tx > 30.0, tx.notna(), "MS"))
        out["thermal_stress_days"].append(_count((tx - tn) >= 15.0, both, "YS"))
        out["max_1day_precipitation"].append(pr.resample("MS").max().to_numpy(dtype=float))
        out["max_5day_precipitation"].append(pr.rolling(5).sum().resample("MS").max().to_numpy(dtype=float))
    return {i: np.stack(v) for i, v in out.items()}


def check(name: str, got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    for i in SUITE:
        if i in EXACT:
            np.testing.assert_array_equal(got[i], expected[i], err_msg=f"{name}: {i}")
        else:
            np.testing.assert_allclose(got[i], expected[i], rtol=1e-5, err_msg=f"{name}: {i}")


def fire_and_spi(ds: xr.Dataset, site_days: int, quiet: bool = False) -> None:
    """FWI and SPI-3 through `indicators.compute` against xclim on the whole cube (`quiet`: no printout)."""
    noon = ds[["tas", "hurs", "sfcWind", "pr"]].rename(
        {v: f"{v}_noon" for v in ("tas", "hurs", "sfcWind", "pr")}
    )
    fwi, t_ours = timed(lambda: indicators.compute("fire_weather_index", noon).values)

    def xclim_fwi() -> np.ndarray:
        with np.errstate(invalid="ignore"):
            out = fire_weather_ufunc(
                tas=ds.tas.astype(float),  # float64 as `cffwis` computes
                pr=ds.pr.astype(float),
                hurs=ds.hurs.astype(float).clip(0, 100),
                sfcWind=convert_units_to(ds.sfcWind.astype(float), "km/h"),
                lat=ds.lat,
                ffmc0=xr.full_like(ds.lat, 85.0),
                dmc0=xr.full_like(ds.lat, 6.0),
                dc0=xr.full_like(ds.lat, 15.0),
                indexes=["FWI"],
                season_method=None,
            )
        return out["FWI"].values

    ref, t_xclim = timed(xclim_fwi)
    np.testing.assert_allclose(fwi, ref, rtol=1e-5, atol=1e-5, err_msg="fire_weather_index")
    if not quiet:
        report("fire_weather_index", site_days, t_ours, xclim=t_xclim)
    pr = ds.pr.astype(float)  # xclim fits in the input dtype, ours in float64: compare on float64 input
    spi, t_ours = timed(lambda: indicators.compute("drought_spi3", pr.to_dataset()).values)
    kwargs = {"dist": "gamma", "method": "APP", "fitkwargs": {"floc": 0}}
    ref, t_xclim = timed(
        lambda: (
            xci.standardized_precipitation_index(
                pr, freq="MS", window=3, cal_start="1991-01-01", cal_end="2020-12-31", **kwargs
            ).values
        )
    )
    np.testing.assert_allclose(spi, ref, rtol=1e-9, atol=1e-9, err_msg="drought_spi3")
    if not quiet:
        report("drought_spi3", site_days, t_ours, xclim=t_xclim)


def report(name: str, site_days: int, t_ours: float, **baselines: float) -> None:
    parts = [f"{name:<24} ours {t_ours:7.3f} s  {site_days / t_ours:12,.0f} site-days/s"]
    for base, t in baselines.items():
        parts.append(f"{base} {t:8.3f} s ({site_days / t:11,.0f} site-days/s) ratio {t / t_ours:6.1f}x")
    print("  ".join(parts), flush=True)


def run(n_sites: int, fire: bool = True) -> None:
    ds, t_gen = timed(lambda: build_cube(n_sites))
    site_days = ds.sizes["site"] * ds.sizes["time"]
    print(
        f"\n{n_sites:,} sites x {ds.sizes['time']:,} days = {site_days:,} site-days "
        f"(synthetic data{' tiled from 1,000 sites' if n_sites > 1000 else ''}; built in {t_gen:.0f} s)"
    )
    # numba kernels load (or compile) on first use, once per array layout: warm them on C-ordered rows
    warm = ds.isel(site=slice(0, 2 * 64 + 2))
    ours(warm), xclim_cube(warm)
    if fire:
        fire_and_spi(warm, 0, quiet=True)
    repeat = REPEAT_SMALL if n_sites <= 1000 else REPEAT
    timings = timed_together(
        {"ours": lambda: ours(ds), "xclim": lambda: xclim_cube(ds)}, repeat, runs={"ours": OURS_RUNS}
    )
    (got, t_ours), (ref, t_xclim) = timings["ours"], timings["xclim"]
    check("xclim", got, ref)
    del ref
    loop, t_loop = timed(lambda: pandas_loop(ds))
    check("pandas loop", got, loop)
    del loop
    report(f"reduction suite ({len(SUITE)})", site_days, t_ours, loop=t_loop, xclim=t_xclim)
    if fire:
        fire_and_spi(ds, site_days)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--skip-fire", action="store_true", help="skip FWI and SPI")
    args = parser.parse_args(argv)
    print(machine())
    for n in args.sites:
        run(n, fire=not args.skip_fire)


if __name__ == "__main__":
    main()
