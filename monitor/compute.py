"""Where indicators are computed: in this process, or on the Dask cluster that `HM_DASK_SCHEDULER` names.

With the setting unset, `compute` is `indicators.compute` on the in-memory cube. With it set, the process
connects one `distributed.Client` to that scheduler (once per process and address, closed at exit), chunks
the cube over the site dimension (time stays one chunk: the kernels reduce whole series) and computes the
indicator on the cluster's workers, chunk by chunk. The cube is read into this process first and sent with
the task graph, so the cluster spreads the computation, not the reading of the stored data. The
indicator functions are the same either way: they are vectorised over sites and dask-aware, so the values
are identical (tests/scale/test_dask.py). An indicator whose code cannot run on a chunked cube is computed
in-process instead, so the setting never changes what is stored.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
from typing import Any

import xarray as xr

import indicators
from indicators import IndicatorError

log = logging.getLogger(__name__)

#: Sites per chunk at most: a 30-year float32 daily series is 44 kB, so a chunk of six variables stays
#: near 0.5 GB however large the cube.
MAX_SITES_PER_CHUNK = 2000

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()


def client(address: str) -> Any:
    """The `distributed.Client` of this process for `address`, connected on first use, closed at exit."""
    with _LOCK:
        existing = _CLIENTS.get(address)
        if existing is not None and existing.status not in ("closed", "closing"):
            return existing
        from distributed import Client  # imported only when a cluster is configured

        log.info("connecting to the Dask scheduler at %s", address)
        created = Client(address, set_as_default=False)
        _CLIENTS[address] = created
        return created


@atexit.register
def close() -> None:
    """Close every client this process opened (runs at exit; safe to call twice)."""
    with _LOCK:
        for address, c in list(_CLIENTS.items()):
            try:
                c.close()
            except Exception:  # closing at exit must never raise
                log.debug("closing the Dask client of %s failed", address, exc_info=True)
            _CLIENTS.pop(address, None)


def site_chunk(n_sites: int, n_workers: int) -> int:
    """Sites per chunk: two chunks per worker thread to balance the load, at most `MAX_SITES_PER_CHUNK`."""
    if n_sites <= 0:
        return 1
    return max(1, min(MAX_SITES_PER_CHUNK, math.ceil(n_sites / max(1, 2 * n_workers))))


def chunk_sites(cube: xr.Dataset, n_workers: int) -> xr.Dataset:
    """`cube` as a dask-backed Dataset chunked over `site` (time and any other dim in one chunk)."""
    size = site_chunk(cube.sizes.get("site", 0), n_workers)
    return cube.chunk({dim: (size if dim == "site" else -1) for dim in cube.dims})


def compute(indicator_id: str, cube: xr.Dataset, scheduler: str | None = None, **params: Any) -> xr.DataArray:
    """`indicators.compute(indicator_id, cube, **params)`, on the Dask cluster at `scheduler` if given.

    The result is always an in-memory DataArray with the same values, dims and attrs as the local run.
    """
    if not scheduler or "site" not in cube.dims:
        return indicators.compute(indicator_id, cube, **params)
    c = client(scheduler)
    threads = sum(c.nthreads().values()) or 1
    lazy = chunk_sites(cube, threads)
    try:
        result = indicators.compute(indicator_id, lazy, **params)
        if result.chunks is None:  # computed eagerly (the function called .values): nothing to send
            return result
        return c.compute(result, sync=True)
    except IndicatorError:
        raise  # bad input fails the same way in-process: no point retrying
    except (ValueError, TypeError, NotImplementedError) as exc:
        log.info("%s cannot run on a chunked cube (%s); computing it in-process", indicator_id, exc)
        return indicators.compute(indicator_id, cube, **params)
