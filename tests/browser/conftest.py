"""The dashboard in headless Chromium: the demo seeded once per module, served by uvicorn on 127.0.0.1.

Drives Debian's system Chromium (`/usr/bin/chromium`, or `HM_CHROMIUM`) through Playwright; nothing
downloads a browser. Without the browser or Playwright the tests skip, unless `HM_REQUIRE_BROWSER=1`
(as in CI), when they fail.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = Path(os.environ.get("HM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
#: Demo sites whose climate projections the demo server computes (all of them would take minutes).
PROJECTED_SITES = ("pompeii", "stonehenge")


def _unavailable(reason: str) -> None:
    if os.environ.get("HM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (HM_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@dataclass
class DemoServer:
    """The demo app served on a local port, with the store behind it for setting up keys and checks."""

    url: str
    store: object
    site_ids: list[str]
    projected_site_ids: list[str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory) -> Iterator[DemoServer]:
    """The demo as `heritage-monitor demo` seeds it (two years of synthetic history with its forecasts, and
    climate projections), served by uvicorn.

    Uses SQLite in a temporary folder: the database back ends are covered by the API and store tests. To
    keep the module fast the synthetic projections cover only `PROJECTED_SITES` over short periods.
    """
    import uvicorn

    from api.app import create_app
    from monitor.pipeline import Pipeline
    from monitor.projections import compute_projections
    from monitor.settings import Settings
    from monitor.sources.synthetic_projections import SyntheticProjections
    from monitor.store.db import make_engine, upgrade
    from monitor.store.repository import Store
    from monitor.store.variables import VariableStore
    from sites.io import load_demo_sites

    data = tmp_path_factory.mktemp("dashboard") / "data"
    data.mkdir()
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'heritage.db'}",
        demo_end=date(2026, 11, 15),
        demo_years=2,
        projections_baseline="1991-2000",
        projections_periods="2031-2040,2041-2050",
        _env_file=None,
    )
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    store = Store(engine)
    sites = load_demo_sites()
    store.upsert_sites(sites)
    report = Pipeline(settings, store, VariableStore(data / "variables")).run(None, None, None, sites.ids)
    assert not report.failed, report.failed
    projected = store.site_set(list(PROJECTED_SITES))
    projections = compute_projections(settings, store, SyntheticProjections(settings), projected, None)
    assert not projections.failed and projections.values_written, projections.failed
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the dashboard server did not start")
        time.sleep(0.05)
    try:
        yield DemoServer(f"http://127.0.0.1:{port}", store, list(sites.ids), list(projected.ids))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture(scope="module")
def browser():
    """Headless system Chromium driven by Playwright."""
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, demo_server):
    """A fresh desktop-sized browser tab with its own sessionStorage."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def requested(page) -> list[str]:
    """Every URL the tab requests from now on."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder for screenshots (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
