"""The command line tells where the dashboard is: `demo` and `serve` print its address."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from monitor import cli


@pytest.fixture
def served(monkeypatch, tmp_path, database_url) -> list[tuple[str, int]]:
    """Settings from the environment on a temporary database; the server itself is not started."""
    for name, value in {
        "HM_DATA_DIR": str(tmp_path / "data"),
        "HM_DATABASE_URL": database_url,
        "HM_DEMO_END": "2026-11-15",
        "HM_DEMO_YEARS": "1",
        # The demo also computes climate projections: short periods keep it to seconds.
        "HM_PROJECTIONS_BASELINE": "1996-2000",
        "HM_PROJECTIONS_PERIODS": "2001-2005",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env file of the working tree
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(cli, "_serve", lambda settings, host, port, **kw: calls.append((host, port)))
    return calls


def test_demo_prints_the_dashboard_url(served):
    result = CliRunner().invoke(cli.app, ["demo", "--port", "8765", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "Dashboard: http://127.0.0.1:8765/\n" in result.output
    assert served == [("0.0.0.0", 8765)]


def test_serve_prints_the_dashboard_url(served):
    result = CliRunner().invoke(cli.app, ["serve", "--port", "8766"])
    assert result.exit_code == 0, result.output
    assert "Dashboard: http://127.0.0.1:8766/ " in result.output
    assert served == [("127.0.0.1", 8766)]
