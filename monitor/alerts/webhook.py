"""Webhooks after the Standard Webhooks specification (https://www.standardwebhooks.com).

Every POST carries `webhook-id` (the delivery id: the same on every retry, so receivers deduplicate by
it), `webhook-timestamp` (Unix seconds of this try) and `webhook-signature`: `v1,<base64 HMAC-SHA256>`
of `"{id}.{timestamp}.{body}"`, keyed with the subscription secret. Secrets are `whsec_` + base64 of
32 random bytes; the HMAC key is the decoded bytes. The body is JSON:
`{"type": "alert.opened" | "alert.escalated" | "alert.resolved", "timestamp": ..., "data": <alert>}`,
where the alert has the fields of the API's AlertPublic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

from indicators import level_name
from monitor.alerts.cap import utc
from monitor.alerts.episodes import period_end
from monitor.store.tables import AlertRow

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
EVENT_TYPES = ("alert.opened", "alert.escalated", "alert.resolved")


class WebhookError(Exception):
    """A webhook POST that did not succeed; `permanent` when retrying cannot help (410 Gone)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class WebhookVerificationError(ValueError):
    """A webhook whose signature or timestamp does not check out."""


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; raises ValueError for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc
    if len(key) < 24:
        raise ValueError("a webhook secret must hold at least 24 random bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one signed webhook POST."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    request_headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a received webhook (what a receiver does); returns its webhook-id.

    Raises WebhookVerificationError when a header is missing, the timestamp is more than `tolerance`
    seconds away from `now` (replays), or no `v1` signature matches.
    """
    lower = {k.lower(): v for k, v in request_headers.items()}
    try:
        msg_id, stamp, signatures = (
            lower["webhook-id"],
            lower["webhook-timestamp"],
            lower["webhook-signature"],
        )
        timestamp = int(stamp)
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError("missing or malformed webhook headers") from exc
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook timestamp outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no matching webhook signature")


def alert_snapshot(row: AlertRow, site_name: str | None, title: str | None) -> dict:
    """The alert as it is now, JSON-safe, with the fields of the API's AlertPublic (links apart)."""

    def iso(value) -> str | None:
        return None if value is None else value.isoformat()

    def moment(value: datetime | None) -> str | None:
        return None if value is None else utc(value).isoformat()

    return {
        "id": row.id,
        "site": row.site_id,
        "site_name": site_name,
        "indicator": row.indicator_id,
        "indicator_title": title,
        "kind": row.kind,
        "status": row.status,
        "level": level_name(row.level),
        "severity": level_name(row.level),
        "value": row.value,
        "units": row.units,
        "threshold": row.threshold,
        "threshold_level": row.threshold_level,
        "material": row.material,
        "period": {"start": iso(row.period_start), "end": iso(period_end(row.period_start, row.freq))},
        "onset": iso(row.onset),
        "last_period": {"start": iso(row.last_period), "end": iso(period_end(row.last_period, row.freq))},
        "freq": row.freq,
        "data_quality": {"coverage": row.coverage, "synthetic": row.synthetic},
        "provenance": {
            **(row.provenance or {}),
            "source": row.source,
            "product": row.product,
            "product_version": row.product_version,
        },
        "attribution": row.attribution,
        "synthetic": row.synthetic,
        "sequence": row.sequence,
        "opened_at": moment(row.opened_at),
        "updated_at": moment(row.updated_at),
        "acknowledged": (
            {
                "at": moment(row.acknowledged_at),
                "by": row.acknowledged_by,
                "note": row.ack_note,
                "false_alarm": row.false_alarm,
            }
            if row.acknowledged_at
            else None
        ),
        "resolved": {"at": moment(row.resolved_at), "by": row.resolved_by} if row.resolved_at else None,
    }


def alert_links(snapshot: Mapping, base_url: str) -> list[dict]:
    """The links of an alert document (as in AlertPublic, plus its CAP message)."""
    base = base_url.rstrip("/")
    alert_id, site, indicator = snapshot["id"], snapshot["site"], snapshot["indicator"]
    series = f"{base}/api/v1/sites/{site}/timeseries?indicator={indicator}"
    return [
        {"href": f"{base}/api/v1/alerts/{alert_id}", "rel": "self", "type": "application/json"},
        {"href": f"{base}/api/v1/alerts/{alert_id}.cap", "rel": "alternate", "type": "application/cap+xml"},
        {"href": f"{base}/api/v1/sites/{site}", "rel": "site", "type": "application/geo+json"},
        {"href": series, "rel": "timeseries", "type": "application/json"},
        {"href": f"{series}&format=csv", "rel": "timeseries", "type": "text/csv"},
    ]


def body(event: str, snapshot: Mapping, base_url: str, created: datetime) -> bytes:
    """The JSON body of one webhook: event type, when the change happened, and the alert."""
    document = {
        "type": f"alert.{event}",
        "timestamp": utc(created).isoformat(),
        "data": {**snapshot, "links": alert_links(snapshot, base_url)},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def post(client: httpx.Client, url: str, secret: str, msg_id: str, payload: bytes, now: datetime) -> None:
    """POST one signed webhook; raises WebhookError unless the receiver answers 2xx."""
    signed = headers(secret, msg_id, int(now.timestamp()), payload)
    signed["user-agent"] = "heritage-monitor-webhooks/1"
    try:
        response = client.post(url, content=payload, headers=signed)
    except httpx.HTTPError as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
    if response.is_success:
        return
    raise WebhookError(f"HTTP {response.status_code}", permanent=response.status_code == 410)
