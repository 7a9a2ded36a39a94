"""The `heritage-monitor` command: the composition root that wires sources, store, scheduler and API.

Exit codes: 0 success, 1 partial failure (some sources or features failed), 2 usage error.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from monitor.settings import SOURCE_IDS, Settings

app = typer.Typer(
    help="Heritage Monitor: Copernicus data → heritage risk indicators → alerts and an API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sites_app = typer.Typer(help="Import, list and export heritage sites.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
sources_app = typer.Typer(help="Inspect the Copernicus sources.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema: upgrade it, show its revision.", no_args_is_help=True)
app.add_typer(sites_app, name="sites")
app.add_typer(keys_app, name="keys")
app.add_typer(sources_app, name="sources")
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _store(settings: Settings | None = None):
    """Settings and a store on a migrated database (cheap: no indicator or source imports)."""
    from monitor.store.db import DatabaseError, upgrade
    from monitor.store.repository import Store

    settings = settings or Settings()
    engine = _engine(settings)
    try:
        upgrade(engine)
    except DatabaseError as exc:
        raise fail(str(exc)) from None
    return settings, Store(engine)


def _engine(settings: Settings):
    """An engine on the configured database (its data dir created), or a clear error."""
    from monitor.store.db import make_engine

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return make_engine(settings.resolved_database_url)
    except (OSError, ValueError) as exc:  # an unwritable data dir, a malformed URL or unknown driver
        raise fail(f"cannot open the database: {exc}") from None


def _context(settings: Settings | None = None):
    """Settings, store and the pipeline over them."""
    from monitor.pipeline import Pipeline
    from monitor.store.variables import VariableStore

    settings, store = _store(settings)
    return settings, store, Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))


def _parse_sources(value: str | None) -> list[str] | None:
    if not value:
        return None
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in SOURCE_IDS]
    if unknown:
        raise fail(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCE_IDS)}")
    return names


def _run_pipeline(pipeline, sources, start, end, site_ids) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("pipeline", total=None)
        report = pipeline.run(
            sources, start, end, site_ids, progress=lambda s: bar.update(task, description=f"source {s}")
        )
    table = Table(title="Pipeline passes")
    for col in ("source", "status", "period", "values written", "alerts raised", "note"):
        table.add_column(col)
    for r in report.results:
        period = f"{r.start} → {r.end}" if r.start else ""
        table.add_row(r.source, r.status, period, str(r.values_written), str(r.alerts_raised), r.error or "")
    out.print(table)
    return 1 if report.failed else 0


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the API.", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Seed and compute, then exit.")] = False,
) -> None:
    """Seed the demo sites, compute 30 years of synthetic history, raise alerts and serve the API."""
    from sites.io import load_demo_sites

    settings = Settings()
    demo_modes = {s: settings.source_mode(s) for s in SOURCE_IDS}
    settings, store, pipeline = _context(settings)
    sites = load_demo_sites()
    counts = store.upsert_sites(sites)
    out.print(f"[bold]Heritage Monitor demo[/] — data dir {settings.data_dir.resolve()}")
    out.print(
        f"Demo sites: {len(sites)} ({counts.created} new, {counts.updated} updated, "
        f"{counts.unchanged} unchanged)"
    )
    if any(m != "demo" for m in demo_modes.values()):
        out.print(
            "[yellow]note:[/] some sources are not in demo mode: "
            + ", ".join(f"{s}={m}" for s, m in demo_modes.items() if m != "demo")
        )
    out.print("[bold yellow]All demo data are SYNTHETIC[/] (a deterministic generator, not Copernicus data).")
    code = _run_pipeline(pipeline, None, None, None, sites.ids)
    code = max(code, _demo_projections(settings, store, sites))
    _print_alert_summary(store)
    if not store.list_keys():
        key = store.create_key("demo admin", "admin")
        out.print(f"Admin API key (shown once, store it now): [bold]{key.secret}[/]")
    if no_serve:
        raise typer.Exit(code)
    url = _local_url(host, port)
    out.print(f"Dashboard: [bold]{url}/[/]")
    out.print(f"API: {url}/api/v1/alerts   docs: {url}/docs   health: {url}/health")
    _serve(settings, host, port, with_scheduler=True)


def _demo_projections(settings: Settings, store, sites) -> int:
    """Projections for the demo sites that have none yet, so a second `demo` changes nothing stored (a
    recompute is `heritage-monitor projections`)."""
    from monitor.projections import sites_without_projections

    missing = set(sites_without_projections(store))
    todo = [s for s in sites.ids if s in missing]
    if not todo:
        out.print("Climate projections: already stored for every demo site (`heritage-monitor projections`)")
        return 0
    return _run_projections(settings, store, store.site_set(todo))


def _run_projections(settings: Settings, store, sites) -> int:
    """One recorded projection pass over `sites` (the scheduler's code, `projection_pass`); prints a
    summary and returns an exit code (0 ok, 1 a model run or the whole pass failed, or another process was
    passing over the projections)."""
    from monitor.pipeline import Pipeline
    from monitor.projections import projection_pass
    from monitor.store.variables import VariableStore

    pipeline = Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))
    result = projection_pass(pipeline, sites, progress=lambda n: err.print(f"projections: {n}"))
    out.print(
        f"Climate projections ({settings.projections_mode}): {result.status}, {result.values_written} "
        f"value(s) written, {result.alerts_raised} projected alert(s) raised or escalated"
    )
    if result.status in ("ok", "skipped"):
        return 0
    for line in (result.error or "no detail").splitlines():
        err.print(f"[bold red]projections:[/] {line}", soft_wrap=True)
    if result.status == "failed":
        err.print("projections: no model run succeeded; the stored projections are unchanged")
    return 1


@app.command()
def projections(
    sites: Annotated[
        str | None, typer.Option("--sites", help="Comma-separated site ids (default: all).")
    ] = None,
) -> None:
    """Compute and store projected climate indicators (per model, scenario and period) for the sites."""
    from sites import SiteNotFoundError

    settings, store = _store()
    try:
        site_set = store.site_set([s.strip() for s in sites.split(",")] if sites else None)
    except SiteNotFoundError as exc:
        raise fail(str(exc)) from None
    if not len(site_set):
        raise fail("no sites registered; import some first (`heritage-monitor sites import`)", 1)
    raise typer.Exit(_run_projections(settings, store, site_set))


def _local_url(host: str, port: int) -> str:
    """The address to open in a browser on this machine for a server listening on host:port."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def _print_alert_summary(store) -> None:
    from indicators import level_name

    rows, _ = store.list_alerts(limit=1000)
    current = [r for r in rows if r.status != "resolved" and r.kind == "observed"]
    table = Table(title=f"Open and acknowledged alerts ({len(current)})")
    for col in ("site", "indicator", "severity", "status", "onset", "value"):
        table.add_column(col)
    for a in current[:20]:
        table.add_row(a.site_id, a.indicator_id, level_name(a.level), a.status, str(a.onset), _shown(a))
    by_status: dict[str, int] = {}
    for a in rows:
        by_status[a.status] = by_status.get(a.status, 0) + 1
    out.print(table)
    _print_forecast_alerts([r for r in rows if r.status != "resolved" and r.kind == "forecast"])
    planning = sum(r.status != "resolved" and r.kind == "projected" for r in rows)
    if planning:
        out.print(f"Planning alerts from climate projections: {planning} (GET /api/v1/alerts?kind=projected)")
    out.print("Alerts by status: " + (", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none"))


def _shown(alert) -> str:
    """An alert's value as its indicator names it (a category, or the number with its units)."""
    import indicators

    try:
        return indicators.get(alert.indicator_id).describe(alert.value)
    except indicators.UnknownIndicatorError:
        return "" if alert.value is None else f"{alert.value:g} {alert.units}"


def _print_forecast_alerts(rows) -> None:
    """Current forecast alerts, apart from observed ones: expected onset, lead time and issue."""
    from indicators import level_name
    from monitor.alerts.episodes import forecast_facts

    if not rows:
        return
    table = Table(title=f"Forecast alerts ({len(rows)})")
    for col in ("site", "indicator", "severity", "expected", "lead", "issued", "peak"):
        table.add_column(col)
    for a in rows[:20]:
        facts = forecast_facts(a)
        expected = f"{facts.expected_start} – {facts.expected_end}" if facts else str(a.onset)
        lead = f"{facts.lead_time_days} d" if facts else ""
        issued = f"{facts.issued:%Y-%m-%d %H:%M} UTC" if facts else ""
        table.add_row(a.site_id, a.indicator_id, level_name(a.level), expected, lead, issued, _shown(a))
    out.print(table)


def _serve(settings: Settings, host: str, port: int, with_scheduler: bool = False, workers: int = 1) -> None:
    import uvicorn

    from api.app import create_app

    if workers > 1:  # each worker process builds its app from the same environment
        from api import workers as api_workers

        code = api_workers.serve(
            "api.app:create_app", host, port, workers, factory=True, log_level="info", access_log=False
        )
        if code:
            raise fail(f"cannot listen on {host}:{port} (see the message above)", code)
        return
    scheduler = None
    if with_scheduler:
        from monitor import scheduler as schedules

        scheduler = schedules.background(settings)
    application = create_app(settings, scheduler=scheduler)
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="API worker processes (one per core serves the most requests).",
            min=1,
            max=64,
            envvar="HM_API_WORKERS",
        ),
    ] = 1,
) -> None:
    """Serve the API only (run any number of replicas; the scheduler runs elsewhere)."""
    settings, _ = _store()
    url = _local_url(host, port)
    out.print(f"Dashboard: {url}/   API: {url}/api/v1   docs: {url}/docs", soft_wrap=True)
    _serve(settings, host, port, workers=workers)


@app.command()
def scheduler() -> None:
    """Run the scheduler: one job per source at its cadence (in the foreground)."""
    from monitor import scheduler as sched

    settings, _ = _store()
    out.print("scheduler starting; Ctrl-C or SIGTERM stops it after the current chunk of each pass")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sched.blocking(settings).start()
    out.print("scheduler stopped; its lease is released")


@app.command()
def run(
    source: Annotated[
        str | None, typer.Option("--source", help="Comma-separated source ids (default: all).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First day, YYYY-MM-DD (default: after the watermark).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (default: newest available).")] = None,
    sites: Annotated[
        str | None, typer.Option("--sites", help="Comma-separated site ids (default: all).")
    ] = None,
    recompute: Annotated[
        str | None,
        typer.Option(
            "--recompute", help="Recompute these indicators (comma-separated) over all stored history."
        ),
    ] = None,
) -> None:
    """One pipeline pass: fetch, store variables, compute indicators, raise alerts (or --recompute)."""
    from sites import SiteNotFoundError

    try:
        start_d = date.fromisoformat(start) if start else None
        end_d = date.fromisoformat(end) if end else None
    except ValueError as exc:
        raise fail(f"dates must be YYYY-MM-DD: {exc}") from None
    if start_d and end_d and start_d > end_d:
        raise fail("--start must not be after --end")
    names = _parse_sources(source)
    site_ids = [s.strip() for s in sites.split(",")] if sites else None
    if recompute:
        import indicators

        wanted = [i.strip() for i in recompute.split(",") if i.strip()]
        unknown = [i for i in wanted if i not in {s.id for s in indicators.catalog()}]
        if unknown:
            raise fail(f"unknown indicator(s) {', '.join(unknown)}")
        _, _, pipeline = _context()
        report = pipeline.recompute(wanted, site_ids)
        for r in report.results:
            out.print(f"{r.source}: {r.status}, {r.values_written} value(s) rewritten {r.error or ''}")
        raise typer.Exit(1 if report.failed else 0)
    _, _, pipeline = _context()
    try:
        code = _run_pipeline(pipeline, names, start_d, end_d, site_ids)
    except SiteNotFoundError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@sites_app.command("import")
def sites_import(
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile (.shp or .zip) or CSV.")],
    strict: Annotated[bool, typer.Option("--strict", help="Store nothing if any feature is bad.")] = False,
) -> None:
    """Import sites; an id already stored is updated, so re-importing a file changes nothing."""
    from sites import SiteValidationError
    from sites.io import read_sites

    if not path.exists():
        raise fail(f"no such file: {path}")
    try:
        report = read_sites(path)
    except SiteValidationError as exc:
        raise fail(str(exc)) from None
    for issue in report.warnings:
        err.print(f"[yellow]warning:[/] {issue}")
    for issue in report.errors:
        err.print(f"[red]rejected:[/] {issue}")
    if strict and report.errors:
        raise fail(f"{len(report.errors)} bad feature(s); nothing stored (--strict)", 1)
    _, store = _store()
    counts = store.upsert_sites(report.sites)
    out.print(
        f"{len(report.sites)} valid site(s): {counts.created} created, {counts.updated} updated, "
        f"{counts.unchanged} unchanged; {len(report.errors)} rejected"
    )
    raise typer.Exit(1 if report.errors else 0)


@sites_app.command("list")
def sites_list() -> None:
    """List registered sites."""
    _, store = _store()
    table = Table(title="Sites")
    for col in ("id", "name", "country", "materials", "buffer (m)"):
        table.add_column(col)
    rows, _ = store.list_sites()
    for s in rows:
        table.add_row(s.id, s.name, s.country or "", ", ".join(s.materials), f"{s.buffer_m:g}")
    out.print(table)


@sites_app.command("export")
def sites_export(
    fmt: Annotated[str, typer.Option("--format", help="geojson or csv")] = "geojson",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout).")] = None,
) -> None:
    """Export every registered site."""
    from sites.io import write_sites

    if fmt not in ("geojson", "csv"):
        raise fail("--format must be geojson or csv")
    _, store = _store()
    data = write_sites(store.list_sites()[0], fmt)
    if output:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    role: Annotated[str, typer.Option(help="admin, manager or reader")] = "reader",
    sites: Annotated[
        str | None, typer.Option("--sites", help="Sites a manager may edit, comma-separated.")
    ] = None,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    from monitor.store.repository import ROLES

    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}")
    _, store = _store()
    key = store.create_key(name, role, [s.strip() for s in sites.split(",")] if sites else [])
    out.print(f"key id {key.id} ({key.role}); secret, shown once: [bold]{key.secret}[/]")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    _, store = _store()
    table = Table(title="API keys")
    for col in ("id", "name", "role", "prefix", "sites", "created", "revoked"):
        table.add_column(col)
    for k in store.list_keys():
        table.add_row(
            k.id,
            k.name,
            k.role,
            k.prefix + "…",
            ",".join(k.site_ids),
            str(k.created_at)[:19],
            str(k.revoked_at)[:19] if k.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (see `keys list`).")]) -> None:
    """Revoke an API key."""
    _, store = _store()
    if not store.revoke_key(key_id):
        raise fail(f"no live key with id {key_id!r}", 1)
    out.print(f"revoked {key_id}")


@sources_app.command("check")
def sources_check() -> None:
    """Per source: mode, whether it can reach its service, and whether a dataset licence must be accepted."""
    from monitor.sources import SOURCES, check_source

    settings = Settings()
    table = Table(title="Sources")
    for col in ("source", "family", "mode", "reachable", "licence accepted", "message"):
        table.add_column(col)
    worst = 0
    for source_id, info in SOURCES.items():
        result = check_source(source_id, settings)
        mode = settings.source_mode(source_id)
        if mode != "demo" and result.get("reachable") is False:
            worst = 1
        table.add_row(
            source_id,
            info.family,
            mode,
            _yes_no(result.get("reachable")),
            _yes_no(result.get("licence_accepted")),
            str(result.get("message", "")),
        )
    result = _check_projections(settings)
    if settings.projections_mode != "demo" and result.get("reachable") is False:
        worst = 1
    table.add_row(
        "projections",
        "climate projections",
        settings.projections_mode,
        _yes_no(result.get("reachable")),
        _yes_no(result.get("licence_accepted")),
        str(result.get("message", "")),
    )
    out.print(table)
    raise typer.Exit(worst)


def _check_projections(settings: Settings) -> dict:
    """Whether the projections can run in their mode: the configured runs are valid, and the local files
    hold them, or the CDS accepts the credentials and the dataset's licence (CORDEX or CMIP6) is accepted."""
    from monitor.sources.base import SourceError

    mode = settings.projections_mode
    try:
        from monitor.sources import projections as proj

        if mode == "demo":
            return {"reachable": True, "message": "synthetic data (demo models, not Copernicus data)"}
        if mode == "local":
            runs = proj.LocalProjections(settings).runs()
            return {"reachable": True, "message": f"{_runs_text(runs)} in {settings.projections_path}"}
        from monitor.sources.cds_common import CDS, check_remote

        runs = proj.configured_runs(settings)
        dataset = proj.PRODUCTS[settings.projections_dataset]
        result = check_remote(settings, "projections", CDS, dataset)
        return result | {"message": f"{_runs_text(runs)} of {dataset}; {result['message']}"}
    except SourceError as exc:
        return {"reachable": False, "message": str(exc)}


def _runs_text(runs) -> str:
    return f"{len({r.model for r in runs})} model(s) × {len({r.scenario for r in runs})} scenario(s)"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database (HM_DATABASE_URL, default SQLite in the data dir) to the latest schema.

    Idempotent: an up-to-date database is left as it is. Exit 2 when the database cannot be reached or,
    on PostgreSQL, PostGIS is missing.
    """
    from monitor.store.db import DatabaseError, safe_url, schema_status, upgrade

    engine = _engine(Settings())
    try:
        before = schema_status(engine)
        if before.up_to_date:
            out.print(
                f"{safe_url(engine)}: already at the latest schema revision {before.head}",
                soft_wrap=True,
            )
            return
        upgrade(engine)
        after = schema_status(engine)
    except DatabaseError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    start = before.current or "none (empty)"
    out.print(f"{safe_url(engine)}: schema revision {start} → {after.current}", soft_wrap=True)


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and whether it is the latest; exit 1 when an upgrade is due."""
    from monitor.store.db import DatabaseError, safe_url, schema_status

    engine = _engine(Settings())
    try:
        status = schema_status(engine)
    except DatabaseError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    if status.up_to_date:
        out.print(f"{safe_url(engine)}: schema revision {status.current} (latest)", soft_wrap=True)
        return
    out.print(
        f"{safe_url(engine)}: schema revision {status.current or 'none (empty)'}, latest {status.head}; "
        "run `heritage-monitor db upgrade`",
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "NO")


def main() -> None:
    from monitor.memory import tune_memory

    tune_memory()  # first, before any thread starts: see monitor.memory
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pint").setLevel(logging.ERROR)  # xclim redefines units at import: not our concern
    app()


if __name__ == "__main__":
    main()
