"""Alerts as OASIS Common Alerting Protocol 1.2 messages (urn:oasis:names:tc:emergency:cap:1.2).

One CAP message per notifiable change of an episode: its `sequence`. The identifier is
`<alert id>.<sequence>`, and `sent` is the time of the audit event that made that sequence, so the same
identifier always names the same message. The first message is an `Alert`; every later one is an `Update`
whose `references` list all earlier messages of the episode (CAP's "sender,identifier,sent" triples).
The end of an episode is an `Update` with responseType `AllClear` and urgency `Past`; `Cancel` is kept
for retracting messages sent in error: an episode resolved after being marked a false alarm.

Choices the standard leaves open, made here:
- status: `Actual` for Copernicus data, `Exercise` for synthetic demo data (with a <note> saying so), so a
  consumer never mistakes the demo for a real warning;
- severity: low→Minor, moderate→Moderate, high→Severe, severe→Extreme;
- certainty: observed→Observed, projected→Possible (system alerts: Unknown); forecast→Likely when the onset
  is at most `LIKELY_MAX_LEAD_DAYS` after the issue day (short-range forecasts verify more often than
  not), else Possible;
- urgency: Immediate for observed daily values, Future for observed monthly or yearly values and for
  projections (action within weeks, not hours), Past once resolved; forecasts: Expected when the onset is
  at most `EXPECTED_MAX_LEAD_DAYS` after the issue day, else Future;
- responseType: Monitor (low, moderate), Prepare (high, severe), AllClear (resolved), None (withdrawn);
- category from the hazard: Fire for wildfire, Geo for ground motion and land, Env for air pollution and
  corrosion, Met for the other climate hazards, Other for system alerts;
- the language of an <info> is CAP's own <language> element (RFC 3066 code), one <info> per language;
- <expires> only for forecasts (the day after the last valid day forecast at or above the alert level):
  observed episodes stay valid until the next message (an Update or the AllClear);
- forecasts: <effective> is the forecast's issue time and <onset> the expected onset; a newer issue that
  only shifts the onset or the expected period is no new message (it would notify every subscriber
  again), so the document of a forecast episode carries its newest issue's timing;
- <area>: one closed "lat,lon" polygon per part of the site geometry (outer rings; CAP has no holes),
  with the site id (and UNESCO id) as <geocode>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from indicators import IndicatorSpec, level_name
from monitor.alerts import i18n
from monitor.alerts.episodes import ForecastFacts, forecast_facts, period_end
from monitor.store.tables import AlertRow
from sites import Site

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_MEDIA_TYPE = "application/cap+xml"
NOTIFIABLE = ("opened", "escalated", "resolved")
SEVERITY = {1: "Minor", 2: "Moderate", 3: "Severe", 4: "Extreme"}
CERTAINTY = {"observed": "Observed", "forecast": "Likely", "projected": "Possible"}
#: MeteoAlarm's awareness levels, so MeteoAlarm-style consumers can colour the alert.
AWARENESS = {1: "1; green; Minor", 2: "2; yellow; Moderate", 3: "3; orange; Severe", 4: "4; red; Extreme"}
#: Forecast onsets at most this many days after the issue day are CAP urgency Expected (else Future)…
EXPECTED_MAX_LEAD_DAYS = 1
#: … and at most this many days after it, certainty Likely (else Possible).
LIKELY_MAX_LEAD_DAYS = 3
_RESTRICTED = set(" ,<&")


@dataclass(frozen=True)
class Message:
    """One notifiable change of an episode: what CAP calls a message."""

    sequence: int
    event: str  # opened | escalated | resolved
    sent: datetime
    level: int | None
    value: float | None
    period_start: date | None


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (SQLite returns naive UTC datetimes)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cap_time(moment: datetime) -> str:
    """A CAP date-time: seconds precision, numeric offset, UTC written as "-00:00" (CAP 1.2, 3.3.2)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return f"{moment:%Y-%m-%dT%H:%M:%S}-00:00"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{moment:%Y-%m-%dT%H:%M:%S}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def identifier(alert_id: str, sequence: int) -> str:
    """The CAP identifier of one message of an episode."""
    return f"{alert_id}.{sequence}"


def messages(alert: AlertRow, history: Iterable) -> list[Message]:
    """The messages of an episode up to its current sequence, from its audit trail.

    The n-th opened/escalated/resolved event made sequence n. Without a trail, the current message alone
    is known (sent at the alert's last update).
    """
    events = sorted((e for e in history if e.event in NOTIFIABLE), key=lambda e: (utc(e.at), e.id or 0))
    out = [
        Message(i, e.event, utc(e.at), e.level, e.value, e.period_start)
        for i, e in enumerate(events[: alert.sequence], start=1)
    ]
    if len(out) < alert.sequence:
        event = "resolved" if alert.status == "resolved" else "opened" if alert.sequence == 1 else "escalated"
        out.append(
            Message(
                alert.sequence, event, utc(alert.updated_at), alert.level, alert.value, alert.period_start
            )
        )
    return out


def category(spec: IndicatorSpec | None, kind: str) -> str:
    """The CAP category of an indicator's hazard."""
    if kind == "system" or spec is None:
        return "Other"
    hazard = spec.hazard.lower()
    if "fire" in hazard:
        return "Fire"
    if spec.family == "land" or any(w in hazard for w in ("ground", "subsidence", "landslide", "land")):
        return "Geo"
    if spec.family == "atmosphere" or any(w in hazard for w in ("pollution", "corrosion", "soiling")):
        return "Env"
    return "Met"


def urgency(kind: str, freq: str, resolved: bool, lead_time_days: int | None = None) -> str:
    """The CAP urgency of an alert's message (see the module docstring)."""
    if resolved:
        return "Past"
    if kind == "observed":
        return "Immediate" if freq == "D" else "Future"
    if kind == "forecast":
        return "Future" if (lead_time_days or 0) > EXPECTED_MAX_LEAD_DAYS else "Expected"
    return {"projected": "Future"}.get(kind, "Unknown")


def certainty(kind: str, lead_time_days: int | None = None) -> str:
    """The CAP certainty of an alert's message (see the module docstring)."""
    if kind == "forecast":
        return "Possible" if (lead_time_days or 0) > LIKELY_MAX_LEAD_DAYS else "Likely"
    return CERTAINTY.get(kind, "Unknown")


def number(value: float | None) -> str:
    """A value for people: two decimals at most, no trailing zeros."""
    if value is None:
        return "–"
    return f"{round(float(value), 2):g}"


def with_units(value: float | None, units: str) -> str:
    return number(value) if value is None or units in ("", "1") else f"{number(value)} {units}"


def period_text(start: date, freq: str) -> str:
    end = period_end(start, freq)
    return start.isoformat() if end == start else f"{start.isoformat()} – {end.isoformat()}"


@dataclass(frozen=True)
class Facts:
    """What one message says about the episode, in the words every channel uses."""

    state: str  # opened | escalated | resolved | cancelled
    level: int
    value: float | None
    period_start: date
    headline: str
    description: str
    instruction: str


def facts(
    alert: AlertRow, message: Message, site_name: str, title: str, lang: str, event: str | None = None
) -> Facts:
    """Headline, description (value with units, threshold, period, material, data and attribution) and
    instruction of one message in one language."""
    event = event or message.event
    state = "cancelled" if event == "resolved" and alert.false_alarm else event
    resolved = event == "resolved"
    level = alert.level if resolved or message.level is None else message.level
    value = alert.value if resolved else message.value
    start = alert.period_start if resolved or message.period_start is None else message.period_start
    t = lambda key, **kw: i18n.text(lang, key, **kw)  # noqa: E731
    phrase = i18n.level_phrase(lang, level)
    forecast = forecast_facts(alert)
    key = f"forecast_{state}" if forecast is not None and state != "cancelled" else state
    headline = t(key, level=phrase, title=title, site=site_name, onset=alert.onset.isoformat())
    lines = [
        f"{phrase[:1].upper()}{phrase[1:]} – {title} – {site_name}",
        f"{t('peak' if forecast else 'value')}: {with_units(value, alert.units)}",
    ]
    if alert.threshold is not None:
        lines.append(f"{t('threshold')} ({phrase}): {with_units(alert.threshold, alert.units)}")
    lines.append(f"{t('period')}: {period_text(start, alert.freq)}")
    if alert.material:
        lines.append(f"{t('material')}: {alert.material}")
    if forecast is not None:
        lines += _forecast_lines(forecast, t)
    else:
        lines.append(f"{t('since')}: {alert.onset.isoformat()}")
    lines.append(f"{t('data')}: {alert.product}, {alert.product_version} ({alert.source})")
    lines.append(alert.attribution)
    if alert.synthetic:
        lines.append(t("synthetic"))
    instructions = {"cancelled": "instruction_cancelled", "resolved": "instruction_resolved"}
    if forecast is not None:
        instructions = {**instructions, "resolved": "instruction_forecast_resolved"}
    instruction = t(instructions.get(state, "instruction_forecast" if forecast else "instruction_open"))
    return Facts(state, level, value, start, headline, "\n".join(lines), instruction)


def _forecast_lines(forecast: ForecastFacts, t) -> list[str]:
    issued = forecast.issued.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    expected = forecast.expected_start.isoformat()
    if forecast.expected_end != forecast.expected_start:
        expected = f"{expected} – {forecast.expected_end.isoformat()}"
    return [
        f"{t('expected')}: {expected}",
        f"{t('lead_time')}: {forecast.lead_time_days} {t('days')}",
        f"{t('issued')}: {issued}",
    ]


def polygons(site: Site) -> list[str]:
    """One CAP polygon per part of the site: outer ring as closed "lat,lon" pairs (WGS 84)."""
    geom = site.geometry
    parts = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    out = []
    for part in parts:
        if part.is_empty:
            continue
        coords = list(part.exterior.coords)
        if coords[0] != coords[-1]:
            coords.append(coords[0])
        out.append(" ".join(f"{lat:.6f},{lon:.6f}" for lon, lat, *_ in coords))
    return out


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _pair(parent: ET.Element, tag: str, name: str, value: str) -> None:
    el = _sub(parent, tag)
    _sub(el, "valueName", name)
    _sub(el, "value", value)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def alert_to_cap(
    alert: AlertRow,
    site: Site,
    spec: IndicatorSpec | None,
    history: Iterable,
    *,
    sender: str,
    base_url: str,
    lang: str | Sequence[str] = "en",
) -> bytes:
    """The CAP 1.2 document (UTF-8 XML) of the alert's current message, one <info> per language.

    `history` is the alert's audit trail (events with id, event, at, level, value, period_start); it
    gives the sent time of this and of every earlier message of the episode.
    """
    if not sender or _RESTRICTED & set(sender):
        raise ValueError(f"CAP sender {sender!r} must be non-empty, without spaces, commas, '<' or '&'")
    base = base_url.rstrip("/")
    trail = messages(alert, history)
    current = trail[-1]
    resolved = current.event == "resolved"
    cancelled = resolved and alert.false_alarm
    zone = i18n.site_zone(site.country)
    title = spec.title if spec else alert.indicator_id
    forecast = forecast_facts(alert)
    lead = forecast.lead_time_days if forecast else None
    langs = [lang] if isinstance(lang, str) else list(dict.fromkeys(lang)) or ["en"]

    root = ET.Element("alert", {"xmlns": CAP_NS})
    _sub(root, "identifier", identifier(alert.id, current.sequence))
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(current.sent))
    _sub(root, "status", "Exercise" if alert.synthetic else "Actual")
    _sub(root, "msgType", "Cancel" if cancelled else "Alert" if current.sequence == 1 else "Update")
    _sub(root, "scope", "Public")
    notes = []
    if alert.synthetic:
        notes.append("Exercise: SYNTHETIC demo data, not Copernicus data; no action is expected.")
    if cancelled:
        notes.append(f"Withdrawn: the alert was marked a false alarm ({alert.resolved_by or 'system'}).")
    if notes:
        _sub(root, "note", " ".join(notes))
    earlier = trail[:-1]
    if earlier:
        _sub(
            root,
            "references",
            " ".join(f"{sender},{identifier(alert.id, m.sequence)},{cap_time(m.sent)}" for m in earlier),
        )
    _sub(root, "incidents", alert.id)

    for code in langs:
        said = facts(alert, current, site.name, title, i18n.language(code))
        info = _sub(root, "info")
        _sub(info, "language", code)
        _sub(info, "category", category(spec, alert.kind))
        _sub(info, "event", title)
        if cancelled:
            response = "None"
        elif resolved:
            response = "AllClear"
        else:
            response = "Prepare" if said.level >= 3 else "Monitor"
        _sub(info, "responseType", response)
        _sub(info, "urgency", urgency(alert.kind, alert.freq, resolved, lead))
        _sub(info, "severity", SEVERITY.get(said.level, "Unknown"))
        _sub(info, "certainty", certainty(alert.kind, lead))
        _pair(info, "eventCode", "heritage-monitor:indicator", alert.indicator_id)
        if forecast is not None:
            _sub(info, "effective", cap_time(forecast.issued))
        _sub(info, "onset", cap_time(_local_midnight(alert.onset, zone)))
        if alert.kind == "forecast" and not resolved:
            last = forecast.expected_end if forecast else period_end(said.period_start, alert.freq)
            _sub(info, "expires", cap_time(_local_midnight(last + timedelta(days=1), zone)))
        _sub(info, "senderName", "Heritage Monitor")
        _sub(info, "headline", said.headline)
        _sub(info, "description", said.description)
        _sub(info, "instruction", said.instruction)
        _sub(info, "web", f"{base}/api/v1/alerts/{alert.id}")
        parameters = {
            "alert_id": alert.id,
            "sequence": str(current.sequence),
            "event": current.event,
            "indicator": alert.indicator_id,
            "indicator_version": (alert.provenance or {}).get("indicator_version"),
            "kind": alert.kind,
            "level": level_name(said.level),
            "awareness_level": AWARENESS.get(said.level),
            "value": None if said.value is None else repr(float(said.value)),
            "units": alert.units,
            "threshold": None if alert.threshold is None else repr(float(alert.threshold)),
            "threshold_level": alert.threshold_level,
            "period_start": said.period_start.isoformat(),
            "period_end": period_end(said.period_start, alert.freq).isoformat(),
            "material": alert.material,
            "coverage": None if alert.coverage is None else number(alert.coverage),
            "source": alert.source,
            "product": alert.product,
            "product_version": alert.product_version,
            "synthetic": "true" if alert.synthetic else "false",
        }
        if forecast is not None:
            parameters |= {
                "forecast_issued": cap_time(forecast.issued),
                "lead_time_days": str(forecast.lead_time_days),
                "expected_start": forecast.expected_start.isoformat(),
                "expected_end": forecast.expected_end.isoformat(),
                "peak_day": forecast.peak_day.isoformat(),
            }
        for name, value in parameters.items():
            if value not in (None, ""):
                _pair(info, "parameter", name, str(value))
        resource = _sub(info, "resource")
        _sub(resource, "resourceDesc", "Time series of the indicator at the site (CSV)")
        _sub(resource, "mimeType", "text/csv")
        _sub(
            resource,
            "uri",
            f"{base}/api/v1/sites/{site.id}/timeseries?indicator={alert.indicator_id}&format=csv",
        )
        area = _sub(info, "area")
        _sub(area, "areaDesc", f"{site.name}, {site.country}" if site.country else site.name)
        for ring in polygons(site):
            _sub(area, "polygon", ring)
        _pair(area, "geocode", "heritage-monitor:site", site.id)
        if site.unesco_id:
            _pair(area, "geocode", "UNESCO-WHC", str(site.unesco_id))

    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
