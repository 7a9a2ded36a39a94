"""Alerts in the formats of public warning: CAP 1.2 messages and an Atom feed of them.

Include this router before the alerts router: `/alerts/feed.atom` and `/alerts/{id}.cap` would otherwise
be taken for the alert id of `/alerts/{alert_id}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

import indicators
from api.auth import ReaderDep
from api.deps import SettingsDep, StoreDep
from api.errors import ALL_ERRORS, ProblemError
from indicators import UnknownIndicatorError
from monitor.alerts import i18n
from monitor.alerts.atom import ATOM_MEDIA_TYPE, alerts_to_atom, current_entries
from monitor.alerts.cap import CAP_MEDIA_TYPE, alert_to_cap

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=ALL_ERRORS)
LANG_HELP = f"Language(s) of the texts, comma-separated: {', '.join(i18n.LANGUAGES)}."


def _base(request: Request, settings) -> str:
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


def _languages(lang: str) -> list[str]:
    codes = [c.strip() for c in lang.split(",") if c.strip()] or ["en"]
    unknown = [c for c in codes if c not in i18n.LANGUAGES]
    if unknown:
        raise ProblemError(
            422,
            f"unsupported language(s) {unknown}; use {list(i18n.LANGUAGES)}",
            errors=[{"field": "query.lang"}],
        )
    return codes


@router.get(
    "/alerts/feed.atom",
    summary="Atom feed of current alerts",
    response_class=Response,
    responses={200: {"content": {ATOM_MEDIA_TYPE: {}}, "description": "An Atom 1.0 feed."}},
)
def alerts_feed(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _: ReaderDep,
    lang: Annotated[
        str, Query(max_length=40, description="Language of the entry texts.", examples=["en", "it"])
    ] = "en",
    resolved_days: Annotated[
        int,
        Query(ge=0, le=365, description="Also list alerts resolved within this many days.", examples=[7]),
    ] = 7,
) -> Response:
    """Open and acknowledged alerts, plus recently resolved ones, each linking to its CAP message."""
    code = _languages(lang)[0]
    base = _base(request, settings)
    now = datetime.now(UTC)
    body = alerts_to_atom(
        current_entries(store, now, resolved_days),
        feed_url=f"{base}/api/v1/alerts/feed.atom",
        base_url=base,
        sender=settings.cap_sender,
        now=now,
        lang=code,
    )
    return Response(body, media_type=ATOM_MEDIA_TYPE)


@router.get(
    "/alerts/{alert_id}.cap",
    summary="One alert as a CAP 1.2 message",
    response_class=Response,
    responses={200: {"content": {CAP_MEDIA_TYPE: {}}, "description": "A CAP 1.2 alert."}, 404: {}},
)
def alert_cap(
    alert_id: Annotated[
        str, Path(max_length=60, description="Alert id", examples=["alr_3f2a9c1e0b7d4a6e8c21"])
    ],
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _: ReaderDep,
    lang: Annotated[str, Query(max_length=40, description=LANG_HELP, examples=["en", "fr,en"])] = "en",
) -> Response:
    """The alert's current CAP message (Alert, then Update; AllClear at the end of the episode)."""
    codes = _languages(lang)
    row = store.get_alert(alert_id)
    if row is None:
        raise ProblemError(404, f"no alert with id {alert_id!r}")
    try:
        spec = indicators.get(row.indicator_id)
    except UnknownIndicatorError:
        spec = None
    body = alert_to_cap(
        row,
        store.get_site(row.site_id),
        spec,
        store.alert_events(alert_id),
        sender=settings.cap_sender,
        base_url=_base(request, settings),
        lang=codes,
    )
    return Response(body, media_type=CAP_MEDIA_TYPE)
