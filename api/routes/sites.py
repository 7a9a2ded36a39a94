"""Sites as OGC API Features-style GeoJSON."""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from api.auth import ReaderDep
from api.deps import PageDep, StoreDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from indicators import level_name

router = APIRouter(prefix="/api/v1", tags=["sites"], responses={**COMMON_ERRORS, **problem_responses(400)})
SiteIdPath = Annotated[str, Path(description="Site id", examples=["athens"])]
GEOJSON = "application/geo+json"
#: Limits of the `intersects` query geometry: characters of its text and vertices.
MAX_INTERSECTS_CHARS = 20_000
MAX_INTERSECTS_VERTICES = 2_000
INTERSECTS_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        w, s, e, n = (float(x) for x in bbox.split(","))
    except ValueError:
        raise ProblemError(  # noqa: B904 - the parse error adds nothing for the client
            422, "bbox must be four numbers: west,south,east,north", errors=[{"field": "query.bbox"}]
        )
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ProblemError(
            422,
            "bbox must satisfy -180 <= west <= east <= 180 and -90 <= south <= north <= 90",
            errors=[{"field": "query.bbox"}],
        )
    return w, s, e, n


def parse_intersects(text: str | None) -> BaseGeometry | None:
    """The `intersects` geometry: a GeoJSON geometry object or WKT, lon/lat in EPSG:4326, non-empty,
    valid and in range, with at most MAX_INTERSECTS_VERTICES vertices; anything else is a 422."""
    if text is None:
        return None

    def bad(reason: str) -> ProblemError:
        return ProblemError(422, f"intersects: {reason}", errors=[{"field": "query.intersects"}])

    text = text.strip()
    try:
        if text.startswith("{"):
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("type") not in INTERSECTS_TYPES:
                raise bad(f"a GeoJSON geometry object must have a type among {', '.join(INTERSECTS_TYPES)}")
            geom = shape(doc)
        else:
            geom = shapely.from_wkt(text)
    except ProblemError:
        raise
    except Exception:  # json, shapely and GEOS raise several types for malformed input
        raise bad("not a GeoJSON geometry object or WKT") from None
    if geom.geom_type not in INTERSECTS_TYPES:
        raise bad(f"a {geom.geom_type} is not supported; use one of {', '.join(INTERSECTS_TYPES)}")
    if geom.is_empty:
        raise bad("the geometry is empty")
    if shapely.get_num_coordinates(geom) > MAX_INTERSECTS_VERTICES:
        raise bad(f"more than {MAX_INTERSECTS_VERTICES} vertices; simplify the geometry")
    lon, lat = shapely.get_coordinates(geom).T
    if not (np.all(np.abs(lon) <= 180) and np.all(np.abs(lat) <= 90)):  # NaN and inf fail too
        raise bad("coordinates must be lon in [-180, 180] and lat in [-90, 90] (EPSG:4326)")
    geom = shapely.force_2d(geom)
    if not shapely.is_valid(geom):
        raise bad(f"invalid geometry ({shapely.is_valid_reason(geom)})")
    return geom


@router.get(
    "/sites",
    summary="List sites (GeoJSON FeatureCollection)",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}, "description": "A GeoJSON FeatureCollection of sites."}},
)
def list_sites(
    request: Request,
    store: StoreDep,
    _: ReaderDep,
    page: PageDep,
    bbox: Annotated[
        str | None, Query(description="west,south,east,north in EPSG:4326", examples=["-10,35,30,60"])
    ] = None,
    country: Annotated[
        str | None, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2", examples=["IT"])
    ] = None,
    material: Annotated[
        str | None,
        Query(max_length=100, description="Only sites made of this material", examples=["marble"]),
    ] = None,
    heritage_type: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only sites of this heritage type (case-insensitive)",
            examples=["monument"],
        ),
    ] = None,
    intersects: Annotated[
        str | None,
        Query(
            max_length=MAX_INTERSECTS_CHARS,
            description=(
                "Only sites whose geometry intersects this geometry: a GeoJSON geometry object or WKT, "
                f"lon/lat in EPSG:4326, at most {MAX_INTERSECTS_VERTICES} vertices "
                f"({', '.join(INTERSECTS_TYPES)})"
            ),
            examples=["POLYGON((23 37, 24 37, 24 38.5, 23 38.5, 23 37))"],
        ),
    ] = None,
) -> JSONResponse:
    """Registered heritage sites, paged with `limit`/`offset`; feature `id` is the site id. `bbox` and
    `intersects` compare the site's own geometry (not its buffer)."""
    sites, total = store.find_sites(
        parse_bbox(bbox),
        country,
        material,
        heritage_type,
        page.limit,
        page.offset,
        intersects=parse_intersects(intersects),
    )
    query = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}
    links: list[dict[str, Any]] = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
    if page.offset + len(sites) < total:
        nxt = request.url.include_query_params(**query, limit=page.limit, offset=page.offset + page.limit)
        links.append({"href": str(nxt), "rel": "next", "type": GEOJSON})
    if page.offset > 0:
        prev = request.url.include_query_params(
            **query, limit=page.limit, offset=max(0, page.offset - page.limit)
        )
        links.append({"href": str(prev), "rel": "prev", "type": GEOJSON})
    body = {
        "type": "FeatureCollection",
        "numberMatched": total,
        "numberReturned": len(sites),
        "features": [s.to_feature() for s in sites],
        "links": links,
    }
    return JSONResponse(body, media_type=GEOJSON)


@router.get(
    "/sites/{site_id}",
    summary="One site (GeoJSON Feature) with the latest level of each indicator",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}}, **problem_responses(404)},
)
def get_site(site_id: SiteIdPath, request: Request, store: StoreDep, _: ReaderDep) -> JSONResponse:
    """One site; `properties.latest` holds the newest value and level of every indicator."""
    site = store.get_site(site_id)
    feature = site.to_feature()
    latest = store.latest_levels([site_id])
    feature["properties"]["latest"] = {
        row.indicator_id: {
            "period_start": row.period_start.isoformat(),
            "value": None if row.value != row.value else row.value,
            "level": level_name(int(row.level)),
            "material": row.material,
        }
        for row in latest.itertuples()
    }
    feature["links"] = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": str(request.url_for("list_alerts").include_query_params(site=site_id)), "rel": "alerts"},
    ]
    return JSONResponse(feature, media_type=GEOJSON)
