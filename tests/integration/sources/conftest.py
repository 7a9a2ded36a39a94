"""Fixtures of the CDS-family source tests: the fake data store and settings pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from monitor.settings import Settings
from tests.integration.sources.fake_cds import FakeDataStore

UK_WHS = "sites/uk_whs_digital_land"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy for 127.0.0.1, and no cdsapi configuration from the environment or the home folder."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("CDSAPI_URL", "CDSAPI_KEY", "ECMWF_DATASTORES_URL", "ECMWF_DATASTORES_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "no-cdsapirc"))


@pytest.fixture
def fake_store() -> Iterator[Callable[..., FakeDataStore]]:
    """A factory of fake stores (closed at teardown): `fake_store(responder, **options)`."""
    made: list[FakeDataStore] = []

    def make(responder: Callable[[str, dict[str, Any]], bytes], **kwargs: Any) -> FakeDataStore:
        store = FakeDataStore(responder=responder, **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def remote_settings(tmp_path: Path, store: FakeDataStore, **overrides: Any) -> Settings:
    """Settings with every data store pointing at the fake, short retries and a short budget."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "cds_url": store.url,
        "ads_url": store.url,
        "ewds_url": store.url,
        "cds_key": SecretStr(store.token),
        "ads_key": SecretStr(store.token),
        "ewds_key": SecretStr(store.token),
        "cds_retry_max": 3,
        "cds_sleep_max": 0.05,
        "cds_timeout_seconds": 5.0,
        "cds_time_budget_seconds": 60.0,
        "era5_land_mode": "remote",
        "cams_europe_mode": "remote",
        "cems_fire_mode": "remote",
        "glofas_mode": "remote",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


def cache_files(settings: Settings) -> list[Path]:
    """Every file under the data dir's cache folder."""
    root = Path(settings.data_dir) / "cache"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def uk_sites(shared_data: Path, ids: tuple[str, ...]):
    """Real World Heritage Site boundaries (Historic England) as a SiteSet."""
    import geopandas as gpd

    from sites import Site, SiteSet

    folder = shared_data / UK_WHS
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    names = {}
    for line in (folder / "index.tsv").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            names[parts[0]] = parts[1]
    out = []
    for site_id in ids:
        frame = gpd.read_file(folder / f"{site_id}.geojson").to_crs(4326)
        geom = frame.geometry.union_all()
        out.append(Site(id=f"whs-{site_id}", name=names.get(site_id, site_id), geometry=geom))
    return SiteSet(out)
