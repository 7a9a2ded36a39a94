"""Failures of the data stores become our errors, quickly, without secrets and without cache writes."""

from __future__ import annotations

import time
from datetime import date

import pytest
from pydantic import SecretStr

from monitor.sources import cams_europe, cems_fire, era5_land, glofas
from monitor.sources.base import SourceAuthError, SourceRequestError, SourceUnavailableError
from sites import SiteSet
from tests.conftest import make_site
from tests.integration.sources import products
from tests.integration.sources.conftest import cache_files, remote_settings

SITES = SiteSet([make_site("verona", 10.99, 45.44)])
DAY = date(2024, 5, 10)


def responder(dataset, inputs):
    return products.era5_land(inputs)


def fetch_fails(settings, error: type[Exception]) -> Exception:
    source = era5_land.build(settings, "remote")
    started = time.monotonic()
    with pytest.raises(error) as info:
        source.fetch(SITES, DAY, DAY)
    assert time.monotonic() - started < 10, "bounded retries must fail within seconds"
    assert cache_files(settings) == []
    scratch = settings.data_dir / "tmp"
    assert not scratch.exists() or not any(p.is_file() for p in scratch.rglob("*"))
    return info.value


def no_secret(exc: Exception, token: str) -> None:
    text = f"{exc} {exc!r} {exc.__cause__!s} {exc.__cause__!r}"
    assert token not in text


@pytest.mark.parametrize("mode", ["unauthorized", "wrong_key"])
def test_refused_credentials(fake_store, tmp_path, mode):
    store = fake_store(responder, mode="unauthorized" if mode == "unauthorized" else "ok")
    key = store.token if mode == "unauthorized" else "another-token-1234"
    settings = remote_settings(tmp_path, store, cds_key=SecretStr(key))
    exc = fetch_fails(settings, SourceAuthError)
    assert "401" in str(exc)
    no_secret(exc, key)


def test_licence_not_accepted(fake_store, tmp_path):
    store = fake_store(responder, accepted_licences=[])
    exc = fetch_fails(remote_settings(tmp_path, store), SourceAuthError)
    assert "licence" in str(exc) and "required licences not accepted" in str(exc)
    assert "datasets/reanalysis-era5-land" in str(exc)


def test_failed_job_carries_the_service_title_and_detail(fake_store, tmp_path):
    store = fake_store(responder, mode="failed_job")
    exc = fetch_fails(remote_settings(tmp_path, store), SourceRequestError)
    assert "The job has failed" in str(exc) and "MARS returned no data" in str(exc)


def test_invalid_request_is_a_request_error(fake_store, tmp_path):
    store = fake_store(responder, refuse=lambda dataset, inputs: "cost limits exceeded: request too large")
    exc = fetch_fails(remote_settings(tmp_path, store), SourceRequestError)
    assert "invalid request" in str(exc) and "cost limits exceeded" in str(exc)


@pytest.mark.parametrize("mode, code", [("error500", "500"), ("error429", "429")])
def test_server_errors_and_rate_limits_are_retried_then_unavailable(fake_store, tmp_path, mode, code):
    store = fake_store(responder, mode=mode)
    settings = remote_settings(tmp_path, store)
    exc = fetch_fails(settings, SourceUnavailableError)
    assert code in str(exc)
    assert exc.__cause__ is not None  # the client's own error, chained
    # the process description was asked exactly retry_max times before giving up
    assert len(store.api_calls("GET", r"/retrieve/v1/processes/")) == settings.cds_retry_max


def test_truncated_download_is_retried_then_unavailable(fake_store, tmp_path):
    store = fake_store(responder, mode="truncate")
    settings = remote_settings(tmp_path, store)
    exc = fetch_fails(settings, SourceUnavailableError)
    assert "download" in str(exc)
    assert len([c for c in store.calls if c.method == "GET" and c.path.startswith("/download/")]) >= 2
    assert store.problems == []


def test_size_different_from_file_size_is_retried_then_unavailable(fake_store, tmp_path):
    store = fake_store(responder, mode="size_mismatch")
    settings = remote_settings(tmp_path, store)
    exc = fetch_fails(settings, SourceUnavailableError)
    assert "download" in str(exc)
    gets = [c for c in store.calls if c.method == "GET" and c.path.startswith("/download/")]
    assert len(gets) == settings.cds_retry_max


def test_time_budget_bounds_a_job_that_never_ends(fake_store, tmp_path):
    store = fake_store(responder, mode="stuck")
    settings = remote_settings(tmp_path, store, cds_time_budget_seconds=0.5)
    exc = fetch_fails(settings, SourceUnavailableError)
    assert "time budget" in str(exc)
    assert [job.status for job in store.jobs.values()] == ["dismissed"]  # our place in the queue is freed


def test_missing_or_old_style_key_fails_before_any_request(fake_store, tmp_path):
    store = fake_store(responder)
    exc = fetch_fails(remote_settings(tmp_path, store, cds_key=None), SourceAuthError)
    assert "HM_CDS_KEY" in str(exc)
    exc = fetch_fails(remote_settings(tmp_path, store, cds_key=SecretStr("12345:abcdef")), SourceAuthError)
    assert "UID:KEY" in str(exc)
    no_secret(exc, "abcdef")
    assert store.calls == []


def test_building_sources_needs_no_network_nor_credentials(fake_store, tmp_path):
    store = fake_store(responder, mode="error500")
    settings = remote_settings(tmp_path, store, cds_key=None, ads_key=None, ewds_key=None)
    for module in (era5_land, cams_europe, cems_fire, glofas):
        source = module.build(settings, "remote")
        assert source.mode == "remote"
        assert module.build(settings, "demo").mode == "demo"
    assert store.calls == []


def test_check_reports_reachability_and_licence(fake_store, tmp_path):
    store = fake_store(responder)
    settings = remote_settings(tmp_path, store)
    for module in (era5_land, cams_europe, cems_fire, glofas):
        result = module.check(settings)
        assert result == {
            "mode": "remote",
            "reachable": True,
            "licence_accepted": True,
            "message": result["message"],
        }
    store.accepted_licences = [{"id": "licence-to-use-copernicus-products", "revision": 11}]
    result = era5_land.check(settings)
    assert result["reachable"] is True and result["licence_accepted"] is False
    assert "revision 12" in result["message"]
    store.mode = "unauthorized"
    result = era5_land.check(settings)
    assert result["reachable"] is True and result["licence_accepted"] is None
    assert "401" in result["message"] and store.token not in result["message"]
    store.mode = "error500"
    result = era5_land.check(settings)
    assert result["reachable"] is False
    result = era5_land.check(remote_settings(tmp_path, store, cds_key=None))
    assert result["reachable"] is None and "HM_CDS_KEY" in result["message"]
    assert cache_files(settings) == []
