"""Process-wide allocator settings for the pipeline's large, short-lived arrays.

A daily pass over 100,000 sites allocates and frees arrays of tens to hundreds of MiB many times over
(fetched cubes, stored variables, indicator values, the rows of the upsert). With the allocators'
defaults each such array is fresh memory from the kernel, which zeroes every page of it, and goes back to
the kernel when freed:

- glibc serves every allocation above its mmap threshold (at most 32 MiB) with a new mapping, and a
  thread other than the main one (the pass runs in its own thread, under its time budget) allocates from
  an arena of at most 64 MiB, so anything larger is mapped afresh whatever the threshold;
- Arrow's default pool (mimalloc) purges freed pages back to the kernel.

At 100,000 sites the kernel time this cost grew faster than the sites (×15 from 10,000 to 100,000). With
one arena for every thread, thresholds of 1 GiB and Arrow on the system allocator, freed memory is kept
and reused instead: the process keeps up to its peak working set, which is what it needs again the next
day anyway.

`tune_memory()` runs once at the start of the command-line program. A `MALLOC_*` environment variable
the operator set wins over the matching setting here; `ARROW_DEFAULT_MEMORY_POOL` likewise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h) and the values set, with the environment variable of each.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
GLIBC_SETTINGS: tuple[tuple[str, int, int], ...] = (
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, 1),
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 1 << 30),
    ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, 1 << 30),
)


def tune_memory() -> dict[str, object]:
    """Apply the settings above to this process; what was set (for logs and tests).

    Does nothing where they do not apply: another C library than glibc, or pyarrow's pool already chosen
    by the environment."""
    applied: dict[str, object] = {}
    mallopt = _glibc_mallopt()
    if mallopt is not None:
        for variable, parameter, value in GLIBC_SETTINGS:
            if variable not in os.environ and mallopt(parameter, value) == 1:
                applied[variable] = value
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
        applied["arrow_pool"] = pa.default_memory_pool().backend_name
    log.debug("allocator settings: %s", applied)
    return applied


def _glibc_mallopt():
    """glibc's `mallopt`, or None on another platform or C library."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: no such tuning
            return None
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt
