"""Fixtures of the land and emergency source tests: the fake Copernicus server and settings pointing at it."""

from __future__ import annotations

from datetime import date

import pytest

from tests.integration.land_sources.fakes import EMS_PREFIX, TOKEN_PATH, FakeServer


@pytest.fixture(scope="session")
def fake_server():
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server, monkeypatch):
    """The fake server with fresh state; oauthlib may talk plain http to it."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    fake_server.reset()
    yield fake_server
    fake_server.reset()


def make_settings(tmp_path, **overrides):
    from monitor.settings import Settings

    values = {
        "data_dir": tmp_path / "data",
        "demo_end": date(2026, 11, 15),
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def sh_settings(tmp_path, fake):
    return make_settings(
        tmp_path,
        sentinel2_mode="remote",
        sh_base_url=fake.url,
        sh_token_url=fake.url + TOKEN_PATH,
        sh_client_id=fake.sh.client_id,
        sh_client_secret=fake.sh.client_secret,
        sh_download_sleep_seconds=0.05,
        sh_max_download_attempts=3,
        sh_timeout_seconds=5,
    )


@pytest.fixture
def ems_settings(tmp_path, fake):
    return make_settings(
        tmp_path,
        ems_rapid_mapping_mode="remote",
        ems_url=fake.url + EMS_PREFIX,
        ems_backoff_seconds=0.05,
        ems_max_attempts=3,
        ems_timeout_seconds=5,
    )
