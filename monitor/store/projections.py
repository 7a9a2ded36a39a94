"""Projection tables and queries: climate-projection indicator values per site, model, scenario and period.

Projected values live apart from observed (`indicator_values`) and forecast values (`forecast_series`) and
are never mixed with them. A row is one statistic of one indicator at one site for one period of one run
(`model` = the model, statistics `baseline`, `future`, `change`, `change_pct`) or of the ensemble of a
scenario (`model` = `ensemble`, statistics such as `future_median`, `change_max`, `model_count`).

Writing replaces the rows of a (site set, dataset, model, scenario) in the caller's transaction, and
leaves them untouched when their content is the same (so a rerun over the same data changes no row,
not even `computed_at`). The table shares `Base` with `monitor.store.tables`; migration 0006 creates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from monitor.store.repository import Store, utcnow
from monitor.store.tables import Base, BigId, UTCDateTime

#: The `model` of ensemble rows.
ENSEMBLE = "ensemble"

#: Columns of projection value records (what `replace_projections` takes; `computed_at` is added).
RECORD_COLUMNS = (
    "site_id",
    "indicator_id",
    "dataset",
    "model",
    "scenario",
    "period_start",
    "period_end",
    "statistic",
    "value",
    "level",
    "material",
    "units",
    "bias_method",
    "provenance",
    "attribution",
    "synthetic",
)
#: The columns naming a row (the unique key).
KEY_COLUMNS = (
    "site_id",
    "indicator_id",
    "dataset",
    "model",
    "scenario",
    "period_start",
    "period_end",
    "statistic",
)


class ProjectionValueRow(Base):
    """One statistic of a projected indicator at one site for one period of one run or ensemble."""

    __tablename__ = "projection_values"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    indicator_id: Mapped[str] = mapped_column(String(80))
    dataset: Mapped[str] = mapped_column(String(20))  # cordex | cmip6 | synthetic
    model: Mapped[str] = mapped_column(String(200))  # the model, or `ensemble`
    scenario: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[int] = mapped_column(SmallInteger)  # first year (inclusive)
    period_end: Mapped[int] = mapped_column(SmallInteger)  # last year (inclusive)
    statistic: Mapped[str] = mapped_column(String(30))
    value: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int | None] = mapped_column(SmallInteger)  # level code of a value; None for changes
    material: Mapped[str | None] = mapped_column(String(40))
    units: Mapped[str] = mapped_column(String(40))
    bias_method: Mapped[str] = mapped_column(String(80))
    provenance: Mapped[dict] = mapped_column(JSON, default=dict)
    attribution: Mapped[str] = mapped_column(Text)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint(*KEY_COLUMNS, name="uq_projection_values_key"),
        Index("ix_projection_values_site_indicator", "site_id", "indicator_id"),
    )


def _plain(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _content(rows: Sequence[dict]) -> set:
    """Rows as a comparable set (the provenance dict as sorted items; floats as they are)."""
    return {tuple(repr(r[c]) if c == "provenance" else r[c] for c in RECORD_COLUMNS) for r in rows}


def _stored(session: Session, site_ids: Sequence[str], dataset: str, model: str, scenario: str) -> list[dict]:
    t = ProjectionValueRow
    q = select(*(getattr(t, c) for c in RECORD_COLUMNS)).where(
        t.dataset == dataset, t.model == model, t.scenario == scenario
    )
    rows = [dict(r._mapping) for r in session.execute(q)]
    wanted = set(site_ids)
    return [r for r in rows if r["site_id"] in wanted]


def replace_projections(
    session: Session,
    site_ids: Sequence[str],
    dataset: str,
    model: str,
    scenario: str,
    records: pd.DataFrame,
) -> int:
    """Store the rows of one run (or ensemble) for `site_ids` in place of the stored ones, in the caller's
    transaction. Returns the rows written: 0 when the stored rows already have this content."""
    frame = records[list(RECORD_COLUMNS)] if len(records) else pd.DataFrame(columns=RECORD_COLUMNS)
    rows = [
        {k: _plain(v) for k, v in zip(RECORD_COLUMNS, r, strict=True)}
        for r in frame.itertuples(index=False, name=None)
    ]
    for r in rows:
        r["level"] = None if r["level"] is None else int(r["level"])
        r["synthetic"] = bool(r["synthetic"])
    if _content(rows) == _content(_stored(session, site_ids, dataset, model, scenario)):
        return 0
    t = ProjectionValueRow
    ids = list(site_ids)
    for i in range(0, len(ids), 500):
        session.execute(
            delete(t).where(
                t.site_id.in_(ids[i : i + 500]),
                t.dataset == dataset,
                t.model == model,
                t.scenario == scenario,
            )
        )
    now = utcnow()
    for i in range(0, len(rows), 2000):
        session.execute(insert(t), [r | {"computed_at": now} for r in rows[i : i + 2000]])
    return len(rows)


def stored_values(session: Session, site_ids: Sequence[str], dataset: str | None = None) -> pd.DataFrame:
    """The stored per-model rows (not ensembles) of these sites, as records (the columns of
    `RECORD_COLUMNS`)."""
    t = ProjectionValueRow
    q = select(*(getattr(t, c) for c in RECORD_COLUMNS)).where(t.model != ENSEMBLE)
    if dataset is not None:
        q = q.where(t.dataset == dataset)
    wanted = set(site_ids)
    rows = [dict(r._mapping) for r in session.execute(q)]
    return pd.DataFrame([r for r in rows if r["site_id"] in wanted], columns=list(RECORD_COLUMNS))


def projection_values(
    store: Store, site_id: str, indicator_id: str, scenario: str | None = None, ensemble_only: bool = False
) -> list[ProjectionValueRow]:
    """The stored rows of one indicator at one site (optionally one scenario, or ensembles only), ordered
    by scenario, period, model and statistic."""
    t = ProjectionValueRow
    q = select(t).where(t.site_id == site_id, t.indicator_id == indicator_id)
    if scenario is not None:
        q = q.where(t.scenario == scenario)
    if ensemble_only:
        q = q.where(t.model == ENSEMBLE)
    q = q.order_by(t.scenario, t.period_start, t.model, t.statistic)
    with store.session() as s:
        rows = list(s.scalars(q))
        s.expunge_all()
    return rows


def stored_scenarios(store: Store) -> list[str]:
    """Every scenario with stored projections."""
    t = ProjectionValueRow
    with store.session() as s:
        return sorted(s.scalars(select(t.scenario).distinct()))
