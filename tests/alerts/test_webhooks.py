"""Webhooks: signed after Standard Webhooks, delivered at least once, retried, dead-lettered, never sent
from inside the pipeline."""

from __future__ import annotations

import json
import socket
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from monitor.alerts import delivery, webhook
from monitor.alerts.cap import utc
from monitor.alerts.delivery import create_subscription, dispatch_due, enqueue, outbox_counts
from monitor.store.delivery_tables import AlertDeliveryRow
from tests.alerts.conftest import advance, month_record, only_alert, utc_now


def deliveries(store) -> list[AlertDeliveryRow]:
    with store.session() as s:
        return list(s.scalars(select(AlertDeliveryRow).order_by(AlertDeliveryRow.created_at)))


def subscribe(store, receiver, site_id="athens", min_level="high") -> str:
    sub, secret = create_subscription(store, site_id, min_level, "webhook", receiver.url)
    receiver.secret = secret
    assert secret.startswith("whsec_") and sub.channel == "webhook"
    return sub.id


def test_signatures_follow_standard_webhooks():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the specification's example secret
    body = b'{"test": 2432232314}'
    signature = webhook.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    stamp = utc_now()
    headers = webhook.headers(secret, "msg_1", int(stamp.timestamp()), body)
    assert webhook.verify(secret, headers, body, now=stamp) == "msg_1"
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify(secret, headers, body + b" ", now=stamp)
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify(secret, headers, body, now=stamp + timedelta(minutes=10))
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify(webhook.new_secret(), headers, body, now=stamp)


def test_each_new_or_escalated_alert_arrives_exactly_once(store, settings, sites, receiver):
    subscribe(store, receiver)
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    advance(store, sites, [month_record("krakow", date(2026, 6, 1), 16.0, 3)])  # another site: not ours
    report = dispatch_due(store, settings)
    assert (report.attempted, report.delivered, report.sent) == (1, 1, 1)
    assert dispatch_due(store, settings).attempted == 0  # a repeated dispatch sends nothing again

    # a crash after sending, before the outcome was recorded: once its claim lapses, the row is sent
    # again with the same webhook-id
    with store.session.begin() as s:
        lapsed = utc_now() - timedelta(seconds=1)
        s.execute(
            update(AlertDeliveryRow).values(status="pending", delivered_at=None, next_attempt_at=lapsed)
        )
    assert dispatch_due(store, settings).delivered == 1
    assert len(receiver.requests) == 2 and len(receiver.processed) == 1
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1

    advance(store, sites, [month_record("athens", date(2026, 7, 1), 25.0, 4)])  # escalation
    advance(store, sites, [month_record("athens", date(2026, 7, 1), 25.0, 4)])  # rerun: nothing new
    dispatch_due(store, settings)
    dispatch_due(store, settings)
    assert receiver.rejected == 0
    events = sorted(
        ((p["type"], p["data"]["sequence"]) for p in receiver.processed.values()), key=lambda x: x[1]
    )
    assert events == [("alert.opened", 1), ("alert.escalated", 2)]
    alert = only_alert(store, "athens")
    opened = next(p for p in receiver.processed.values() if p["type"] == "alert.opened")["data"]
    assert opened["id"] == alert.id and opened["site_name"] == "Athens" and opened["level"] == "high"
    assert opened["value"] == 16.0 and opened["units"] == "days" and opened["synthetic"] is True
    assert {"self", "alternate"} <= {link["rel"] for link in opened["links"]}

    advance(store, sites, [month_record("athens", date(2026, 8, 1), 1.0, 0)])
    dispatch_due(store, settings)
    resolved = [p for p in receiver.processed.values() if p["type"] == "alert.resolved"]
    assert len(resolved) == 1 and resolved[0]["data"]["status"] == "resolved"
    assert outbox_counts(store) == {"pending": 0, "delivered": 3, "dead": 0}


def test_a_failed_delivery_is_retried_with_backoff(store, settings, sites, receiver):
    settings = settings.model_copy(update={"delivery_backoff_seconds": 30.0})
    subscribe(store, receiver)
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    receiver.fail_next = 1
    t0 = utc_now()
    report = dispatch_due(store, settings, now=t0)
    assert (report.attempted, report.retrying, report.delivered) == (1, 1, 0)
    [row] = deliveries(store)
    assert row.status == "pending" and row.attempts == 1 and row.last_error == "HTTP 500"
    assert dispatch_due(store, settings, now=t0 + timedelta(seconds=29)).attempted == 0  # not yet due
    report = dispatch_due(store, settings, now=t0 + timedelta(seconds=30))
    assert report.delivered == 1
    [row] = deliveries(store)
    assert row.status == "delivered" and row.attempts == 2 and row.last_error is None
    assert len(receiver.processed) == 1 and len(receiver.requests) == 2


def test_a_delivery_that_keeps_failing_is_dead_lettered(store, settings, sites, receiver):
    settings = settings.model_copy(update={"delivery_backoff_seconds": 10.0, "delivery_max_attempts": 3})
    subscribe(store, receiver)
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    receiver.always_fail = True
    t0, waits = utc_now(), []
    now = t0
    for _ in range(3):
        report = dispatch_due(store, settings, now=now)
        assert report.attempted == 1
        [row] = deliveries(store)
        waits.append((utc(row.next_attempt_at) - now).total_seconds())
        now = now + timedelta(seconds=waits[-1])
    assert waits[:2] == [10.0, 20.0]  # exponential backoff
    [row] = deliveries(store)
    assert row.status == "dead" and row.attempts == 3 and row.last_error == "HTTP 500"
    assert report.dead == 1
    assert dispatch_due(store, settings, now=now + timedelta(days=2)).attempted == 0
    assert len(receiver.requests) == 3 and not receiver.processed


def test_an_unreachable_receiver_is_retried(store, settings, sites):
    create_subscription(store, None, "high", "webhook", "http://127.0.0.1:9/hook")
    settings = settings.model_copy(update={"webhook_timeout_seconds": 2.0})
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    report = dispatch_due(store, settings)
    assert report.retrying == 1 and "ConnectError" in deliveries(store)[0].last_error


def test_enqueue_is_cheap_and_dispatch_never_runs_inside_the_pipeline(
    store, settings, sites, receiver, monkeypatch
):
    subscribe(store, receiver, site_id=None, min_level="moderate")

    def no_network(*args, **kwargs):
        raise AssertionError("enqueue must not touch the network")

    with monkeypatch.context() as m:
        m.setattr(socket.socket, "connect", no_network)
        m.setattr(delivery, "dispatch_due", no_network)
        advance(
            store,
            sites,
            [month_record(s, date(2026, 6, 1), 16.0, 3) for s in ("athens", "krakow", "venice_lagoon")],
        )
    rows = deliveries(store)
    assert len(rows) == 3 and {r.status for r in rows} == {"pending"} and not receiver.requests
    assert {r.event for r in rows} == {"opened"} and all(r.payload["sequence"] == 1 for r in rows)
    with store.session.begin() as s:  # rerunning enqueue writes nothing
        assert enqueue(s) == 0
    assert dispatch_due(store, settings).delivered == 3
    assert len(receiver.processed) == 3


def test_enqueue_of_given_rows_and_who_hears_the_end(store, settings, sites, receiver):
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)], queue=False)
    alert = only_alert(store, "athens")
    subscribe(store, receiver, min_level="severe")  # too high for this alert
    with store.session.begin() as s:
        assert enqueue(s, [alert]) == 0
        assert enqueue(s, [alert]) == 0
    advance(store, sites, [month_record("athens", date(2026, 7, 1), 3.0, 0)])  # the end of an untold episode
    assert deliveries(store) == []
    assert dispatch_due(store, settings).attempted == 0


def test_webhook_body_is_the_alert_with_its_event_type(store, settings, sites, receiver):
    subscribe(store, receiver)
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    dispatch_due(store, settings)
    request = receiver.requests[0]
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["webhook-signature"].startswith("v1,")
    document = json.loads(request["body"])
    assert document["type"] == "alert.opened" and document["timestamp"]
    assert document["data"]["attribution"].startswith("SYNTHETIC")
