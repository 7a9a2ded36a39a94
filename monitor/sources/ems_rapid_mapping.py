"""CEMS Rapid Mapping activations and observed-event delineations per site.

Remote mode (public API, no authentication; base URL `HM_EMS_URL`):

1. the activation list `GET {HM_EMS_URL}/public-activations-info/?limit=&offset=` is read page by page
   (DRF pagination; only the query of the `next` link is used, applied to our own base URL), at most
   `HM_EMS_MAX_PAGES` pages of `HM_EMS_PAGE_SIZE`;
2. activations relevant to the period (activated on or before its end and still open, or closed but last
   updated on or after its start minus `HM_EMS_RECENT_DAYS`) have their detail read from `GET
   {HM_EMS_URL}/public-activations/?code=EMSRxxx` only when their `(lastUpdate, n_products, n_aois)`
   changed since the last run (state in `<data dir>/cache/ems_rapid_mapping/state.json`; details in the
   raw cache);
3. the areas of interest's WKT `extent`s are intersected with each site polygon grown by its buffer.

Output per site and day: `ems_active`, the number of activations active that day whose AOI intersects the
site+buffer. An activation is active from its activation day to, when closed, the day of its last update
(the API gives no closing date: our approximation), else to the end of the period. The activations of each
site are listed in the `activations` attribute (JSON `{site: [{code, name, category, from, to}]}`).

Local mode (`HM_EMS_RAPID_MAPPING_PATH`, searched recursively):

- `*.json`: saved activation details (a detail answer `{"results": [...]}` or one activation object); they
  give `ems_active` as above, a closed activation ending on its last product delivery day;
- observed-event delineations, vector files whose name contains `observed_event` or `observedEvent`
  (`.shp`, `.gpkg`, `.geojson`, e.g. EMSR332 `..._DEL_MONIT01_v1_observed_event_a.shp`): each polygon is
  dated by the post-event image of its `dmg_src_id` in the sibling `<same prefix>_source.dbf`, else by the
  `eventTime` of a saved detail of the same activation code; undated layers are skipped and listed in
  `undated_layers`. They give `ems_flooded_fraction`, the fraction of the site+buffer inside the
  observed-event polygons of that date (areas in the site's UTM zone).

The time axis is daily over the period when activation details are known, else only the event dates.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import xarray as xr
from shapely import wkt
from shapely.geometry.base import BaseGeometry

from monitor.settings import Settings
from monitor.sources import SOURCES, attribution
from monitor.sources.base import SourceNotAvailableError, SourceRequestError
from monitor.sources.ems_client import EmsHttp, EmsState, next_params
from monitor.sources.sh_client import RawCache
from sites import SiteSet
from sites.geometry import areas_m2

log = logging.getLogger(__name__)

SOURCE_ID = "ems_rapid_mapping"
LIST_PATH = "public-activations-info/"
DETAIL_PATH = "public-activations/"
CODE_RE = re.compile(r"EMSR\d{3,4}", re.IGNORECASE)
OBSERVED_RE = re.compile(r"observed_?event", re.IGNORECASE)
VECTOR_SUFFIXES = {".shp", ".gpkg", ".geojson"}

VARIABLES: dict[str, dict[str, str]] = {
    "ems_active": {
        "units": "1",
        "long_name": "Active CEMS Rapid Mapping activations whose area of interest meets the site+buffer",
    },
    "ems_flooded_fraction": {
        "units": "1",
        "long_name": "Fraction of the site+buffer inside CEMS observed-event delineations of the day",
    },
}


# --- parsing ------------------------------------------------------------------------------------------


def _dt(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _day(value: Any) -> date | None:
    parsed = _dt(value)
    return parsed.astimezone(UTC).date() if parsed else None


def _category(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("slug") or "")
    return str(value or "")


def _wkt(text: Any) -> BaseGeometry | None:
    if not text or not isinstance(text, str):
        return None
    try:
        geom = wkt.loads(text.split(";", 1)[-1] if text.upper().startswith("SRID=") else text)
    except (shapely.errors.GEOSException, ValueError):
        return None
    if geom.is_empty:
        return None
    return geom if geom.is_valid else shapely.make_valid(geom)


@dataclass
class Activation:
    """What we keep of one activation."""

    code: str
    name: str = ""
    category: str = ""
    activation_day: date | None = None
    event_day: date | None = None
    closed: bool = False
    last_day: date | None = None
    aois: list[BaseGeometry] = field(default_factory=list)
    #: (AOI extent, product object) of every product of the detail
    products: list[tuple[BaseGeometry | None, dict]] = field(default_factory=list)

    @property
    def is_flood(self) -> bool:
        return "flood" in self.category.lower()

    def active_until(self, end: date) -> date:
        if self.closed:
            return self.last_day or self.activation_day or end
        return end


def signature(record: dict) -> list:
    """The change-detection key of a list record (the API has no ETag nor "updated since")."""
    return [record.get("lastUpdate"), record.get("n_products"), record.get("n_aois")]


def detail_results(payload: Any) -> list[dict]:
    """The activation objects of a detail answer (or a bare activation object)."""
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        return [r for r in payload["results"] if isinstance(r, dict)]
    if isinstance(payload, dict) and "code" in payload:
        return [payload]
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, dict) and "code" in r]
    return []


def parse_activation(detail: dict, record: dict | None = None) -> Activation:
    """An `Activation` from a detail object, completed by its list record when known."""
    record = record or {}
    aois = [g for g in (_wkt(a.get("extent")) for a in detail.get("aois") or []) if g is not None]
    if not aois:
        extent = _wkt(detail.get("extent"))
        if extent is not None:
            aois = [extent]
    deliveries = [
        _day((p.get("version") or {}).get("deliveryTime"))
        for a in detail.get("aois") or []
        for p in a.get("products") or []
    ]
    deliveries = [d for d in deliveries if d]
    closed = bool(record.get("closed", detail.get("closed", False)))
    last_day = _day(record.get("lastUpdate")) or (max(deliveries) if deliveries else None)
    return Activation(
        code=str(detail.get("code") or record.get("code")),
        name=str(detail.get("name") or record.get("name") or ""),
        category=_category(detail.get("category") or record.get("category")),
        activation_day=_day(detail.get("activationTime") or record.get("activationTime")),
        event_day=_day(detail.get("eventTime") or record.get("eventTime")),
        closed=closed,
        last_day=last_day,
        aois=aois,
        products=[
            (_wkt(a.get("extent")), p)
            for a in detail.get("aois") or []
            for p in a.get("products") or []
            if isinstance(p, dict)
        ],
    )


def is_candidate(record: dict, start: date, end: date, recent_days: int) -> bool:
    """Whether an activation of the list may have been active during [start, end]."""
    activated = _day(record.get("activationTime")) or _day(record.get("eventTime"))
    if activated is not None and activated > end:
        return False
    if not record.get("closed", False):
        return True
    updated = _day(record.get("lastUpdate"))
    return updated is None or updated >= start - timedelta(days=recent_days)


# --- delineations -------------------------------------------------------------------------------------


def _source_dates(table: str | Path) -> dict[int, date]:
    """dmg_src_id -> acquisition date of post-event images, from an EMS `_source.dbf` table."""
    import pyogrio

    frame = pyogrio.read_dataframe(str(table), read_geometry=False)
    out: dict[int, date] = {}
    for row in frame.to_dict("records"):
        phase = str(row.get("eventphase") or "").lower()
        if "post" not in phase:
            continue
        try:
            src_id = int(row.get("src_id"))
            out[src_id] = datetime.strptime(str(row.get("src_date")).strip(), "%d/%m/%Y").date()
        except (TypeError, ValueError):
            continue
    return out


def _source_table_name(layer_name: str) -> str | None:
    """`<prefix>source.dbf` of an `<prefix>observed_event_a.shp` layer (the old EMS vector naming)."""
    stem = layer_name.rsplit(".", 1)[0]
    match = OBSERVED_RE.search(stem)
    return f"{stem[: match.start()]}source.dbf" if match else None


@dataclass
class Layer:
    """One observed-event vector layer to read and how to date its polygons."""

    path: str  # a file path or a GDAL /vsizip/ path
    name: str
    dates: dict[int, date] = field(default_factory=dict)  # dmg_src_id -> post-event image date
    fallback: date | None = None  # date of polygons the source table does not date


def local_layer(path: Path, event_days: dict[str, date]) -> Layer:
    table_name = _source_table_name(path.name)
    table = (
        next(
            (t for t in (path.with_name(table_name), path.with_name(table_name[:-3] + "DBF")) if t.exists()),
            None,
        )
        if table_name
        else None
    )
    code = CODE_RE.search(str(path))
    return Layer(
        str(path),
        path.name,
        _source_dates(table) if table else {},
        event_days.get(code.group(0).upper()) if code else None,
    )


def zip_layers(zip_path: Path, fallback: date | None) -> list[Layer]:
    """The observed-event layers inside a delineation product zip."""
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    lower = {n.lower(): n for n in names}
    layers = []
    for member in names:
        suffix = Path(member).suffix.lower()
        if suffix not in VECTOR_SUFFIXES or not OBSERVED_RE.search(Path(member).stem):
            continue
        table_name = _source_table_name(member)
        table = lower.get(table_name.lower()) if table_name else None
        dates = _source_dates(f"/vsizip/{zip_path}/{table}") if table else {}
        layers.append(Layer(f"/vsizip/{zip_path}/{member}", f"{zip_path.name}:{member}", dates, fallback))
    return layers


@dataclass
class Delineations:
    """Observed-event polygons by date (EPSG:4326), and what could not be used."""

    by_day: dict[date, list[BaseGeometry]] = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)
    undated: list[str] = field(default_factory=list)


def read_delineations(layers: list[Layer], bbox: tuple[float, float, float, float] | None) -> Delineations:
    """Flood polygons of the layers grouped by event date, limited to `bbox` (W, S, E, N).

    Rows whose `event_type` is not a flood (e.g. a burnt area of a wildfire activation) are left out."""
    import geopandas as gpd

    out = Delineations()
    for layer in layers:
        try:
            frame = gpd.read_file(layer.path, bbox=bbox) if bbox else gpd.read_file(layer.path)
        except Exception as exc:
            log.warning("cannot read delineation %s: %s", layer.name, type(exc).__name__)
            out.undated.append(f"{layer.name} (unreadable)")
            continue
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            frame = frame.to_crs(4326)
        if "event_type" in frame:
            frame = frame[frame["event_type"].astype(str).str.contains("flood", case=False)]
        sources = frame["dmg_src_id"] if "dmg_src_id" in frame else [None] * len(frame)
        used = 0
        for geom, src in zip(frame.geometry, sources, strict=True):
            if geom is None or geom.is_empty:
                continue
            try:
                day = layer.dates.get(int(src)) if src is not None else None
            except (TypeError, ValueError):
                day = None
            day = day or layer.fallback
            if day is None:
                continue
            out.by_day.setdefault(day, []).append(geom if geom.is_valid else shapely.make_valid(geom))
            used += 1
        if used == 0 and len(frame):
            out.undated.append(layer.name)
        out.layers.append(
            {"file": layer.name, "polygons": used, "dated_by": "source table" if layer.dates else "event"}
        )
    return out


def _merge(a: Delineations, b: Delineations) -> Delineations:
    for day, polys in b.by_day.items():
        a.by_day.setdefault(day, []).extend(polys)
    a.layers.extend(b.layers)
    a.undated.extend(b.undated)
    return a


def product_day(product: dict) -> date | None:
    """Date of a product's observation: its latest (post-event) image, else its delivery."""
    images = [_day(i.get("acquisitionTime")) for i in product.get("images") or [] if isinstance(i, dict)]
    images = [d for d in images if d]
    return max(images) if images else _day((product.get("version") or {}).get("deliveryTime"))


def flooded_fractions(geoms: list[BaseGeometry], delineations: Delineations) -> dict[date, np.ndarray]:
    """Per event day, the fraction of each site geometry inside that day's polygons."""
    site_area = areas_m2(geoms)
    out: dict[date, np.ndarray] = {}
    for day, polys in delineations.by_day.items():
        tree = shapely.STRtree(polys)
        frac = np.zeros(len(geoms))
        for i, g in enumerate(geoms):
            hits = tree.query(g, predicate="intersects")
            if len(hits) == 0 or site_area[i] <= 0:
                continue
            inter = shapely.intersection(g, shapely.union_all([polys[k] for k in hits]))
            if inter.is_empty:
                continue
            frac[i] = min(1.0, float(areas_m2([inter])[0] / site_area[i]))
        out[day] = frac
    return out


# --- the source ---------------------------------------------------------------------------------------


class EmsRapidMappingSource:
    """CEMS Rapid Mapping: active activations per site (remote/local) and flooded fractions (local)."""

    def __init__(self, settings: Settings, mode: str, transport: Any = None) -> None:
        if mode not in ("local", "remote"):
            raise SourceNotAvailableError(f"ems_rapid_mapping has no {mode!r} mode here; use local or remote")
        self.info = SOURCES[SOURCE_ID]
        self.mode = mode
        self.settings = settings
        self.base_url = settings.ems_url.rstrip("/") + "/"
        self.cache_dir = settings.data_dir / "cache" / SOURCE_ID
        self.cache = RawCache(self.cache_dir)
        self._transport = transport

    def __repr__(self) -> str:
        return f"EmsRapidMappingSource(mode={self.mode!r}, url={self.base_url!r})"

    def _http(self) -> EmsHttp:
        s = self.settings
        return EmsHttp(
            timeout=s.ems_timeout_seconds,
            max_attempts=s.ems_max_attempts,
            backoff=s.ems_backoff_seconds,
            max_retry_after=s.ems_max_retry_after_seconds,
            transport=self._transport,
        )

    # -- remote --------------------------------------------------------------------------------------

    def list_activations(self, http: EmsHttp) -> list[dict]:
        """All list records (bounded by `HM_EMS_MAX_PAGES`)."""
        url = self.base_url + LIST_PATH
        params: dict[str, Any] | None = {"limit": self.settings.ems_page_size, "offset": 0}
        records: list[dict] = []
        seen_offsets: set[str] = set()
        for _ in range(self.settings.ems_max_pages):
            page = http.get_json(url, params)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise SourceRequestError(f"unexpected activation list page from {url}")
            records.extend(r for r in page["results"] if isinstance(r, dict) and r.get("code"))
            params = next_params(page.get("next"))
            if not params:
                break
            marker = json.dumps(params, sort_keys=True)
            if marker in seen_offsets:
                break
            seen_offsets.add(marker)
        else:
            log.warning("Rapid Mapping list truncated at %d pages", self.settings.ems_max_pages)
        return records

    def _fetch_remote(
        self, sites: SiteSet, start: date, end: date
    ) -> tuple[list[Activation], Delineations, dict]:
        http = self._http()
        state = EmsState(self.cache_dir / "state.json")
        fetched, reused, missing = [], [], []
        activations: list[Activation] = []
        delineations = Delineations()
        products: list[str] = []
        try:
            records = self.list_activations(http)
            detail_url = self.base_url + DETAIL_PATH
            for record in records:
                if not is_candidate(record, start, end, self.settings.ems_recent_days):
                    continue
                code = str(record["code"])
                sig = signature(record)
                detail = state.unchanged(code, sig, self.cache)
                if detail is None:
                    detail = http.get_json(detail_url, {"code": code})
                    key = RawCache.key({"url": detail_url, "params": {"code": code}})
                    self.cache.put(key, detail)
                    state.remember(code, sig, key)
                    fetched.append(code)
                else:
                    reused.append(code)
                results = [r for r in detail_results(detail) if str(r.get("code")) == code] or detail_results(
                    detail
                )
                if not results:
                    missing.append(code)
                    continue
                activations.append(parse_activation(results[0], record))
            state.save()
            if self.settings.ems_download_delineations:
                delineations, products = self._remote_delineations(http, activations, sites, start, end)
        finally:
            state.save()
            http.close()
        request = {
            "mode": "remote",
            "list_url": self.base_url + LIST_PATH,
            "detail_url": self.base_url + DETAIL_PATH,
            "page_size": self.settings.ems_page_size,
            "listed": len(records),
            "details_fetched": sorted(fetched),
            "details_unchanged": sorted(reused),
            "details_missing": sorted(missing),
            "delineation_products": products,
            "http_requests": http.requests_sent,
        }
        return activations, delineations, request

    def _remote_delineations(
        self, http: EmsHttp, activations: list[Activation], sites: SiteSet, start: date, end: date
    ) -> tuple[Delineations, list[str]]:
        """Observed flood extents of the delineation products of flood activations whose AOI meets a site
        (product zips downloaded once into `<data dir>/cache/ems_rapid_mapping/products/`)."""
        geoms = sites.geometries(buffered=True)
        if not geoms:
            return Delineations(), []
        tree = shapely.STRtree(geoms)
        layers: list[Layer] = []
        used: list[str] = []
        for act in activations:
            if not act.is_flood:
                continue
            for aoi, product in act.products:
                url = product.get("downloadPath")
                version = product.get("version") or {}
                if (
                    product.get("type") != "DEL"
                    or version.get("statusCode") not in (None, "F")
                    or not isinstance(url, str)
                    or not url.lower().endswith(".zip")
                ):
                    continue
                if aoi is not None and len(tree.query(aoi, predicate="intersects")) == 0:
                    continue
                day = product_day(product)
                if day is None or not start <= day <= end:
                    continue
                target = self.cache_dir / "products" / f"{RawCache.key({'url': url})}.zip"
                if not target.exists():
                    http.get(url, dest=target)
                try:
                    layers.extend(zip_layers(target, day))
                except Exception as exc:  # a corrupt zip: dropped, the next run downloads it again
                    log.warning("unreadable product %s: %s", url.rsplit("/", 1)[-1], type(exc).__name__)
                    target.unlink(missing_ok=True)
                    continue
                used.append(url.rsplit("/", 1)[-1])
        delineations = read_delineations(layers, sites.bounds())
        delineations.by_day = {d: g for d, g in delineations.by_day.items() if start <= d <= end}
        return delineations, used

    # -- local ---------------------------------------------------------------------------------------

    def _fetch_local(
        self, sites: SiteSet, start: date, end: date
    ) -> tuple[list[Activation], Delineations, dict]:
        root = self.settings.ems_rapid_mapping_path
        if root is None or not Path(root).exists():
            raise SourceRequestError(
                "HM_EMS_RAPID_MAPPING_PATH must name a folder of saved EMS files (local mode)"
            )
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        activations: list[Activation] = []
        for path in (p for p in files if p.suffix.lower() == ".json"):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                log.warning("skipping %s: not JSON", path.name)
                continue
            activations.extend(parse_activation(d) for d in detail_results(payload))
        event_days = {a.code.upper(): a.event_day for a in activations if a.event_day}
        layers = [p for p in files if p.suffix.lower() in VECTOR_SUFFIXES and OBSERVED_RE.search(p.stem)]
        bounds = sites.bounds() if len(sites) else None
        delineations = read_delineations([local_layer(p, event_days) for p in layers], bounds)
        delineations.by_day = {d: g for d, g in delineations.by_day.items() if start <= d <= end}
        request = {
            "mode": "local",
            "path": str(root),
            "detail_files": sum(1 for p in files if p.suffix.lower() == ".json"),
            "delineation_files": [p.name for p in layers],
        }
        return activations, delineations, request

    # -- public --------------------------------------------------------------------------------------

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        if end < start:
            raise SourceRequestError(f"end {end} is before start {start}")
        if self.mode == "remote":
            activations, delineations, request = self._fetch_remote(sites, start, end)
            dense = True
        else:
            activations, delineations, request = self._fetch_local(sites, start, end)
            dense = bool(activations)
        return self._cube(sites, start, end, activations, delineations, request, dense)

    def _cube(
        self,
        sites: SiteSet,
        start: date,
        end: date,
        activations: list[Activation],
        delineations: Delineations,
        request: dict,
        dense: bool,
    ) -> xr.Dataset:
        ids = sites.ids
        geoms = sites.geometries(buffered=True)
        flooded = flooded_fractions(geoms, delineations) if delineations.by_day else {}
        days = (
            [start + timedelta(days=k) for k in range((end - start).days + 1)] if dense else sorted(flooded)
        )
        col = {d: j for j, d in enumerate(days)}
        shape = (len(ids), len(days))
        active = np.zeros(shape, dtype=np.float32) if dense else np.full(shape, np.nan, dtype=np.float32)
        per_site: dict[str, list[dict]] = {sid: [] for sid in ids}
        if activations and days:
            tree = shapely.STRtree(geoms) if geoms else None
            for act in activations:
                first = act.activation_day or act.event_day
                if first is None or tree is None:
                    continue
                last = act.active_until(end)
                lo, hi = max(first, start), min(last, end)
                hits: set[int] = set()
                for aoi in act.aois:
                    hits.update(int(k) for k in tree.query(aoi, predicate="intersects"))
                for i in sorted(hits):
                    per_site[ids[i]].append(
                        {
                            "code": act.code,
                            "name": act.name,
                            "category": act.category,
                            "from": first.isoformat(),
                            "to": None if not act.closed else last.isoformat(),
                        }
                    )
                    if lo <= hi:
                        active[i, col[lo] : col[hi] + 1] += 1
        flood = np.full(shape, np.nan, dtype=np.float32)
        for day, frac in flooded.items():
            if day in col:
                flood[:, col[day]] = frac
        time = np.array([np.datetime64(d.isoformat(), "ns") for d in days], dtype="datetime64[ns]")
        ds = xr.Dataset(
            {
                "ems_active": (("site", "time"), active, dict(VARIABLES["ems_active"])),
                "ems_flooded_fraction": (("site", "time"), flood, dict(VARIABLES["ems_flooded_fraction"])),
            },
            coords={
                "site": ("site", np.array(ids, dtype=object), {"long_name": "site id"}),
                "time": ("time", time, {"standard_name": "time", "long_name": "time"}),
            },
        )
        ds["coverage"] = ("site", np.ones(len(ids)), {"units": "1", "long_name": "fraction of site covered"})
        ds["covered"] = ("site", np.ones(len(ids), dtype=bool), {"long_name": "site inside product coverage"})
        ds.attrs.update(
            source=SOURCE_ID,
            product="CEMS Rapid Mapping activations and observed-event delineations",
            product_version="dashboard-api public-activations",
            attribution=attribution(SOURCE_ID, end.year)
            + "".join(f" {c}." for c in sorted({a["code"] for v in per_site.values() for a in v})),
            request=json.dumps(
                {**request, "start": start.isoformat(), "end": end.isoformat()}, sort_keys=True
            ),
            retrieved_at=datetime.now(UTC).isoformat(timespec="seconds"),
            synthetic="false",
            activations=json.dumps({k: v for k, v in per_site.items() if v}, sort_keys=True),
            delineation_layers=json.dumps(delineations.layers),
            undated_layers=json.dumps(delineations.undated),
        )
        return ds


def build(settings: Settings, mode: str) -> EmsRapidMappingSource:
    """The Rapid Mapping source in `mode` (local | remote); building it touches no network."""
    return EmsRapidMappingSource(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    """Remote: reads one list page of one activation; local: checks the folder."""
    mode = settings.source_mode(SOURCE_ID)
    if mode == "local":
        path = settings.ems_rapid_mapping_path
        ok = path is not None and Path(path).exists()
        return {
            "mode": mode,
            "reachable": ok,
            "licence_accepted": None,
            "message": f"saved EMS files in {path}" if ok else "HM_EMS_RAPID_MAPPING_PATH does not exist",
        }
    if mode != "remote":
        return {
            "mode": mode,
            "reachable": None,
            "licence_accepted": None,
            "message": f"mode {mode}: nothing to check",
        }
    source = EmsRapidMappingSource(settings, mode)
    http = source._http()
    try:
        page = http.get_json(source.base_url + LIST_PATH, {"limit": 1, "offset": 0})
        count = page.get("count") if isinstance(page, dict) else None
        return {
            "mode": mode,
            "reachable": True,
            "licence_accepted": None,
            "message": f"{count} activations listed",
        }
    except Exception as exc:
        return {
            "mode": mode,
            "reachable": False,
            "licence_accepted": None,
            "message": f"{type(exc).__name__}: {exc}",
        }
    finally:
        http.close()
