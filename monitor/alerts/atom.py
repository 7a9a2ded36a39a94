"""An Atom 1.0 feed (RFC 4287) of current alerts, each entry linking to its CAP message.

Like MeteoAlarm's and the OASIS "CAP feeds" practice: one entry per alert whose `alternate` link is the
CAP document (application/cap+xml), with a few CAP fields repeated as `cap:` extension elements so a
reader can filter without fetching every message. Current means open or acknowledged, plus alerts
resolved within the last days (their all-clear). Forecast alerts carry their issue time (`cap:effective`)
and expected onset (`cap:onset`, a date).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

import indicators
from indicators import IndicatorSpec, UnknownIndicatorError
from monitor.alerts import i18n
from monitor.alerts.cap import (
    CAP_MEDIA_TYPE,
    CAP_NS,
    SEVERITY,
    cap_time,
    certainty,
    facts,
    identifier,
    messages,
    urgency,
)
from monitor.alerts.episodes import forecast_facts
from monitor.store.repository import Store, row_to_site
from monitor.store.tables import AlertEventRow, AlertRow, SiteRow
from sites import Site

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml"


@dataclass(frozen=True)
class FeedEntry:
    """One alert of the feed with what its entry needs."""

    alert: AlertRow
    site: Site
    spec: IndicatorSpec | None
    history: list[AlertEventRow]


def _spec(indicator_id: str) -> IndicatorSpec | None:
    try:
        return indicators.get(indicator_id)
    except UnknownIndicatorError:
        return None


def current_entries(store: Store, now: datetime, resolved_days: int = 7, limit: int = 500) -> list[FeedEntry]:
    """Open and acknowledged alerts, and those resolved in the last `resolved_days`, newest change first."""
    since = now - timedelta(days=resolved_days)
    with store.session() as s:
        alerts = list(
            s.scalars(
                select(AlertRow)
                .where(
                    or_(
                        AlertRow.status.in_(("open", "acknowledged")),
                        and_(AlertRow.status == "resolved", AlertRow.resolved_at >= since),
                    )
                )
                .order_by(AlertRow.updated_at.desc(), AlertRow.id)
                .limit(limit)
            )
        )
        if not alerts:
            return []
        ids = [a.id for a in alerts]
        history: dict[str, list[AlertEventRow]] = {i: [] for i in ids}
        for event in s.scalars(
            select(AlertEventRow).where(AlertEventRow.alert_id.in_(ids)).order_by(AlertEventRow.id)
        ):
            history[event.alert_id].append(event)
        sites = {
            r.id: row_to_site(r)
            for r in s.scalars(select(SiteRow).where(SiteRow.id.in_({a.site_id for a in alerts})))
        }
    return [
        FeedEntry(a, sites[a.site_id], _spec(a.indicator_id), history[a.id])
        for a in alerts
        if a.site_id in sites
    ]


def atom_time(moment: datetime) -> str:
    """An RFC 3339 instant in UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def alerts_to_atom(
    entries: Sequence[FeedEntry],
    *,
    feed_url: str,
    base_url: str,
    sender: str,
    now: datetime,
    lang: str = "en",
) -> bytes:
    """The Atom feed (UTF-8 XML) of these alerts, texts in `lang`."""
    base = base_url.rstrip("/")
    code = i18n.language(lang)
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xmlns:cap": CAP_NS, "xml:lang": lang})
    _sub(feed, "id", feed_url)
    _sub(feed, "title", "Heritage Monitor – alerts")
    _sub(
        feed,
        "subtitle",
        "Heritage risk alerts from Copernicus data; each entry links to its CAP 1.2 message.",
    )
    rendered = []
    newest = None
    for entry in entries:
        trail = messages(entry.alert, entry.history)
        rendered.append((entry, trail))
        newest = max(newest or trail[-1].sent, trail[-1].sent)
    _sub(feed, "updated", atom_time(newest or now))
    _sub(feed, "link", rel="self", type=ATOM_MEDIA_TYPE, href=feed_url)
    _sub(feed, "link", rel="alternate", type="application/json", href=f"{base}/api/v1/alerts")
    author = _sub(feed, "author")
    _sub(author, "name", "Heritage Monitor")
    _sub(feed, "generator", "Heritage Monitor")
    for entry, trail in rendered:
        alert, current = entry.alert, trail[-1]
        title = entry.spec.title if entry.spec else alert.indicator_id
        said = facts(alert, current, entry.site.name, title, code)
        resolved = current.event == "resolved"
        link = f"{base}/api/v1/alerts/{alert.id}"
        item = _sub(feed, "entry")
        _sub(item, "id", link)
        _sub(item, "title", said.headline)
        _sub(item, "updated", atom_time(current.sent))
        _sub(item, "published", atom_time(trail[0].sent))
        _sub(item, "link", rel="alternate", type=CAP_MEDIA_TYPE, href=f"{link}.cap", hreflang=lang)
        _sub(item, "link", rel="related", type="application/json", href=link)
        _sub(
            item,
            "category",
            term=SEVERITY.get(said.level, "Unknown"),
            label=i18n.level_phrase(code, said.level),
        )
        _sub(item, "summary", f"{said.description}\n{said.instruction}", type="text")
        _sub(item, "rights", alert.attribution)
        _sub(item, "cap:identifier", identifier(alert.id, current.sequence))
        _sub(item, "cap:sender", sender)
        _sub(item, "cap:sent", cap_time(current.sent))
        _sub(item, "cap:status", "Exercise" if alert.synthetic else "Actual")
        msg_type = "Alert" if current.sequence == 1 else "Update"
        _sub(item, "cap:msgType", "Cancel" if resolved and alert.false_alarm else msg_type)
        _sub(item, "cap:event", title)
        forecast = forecast_facts(alert)
        lead = forecast.lead_time_days if forecast else None
        _sub(item, "cap:urgency", urgency(alert.kind, alert.freq, resolved, lead))
        _sub(item, "cap:severity", SEVERITY.get(said.level, "Unknown"))
        _sub(item, "cap:certainty", certainty(alert.kind, lead))
        if forecast is not None:
            _sub(item, "cap:effective", cap_time(forecast.issued))
            _sub(item, "cap:onset", alert.onset.isoformat())
        _sub(item, "cap:areaDesc", entry.site.name)
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
