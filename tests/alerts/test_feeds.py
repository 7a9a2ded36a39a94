"""The HTTP routes of CAP messages and of the Atom feed, with the feeds router before the alerts one."""

from __future__ import annotations

from datetime import date

import feedparser
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from lxml import etree

from api import errors
from api.routes import alerts, feeds
from monitor.store.tables import AlertRow
from tests.alerts.conftest import advance, month_record, only_alert

NS = {"atom": "http://www.w3.org/2005/Atom", "cap": "urn:oasis:names:tc:emergency:cap:1.2"}


@pytest.fixture
def client(settings, store, sites):
    app = FastAPI()
    app.state.settings = settings.model_copy(update={"public_base_url": "https://heritage.example.org"})
    app.state.store = store
    errors.install(app)
    app.include_router(feeds.router)  # before the alerts router, as create_app must
    app.include_router(alerts.router)
    with TestClient(app) as c:
        yield c


def test_cap_route_serves_the_current_message(client, store, sites, cap_schema):
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    alert_id = only_alert(store, "athens").id
    resp = client.get(f"/api/v1/alerts/{alert_id}.cap")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/cap+xml"
    doc = etree.fromstring(resp.content)
    cap_schema.assertValid(doc)
    assert (
        doc.findtext("cap:info/cap:web", namespaces=NS)
        == f"https://heritage.example.org/api/v1/alerts/{alert_id}"
    )
    two = etree.fromstring(client.get(f"/api/v1/alerts/{alert_id}.cap", params={"lang": "it,fr"}).content)
    assert [i.findtext("cap:language", namespaces=NS) for i in two.findall("cap:info", NS)] == ["it", "fr"]
    assert client.get(f"/api/v1/alerts/{alert_id}").json()["id"] == alert_id  # JSON route still answers
    missing = client.get("/api/v1/alerts/alr_nope.cap")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/v1/alerts/{alert_id}.cap", params={"lang": "xx"}).status_code == 422


def test_atom_feed_lists_current_alerts_and_links_their_cap(client, store, sites, cap_schema):
    advance(
        store,
        sites,
        [
            month_record("athens", date(2026, 6, 1), 16.0, 3),
            month_record("krakow", date(2026, 6, 1), 23.0, 4),
            month_record("venice_lagoon", date(2026, 6, 1), 17.0, 3),
        ],
    )
    advance(store, sites, [month_record("krakow", date(2026, 7, 1), 2.0, 0)])  # resolved: its all-clear stays
    with store.session.begin() as s:  # an episode resolved long ago leaves the feed
        old = s.get(AlertRow, only_alert(store, "venice_lagoon").id)
        old.status, old.resolved_at = "resolved", old.opened_at.replace(year=2020)
    resp = client.get("/api/v1/alerts/feed.atom")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/atom+xml"
    root = etree.fromstring(resp.content)  # strict XML
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    feed = feedparser.parse(resp.content)
    assert not feed.bozo and feed.version == "atom10"
    assert len(feed.entries) == 2
    assert {e.cap_msgtype for e in feed.entries} == {"Alert", "Update"}
    for entry in feed.entries:
        cap_links = [link for link in entry.links if link.type == "application/cap+xml"]
        assert len(cap_links) == 1 and cap_links[0].rel == "alternate"
        path = cap_links[0].href.removeprefix("https://heritage.example.org")
        message = client.get(path)
        assert message.status_code == 200
        doc = etree.fromstring(message.content)
        cap_schema.assertValid(doc)
        assert doc.findtext("cap:identifier", namespaces=NS) == entry.cap_identifier
    greek = feedparser.parse(client.get("/api/v1/alerts/feed.atom", params={"lang": "el"}).content)
    assert any("Νέα ειδοποίηση" in e.title for e in greek.entries)
