"""Fixtures of the alert-delivery tests: sites, episodes driven through the real alert engine, a webhook
receiver and an SMTP server on 127.0.0.1, and the OASIS CAP 1.2 schema."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from shapely.geometry import MultiPolygon, box

import indicators
from monitor.alerts import webhook
from monitor.alerts.delivery import enqueue
from monitor.alerts.episodes import AlertRule, evaluate
from monitor.store.tables import AlertRow
from sites import Site, SiteSet
from tests.conftest import make_site

DATA = Path(__file__).with_name("data")
SPEC = indicators.get("hot_days")  # monthly; high ≥ 15 days, severe ≥ 22 days; resolves after 1 quiet month
ATTRIBUTION = "SYNTHETIC demo data standing in for ERA5-Land; not Copernicus data."


def demo_sites() -> list[Site]:
    lagoon = MultiPolygon([box(12.30, 45.42, 12.36, 45.45), box(12.40, 45.48, 12.43, 45.50)])
    return [
        make_site("athens", 23.7257, 37.9715, country="GR", materials=["marble"], unesco_id="404"),
        make_site("krakow", 19.9383, 50.0614, country="PL", materials=["brick"]),
        Site(id="venice_lagoon", name="Venice and its Lagoon", geometry=lagoon, country="IT"),
    ]


@pytest.fixture
def sites(store) -> SiteSet:
    site_set = SiteSet(demo_sites())
    store.upsert_sites(site_set)
    return site_set


def month_record(site_id: str, month: date, value: float, level: int, synthetic: bool = True) -> dict:
    return {
        "site_id": site_id,
        "indicator_id": SPEC.id,
        "period_start": month,
        "freq": "MS",
        "value": value,
        "level": level,
        "material": None,
        "indicator_version": SPEC.version,
        "source": "era5_land",
        "product": "reanalysis-era5-land",
        "product_version": "synthetic-1",
        "synthetic": synthetic,
        "coverage": 1.0,
    }


def advance(store, sites: SiteSet, records: list[dict], *, queue: bool = True, now=None) -> None:
    """A pipeline-like pass: evaluate episodes, then enqueue as the pipeline will, in one transaction."""
    frame = pd.DataFrame(records)
    end = max(r["period_start"] for r in records)
    data_end = (pd.Timestamp(end) + pd.offsets.MonthEnd(0)).date()
    with store.session.begin() as session:
        evaluate(session, SPEC, frame, sites, AlertRule("high"), ATTRIBUTION, data_end, now=now)
        if queue:
            enqueue(session, now=now)


def only_alert(store, site_id: str) -> AlertRow:
    rows, total = store.list_alerts(site=site_id)
    assert total == 1
    return rows[0]


@dataclass
class Receiver:
    """A webhook endpoint that verifies signatures and processes each webhook-id once."""

    url: str = ""
    secret: str = ""
    fail_next: int = 0
    always_fail: bool = False
    requests: list[dict] = field(default_factory=list)
    processed: dict[str, dict] = field(default_factory=dict)
    rejected: int = 0


@pytest.fixture
def receiver():
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                state.requests.append({"headers": dict(self.headers), "body": body})
                if state.always_fail or state.fail_next > 0:
                    state.fail_next = max(state.fail_next - 1, 0)
                    self._answer(500)
                    return
                try:
                    msg_id = webhook.verify(state.secret, self.headers, body)
                except webhook.WebhookVerificationError:
                    state.rejected += 1
                    self._answer(401)
                    return
                state.processed.setdefault(msg_id, json.loads(body))
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/heritage"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) collecting what it receives."""
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.envelopes = []
            self.refuse: set[str] = set()

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
            if address in self.refuse:
                return "550 5.1.1 mailbox unavailable"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            self.envelopes.append(envelope)
            return "250 Message accepted for delivery"

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def cap_schema():
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(DATA / "CAP-v1.2.xsd")))


def utc_now() -> datetime:
    return datetime.now(UTC)
