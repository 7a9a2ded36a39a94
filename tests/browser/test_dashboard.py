"""The dashboard as a site manager uses it, in headless Chromium against the demo served on 127.0.0.1."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from monitor.store.repository import utcnow
from monitor.store.tables import AlertRow

PHONE = {"width": 390, "height": 844}


def load(page, url: str) -> None:
    """Open the dashboard and wait until it has drawn the sites and the alerts."""
    page.goto(f"{url}/")
    page.wait_for_selector("body[data-loaded='true']")


def assert_local(requested: list[str], base: str) -> None:
    """Every request went to the API's own origin (or stayed in the page: blob and data URLs)."""
    assert requested, "the page made no request"
    outside = [u for u in requested if not (u.startswith(f"{base}/") or u.startswith(("blob:", "data:")))]
    assert outside == []


def api(server, path: str, **params) -> dict:
    response = httpx.get(f"{server.url}/api/v1/{path}", params=params, timeout=10)
    response.raise_for_status()
    return response.json()


def open_alert(server) -> dict:
    alerts = api(server, "alerts", status="open", limit=100)["alerts"]
    if not alerts:
        pytest.fail("the demo raised no open alert to act on")
    return alerts[0]


def test_the_map_shows_every_site_coloured_by_level(page, requested, demo_server, artifacts):
    load(page, demo_server.url)
    sites = api(demo_server, "sites", limit=1000)
    status = {s["id"]: s for s in api(demo_server, "status", limit=1000)["sites"]}
    assert sites["numberMatched"] == len(demo_server.site_ids) == len(status)
    assert page.locator("path.hm-site-outline").count() == sites["numberMatched"]
    assert page.locator("path.hm-site-marker").count() == sites["numberMatched"]
    assert page.locator("path.hm-site-buffer").count() == sum(1 for s in status.values() if s["buffer"])
    assert page.locator(".site-button").count() == sites["numberMatched"]
    # Each site's marker has the colour of its level, and the list says the level in words.
    for site_id, item in status.items():
        marker = page.locator(f"path.hm-site-marker[data-site='{site_id}']")
        colour = page.evaluate(
            "(level) => getComputedStyle(document.documentElement).getPropertyValue(`--level-${level}`)",
            item["level"],
        )
        assert marker.get_attribute("fill") == colour.strip()
        badge = page.locator(f".site-button[data-site='{site_id}'] .badge")
        assert badge.inner_text().lower().replace(" ", "_") == item["level"]
    # The legend counts the sites per level.
    legend = page.locator("#legend").inner_text()
    for level in ("high", "severe"):
        n = sum(1 for s in status.values() if s["level"] == level)
        assert f"{level.capitalize()} ({n})" in legend
    # Synthetic demo data are labelled so, and the Copernicus attribution is on the page.
    assert page.locator("#synthetic-banner").is_visible()
    assert "Copernicus" in page.locator("#footer-attribution").inner_text()
    assert page.locator(".leaflet-control-attribution").inner_text().count("Natural Earth") == 1
    page.screenshot(path=str(artifacts / "dashboard-desktop.png"), full_page=True)
    assert_local(requested, demo_server.url)


def test_a_site_opens_its_panel_and_chart_by_map_and_keyboard(page, requested, demo_server):
    load(page, demo_server.url)
    page.locator("path.hm-site-marker[data-site='acropolis_athens']").click()
    feature = api(demo_server, "sites/acropolis_athens")
    expect_panel(page, feature)
    # The same from the keyboard: focus a site in the list, press Enter.
    page.locator(".site-button[data-site='pompeii']").focus()
    page.keyboard.press("Enter")
    feature = api(demo_server, "sites/pompeii")
    expect_panel(page, feature)
    assert page.evaluate("() => document.activeElement.id") == "site-heading"
    # Choosing another indicator redraws the chart.
    page.select_option("#chart-indicator", "hot_days")
    page.wait_for_function(
        "() => document.getElementById('chart-caption').textContent.startsWith('Hot days')"
    )
    page.wait_for_function("() => document.getElementById('chart-image').naturalWidth > 0")
    assert "days" in page.locator("#chart-image").get_attribute("alt")
    assert_local(requested, demo_server.url)


def expect_panel(page, feature: dict) -> None:
    page.wait_for_function(
        "(name) => document.getElementById('site-heading').textContent === name",
        arg=feature["properties"]["name"],
    )
    page.wait_for_function("() => document.querySelectorAll('#latest-table tbody tr').length > 1")
    rows = page.locator("#latest-table tbody tr")
    assert rows.count() == len(feature["properties"]["latest"])
    details = page.locator("#site-details").inner_text()
    for material in feature["properties"]["materials"]:
        assert material in details
    page.wait_for_function("() => document.getElementById('chart-image').naturalWidth > 0")
    assert page.locator("#chart-image").is_visible()
    assert "SYNTHETIC" in page.locator("#chart-caption").inner_text()
    assert feature["properties"]["name"] in page.locator("#chart-image").get_attribute("alt")
    assert "Copernicus" in page.locator("#site-attribution").inner_text()


def filter_alerts(page, field: str, value: str) -> None:
    """Choose an alert filter and wait until the list shows the new answer (not the list before it)."""
    page.select_option(f"#filter-{field}", value)
    page.wait_for_selector("#alert-list[aria-busy='false']", state="attached")


def act_on(page, alert: dict, note: str) -> object:
    """Show only this alert's site, open its action form, write the note; the alert's list item."""
    filter_alerts(page, "site", alert["site"])
    item = page.locator(f".alert-item[data-alert='{alert['id']}']")
    item.wait_for()
    item.get_by_role("button", name="Acknowledge or resolve…").click()
    item.get_by_label("Note (optional)").fill(note)
    return item


def use_key(page, secret: str) -> None:
    page.get_by_label(re.compile("^API key")).fill(secret)
    page.get_by_role("button", name="Use key").click()
    page.wait_for_selector("body[data-loaded='true']")


def test_a_manager_acknowledges_an_alert(page, requested, demo_server):
    alert = open_alert(demo_server)
    key = demo_server.store.create_key("site manager", "manager", [alert["site"]])
    load(page, demo_server.url)
    use_key(page, key.secret)
    assert page.evaluate("() => sessionStorage.length") == 1
    item = act_on(page, alert, "Conservator on site tomorrow.")
    item.get_by_role("button", name="Acknowledge", exact=True).click()
    page.wait_for_function(
        "(id) => document.querySelector(`.alert-item[data-alert='${id}'] .form-done`).textContent !== ''",
        arg=alert["id"],
    )
    assert f"Acknowledged by key:{key.id}" in item.inner_text()
    assert item.locator(".status").inner_text() == "acknowledged"
    stored = api(demo_server, f"alerts/{alert['id']}")
    assert stored["status"] == "acknowledged"
    assert stored["acknowledged"]["by"] == f"key:{key.id}"
    assert stored["acknowledged"]["note"] == "Conservator on site tomorrow."
    # The key went out only to the API, as a Bearer header, and never into the page's URLs.
    assert all(key.secret not in u for u in requested)
    assert_local(requested, demo_server.url)


def test_a_reader_key_is_refused_with_the_apis_message(page, requested, demo_server):
    alert = open_alert(demo_server)
    key = demo_server.store.create_key("reader", "reader")
    load(page, demo_server.url)
    use_key(page, key.secret)
    item = act_on(page, alert, "should not be stored")
    item.get_by_role("button", name="Resolve", exact=True).click()
    error = item.locator(".form-error")
    error.filter(has_text="403").wait_for()
    assert "role 'reader' may not change anything" in error.inner_text()
    assert api(demo_server, f"alerts/{alert['id']}")["status"] == "open"
    assert_local(requested, demo_server.url)


def test_the_dashboard_fits_a_phone(browser, demo_server, artifacts):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        load(page, demo_server.url)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.locator("#map").bounding_box()["width"] <= PHONE["width"]
        assert page.locator("path.hm-site-marker").count() == len(demo_server.site_ids)
        page.screenshot(path=str(artifacts / "dashboard-phone.png"))
        page.locator(".site-button[data-site='pompeii']").tap()
        page.wait_for_function("() => document.getElementById('chart-image').naturalWidth > 0")
        assert page.locator("#chart-image").bounding_box()["width"] <= PHONE["width"]
        page.screenshot(path=str(artifacts / "dashboard-phone-site.png"))
        page.select_option("#chart-indicator", "hot_days")
        page.wait_for_function("() => document.getElementById('projections-image').naturalWidth > 0")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.locator("#projections-image").bounding_box()["width"] <= PHONE["width"]
        table = page.locator("#projections-table")
        assert table.bounding_box()["width"] <= PHONE["width"]
        assert page.evaluate("(t) => t.scrollWidth <= t.clientWidth", table.element_handle())
        page.locator("#projections-part").screenshot(path=str(artifacts / "dashboard-phone-projections.png"))
        assert_local(requested, demo_server.url)
    finally:
        context.close()


def utc_minutes(iso: str) -> str:
    """An API time as the dashboard shows it: `YYYY-MM-DD HH:MM UTC`."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_the_alerts_list_tells_forecasts_and_projections_from_observations(
    page, requested, demo_server, artifacts
):
    forecasts = api(demo_server, "alerts", kind="forecast", status="open", limit=100)["alerts"]
    projected = api(demo_server, "alerts", kind="projected", status="open", limit=100)["alerts"]
    if not forecasts or not projected:
        pytest.fail("the demo raised no forecast or no projected alert")
    load(page, demo_server.url)
    filter_alerts(page, "kind", "forecast")
    forecast = forecasts[0]
    note = page.locator(f".alert-item[data-alert='{forecast['id']}'] .kind-note")
    note.wait_for()
    lead = forecast["lead_time_days"]
    end = forecast["expected"]["end"]
    until = "" if end == forecast["onset"] else f" to {end}"
    assert note.inner_text() == (
        f"Forecast: expected from {forecast['onset']}{until}, "
        f"lead {lead} day{'' if lead == 1 else 's'}, issued {utc_minutes(forecast['issued'])}"
    )
    assert page.locator(".alert-item").count() == len(forecasts)
    page.locator("#alert-list").screenshot(path=str(artifacts / "dashboard-forecast-alerts.png"))

    filter_alerts(page, "kind", "projected")
    plan = projected[0]
    note = page.locator(f".alert-item[data-alert='{plan['id']}'] .kind-note")
    note.wait_for()
    period, scenario = plan["provenance"]["period"], plan["provenance"]["scenario"]
    text = note.inner_text()
    assert text.startswith("Projection (planning, not a forecast):")
    assert f"{period['start']}–{period['end']}" in text and scenario in text
    facts = page.locator(f".alert-item[data-alert='{plan['id']}'] .alert-facts").inner_text()
    assert f"ensemble median of {len(plan['provenance']['models'])} models" in facts
    assert f"in the baseline {plan['provenance']['baseline'].replace('-', '–')}" in facts
    assert "SYNTHETIC" in page.locator(f".alert-item[data-alert='{plan['id']}']").inner_text()

    # Observed alerts are labelled as such, never as forecasts or projections.
    filter_alerts(page, "kind", "observed")
    labels = page.locator(".alert-item .kind-label").all_inner_texts()
    assert labels and set(labels) == {"Observed:"}
    assert_local(requested, demo_server.url)


LEVELS = ["none", "low", "moderate", "high", "severe"]
ALERTS_AT_A_TIME = 50  # alerts a list draws at first and at each "Show more"


def drawn_ids(page, list_id: str) -> list[str]:
    return page.locator(f"#{list_id} .alert-item").evaluate_all(
        "(items) => items.map((i) => i.dataset.alert)"
    )


def test_planning_alerts_are_apart_and_the_alerts_to_act_on_come_worst_first(
    page, requested, demo_server, artifacts
):
    opened = api(demo_server, "alerts", status="open", limit=1000)["alerts"]
    to_act_on = [a for a in opened if a["kind"] != "projected"]
    planning = [a for a in opened if a["kind"] == "projected"]
    if not planning or len({a["severity"] for a in to_act_on}) < 2:
        pytest.fail("the demo raised no planning alert, or alerts to act on of only one level")
    # Make the mildest alert to act on the newest change: newest first, it would lead the list.
    mildest = min(to_act_on, key=lambda a: LEVELS.index(a["severity"]))
    with demo_server.store.session.begin() as session:
        session.get(AlertRow, mildest["id"]).updated_at = utcnow()
    opened = api(demo_server, "alerts", status="open", limit=1000)["alerts"]
    assert opened[0]["id"] == mildest["id"]
    to_act_on = [a for a in opened if a["kind"] != "projected"]

    def worst_first(alerts: list[dict]) -> list[str]:
        """Worst level first, then the newest change (the API's order among equal levels)."""
        return [a["id"] for a in sorted(alerts, key=lambda a: -LEVELS.index(a["severity"]))]

    load(page, demo_server.url)
    expected = worst_first(to_act_on)
    assert expected != [a["id"] for a in to_act_on]  # the order differs from newest first
    assert drawn_ids(page, "alert-list") == expected[:ALERTS_AT_A_TIME]
    assert page.locator("#alerts-order").inner_text().startswith("What needs action now: worst level first")
    assert page.locator("#alerts-count").inner_text() == f"({len(to_act_on)})"
    # The planning alerts have a section of their own, outside the alerts to act on, never among them.
    assert (
        page.locator("#planning-heading").inner_text()
        == f"Planning: climate-projection alerts ({len(planning)})"
    )
    assert "not a forecast" in page.locator("#planning-part .kind-note").first.inner_text()
    assert page.evaluate(
        "() => !document.getElementById('alert-list').closest('section')"
        ".contains(document.getElementById('planning-list'))"
    )
    assert drawn_ids(page, "planning-list") == worst_first(planning)[:ALERTS_AT_A_TIME]
    kinds = page.locator("#alert-list .alert-item").evaluate_all(
        "(items) => items.map((i) => i.dataset.kind)"
    )
    assert "projected" not in kinds and set(kinds) <= {"observed", "forecast"}
    page.locator(".col-side").screenshot(path=str(artifacts / "dashboard-planning-alerts.png"))

    # The site list counts the planning alerts apart too, as the status does.
    status = {s["id"]: s for s in api(demo_server, "status", limit=1000)["sites"]}
    for site_id in {a["site"] for a in planning}:
        item, button = status[site_id], page.locator(f".site-button[data-site='{site_id}']")
        assert item["planning_alerts"] == sum(1 for a in planning if a["site"] == site_id)
        assert item["open_alerts"] == sum(1 for a in to_act_on if a["site"] == site_id)
        n = item["planning_alerts"]
        assert button.locator(".planning-count").inner_text() == f"{n} planning alert{'' if n == 1 else 's'}"
    # Choosing the planning kind empties the list to act on, and says where those alerts are.
    filter_alerts(page, "kind", "projected")
    assert drawn_ids(page, "alert-list") == []
    assert "listed apart, under Planning" in page.locator("#alerts-message").inner_text()
    assert drawn_ids(page, "planning-list") == worst_first(planning)[:ALERTS_AT_A_TIME]
    # Resolved alerts, paged newest change first, keep the planning ones apart too.
    filter_alerts(page, "kind", "")
    filter_alerts(page, "status", "resolved")
    resolved = api(demo_server, "alerts", status="resolved", limit=1000)["alerts"]
    past_plans = [a["id"] for a in resolved if a["kind"] == "projected"]
    past_actions = [a["id"] for a in resolved if a["kind"] != "projected"]
    assert page.locator("#alerts-order").inner_text() == "Newest change first."
    assert page.locator("#alerts-count").inner_text() == f"({len(past_actions)})"
    assert page.locator("#planning-count").inner_text() == f"({len(past_plans)})"
    assert drawn_ids(page, "alert-list") == past_actions[:ALERTS_AT_A_TIME]
    assert drawn_ids(page, "planning-list") == past_plans[:ALERTS_AT_A_TIME]
    # "Show more" loads the next page and draws it after them.
    assert len(past_actions) > ALERTS_AT_A_TIME, "the demo resolved too few alerts to need a second page"
    page.locator("#more-alerts").click()
    shown = min(len(past_actions), 2 * ALERTS_AT_A_TIME)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#alert-list .alert-item').length === n", arg=shown
    )
    assert drawn_ids(page, "alert-list") == past_actions[:shown]
    assert page.locator("#more-alerts").is_hidden() == (shown == len(past_actions))
    assert_local(requested, demo_server.url)


def open_site(page, site_id: str, indicator: str) -> None:
    page.locator(f".site-button[data-site='{site_id}']").click()
    # the click empties the panel; once its table is filled again, the new site's indicators are listed
    page.wait_for_function("() => document.querySelectorAll('#latest-table tbody tr').length > 0")
    page.wait_for_function("() => document.querySelectorAll('#chart-indicator option').length > 0")
    page.select_option("#chart-indicator", indicator)


def test_a_site_shows_its_climate_projections_and_forecast(page, requested, demo_server, artifacts):
    site = demo_server.projected_site_ids[0]
    data = api(demo_server, f"sites/{site}/projections", indicator="hot_days")
    assert data["scenarios"], "the demo server stored no projections"
    load(page, demo_server.url)
    open_site(page, site, "hot_days")
    page.wait_for_function("() => document.getElementById('projections-image').naturalWidth > 0")
    # One row for the baseline and one per future period, per scenario, with medians, ranges and units.
    rows = page.locator("#projections-table tbody tr")
    assert rows.count() == sum(1 + len(s["periods"]) for s in data["scenarios"])
    cells = [r.locator("th, td").all_inner_texts() for r in rows.all()]
    scenario = data["scenarios"][-1]
    period = scenario["periods"][-1]
    row = next(c for c in cells if c[1] == f"{period['start']}–{period['end']}" and c[0] == "RCP8.5")
    assert scenario["scenario"] == "rcp_8_5"
    change = period["change"]["median"]
    assert row[3].startswith(f"{'+' if change > 0 else ''}{change:.4g} days (range ")
    assert row[2].startswith(f"{period['future']['median']:.4g} days")
    assert row[4].lower() == period["level"]
    assert cells[0][1] == f"{data['baseline_period'].replace('-', '–')} (baseline)"
    assert "days" in page.locator("#projections-caption").inner_text()
    # The chart, the provenance and the planning note with the synthetic label and the attribution.
    image = page.locator("#projections-image")
    assert data["site_name"] in image.get_attribute("alt") and "days" in image.get_attribute("alt")
    provenance = page.locator("#projections-provenance").inner_text()
    for model in data["provenance"]["models"] + data["provenance"]["splice"]:
        assert model in provenance
    assert data["provenance"]["bias"]["description"] in provenance
    note = page.locator("#projections-note").inner_text()
    assert note.startswith("Projection (planning, not a forecast)") and "SYNTHETIC" in note
    assert page.locator("#projections-attribution").inner_text() == f"Data: {data['attribution']}"
    page.wait_for_function("() => document.getElementById('chart-image').naturalWidth > 0")
    page.locator("#site-panel").screenshot(path=str(artifacts / "dashboard-projections.png"))

    # An indicator not computed from projections says so (the API answers 422), and shows its forecast.
    forecast = api(demo_server, f"sites/{site}/forecasts", indicator="flood_return_period")
    assert forecast["points"], "the demo stored no flood forecast"
    page.select_option("#chart-indicator", "flood_return_period")
    message = page.locator("#projections-message")
    message.filter(has_text="No climate projections for River flood category").wait_for()
    assert "is not computed from climate projections" in message.inner_text()
    assert page.locator("#projections-body").is_hidden()
    page.locator("#forecast-part").wait_for()
    summary = page.locator("#forecast-summary").inner_text()
    assert summary.startswith("Forecast: River flood category")
    assert f"issued {utc_minutes(forecast['issued'])}" in summary and "lead " in summary
    assert page.locator("#forecast-table tbody tr").count() == len(forecast["points"])
    assert "SYNTHETIC" in page.locator("#forecast-attribution").inner_text()
    page.wait_for_function("() => document.getElementById('chart-image').naturalWidth > 0")
    page.locator("#site-panel").screenshot(path=str(artifacts / "dashboard-forecast.png"))

    # A site whose projections were not computed says that there are none yet.
    other = next(s for s in demo_server.site_ids if s not in demo_server.projected_site_ids)
    open_site(page, other, "hot_days")
    page.locator("#projections-message").filter(has_text="No climate projections of Hot days").wait_for()
    assert page.locator("#projections-body").is_hidden()
    assert_local(requested, demo_server.url)
