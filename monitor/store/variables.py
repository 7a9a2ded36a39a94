"""Columnar store of source variables: daily per-site values in Parquet, one file per source and year.

Layout: `<data_dir>/variables/source=<id>/year=<yyyy>.parquet`, wide (site, time, product_version and one
column per variable). Writing merges into the year file and replaces it atomically, so a rerun replaces
values (preliminary data by final data) instead of duplicating them, and a crash leaves the old file.

Each file records in its Parquet metadata (`heritage` key) the units and provenance of its variables and,
under `time_runs`, the days it holds rows for, per product version (runs of consecutive days). A read
takes its time axis and its `product_version` attribute from these records, not from the selected rows:
the time axis is the union of the recorded days of the year files within [start, end], and the product
versions are those recorded for any of these days. So the axis is known before any row is read, the eager
read and the lazy one (`sites_per_chunk`) give the same cube, and the values computed from it never
depend on the mode. Where the selected sites have rows on every day of the file (the common case) this is
exactly the axis of the rows; a day held only by other sites is a missing value for the selected ones.
Files written before `time_runs` existed have their `time` and `product_version` columns read instead.

With `sites_per_chunk`, `read` returns a dask-backed cube: its site axis is cut into blocks of that many
sites, each block a task that reads only its sites' rows (a pyarrow filter on `site`, bounded by the
block's first and last site so that the files' site order and row-group statistics skip the other row
groups), so a cube larger than memory streams through the computation block by block, on whichever Dask
scheduler computes it.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

KEY = ["site", "time"]
ONE_DAY = np.timedelta64(1, "D")


class VariableStore:
    """Read and write per-site daily source variables under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, source: str) -> Path:
        return self.root / f"source={source}"

    def _file(self, source: str, year: int) -> Path:
        return self._dir(source) / f"year={year:04d}.parquet"

    def write(self, source: str, cube: xr.Dataset) -> int:
        """Merge a (site, time) cube into the store; returns the number of (site, day) rows written."""
        if cube.sizes.get("time", 0) == 0 or cube.sizes.get("site", 0) == 0:
            return 0
        data_vars = [v for v in cube.data_vars if set(cube[v].dims) == {"site", "time"}]
        frame = cube[data_vars].transpose("site", "time").to_dataframe().reset_index()
        frame = frame[[*KEY, *data_vars]]
        frame["site"] = frame["site"].astype(str)
        frame["product_version"] = str(cube.attrs.get("product_version", ""))
        units = {v: str(cube[v].attrs.get("units", "")) for v in data_vars}
        meta = {
            "units": units,
            "product": str(cube.attrs.get("product", "")),
            "attribution": str(cube.attrs.get("attribution", "")),
            "synthetic": str(cube.attrs.get("synthetic", "false")),
        }
        self._dir(source).mkdir(parents=True, exist_ok=True)
        years = frame["time"].dt.year
        for year in np.unique(years):
            self._merge_year(source, int(year), frame[years == year], meta)
        return len(frame)

    def _merge_year(self, source: str, year: int, new: pd.DataFrame, meta: dict) -> None:
        path = self._file(source, year)
        if path.exists():
            old = pq.read_table(path).to_pandas()
            old_meta = json.loads((pq.read_schema(path).metadata or {}).get(b"heritage", b"{}"))
            meta = {**old_meta, **meta, "units": {**old_meta.get("units", {}), **meta["units"]}}
            merged = pd.concat([old, new], ignore_index=True)
            if old.empty or new.empty or new["time"].min() <= old["time"].max():
                # new values win; variables absent from `new` keep their old values
                merged = merged.groupby(KEY, sort=False, as_index=False).last()
            # else days after every stored one (a daily refresh): no (site, day) is in both
        else:
            merged = new
        merged = merged.sort_values(KEY, kind="stable").reset_index(drop=True)
        meta = {**meta, "time_runs": _time_runs(merged)}  # of the merged rows: what the file holds
        table = pa.Table.from_pandas(merged, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"heritage": json.dumps(meta).encode()}
        )
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    def _files(self, source: str, start: date | None, end: date | None) -> list[Path]:
        """The year files of a source that may hold days of [start, end], oldest first."""
        folder = self._dir(source)
        files = sorted(folder.glob("year=*.parquet")) if folder.exists() else []
        if start or end:
            lo = start.year if start else -1
            hi = end.year if end else 99999
            files = [f for f in files if lo <= int(f.stem.split("=")[1]) <= hi]
        return files

    def read(
        self,
        source: str,
        site_ids: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
        variables: Sequence[str] | None = None,
        sites_per_chunk: int | None = None,
    ) -> xr.Dataset:
        """The stored values as a (site, time) cube; units and provenance in attrs.

        With `sites_per_chunk`, the cube is dask-backed, in blocks of that many sites (time in one block):
        building it reads no row, each block reads only its own sites' rows when computed.
        """
        files = self._files(source, start, end)
        if not files:
            return xr.Dataset(
                coords={"site": np.array([], dtype=object), "time": np.array([], "datetime64[ns]")}
            )
        plan = _Plan.of(files, start, end, variables)
        if sites_per_chunk is None:
            frame = plan.rows(None if site_ids is None else list(site_ids))
            sites = _site_axis(site_ids, frame["site"])
            blocks = plan.block(frame, sites)
        else:
            if sites_per_chunk < 1:
                raise ValueError(f"sites_per_chunk must be at least 1, not {sites_per_chunk}")
            sites = _site_axis(site_ids, plan.sites() if site_ids is None else None)
            blocks = plan.lazy_blocks(sites, sites_per_chunk)
        units = plan.meta.get("units", {})
        cube = xr.Dataset(
            {
                name: (("site", "time"), blocks[i], {"units": units.get(name, "")})
                for i, name in enumerate(plan.names)
            },
            coords={"site": sites, "time": plan.times},
        )
        cube.attrs.update(
            source=source,
            product=plan.meta.get("product", ""),
            attribution=plan.meta.get("attribution", ""),
            synthetic=plan.meta.get("synthetic", "false"),
            product_version=",".join(plan.versions),
        )
        return cube

    def nbytes(
        self,
        source: str,
        n_sites: int,
        start: date | None = None,
        end: date | None = None,
        variables: Sequence[str] | None = None,
    ) -> int:
        """Bytes of the float64 values of the cube `read` builds for `n_sites` sites (from file metadata,
        reading no row), to decide whether a cube fits in memory before reading it."""
        files = self._files(source, start, end)
        if not files:
            return 0
        plan = _Plan.of(files, start, end, variables)
        return 8 * n_sites * len(plan.times) * len(plan.names)

    def any_values(
        self,
        source: str,
        site_ids: Sequence[str],
        start: date | None = None,
        end: date | None = None,
        variables: Sequence[str] | None = None,
    ) -> bool:
        """Whether any stored row of these sites within [start, end] holds a value (not missing, not NaN)
        of any of `variables` (default: all). A scan that stops at the first such row, so checking a cube
        larger than memory for data costs a few row groups, not a pass over the cube."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        files = self._files(source, start, end)
        wanted = [str(s) for s in site_ids]
        if not files or not wanted:
            return False
        plan = _Plan.of(files, start, end, variables)
        # the bounds let the row groups' statistics skip the others (`isin` alone does not)
        sites = (
            pc.field("site").isin(wanted)
            & (pc.field("site") >= min(wanted))
            & (pc.field("site") <= max(wanted))
        )
        for path in files:
            present = [v for v in plan.names if v in _layout(path).names]
            if not present:
                continue
            has_value = functools.reduce(
                lambda a, b: a | b, [pc.field(v).is_valid() & ~pc.is_nan(pc.field(v)) for v in present]
            )
            where = sites & has_value
            if start:
                where &= pc.field("time") >= pa.scalar(pd.Timestamp(start))
            if end:
                where &= pc.field("time") <= pa.scalar(pd.Timestamp(end))
            if ds.dataset(path, format="parquet").head(1, columns=["site"], filter=where).num_rows:
                return True
        return False

    def variables(self, source: str) -> list[str]:
        """Names of the variables stored for a source."""
        files = sorted(self._dir(source).glob("year=*.parquet"))
        if not files:
            return []
        return [n for n in pq.read_schema(files[-1]).names if n not in (*KEY, "product_version")]


def _time_runs(frame: pd.DataFrame) -> dict[str, list[list[str]]]:
    """The days `frame` holds rows for, per product version, as runs [first, last] of consecutive days."""
    times = frame["time"].to_numpy().astype("datetime64[s]")
    labels = frame["product_version"] if "product_version" in frame else pd.Series("", index=frame.index)
    codes, versions = pd.factorize(labels.fillna(""))  # a few versions per file
    runs: dict[str, list[list[str]]] = {}
    for code, version in enumerate(versions):
        days = np.sort(pd.unique(times[codes == code]))
        breaks = np.flatnonzero(np.diff(days) != ONE_DAY)
        firsts = np.datetime_as_string(days[np.r_[0, breaks + 1]], unit="auto")
        lasts = np.datetime_as_string(days[np.r_[breaks, len(days) - 1]], unit="auto")
        runs[str(version)] = [[str(a), str(b)] for a, b in zip(firsts, lasts, strict=True)]
    return runs


@dataclass(frozen=True)
class _Layout:
    """What a year file's footer tells without reading a row: columns, metadata, days per version."""

    names: tuple[str, ...]
    meta: dict
    days: dict[str, np.ndarray]  # product version → its days (datetime64[s])
    time_dtype: np.dtype


def _layout(path: Path) -> _Layout:
    """The layout of a year file, cached until the file is replaced."""
    return _cached_layout(str(path), _stamp(path))


def _stamp(path: Path) -> tuple[int, int, int]:
    """Inode, modification time and size: they change when a write replaces the file."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=4096)
def _cached_layout(path: str, _stamp: tuple[int, int, int]) -> _Layout:
    schema = pq.read_schema(path)
    meta = json.loads((schema.metadata or {}).get(b"heritage", b"{}"))
    runs = meta.pop("time_runs", None)
    if runs is None:  # written before the days were recorded: read the two columns that tell them
        columns = [c for c in ("time", "product_version") if c in schema.names]
        runs = _time_runs(pq.read_table(path, columns=columns).to_pandas())
    days = {
        version: np.unique(
            np.concatenate(
                [np.arange(np.datetime64(a, "s"), np.datetime64(b, "s") + ONE_DAY, ONE_DAY) for a, b in pairs]
                or [np.array([], "datetime64[s]")]
            )
        )
        for version, pairs in runs.items()
    }
    time_type = schema.field("time").type
    unit = time_type.unit if pa.types.is_timestamp(time_type) else "ns"
    return _Layout(tuple(schema.names), meta, days, np.dtype(f"datetime64[{unit}]"))


@dataclass(frozen=True)
class _Plan:
    """How to read a window of a source's year files: the cube's time axis, variables and provenance
    (all from the files' metadata), and the columns and filters of each file's read."""

    files: tuple[tuple[str, tuple[str, ...]], ...]  # (path, columns to read)
    stamp: tuple  # the files' identities: a replaced file gives new task keys
    start: date | None
    end: date | None
    names: list[str]
    times: np.ndarray
    versions: list[str]
    meta: dict

    @classmethod
    def of(
        cls, files: Sequence[Path], start: date | None, end: date | None, variables: Sequence[str] | None
    ) -> _Plan:
        layouts = [_layout(f) for f in files]
        stored = [n for lay in layouts for n in lay.names if n not in (*KEY, "product_version")]
        names = list(dict.fromkeys(stored if variables is None else [v for v in variables if v in stored]))
        lo = np.datetime64(pd.Timestamp(start), "s") if start else np.datetime64("0001-01-01", "s")
        hi = np.datetime64(pd.Timestamp(end), "s") if end else np.datetime64("9999-12-31", "s")
        times, versions = [], set()
        for lay in layouts:
            for version, days in lay.days.items():
                inside = days[(days >= lo) & (days <= hi)]
                if inside.size:
                    times.append(inside)
                    versions.add(version)
        axis = np.unique(np.concatenate(times)) if times else np.array([], "datetime64[s]")
        columns = [tuple(c for c in (*KEY, *names) if c in lay.names) for lay in layouts]
        stamp = tuple((str(f), *_stamp(f)) for f in files)
        return cls(
            files=tuple(zip(map(str, files), columns, strict=True)),
            stamp=stamp,
            start=start,
            end=end,
            names=names,
            times=axis.astype(layouts[-1].time_dtype),
            versions=sorted(versions),
            meta=layouts[-1].meta,
        )

    def _filters(self, sites: list[str] | None) -> list[tuple] | None:
        filters: list[tuple] = []
        if sites is not None:
            filters.append(("site", "in", sites))
            if sites:  # bounds let the row groups' statistics skip the others (`in` alone does not)
                filters += [("site", ">=", min(sites)), ("site", "<=", max(sites))]
        if self.start:
            filters.append(("time", ">=", pd.Timestamp(self.start)))
        if self.end:
            filters.append(("time", "<=", pd.Timestamp(self.end)))
        return filters or None

    def rows(self, sites: list[str] | None) -> pd.DataFrame:
        """The stored rows of `sites` (None: every site) within the window, from every file."""
        if sites is not None and not sites:
            return pd.DataFrame(columns=[*KEY, *self.names])
        filters = self._filters(sites)
        # the site column as read: dictionary-encoded (each distinct id once, the rows as codes), so that
        # neither the read nor `block` turns millions of rows into strings; the files' tables are joined
        # by Arrow, which unifies their dictionaries into one categorical (a variable missing from a
        # file is null there)
        tables = [
            pq.read_table(path, columns=list(cols), filters=filters, read_dictionary=["site"])
            for path, cols in self.files
        ]
        return pa.concat_tables(tables, promote_options="default").to_pandas()

    def sites(self) -> pd.Series:
        """The site column of the rows within the window (for a read of every site)."""
        filters = self._filters(None)
        tables = [pq.read_table(path, columns=["site"], filters=filters) for path, _ in self.files]
        return pd.concat([t.to_pandas()["site"] for t in tables], ignore_index=True)

    def block(self, frame: pd.DataFrame, sites: np.ndarray) -> np.ndarray:
        """Rows → a (variable, site, time) float64 block, by index arithmetic (no unstack)."""
        values = np.full((len(self.names), len(sites), len(self.times)), np.nan)
        if frame.empty or not len(self.times):
            return values
        site_pos = _positions(frame["site"], pd.Index(sites))
        stamps = frame["time"].to_numpy().astype(self.times.dtype)
        time_pos = np.minimum(np.searchsorted(self.times, stamps), len(self.times) - 1)
        keep = np.flatnonzero((site_pos >= 0) & (self.times[time_pos] == stamps))
        cells = site_pos[keep] * len(self.times) + time_pos[keep]  # flat (site, time) index, once for all
        for i, name in enumerate(self.names):
            if name in frame:
                column = frame[name].to_numpy(dtype=float, na_value=np.nan)
                values[i].reshape(-1)[cells] = column[keep]
        return values

    def read_block(self, sites: list[str]) -> np.ndarray:
        """The (variable, site, time) block of `sites`, reading only their rows (one task of a lazy read)."""
        return self.block(self.rows(sites), np.asarray(sites, dtype=object))

    def lazy_blocks(self, sites: np.ndarray, sites_per_chunk: int) -> list[Any]:
        """Per variable, a dask array over (site, time) in blocks of `sites_per_chunk` sites; nothing read."""
        import dask
        import dask.array as da

        plan = dask.delayed(self, pure=True)  # one node of the graph, shared by every block's task
        pieces = []
        for first in range(0, len(sites), sites_per_chunk):  # one task per block of sites
            chunk = [str(s) for s in sites[first : first + sites_per_chunk]]
            task = dask.delayed(_read_block, pure=True)(plan, chunk)
            shape = (len(self.names), len(chunk), len(self.times))
            pieces.append(da.from_delayed(task, shape=shape, dtype=float))
        if not pieces:
            return [da.empty((0, len(self.times)), chunks=(0, -1)) for _ in self.names]
        stack = da.concatenate(pieces, axis=1)
        return [stack[i] for i in range(len(self.names))]

    def __dask_tokenize__(self) -> tuple:
        return (self.stamp, self.start, self.end, self.names, self.times.tobytes())


def _positions(column: pd.Series, index: pd.Index) -> np.ndarray:
    """Position in `index` of each row's site (-1 where absent); a categorical column is looked up once
    per distinct site, its rows by their codes."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        found = np.append(index.get_indexer(column.cat.categories), -1)  # code -1 (missing) → -1
        return found[codes]
    return index.get_indexer(column)


def _read_block(plan: _Plan, sites: list[str]) -> np.ndarray:
    """Module-level task function (picklable for a cluster's workers)."""
    return plan.read_block(sites)


def _site_axis(site_ids: Sequence[str] | None, stored: pd.Series | None) -> np.ndarray:
    """The requested sites in their order, or the sorted distinct sites of the rows read."""
    if site_ids is not None:
        return np.asarray(list(site_ids), dtype=object)
    assert stored is not None
    return np.asarray(sorted(stored.unique()), dtype=object)
