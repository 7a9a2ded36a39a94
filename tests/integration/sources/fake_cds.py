"""A fake Copernicus data store (CDS / ADS / EWDS share one API) on 127.0.0.1, speaking the protocol that
cdsapi 0.7.7 (ecmwf-datastores-client 0.5 `LegacyClient`) uses with a personal access token:

    GET  {url}/catalogue/v1/messages                          (client construction, no key needed)
    GET  {url}/catalogue/v1/collections/{dataset}             (licence links, for check())
    GET  {url}/catalogue/v1/vocabularies/licences             (licence ids and revisions)
    GET  {url}/profiles/v1/account/licences                   (licences the user accepted; key needed)
    GET  {url}/retrieve/v1/processes/{dataset}                (the live request schema, OGC "inputs")
    POST {url}/retrieve/v1/processes/{dataset}/execution  {"inputs": request} -> 201 job, link rel=monitor
    GET  {url}/retrieve/v1/jobs/{id}?log=True&request=True  accepted -> running -> successful | failed
    GET  {url}/retrieve/v1/jobs/{id}/results  {"asset": {"value": {"href", "file:size", "type"}}}
    HEAD / GET  {href}                                    the file, fetched WITHOUT the key

The key travels in the header PRIVATE-TOKEN. Refusals are RFC 7807 problems with `title` and `detail`, as
the CADS processing API sends them (401 authentication, 403 "required licences not accepted", 400 invalid
request, 400 "The job has failed" from the results of a failed job).

The fake validates each request against a per-dataset schema (keys, enumerations, dates, area), records every
call and any protocol violation (missing token on the API, token sent to the download host) in `problems`,
and serves files made by a `responder(dataset, inputs) -> bytes`. `mode` switches failures on:
``unauthorized``, ``licence``, ``failed_job``, ``stuck`` (the job never ends), ``error500``, ``error429``,
``truncate`` (the download stops half way), ``size_mismatch`` (``file:size`` larger than the file).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

LICENCE = {
    "id": "licence-to-use-copernicus-products",
    "label": "Licence to use Copernicus Products",
    "revision": 12,
}

_MONTHS = [f"{m:02d}" for m in range(1, 13)]
_DAYS = [f"{d:02d}" for d in range(1, 32)]
_HOURS = [f"{h:02d}:00" for h in range(24)]
_YEARS = [str(y) for y in range(1940, 2031)]


def _enum(values: list[str], array: bool = True) -> dict[str, Any]:
    items = {"type": "string", "enum": values}
    return {"type": "array", "items": items} if array else items


AREA = {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}}

#: Request schemas per dataset, in the OGC form the processing API publishes (`inputs` of the process).
SCHEMAS: dict[str, dict[str, dict[str, Any]]] = {
    "reanalysis-era5-land": {
        "variable": _enum(
            [
                "2m_dewpoint_temperature",
                "2m_temperature",
                "10m_u_component_of_wind",
                "10m_v_component_of_wind",
                "total_precipitation",
                "surface_pressure",
            ]
        ),
        "year": _enum(_YEARS),
        "month": _enum(_MONTHS),
        "day": _enum(_DAYS),
        "time": _enum(_HOURS),
        "area": AREA,
        "data_format": _enum(["grib", "netcdf"], array=False),
        "download_format": _enum(["unarchived", "zip"], array=False),
    },
    "cams-europe-air-quality-reanalyses": {
        "variable": _enum(
            [
                "nitrogen_dioxide",
                "ozone",
                "particulate_matter_10um",
                "particulate_matter_2.5um",
                "sulphur_dioxide",
            ]
        ),
        "model": _enum(["ensemble", "chimere", "emep"]),
        "level": _enum(["0"]),
        "type": _enum(["validated_reanalysis", "interim_reanalysis"]),
        "year": _enum(_YEARS),
        "month": _enum(_MONTHS),
        "area": AREA,
        "data_format": _enum(["netcdf_zip"], array=False),
    },
    "cems-fire-historical-v1": {
        "product_type": _enum(["reanalysis", "ensemble_members"], array=False),
        "variable": _enum(["fire_weather_index", "build_up_index", "drought_code"]),
        "dataset_type": _enum(["consolidated_dataset", "intermediate_dataset"], array=False),
        "system_version": _enum(["4_1"]),
        "year": _enum(_YEARS),
        "month": _enum(_MONTHS),
        "day": _enum(_DAYS),
        "grid": _enum(["original_grid", "0.25/0.25", "0.5/0.5"], array=False),
        "area": AREA,
        "data_format": _enum(["grib", "netcdf"], array=False),
    },
    "cems-glofas-historical": {
        "system_version": _enum(["version_4_0", "version_3_1"]),
        "hydrological_model": _enum(["lisflood"]),
        "product_type": _enum(["consolidated", "intermediate"]),
        "variable": _enum(["river_discharge_in_the_last_24_hours"]),
        "hyear": _enum(_YEARS),
        "hmonth": _enum(_MONTHS),
        "hday": _enum(_DAYS),
        "area": AREA,
        "data_format": _enum(["grib2", "netcdf"], array=False),
        "download_format": _enum(["unarchived", "zip"], array=False),
    },
}

SCHEMAS["cems-glofas-forecast"] = {
    "system_version": _enum(["operational"]),
    "hydrological_model": _enum(["lisflood"]),
    "product_type": _enum(["control_forecast", "ensemble_perturbed_forecasts"]),
    "variable": _enum(["river_discharge_in_the_last_24_hours"]),
    "year": _enum(_YEARS),
    "month": _enum(_MONTHS),
    "day": _enum(_DAYS),
    "leadtime_hour": _enum([str(24 * k) for k in range(1, 31)]),
    "area": AREA,
    "data_format": _enum(["grib2", "netcdf"], array=False),
    "download_format": _enum(["unarchived", "zip"], array=False),
}

SCHEMAS["cams-europe-air-quality-forecasts"] = {
    "variable": SCHEMAS["cams-europe-air-quality-reanalyses"]["variable"],
    "model": _enum(["ensemble", "chimere", "emep"]),
    "level": _enum(["0", "50", "250"]),
    "date": {"type": "array", "items": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d/\d{4}-\d\d-\d\d$"}},
    "type": _enum(["forecast", "analysis"]),
    "time": _enum(["00:00", "12:00"]),
    "leadtime_hour": _enum([str(h) for h in range(0, 121)]),
    "area": AREA,
    "data_format": _enum(["netcdf", "netcdf_zip", "grib"], array=False),
}

_PROJECTION_YEARS = [str(y) for y in range(1850, 2101)]
SCHEMAS["projections-cordex-domains-single-levels"] = {
    "domain": _enum(["europe", "mediterranean"], array=False),
    "experiment": _enum(["evaluation", "historical", "rcp_2_6", "rcp_4_5", "rcp_8_5"], array=False),
    "horizontal_resolution": _enum(["0_11_degree_x_0_11_degree", "0_44_degree_x_0_44_degree"], array=False),
    "temporal_resolution": _enum(["daily_mean", "monthly_mean", "seasonal_mean", "fixed"], array=False),
    "variable": _enum(
        [
            "2m_air_temperature",
            "maximum_2m_temperature_in_the_last_24_hours",
            "minimum_2m_temperature_in_the_last_24_hours",
            "mean_precipitation_flux",
            "2m_relative_humidity",
            "2m_surface_specific_humidity",
            "surface_pressure",
            "orography",
        ]
    ),
    "gcm_model": _enum(
        ["mpi_m_mpi_esm_lr", "ichec_ec_earth", "cnrm_cerfacs_cnrm_cm5", "mohc_hadgem2_es"], array=False
    ),
    "rcm_model": _enum(["smhi_rca4", "clmcom_clm_cclm4_8_17", "knmi_racmo22e", "dmi_hirham5"], array=False),
    "ensemble_member": _enum(["r1i1p1", "r2i1p1", "r3i1p1", "r12i1p1"], array=False),
    "start_year": _enum(_PROJECTION_YEARS),
    "end_year": _enum(_PROJECTION_YEARS),
}
SCHEMAS["projections-cmip6"] = {
    "temporal_resolution": _enum(["daily", "monthly"], array=False),
    "experiment": _enum(["historical", "ssp1_2_6", "ssp2_4_5", "ssp3_7_0", "ssp5_8_5"], array=False),
    "variable": _enum(
        [
            "near_surface_air_temperature",
            "daily_maximum_near_surface_air_temperature",
            "daily_minimum_near_surface_air_temperature",
            "precipitation",
            "near_surface_relative_humidity",
            "near_surface_specific_humidity",
        ],
        array=False,
    ),
    "model": _enum(["mpi_esm1_2_lr", "ec_earth3", "cnrm_cm6_1", "ipsl_cm6a_lr"], array=False),
    "year": _enum(_PROJECTION_YEARS),
    "month": _enum(_MONTHS),
    "day": _enum(_DAYS),
    "area": AREA,
}

#: The other published shape of the GloFAS historical schema (year/month/day, renamed variable).
GLOFAS_NEW_SCHEMA = {
    **{
        k: v
        for k, v in SCHEMAS["cems-glofas-historical"].items()
        if k not in ("hyear", "hmonth", "hday", "variable")
    },
    "variable": _enum(["average_river_discharge_in_the_last_24_hours"]),
    "year": _enum(_YEARS),
    "month": _enum(_MONTHS),
    "day": _enum(_DAYS),
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "projections-cordex-domains-single-levels": (
        "domain",
        "experiment",
        "horizontal_resolution",
        "temporal_resolution",
        "variable",
        "gcm_model",
        "rcm_model",
        "ensemble_member",
        "start_year",
        "end_year",
    ),
    "projections-cmip6": ("temporal_resolution", "experiment", "variable", "model", "year", "month", "day"),
    "cams-europe-air-quality-forecasts": (
        "variable",
        "model",
        "level",
        "date",
        "type",
        "time",
        "leadtime_hour",
        "data_format",
    ),
    "cems-glofas-forecast": (
        "product_type",
        "variable",
        "year",
        "month",
        "day",
        "leadtime_hour",
        "data_format",
    ),
    "reanalysis-era5-land": ("variable", "year", "month", "day", "time", "data_format"),
    "cams-europe-air-quality-reanalyses": (
        "variable",
        "model",
        "level",
        "type",
        "year",
        "month",
        "data_format",
    ),
    "cems-fire-historical-v1": (
        "product_type",
        "variable",
        "system_version",
        "year",
        "month",
        "day",
        "data_format",
    ),
    "cems-glofas-historical": (
        "system_version",
        "hydrological_model",
        "product_type",
        "variable",
        "data_format",
    ),
}


def validate(dataset: str, inputs: dict[str, Any], schema: dict[str, dict[str, Any]]) -> str | None:
    """Why the request is invalid for the schema, or None (as the store's constraints would say)."""
    for key in REQUIRED.get(dataset, ()):
        if key not in inputs:
            return f"missing mandatory input {key!r}"
    for key, value in inputs.items():
        spec = schema.get(key)
        if spec is None:
            return f"unknown input {key!r}"
        if key == "area":
            if not (
                isinstance(value, list) and len(value) == 4 and all(isinstance(v, int | float) for v in value)
            ):
                return "area must be [N, W, S, E]"
            n, w, s, e = value
            if not (-90 <= s < n <= 90 and -180 <= w < e <= 360):
                return f"invalid area {value}"
            continue
        allowed = spec.get("enum") or spec.get("items", {}).get("enum")
        values = value if isinstance(value, list) else [value]
        if spec.get("type") != "array" and isinstance(value, list) and len(value) != 1:
            return f"{key} takes one value"
        if allowed is not None:
            bad = [v for v in values if str(v) not in allowed]
            if bad:
                return f"invalid value(s) {bad} for {key!r}"
    if dataset == "cems-fire-historical-v1" and inputs.get("grid") == "original_grid" and "area" in inputs:
        return "area sub-selection is not available on the original grid"
    return None


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None


@dataclass
class Job:
    id: str
    dataset: str
    inputs: dict[str, Any]
    polls: int = 0
    status: str = "accepted"
    content: bytes = b""


@dataclass
class FakeDataStore:
    """The fake store; `url` is what goes into HM_CDS_URL / HM_ADS_URL / HM_EWDS_URL."""

    responder: Callable[[str, dict[str, Any]], bytes]
    token: str = "fake-token-7f3a"
    mode: str = "ok"
    schemas: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: dict(SCHEMAS))
    refuse: Callable[[str, dict[str, Any]], str | None] | None = None
    accepted_licences: list[dict[str, Any]] = field(
        default_factory=lambda: [{"id": LICENCE["id"], "revision": 12}]
    )
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                store._handle(self, "GET")

            def do_HEAD(self) -> None:
                store._handle(self, "HEAD")

            def do_POST(self) -> None:
                store._handle(self, "POST")

            def do_PUT(self) -> None:
                store._handle(self, "PUT")

            def do_DELETE(self) -> None:
                store._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base}/api"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # .. views for tests ....................................................................................

    def api_calls(self, method: str | None = None, path_re: str = "") -> list[Call]:
        return [
            c for c in self.calls if (method is None or c.method == method) and re.search(path_re, c.path)
        ]

    def submitted(self) -> list[tuple[str, dict[str, Any]]]:
        """(dataset, inputs) of every POSTed execution."""
        out = []
        for c in self.api_calls("POST", r"/execution$"):
            dataset = c.path.split("/processes/")[1].split("/")[0]
            out.append((dataset, (c.body or {}).get("inputs")))
        return out

    # .. the protocol ...................................................................................

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urlparse(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in h.headers.items()}
        call = Call(method, parsed.path, parse_qs(parsed.query), headers, body)
        with self._lock:
            self.calls.append(call)
        path = parsed.path

        if path.startswith("/download/"):
            return self._download(h, method, path, headers)
        if not path.startswith("/api/"):
            return self._json(h, 404, {"title": "not found"})
        if self.mode == "error500":
            return self._json(h, 500, {"title": "Internal Server Error", "detail": "kaputt"})
        if self.mode == "error429":
            return self._json(
                h, 429, {"title": "Too Many Requests", "detail": "slow down"}, {"Retry-After": "1"}
            )
        api = path[len("/api") :]
        token = headers.get("private-token")

        if api == "/catalogue/v1/messages" and method == "GET":
            return self._json(h, 200, {"messages": []})
        if api == "/catalogue/v1/vocabularies/licences" and method == "GET":
            return self._json(h, 200, {"licences": [LICENCE]})
        m = re.fullmatch(r"/catalogue/v1/collections/([\w.\-]+)", api)
        if m and method == "GET":
            if m.group(1) not in self.schemas:
                return self._json(h, 404, {"title": "collection not found"})
            links = [
                {"rel": "self", "href": f"{self.url}{api}"},
                {"rel": "license", "href": f"{self.base}/licence.pdf", "title": LICENCE["label"]},
                {"rel": "retrieve", "href": f"{self.url}/retrieve/v1/processes/{m.group(1)}"},
            ]
            return self._json(h, 200, {"type": "Collection", "id": m.group(1), "links": links})
        m = re.fullmatch(r"/retrieve/v1/processes/([\w.\-]+)", api)
        if m and method == "GET":
            dataset = m.group(1)
            if dataset not in self.schemas:
                return self._json(h, 404, {"title": "process not found", "detail": dataset})
            inputs = {k: {"title": k, "schema": v} for k, v in self.schemas[dataset].items()}
            return self._json(
                h, 200, {"id": dataset, "version": "1.0.0", "inputs": inputs, "outputs": {"asset": {}}}
            )

        # everything below needs the key
        if token is None:
            self.problems.append(f"{method} {api} sent without PRIVATE-TOKEN")
        if self.mode == "unauthorized" or token != self.token:
            return self._json(
                h, 401, {"title": "Authentication failed", "detail": "invalid personal access token"}
            )
        if api == "/profiles/v1/account/licences" and method == "GET":
            return self._json(h, 200, {"licences": self.accepted_licences})
        m = re.fullmatch(r"/retrieve/v1/processes/([\w.\-]+)/execution", api)
        if m and method == "POST":
            return self._execute(h, m.group(1), body)
        m = re.fullmatch(r"/retrieve/v1/jobs/([\w\-]+)", api)
        if m and method == "GET":
            return self._job(h, m.group(1), call)
        if m and method == "DELETE" and m.group(1) in self.jobs:
            self.jobs[m.group(1)].status = "dismissed"
            return self._json(h, 200, self._status(self.jobs[m.group(1)]))
        m = re.fullmatch(r"/retrieve/v1/jobs/([\w\-]+)/results", api)
        if m and method == "GET":
            return self._results(h, m.group(1))
        return self._json(h, 404, {"title": "not found", "detail": api})

    def _execute(self, h: BaseHTTPRequestHandler, dataset: str, body: Any) -> None:
        if dataset not in self.schemas:
            return self._json(h, 404, {"title": "process not found", "detail": dataset})
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), dict):
            self.problems.append(f"execution body is not {{'inputs': {{...}}}}: {body!r}")
            return self._json(
                h, 400, {"title": "invalid request", "detail": "body must be {'inputs': {...}}"}
            )
        inputs = body["inputs"]
        if self.mode == "licence" or not any(lic["id"] == LICENCE["id"] for lic in self.accepted_licences):
            missing = f"[{{'id': '{LICENCE['id']}', 'revision': 12}}]"
            detail = f"please accept the following licences to proceed: {missing}"
            return self._json(h, 403, {"title": "required licences not accepted", "detail": detail})
        why = validate(dataset, inputs, self.schemas[dataset])
        if why is None and self.refuse is not None:
            why = self.refuse(dataset, inputs)
        if why is not None:
            return self._json(h, 400, {"title": "invalid request", "detail": why})
        job = Job(str(uuid.uuid4()), dataset, inputs)
        with self._lock:
            self.jobs[job.id] = job
        return self._json(h, 201, self._status(job))

    def _status(self, job: Job) -> dict[str, Any]:
        monitor = f"{self.url}/retrieve/v1/jobs/{job.id}"
        links = [
            {"href": monitor, "rel": "self", "type": "application/json"},
            {"href": monitor, "rel": "monitor", "type": "application/json", "title": "job status info"},
        ]
        if job.status in ("successful", "failed"):
            links.append({"href": f"{monitor}/results", "rel": "results"})
        return {
            "processID": job.dataset,
            "type": "process",
            "jobID": job.id,
            "status": job.status,
            "created": "2026-01-01T00:00:00",
            "updated": "2026-01-01T00:00:01",
            "links": links,
            "metadata": {"request": {"ids": job.inputs}, "log": []},
        }

    def _job(self, h: BaseHTTPRequestHandler, job_id: str, call: Call) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return self._json(h, 404, {"title": "job not found"})
        if call.query.get("log") == ["True"]:  # a status poll (the plain GET looks for the results link)
            job.polls += 1
            if job.status in ("accepted", "running"):
                if job.polls == 1 or self.mode == "stuck":
                    job.status = "running"
                else:
                    job.status = "failed" if self.mode == "failed_job" else "successful"
        return self._json(h, 200, self._status(job))

    def _results(self, h: BaseHTTPRequestHandler, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return self._json(h, 404, {"title": "job not found"})
        if job.status == "failed":
            return self._json(
                h,
                400,
                {
                    "type": "job results failed",
                    "title": "The job has failed",
                    "status": 400,
                    "detail": "MARS returned no data: the requested dates are not available yet",
                },
            )
        if job.status != "successful":
            return self._json(h, 404, {"title": "job results not ready"})
        if not job.content:
            job.content = self.responder(job.dataset, job.inputs)
        size = len(job.content) + (100 if self.mode == "size_mismatch" else 0)
        asset = {
            "href": f"{self.base}/download/{job.id}.nc",
            "file:size": size,
            "type": "application/netcdf",
            "file:checksum": "0",
            "file:local_path": f"s3://cache/{job.id}.nc",
        }
        return self._json(h, 200, {"asset": {"value": asset}})

    def _download(self, h: BaseHTTPRequestHandler, method: str, path: str, headers: dict[str, str]) -> None:
        if "private-token" in headers:
            self.problems.append("the personal access token was sent to the download host")
        job = self.jobs.get(path.rsplit("/", 1)[1].split(".")[0])
        if job is None or not job.content:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        content = job.content
        h.send_response(200)
        h.send_header("Content-Type", "application/netcdf")
        h.send_header("Content-Length", str(len(content)))
        h.end_headers()
        if method == "HEAD":
            return
        if self.mode == "truncate":
            h.wfile.write(content[: len(content) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(content)

    def _json(
        self, h: BaseHTTPRequestHandler, code: int, payload: Any, extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
