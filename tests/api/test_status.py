"""`GET /api/v1/status`: alerts that need action now are counted apart from climate-projection planning
alerts, so a planning note decades ahead never raises a site's count or severity of open alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from indicators import LEVEL_CODES
from monitor.store.repository import new_id
from monitor.store.tables import AlertRow

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
#: The fields the status payload had before planning alerts were counted apart: still there.
FIELDS_BEFORE = {
    "id",
    "name",
    "country",
    "level",
    "level_indicators",
    "latest_period",
    "open_alerts",
    "open_alert_severity",
    "acknowledged_alerts",
    "buffer_m",
    "buffer",
    "sources",
    "synthetic",
    "attribution",
}


def add_alert(store, site: str, kind: str, status: str, severity: str, *, hours_ago: int = 0) -> str:
    """Store one alert of this kind, status and severity at the site, last changed `hours_ago`."""
    changed = NOW - timedelta(hours=hours_ago)
    period = date(2071, 1, 1) if kind == "projected" else date(2026, 10, 1)
    row = AlertRow(
        id=new_id("alr"),
        site_id=site,
        indicator_id="hot_days",
        kind=kind,
        status=status,
        level=LEVEL_CODES[severity],
        value=25.0,
        units="days",
        threshold=22.0,
        threshold_level="high",
        material=None,
        onset=period,
        period_start=period,
        last_period=period,
        freq="MS",
        periods_below=0,
        coverage=1.0,
        source="era5_land",
        product="synthetic stand-in",
        product_version="synthetic-1",
        synthetic=True,
        attribution="SYNTHETIC demo data, not Copernicus data.",
        provenance={},
        sequence=1,
        opened_at=changed,
        updated_at=changed,
        acknowledged_at=changed if status == "acknowledged" else None,
        resolved_at=changed if status == "resolved" else None,
    )
    with store.session.begin() as session:
        session.add(row)
    return row.id


def status_by_site(client) -> dict[str, dict]:
    response = client.get("/api/v1/status")
    assert response.status_code == 200, response.text
    return {s["id"]: s for s in response.json()["sites"]}


def test_planning_alerts_are_counted_apart_from_the_alerts_to_act_on(world):
    store = world.store
    add_alert(store, "athens", "observed", "open", "high")
    add_alert(store, "athens", "forecast", "open", "moderate")
    add_alert(store, "athens", "observed", "acknowledged", "low")
    add_alert(store, "athens", "projected", "open", "severe")  # 2071-2100: worse, but for planning
    add_alert(store, "athens", "projected", "acknowledged", "high")
    add_alert(store, "athens", "projected", "resolved", "severe")
    add_alert(store, "krakow", "projected", "open", "high")

    sites = status_by_site(world.client)
    athens, krakow, bergen = sites["athens"], sites["krakow"], sites["bergen"]
    assert (athens["open_alerts"], athens["open_alert_severity"], athens["acknowledged_alerts"]) == (
        2,
        "high",
        1,
    )
    assert (athens["planning_alerts"], athens["planning_alert_severity"]) == (1, "severe")
    assert athens["acknowledged_planning_alerts"] == 1
    # A site with planning alerts only has nothing to act on now.
    assert (krakow["open_alerts"], krakow["open_alert_severity"], krakow["acknowledged_alerts"]) == (
        0,
        None,
        0,
    )
    assert (krakow["planning_alerts"], krakow["planning_alert_severity"]) == (1, "high")
    assert krakow["acknowledged_planning_alerts"] == 0
    for field in ("open_alerts", "acknowledged_alerts", "planning_alerts", "acknowledged_planning_alerts"):
        assert bergen[field] == 0
    assert bergen["open_alert_severity"] is None and bergen["planning_alert_severity"] is None
    # The payload only grew: every field it had is still there.
    assert set(athens) >= FIELDS_BEFORE


def test_the_counts_agree_with_the_alerts_listed_by_kind(world):
    store = world.store
    for hours, (kind, severity) in enumerate(
        [("projected", "severe"), ("observed", "moderate"), ("forecast", "high"), ("projected", "low")]
    ):
        add_alert(store, "bergen", kind, "open", severity, hours_ago=hours)
    listed = world.client.get("/api/v1/alerts", params={"site": "bergen", "status": "open"}).json()["alerts"]
    planning = [a for a in listed if a["kind"] == "projected"]
    to_act_on = [a for a in listed if a["kind"] != "projected"]
    bergen = status_by_site(world.client)["bergen"]
    assert bergen["open_alerts"] == len(to_act_on) == 2 and bergen["open_alert_severity"] == "high"
    assert bergen["planning_alerts"] == len(planning) == 2 and bergen["planning_alert_severity"] == "severe"


def test_the_new_fields_are_documented(world):
    spec = world.client.get("/openapi.json").json()
    fields = spec["components"]["schemas"]["SiteStatus"]["properties"]
    for name in ("planning_alerts", "planning_alert_severity", "acknowledged_planning_alerts"):
        assert fields[name].get("description") and fields[name].get("examples"), name
    assert "planning_alerts" in fields["open_alerts"]["description"]
    example = spec["paths"]["/api/v1/status"]["get"]["responses"]["200"]["content"]["application/json"]
    assert set(example["example"]["sites"][0]) == set(fields)
