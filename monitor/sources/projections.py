"""C3S climate projections → daily tas/tasmin/tasmax/pr/hurs per site, in the model's own calendar.

Three modes share one contract (`ProjectionSource`): ``demo`` (`SyntheticProjections`), ``local`` (CORDEX
or CMIP6 daily NetCDF/ZIP files) and ``remote`` (the CDS through cdsapi, `cds_common.CdsRetriever`:
bounded retries, time budget, failures mapped to our errors, raw downloads cached by request).

`fetch(sites, run, first_year, last_year)` returns dims ``(site, time)``, ``time`` cftime dates at 00:00 in
the model's calendar (``360_day``, ``noleap``/``365_day`` or ``standard``), variables in the units of the
observed ERA5-Land cube — ``tas``/``tasmin``/``tasmax`` degC, ``pr`` mm d-1, ``hurs`` % — converted from
the models' K and kg m-2 s-1 with xclim. Years without data are absent, not NaN-filled.

Splice: a model's ``historical`` experiment ends in 2005 (CORDEX, CMIP5-driven) or 2014 (CMIP6); years up
to then come from it, later years from the scenario run of the same model and member. Attribute
``splice`` says which years came from which experiment (e.g. ``historical 1981–2005 + rcp_4_5 2006–2010``).

Humidity: ``hurs`` is asked for first; when a model does not offer it (the CDS refuses the request, or no
local file holds it) ``huss`` is read and converted with `xclim.indices.relative_humidity` (from tas, huss
and the pressure of the ICAO standard atmosphere at the model's grid-cell orography when the file gives it,
else at sea level: 1013.25 hPa), which ``hurs.attrs["comment"]`` says.

Remote requests, with field names and values confirmed against public cdsapi scripts written from the CDS
"Show API request" form (icra/recreate ``fase2-descargar/python_api`` scripts for
``projections-cordex-domains-single-levels``; nachalca/FSE_extremos ``codigo/consulta-api-ejemplo.py`` and
others for ``projections-cmip6``) and the ECMWF "CDS API keywords" page (no area or regridding for CORDEX):

- CORDEX: ``domain=europe``, ``experiment`` (``historical`` | ``rcp_4_5`` | ``rcp_8_5``),
  ``horizontal_resolution=0_11_degree_x_0_11_degree``, ``temporal_resolution=daily_mean``, ``variable``
  (one per request: ``2m_air_temperature``, ``maximum_2m_temperature_in_the_last_24_hours``,
  ``minimum_2m_temperature_in_the_last_24_hours``, ``mean_precipitation_flux``, ``2m_relative_humidity`` or
  ``2m_surface_specific_humidity``), ``gcm_model``, ``rcm_model``, ``ensemble_member``, and
  ``start_year``/``end_year`` of one of the 5-year files the CDS holds (1951–1955 … 2001–2005,
  2006–2010 … 2096–2100). No ``area``: each answer is a ZIP of whole-domain EUR-11 NetCDF, cached on disk
  by request and shared by every site set and run that needs it;
- CMIP6: ``temporal_resolution=daily``, ``experiment`` (``historical`` | ``ssp2_4_5`` | ``ssp5_8_5`` …),
  ``variable`` (``near_surface_air_temperature``, ``daily_maximum_near_surface_air_temperature``,
  ``daily_minimum_near_surface_air_temperature``, ``precipitation``, ``near_surface_relative_humidity`` or
  ``near_surface_specific_humidity``), ``model``, ``year``/``month``/``day`` (5-year blocks) and ``area``
  [N, W, S, E] around the sites, snapped outwards to 5°.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr

from monitor.settings import Settings
from monitor.sources.base import (
    SourceError,
    SourceNotAvailableError,
    SourceRequestError,
)
from monitor.sources.cordex import (
    FileName,
    describe_dataset,
    floor_days,
    model_calendar,
    open_model_file,
    parse_file_name,
    reduce_model_grid,
)
from sites import SiteSet

log = logging.getLogger(__name__)

__all__ = [
    "CMIP6_DATASET",
    "CORDEX_DATASET",
    "LocalProjections",
    "ProjectionRun",
    "ProjectionSource",
    "RemoteProjections",
    "cmip6_request",
    "cordex_request",
    "make_projection_source",
]

CORDEX_DATASET = "projections-cordex-domains-single-levels"
CMIP6_DATASET = "projections-cmip6"
PRODUCTS = {"cordex": CORDEX_DATASET, "cmip6": CMIP6_DATASET}
#: Last year of the `historical` experiment: CMIP5-driven CORDEX runs end in 2005, CMIP6 in 2014.
HISTORICAL_END = {"cordex": 2005, "cmip6": 2014}
#: First year each dataset's historical experiment holds on the CDS.
HISTORICAL_START = {"cordex": 1950, "cmip6": 1850}
LAST_YEAR = 2100
#: Scenario experiments of each dataset on the CDS (CDS spelling).
SCENARIOS = {
    "cordex": ("rcp_2_6", "rcp_4_5", "rcp_8_5"),
    "cmip6": ("ssp1_2_6", "ssp2_4_5", "ssp3_7_0", "ssp5_8_5"),
}
DEFAULT_SCENARIOS = {"cordex": ("rcp_4_5", "rcp_8_5"), "cmip6": ("ssp2_4_5", "ssp5_8_5")}
DEFAULT_MEMBER = {"cordex": "r1i1p1", "cmip6": "r1i1p1f1"}
#: Default models (CDS spelling) when `HM_PROJECTIONS_MODELS` is empty.
DEFAULT_MODELS = {
    "cordex": (
        "mpi_m_mpi_esm_lr/smhi_rca4",
        "mpi_m_mpi_esm_lr/clmcom_clm_cclm4_8_17",
        "ichec_ec_earth/smhi_rca4@r12i1p1",
    ),
    "cmip6": ("mpi_esm1_2_lr", "ec_earth3", "cnrm_cm6_1"),
}

#: CDS request names of the variables, per dataset (``huss`` only when ``hurs`` is not offered).
REQUEST_VARIABLES = {
    "cordex": {
        "tas": "2m_air_temperature",
        "tasmax": "maximum_2m_temperature_in_the_last_24_hours",
        "tasmin": "minimum_2m_temperature_in_the_last_24_hours",
        "pr": "mean_precipitation_flux",
        "hurs": "2m_relative_humidity",
        "huss": "2m_surface_specific_humidity",
    },
    "cmip6": {
        "tas": "near_surface_air_temperature",
        "tasmax": "daily_maximum_near_surface_air_temperature",
        "tasmin": "daily_minimum_near_surface_air_temperature",
        "pr": "precipitation",
        "hurs": "near_surface_relative_humidity",
        "huss": "near_surface_specific_humidity",
    },
}
OUTPUTS = ("tas", "tasmin", "tasmax", "pr", "hurs")
#: Output variables: the names, units and meaning of the observed (ERA5-Land) cube.
VARIABLES: dict[str, dict[str, str]] = {
    "tas": {
        "units": "degC",
        "long_name": "Daily mean near-surface air temperature",
        "cell_methods": "time: mean",
    },
    "tasmin": {
        "units": "degC",
        "long_name": "Daily minimum near-surface air temperature",
        "cell_methods": "time: minimum",
    },
    "tasmax": {
        "units": "degC",
        "long_name": "Daily maximum near-surface air temperature",
        "cell_methods": "time: maximum",
    },
    "pr": {"units": "mm d-1", "long_name": "Daily precipitation", "cell_methods": "time: mean"},
    "hurs": {
        "units": "%",
        "long_name": "Daily mean near-surface relative humidity",
        "cell_methods": "time: mean",
    },
}
C3S_ATTRIBUTION = "Generated using Copernicus Climate Change Service information {year}."
CORDEX_ACKNOWLEDGEMENT = (
    "We acknowledge the World Climate Research Programme's Working Group on Regional Climate and Working "
    "Group on Coupled Modelling, the Earth System Grid Federation, and the climate modelling groups "
    "({model}) for producing and making available their model output (CORDEX, {domain})."
)
CMIP6_ACKNOWLEDGEMENT = (
    "We acknowledge the World Climate Research Programme, which coordinated and promoted CMIP6 through its "
    "Working Group on Coupled Modelling, the climate modelling group ({model}) for producing and making "
    "available their model output, and the Earth System Grid Federation."
)
#: ICAO standard atmosphere: sea-level pressure (Pa) and the exponent law of the troposphere.
P0, LAPSE_FACTOR, EXPONENT = 101325.0, 2.25577e-5, 5.25588


# --- the interface ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectionRun:
    """One simulation: dataset, model (CDS spelling), scenario (CDS spelling) and ensemble member."""

    dataset: str  # "cordex" | "cmip6" | "synthetic"
    model: str  # CORDEX "<gcm>/<rcm>", CMIP6 "<model>"
    scenario: str  # "rcp_4_5" | "rcp_8_5" | "ssp2_4_5" | "ssp5_8_5"
    member: str = "r1i1p1"


class ProjectionSource(Protocol):
    """A source of daily projected climate per site, one run at a time."""

    mode: str

    def runs(self) -> list[ProjectionRun]: ...

    def fetch(self, sites: SiteSet, run: ProjectionRun, first_year: int, last_year: int) -> xr.Dataset: ...


def make_projection_source(settings: Settings) -> ProjectionSource:
    """The projections source of the configured mode (`HM_PROJECTIONS_MODE`)."""
    mode = settings.projections_mode
    if mode == "demo":
        from monitor.sources.synthetic_projections import SyntheticProjections

        return SyntheticProjections(settings)
    if mode == "local":
        return LocalProjections(settings)
    if mode == "remote":
        return RemoteProjections(settings)
    raise SourceNotAvailableError(f"unknown projections mode {mode!r}: demo | local | remote")


# --- configuration ---------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def configured_runs(settings: Settings, models: Iterable[str] | None = None) -> list[ProjectionRun]:
    """The (model, scenario) runs of the settings; `models` are used when the setting is empty."""
    dataset = settings.projections_dataset
    names = _split(settings.projections_models) or list(models or DEFAULT_MODELS[dataset])
    scenarios = _split(settings.projections_scenarios) or list(DEFAULT_SCENARIOS[dataset])
    known = SCENARIOS
    bad = [s for s in scenarios if s not in known[dataset]]
    if bad:
        raise SourceRequestError(
            f"unknown {dataset} scenario(s) {', '.join(bad)} in HM_PROJECTIONS_SCENARIOS; known: "
            f"{', '.join(known[dataset])}"
        )
    runs = []
    for name in names:
        model, _, member = name.partition("@")
        if dataset == "cordex" and model.count("/") != 1:
            raise SourceRequestError(
                f"CORDEX model {name!r} must be '<gcm>/<rcm>' (e.g. mpi_m_mpi_esm_lr/smhi_rca4)"
            )
        if dataset == "cmip6" and "/" in model:
            raise SourceRequestError(f"CMIP6 model {name!r} must be one model id (e.g. mpi_esm1_2_lr)")
        runs.extend(ProjectionRun(dataset, model, s, member or DEFAULT_MEMBER[dataset]) for s in scenarios)
    return runs


def experiment_years(dataset: str, scenario: str, first: int, last: int) -> list[tuple[str, int, int]]:
    """(experiment, first, last) pieces of the years `first`..`last`: historical years from the historical
    experiment, later years from the scenario (empty pieces left out)."""
    end = HISTORICAL_END[dataset]
    pieces = [
        ("historical", max(first, HISTORICAL_START[dataset]), min(last, end)),
        (scenario, max(first, end + 1), min(last, LAST_YEAR)),
    ]
    return [p for p in pieces if p[1] <= p[2]]


def year_chunks(first: int, last: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The 5-year files (…, 2001–2005, 2006–2010, …, clipped to [lo, hi]) that cover `first`..`last`."""
    out = []
    start = first - (first - 1) % 5
    while start <= last:
        out.append((max(start, lo), min(start + 4, hi)))
        start += 5
    return out


def _splice(pieces: Sequence[tuple[str, int, int]]) -> str:
    return " + ".join(f"{exp} {a}–{b}" for exp, a, b in pieces)


def attribution(dataset: str, model: str, year: int | None = None) -> str:
    """The C3S licence sentence plus the modelling groups' acknowledgement the dataset asks for."""
    year = year or datetime.now(UTC).year
    head = C3S_ATTRIBUTION.format(year=year)
    if dataset == "cordex":
        gcm, _, rcm = model.partition("/")
        return f"{head} {CORDEX_ACKNOWLEDGEMENT.format(model=f'{gcm} driving {rcm}', domain='EUR-11')}"
    return f"{head} {CMIP6_ACKNOWLEDGEMENT.format(model=model)}"


# --- requests --------------------------------------------------------------------------------------------


def cordex_request(
    run: ProjectionRun, experiment: str, variable: str, start: int, end: int
) -> dict[str, Any]:
    """The CDS request of one 5-year EUR-11 daily file of one variable (CDS name)."""
    gcm, _, rcm = run.model.partition("/")
    return {
        "domain": "europe",
        "experiment": experiment,
        "horizontal_resolution": "0_11_degree_x_0_11_degree",
        "temporal_resolution": "daily_mean",
        "variable": [variable],
        "gcm_model": gcm,
        "rcm_model": rcm,
        "ensemble_member": run.member,
        "start_year": [str(start)],
        "end_year": [str(end)],
    }


def cmip6_request(
    run: ProjectionRun, experiment: str, variable: str, start: int, end: int, area: list[float]
) -> dict[str, Any]:
    """The CDS request of `start`..`end` daily values of one variable (CDS name) over `area` [N, W, S, E]."""
    return {
        "temporal_resolution": "daily",
        "experiment": experiment,
        "variable": variable,
        "model": run.model,
        "year": [str(y) for y in range(start, end + 1)],
        "month": [f"{m:02d}" for m in range(1, 13)],
        "day": [f"{d:02d}" for d in range(1, 32)],
        "area": area,
    }


def snapped_area(sites: SiteSet, step: float = 5.0, pad: float = 1.0) -> list[float]:
    """[N, W, S, E] of the sites padded by `pad` degrees, snapped outwards to multiples of `step`° (site sets
    in the same region share requests, hence cache entries)."""
    west, south, east, north = sites.bounds()
    return [
        float(min(np.ceil((north + pad) / step) * step, 90.0)),
        float(max(np.floor((west - pad) / step) * step, -180.0)),
        float(max(np.floor((south - pad) / step) * step, -90.0)),
        float(min(np.ceil((east + pad) / step) * step, 180.0)),
    ]


def _check_offered(inputs: dict[str, Any], request: dict[str, Any], dataset: str) -> None:
    """Refuse early, with the offered values, a request value the live schema does not list."""
    for key, value in request.items():
        schema = (inputs.get(key) or {}).get("schema") or {}
        allowed = schema.get("enum") or (schema.get("items") or {}).get("enum")
        if not allowed or key in ("year", "month", "day"):
            continue
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if str(v) not in allowed]
        if bad:
            shown = ", ".join(map(str, allowed[:30])) + (" …" if len(allowed) > 30 else "")
            raise SourceRequestError(f"{dataset}: {key}={bad[0]!r} is not offered; offered: {shown}")


# --- from files to the cube ------------------------------------------------------------------------------


@dataclass
class _Pieces:
    """Site series read from model files, per variable, before the cube is assembled."""

    series: dict[str, list[xr.DataArray]]
    calendars: set[str]
    versions: set[str]
    extraction: np.ndarray | None = None
    orography: xr.DataArray | None = None

    @classmethod
    def empty(cls) -> _Pieces:
        return cls({}, set(), set())


def _read(
    files: Iterable[Path],
    sites: SiteSet,
    years: tuple[int, int],
    wanted: Sequence[str],
    into: _Pieces,
    members: set[str] | None = None,
) -> None:
    """Reduce the `wanted` variables of the files (or of the named ZIP `members`) in `years` to the sites."""
    for path in files:
        with open_model_file(path) as datasets:
            for name, ds in datasets:
                if members is not None and name not in members:
                    continue
                if "orog" in ds.data_vars and into.orography is None and "time" not in ds["orog"].dims:
                    into.orography = reduce_model_grid(ds, sites, ["orog"])["orog"]
                present = [v for v in wanted if v in ds.data_vars and "time" in ds[v].dims]
                if not present:
                    continue
                year = np.array([t.year for t in ds["time"].values])
                keep = np.flatnonzero((year >= years[0]) & (year <= years[1]))
                if keep.size == 0:
                    continue
                reduced = reduce_model_grid(ds.isel(time=keep), sites, present)
                reduced = reduced.assign_coords(time=floor_days(reduced["time"].values))
                into.calendars.add(model_calendar(ds))
                version = (
                    ds.attrs.get("rcm_version_id")
                    or ds.attrs.get("version")
                    or ds.attrs.get("product_version")
                )
                if version:
                    into.versions.add(str(version))
                if into.extraction is None:
                    into.extraction = reduced["extraction"].values
                for v in present:
                    into.series.setdefault(v, []).append(reduced[v].load())


def _joined(pieces: list[xr.DataArray]) -> xr.DataArray:
    """Pieces of one variable along time, sorted, the first of duplicate days kept."""
    da = xr.concat(pieces, dim="time") if len(pieces) > 1 else pieces[0]
    index = da.indexes["time"]
    da = da.isel(time=np.flatnonzero(~index.duplicated(keep="first")))
    return da.sortby("time")


def _hurs_from_huss(tas_k: xr.DataArray, huss: xr.DataArray, orography: xr.DataArray | None) -> xr.DataArray:
    """Relative humidity (%) from specific humidity and temperature at the standard-atmosphere pressure of
    the cell orography (sea level when unknown), with xclim."""
    from xclim.indices import relative_humidity

    z = orography.fillna(0.0).clip(min=0.0) if orography is not None else xr.zeros_like(huss.isel(time=0))
    ps = (P0 * (1.0 - LAPSE_FACTOR * z) ** EXPONENT).broadcast_like(huss).assign_attrs(units="Pa")
    hurs = relative_humidity(
        tas=tas_k.assign_attrs(units=tas_k.attrs.get("units", "K")),
        huss=huss.assign_attrs(units=huss.attrs.get("units", "1")),
        ps=ps,
        invalid_values="clip",
    )
    where = "the model's grid-cell orography" if orography is not None else "sea level (1013.25 hPa)"
    return hurs.assign_attrs(
        comment=f"derived from the model's specific humidity (huss) and tas with xclim relative_humidity, "
        f"at the ICAO standard-atmosphere pressure of {where}: the model offers no relative humidity"
    )


def assemble(
    pieces: _Pieces,
    sites: SiteSet,
    run: ProjectionRun,
    splice: Sequence[tuple[str, int, int]],
    extra_attrs: dict[str, str] | None = None,
) -> xr.Dataset:
    """The contract cube from the site series of every piece (units converted, humidity derived)."""
    from xclim.core.units import convert_units_to

    if not pieces.series:
        raise SourceError(
            f"{run.dataset} {run.model} {run.scenario} ({run.member}): no data for the years "
            f"{splice[0][1] if splice else '?'}–{splice[-1][2] if splice else '?'}"
        )
    if len(pieces.calendars) > 1:
        raise SourceError(
            f"{run.model}: files in different calendars ({', '.join(sorted(pieces.calendars))})"
        )
    series = {name: _joined(parts) for name, parts in pieces.series.items()}
    out: dict[str, xr.DataArray] = {}
    for name in OUTPUTS:
        if name == "hurs" and "hurs" not in series and {"huss", "tas"} <= set(series):
            tas, huss = xr.align(series["tas"], series["huss"], join="inner")
            da = _hurs_from_huss(tas, huss, pieces.orography)
        elif name in series:
            da = series[name]
        else:
            continue
        units = da.attrs.get("units") or (
            "K" if name.startswith("tas") else "kg m-2 s-1" if name == "pr" else "%"
        )
        converted = convert_units_to(da.assign_attrs(units=units), VARIABLES[name]["units"], context="hydro")
        attrs = {**VARIABLES[name], "original_units": units}
        if "comment" in da.attrs:
            attrs["comment"] = da.attrs["comment"]
        out[name] = converted.astype(np.float32).transpose("site", "time").assign_attrs(attrs)
    if not out:
        raise SourceError(f"{run.model} {run.scenario}: none of {', '.join(OUTPUTS)} in the files")
    cube = xr.Dataset(out)
    ids = np.array(sites.ids, dtype=object)
    calendar = next(iter(pieces.calendars))
    lon, lat = sites.centroids().T
    cube = cube.assign_coords(
        site=("site", ids, {"long_name": "site id"}),
        lon=("site", lon, {"units": "degrees_east"}),
        lat=("site", lat, {"units": "degrees_north"}),
    )
    if pieces.extraction is not None:
        cube = cube.assign_coords(
            extraction=(
                "site",
                np.asarray(pieces.extraction, dtype=object),
                {"long_name": "mean | nearest | none | outside"},
            )
        )
    cube["time"].attrs.update(standard_name="time", long_name="time", calendar=calendar)
    years = sorted({t.year for t in cube["time"].values})
    present = [
        (exp, max(a, years[0]), min(b, years[-1])) for exp, a, b in splice if a <= years[-1] and b >= years[0]
    ]
    cube.attrs = {
        "title": f"{run.dataset.upper()} daily projections ({run.model}, {run.scenario}) at heritage sites",
        "source": "projections",
        "dataset": run.dataset,
        "model": run.model,
        "scenario": run.scenario,
        "member": run.member,
        "calendar": calendar,
        "product": PRODUCTS[run.dataset],
        "product_version": "; ".join(sorted(pieces.versions)) or "unknown",
        "synthetic": False,
        "attribution": attribution(run.dataset, run.model),
        "splice": _splice(present),
        "Conventions": "CF-1.8",
        **(extra_attrs or {}),
    }
    return cube


# --- remote ----------------------------------------------------------------------------------------------


class RemoteProjections:
    """C3S projections from the CDS (see the module docstring for the requests)."""

    mode = "remote"

    def __init__(self, settings: Settings) -> None:
        from monitor.sources.cds_common import CDS, CdsRetriever

        self.settings = settings
        self.dataset = settings.projections_dataset
        self.retriever = CdsRetriever(settings, "projections", CDS)
        self._runs = configured_runs(settings)

    def runs(self) -> list[ProjectionRun]:
        """The configured (model, scenario) runs."""
        return list(self._runs)

    def fetch(self, sites: SiteSet, run: ProjectionRun, first_year: int, last_year: int) -> xr.Dataset:
        """Daily site values of `run` for the years `first_year`..`last_year` (see the module docstring)."""
        from monitor.sources.cds_common import Deadline

        if run.dataset != self.dataset:
            raise SourceRequestError(
                f"run of {run.dataset!r} asked from the {self.dataset} projections source"
            )
        if run.scenario not in SCENARIOS[self.dataset]:
            known = ", ".join(SCENARIOS[self.dataset])
            raise SourceRequestError(f"unknown {self.dataset} scenario {run.scenario!r}; known: {known}")
        if first_year > last_year:
            raise SourceRequestError(f"first year {first_year} is after last year {last_year}")
        deadline = Deadline(self.settings.cds_time_budget_seconds)
        splice = experiment_years(self.dataset, run.scenario, first_year, last_year)
        area = snapped_area(sites) if self.dataset == "cmip6" else None
        pieces = _Pieces.empty()
        requests: list[dict[str, Any]] = []
        retrieved: list[str] = []
        for experiment, a, b in splice:
            for name in ("tas", "tasmin", "tasmax", "pr", "hurs"):
                got = self._variable(run, experiment, name, a, b, area, deadline)
                if got is None and name == "hurs":
                    log.info(
                        "%s %s: no relative humidity offered, using specific humidity", run.model, experiment
                    )
                    got = self._variable(run, experiment, "huss", a, b, area, deadline)
                if got is None:
                    raise SourceRequestError(
                        f"{PRODUCTS[self.dataset]}: {run.model} {experiment} offers no {name} for {a}–{b}"
                    )
                for raw in got:
                    requests.append(raw.request)
                    retrieved.append(raw.retrieved_at)
                    _read([raw.path], sites, (a, b), [name, "huss", "orog"], pieces)
        return assemble(
            pieces,
            sites,
            run,
            splice,
            {
                "request": json.dumps(requests, sort_keys=True, separators=(",", ":")),
                "retrieved_at": max(retrieved) if retrieved else "",
            },
        )

    def _variable(
        self,
        run: ProjectionRun,
        experiment: str,
        name: str,
        a: int,
        b: int,
        area: list[float] | None,
        deadline: Any,
    ) -> list[Any] | None:
        """The cached/downloaded files of one variable over `a`..`b`; None when the CDS does not offer it
        for this model (only tolerated for the humidity variables)."""
        ds_name = PRODUCTS[self.dataset]
        variable = REQUEST_VARIABLES[self.dataset][name]
        lo, hi = (HISTORICAL_START[self.dataset], HISTORICAL_END[self.dataset])
        if experiment != "historical":
            lo, hi = HISTORICAL_END[self.dataset] + 1, LAST_YEAR
        out = []
        for start, end in year_chunks(a, b, lo, hi):
            if self.dataset == "cordex":
                request = cordex_request(run, experiment, variable, start, end)
            else:
                request = cmip6_request(run, experiment, variable, start, end, area)
            try:
                out.append(self.retriever.retrieve(ds_name, request, deadline, adapt=self._adapt(ds_name)))
            except SourceRequestError:
                if name in ("hurs", "huss") and not out:
                    return None
                raise
        return out

    def _adapt(self, dataset: str):
        def check(request: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
            _check_offered(inputs, request, dataset)
            return request

        return check


# --- local -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One model file (or ZIP member) found under `HM_PROJECTIONS_PATH`."""

    path: Path
    member_name: str | None
    facts: FileName


class LocalProjections:
    """C3S projections from CORDEX/CMIP6 daily files under `HM_PROJECTIONS_PATH`."""

    mode = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dataset = settings.projections_dataset
        self._catalogue: list[_Entry] | None = None

    def catalogue(self) -> list[_Entry]:
        """Every model file found, with its model, experiment, member, variable and years."""
        if self._catalogue is None:
            self._catalogue = discover(self.settings.projections_path)
        return self._catalogue

    def runs(self) -> list[ProjectionRun]:
        """The (model, scenario) runs in the files, restricted to the configured models and scenarios."""
        found = sorted(
            {
                (e.facts.model, e.facts.experiment, e.facts.member)
                for e in self.catalogue()
                if e.facts.dataset == self.dataset and e.facts.experiment != "historical"
            }
        )
        if not found:
            raise SourceNotAvailableError(
                f"HM_PROJECTIONS_PATH={self.settings.projections_path}: no {self.dataset} scenario files"
            )
        models = {m.partition("@")[0] for m in _split(self.settings.projections_models)}
        scenarios = set(_split(self.settings.projections_scenarios))
        return [
            ProjectionRun(self.dataset, m, s, member)
            for m, s, member in found
            if (not models or m in models) and (not scenarios or s in scenarios)
        ]

    def fetch(self, sites: SiteSet, run: ProjectionRun, first_year: int, last_year: int) -> xr.Dataset:
        """Daily site values of `run` for the years `first_year`..`last_year` from the local files."""
        mine = [
            e
            for e in self.catalogue()
            if e.facts.dataset == run.dataset and e.facts.model == run.model and e.facts.member == run.member
        ]
        if not mine:
            known = sorted({e.facts.model for e in self.catalogue()})
            raise SourceRequestError(
                f"no local files of model {run.model!r} ({run.member}); found: {', '.join(known) or 'none'}"
            )
        if not any(e.facts.experiment == run.scenario for e in mine):
            known = sorted({e.facts.experiment for e in mine})
            raise SourceRequestError(
                f"no local files of {run.model} under {run.scenario!r}; found: {', '.join(known)}"
            )
        splice = experiment_years(run.dataset, run.scenario, first_year, last_year)
        pieces = _Pieces.empty()
        used: list[str] = []
        for experiment, a, b in splice:
            chosen = [
                e
                for e in mine
                if e.facts.experiment == experiment and e.facts.first_year <= b and e.facts.last_year >= a
            ]
            names = {e.facts.variable for e in chosen}
            wanted = ["tas", "tasmin", "tasmax", "pr", "hurs" if "hurs" in names else "huss", "orog"]
            chosen = [e for e in chosen if e.facts.variable in wanted]
            for path in dict.fromkeys(e.path for e in chosen):
                members = {e.member_name for e in chosen if e.path == path and e.member_name}
                _read([path], sites, (a, b), wanted, pieces, members or None)
                used.append(path.name)
        mtimes = [datetime.fromtimestamp(e.path.stat().st_mtime, UTC) for e in mine]
        return assemble(
            pieces,
            sites,
            run,
            splice,
            {
                "files": ", ".join(dict.fromkeys(used)),
                "retrieved_at": max(mtimes).isoformat(timespec="seconds"),
            },
        )


def discover(path: Path | None) -> list[_Entry]:
    """The model files under `path`: facts from the ESGF file names, else from the global attributes."""
    from monitor.sources.normalise import file_kind, iter_files

    if path is None:
        raise SourceNotAvailableError(
            "projections in local mode need HM_PROJECTIONS_PATH (a folder of files)"
        )
    path = Path(path)
    if not path.exists():
        raise SourceNotAvailableError(f"HM_PROJECTIONS_PATH={path} does not exist")
    entries: list[_Entry] = []
    for file in iter_files(path):
        kind = file_kind(file)
        if kind not in ("netcdf", "zip"):
            continue
        facts = parse_file_name(file.name) if kind == "netcdf" else None
        if facts is not None:
            entries.append(_Entry(file, None, facts))
            continue
        try:
            with open_model_file(file) as datasets:
                for name, ds in datasets:
                    facts = parse_file_name(name) or describe_dataset(ds, [*OUTPUTS, "huss"])
                    if facts is not None:
                        entries.append(_Entry(file, name if kind == "zip" else None, facts))
        except Exception as exc:  # an unreadable file is skipped, not fatal
            log.warning("%s: skipped, not readable (%s)", file.name, exc)
    if not entries:
        raise SourceNotAvailableError(f"HM_PROJECTIONS_PATH={path}: no CORDEX/CMIP6 daily file found")
    return entries


def from_gregorian(ds: xr.Dataset, calendar: str, first: int, last: int) -> xr.Dataset:
    """A Gregorian daily cube of the whole years `first`..`last` in `calendar`, with cftime dates.

    `360_day`: day i of a model year takes the Gregorian day floor(i · days-in-year / 360) of that year
    (5 or 6 days dropped evenly); `noleap`/`365_day`: 29 February dropped; `standard`: every day kept.
    (Like `Dataset.convert_calendar(..., align_on="year")`, but an index computation: 50× faster.)
    """
    target = xr.date_range(
        f"{first:04d}-01-01",
        f"{last:04d}-12-31" if calendar != "360_day" else f"{last:04d}-12-30",
        freq="D",
        calendar=calendar,
        use_cftime=True,
    )
    years = np.arange(first, last + 1)
    lengths = np.array([366 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 365 for y in years])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    t_year = np.fromiter((t.year for t in target), dtype=np.int64, count=target.size) - first
    t_doy = np.fromiter((t.dayofyr for t in target), dtype=np.int64, count=target.size) - 1
    if calendar == "360_day":
        src = offsets[t_year] + (t_doy * lengths[t_year]) // 360
    elif calendar in ("noleap", "365_day"):
        leap = lengths[t_year] == 366
        src = offsets[t_year] + t_doy + (leap & (t_doy >= 59))  # skip 29 February (day 60 of a leap year)
    elif calendar in ("standard", "gregorian", "proleptic_gregorian"):
        src = np.arange(target.size)
    else:  # all_leap/366_day and julian would need their own day mapping
        raise ValueError(f"calendar {calendar!r} is not supported; expected 360_day, noleap or standard")
    out = ds.isel(time=src).assign_coords(time=target)
    out["time"].attrs.update(standard_name="time", long_name="time", calendar=calendar)
    return out
