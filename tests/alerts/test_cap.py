"""CAP 1.2 messages of an episode: valid against the OASIS schema, Alert → Update → AllClear."""

from __future__ import annotations

from datetime import date

import pytest
from lxml import etree

from monitor.alerts.cap import alert_to_cap, polygons
from monitor.alerts.episodes import acknowledge, resolve_by_hand
from monitor.store.tables import AlertRow
from tests.alerts.conftest import SPEC, advance, month_record, only_alert

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
SENDER = "heritage-monitor.test"
BASE = "https://heritage.example.org"


def cap_of(store, alert_id: str, lang="en") -> etree._Element:
    row = store.get_alert(alert_id)
    doc = alert_to_cap(
        row,
        store.get_site(row.site_id),
        SPEC,
        store.alert_events(alert_id),
        sender=SENDER,
        base_url=BASE,
        lang=lang,
    )
    assert doc.startswith(b"<?xml")
    return etree.fromstring(doc)


def valid(schema, root) -> etree._Element:
    schema.assertValid(root)
    return root


def one(root, path: str) -> str:
    return root.findtext(path, namespaces=NS)


def params(info) -> dict[str, str]:
    return {
        p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
        for p in info.findall("cap:parameter", NS)
    }


def test_an_episode_is_an_alert_then_updates_then_an_all_clear(store, sites, cap_schema):
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    alert_id = only_alert(store, "athens").id
    opened = valid(cap_schema, cap_of(store, alert_id))
    assert one(opened, "cap:identifier") == f"{alert_id}.1"
    assert one(opened, "cap:sender") == SENDER
    assert one(opened, "cap:msgType") == "Alert"
    assert opened.find("cap:references", NS) is None
    assert one(opened, "cap:status") == "Exercise"  # synthetic demo data is never "Actual"
    assert "SYNTHETIC" in one(opened, "cap:note")
    assert one(opened, "cap:scope") == "Public"
    assert one(opened, "cap:sent").endswith("-00:00")
    info = opened.find("cap:info", NS)
    assert one(info, "cap:language") == "en"
    assert one(info, "cap:category") == "Met"
    assert one(info, "cap:event") == SPEC.title
    assert one(info, "cap:severity") == "Severe"
    assert one(info, "cap:certainty") == "Observed"
    assert one(info, "cap:responseType") == "Prepare"
    assert one(info, "cap:onset").startswith("2026-06-01T00:00:00+03:00")  # the site's local midnight
    assert one(info, "cap:web") == f"{BASE}/api/v1/alerts/{alert_id}"
    description = one(info, "cap:description")
    for fact in (
        "16 days",
        "15 days",
        "2026-06-01 – 2026-06-30",
        "reanalysis-era5-land",
        "synthetic-1",
        "SYNTHETIC",
    ):
        assert fact in description
    p = params(info)
    assert p["level"] == "high" and p["awareness_level"] == "3; orange; Severe" and p["sequence"] == "1"
    assert p["value"] == "16.0" and p["threshold"] == "15.0" and p["units"] == "days"
    # the same message is the same document, whenever it is asked for
    assert etree.tostring(cap_of(store, alert_id)) == etree.tostring(opened)

    advance(store, sites, [month_record("athens", date(2026, 7, 1), 25.0, 4)])
    escalated = valid(cap_schema, cap_of(store, alert_id))
    assert one(escalated, "cap:identifier") == f"{alert_id}.2"
    assert one(escalated, "cap:msgType") == "Update"
    first = f"{SENDER},{alert_id}.1,{one(opened, 'cap:sent')}"
    assert one(escalated, "cap:references") == first
    assert one(escalated, "cap:incidents") == alert_id
    info = escalated.find("cap:info", NS)
    assert one(info, "cap:severity") == "Extreme" and params(info)["value"] == "25.0"

    advance(store, sites, [month_record("athens", date(2026, 8, 1), 3.0, 0)])
    resolved = valid(cap_schema, cap_of(store, alert_id))
    assert one(resolved, "cap:identifier") == f"{alert_id}.3"
    assert one(resolved, "cap:msgType") == "Update"
    refs = one(resolved, "cap:references").split()
    assert refs == [first, f"{SENDER},{alert_id}.2,{one(escalated, 'cap:sent')}"]
    info = resolved.find("cap:info", NS)
    assert one(info, "cap:responseType") == "AllClear"
    assert one(info, "cap:urgency") == "Past"


def test_a_false_alarm_is_withdrawn_with_a_cancel(store, sites, cap_schema):
    advance(store, sites, [month_record("krakow", date(2026, 6, 1), 18.0, 3)])
    alert_id = only_alert(store, "krakow").id
    with store.session.begin() as s:
        row = s.get(AlertRow, alert_id)
        acknowledge(s, row, "key:test", "sensor artefact", True)
        resolve_by_hand(s, row, "key:test", "false alarm")
    doc = valid(cap_schema, cap_of(store, alert_id))
    assert one(doc, "cap:msgType") == "Cancel"
    assert one(doc, "cap:references").startswith(f"{SENDER},{alert_id}.1,")
    assert one(doc.find("cap:info", NS), "cap:responseType") == "None"


def test_each_part_of_a_multipolygon_site_is_one_closed_lat_lon_polygon(store, sites, cap_schema):
    advance(store, sites, [month_record("venice_lagoon", date(2026, 6, 1), 17.0, 3)])
    doc = valid(cap_schema, cap_of(store, only_alert(store, "venice_lagoon").id))
    area = doc.find("cap:info/cap:area", NS)
    assert one(area, "cap:areaDesc") == "Venice and its Lagoon, IT"
    rings = [p.text for p in area.findall("cap:polygon", NS)]
    assert len(rings) == len(sites["venice_lagoon"].geometry.geoms) == 2
    for ring in rings:
        pairs = [tuple(map(float, pair.split(","))) for pair in ring.split(" ")]
        assert len(pairs) >= 4 and pairs[0] == pairs[-1]
        assert all(45.0 < lat < 46.0 and 12.0 < lon < 13.0 for lat, lon in pairs)  # "lat,lon", not lon,lat
    assert sorted(min(float(p.split(",")[0]) for p in r.split(" ")) for r in rings) == [45.42, 45.48]
    assert "37.966500,23.720700" in polygons(sites["athens"])[0].split(" ")


def test_one_info_per_language(store, sites, cap_schema):
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    doc = valid(cap_schema, cap_of(store, only_alert(store, "athens").id, lang=["en", "el", "de"]))
    infos = doc.findall("cap:info", NS)
    assert [one(i, "cap:language") for i in infos] == ["en", "el", "de"]
    assert "Νέα ειδοποίηση" in one(infos[1], "cap:headline")
    assert "Neue Warnung (hohes Risiko)" in one(infos[2], "cap:headline")


def test_a_sender_with_a_space_is_refused(store, sites):
    advance(store, sites, [month_record("athens", date(2026, 6, 1), 16.0, 3)])
    row = only_alert(store, "athens")
    with pytest.raises(ValueError, match="sender"):
        alert_to_cap(row, store.get_site("athens"), SPEC, [], sender="heritage monitor", base_url=BASE)
