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
    clms_land_mode: SourceMode = Field(
        "demo", description="CLMS land cover: demo | local (no remote API yet)."
    )
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

    # --- land and emergency source tuning (sentinel2, ems_rapid_mapping, egms, clms_land) -------
    sh_monthly_request_budget: int = Field(
        10_000,
        ge=0,
        description="Sentinel Hub requests allowed per calendar month (CDSE free tier: 10 000); "
        "counted in `<data dir>/cache/sentinel2/budget.json`.",
    )
    sh_max_download_attempts: int = Field(
        4,
        ge=1,
        le=10,
        description="Sentinel Hub attempts per request on 5xx, timeouts and connection errors.",
    )
    sh_download_sleep_seconds: float = Field(
        5.0, ge=0, description="Sentinel Hub first back-off sleep after a 5xx/timeout (×3 each retry)."
    )
    sh_max_rate_limit_retries: int = Field(
        5,
        ge=1,
        le=50,
        description="Sentinel Hub attempts of one request while it answers 429 Too Many Requests.",
    )
    sh_max_retry_after_seconds: float = Field(
        120.0,
        ge=0,
        description="Longest 429 Retry-After honoured; a longer one fails the run as unavailable.",
    )
    sh_timeout_seconds: float = Field(
        120.0, gt=0, description="Sentinel Hub HTTP timeout per request, seconds."
    )
    sh_max_threads: int = Field(4, ge=1, le=32, description="Parallel Sentinel Hub requests (one per site).")
    sentinel2_resolution_m: float = Field(
        10.0, gt=0, description="Sentinel-2 statistics resolution, metres in the site's UTM zone."
    )
    ems_page_size: int = Field(100, ge=1, le=1000, description="Rapid Mapping activations per list page.")
    ems_max_pages: int = Field(50, ge=1, description="Most Rapid Mapping list pages read per run.")
    ems_recent_days: int = Field(
        30, ge=0, description="Closed Rapid Mapping activations updated within this many days are re-checked."
    )
    ems_max_attempts: int = Field(
        4, ge=1, le=10, description="Rapid Mapping attempts per request on 429, 5xx and timeouts."
    )
    ems_backoff_seconds: float = Field(
        2.0, ge=0, description="Rapid Mapping first back-off sleep (doubles each retry; Retry-After wins)."
    )
    ems_max_retry_after_seconds: float = Field(
        120.0, ge=0, description="Longest Rapid Mapping Retry-After honoured; longer fails as unavailable."
    )
    ems_timeout_seconds: float = Field(
        30.0, gt=0, description="Rapid Mapping HTTP timeout per request, seconds."
    )
    ems_download_delineations: bool = Field(
        False,
        description="Remote mode: also download the delineation (DEL) product zips of flood activations "
        "meeting a site, for `ems_flooded_fraction` (cached under the data dir).",
    )
    egms_max_velocity_std: float = Field(
        1.5, gt=0, description="EGMS quality filter: keep points with mean_velocity_std below this (mm/yr)."
    )
    egms_level: Literal["auto", "L2a", "L2b", "L3"] = Field(
        "auto", description="EGMS product level to use; auto prefers L2b, then L3 (vertical), then L2a."
    )

    # --- CDS / ADS / EWDS source tuning (era5_land, cams_europe, cems_fire, glofas) ----------------
    cds_retry_max: int = Field(
        3,
        ge=1,
        le=20,
        description="Attempts per HTTP call to CDS/ADS/EWDS on 408/429/5xx, connection errors and truncated "
        "downloads (cdsapi `retry_max`; its own default is 500).",
    )
    cds_sleep_max: float = Field(
        5.0,
        ge=0,
        description="Seconds slept between those attempts, and longest pause between job-status polls "
        "(cdsapi `sleep_max`; its own default is 120).",
    )
    cds_timeout_seconds: float = Field(
        60.0, gt=0, description="CDS/ADS/EWDS HTTP timeout per request, seconds."
    )
    cds_time_budget_seconds: float = Field(
        10_800.0,
        gt=0,
        description="Wall-clock limit of one fetch from CDS/ADS/EWDS (queueing, polling, retries, "
        "downloads); on expiry the fetch fails as unavailable and the files already downloaded stay cached.",
    )
    cams_europe_type: Literal["auto", "validated_reanalysis", "interim_reanalysis", "analysis"] = Field(
        "auto",
        description="CAMS Europe product: auto (validated reanalysis for old months, interim for recent ones "
        "or when the validated one is refused), one reanalysis type, or `analysis` (forecasts dataset).",
    )
    cams_europe_validated_lag_days: int = Field(
        730,
        ge=0,
        description="In auto mode, months ending less than this many days ago are asked as interim "
        "reanalysis.",
    )
    cems_fire_ensemble: Literal["control", "mean"] = Field(
        "control",
        description="Ensemble fire-danger files (GEFF-ERA5 `realization`): use member 0 (control) or the "
        "ensemble mean.",
    )
    glofas_system_version: str = Field(
        "version_4_0", description="GloFAS historical `system_version` requested (e.g. version_4_0)."
    )
    glofas_upstream_area_path: Path | None = Field(
        None,
        description="GloFAS auxiliary upstream-area map (NetCDF, e.g. uparea_glofas_v4_0.nc) used to pick "
        "the river pixel of each site; without it the pixel of largest mean discharge is taken.",
    )
    glofas_thresholds_path: Path | None = Field(
        None,
        description="GloFAS return-period threshold NetCDF file or folder "
        "(flood_threshold_glofas_v4_rl_*.nc, variables rl_2.0/rl_5.0/rl_20.0) giving dis24_rp2, dis24_rp5, "
        "dis24_rp20 per site.",
    )
    glofas_search_radius_km: float = Field(
        5.0,
        ge=0,
        le=100,
        description="Distance around a site's polygon+buffer searched for its river pixel, km.",
    )

    # --- demo -----------------------------------------------------------------------------------
    demo_end: date | None = Field(None, description="Last day of demo data; default: yesterday (UTC).")
    demo_years: int = Field(30, ge=1, le=80, description="Years of daily demo history.")

    # --- scheduler and durability ---------------------------------------------------------------
    schedule_era5_land: str = Field(
        "daily@07:00",
        description="ERA5-Land schedule: `daily@HH:MM` (UTC, after the product's release), `<N>h`, "
        "`<N>m` or `<N>s` (interval), `onchange@<N>m` (check the local path's mtime every N minutes) or "
        "`off`.",
    )
    schedule_cams_europe: str = Field(
        "daily@10:00", description="CAMS Europe schedule (same syntax as `HM_SCHEDULE_ERA5_LAND`)."
    )
    schedule_sentinel2: str = Field(
        "72h", description="Sentinel-2 schedule (same syntax as `HM_SCHEDULE_ERA5_LAND`)."
    )
    schedule_egms: str = Field(
        "onchange@60m", description="EGMS schedule (same syntax as `HM_SCHEDULE_ERA5_LAND`)."
    )
    schedule_clms_land: str = Field(
        "onchange@60m", description="CLMS land schedule (same syntax as `HM_SCHEDULE_ERA5_LAND`)."
    )
    schedule_cems_fire: str = Field(
        "daily@12:00", description="CEMS fire (EFFIS) schedule (same syntax as `HM_SCHEDULE_ERA5_LAND`)."
    )
    schedule_glofas: str = Field(
        "daily@09:00", description="GloFAS schedule (same syntax as `HM_SCHEDULE_ERA5_LAND`)."
    )
    schedule_ems_rapid_mapping: str = Field(
        "15m", description="EMS Rapid Mapping schedule (same syntax as `HM_SCHEDULE_ERA5_LAND`)."
    )
    schedule_projections: str = Field(
        "monthly@1 03:00",
        description="Climate projections: a pass over every site at this cadence (`monthly@D HH:MM`, UTC, "
        "or the syntax of `HM_SCHEDULE_ERA5_LAND`), and an hourly pass over sites added since the last "
        "pass that have no projection yet; `off`: only `heritage-monitor projections`.",
    )
    scheduler_misfire_grace_seconds: int = Field(
        3600, ge=1, description="A job that missed its time by up to this many seconds still runs (once)."
    )
    scheduler_lease_ttl_seconds: float = Field(
        60.0,
        gt=0,
        description="SQLite: the scheduler lease (and each source's pass lease) expires this long after its "
        "last heartbeat (renewed every third of it); another process may take it over only then, or at once "
        "when the holder was a process of the same host that no longer runs. PostgreSQL uses advisory locks.",
    )
    backfill_chunk: Literal["year", "month", "none"] = Field(
        "year",
        description="A pass over a long period is committed in chunks of this size, each with its "
        "watermark, so an interrupted backfill resumes after the last complete chunk.",
    )
    freshness_grace_days: int = Field(
        2,
        ge=0,
        description="A `source_freshness` system alert opens when a source's newest data is older than its "
        "expected latency plus this many days.",
    )

    # --- unattended passes: time budget and shutdown ---------------------------------------------
    source_time_budget_seconds: float = Field(
        21_600.0,
        ge=0,
        description="Wall-clock limit of one pass of one source (scheduled or `heritage-monitor run`), "
        "seconds. A pass still running then is recorded `failed` with a `source_failure` system alert and "
        "stores nothing more; the other sources go on, and the next pass resumes after the last committed "
        "chunk. 0 = no limit.",
    )
    scheduler_stop_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, how long a running pass may take to finish its current chunk; after that "
        "it is recorded `interrupted` and its unfinished chunk is not stored. Keep it below the "
        "container's stop grace period (compose: 60 s).",
    )

    # --- alerts ---------------------------------------------------------------------------------
    alert_lookback_days: int = Field(
        365, ge=1, description="Only periods ending within this many days of the newest data raise alerts."
    )
    alert_min_level: Literal["low", "moderate", "high", "severe"] = Field(
        "high", description="Lowest risk level that opens an alert episode (a site or rule may override)."
    )

    # --- forecasts (CAMS, GloFAS; CEMS fire in demo mode) -------------------------------------------
    forecasts: bool = Field(
        True,
        description="After a pass reaching a source's newest data, take its forecast (issued at 00 UTC the "
        "day after the newest observed day), store its indicator values and raise forecast alerts.",
    )

    # --- climate projections: source ---
    projections_mode: SourceMode = Field(
        "demo",
        description="Climate projections: demo (synthetic models) | local (CORDEX/CMIP6 daily NetCDF files "
        "in `HM_PROJECTIONS_PATH`) | remote (C3S projections through the CDS, `HM_CDS_KEY`).",
    )
    projections_path: Path | None = Field(
        None,
        description="Folder (or file) of CORDEX/CMIP6 daily NetCDF or ZIP files for local mode; model, "
        "experiment, variable and years are read from the ESGF file names or the global attributes.",
    )
    projections_dataset: Literal["cordex", "cmip6"] = Field(
        "cordex",
        description="C3S projections dataset: `cordex` (projections-cordex-domains-single-levels, EUR-11 "
        "daily) or `cmip6` (projections-cmip6, daily).",
    )
    projections_models: str = Field(
        "",
        pattern=r"^[\w.\-/@]*(,[\w.\-/@]+)*$",
        description="Comma-separated models in the CDS spelling: CORDEX `<gcm>/<rcm>` (e.g. "
        "`mpi_m_mpi_esm_lr/smhi_rca4`), CMIP6 `<model>` (e.g. `mpi_esm1_2_lr`), each optionally "
        "`@<ensemble member>` (default `r1i1p1`); empty: a default set of three models of the dataset "
        "(local mode: every model found in the files).",
    )
    projections_scenarios: str = Field(
        "",
        pattern=r"^[\w]*(,[\w]+)*$",
        description="Comma-separated scenarios as the CDS spells them (`rcp_4_5,rcp_8_5` for CORDEX, "
        "`ssp2_4_5,ssp5_8_5` for CMIP6); empty: those two of the dataset.",
    )

    # --- climate projections: computation ---
    projections_baseline: str = Field(
        "1981-2010",
        pattern=r"^\d{4}-\d{4}$",
        description="Baseline period of climate projections, `YYYY-YYYY` (inclusive): changes are future "
        "period means minus this period's mean, per model.",
    )
    projections_periods: str = Field(
        "2021-2050,2041-2070,2071-2100",
        pattern=r"^\d{4}-\d{4}(,\d{4}-\d{4})*$",
        description="Future periods of climate projections, comma-separated `YYYY-YYYY` (inclusive).",
    )
    projections_bias_adjust: Literal["none", "eqm"] = Field(
        "none",
        description="Bias adjustment of projected daily tas/tasmin/tasmax/pr before the indicators: `none` "
        "(changes against each model's own baseline) or `eqm` (empirical quantile mapping per month "
        "against the site's stored ERA5-Land days of the baseline; additive for temperature, "
        "multiplicative for precipitation; xsdba).",
    )

    # --- alert delivery (CAP, Atom, webhooks, e-mail) -------------------------------------------
    public_base_url: str | None = Field(
        None,
        description="Public URL of the service (e.g. https://heritage.example.org), used in the links of CAP "
        "documents, feeds, webhooks and e-mails; default: the request's URL, or http://localhost:8000.",
    )
    cap_sender: str = Field(
        "heritage-monitor", description="CAP <sender>: this service's id (no spaces, commas, '<' or '&')."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="HTTP timeout of one webhook POST, seconds."
    )
    delivery_max_attempts: int = Field(
        8, ge=1, le=50, description="Tries of one webhook or e-mail delivery before it is dead-lettered."
    )
    delivery_backoff_seconds: float = Field(
        60.0,
        ge=0,
        description="Wait before the first retry of a failed delivery (doubles each try, ≤ 1 day).",
    )
    smtp_host: str | None = Field(None, description="SMTP server for alert e-mails; unset: e-mails wait.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_username: str | None = Field(None, description="SMTP login name (no login when unset).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str = Field(
        "Heritage Monitor <alerts@localhost>", description="From address of alert e-mails."
    )
    smtp_timeout_seconds: float = Field(30.0, gt=0, description="SMTP connection timeout, seconds.")
    email_digest_hour: int = Field(
        7,
        ge=0,
        le=23,
        description="Local hour (site's time zone; UTC for all-site subscriptions) of daily digests.",
    )

    # --- API ------------------------------------------------------------------------------------
    api_max_page_size: int = Field(1000, ge=1, description="Hard maximum of `limit` on paged endpoints.")
    api_threads: int = Field(
        4,
        ge=1,
        le=256,
        description="Requests an API worker process handles at once (its thread pool); more wait their "
        "turn. Each holds the interpreter lock while it computes, so beyond a few threads more only "
        "starve the event loop that reads requests and sends answers.",
    )
    public_read: bool = Field(True, description="Whether reading endpoints answer without an API key.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS.")
    api_max_upload_mb: float = Field(
        20.0, gt=0, description="Largest request body accepted by uploads (site import), MB; larger → 413."
    )
    rate_limit_per_minute: int = Field(
        1200,
        ge=0,
        description="Requests per minute per anonymous client address (token bucket, per API replica); "
        "0 = unlimited.",
    )
    rate_limit_keyed_per_minute: int = Field(
        6000,
        ge=0,
        description="Requests per minute per API key (token bucket, per API replica); 0 = unlimited.",
    )

    # --- compute -----------------------------------------------------------------------------
    dask_scheduler: str | None = Field(
        None,
        description="Address of a Dask distributed scheduler (e.g. `tcp://dask:8786`) that computes the "
        "indicators; unset = computed in-process.",
    )
    sites_per_chunk: int = Field(
        1000,
        ge=1,
        description="Sites per block when indicator inputs are streamed (see `HM_STREAM_ABOVE_MB`): each "
        "block is one task that reads only its sites' rows, so it bounds the memory of one task (30 years "
        "of six daily float64 variables: about 0.5 MB per site).",
    )
    stream_above_mb: float = Field(
        2048.0,
        ge=0,
        description="Indicator inputs larger than this (sites × days × variables × 8 bytes, MB) are read "
        "lazily in blocks of `HM_SITES_PER_CHUNK` sites and streamed through Dask (the local threaded "
        "scheduler, or the cluster of `HM_DASK_SCHEDULER`), so no process holds the whole cube; with "
        "`HM_DASK_SCHEDULER` set they are always streamed. 0 = always.",
    )

    # --- dashboard -----------------------------------------------------------------------------
    dashboard_tile_url: str | None = Field(
        None,
        description="XYZ tile URL template (`https://…/{z}/{x}/{y}.png`) for the dashboard basemap; "
        "unset = a plain vector basemap of site outlines, no network needed.",
    )
    dashboard_tile_attribution: str = Field(
        "", description="Attribution shown under the dashboard map when tiles are configured."
    )

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


def settings_reference() -> str:
    """A Markdown table of every setting: environment name, default and meaning (docs/configuration.md)."""
    lines = [
        "# Configuration reference",
        "",
        "Every setting is an environment variable with the prefix `HM_` (or a line in a `.env` file).",
        "Secrets are never logged and never returned by the API. Generated from `monitor/settings.py`",
        "by `python -m monitor.settings`; a test keeps this file in step with the code.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "—" if default is None else f"`{default}`"
        if isinstance(default, Path):
            shown = f"`{default.as_posix()}`"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `HM_{name.upper()}` | {shown} | {description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_reference(), end="")
