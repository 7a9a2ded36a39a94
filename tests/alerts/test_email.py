"""E-mail: a real SMTP server on 127.0.0.1 receives each alert in the subscriber's language with an
unsubscribe link; daily digests; addresses removable; subscriptions validated."""

from __future__ import annotations

import email
import re
from datetime import date, timedelta
from email import policy

import pytest
from sqlalchemy import select

from monitor.alerts.delivery import (
    SubscriptionError,
    create_subscription,
    delete_subscription,
    dispatch_due,
    list_subscriptions,
    next_digest,
    unsubscribe_by_token,
)
from monitor.alerts.i18n import site_zone
from monitor.store.delivery_tables import AlertDeliveryRow
from monitor.store.tables import SubscriptionRow
from sites import SiteNotFoundError
from tests.alerts.conftest import advance, free_port, month_record, utc_now

ADDRESS = "conservator@example.org"


@pytest.fixture
def smtp_settings(settings, smtp_server):
    port, _ = smtp_server
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "smtp_from": "Heritage Monitor <alerts@heritage.example.org>",
            "public_base_url": "https://heritage.example.org",
        }
    )


def received(smtp_server) -> list[email.message.EmailMessage]:
    _, inbox = smtp_server
    return [email.message_from_bytes(e.original_content, policy=policy.default) for e in inbox.envelopes]


def test_an_alert_e_mail_arrives_in_the_subscribers_language(store, sites, smtp_settings, smtp_server):
    sub, secret = create_subscription(store, "athens", "high", "email", ADDRESS, "el")
    assert secret is None and sub.language == "el"
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    report = dispatch_due(store, smtp_settings)
    assert (report.delivered, report.sent) == (1, 1)
    [message] = received(smtp_server)
    _, inbox = smtp_server
    assert inbox.envelopes[0].rcpt_tos == [ADDRESS]
    assert message["Subject"].startswith("[DEMO] Νέα ειδοποίηση (υψηλός κίνδυνος): Hot days – Athens")
    assert message["Content-Language"] == "el"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Επιθεωρήστε το μνημείο" in plain and "Τιμή: 16 days" in plain
    assert "(Europe/Athens)" in plain and ("EET" in plain or "EEST" in plain)  # the site's local time
    links = re.findall(
        r"https://heritage\.example\.org/api/v1/subscriptions/unsubscribe\?token=[\w-]+", plain
    )
    assert len(links) == 1 and links[0] in html and f"<{links[0]}>" == message["List-Unsubscribe"]
    assert "Διαγραφή από τις ειδοποιήσεις" in html
    [row] = _deliveries(store)
    assert message["X-Heritage-Monitor-Delivery"] == row.id
    assert ADDRESS not in str(row.payload)  # the address stays in the subscription only

    token = links[0].rsplit("=", 1)[1]
    assert unsubscribe_by_token(store, token)
    assert not unsubscribe_by_token(store, token)
    assert list_subscriptions(store) == [] and _deliveries(store) == []
    with store.session() as s:
        assert s.scalars(select(SubscriptionRow)).all() == []


def test_daily_digest_collects_the_day_in_one_e_mail(store, sites, smtp_settings, smtp_server):
    create_subscription(store, None, "high", "email", ADDRESS, "fr", digest=True)
    now = utc_now()
    advance(
        store,
        sites,
        [
            month_record("athens", date(2026, 6, 1), 16.0, 3),
            month_record("krakow", date(2026, 6, 1), 23.0, 4),
        ],
        now=now,
    )
    assert dispatch_due(store, smtp_settings, now=now).attempted == 0  # waits for the digest hour
    due = next_digest(now, site_zone(None), smtp_settings.email_digest_hour)
    assert timedelta(0) < due - now <= timedelta(days=1)
    report = dispatch_due(store, smtp_settings, now=due)
    assert (report.attempted, report.delivered, report.sent) == (2, 2, 1)
    [message] = received(smtp_server)
    assert message["Subject"] == "[DEMO] Résumé quotidien Heritage Monitor (2)"
    plain = message.get_body(("plain",)).get_content()
    assert plain.count("[nouvelle]") == 2 and "Athens" in plain and "Krakow" in plain
    assert "Se désabonner" in plain


def test_e_mails_wait_while_no_smtp_server_is_configured(store, settings, sites):
    create_subscription(store, "athens", "high", "email", ADDRESS)
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    report = dispatch_due(store, settings)
    assert (report.attempted, report.waiting) == (0, 1)
    [row] = _deliveries(store)
    assert row.status == "pending" and row.attempts == 0


def test_a_refused_address_is_dead_lettered_without_keeping_it(store, sites, smtp_settings, smtp_server):
    _, inbox = smtp_server
    inbox.refuse.add(ADDRESS)
    create_subscription(store, "athens", "high", "email", ADDRESS)
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    report = dispatch_due(store, smtp_settings)
    assert (report.attempted, report.dead) == (1, 1)
    [row] = _deliveries(store)
    assert row.status == "dead" and row.last_error == "recipient refused (550)"


def test_an_unreachable_smtp_server_is_retried(store, sites, smtp_settings):
    settings = smtp_settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout_seconds": 2.0})
    create_subscription(store, "athens", "high", "email", ADDRESS)
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    report = dispatch_due(store, settings)
    assert (report.attempted, report.retrying) == (1, 1)
    [row] = _deliveries(store)
    assert row.status == "pending" and row.attempts == 1 and "ConnectionRefusedError" in row.last_error


def test_subscriptions_are_validated_listed_and_deleted(store, sites):
    with pytest.raises(SubscriptionError):
        create_subscription(store, "athens", "high", "sms", ADDRESS)
    with pytest.raises(SubscriptionError):
        create_subscription(store, "athens", "extreme", "email", ADDRESS)
    with pytest.raises(SubscriptionError):
        create_subscription(store, "athens", "high", "email", "not an address")
    with pytest.raises(SubscriptionError):
        create_subscription(store, "athens", "high", "email", ADDRESS, "pt")
    with pytest.raises(SubscriptionError):
        create_subscription(store, "athens", "high", "webhook", "ftp://example.org/hook")
    with pytest.raises(SubscriptionError):
        create_subscription(store, "athens", "high", "webhook", "https://example.org/hook", secret="s3cret")
    with pytest.raises(SiteNotFoundError):
        create_subscription(store, "atlantis", "high", "email", ADDRESS)
    hook, secret = create_subscription(store, None, 2, "webhook", "https://example.org/hook")
    mail, _ = create_subscription(store, "krakow", "severe", "email", ADDRESS, "pl", digest=True)
    assert hook.min_level == "moderate" and hook.site_id is None and secret.startswith("whsec_")
    assert [s.id for s in list_subscriptions(store)] == [hook.id, mail.id]
    assert [s.id for s in list_subscriptions(store, site_id="krakow")] == [mail.id]
    assert list_subscriptions(store, channel="email")[0].digest is True
    assert not hasattr(list_subscriptions(store)[0], "secret")
    assert delete_subscription(store, mail.id) and not delete_subscription(store, mail.id)
    assert [s.id for s in list_subscriptions(store)] == [hook.id]


def _deliveries(store) -> list[AlertDeliveryRow]:
    with store.session() as s:
        return list(s.scalars(select(AlertDeliveryRow)))
