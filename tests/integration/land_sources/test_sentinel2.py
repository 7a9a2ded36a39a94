"""Sentinel-2 statistics through the real sentinelhub client against a fake CDSE (token + Statistical API)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import date

import numpy as np
import pytest
from shapely.geometry import shape

from monitor.sources import SourceAuthError, SourceUnavailableError
from monitor.sources.base import SourceRequestError
from monitor.sources.sh_client import BudgetExceededError, RequestBudget
from sites import SiteSet
from sites.geometry import areas_m2
from tests.conftest import make_site
from tests.integration.land_sources.conftest import make_settings
from tests.integration.land_sources.fakes import reply_generated, reply_json, reply_status

VENICE = make_site("venezia_san_marco", 12.3387, 45.4341, half=0.002, buffer_m=100)
BATH = make_site("bath", -2.3590, 51.3811, half=0.003)
PERIOD = (date(2020, 6, 1), date(2020, 6, 30))


def build(settings):
    from monitor.sources import sentinel2

    return sentinel2.build(settings, "remote")


def test_request_matches_the_real_client_and_cube_has_the_contract_shape(fake, sh_settings, caplog):
    caplog.set_level(logging.DEBUG)
    cube = build(sh_settings).fetch(SiteSet([VENICE, BATH]), *PERIOD)
    assert fake.sh.client_secret not in caplog.text  # requests-oauthlib logs token bodies at DEBUG
    assert not any(token in caplog.text for token in fake.sh.tokens)
    assert fake.sh.violations == []
    assert len(fake.sh.token_requests) == 1
    assert fake.sh.token_requests[0] == {"grant_type": "client_credentials", "client_id": fake.sh.client_id}
    # one request per site, each in the site's UTM zone, polygon+buffer at 10 m
    assert len(fake.sh.requests) == 2
    by_crs = {
        r["body"]["input"]["bounds"]["properties"]["crs"].rsplit("/", 1)[1]: r for r in fake.sh.requests
    }
    assert set(by_crs) == {"32633", "32630"}
    venice_req = by_crs["32633"]["body"]
    sent_area = shape(venice_req["input"]["bounds"]["geometry"]).area
    expected = areas_m2(SiteSet([VENICE]).geometries(buffered=True))[0]
    assert sent_area == pytest.approx(expected, rel=0.01)
    assert venice_req["aggregation"]["timeRange"] == {
        "from": "2020-06-01T00:00:00Z",
        "to": "2020-07-01T00:00:00Z",
    }
    assert venice_req["input"]["data"][0]["type"] == "sentinel-2-l2a"
    assert by_crs["32633"]["auth"].startswith("Bearer ")

    assert list(cube.site.values) == ["venezia_san_marco", "bath"]
    assert cube.ndvi.dims == ("site", "time")
    assert str(cube.time.dtype) == "datetime64[ns]"
    assert (cube.time.dt.hour == 0).all()
    # acquisitions every 3 days (10 in June); every 4th is fully cloudy and dropped -> 8 days
    days = [str(d)[:10] for d in cube.time.values]
    assert len(days) == 8 and "2020-06-10" not in days and days[0] == "2020-06-01"
    assert days[-1] == "2020-06-28"
    for name in ("ndvi", "ndmi", "nbr", "valid_fraction"):
        assert cube[name].attrs["units"] == "1"
    assert float(cube.valid_fraction.isel(site=0, time=0)) == pytest.approx(0.8, abs=0.01)
    assert float(cube.ndvi.isel(site=0, time=0)) == pytest.approx(0.55)
    assert cube.nbr_hist.dims == ("site", "time", "nbr_bin") and cube.nbr_hist.sizes["nbr_bin"] == 20
    assert float(cube.nbr_hist.isel(site=0, time=0).sum()) > 0
    assert cube.coverage.dims == ("site",) and float(cube.coverage[0]) == pytest.approx(0.8, abs=0.01)
    assert bool(cube.covered.all())
    for key in ("source", "product", "product_version", "attribution", "request", "retrieved_at"):
        assert cube.attrs[key]
    assert cube.attrs["synthetic"] == "false"
    assert "Copernicus Sentinel data 2020" in cube.attrs["attribution"]
    request = json.loads(cube.attrs["request"])
    assert request["collection"] == "sentinel-2-l2a" and request["requests_sent"] == 2
    dumped = json.dumps(cube.attrs) + repr(build(sh_settings))
    assert fake.sh.client_secret not in dumped


def test_jwt_from_fake_is_decodable_by_sentinelhub(fake, sh_settings):
    source = build(sh_settings)
    session = source._get_session(source._config())
    assert session.info()["azp"] == fake.sh.client_id


def test_recorded_real_response_is_parsed(fake, sh_settings, shared_data):
    payload = json.loads((shared_data / "sentinel2/statistical_api/normal_stat_result.json").read_text())
    fake.sh.default = reply_json(payload[0])
    cube = build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert [str(t)[:10] for t in cube.time.values] == ["2020-06-11"]
    assert float(cube.ndvi[0, 0]) == pytest.approx(0.38401383599010064)
    assert float(cube.valid_fraction[0, 0]) == pytest.approx(1 - 3 / 112)
    assert np.isnan(cube.ndmi[0, 0])  # the recorded answer has only an ndvi output


def test_recorded_batch_result_drops_fully_cloudy_interval(fake, sh_settings, shared_data):
    batch = json.loads((shared_data / "sentinel2/statistical_api/batch_stat_results.json").read_text())
    fake.sh.default = reply_json(batch[1]["response"])  # 2020-06-09 has sampleCount == noDataCount
    cube = build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert [str(t)[:10] for t in cube.time.values] == ["2020-06-11"]
    assert json.loads(cube.attrs["cloudy_days_dropped"]) == {"venezia_san_marco": 1}


def test_partial_response_keeps_good_intervals_and_records_failed(fake, sh_settings, shared_data):
    partial = json.loads(
        (shared_data / "sentinel2/statistical_api/normal_stat_partial_result.json").read_text()
    )
    # the recorded answer gives `error` as a bare string; the client re-requests that interval alone
    fake.sh.plan = [
        reply_json(partial[0]),
        reply_json({"data": [partial[0]["data"][0]], "status": "PARTIAL"}),
    ]
    cube = build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert fake.sh.violations == []
    assert len(fake.sh.requests) == 2
    retry = fake.sh.requests[1]["body"]["aggregation"]["timeRange"]
    assert retry == {"from": "2020-06-07T00:00:00Z", "to": "2020-06-08T00:00:00Z"}
    assert [str(t)[:10] for t in cube.time.values] == ["2020-06-12"]
    failed = json.loads(cube.attrs["failed_intervals"])
    assert failed["venezia_san_marco"] == [
        {"from": "2020-06-07T00:00:00Z", "to": "2020-06-08T00:00:00Z", "error": "EXECUTION_ERROR"}
    ]
    assert json.loads(cube.attrs["response_status"]) == {"venezia_san_marco": "PARTIAL"}


def test_partial_interval_recovered_by_client_retry(fake, sh_settings):
    first = {
        "data": [
            {
                "interval": {"from": "2020-06-07T00:00:00Z", "to": "2020-06-08T00:00:00Z"},
                "error": {"type": "EXECUTION_ERROR"},
            }
        ],
        "status": "PARTIAL",
    }
    fake.sh.plan = [reply_json(first), reply_generated]
    cube = build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert [str(t)[:10] for t in cube.time.values] == ["2020-06-07"]
    assert json.loads(cube.attrs["failed_intervals"]) == {}


def test_failed_status_for_one_site_keeps_the_others(fake, sh_settings):
    fake.sh.plan = [reply_json({"data": None, "status": "FAILED"}), reply_generated]
    cube = build(sh_settings).fetch(SiteSet([VENICE, BATH]), *PERIOD)
    statuses = json.loads(cube.attrs["response_status"])
    assert sorted(statuses.values()) == ["FAILED", "OK"]
    failed_site = next(k for k, v in statuses.items() if v == "FAILED")
    assert cube.ndvi.sel(site=failed_site).isnull().all()
    assert float(cube.coverage.sel(site=failed_site)) == 0.0
    assert cube.ndvi.notnull().any()


def test_empty_answer_gives_no_days(fake, sh_settings):
    fake.sh.default = reply_json({"data": [], "status": "OK"})
    cube = build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert cube.sizes["time"] == 0 and float(cube.coverage[0]) == 0.0


def test_429_with_retry_after_in_ms_then_success(fake, sh_settings):
    fake.sh.plan = [reply_status(429, retry_after_ms=400), reply_generated]
    t0 = time.monotonic()
    cube = build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    elapsed = time.monotonic() - t0
    assert len(fake.sh.requests) == 2
    gap = fake.sh.requests[1]["at"] - fake.sh.requests[0]["at"]
    assert gap >= 0.35 and elapsed < 10  # 400 ms honoured, not 400 s
    assert cube.sizes["time"] == 8


def test_429_retry_after_longer_than_allowed_fails_fast(fake, tmp_path):
    settings = _sh(fake, tmp_path, sh_max_retry_after_seconds=5)
    fake.sh.default = reply_status(429, retry_after_ms=3_600_000)
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError, match="retry after 3600"):
        build(settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert time.monotonic() - t0 < 5


def test_429_forever_is_bounded(fake, tmp_path):
    settings = _sh(fake, tmp_path, sh_max_rate_limit_retries=3)
    fake.sh.default = reply_status(429, retry_after_ms=50)
    with pytest.raises(SourceUnavailableError, match="429"):
        build(settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert len(fake.sh.requests) == 3


def test_500_forever_is_unavailable_within_seconds(fake, sh_settings):
    fake.sh.default = reply_status(500)
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError) as info:
        build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert time.monotonic() - t0 < 5
    assert len(fake.sh.requests) == 3  # HM_SH_MAX_DOWNLOAD_ATTEMPTS
    assert info.value.__cause__ is not None
    # every request sent is booked against the monthly budget
    assert RequestBudget(sh_settings.data_dir / "cache/sentinel2/budget.json", 10).used() == 3


def test_401_on_statistics_is_auth_error(fake, sh_settings):
    fake.sh.default = reply_status(401)
    with pytest.raises(SourceAuthError) as info:
        build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert info.value.__cause__ is not None
    assert len(fake.sh.requests) == 1  # a 4xx is not retried


def test_400_on_statistics_is_request_error_for_that_site_only(fake, sh_settings):
    fake.sh.plan = [reply_status(400), reply_generated]
    cube = build(sh_settings).fetch(SiteSet([VENICE, BATH]), *PERIOD)
    request = json.loads(cube.attrs["request"])
    assert len(request["failed_sites"]) == 1
    assert "HTTP 400" in next(iter(request["failed_sites"].values()))


def test_wrong_secret_is_auth_error_without_leaking_it(fake, tmp_path):
    settings = _sh(fake, tmp_path, sh_client_secret="wrong-secret-value-123")
    with pytest.raises(SourceAuthError) as info:
        build(settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert "wrong-secret-value-123" not in str(info.value)
    assert fake.sh.requests == []


def test_missing_credentials_fail_before_any_request(fake, tmp_path):
    settings = _sh(fake, tmp_path, sh_client_id=None, sh_client_secret=None)
    source = build(settings)  # building needs no credentials
    with pytest.raises(SourceAuthError, match="HM_SH_CLIENT_ID"):
        source.fetch(SiteSet([VENICE]), *PERIOD)
    assert fake.sh.token_requests == []


def test_token_is_refreshed_before_expiry(fake, sh_settings):
    # tokens announced for 121 s: sentinelhub refreshes 120 s before expiry, i.e. 1–1.5 s after issue
    fake.sh.expires_in = 121
    source = build(sh_settings)
    source.fetch(SiteSet([VENICE]), *PERIOD)
    assert len(fake.sh.token_requests) == 1
    time.sleep(1.8)  # oauthlib rounds expires_at to whole seconds
    source.fetch(SiteSet([BATH]), *PERIOD)
    assert fake.sh.violations == []
    assert len(fake.sh.token_requests) >= 2
    first, last = fake.sh.requests[0]["auth"], fake.sh.requests[-1]["auth"]
    assert first != last and last.removeprefix("Bearer ") == list(fake.sh.tokens)[-1]


def test_budget_refuses_a_run_that_would_exceed_it(fake, tmp_path):
    settings = _sh(fake, tmp_path, sh_monthly_request_budget=3)
    source = build(settings)
    source.fetch(SiteSet([VENICE, BATH]), *PERIOD)
    with pytest.raises(BudgetExceededError, match="HM_SH_MONTHLY_REQUEST_BUDGET") as info:
        source.fetch(SiteSet([VENICE, BATH]), date(2021, 6, 1), date(2021, 6, 30))
    assert isinstance(info.value, SourceRequestError)
    assert len(fake.sh.requests) == 2
    budget = json.loads((settings.data_dir / "cache/sentinel2/budget.json").read_text())
    assert list(budget.values()) == [2]


def test_past_periods_are_served_from_the_raw_cache(fake, sh_settings):
    source = build(sh_settings)
    first = source.fetch(SiteSet([VENICE]), *PERIOD)
    second = build(sh_settings).fetch(SiteSet([VENICE]), *PERIOD)
    assert len(fake.sh.requests) == 1
    assert first.ndvi.equals(second.ndvi)
    cached = list((sh_settings.data_dir / "cache/sentinel2").glob("*.json"))
    assert len([p for p in cached if p.name != "budget.json"]) == 1


def test_local_mode_reads_saved_answers(tmp_path, shared_data):
    folder = tmp_path / "s2"
    folder.mkdir()
    shutil.copy(
        shared_data / "sentinel2/statistical_api/normal_stat_partial_result.json", folder / "bath.json"
    )
    from monitor.sources import sentinel2

    settings = make_settings(tmp_path, sentinel2_mode="local", sentinel2_path=folder)
    cube = sentinel2.build(settings, "local").fetch(SiteSet([VENICE, BATH]), *PERIOD)
    assert list(cube.site.values) == ["venezia_san_marco", "bath"]
    assert cube.ndvi.sel(site="venezia_san_marco").isnull().all()
    assert float(cube.ndvi.sel(site="bath", time="2020-06-12")) == pytest.approx(0.38401383599010064)
    assert "bath" in json.loads(cube.attrs["failed_intervals"])
    assert sentinel2.check(settings)["reachable"] is True


def test_check_remote_gets_a_token_only(fake, sh_settings):
    from monitor.sources import sentinel2

    result = sentinel2.check(sh_settings)
    assert result["mode"] == "remote" and result["reachable"] is True
    assert fake.sh.requests == [] and len(fake.sh.token_requests) == 1


def _sh(fake, tmp_path, **overrides):
    from tests.integration.land_sources.fakes import TOKEN_PATH

    values = {
        "sentinel2_mode": "remote",
        "sh_base_url": fake.url,
        "sh_token_url": fake.url + TOKEN_PATH,
        "sh_client_id": fake.sh.client_id,
        "sh_client_secret": fake.sh.client_secret,
        "sh_download_sleep_seconds": 0.05,
        "sh_max_download_attempts": 3,
        "sh_timeout_seconds": 5,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def test_400_for_every_site_is_raised(fake, sh_settings):
    fake.sh.default = reply_status(400)
    with pytest.raises(SourceRequestError, match="HTTP 400"):
        build(sh_settings).fetch(SiteSet([VENICE, BATH]), *PERIOD)
