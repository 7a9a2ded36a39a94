"""Delivery of alert changes to subscribers: an outbox filled inside the pipeline, emptied by a dispatcher.

`enqueue(session)` runs inside the pipeline's transaction: it writes one outbox row per (subscription,
alert, sequence) for alerts opened, escalated or resolved since the last call, and touches no network,
so a slow or dead receiver never holds up or fails a pipeline pass. `dispatch_due` runs apart (scheduler
job or CLI): it claims due rows, sends them outside any transaction, then records each outcome; a failed
try is retried with exponential backoff and dead-lettered after the last one. Delivery is at least once:
a crash between sending and recording sends again with the same delivery id (the webhook-id, and the
`X-Heritage-Monitor-Delivery` e-mail header), by which receivers deduplicate.

Who hears what: a subscription matches an alert of its site (or of every site when it has none) at or
above its minimum level. The end of an episode goes only to subscriptions that were told of the episode.
A subscription created while an alert is open hears of it at its next change.

Payloads are the alert as the API shows it (AlertPublic), forecast fields included: a forecast alert says
when it was issued, its lead time and its expected period. A newer forecast issue that does not worsen a
forecast alert changes no sequence, so it sends nothing.

E-mail addresses are personal data: they live in `subscriptions.target` only (never in outbox rows or
errors); `delete_subscription` and `unsubscribe_by_token` remove them with everything sent to them.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from email.utils import parseaddr

import httpx
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

import indicators
from indicators import LEVEL_CODES, LEVELS, UnknownIndicatorError, level_name
from monitor.alerts import email as mail
from monitor.alerts import i18n, webhook
from monitor.alerts.cap import utc
from monitor.alerts.episodes import forecast_facts
from monitor.settings import Settings
from monitor.store.delivery_tables import AlertDeliveryMarkRow, AlertDeliveryRow, SubscriptionOptionsRow
from monitor.store.repository import Store, insert_for, new_id, utcnow
from monitor.store.tables import AlertRow, SiteRow, SubscriptionRow
from sites import SiteNotFoundError

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email")
UNSUBSCRIBE_PATH = "/api/v1/subscriptions/unsubscribe"
MAX_BACKOFF_SECONDS = 86_400.0
LEASE = timedelta(minutes=15)  # a claimed row is tried again after this if its outcome was never recorded
DEFAULT_BASE_URL = "http://localhost:8000"
_BATCH = 200

#: Alert kinds pushed to subscribers; projected (planning) alerts are shown in the API and feeds only.
PUSHED_KINDS = ("observed", "forecast")


class SubscriptionError(ValueError):
    """A subscription request that cannot be accepted (unknown channel, level, language, bad target)."""


@dataclass(frozen=True)
class Subscription:
    """A subscription as shown to its owner and admins: never its secret or unsubscribe token."""

    id: str
    site_id: str | None
    min_level: str
    channel: str
    target: str
    language: str
    digest: bool
    created_at: datetime


@dataclass
class DispatchReport:
    """What one dispatch did."""

    attempted: int = 0  # outbox rows tried
    delivered: int = 0
    retrying: int = 0  # failed, tried again later
    dead: int = 0  # failed for the last time
    waiting: int = 0  # e-mails left pending because no SMTP server is configured
    sent: int = 0  # webhook POSTs and e-mails that went out (a digest is one)
    errors: list[str] = field(default_factory=list)


def unsubscribe_url(base_url: str, token: str) -> str:
    """The link that ends a subscription (the API route is `UNSUBSCRIBE_PATH?token=…`)."""
    return f"{base_url.rstrip('/')}{UNSUBSCRIBE_PATH}?token={token}"


# ---- subscriptions ---------------------------------------------------------------------------------
def _level_code(min_level: str | int) -> int:
    code = LEVEL_CODES.get(min_level) if isinstance(min_level, str) else min_level
    if not isinstance(code, int) or not 1 <= code < len(LEVELS):
        raise SubscriptionError(f"min_level must be one of {list(LEVELS[1:])}")
    return code


def _check_target(channel: str, target: str) -> str:
    target = target.strip()
    if channel == "webhook":
        try:
            url = httpx.URL(target)
        except httpx.InvalidURL as exc:
            raise SubscriptionError(f"invalid webhook URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise SubscriptionError("a webhook target is an absolute http(s) URL")
        return target
    name, address = parseaddr(target)
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(c.isspace() for c in address) or name:
        raise SubscriptionError("an e-mail target is a bare address such as conservator@example.org")
    return address


def _public(row: SubscriptionRow, digest: bool) -> Subscription:
    return Subscription(
        id=row.id,
        site_id=row.site_id,
        min_level=level_name(row.min_level),
        channel=row.channel,
        target=row.target,
        language=row.language,
        digest=digest,
        created_at=row.created_at,
    )


def create_subscription(
    store: Store,
    site_id: str | None,
    min_level: str | int,
    channel: str,
    target: str,
    language: str = "en",
    secret: str | None = None,
    *,
    digest: bool = False,
) -> tuple[Subscription, str | None]:
    """Subscribe a webhook URL or an e-mail address to the alerts of one site (None: every site).

    Returns the subscription and, for a webhook, its signing secret (`whsec_…`, generated unless given):
    show it once, it is never returned again. `digest` (e-mail only) sends one e-mail a day.
    """
    if channel not in CHANNELS:
        raise SubscriptionError(f"channel must be one of {list(CHANNELS)}")
    code = _level_code(min_level)
    if language not in i18n.LANGUAGES:
        raise SubscriptionError(f"language must be one of {list(i18n.LANGUAGES)}")
    target = _check_target(channel, target)
    if channel == "email":
        if secret is not None:
            raise SubscriptionError("e-mail subscriptions have no secret")
    else:
        if digest:
            raise SubscriptionError("digests are for e-mail subscriptions")
        try:
            secret = secret or webhook.new_secret()
            webhook.secret_key(secret)
        except ValueError as exc:
            raise SubscriptionError(str(exc)) from None
    now = utcnow()
    with store.session.begin() as s:
        if site_id is not None and s.get(SiteRow, site_id) is None:
            raise SiteNotFoundError(site_id)
        row = SubscriptionRow(
            id=new_id("sub"),
            site_id=site_id,
            min_level=code,
            channel=channel,
            target=target,
            secret=secret,
            language=language,
            created_at=now,
        )
        s.add(row)
        s.flush()
        s.add(
            SubscriptionOptionsRow(
                subscription_id=row.id, digest=digest, unsubscribe_token=secrets.token_urlsafe(32)
            )
        )
    return _public(row, digest), secret


def list_subscriptions(
    store: Store, site_id: str | None = None, channel: str | None = None
) -> list[Subscription]:
    """Subscriptions, oldest first, optionally of one site (all-site ones excluded then) or channel."""
    q = (
        select(SubscriptionRow, SubscriptionOptionsRow.digest)
        .outerjoin(SubscriptionOptionsRow, SubscriptionOptionsRow.subscription_id == SubscriptionRow.id)
        .order_by(SubscriptionRow.created_at, SubscriptionRow.id)
    )
    if site_id is not None:
        q = q.where(SubscriptionRow.site_id == site_id)
    if channel is not None:
        q = q.where(SubscriptionRow.channel == channel)
    with store.session() as s:
        return [_public(row, bool(digest)) for row, digest in s.execute(q)]


def _delete(session: Session, subscription_id: str) -> bool:
    session.execute(delete(AlertDeliveryRow).where(AlertDeliveryRow.subscription_id == subscription_id))
    session.execute(
        delete(SubscriptionOptionsRow).where(SubscriptionOptionsRow.subscription_id == subscription_id)
    )
    return bool(
        session.execute(delete(SubscriptionRow).where(SubscriptionRow.id == subscription_id)).rowcount
    )


def delete_subscription(store: Store, subscription_id: str) -> bool:
    """Remove a subscription, its address and its outbox rows; False when there was none."""
    with store.session.begin() as s:
        return _delete(s, subscription_id)


def unsubscribe_by_token(store: Store, token: str) -> bool:
    """Remove the subscription whose unsubscribe link carries `token`; False when none does."""
    if not token:
        return False
    with store.session.begin() as s:
        sub_id = s.scalar(
            select(SubscriptionOptionsRow.subscription_id).where(
                SubscriptionOptionsRow.unsubscribe_token == token
            )
        )
        return sub_id is not None and _delete(s, sub_id)


# ---- enqueue (inside the pipeline's transaction) --------------------------------------------------
def event_of(alert: AlertRow) -> str:
    """The change that gave the alert its current sequence."""
    if alert.status == "resolved":
        return "resolved"
    return "opened" if alert.sequence == 1 else "escalated"


def next_digest(now: datetime, zone, hour: int) -> datetime:
    """The next `hour`:00 in `zone` strictly after `now` (UTC)."""
    local = now.astimezone(zone)
    day = local.date()
    candidate = datetime.combine(day, time(hour), tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(day + timedelta(days=1), time(hour), tzinfo=zone)
    return utc(candidate)


def enqueue(
    session: Session,
    alert_rows=None,
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> int:
    """Queue the messages of alert changes not queued yet; returns the number of outbox rows written.

    With `alert_rows`, only those alerts are considered; without, every alert whose `sequence` moved
    since the last call (a mark per alert remembers the newest sequence handled, subscribed or not).
    `settings` gives the hour of daily digests (default 07:00). Call it in the transaction that
    changed the alerts: it reads them as they are now. Only database work, no network; rerunning it
    changes nothing.
    """
    now = utc(now or utcnow())
    digest_hour = settings.email_digest_hour if settings is not None else 7
    session.flush()
    marks = AlertDeliveryMarkRow
    if alert_rows is None:
        q = (
            select(AlertRow)
            .outerjoin(marks, marks.alert_id == AlertRow.id)
            .where(or_(marks.sequence.is_(None), AlertRow.sequence > marks.sequence))
            .where(AlertRow.kind.in_(PUSHED_KINDS))
        )
        alerts = list(session.scalars(q))
    else:
        rows = [a for a in alert_rows if a.kind in PUSHED_KINDS]
        seen = dict(
            session.execute(
                select(marks.alert_id, marks.sequence).where(marks.alert_id.in_([a.id for a in rows]))
            ).all()
        )
        alerts = [a for a in rows if a.sequence > seen.get(a.id, 0)]
    if not alerts:
        return 0
    alert_ids = [a.id for a in alerts]
    subscriptions = session.execute(
        select(SubscriptionRow, SubscriptionOptionsRow.digest).outerjoin(
            SubscriptionOptionsRow, SubscriptionOptionsRow.subscription_id == SubscriptionRow.id
        )
    ).all()
    written = 0
    if subscriptions:
        resolved_ids = [a.id for a in alerts if a.status == "resolved"]
        told = set(
            session.execute(
                select(AlertDeliveryRow.subscription_id, AlertDeliveryRow.alert_id)
                .where(AlertDeliveryRow.alert_id.in_(resolved_ids))
                .distinct()
            ).all()
            if resolved_ids
            else ()
        )
        site_ids = {a.site_id for a in alerts} | {s.site_id for s, _ in subscriptions if s.site_id}
        sites = {
            sid: (name, country)
            for sid, name, country in session.execute(
                select(SiteRow.id, SiteRow.name, SiteRow.country).where(SiteRow.id.in_(site_ids))
            )
        }
        values = []
        for alert in alerts:
            event = event_of(alert)
            snapshot = None
            for sub, digest in subscriptions:
                if sub.site_id not in (None, alert.site_id) or alert.level < sub.min_level:
                    continue
                if event == "resolved" and (sub.id, alert.id) not in told:
                    continue
                if snapshot is None:
                    snapshot = webhook.alert_snapshot(
                        alert, sites.get(alert.site_id, (None, None))[0], _title(alert.indicator_id)
                    ) | forecast_fields(alert)
                due = now
                if digest and sub.channel == "email":
                    zone = i18n.site_zone(sites.get(sub.site_id, (None, None))[1] if sub.site_id else None)
                    due = next_digest(now, zone, digest_hour)
                values.append(
                    {
                        "id": new_id("msg"),
                        "subscription_id": sub.id,
                        "alert_id": alert.id,
                        "sequence": alert.sequence,
                        "event": event,
                        "level": alert.level,
                        "channel": sub.channel,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": due,
                        "last_error": None,
                        "payload": snapshot,
                        "created_at": now,
                        "delivered_at": None,
                    }
                )
        table = AlertDeliveryRow.__table__
        for i in range(0, len(values), _BATCH):
            stmt = insert_for(session, table).values(values[i : i + _BATCH])
            stmt = stmt.on_conflict_do_nothing(index_elements=["subscription_id", "alert_id", "sequence"])
            written += session.execute(stmt).rowcount or 0
    mark_table = marks.__table__
    for i in range(0, len(alerts), _BATCH):
        stmt = insert_for(session, mark_table).values(
            [{"alert_id": a.id, "sequence": a.sequence, "updated_at": now} for a in alerts[i : i + _BATCH]]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["alert_id"],
            set_={"sequence": stmt.excluded.sequence, "updated_at": stmt.excluded.updated_at},
            where=mark_table.c.sequence < stmt.excluded.sequence,
        )
        session.execute(stmt)
    log.debug("queued %d message(s) for %d alert change(s)", written, len(alert_ids))
    return written


def forecast_fields(alert: AlertRow) -> dict:
    """The forecast fields of the API's AlertPublic (issued, lead_time_days, expected), JSON-safe; all None
    for alerts that are not forecasts."""
    facts = forecast_facts(alert)
    if facts is None:
        return {"issued": None, "lead_time_days": None, "expected": None}
    return {
        "issued": facts.issued.isoformat(),
        "lead_time_days": facts.lead_time_days,
        "expected": {"start": facts.expected_start.isoformat(), "end": facts.expected_end.isoformat()},
    }


def _title(indicator_id: str) -> str | None:
    try:
        return indicators.get(indicator_id).title
    except UnknownIndicatorError:
        return None


# ---- dispatch (apart from the pipeline) -----------------------------------------------------------
@dataclass
class _Job:
    """A claimed outbox row with what sending it needs (read in the claim transaction)."""

    id: str
    subscription_id: str
    channel: str
    event: str
    payload: dict
    created_at: datetime
    target: str
    secret: str | None
    language: str
    digest: bool
    token: str
    country: str | None


@dataclass
class _Outcome:
    error: str | None = None
    permanent: bool = False


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed try: base × 2^(attempts − 1), at most a day."""
    seconds = settings.delivery_backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, MAX_BACKOFF_SECONDS))


def _claim(store: Store, settings: Settings, now: datetime, email_ready: bool, limit: int, report):
    D = AlertDeliveryRow
    with store.session.begin() as s:
        due = (D.status == "pending", D.next_attempt_at <= now)
        q = select(D).where(*due).order_by(D.next_attempt_at, D.created_at, D.id).limit(limit)
        if not email_ready:  # e-mails wait, and do not crowd webhooks out of the batch
            q = q.where(D.channel != "email")
            report.waiting += s.scalar(select(func.count()).where(*due, D.channel == "email")) or 0
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        claimed = list(s.scalars(q))
        if not claimed:
            return []
        sub_ids = {d.subscription_id for d in claimed}
        subs = {r.id: r for r in s.scalars(select(SubscriptionRow).where(SubscriptionRow.id.in_(sub_ids)))}
        options = {
            o.subscription_id: o
            for o in s.scalars(
                select(SubscriptionOptionsRow).where(SubscriptionOptionsRow.subscription_id.in_(sub_ids))
            )
        }
        for sub_id in sub_ids - set(options):
            options[sub_id] = SubscriptionOptionsRow(
                subscription_id=sub_id, digest=False, unsubscribe_token=secrets.token_urlsafe(32)
            )
            s.add(options[sub_id])
        countries = dict(
            s.execute(
                select(SiteRow.id, SiteRow.country).where(
                    SiteRow.id.in_({d.payload["site"] for d in claimed})
                )
            ).all()
        )
        jobs = []
        for d in claimed:
            d.next_attempt_at = now + LEASE
            sub, opt = subs[d.subscription_id], options[d.subscription_id]
            jobs.append(
                _Job(
                    d.id,
                    d.subscription_id,
                    d.channel,
                    d.event,
                    dict(d.payload),
                    utc(d.created_at),
                    sub.target,
                    sub.secret,
                    sub.language,
                    bool(opt.digest) and d.channel == "email",
                    opt.unsubscribe_token,
                    countries.get(d.payload["site"]),
                )
            )
        return jobs


def _scrub(text: str, target: str) -> str:
    """An error message without the recipient's address, short enough to store."""
    return text.replace(target, "<recipient>")[:500]


def _send_webhooks(jobs, settings, now, base_url, client, outcomes, report) -> None:
    own = client is None
    client = client or httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    try:
        for job in jobs:
            payload = webhook.body(job.event, job.payload, base_url, job.created_at)
            try:
                webhook.post(client, job.target, job.secret or "", job.id, payload, now)
            except webhook.WebhookError as exc:
                outcomes[job.id] = _Outcome(str(exc)[:500], exc.permanent)
            except ValueError as exc:  # a secret that is not whsec_…: retrying cannot help
                outcomes[job.id] = _Outcome(f"bad subscription secret: {exc}", True)
            else:
                outcomes[job.id] = _Outcome()
                report.sent += 1
    finally:
        if own:
            client.close()


def _smtp_failure(exc: Exception) -> tuple[str, bool]:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return f"recipient refused ({', '.join(map(str, codes))})", bool(codes) and min(codes) >= 500
    return f"{type(exc).__name__}: {exc}", False


def _send_emails(jobs, settings, now, base_url, smtp, outcomes, report) -> None:
    groups: list[list[_Job]] = []
    digests: dict[str, list[_Job]] = defaultdict(list)
    for job in jobs:
        if job.digest:
            digests[job.subscription_id].append(job)
        else:
            groups.append([job])
    groups.extend(digests.values())
    connection = smtp
    try:
        for index, group in enumerate(groups):
            if connection is None:
                try:
                    connection = mail.connect(settings)
                except (smtplib.SMTPException, OSError) as exc:  # unreachable: retry them all later
                    error, _ = _smtp_failure(exc)
                    for job in (j for g in groups[index:] for j in g):
                        outcomes[job.id] = _Outcome(_scrub(error, job.target))
                    return
            first = group[0]
            items = [mail.AlertMail(j.id, j.event, j.payload, j.country) for j in group]
            kwargs = {
                "recipient": first.target,
                "language": first.language,
                "base_url": base_url,
                "unsubscribe_url": unsubscribe_url(base_url, first.token),
                "now": now,
            }
            message = (
                mail.digest_email(settings, items, **kwargs)
                if first.digest
                else mail.alert_email(settings, items[0], **kwargs)
            )
            try:
                connection.send_message(message)
            except (smtplib.SMTPException, OSError) as exc:
                error, permanent = _smtp_failure(exc)
                for job in group:
                    outcomes[job.id] = _Outcome(_scrub(error, job.target), permanent)
                if not isinstance(exc, smtplib.SMTPRecipientsRefused) and connection is not smtp:
                    _close(connection)
                    connection = None
            else:
                report.sent += 1
                for job in group:
                    outcomes[job.id] = _Outcome()
    finally:
        if connection is not None and connection is not smtp:
            _close(connection)


def _close(connection) -> None:
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _record(store: Store, settings: Settings, now: datetime, outcomes: dict, report) -> None:
    with store.session.begin() as s:
        rows = s.scalars(select(AlertDeliveryRow).where(AlertDeliveryRow.id.in_(list(outcomes))))
        for row in rows:
            if row.status != "pending":
                continue
            outcome = outcomes[row.id]
            row.attempts += 1
            if outcome.error is None:
                row.status, row.delivered_at, row.last_error = "delivered", now, None
                report.delivered += 1
                continue
            row.last_error = outcome.error
            report.errors.append(f"{row.id}: {outcome.error}")
            if outcome.permanent or row.attempts >= settings.delivery_max_attempts:
                row.status = "dead"
                report.dead += 1
            else:
                row.next_attempt_at = now + backoff(settings, row.attempts)
                report.retrying += 1


def dispatch_due(
    store: Store,
    settings: Settings,
    now: datetime | None = None,
    http_client: httpx.Client | None = None,
    smtp=None,
    limit: int = 500,
) -> DispatchReport:
    """Send the outbox rows due at `now` (webhooks, e-mails, digests) and record each outcome.

    `http_client` (an httpx.Client) and `smtp` (an object with `send_message`, e.g. smtplib.SMTP) may be
    given; otherwise they are made from settings and closed afterwards. E-mails wait, untried, while no
    SMTP server is configured. Never call it inside the pipeline's transaction.
    """
    now = utc(now or utcnow())
    report = DispatchReport()
    base_url = settings.public_base_url or DEFAULT_BASE_URL
    email_ready = smtp is not None or bool(settings.smtp_host)
    jobs = _claim(store, settings, now, email_ready, limit, report)
    if not jobs:
        return report
    report.attempted = len(jobs)
    outcomes: dict[str, _Outcome] = {}
    hooks = [j for j in jobs if j.channel == "webhook"]
    emails = [j for j in jobs if j.channel == "email"]
    if hooks:
        _send_webhooks(hooks, settings, now, base_url, http_client, outcomes, report)
    if emails:
        _send_emails(emails, settings, now, base_url, smtp, outcomes, report)
    _record(store, settings, now, outcomes, report)
    if report.errors:
        log.warning("alert delivery: %d failed, %d dead", report.retrying + report.dead, report.dead)
    return report


def outbox_counts(store: Store) -> dict[str, int]:
    """Outbox rows per status (pending, delivered, dead), for health and metrics."""
    with store.session() as s:
        rows = s.execute(
            select(AlertDeliveryRow.status, func.count()).group_by(AlertDeliveryRow.status)
        ).all()
    return {"pending": 0, "delivered": 0, "dead": 0} | dict(rows)
