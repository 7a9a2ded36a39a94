"""Property-based robustness: schemathesis over the whole OpenAPI schema, with an admin key and without.

Every generated request must be answered without a 5xx, with a documented status code and content type, and
a body conforming to the schema. The app runs on SQLite in a temporary folder (the HTTP layer is what is
tested), so the module is skipped in the PostgreSQL pass. Figures: 27 operations × 2 callers, up to
`MAX_EXAMPLES` generated requests each (≥ 1,000 in total, asserted at the end).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from monitor.settings import Settings
from monitor.store.db import make_engine, upgrade
from monitor.store.repository import Store
from tests.api.conftest import seed

pytestmark = pytest.mark.skipif(
    os.environ.get("HM_DATABASE_URL", "").startswith("postgresql"),
    reason="HTTP-layer fuzzing runs once, on SQLite",
)
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

_tmp = Path(tempfile.mkdtemp(prefix="hm-fuzz-"))
_settings = Settings(
    data_dir=_tmp / "data",
    database_url=f"sqlite:///{_tmp / 'heritage.db'}",
    demo_end=date(2026, 11, 15),
    rate_limit_per_minute=0,
    rate_limit_keyed_per_minute=0,
    _env_file=None,
)
_engine = make_engine(_settings.resolved_database_url)
upgrade(_engine)
_store = Store(_engine)
seed(_store, _settings)
ADMIN = {"Authorization": f"Bearer {_store.create_key('fuzz', 'admin').secret}"}
APP = create_app(_settings, _store)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
STATS = {"requests": 0, "started": time.monotonic()}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.parametrize("caller", ["admin", "anonymous"])
def test_api_conforms_to_its_schema(case, caller):
    headers = ADMIN if caller == "admin" else {}
    STATS["requests"] += 1
    case.call_and_validate(headers=headers, checks=CHECKS)


def test_fuzzing_volume():
    """Runs after the fuzzing above (pytest keeps file order): enough requests were made."""
    elapsed = time.monotonic() - STATS["started"]
    print(f"schemathesis: {STATS['requests']} requests in {elapsed:.0f} s")
    assert STATS["requests"] >= 1000
