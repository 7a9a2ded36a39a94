"""The container files run real commands: every Dockerfile CMD/HEALTHCHECK and compose `command:` is a
valid `heritage-monitor` invocation that also runs outside a container, and the env files name only
settings that exist."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from pydantic import SecretStr

from monitor.cli import app
from monitor.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
DEPLOY = REPO / "deploy"
HERITAGE_IMAGE = "heritage-monitor"

# Credentials that are not typed SecretStr but are still secrets of an account.
CREDENTIAL_FIELDS = {"sh_client_id", "smtp_username"}
POSTGRES_ENV = {"POSTGRES_PASSWORD", "PGPASSWORD"}


# --- parsing ---------------------------------------------------------------------------------------


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[tuple[str, str]]] = [[]]
    for line in logical:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), rest.strip()))
    return stages[-1]


def exec_form(text: str) -> list[str]:
    """A JSON exec-form argument list (the only form these files use, so no shell is involved)."""
    argv = json.loads(text)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), text
    return argv


def docker_cmd() -> list[str]:
    cmds = [rest for kw, rest in dockerfile_instructions() if kw == "CMD"]
    assert len(cmds) == 1, "the final stage has exactly one CMD"
    return exec_form(cmds[0])


def docker_healthcheck() -> list[str]:
    checks = [rest for kw, rest in dockerfile_instructions() if kw == "HEALTHCHECK"]
    assert len(checks) == 1, "the final stage has exactly one HEALTHCHECK"
    options, sep, command = checks[0].partition("CMD ")
    assert sep, "HEALTHCHECK ... CMD [...]"
    assert "--start-period" in options and "--timeout" in options
    return exec_form(command)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the `<<: *heritage` merge keys


def heritage_services() -> dict[str, dict]:
    """Services running the Heritage Monitor image (they have a build section)."""
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def healthcheck_argv(test) -> list[str]:
    if isinstance(test, str):
        return shlex.split(test)
    assert test[0] == "CMD", f"exec form expected, got {test[0]}"
    return list(test[1:])


def read_env_file(path: Path, include_commented: bool = False) -> dict[str, str]:
    """NAME=value lines of an env file; with include_commented, also `# NAME=value` examples."""
    values: dict[str, str] = {}
    pattern = re.compile(r"^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
    for line in path.read_text().splitlines():
        m = pattern.match(line.strip())
        if not m or (m.group(1) and not include_commented):
            continue
        values[m.group(2)] = m.group(3)
    return values


# --- heritage-monitor invocations ------------------------------------------------------------------


def cli_entry_point() -> list[str]:
    """The installed console script next to this interpreter (as in the image), else `python -m`."""
    script = Path(sys.executable).parent / "heritage-monitor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]


def resolve(argv: list[str]) -> tuple[list[str], Any, list[str]]:
    """Split `heritage-monitor sub [sub] args...` into the command path, its click command and args."""
    assert argv[0] == "heritage-monitor", f"not a heritage-monitor command: {argv}"
    command = typer.main.get_command(app)
    path, rest = [], list(argv[1:])
    # Duck-typed: typer may build its commands on its own copy of click.
    while hasattr(command, "commands"):
        assert rest, f"{argv} names no subcommand"
        name = rest.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, f"`heritage-monitor {' '.join([*path, name])}` does not exist"
        path.append(name)
        command = sub
    assert path, f"{argv} names no subcommand"
    return path, command, rest


def container_commands() -> list[tuple[str, list[str]]]:
    found = [("Dockerfile CMD", docker_cmd())]
    for name, svc in heritage_services().items():
        assert "command" in svc, f"service {name} names its command"
        command = svc["command"]
        found.append((f"compose {name}", shlex.split(command) if isinstance(command, str) else command))
    return found


COMMANDS = container_commands()


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_container_command_parses(where: str, argv: list[str]) -> None:
    path, command, args = resolve(argv)
    # Full option parsing and validation (unknown options, port range, ...) without running it.
    with command.make_context(f"heritage-monitor {' '.join(path)}", list(args)) as ctx:
        assert ctx.command is command
        if "host" in ctx.params:
            assert ctx.params["host"] == "0.0.0.0", f"{where}: must listen on all interfaces in a container"


@pytest.mark.parametrize("path", sorted({tuple(resolve(argv)[0]) for _, argv in COMMANDS}))
def test_container_command_help_runs_outside_a_container(path: tuple[str, ...]) -> None:
    done = subprocess.run(
        [*cli_entry_point(), *path, "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def test_serve_and_scheduler_options_exist() -> None:
    serve = resolve(["heritage-monitor", "serve"])[1]
    options = {opt for p in serve.params for opt in p.opts}
    assert {"--host", "--port"} <= options
    assert resolve(["heritage-monitor", "scheduler"])[1].name == "scheduler"
    demo = resolve(["heritage-monitor", "demo"])[1]
    assert {"--host", "--port"} <= {opt for p in demo.params for opt in p.opts}


def test_the_image_runs_the_demo_on_all_interfaces() -> None:
    argv = docker_cmd()
    assert argv[:2] == ["heritage-monitor", "demo"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"


def test_compose_runs_api_and_exactly_one_scheduler() -> None:
    services = heritage_services()
    api, scheduler = services["api"], services["scheduler"]
    assert api["command"][:2] == ["heritage-monitor", "serve"]
    assert "replicas" in api["deploy"]
    assert scheduler["command"] == ["heritage-monitor", "scheduler"]
    assert scheduler["deploy"]["replicas"] == 1
    schedulers = [n for n, s in services.items() if s["command"][:2] == ["heritage-monitor", "scheduler"]]
    assert schedulers == ["scheduler"], "one scheduler per database"
    assert scheduler["healthcheck"] == {"disable": True}, "the image's HTTP check does not fit the scheduler"


# --- health checks ---------------------------------------------------------------------------------


def healthchecks() -> list[tuple[str, list[str], list[str]]]:
    """(where, check argv, argv of the command it checks)."""
    found = [("Dockerfile", docker_healthcheck(), docker_cmd())]
    for name, svc in heritage_services().items():
        check = svc.get("healthcheck", {})
        if check and not check.get("disable"):
            found.append((f"compose {name}", healthcheck_argv(check["test"]), svc["command"]))
    return found


def check_url(check: list[str]) -> str:
    assert check[:2] == ["python", "-c"], "health checks use the image's Python (no curl in slim images)"
    compile(check[2], "<healthcheck>", "exec")
    urls = re.findall(r"https?://[^'\"]+", check[2])
    assert len(urls) == 1, check[2]
    return urls[0]


HEALTHCHECKS = healthchecks()


@pytest.mark.parametrize(("where", "check", "argv"), HEALTHCHECKS, ids=[w for w, _, _ in HEALTHCHECKS])
def test_healthcheck_asks_ready_on_the_served_port(where: str, check: list[str], argv: list[str]) -> None:
    from api.routes import health

    url = urlsplit(check_url(check))
    assert url.hostname == "127.0.0.1"
    assert url.path == "/ready"
    assert str(url.port) == argv[argv.index("--port") + 1], f"{where}: checks the port the API listens on"
    assert "/ready" in {getattr(r, "path", None) for r in health.router.routes}


def test_api_service_is_healthchecked() -> None:
    assert any(where == "compose api" for where, _, _ in HEALTHCHECKS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_answers_the_container_healthcheck(tmp_path) -> None:
    """`heritage-monitor serve` as compose runs it (on a free port), probed by the image's HEALTHCHECK."""
    port = free_port()
    env = {**os.environ, "HM_DATA_DIR": str(tmp_path / "data"), "HM_DATABASE_URL": ""}
    argv = heritage_services()["api"]["command"]
    args = [("127.0.0.1" if a == "0.0.0.0" else str(port) if a == "8000" else a) for a in argv[1:]]
    server = subprocess.Popen(
        [*cli_entry_point(), *args], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        for where, check, _ in HEALTHCHECKS:
            code = check[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            deadline = time.monotonic() + 120
            while True:
                probe = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
                if probe.returncode == 0:
                    break
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, f"{where}: /ready never answered 200"
                time.sleep(1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_scheduler_and_migrate_commands_start_outside_a_container(tmp_path) -> None:
    env = {**os.environ, "HM_DATA_DIR": str(tmp_path / "data"), "HM_DATABASE_URL": ""}
    services = heritage_services()
    migrate = subprocess.run(
        [*cli_entry_point(), *services["migrate"]["command"][1:]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "data" / "heritage.db").exists()
    scheduler = subprocess.Popen(
        [*cli_entry_point(), *services["scheduler"]["command"][1:]],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = scheduler.stdout.readline()
        assert "scheduler starting" in line, line
        time.sleep(3)
        assert scheduler.poll() is None, scheduler.stdout.read()  # holds the lease and keeps running
    finally:
        scheduler.send_signal(signal.SIGINT)
        try:
            scheduler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            scheduler.wait()


# --- env files --------------------------------------------------------------------------------------


def secret_fields() -> set[str]:
    return {
        name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
    } | CREDENTIAL_FIELDS


def test_heritage_env_names_only_existing_settings() -> None:
    names = read_env_file(DEPLOY / "heritage.env.example", include_commented=True)
    fields = Settings.model_fields
    unknown = [n for n in names if not n.startswith("HM_") or n[3:].lower() not in fields]
    assert not unknown, f"not settings: {unknown}"


def test_heritage_env_lists_every_secret_empty() -> None:
    values = read_env_file(DEPLOY / "heritage.env.example")
    for field in sorted(secret_fields()):
        name = f"HM_{field.upper()}"
        assert name in values, f"{name} missing from deploy/heritage.env.example"
        assert values[name] == "", f"{name} must be empty in the example"
    assert {"cds_key", "ads_key", "ewds_key", "sh_client_secret", "smtp_password"} <= secret_fields()


def test_heritage_env_example_values_are_valid_settings(monkeypatch) -> None:
    """The example, with its commented examples switched on too, loads as settings."""
    for name in list(os.environ):
        if name.startswith("HM_"):
            monkeypatch.delenv(name)
    values = read_env_file(DEPLOY / "heritage.env.example", include_commented=True)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    for field in secret_fields():
        value = getattr(settings, field)
        assert not (value.get_secret_value() if isinstance(value, SecretStr) else value)


def test_postgres_env_names_the_password_only() -> None:
    values = read_env_file(DEPLOY / "postgres.env.example", include_commented=True)
    assert set(values) == POSTGRES_ENV
    assert all(v == "" for v in values.values())


def test_compose_env_files_have_examples_and_environment_names_settings() -> None:
    for name, svc in compose()["services"].items():
        for entry in svc.get("env_file", []):
            path = entry if isinstance(entry, str) else entry["path"]
            assert (REPO / f"{path}.example").exists(), f"{name}: {path}.example is missing"
        if "build" not in svc:
            continue
        for var in svc.get("environment", {}):
            assert var.startswith("HM_") and var[3:].lower() in Settings.model_fields, var
        url = svc["environment"]["HM_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and ":" not in url.split("//")[1].split("@")[0], (
            "no password in HM_DATABASE_URL (PGPASSWORD comes from deploy/postgres.env)"
        )


# --- image and compose hygiene ------------------------------------------------------------------------


def test_dockerfile_is_pinned_non_root_and_keeps_data_in_the_volume() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), "pinned base image"
    final = dockerfile_instructions()
    users = [rest for kw, rest in final if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    env = " ".join(rest for kw, rest in final if kw == "ENV")
    data_dir = re.search(r"HM_DATA_DIR=(\S+)", env).group(1)
    for svc in heritage_services().values():
        assert svc["environment"]["HM_DATA_DIR"] == data_dir
        assert any(v.split(":")[1] == data_dir for v in svc["volumes"]), "the data dir is a volume"


def test_compose_images_are_pinned_and_dependencies_wait_for_health() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    assert services["db"]["image"].startswith("postgis/postgis:")
    assert "healthcheck" in services["db"]
    assert any(v.startswith("pgdata:") for v in services["db"]["volumes"])
    for name in ("api", "scheduler", "migrate"):
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("api", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("dask-scheduler", "dask-worker"):
        assert services[name]["profiles"] == ["dask"]


def test_dockerignore_keeps_secrets_out_and_sources_in() -> None:
    patterns = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {"**/.git", "**/.venv", ".env", "**/*.env", "heritage-data"} <= patterns
    copied = {"pyproject.toml", "README.md", "monitor", "sites", "indicators", "api"}
    assert not copied & patterns
