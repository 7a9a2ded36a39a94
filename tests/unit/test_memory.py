"""The allocator settings of the command-line program (monitor.memory)."""

import pyarrow as pa
import pytest

from monitor import memory


@pytest.fixture
def arrow_pool():
    """Restore Arrow's default pool after the test."""
    pool = pa.default_memory_pool()
    yield
    pa.set_memory_pool(pool)


def test_glibc_and_arrow_settings_are_applied_unless_the_environment_names_them(monkeypatch, arrow_pool):
    if memory._glibc_mallopt() is None:
        pytest.skip("not glibc: no mallopt to call")
    for variable, _, _ in memory.GLIBC_SETTINGS:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    applied = memory.tune_memory()
    assert applied == {
        "MALLOC_ARENA_MAX": 1,
        "MALLOC_MMAP_THRESHOLD_": 1 << 30,
        "MALLOC_TRIM_THRESHOLD_": 1 << 30,
        "arrow_pool": "system",
    }
    assert pa.default_memory_pool().backend_name == "system"

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    applied = memory.tune_memory()
    assert "MALLOC_ARENA_MAX" not in applied and "arrow_pool" not in applied
    assert "MALLOC_MMAP_THRESHOLD_" in applied
