"""Alerts: current and past episodes of risk at sites."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

import indicators
from api.auth import ReaderDep, WriterDep, require_site
from api.deps import PageDep, StoreDep
from api.errors import ALL_ERRORS, ProblemError
from api.schemas import AlertList, AlertPublic, Link
from indicators import LEVEL_CODES, LEVELS
from monitor.alerts.episodes import AlertStateError, acknowledge, resolve_by_hand
from monitor.store.tables import AlertRow

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=ALL_ERRORS)
Severity = Literal["low", "moderate", "high", "severe"]
AlertIdPath = Annotated[
    str, Path(max_length=60, description="Alert id", examples=["alr_3f2a9c1e0b7d4a6e8c21"])
]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _titles() -> dict[str, str]:
    return {s.id: s.title for s in indicators.catalog()}


@router.get("/alerts", summary="List alerts", name="list_alerts")
def list_alerts(
    request: Request,
    store: StoreDep,
    _: ReaderDep,
    page: PageDep,
    site: Annotated[
        str | None, Query(max_length=100, description="Site id", examples=["venice_historic_centre"])
    ] = None,
    status: Annotated[
        Literal["open", "acknowledged", "resolved"] | None,
        Query(description="Only alerts in this state", examples=["open"]),
    ] = None,
    severity: Annotated[Severity | None, Query(description="Minimum severity", examples=["high"])] = None,
    kind: Annotated[
        Literal["observed", "forecast", "projected", "system"] | None,
        Query(
            description="observed data, forecasts, climate projections or source health",
            examples=["forecast"],
        ),
    ] = None,
    indicator: Annotated[
        str | None, Query(max_length=80, description="Indicator id", examples=["flood_return_period"])
    ] = None,
) -> AlertList:
    """Alerts, newest change first, filtered by site, status, minimum severity, kind and indicator."""
    rows, total = store.list_alerts(
        site, status, LEVEL_CODES[severity] if severity else None, kind, indicator, page.limit, page.offset
    )
    names = {s.id: s.name for s in store.list_sites()[0]} if rows else {}
    titles = _titles()
    base = _base(request)
    links = [Link(href=str(request.url), rel="self", type="application/json")]
    if page.offset + len(rows) < total:
        links.append(
            Link(href=str(request.url.include_query_params(offset=page.offset + page.limit)), rel="next")
        )
    return AlertList(
        numberMatched=total,
        numberReturned=len(rows),
        alerts=[
            AlertPublic.from_row(r, base, names.get(r.site_id), titles.get(r.indicator_id)) for r in rows
        ],
        links=links,
    )


@router.get("/alerts/{alert_id}", summary="One alert with its history")
def get_alert(alert_id: AlertIdPath, request: Request, store: StoreDep, _: ReaderDep) -> dict:
    """One alert and its audit trail (every change, who and when)."""
    row = store.get_alert(alert_id)
    if row is None:
        raise ProblemError(404, f"no alert with id {alert_id!r}")
    site = store.get_site(row.site_id)
    alert = AlertPublic.from_row(row, _base(request), site.name, _titles().get(row.indicator_id))
    history = [
        {
            "at": e.at,
            "event": e.event,
            "level": LEVELS[e.level] if e.level is not None and e.level >= 0 else None,
            "value": e.value,
            "period_start": e.period_start,
            "actor": e.actor,
            "note": e.note,
        }
        for e in store.alert_events(alert_id)
    ]
    return {**alert.model_dump(mode="json"), "history": history}


class AckRequest(BaseModel):
    note: str | None = Field(None, max_length=2000, examples=["Seen; conservator on site tomorrow."])
    false_alarm: bool = Field(False, description="Mark the alert as a false alarm (feeds threshold tuning).")


class ResolveRequest(BaseModel):
    note: str | None = Field(None, max_length=2000, examples=["Drainage cleared; risk gone."])


def _change(store, alert_id: str, principal, change) -> AlertRow:
    with store.session.begin() as session:
        row = session.get(AlertRow, alert_id, with_for_update=True)
        if row is None:
            raise ProblemError(404, f"no alert with id {alert_id!r}")
        require_site(principal, row.site_id)
        try:
            change(session, row)
        except AlertStateError as exc:
            raise ProblemError(409, str(exc)) from None
    return row


@router.post(
    "/alerts/{alert_id}/ack", summary="Acknowledge an alert", responses={401: {}, 403: {}, 404: {}, 409: {}}
)
def ack_alert(
    alert_id: AlertIdPath, body: AckRequest, request: Request, store: StoreDep, principal: WriterDep
) -> AlertPublic:
    """Say "seen, handling it" (admin, or a manager of the alert's site)."""
    actor = f"key:{principal.key_id}"
    row = _change(
        store, alert_id, principal, lambda s, r: acknowledge(s, r, actor, body.note, body.false_alarm)
    )
    return AlertPublic.from_row(row, _base(request), None, _titles().get(row.indicator_id))


@router.post(
    "/alerts/{alert_id}/resolve",
    summary="Resolve an alert by hand",
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def resolve_alert(
    alert_id: AlertIdPath, body: ResolveRequest, request: Request, store: StoreDep, principal: WriterDep
) -> AlertPublic:
    """Close an episode by hand (admin, or a manager of the alert's site)."""
    actor = f"key:{principal.key_id}"
    row = _change(store, alert_id, principal, lambda s, r: resolve_by_hand(s, r, actor, body.note))
    return AlertPublic.from_row(row, _base(request), None, _titles().get(row.indicator_id))
