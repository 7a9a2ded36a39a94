"""The store: every read and write of the database goes through here, in bulk where it matters."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Row,
    String,
    Table,
    and_,
    cast,
    delete,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert

from monitor.store.tables import (
    SITE_GEOM,
    AlertEventRow,
    AlertRow,
    ApiKeyRow,
    IndicatorValueRow,
    RunRow,
    SiteRow,
    WatermarkRow,
)
from sites import Site, SiteNotFoundError, SiteParams, SiteSet

ROLES = ("admin", "manager", "reader")
VALUE_COLUMNS = (
    "site_id",
    "indicator_id",
    "period_start",
    "freq",
    "value",
    "level",
    "material",
    "indicator_version",
    "source",
    "product",
    "product_version",
    "synthetic",
    "coverage",
)
_BATCH = 5000


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A short, unique, URL-safe id with a type prefix (e.g. `alr_3f9c…`)."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def insert_for(session: Session, table):
    """The dialect's INSERT that supports ON CONFLICT (SQLite and PostgreSQL both do)."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def site_to_row_values(site: Site) -> dict:
    geom = site.geometry
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    return {
        "id": site.id,
        "name": site.name,
        "country": site.country,
        "heritage_type": site.heritage_type,
        "materials": list(site.materials),
        "unesco_id": site.unesco_id,
        "national_id": site.national_id,
        "buffer_m": site.buffer_m,
        "params": site.params.model_dump(),
        "thresholds": site.thresholds,
        "geometry_wkb": shapely.to_wkb(geom),
        "min_lon": min_lon,
        "min_lat": min_lat,
        "max_lon": max_lon,
        "max_lat": max_lat,
    }


def _site_conditions(
    dialect: str,
    bbox: tuple[float, float, float, float] | None,
    intersects: BaseGeometry | None,
    country: str | None,
    material: str | None,
    heritage_type: str | None,
) -> list[ColumnElement[bool]]:
    """SQL conditions of a site search. On PostgreSQL the spatial ones are exact (PostGIS, GIST index);
    elsewhere they compare bounding boxes only and `_intersecting_ids` finishes the job."""
    conds: list[ColumnElement[bool]] = []
    if country:
        conds.append(SiteRow.country == country.strip().upper())
    if heritage_type:
        lower = func.lower if dialect == "postgresql" else func.unicode_lower  # SQLite's lower() is ASCII
        conds.append(lower(SiteRow.heritage_type) == heritage_type.strip().lower())
    if material:
        wanted = material.strip().lower().replace(" ", "_")  # as `Site` normalises its materials
        if dialect == "postgresql":
            conds.append(cast(SiteRow.materials, postgresql.JSONB).contains([wanted]))
        else:
            each = func.json_each(SiteRow.materials).table_valued("value")
            conds.append(select(1).select_from(each).where(each.c.value == wanted).exists())
    if dialect == "postgresql":
        if bbox is not None:
            conds.append(func.ST_Intersects(SITE_GEOM, func.ST_MakeEnvelope(*bbox, 4326)))
        if intersects is not None:
            area = func.ST_GeomFromWKB(shapely.to_wkb(intersects), 4326)
            conds.append(func.ST_Intersects(SITE_GEOM, area))
        return conds
    for box in (bbox, None if intersects is None else intersects.bounds):
        if box is not None:
            w, s, e, n = box
            conds += [SiteRow.max_lon >= w, SiteRow.min_lon <= e, SiteRow.max_lat >= s, SiteRow.min_lat <= n]
    return conds


def _intersecting_ids(
    candidates: Sequence[Row], bbox: tuple[float, float, float, float] | None, intersects: BaseGeometry | None
) -> list[str]:
    """Ids of the (id, geometry_wkb) candidates whose geometry intersects the bbox and the geometry given,
    in their order (shapely, vectorised: the SQLite side of the spatial filters)."""
    if not candidates:
        return []
    geoms = shapely.from_wkb([c.geometry_wkb for c in candidates])
    keep = np.ones(len(candidates), dtype=bool)
    for area in (None if bbox is None else shapely.box(*bbox), intersects):
        if area is not None:
            shapely.prepare(area)
            keep &= shapely.intersects(area, geoms)
    return [c.id for c, k in zip(candidates, keep, strict=True) if k]


def row_to_site(row: SiteRow | Row, geometry: BaseGeometry | None = None) -> Site:
    """A stored site (an ORM row, or a row of `SITE_COLUMNS`); `geometry` when already decoded."""
    return Site(
        id=row.id,
        name=row.name,
        geometry=shapely.from_wkb(row.geometry_wkb) if geometry is None else geometry,
        buffer_m=row.buffer_m,
        country=row.country,
        heritage_type=row.heritage_type,
        materials=list(row.materials or []),
        unesco_id=row.unesco_id,
        national_id=row.national_id,
        thresholds=dict(row.thresholds or {}),
        params=SiteParams(**(row.params or {})),
    )


#: The columns a `Site` is made of, one per field (the geometry as WKB): selected as plain rows, 100,000
#: sites load in half the time ORM objects take.
SITE_COLUMNS = tuple(getattr(SiteRow, "geometry_wkb" if f == "geometry" else f) for f in Site.model_fields)


def rows_to_sites(rows: Sequence[Row]) -> list[Site]:
    """Sites from rows of `SITE_COLUMNS`, their geometries decoded in one vectorised call."""
    geometries = shapely.from_wkb(np.fromiter((r.geometry_wkb for r in rows), dtype=object, count=len(rows)))
    return [row_to_site(r, g) for r, g in zip(rows, geometries, strict=True)]


@dataclass(frozen=True)
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class KeyGrant:
    """What a live API key grants: its id, role and (for managers) the sites it may change."""

    id: str
    role: str
    site_ids: frozenset[str]


@dataclass(frozen=True)
class SiteLabel:
    """A site's id, name and per-indicator threshold overrides: what a series names, without decoding its
    geometry or validating a whole `Site`."""

    id: str
    name: str
    thresholds: dict


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created key: `secret` is shown once and never stored."""

    id: str
    name: str
    role: str
    secret: str
    site_ids: list[str]


def key_order(records: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Row order by `columns` (a unique index's columns, first the leading one): rows written in the
    index's order visit each of its B-tree pages once, whichever indicators and sites they come from."""
    return np.lexsort([pd.factorize(records[c], sort=True)[0] for c in reversed(columns)])


class Store:
    """Database access for sites, indicator values, alerts, runs, watermarks and API keys."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)

    # ---- sites -------------------------------------------------------------------------------------
    def upsert_sites(self, sites: Iterable[Site], session: Session | None = None) -> UpsertCounts:
        """Insert new sites and update changed ones; identical sites are left untouched."""
        own = session is None
        session = session or self.session()
        try:
            created = updated = unchanged = 0
            now = utcnow()
            sites = list(sites)
            ids = [s.id for s in sites]
            existing = {  # in batches: SQLite binds at most 32,766 parameters per statement
                r.id: r
                for i in range(0, len(ids), _BATCH)
                for r in session.scalars(select(SiteRow).where(SiteRow.id.in_(ids[i : i + _BATCH])))
            }
            for site in sites:
                values = site_to_row_values(site)
                row = existing.get(site.id)
                if row is None:
                    session.add(SiteRow(**values, created_at=now, updated_at=now))
                    created += 1
                elif any(getattr(row, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(row, k, v)
                    row.updated_at = now
                    updated += 1
                else:
                    unchanged += 1
            if own:
                session.commit()
            return UpsertCounts(created, updated, unchanged)
        finally:
            if own:
                session.close()

    def get_site(self, site_id: str) -> Site:
        with self.session() as s:
            row = s.get(SiteRow, site_id)
            if row is None:
                raise SiteNotFoundError(site_id)
            return row_to_site(row)

    def site_updated_at(self, site_id: str) -> datetime:
        with self.session() as s:
            row = s.get(SiteRow, site_id)
            if row is None:
                raise SiteNotFoundError(site_id)
            return row.updated_at

    def list_sites(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        country: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[Site], int]:
        """Sites (ordered by id) whose geometry intersects `bbox`, and the number matched before paging."""
        return self.find_sites(bbox, country, limit=limit, offset=offset)

    def site_set(self, ids: Sequence[str] | None = None) -> SiteSet:
        """All sites (or those with these ids) as a SiteSet; unknown ids raise SiteNotFoundError."""
        if ids is None:
            sites, _ = self.list_sites()
            return SiteSet(sites)
        wanted = list(dict.fromkeys(ids))
        with self.session() as s:  # only the rows asked for: a few sites out of 100,000 stay cheap
            rows = [
                r
                for i in range(0, len(wanted), _BATCH)
                for r in s.execute(select(*SITE_COLUMNS).where(SiteRow.id.in_(wanted[i : i + _BATCH])))
            ]
        site_set = SiteSet(rows_to_sites(sorted(rows, key=lambda r: r.id)))  # by id, as list_sites
        for site_id in ids:
            if site_id not in site_set:
                raise SiteNotFoundError(site_id)
        return site_set.subset(ids)

    def site_labels(self, ids: Sequence[str]) -> dict[str, SiteLabel]:
        """`SiteLabel`s of these sites by id, in the order asked; an unknown id raises SiteNotFoundError."""
        wanted = list(dict.fromkeys(ids))
        t = SiteRow.__table__
        with self.engine.connect() as conn:
            found = {
                r.id: SiteLabel(r.id, r.name, dict(r.thresholds or {}))
                for i in range(0, len(wanted), _BATCH)
                for r in conn.execute(
                    select(t.c.id, t.c.name, t.c.thresholds).where(t.c.id.in_(wanted[i : i + _BATCH]))
                )
            }
        for site_id in wanted:
            if site_id not in found:
                raise SiteNotFoundError(site_id)
        return {site_id: found[site_id] for site_id in wanted}

    def delete_site(self, site_id: str) -> None:
        with self.session.begin() as s:
            if s.execute(delete(SiteRow).where(SiteRow.id == site_id)).rowcount == 0:
                raise SiteNotFoundError(site_id)

    # ---- indicator values --------------------------------------------------------------------------
    def upsert_values(self, session: Session, records: pd.DataFrame) -> int:
        """Insert or update indicator values in batches; rows whose content did not change are skipped.

        Returns the number of rows inserted or changed.
        """
        if records.empty:
            return 0
        records = records.iloc[key_order(records, ("site_id", "indicator_id", "period_start"))]
        now = utcnow()
        table = IndicatorValueRow.__table__
        written = 0
        stmt = insert_for(session, table)
        ex = stmt.excluded
        changed = (
            table.c.value.is_distinct_from(ex.value)
            | (table.c.level != ex.level)
            | table.c.material.is_distinct_from(ex.material)
            | (table.c.indicator_version != ex.indicator_version)
            | (table.c.product_version != ex.product_version)
            | (table.c.source != ex.source)
            | (ex.coverage.is_not(None) & table.c.coverage.is_distinct_from(ex.coverage))
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["site_id", "indicator_id", "period_start"],
            set_={c: ex[c] for c in (*VALUE_COLUMNS[3:], "computed_at")}
            | {"coverage": func.coalesce(ex.coverage, table.c.coverage)},  # a recompute keeps coverage
            where=changed,
        )
        conn = session.connection()
        columns = {c: driver_values(records[c]) for c in VALUE_COLUMNS}
        columns["computed_at"] = [now] * len(records)
        if conn.dialect.name == "sqlite":
            return execute_columns(conn, stmt, table, columns)
        rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        for i in range(0, len(rows), _BATCH):
            written += len(conn.execute(stmt.returning(table.c.id), rows[i : i + _BATCH]).all())
        return written

    def series(
        self,
        site_ids: Sequence[str],
        indicator_ids: Sequence[str],
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        """Stored values for sites × indicators in [start, end], ordered by site, indicator and period."""
        t = IndicatorValueRow
        q = select(*(getattr(t, c) for c in (*VALUE_COLUMNS, "computed_at"))).where(
            t.site_id.in_(list(site_ids)), t.indicator_id.in_(list(indicator_ids))
        )
        if start:
            q = q.where(t.period_start >= start)
        if end:
            q = q.where(t.period_start <= end)
        q = q.order_by(t.site_id, t.indicator_id, t.period_start)
        with self.engine.connect() as conn:
            return pd.read_sql(q, conn)

    def latest_levels(self, site_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The newest stored value and level of every (site, indicator), with its material, source and
        synthetic flag."""
        t = IndicatorValueRow
        newest = select(t.site_id, t.indicator_id, func.max(t.period_start).label("period_start"))
        if site_ids is not None:
            newest = newest.where(t.site_id.in_(list(site_ids)))
        newest = newest.group_by(t.site_id, t.indicator_id).subquery()
        q = select(
            t.site_id, t.indicator_id, t.period_start, t.value, t.level, t.material, t.source, t.synthetic
        ).join(
            newest,
            and_(
                t.site_id == newest.c.site_id,
                t.indicator_id == newest.c.indicator_id,
                t.period_start == newest.c.period_start,
            ),
        )
        with self.engine.connect() as conn:
            return pd.read_sql(q, conn)

    def unresolved_alert_counts(self, site_ids: Sequence[str]) -> pd.DataFrame:
        """Per (site, status, kind) of open and acknowledged alerts: their number `n` and highest `level`."""
        a = AlertRow
        q = (
            select(a.site_id, a.status, a.kind, func.count().label("n"), func.max(a.level).label("level"))
            .where(a.site_id.in_(list(site_ids)), a.status.in_(["open", "acknowledged"]))
            .group_by(a.site_id, a.status, a.kind)
        )
        with self.engine.connect() as conn:
            return pd.read_sql(q, conn)

    # ---- watermarks --------------------------------------------------------------------------------
    def watermarks(self, source: str) -> dict[str, date]:
        """The last stored day of each site of a source. The days are read as the driver gives them and
        turned into dates once per distinct day (the sites of a source share a few): converting each of
        100,000 rows on its own cost more than the query."""
        raw_day = type_coerce(WatermarkRow.last_day, String)  # SQLite's text, PostgreSQL's date
        with self.engine.connect() as conn:  # Core rows: the ORM's row processing cost as much again
            rows = conn.execute(
                select(WatermarkRow.site_id, raw_day).where(WatermarkRow.source == source)
            ).all()
        days = {
            raw: raw if isinstance(raw, date) else date.fromisoformat(raw) for raw in {r[1] for r in rows}
        }
        return {site_id: days[raw] for site_id, raw in rows}

    def oldest_watermark(self, source: str, site_ids: Sequence[str]) -> date | None:
        """The oldest last stored day among these sites, or None when any of them has none yet.

        When the sites are all the registered ones (a scheduled pass), one aggregate query answers it:
        watermarks exist only for registered sites (they go with their site). Otherwise every mark of the
        source is read and the sites' looked up."""
        wanted = set(site_ids)
        if not wanted:
            return None
        with self.engine.connect() as conn:
            registered = conn.scalar(select(func.count()).select_from(SiteRow))
            if len(wanted) == registered:
                marked, oldest = conn.execute(
                    select(func.count(), func.min(WatermarkRow.last_day)).where(WatermarkRow.source == source)
                ).one()
                return oldest if marked == registered else None
        marks = self.watermarks(source)
        if not wanted <= marks.keys():
            return None
        return min(marks[s] for s in wanted)

    def set_watermarks(
        self, session: Session, source: str, site_ids: Sequence[str], last_day: date, version: str
    ):
        """Move the watermark of these sites forward to `last_day` (never backwards)."""
        if not site_ids:
            return
        table = WatermarkRow.__table__
        now = utcnow()
        common = {"source": source, "last_day": last_day, "product_version": version, "updated_at": now}
        stmt = insert_for(session, table)  # executemany in batches: one VALUES list would overflow SQLite's
        ex = stmt.excluded  # bound-parameter limit at 100,000 sites, and compiles slowly long before
        stmt = stmt.on_conflict_do_update(
            index_elements=["source", "site_id"],
            set_={
                "last_day": ex.last_day,
                "product_version": ex.product_version,
                "updated_at": ex.updated_at,
            },
            where=table.c.last_day < ex.last_day,
        )
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            columns = {"site_id": list(site_ids)} | {k: [v] * len(site_ids) for k, v in common.items()}
            execute_columns(conn, stmt, table, columns)
            return
        rows = [{"site_id": sid, **common} for sid in site_ids]
        for i in range(0, len(rows), _BATCH):
            conn.execute(stmt, rows[i : i + _BATCH])

    # ---- runs --------------------------------------------------------------------------------------
    def start_run(self, source: str, mode: str, start: date | None, end: date | None, n_sites: int) -> str:
        run_id = new_id("run")
        with self.session.begin() as s:
            s.add(
                RunRow(
                    id=run_id,
                    source=source,
                    mode=mode,
                    started_at=utcnow(),
                    period_start=start,
                    period_end=end,
                    sites=n_sites,
                    status="running",
                )
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        status: str,
        values_written: int = 0,
        alerts_raised: int = 0,
        error: str | None = None,
    ) -> None:
        with self.session.begin() as s:
            s.execute(
                update(RunRow)
                .where(RunRow.id == run_id)
                .values(
                    finished_at=utcnow(),
                    status=status,
                    values_written=values_written,
                    alerts_raised=alerts_raised,
                    error=error,
                )
            )

    def list_runs(
        self, source: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[RunRow], int]:
        with self.session() as s:
            q = select(RunRow).order_by(RunRow.started_at.desc())
            c = select(func.count()).select_from(RunRow)
            if source:
                q, c = q.where(RunRow.source == source), c.where(RunRow.source == source)
            return list(s.scalars(q.limit(limit).offset(offset))), s.scalar(c) or 0

    def freshness(self) -> dict[str, dict]:
        """Per source: newest data day stored and when the last successful run finished."""
        with self.session() as s:
            marks = {
                src: day
                for src, day in s.execute(
                    select(WatermarkRow.source, func.max(WatermarkRow.last_day)).group_by(WatermarkRow.source)
                ).all()
            }
            last_ok = {
                src: at
                for src, at in s.execute(
                    select(RunRow.source, func.max(RunRow.finished_at))
                    .where(RunRow.status == "ok")
                    .group_by(RunRow.source)
                ).all()
            }
        return {
            src: {"newest_data": marks.get(src), "last_successful_run": last_ok.get(src)}
            for src in sorted(set(marks) | set(last_ok))
        }

    # ---- alerts ------------------------------------------------------------------------------------
    def list_alerts(
        self,
        site: str | None = None,
        status: str | None = None,
        min_level: int | None = None,
        kind: str | None = None,
        indicator: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AlertRow], int]:
        conds = []
        if site:
            conds.append(AlertRow.site_id == site)
        if status:
            conds.append(AlertRow.status == status)
        if min_level is not None:
            conds.append(AlertRow.level >= min_level)
        if kind:
            conds.append(AlertRow.kind == kind)
        if indicator:
            conds.append(AlertRow.indicator_id == indicator)
        with self.session() as s:
            q = select(AlertRow).order_by(AlertRow.updated_at.desc(), AlertRow.id)
            c = select(func.count()).select_from(AlertRow)
            if conds:
                q, c = q.where(and_(*conds)), c.where(and_(*conds))
            return list(s.scalars(q.limit(limit).offset(offset))), s.scalar(c) or 0

    def get_alert(self, alert_id: str) -> AlertRow | None:
        with self.session() as s:
            return s.get(AlertRow, alert_id)

    def alert_events(self, alert_id: str) -> list[AlertEventRow]:
        with self.session() as s:
            q = select(AlertEventRow).where(AlertEventRow.alert_id == alert_id).order_by(AlertEventRow.id)
            return list(s.scalars(q))

    # ---- API keys ----------------------------------------------------------------------------------
    def create_key(self, name: str, role: str, site_ids: Sequence[str] = ()) -> NewApiKey:
        """Create a key; only its SHA-256 hash is stored, the secret is returned once."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        secret = "hm_" + secrets.token_urlsafe(32)
        key_id = new_id("key")
        with self.session.begin() as s:
            s.add(
                ApiKeyRow(
                    id=key_id,
                    name=name,
                    prefix=secret[:10],
                    key_hash=hash_key(secret),
                    role=role,
                    site_ids=list(site_ids),
                    created_at=utcnow(),
                )
            )
        return NewApiKey(key_id, name, role, secret, list(site_ids))

    def list_keys(self) -> list[ApiKeyRow]:
        with self.session() as s:
            return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)))

    def revoke_key(self, key_id: str) -> bool:
        with self.session.begin() as s:
            res = s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return bool(res.rowcount)

    def verify_key(self, secret: str) -> KeyGrant | None:
        """What the live key matching a presented secret grants, or None (unknown or revoked).

        Every authenticated request asks this: one Core select of four columns, no ORM session."""
        t = ApiKeyRow.__table__
        q = select(t.c.id, t.c.role, t.c.site_ids, t.c.revoked_at).where(t.c.key_hash == hash_key(secret))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None or row.revoked_at is not None:
            return None
        return KeyGrant(id=row.id, role=row.role, site_ids=frozenset(row.site_ids or ()))

    # ---- API additions (sites with property filters, per-site upsert status) ----------------------
    def find_sites(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        country: str | None = None,
        material: str | None = None,
        heritage_type: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        intersects: BaseGeometry | None = None,
    ) -> tuple[list[Site], int]:
        """Sites (ordered by id) matching every filter given, and the number matched before paging.

        `bbox` (west, south, east, north) and `intersects` (any geometry, EPSG:4326) keep the sites whose
        geometry intersects them; `material` is one of the site's materials, `heritage_type` compares
        case-insensitively. Every filter runs in the database, so totals and pages are exact: PostGIS
        (GIST index) answers the spatial ones on PostgreSQL; on SQLite the bbox columns preselect and
        shapely decides on the candidates' geometries.
        """
        with self.session() as s:
            dialect = s.get_bind().dialect.name
            where = _site_conditions(dialect, bbox, intersects, country, material, heritage_type)
            if dialect == "postgresql" or (bbox is None and intersects is None):
                total = s.scalar(select(func.count()).select_from(SiteRow).where(*where)) or 0
                q = select(*SITE_COLUMNS).where(*where).order_by(SiteRow.id).offset(offset)
                if limit is not None:
                    q = q.limit(limit)
                return rows_to_sites(s.execute(q).all()), total
            candidates = s.execute(
                select(SiteRow.id, SiteRow.geometry_wkb).where(*where).order_by(SiteRow.id)
            ).all()
            ids = _intersecting_ids(candidates, bbox, intersects)
            page = ids[offset : None if limit is None else offset + limit]
            rows: dict[str, Row] = {}
            for i in range(0, len(page), _BATCH):
                chunk = page[i : i + _BATCH]
                rows.update((r.id, r) for r in s.execute(select(*SITE_COLUMNS).where(SiteRow.id.in_(chunk))))
            return rows_to_sites([rows[site_id] for site_id in page]), len(ids)

    def upsert_site_statuses(self, sites: Sequence[Site]) -> dict[str, str]:
        """Upsert sites in one transaction; returns each id's outcome: stored | updated | unchanged."""
        sites = list(sites)
        out: dict[str, str] = {}
        with self.session.begin() as s:
            existing = {
                r.id: r for r in s.scalars(select(SiteRow).where(SiteRow.id.in_([x.id for x in sites])))
            }
            now = utcnow()
            for site in sites:
                values = site_to_row_values(site)
                row = existing.get(site.id)
                if row is None:
                    s.add(SiteRow(**values, created_at=now, updated_at=now))
                    out[site.id] = "stored"
                elif any(getattr(row, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(row, k, v)
                    row.updated_at = now
                    out[site.id] = "updated"
                else:
                    out[site.id] = "unchanged"
        return out

    def existing_site_ids(self, site_ids: Sequence[str]) -> set[str]:
        """Which of these ids are registered."""
        with self.session() as s:
            return set(s.scalars(select(SiteRow.id).where(SiteRow.id.in_(list(site_ids)))))


def execute_columns(conn: Connection, stmt: Insert, table: Table, columns: dict[str, list]) -> int:
    """Run an insert (or upsert) statement on SQLite for rows given as columns; the rows changed.

    The statement is compiled once and run by the driver on tuples, each column converted by its
    SQLAlchemy type once per distinct value (`bound_column`): SQLAlchemy's per-row parameter processing
    cost as much as SQLite's own work. SQLite's change counter gives the rows written (RETURNING is
    slower)."""
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
    converted = {c: bound_column(columns[c], table.c[c], conn.dialect) for c in columns}
    rows = zip(*(converted[c] for c in compiled.positiontup), strict=True)
    written = 0
    while batch := list(itertools.islice(rows, _BATCH)):  # tuples made a batch at a time
        before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
        conn.exec_driver_sql(str(compiled), batch)
        written += conn.exec_driver_sql("SELECT total_changes()").scalar_one() - before
    return written


def bound_column(values: list, column: Column, dialect: Dialect) -> list:
    """`values` of `column` as SQLAlchemy binds them on `dialect`, converted once per distinct value (dates
    and labels repeat). The dialect's own type does the binding: on SQLite, dates and timestamps become
    SQLAlchemy's text rather than going through the driver's per-row adapters, which cost as much as the
    insert."""
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return values
    try:
        done = {v: processor(v) for v in set(values)}
    except TypeError:  # unhashable values: one at a time
        return [processor(v) for v in values]
    return [done[v] for v in values]


def driver_values(values: pd.Series) -> list:
    """One column of records as plain Python values for the driver: NaN, NaT and pandas NA as None (the
    database's NULL), timestamps as dates.

    Column-wise: numbers go through `tolist()` and only their missing positions are touched one by one;
    labels, ids and dates are factorised, so each distinct value becomes a Python object once and the
    column is a list of references to them. Converting 2.2 million Arrow strings one by one cost more
    than the insert at 100,000 sites."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        out = values.tolist()
        for i in np.flatnonzero(values.isna().to_numpy()):
            out[i] = None
        return out
    codes, uniques = pd.factorize(values)  # missing values get code -1: the None appended last
    objects = [u.date() if isinstance(u, datetime) else u for u in uniques]
    return np.array([*objects, None], dtype=object)[codes].tolist()


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
