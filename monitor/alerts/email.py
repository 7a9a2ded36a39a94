"""Alert e-mails: one message per alert change (plain text + HTML), or a daily digest, over SMTP.

Texts are in the subscriber's language (`monitor.alerts.i18n`), times in the site's local time zone.
Every e-mail carries an unsubscribe link (and a `List-Unsubscribe` header) with the subscription's token.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from html import escape
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from indicators import LEVEL_CODES
from monitor.alerts import i18n
from monitor.alerts.cap import Facts, Message, facts
from monitor.settings import Settings


@dataclass(frozen=True)
class AlertMail:
    """One alert change to tell: the delivery's id, its event and the alert as it was then."""

    delivery_id: str
    event: str  # opened | escalated | resolved
    snapshot: Mapping
    country: str | None


def _view(snapshot: Mapping) -> SimpleNamespace:
    """The snapshot with the attribute names and types of an AlertRow, for `cap.facts`."""
    ack = snapshot.get("acknowledged") or {}
    return SimpleNamespace(
        level=LEVEL_CODES.get(snapshot["level"], 0),
        value=snapshot["value"],
        units=snapshot["units"],
        threshold=snapshot["threshold"],
        freq=snapshot["freq"],
        material=snapshot["material"],
        period_start=date.fromisoformat(snapshot["period"]["start"]),
        onset=date.fromisoformat(snapshot["onset"]),
        product=snapshot["provenance"].get("product", ""),
        product_version=snapshot["provenance"].get("product_version", ""),
        source=snapshot["provenance"].get("source", ""),
        attribution=snapshot["attribution"],
        kind=snapshot.get("kind", "observed"),
        provenance=snapshot.get("provenance") or {},
        synthetic=bool(snapshot["synthetic"]),
        false_alarm=bool(ack.get("false_alarm")),
    )


def mail_facts(mail: AlertMail, lang: str) -> Facts:
    """What the e-mail says about its alert change, in `lang`."""
    view = _view(mail.snapshot)
    message = Message(
        int(mail.snapshot["sequence"]),
        mail.event,
        datetime.fromisoformat(mail.snapshot["updated_at"]),
        view.level,
        view.value,
        view.period_start,
    )
    name = mail.snapshot.get("site_name") or mail.snapshot["site"]
    title = mail.snapshot.get("indicator_title") or mail.snapshot["indicator"]
    return facts(view, message, name, title, lang)


def local_time(iso_moment: str, zone: ZoneInfo) -> str:
    """An ISO instant as local wall time with the zone's abbreviation and name."""
    moment = datetime.fromisoformat(iso_moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({zone.key})"


def _envelope(settings: Settings, recipient: str, subject: str, lang: str, unsubscribe: str, now: datetime):
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now.astimezone(UTC))
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    return msg


def _html(lang: str, blocks: Sequence[str], unsubscribe: str) -> str:
    footer = (
        f'<p style="color:#666;font-size:smaller">{escape(i18n.text(lang, "footer"))}<br>'
        f'<a href="{escape(unsubscribe)}">{escape(i18n.text(lang, "unsubscribe"))}</a></p>'
    )
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head>'
        f"<body>{''.join(blocks)}<hr>{footer}</body></html>"
    )


def _alert_blocks(mail: AlertMail, said: Facts, lang: str, base_url: str) -> tuple[str, str]:
    """The plain-text and HTML renderings of one alert change."""
    base = base_url.rstrip("/")
    link = f"{base}/api/v1/alerts/{mail.snapshot['id']}"
    updated = local_time(mail.snapshot["updated_at"], i18n.site_zone(mail.country))
    plain = "\n".join(
        [
            said.headline,
            "",
            said.description,
            "",
            said.instruction,
            "",
            f"{i18n.text(lang, 'updated')}: {updated}",
            f"{i18n.text(lang, 'view')}: {link}",
            f"CAP: {link}.cap",
        ]
    )
    description = "<br>".join(escape(line) for line in said.description.splitlines())
    html = (
        f"<h2>{escape(said.headline)}</h2><p>{description}</p><p><strong>{escape(said.instruction)}</strong></p>"
        f"<p>{escape(i18n.text(lang, 'updated'))}: {escape(updated)}<br>"
        f'<a href="{escape(link)}">{escape(i18n.text(lang, "view"))}</a> · '
        f'<a href="{escape(link)}.cap">CAP</a></p>'
    )
    return plain, html


def alert_email(
    settings: Settings,
    mail: AlertMail,
    *,
    recipient: str,
    language: str,
    base_url: str,
    unsubscribe_url: str,
    now: datetime,
) -> EmailMessage:
    """One e-mail about one alert change, plain text with an HTML alternative."""
    lang = i18n.language(language)
    said = mail_facts(mail, lang)
    subject = ("[DEMO] " if mail.snapshot["synthetic"] else "") + said.headline
    msg = _envelope(settings, recipient, subject, lang, unsubscribe_url, now)
    msg["X-Heritage-Monitor-Delivery"] = mail.delivery_id
    plain, html = _alert_blocks(mail, said, lang, base_url)
    footer = f"--\n{i18n.text(lang, 'footer')}\n{i18n.text(lang, 'unsubscribe')}: {unsubscribe_url}\n"
    msg.set_content(f"{plain}\n\n{footer}")
    msg.add_alternative(_html(lang, [html], unsubscribe_url), subtype="html")
    msg["Content-Language"] = lang  # after the content: setting content clears Content-* headers
    return msg


def digest_email(
    settings: Settings,
    mails: Sequence[AlertMail],
    *,
    recipient: str,
    language: str,
    base_url: str,
    unsubscribe_url: str,
    now: datetime,
) -> EmailMessage:
    """One daily e-mail listing several alert changes."""
    lang = i18n.language(language)
    subject = i18n.text(lang, "digest_subject", count=len(mails))
    if any(m.snapshot["synthetic"] for m in mails):
        subject = "[DEMO] " + subject
    msg = _envelope(settings, recipient, subject, lang, unsubscribe_url, now)
    msg["X-Heritage-Monitor-Delivery"] = " ".join(m.delivery_id for m in mails)
    plains, htmls = (
        [i18n.text(lang, "digest_intro"), ""],
        [f"<p>{escape(i18n.text(lang, 'digest_intro'))}</p>"],
    )
    for mail in mails:
        word = i18n.text(lang, f"event_{mail.event}")
        plain, html = _alert_blocks(mail, mail_facts(mail, lang), lang, base_url)
        plains += [f"[{word}] {plain}", "", "----", ""]
        htmls.append(f"<p><em>{escape(word)}</em></p>{html}<hr>")
    footer = f"--\n{i18n.text(lang, 'footer')}\n{i18n.text(lang, 'unsubscribe')}: {unsubscribe_url}\n"
    msg.set_content("\n".join(plains) + "\n" + footer)
    msg.add_alternative(_html(lang, htmls, unsubscribe_url), subtype="html")
    msg["Content-Language"] = lang
    return msg


def connect(settings: Settings) -> smtplib.SMTP:
    """An SMTP connection from settings: STARTTLS when enabled, login when a user name is set."""
    if not settings.smtp_host:
        raise smtplib.SMTPException("HM_SMTP_HOST is not set")
    client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
    try:
        client.ehlo()
        if settings.smtp_starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_username, password)
    except BaseException:
        client.close()
        raise
    return client
