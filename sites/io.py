"""Read and write site registries: GeoJSON, GeoPackage, Shapefile (plain or zipped) and CSV.

Every reader turns a file into raw features (properties + geometry + the file's CRS); one validation
pass then reprojects to EPSG:4326, checks each feature and reports every rejected feature by its
1-based position in the file, so one bad feature never hides the good ones.

GeoJSON is parsed with the standard library rather than GDAL: GDAL drops the feature's top-level
`id` when a property `id` also exists and flattens list and object properties, both of which the
registry uses (`materials`, `thresholds`).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pydantic import ValidationError
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from sites.errors import SiteValidationError
from sites.geometry import areas_m2, buffer_geometries
from sites.model import Site, SiteParams, SiteSet

#: Properties mapped onto `Site` fields; any other column is ignored.
SITE_FIELDS = (
    "id",
    "name",
    "buffer_m",
    "country",
    "heritage_type",
    "materials",
    "unesco_id",
    "national_id",
    "thresholds",
)
#: Properties mapped onto `SiteParams` fields.
PARAM_FIELDS = tuple(SiteParams.model_fields)

MIN_AREA_M2 = 1.0
MAX_AREA_M2 = 20_000e6
#: Decimals cap of the CSV WKT: with `trim` GEOS writes the shortest round-tripping form, and 17 significant
#: digits after up to 4 leading zeros (smaller numbers are written in scientific notation) need 21.
WKT_PRECISION = 21
#: A repaired polygon is kept only if its area differs from the original's by at most this fraction.
REPAIR_AREA_TOLERANCE = 0.01

WGS84 = CRS.from_epsg(4326)
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
CSV_COLUMNS = (*SITE_FIELDS, *PARAM_FIELDS, "wkt")


@dataclass(frozen=True)
class FeatureIssue:
    """A problem with one feature: its 1-based position in the file, its id and name when known."""

    index: int
    site_id: str | None
    name: str | None
    message: str

    def __str__(self) -> str:
        who = [f"feature {self.index}"]
        if self.site_id is not None:
            who.append(f"id {self.site_id!r}")
        if self.name is not None:
            who.append(f"name {self.name!r}")
        return f"{', '.join(who)}: {self.message}"


@dataclass
class ImportReport:
    """The valid sites of a file, in file order, and the features rejected or repaired on the way."""

    source: str
    sites: list[Site] = field(default_factory=list)
    errors: list[FeatureIssue] = field(default_factory=list)
    warnings: list[FeatureIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no feature was rejected."""
        return not self.errors

    def summary(self) -> str:
        """A human-readable account: counts, then one line per error and per warning."""
        lines = [
            f"{self.source}: {len(self.sites)} site(s) read, "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        ]
        lines += [f"  error: {issue}" for issue in self.errors]
        lines += [f"  warning: {issue}" for issue in self.warnings]
        return "\n".join(lines)


@dataclass
class _RawFeature:
    """One feature as read, before validation; `geometry_error` is set when the geometry is unreadable."""

    index: int
    props: dict[str, Any]
    geometry: BaseGeometry | None
    geometry_error: str | None = None
    csv_point: bool = False


@dataclass
class _RawFile:
    """The features of a file and its CRS (None: the file does not say)."""

    features: list[_RawFeature]
    crs: CRS | None


# --------------------------------------------------------------------------------------------- reading


def read_sites(
    path: str | Path,
    *,
    layer: str | None = None,
    default_buffer_m: float = 0.0,
    id_field: str | None = None,
    name_field: str | None = None,
) -> ImportReport:
    """Read a site registry file and validate every feature; the format is chosen by the extension.

    `.geojson`/`.json`, `.gpkg`, `.shp`, `.zip` (holding one Shapefile, GeoJSON or GeoPackage) and `.csv`
    (`wkt` or `lat`/`lon` columns in EPSG:4326; a point becomes a circle of radius `buffer_m`).
    `layer` picks a GeoPackage layer or a zip member. `id_field`/`name_field` name the columns holding
    the id and name when they are not called `id`/`name` (e.g. an official register's `entity`).
    Ids are not rewritten: an id that is not a valid `Site` id is reported as an error.
    Geometries are reprojected to EPSG:4326 (GeoJSON is EPSG:4326 by RFC 7946 unless it has a legacy
    `crs` member); a file without a CRS is read as lon/lat only if all its coordinates fit.
    Raises `SiteValidationError` when the file cannot be read at all.
    """
    if default_buffer_m < 0:
        raise ValueError(f"default_buffer_m must be >= 0, got {default_buffer_m}")
    path = Path(path)
    if not path.is_file():
        raise SiteValidationError(f"{path}: no such file")
    raw = _read_raw(path, layer)
    renames = {
        key: target
        for key, target in ((_key(id_field), "id"), (_key(name_field), "name"))
        if key is not None and key != target
    }
    for feat in raw.features:
        feat.props = _map_properties(feat.props, renames)
    if raw.crs is None:
        _check_lonlat_file(path, raw.features)
    _reproject(path, raw)
    return _validate(str(path), raw, default_buffer_m)


def load_demo_sites() -> SiteSet:
    """The bundled demo registry (`sites/demo.geojson`); raises if any of its features is invalid."""
    with resources.as_file(resources.files("sites").joinpath("demo.geojson")) as demo:
        report = read_sites(demo)
    if not report.ok:
        raise SiteValidationError(report.summary())
    return SiteSet(report.sites)


def _read_raw(path: Path, layer: str | None) -> _RawFile:
    """Dispatch on the file extension."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".geojson", ".json"):
            return _parse_geojson(path.read_bytes(), str(path))
        if suffix in (".gpkg", ".shp"):
            return _read_ogr(str(path), layer, str(path))
        if suffix == ".zip":
            return _read_zip(path, layer)
        if suffix == ".csv":
            return _read_csv(path.read_text(encoding="utf-8-sig"), str(path))
    except SiteValidationError:
        raise
    except Exception as exc:  # GDAL, zip and decoding errors all mean the same: unreadable
        raise SiteValidationError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from exc
    raise SiteValidationError(
        f"{path}: unknown file type {suffix!r}; expected .geojson, .json, .gpkg, .shp, .zip or .csv"
    )


def _parse_geojson(data: bytes, source: str) -> _RawFile:
    """Features of a GeoJSON FeatureCollection (or single Feature), keeping the top-level `id`."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SiteValidationError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("type") not in ("FeatureCollection", "Feature"):
        raise SiteValidationError(f"{source}: expected a GeoJSON FeatureCollection or Feature")
    items = doc.get("features") if doc["type"] == "FeatureCollection" else [doc]
    if not isinstance(items, list):
        raise SiteValidationError(f"{source}: 'features' must be a list")
    features = []
    for i, item in enumerate(items, start=1):
        item = item if isinstance(item, dict) else {}
        props = item.get("properties")
        props = dict(props) if isinstance(props, dict) else {}
        if item.get("id") is not None:
            props = {k: v for k, v in props.items() if k.lower() != "id"} | {"id": item["id"]}
        geometry, error = _parse_geojson_geometry(item.get("geometry"))
        features.append(_RawFeature(i, props, geometry, error))
    return _RawFile(features, _geojson_crs(doc, source))


def _parse_geojson_geometry(geojson: Any) -> tuple[BaseGeometry | None, str | None]:
    """A shapely geometry, or the reason it cannot be built."""
    if geojson is None:
        return None, None
    try:
        return shape(geojson), None
    except Exception as exc:  # shapely raises several types for malformed coordinates
        return None, f"unreadable geometry ({exc})"


def _geojson_crs(doc: Mapping[str, Any], source: str) -> CRS:
    """EPSG:4326 (RFC 7946), or the CRS named by a legacy (2008) `crs` member."""
    member = doc.get("crs")
    if not member:
        return WGS84
    try:
        return CRS.from_user_input(member["properties"]["name"])
    except Exception as exc:
        raise SiteValidationError(f"{source}: unknown 'crs' member {member!r}") from exc


def _read_ogr(dataset: str, layer: str | None, source: str) -> _RawFile:
    """Features of a GDAL vector dataset (GeoPackage, Shapefile), read with pyogrio."""
    layers = [str(name) for name, _ in pyogrio.list_layers(dataset)]
    if layer is None and len(layers) > 1:
        raise SiteValidationError(f"{source}: several layers {layers}; choose one with layer=")
    if layer is not None and layer not in layers:
        raise SiteValidationError(f"{source}: no layer {layer!r}; layers are {layers}")
    frame = pyogrio.read_dataframe(dataset, layer=layer)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    records = frame[columns].to_dict(orient="records")
    pairs = zip(records, frame.geometry, strict=True)
    features = [_RawFeature(i, props, geom) for i, (props, geom) in enumerate(pairs, start=1)]
    return _RawFile(features, frame.crs)


def _read_zip(path: Path, layer: str | None) -> _RawFile:
    """The one Shapefile, GeoJSON or GeoPackage in a zip (`layer` names a member when there are several)."""
    with zipfile.ZipFile(path) as archive:
        members = [
            name
            for name in archive.namelist()
            if PurePosixPath(name).suffix.lower() in VECTOR_SUFFIXES
            and not any(part.startswith(("__MACOSX", ".")) for part in PurePosixPath(name).parts)
        ]
        if layer is not None and len(members) > 1:
            members = [m for m in members if layer in (m, PurePosixPath(m).stem)]
        if len(members) != 1:
            found = members or "none"
            raise SiteValidationError(
                f"{path}: expected one .shp, .geojson, .json or .gpkg in the zip, found {found}"
            )
        member = members[0]
        suffix = PurePosixPath(member).suffix.lower()
        if suffix in (".geojson", ".json"):
            return _parse_geojson(archive.read(member), f"{path}!{member}")
    inner_layer = None if layer in (member, PurePosixPath(member).stem) else layer
    return _read_ogr(f"/vsizip/{path.resolve()}/{member}", inner_layer, f"{path}!{member}")


def _read_csv(text: str, source: str) -> _RawFile:
    """Rows of a CSV in EPSG:4326 with a `wkt` column or `lat`/`lon` columns (points, buffered later)."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    has_wkt, has_points = "wkt" in columns, {"lat", "lon"} <= columns
    missing = [c for c in ("id", "name") if c not in columns]
    if not (has_wkt or has_points):
        missing.append("wkt (or lat and lon)")
    if missing:
        raise SiteValidationError(f"{source}: missing required column(s): {', '.join(missing)}")
    features = []
    for i, row in enumerate(reader, start=1):
        props = {k.strip(): v for k, v in row.items() if k is not None}
        lower = {k.lower(): v for k, v in props.items()}
        geometry, error = _csv_geometry(lower)
        for key in ("wkt", "lat", "lon"):
            props.pop(next((k for k in props if k.lower() == key), key), None)
        is_point = geometry is not None and not (lower.get("wkt") or "").strip()
        features.append(_RawFeature(i, props, geometry, error, csv_point=is_point))
    return _RawFile(features, WGS84)


def _csv_geometry(row: Mapping[str, str | None]) -> tuple[BaseGeometry | None, str | None]:
    """The row's geometry from `wkt`, else a point from `lat`/`lon`; None when both are blank."""
    wkt = (row.get("wkt") or "").strip()
    if wkt:
        try:
            return shapely.from_wkt(wkt), None
        except shapely.errors.GEOSException as exc:
            return None, f"unreadable WKT ({exc})"
    lat, lon = (row.get("lat") or "").strip(), (row.get("lon") or "").strip()
    if not lat and not lon:
        return None, None
    try:
        return shapely.Point(float(lon), float(lat)), None
    except ValueError:
        return None, f"lat/lon are not numbers (lat={lat!r}, lon={lon!r})"


# ---------------------------------------------------------------------------------- property mapping


def _key(name: str | None) -> str | None:
    return name.strip().lower() if name is not None else None


def _map_properties(props: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """Known properties under their canonical names, blanks dropped.

    Names are matched case-insensitively; Shapefile's 10-character truncations (`heritage_t`) are
    accepted as aliases. With `renames` (e.g. `entity` → `id`) the renamed column replaces the original.
    """
    known = (*SITE_FIELDS, *PARAM_FIELDS, "params")
    aliases = {name[:10]: name for name in known if len(name) > 10}
    replaced = set(renames.values())
    out: dict[str, Any] = {}
    for raw_key, raw_value in props.items():
        key = str(raw_key).strip().lower()
        if key in renames:
            key = renames[key]
        elif key in replaced:
            continue
        key = aliases.get(key, key)
        value = _clean(raw_value)
        if key in known and value is not None:
            out[key] = value
    return out


def _clean(value: Any) -> Any:
    """Python values from numpy/pandas ones; NaN, NA and blank strings become None."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, list | tuple | dict) and pd.isna(value):
        return None
    return value


def _site_kwargs(props: Mapping[str, Any], default_buffer_m: float) -> tuple[dict[str, Any], list[str]]:
    """Keyword arguments for `Site` (without geometry) and the reasons some values cannot be parsed."""
    problems: list[str] = []
    kwargs: dict[str, Any] = {"buffer_m": default_buffer_m}
    for name in ("id", "name", "unesco_id", "national_id"):
        if name in props:
            kwargs[name] = _as_text(props[name])
    for name in ("buffer_m", "country", "heritage_type"):
        if name in props:
            kwargs[name] = props[name]
    if "materials" in props:
        kwargs["materials"] = _as_list(props["materials"])
    if "thresholds" in props:
        kwargs["thresholds"] = _as_json(props["thresholds"], "thresholds", problems)
    params = _as_json(props["params"], "params", problems) if "params" in props else {}
    params = (params if isinstance(params, dict) else {}) | {k: props[k] for k in PARAM_FIELDS if k in props}
    if params:
        kwargs["params"] = params
    return kwargs, problems


def _as_text(value: Any) -> str:
    """A text value; whole-number floats (as GDAL and pandas return integer ids) lose their `.0`."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _as_list(value: Any) -> Any:
    """A list from a list, or from a string separated by `;` (or `,` when there is no `;`)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                pass
        sep = ";" if ";" in text else ","
        return [part.strip() for part in text.split(sep) if part.strip()]
    return value


def _as_json(value: Any, name: str, problems: list[str]) -> Any:
    """A dict given as such or as a JSON string; a parse failure is recorded in `problems`."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        problems.append(f"{name} is not valid JSON ({exc.msg})")
        return {}


def _pydantic_message(exc: ValidationError) -> str:
    """A one-line account of a pydantic error: `field: reason; field: reason`."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid value(s): " + "; ".join(parts)


# ---------------------------------------------------------------------------------- geometry checks


def _check_lonlat_file(path: Path, features: list[_RawFeature]) -> None:
    """A file without a CRS is taken as EPSG:4326 only when all its coordinates are lon/lat."""
    geoms = [f.geometry for f in features if f.geometry is not None and not f.geometry.is_empty]
    if not geoms:
        return
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    if not _in_range(xmin, ymin, xmax, ymax):
        raise SiteValidationError(
            f"{path}: the file has no CRS and its coordinates (bounds {xmin:.6g}, {ymin:.6g}, "
            f"{xmax:.6g}, {ymax:.6g}) are not lon/lat; give the file a CRS (e.g. a .prj file)"
        )


def _reproject(path: Path, raw: _RawFile) -> None:
    """Transform every geometry to EPSG:4326 in place (in one call) when the file has another CRS."""
    if raw.crs is None or CRS.from_user_input(raw.crs).equals(WGS84, ignore_axis_order=True):
        return
    try:
        moved = gpd.GeoSeries([f.geometry for f in raw.features], crs=raw.crs).to_crs(WGS84)
    except Exception as exc:
        raise SiteValidationError(f"{path}: cannot reproject from {raw.crs} to EPSG:4326 ({exc})") from exc
    for feat, geom in zip(raw.features, moved, strict=True):
        feat.geometry = geom


def _out_of_range(geom: BaseGeometry) -> bool:
    """True when a coordinate is not finite or outside lon [-180, 180], lat [-90, 90]."""
    finite = np.isfinite(shapely.get_coordinates(geom)).all()
    return not (finite and _in_range(*shapely.bounds(geom)))


def _in_range(xmin: float, ymin: float, xmax: float, ymax: float) -> bool:
    return bool(xmin >= -180 and xmax <= 180 and ymin >= -90 and ymax <= 90)


def _single_parts(geom: BaseGeometry) -> list[BaseGeometry]:
    """The non-empty single-part geometries of a geometry or collection (two levels deep)."""
    return [q for p in shapely.get_parts(geom) for q in shapely.get_parts(p) if not q.is_empty]


def _combine(polygons: list[Polygon]) -> Polygon | MultiPolygon:
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    """The geometry as (Multi)Polygon, or None if any non-empty part is not a polygon."""
    geom = shapely.force_2d(geom)
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    if geom.geom_type != "GeometryCollection":
        return None
    parts = _single_parts(geom)
    return _combine(parts) if parts and all(isinstance(p, Polygon) for p in parts) else None


def _polygon_parts(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (make_valid may add lines and points), maybe empty."""
    polygons = [p for p in _single_parts(geom) if isinstance(p, Polygon)]
    return _combine(polygons) if polygons else Polygon()


def _repair(geom: BaseGeometry) -> tuple[BaseGeometry | None, str]:
    """`make_valid` kept only if the repaired area is within 1 % of the original's: (geometry, reason).

    The original area is the planar area of the invalid rings, so a bow-tie (whose two lobes cancel)
    or overlapping parts change it and are rejected; a ring that merely touches itself keeps it.
    Areas are compared in lon/lat degrees: the test is a ratio and the features are small.
    """
    reason = shapely.is_valid_reason(geom)
    repaired = _polygon_parts(shapely.make_valid(geom))
    before, after = geom.area, repaired.area
    if repaired.is_empty or before <= 0 or abs(after - before) > REPAIR_AREA_TOLERANCE * before:
        change = f"{(after - before) / before:+.1%}" if before > 0 else "from zero"
        return None, f"invalid geometry ({reason}); repairing it changes its area {change}, so it is rejected"
    change = f"{after / before - 1:+.2%}"
    return repaired, f"invalid geometry ({reason}) repaired with make_valid (area change {change})"


# ------------------------------------------------------------------------------------------ validation


def _validate(source: str, raw: _RawFile, default_buffer_m: float) -> ImportReport:
    """Check every feature and build the sites; rejected features become errors, repairs warnings."""
    report = ImportReport(source)
    first_seen: dict[str, int] = {}
    candidates: list[tuple[_RawFeature, dict[str, Any], BaseGeometry]] = []
    for feat in raw.features:
        kwargs, problems = _site_kwargs(feat.props, default_buffer_m)
        site_id, name = kwargs.get("id"), kwargs.get("name")
        issue = _issue_factory(feat.index, site_id, name)
        errors = [*_identity_problems(site_id, name, first_seen, feat.index), *problems]
        geometry, geom_problem, warning = _check_geometry(feat, kwargs)
        if geom_problem:
            errors.append(geom_problem)
        if errors:
            report.errors += [issue(message) for message in errors]
            continue
        if warning:
            report.warnings.append(issue(warning))
        candidates.append((feat, kwargs, geometry))

    candidates = _buffer_points(candidates)
    areas = areas_m2([geom for _, _, geom in candidates])
    for (feat, kwargs, geom), area in zip(candidates, areas, strict=True):
        issue = _issue_factory(feat.index, kwargs.get("id"), kwargs.get("name"))
        if not MIN_AREA_M2 <= area <= MAX_AREA_M2:
            report.errors.append(
                issue(f"area {area:,.1f} m² is outside [{MIN_AREA_M2:g} m², {MAX_AREA_M2 / 1e6:,.0f} km²]")
            )
            continue
        try:
            report.sites.append(Site(geometry=geom, **kwargs))
        except ValidationError as exc:
            report.errors.append(issue(_pydantic_message(exc)))
    report.errors.sort(key=lambda i: i.index)
    return report


def _issue_factory(index: int, site_id: Any, name: Any) -> Callable[[str], FeatureIssue]:
    """A function making issues about one feature."""
    sid = None if site_id is None else str(site_id)
    nm = None if name is None else str(name)
    return lambda message: FeatureIssue(index, sid, nm, message)


def _identity_problems(site_id: str | None, name: Any, first_seen: dict[str, int], index: int) -> list[str]:
    """Missing id or name, and ids already used by an earlier feature of the file."""
    problems = []
    if not site_id:
        problems.append("missing id")
    elif site_id in first_seen:
        problems.append(f"duplicate id {site_id!r} (first used by feature {first_seen[site_id]})")
    else:
        first_seen[site_id] = index
    if name is None or not str(name).strip():
        problems.append("missing name")
    return problems


def _check_geometry(
    feat: _RawFeature, kwargs: Mapping[str, Any]
) -> tuple[BaseGeometry | None, str | None, str | None]:
    """(geometry, error, warning) of one feature: present, in range, polygonal and valid (or repairable).

    A point is accepted only when it comes from CSV lat/lon columns with `buffer_m` > 0; it is buffered
    later, for all rows at once.
    """
    geom = feat.geometry
    if feat.geometry_error:
        return None, feat.geometry_error, None
    if geom is None:
        return None, "no geometry (null)", None
    if geom.is_empty:
        return None, "empty geometry", None
    if _out_of_range(geom):
        xmin, ymin, xmax, ymax = shapely.bounds(geom)
        bounds = f"{xmin:.6g}, {ymin:.6g}, {xmax:.6g}, {ymax:.6g}"
        message = f"coordinates out of range (bounds {bounds}): lon must be in [-180, 180], lat in [-90, 90]"
        return None, message, None
    if feat.csv_point:
        buffer_m = _as_float(kwargs.get("buffer_m"))
        if buffer_m is None or buffer_m <= 0:
            return None, "a lat/lon point needs buffer_m > 0 to become a polygon", None
        return geom, None, None
    polygon = _polygonal(geom)
    if polygon is None:
        return None, f"geometry is a {geom.geom_type}; a site needs a Polygon or MultiPolygon", None
    if shapely.is_valid(polygon):
        return polygon, None, None
    repaired, message = _repair(polygon)
    return (repaired, None, message) if repaired is not None else (None, message, None)


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _buffer_points(
    candidates: list[tuple[_RawFeature, dict[str, Any], BaseGeometry]],
) -> list[tuple[_RawFeature, dict[str, Any], BaseGeometry]]:
    """Points become circles of radius `buffer_m` (in a local metric CRS), all in one call."""
    points = [i for i, (feat, _, _) in enumerate(candidates) if feat.csv_point]
    if not points:
        return candidates
    circles = buffer_geometries(
        [candidates[i][2] for i in points], [float(candidates[i][1]["buffer_m"]) for i in points]
    )
    out = list(candidates)
    for i, circle in zip(points, circles, strict=True):
        feat, kwargs, _ = out[i]
        out[i] = (feat, kwargs, circle)
    return out


# --------------------------------------------------------------------------------------------- writing


def write_sites(sites: Iterable[Site], fmt: str = "geojson") -> bytes:
    """Sites as UTF-8 bytes: a GeoJSON FeatureCollection or a CSV with a `wkt` column.

    Both use the flat property names `read_sites` reads, so writing then reading gives equal sites.
    """
    sites = list(sites)
    if fmt == "geojson":
        collection = {"type": "FeatureCollection", "features": [_flat_feature(s) for s in sites]}
        return json.dumps(collection, ensure_ascii=False).encode("utf-8")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_csv_row(s) for s in sites)
        return out.getvalue().encode("utf-8")
    raise ValueError(f"unknown format {fmt!r}; expected 'geojson' or 'csv'")


def _flat_properties(site: Site) -> dict[str, Any]:
    """A site's properties with the `SiteParams` fields at the top level, as `read_sites` expects."""
    props = site.model_dump(exclude={"id", "geometry", "params"})
    return props | site.params.model_dump()


def _flat_feature(site: Site) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": site.id,
        "properties": {"name": site.name} | _flat_properties(site),
        "geometry": shapely.geometry.mapping(site.geometry),
    }


def _csv_row(site: Site) -> dict[str, Any]:
    """One CSV row: lists joined by `;`, dicts as JSON, geometry as full-precision WKT."""
    row: dict[str, Any] = {"id": site.id} | _flat_properties(site)
    row["materials"] = ";".join(site.materials)
    row["thresholds"] = json.dumps(site.thresholds) if site.thresholds else ""
    row["wkt"] = shapely.to_wkt(site.geometry, rounding_precision=WKT_PRECISION, trim=True)
    return {k: ("" if v is None else v) for k, v in row.items()}
