"""Where indicators are computed: in this process, or on the Dask cluster that `HM_DASK_SCHEDULER` names.

A cube read lazily from the variable store (`VariableStore.read(..., sites_per_chunk=n)`, as the pipeline
does with a cluster configured or inputs above `HM_STREAM_ABOVE_MB`) is a graph whose blocks of sites each
read their own rows. `compute` keeps those blocks: each becomes a task that reads its block and computes
the indicator on it in memory, run on the cluster's workers or, with no cluster configured, on dask's
local threaded scheduler; the blocks' results (periods, not days) are gathered here and joined over
sites. The reading and the computation stream block by block: no process holds the whole cube, and any
indicator streams, whether or not its code is dask-aware, with its per-site coordinates (the workers
must see the data dir at the same path). This rests on what every indicator is: a function of each
site's own series, vectorised over sites.

An in-memory cube is computed by `indicators.compute` in this process; with the setting set, it is
chunked over the site dimension (time stays one chunk: the kernels reduce whole series) and sent with the
task graph, so the cluster spreads the computation but the cube was read here. An indicator whose code
cannot run on such a chunked cube is computed in-process instead. Either way the values equal the eager
run's, so the mode never changes what is stored (tests/scale/test_dask.py, tests/scale/test_streaming.py).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import threading
from typing import Any

import numpy as np
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


def is_lazy(cube: xr.Dataset) -> bool:
    """Whether any variable of `cube` is dask-backed (read block by block when computed)."""
    return any(var.chunks is not None for var in cube.variables.values())


def compute(indicator_id: str, cube: xr.Dataset, scheduler: str | None = None, **params: Any) -> xr.DataArray:
    """`indicators.compute(indicator_id, cube, **params)`, on the Dask cluster at `scheduler` if given.

    The result is always an in-memory DataArray with the same values, dims and attrs as the local run.
    A dask-backed cube streams: block by block of sites, on the cluster or dask's local threaded scheduler.
    """
    if "site" in cube.dims and is_lazy(cube):
        return _compute_blocks(indicator_id, cube, scheduler, params)
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


def _compute_blocks(
    indicator_id: str, cube: xr.Dataset, scheduler: str | None, params: dict[str, Any]
) -> xr.DataArray:
    """The indicator of a dask-backed cube, one task per block of sites (the block read, then the indicator
    computed on it in memory); only the blocks' results are gathered here, and joined over sites."""
    import dask

    # whole series in each block (a no-op on the store's blocks; joins of sources may have split time)
    cube = cube.chunk({dim: -1 for dim in cube.dims if dim != "site"}).unify_chunks()
    # per-site parameters (aligned on the cube's sites, as `pipeline.site_parameters` gives) go by block
    per_site = {k: v for k, v in params.items() if isinstance(v, xr.DataArray) and "site" in v.dims}
    fixed = {k: v for k, v in params.items() if k not in per_site}
    bounds = np.cumsum((0, *cube.chunks["site"]))
    tasks = [
        dask.delayed(_indicator_of_block, pure=True)(
            indicator_id,
            cube.isel(site=slice(a, b)),  # a dask collection: the task receives its computed block
            {k: v.isel(site=slice(a, b)) for k, v in per_site.items()},
            fixed,
        )
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    if not tasks:  # no site: nothing to stream
        return indicators.compute(indicator_id, cube.compute(scheduler="sync"), **params)
    if scheduler:
        results = client(scheduler).compute(tasks, sync=True)
    else:
        results = dask.compute(*tasks, scheduler="threads")
    if len(results) == 1:
        return results[0]
    return xr.concat(results, dim="site", coords="different", compat="equals", join="exact")


def _indicator_of_block(
    indicator_id: str, block: xr.Dataset, per_site: dict[str, xr.DataArray], fixed: dict[str, Any]
) -> xr.DataArray:
    """One task of a streamed computation: the indicator over one in-memory block of sites."""
    return indicators.compute(indicator_id, block, **per_site, **fixed)
