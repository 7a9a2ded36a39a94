"""Settings of Heritage Monitor: one class, flat `HM_` environment names, secrets as SecretStr."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SourceMode = Literal["demo", "local", "remote"]

#: Source ids, stable: they appear in settings (`HM_<SOURCE>_MODE`), URLs and stored provenance.
SOURCE_IDS = (
    "era5_land",
    "cams_europe",
    "sentinel2",
    "egms",
    "clms_land",
    "cems_fire",
    "glofas",
    "ems_rapid_mapping",
)


class Settings(BaseSettings):
    """Every setting of the service, read from `HM_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="HM_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("./heritage-data"), description="Folder for the database, caches and Parquet."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file `heritage.db` in the data dir."
    )

    # --- sources: mode and local path, one pair per source -------------------------------------
    era5_land_mode: SourceMode = Field("demo", description="ERA5-Land: demo | local | remote.")
    era5_land_path: Path | None = Field(None, description="ERA5-Land files (NetCDF/GRIB) for local mode.")
    cams_europe_mode: SourceMode = Field(
        "demo", description="CAMS European air quality: demo | local | remote."
    )
    cams_europe_path: Path | None = Field(None, description="CAMS NetCDF/zip files for local mode.")
    sentinel2_mode: SourceMode = Field("demo", description="Sentinel-2 statistics: demo | local | remote.")
    sentinel2_path: Path | None = Field(None, description="Saved Statistical API JSON for local mode.")
    egms_mode: SourceMode = Field("demo", description="EGMS ground motion: demo | local.")
    egms_path: Path | None = Field(None, description="EGMS CSV files for local mode.")
    clms_land_mode: SourceMode = Field("demo", description="CLMS land cover: demo | local | remote.")
    clms_land_path: Path | None = Field(None, description="CORINE/HRL GeoTIFFs for local mode.")
    cems_fire_mode: SourceMode = Field("demo", description="CEMS fire danger: demo | local | remote.")
    cems_fire_path: Path | None = Field(None, description="CEMS fire NetCDF files for local mode.")
    glofas_mode: SourceMode = Field("demo", description="GloFAS discharge: demo | local | remote.")
    glofas_path: Path | None = Field(None, description="GloFAS NetCDF/GRIB files for local mode.")
    ems_rapid_mapping_mode: SourceMode = Field(
        "demo", description="EMS Rapid Mapping: demo | local | remote."
    )
    ems_rapid_mapping_path: Path | None = Field(None, description="Saved activation JSON for local mode.")

    # --- services -------------------------------------------------------------------------------
    cds_url: str = Field("https://cds.climate.copernicus.eu/api", description="Climate Data Store API URL.")
    cds_key: SecretStr | None = Field(None, description="CDS personal access token.")
    ads_url: str = Field("https://ads.atmosphere.copernicus.eu/api", description="Atmosphere Data Store URL.")
    ads_key: SecretStr | None = Field(None, description="ADS personal access token.")
    ewds_url: str = Field(
        "https://ewds.climate.copernicus.eu/api", description="Early Warning Data Store URL."
    )
    ewds_key: SecretStr | None = Field(None, description="EWDS personal access token.")
    sh_base_url: str = Field(
        "https://sh.dataspace.copernicus.eu", description="Sentinel Hub base URL (CDSE)."
    )
    sh_token_url: str = Field(
        "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token",
        description="Sentinel Hub OAuth token URL (CDSE).",
    )
    sh_client_id: str | None = Field(None, description="Sentinel Hub OAuth client id.")
    sh_client_secret: SecretStr | None = Field(None, description="Sentinel Hub OAuth client secret.")
    ems_url: str = Field(
        "https://rapidmapping.emergency.copernicus.eu/backend/dashboard-api",
        description="CEMS Rapid Mapping API base URL.",
    )

    # --- demo -----------------------------------------------------------------------------------
    demo_end: date | None = Field(None, description="Last day of demo data; default: yesterday (UTC).")
    demo_years: int = Field(30, ge=1, le=80, description="Years of daily demo history.")

    # --- alerts ---------------------------------------------------------------------------------
    alert_lookback_days: int = Field(
        365, ge=1, description="Only periods ending within this many days of the newest data raise alerts."
    )
    alert_min_level: Literal["low", "moderate", "high", "severe"] = Field(
        "high", description="Lowest risk level that opens an alert episode (a site or rule may override)."
    )

    # --- API ------------------------------------------------------------------------------------
    api_max_page_size: int = Field(1000, ge=1, description="Hard maximum of `limit` on paged endpoints.")
    public_read: bool = Field(True, description="Whether reading endpoints answer without an API key.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS.")

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the explicit one, else SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'heritage.db').resolve()}"

    def source_mode(self, source_id: str) -> SourceMode:
        """The mode configured for one source."""
        return getattr(self, f"{source_id}_mode")

    def source_path(self, source_id: str) -> Path | None:
        """The local-mode path configured for one source."""
        return getattr(self, f"{source_id}_path")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own `Settings`)."""
    return Settings()
