"""Creating, updating, deleting and bulk-importing sites; validation is the importer's (`sites.io`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, File, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import AdminDep, Principal, WriterDep, require_site
from api.deps import SettingsDep, StoreDep
from api.errors import COMMON_ERRORS, WRITE_ERRORS, ProblemError, problem_responses
from sites import Site, SiteNotFoundError, SiteValidationError
from sites.io import ImportReport, read_sites

router = APIRouter(
    prefix="/api/v1",
    tags=["sites"],
    responses={**COMMON_ERRORS, **WRITE_ERRORS, **problem_responses(400, 404)},
)
GEOJSON = "application/geo+json"
SiteIdPath = Annotated[str, Path(description="Site id", examples=["athens"])]

FEATURE_EXAMPLE = {
    "type": "Feature",
    "id": "pont_du_gard",
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[4.533, 43.946], [4.537, 43.946], [4.537, 43.949], [4.533, 43.949], [4.533, 43.946]]
        ],
    },
    "properties": {
        "name": "Pont du Gard",
        "country": "FR",
        "heritage_type": "monument",
        "materials": ["limestone"],
        "buffer_m": 100,
    },
}
#: Upload suffixes by media type, when the file name does not tell.
MEDIA_SUFFIX = {
    "application/geo+json": ".geojson",
    "application/json": ".geojson",
    "application/geopackage+sqlite3": ".gpkg",
    "application/zip": ".zip",
    "application/x-zip-compressed": ".zip",
    "text/csv": ".csv",
}
SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".csv")


class SiteFeature(BaseModel):
    """A site as a GeoJSON Feature: `id` (or `properties.id`) is the site id; properties as imported."""

    type: Literal["Feature"] = "Feature"
    id: str | None = Field(None, description="Site id (lowercase letters, digits, '_', '-', '.').")
    geometry: dict[str, Any] | None = Field(description="Polygon or MultiPolygon in EPSG:4326.")
    properties: dict[str, Any] = Field(default_factory=dict)

    model_config = {"json_schema_extra": {"examples": [FEATURE_EXAMPLE]}}


class FeatureOutcome(BaseModel):
    index: int = Field(description="1-based position of the feature in the file.")
    id: str | None
    name: str | None
    status: Literal["stored", "updated", "unchanged", "rejected"]
    reasons: list[str] = Field(default_factory=list, description="Why the feature was rejected.")
    warnings: list[str] = Field(default_factory=list, description="Repairs made (e.g. make_valid).")


class ImportResult(BaseModel):
    source: str
    strict: bool
    stored: int
    updated: int
    unchanged: int
    rejected: int
    features: list[FeatureOutcome]


def _validate_feature(feature: dict[str, Any]) -> Site:
    """The one site of a Feature, validated exactly as a registry import; 422 lists every problem."""
    report = _read_bytes(json.dumps(feature).encode(), ".geojson", "body")
    if not report.ok or len(report.sites) != 1:
        raise ProblemError(
            422,
            "invalid site: " + "; ".join(i.message for i in report.errors),
            errors=[{"field": "body", "message": i.message} for i in report.errors],
        )
    return report.sites[0]


def _read_bytes(data: bytes, suffix: str, source: str, layer: str | None = None) -> ImportReport:
    with tempfile.TemporaryDirectory(prefix="hm-upload-") as tmp:
        path = FilePath(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            report = read_sites(path, layer=layer)
        except SiteValidationError as exc:  # hide the temporary path from the message
            raise SiteValidationError(str(exc).replace(str(path), source)) from None
    report.source = source
    for issue_list in (report.errors, report.warnings):
        for i, issue in enumerate(issue_list):  # hide the temporary path from messages
            issue_list[i] = type(issue)(
                issue.index, issue.site_id, issue.name, issue.message.replace(str(path), source)
            )
    return report


def _feature_body(feature: SiteFeature) -> dict[str, Any]:
    return feature.model_dump(exclude_none=False)


@router.post(
    "/sites",
    status_code=201,
    summary="Create a site (GeoJSON Feature)",
    response_class=JSONResponse,
    responses={
        201: {"content": {GEOJSON: {}}, "description": "The stored site as a GeoJSON Feature."},
        **problem_responses(409, 413),
    },
)
def create_site(
    request: Request,
    store: StoreDep,
    principal: WriterDep,
    feature: Annotated[SiteFeature, Body(examples=[FEATURE_EXAMPLE])],
) -> JSONResponse:
    """Validate the Feature as the importer does and store it; 409 if the id exists.

    A manager may create only sites listed in its key's scope."""
    site = _validate_feature(_feature_body(feature))
    require_site(principal, site.id)
    if store.existing_site_ids([site.id]):
        raise ProblemError(409, f"site {site.id!r} already exists; use PUT to change it")
    store.upsert_site_statuses([site])
    location = str(request.url_for("get_site", site_id=site.id))
    return JSONResponse(
        site.to_feature(), status_code=201, media_type=GEOJSON, headers={"Location": location}
    )


@router.put(
    "/sites/{site_id}",
    summary="Replace a site's definition",
    response_class=JSONResponse,
    responses={
        200: {"content": {GEOJSON: {}}, "description": "The stored site."},
        **problem_responses(404, 413),
    },
)
def update_site(
    site_id: SiteIdPath,
    store: StoreDep,
    principal: WriterDep,
    feature: Annotated[SiteFeature, Body(examples=[FEATURE_EXAMPLE])],
) -> JSONResponse:
    """Replace the site with this Feature (its id, if given, must be the path's).

    A manager may replace only its own sites."""
    require_site(principal, site_id)
    body = _feature_body(feature)
    if body.get("id") not in (None, site_id):
        raise ProblemError(422, "the Feature's id differs from the path's", errors=[{"field": "body.id"}])
    body["id"] = site_id
    site = _validate_feature(body)
    if not store.existing_site_ids([site_id]):
        raise SiteNotFoundError(site_id)
    store.upsert_site_statuses([site])
    return JSONResponse(site.to_feature(), media_type=GEOJSON)


@router.delete(
    "/sites/{site_id}",
    status_code=204,
    summary="Delete a site with its values and alerts (admin)",
    responses={204: {"description": "Deleted."}, **problem_responses(403, 404)},
)
def delete_site(site_id: SiteIdPath, store: StoreDep, _: AdminDep) -> Response:
    """Delete the site; its indicator values, alerts and subscriptions go with it."""
    store.delete_site(site_id)
    return Response(status_code=204)


def _scope_check(principal: Principal, report: ImportReport) -> None:
    foreign = sorted(s.id for s in report.sites if not principal.may_manage(s.id))
    foreign += sorted({i.site_id for i in report.errors if i.site_id and not principal.may_manage(i.site_id)})
    if foreign:
        shown = ", ".join(repr(x) for x in sorted(set(foreign))[:20])
        raise ProblemError(403, f"this key may not manage site(s) {shown}; nothing was imported")


@router.post(
    "/sites/import",
    summary="Import a site registry file (GeoJSON, GeoPackage, zipped Shapefile, CSV)",
    responses={
        200: {"description": "Per-feature report: stored, updated, unchanged or rejected (with reasons)."},
        **problem_responses(400, 413, 415),
    },
)
def import_sites(
    store: StoreDep,
    principal: WriterDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A .geojson/.json, .gpkg, .zip (Shapefile) or .csv file")],
    strict: Annotated[
        bool, Query(description="Store nothing when any feature is rejected (422 with the report)")
    ] = False,
    layer: Annotated[
        str | None,
        Query(
            max_length=200,
            description="GeoPackage layer or zip member to read when the file holds several",
            examples=["monuments"],
        ),
    ] = None,
) -> ImportResult:
    """Validate every feature as `heritage sites import` does and store the valid ones.

    A manager may import only sites in its key's scope: a file naming any other site is refused (403)."""
    name = file.filename or ""
    suffix = FilePath(name).suffix.lower()
    if suffix not in SUFFIXES:
        suffix = MEDIA_SUFFIX.get((file.content_type or "").split(";")[0].strip(), "")
    if suffix not in SUFFIXES:
        raise ProblemError(415, f"unsupported file {name!r}; send .geojson, .json, .gpkg, .zip or .csv")
    data = file.file.read(int(settings.api_max_upload_mb * 1e6) + 1)
    if len(data) > settings.api_max_upload_mb * 1e6:
        raise ProblemError(413, f"file exceeds {settings.api_max_upload_mb:g} MB")
    try:
        report = _read_bytes(data, suffix, name or f"upload{suffix}", layer)
    except SiteValidationError as exc:
        raise ProblemError(422, str(exc), errors=[{"field": "body.file", "message": str(exc)}]) from exc
    _scope_check(principal, report)
    result = _outcomes(report, {}, strict)
    if strict and not report.ok:
        raise ProblemError(
            422, f"{result.rejected} feature(s) rejected; nothing stored (strict)", report=result.model_dump()
        )
    statuses = store.upsert_site_statuses(report.sites) if report.sites else {}
    return _outcomes(report, statuses, strict)


def _outcomes(report: ImportReport, statuses: dict[str, str], strict: bool) -> ImportResult:
    rejected: dict[int, list] = {}
    for issue in report.errors:
        rejected.setdefault(issue.index, []).append(issue)
    warnings: dict[int, list[str]] = {}
    for issue in report.warnings:
        warnings.setdefault(issue.index, []).append(issue.message)
    total = len(report.sites) + len(rejected)
    valid_indices = [i for i in range(1, total + 1) if i not in rejected]
    rows: list[FeatureOutcome] = []
    for index, site in zip(valid_indices, report.sites, strict=True):
        status = statuses.get(site.id, "rejected" if strict and not report.ok else "unchanged")
        reasons = ["not stored: another feature was rejected (strict)"] if status == "rejected" else []
        rows.append(
            FeatureOutcome(
                index=index,
                id=site.id,
                name=site.name,
                status=status,
                reasons=reasons,
                warnings=warnings.get(index, []),
            )
        )
    for index, issues in rejected.items():
        rows.append(
            FeatureOutcome(
                index=index,
                id=issues[0].site_id,
                name=issues[0].name,
                status="rejected",
                reasons=[i.message for i in issues],
                warnings=warnings.get(index, []),
            )
        )
    rows.sort(key=lambda r: r.index)
    count = {s: sum(r.status == s for r in rows) for s in ("stored", "updated", "unchanged", "rejected")}
    return ImportResult(source=report.source, strict=strict, features=rows, **count)
