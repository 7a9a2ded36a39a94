"""Columnar store of source variables: daily per-site values in Parquet, one file per source and year.

Layout: `<data_dir>/variables/source=<id>/year=<yyyy>.parquet`, wide (site, time, product_version and one
column per variable). Writing merges into the year file and replaces it atomically, so a rerun replaces
values (preliminary data by final data) instead of duplicating them, and a crash leaves the old file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

KEY = ["site", "time"]


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
            # new values win; variables absent from `new` keep their old values
            merged = merged.groupby(KEY, sort=False, as_index=False).last()
        else:
            merged = new
        merged = merged.sort_values(KEY, kind="stable").reset_index(drop=True)
        table = pa.Table.from_pandas(merged, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"heritage": json.dumps(meta).encode()}
        )
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    def read(
        self,
        source: str,
        site_ids: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
        variables: Sequence[str] | None = None,
    ) -> xr.Dataset:
        """The stored values as a (site, time) cube; units and provenance in attrs."""
        folder = self._dir(source)
        files = sorted(folder.glob("year=*.parquet")) if folder.exists() else []
        if start or end:
            lo = start.year if start else -1
            hi = end.year if end else 99999
            files = [f for f in files if lo <= int(f.stem.split("=")[1]) <= hi]
        if not files:
            return xr.Dataset(
                coords={"site": np.array([], dtype=object), "time": np.array([], "datetime64[ns]")}
            )
        meta = json.loads((pq.read_schema(files[-1]).metadata or {}).get(b"heritage", b"{}"))
        columns = None if variables is None else [*KEY, "product_version", *variables]
        filters = [("site", "in", list(site_ids))] if site_ids is not None else None
        frames = []
        for f in files:
            names = pq.read_schema(f).names
            cols = None if columns is None else [c for c in columns if c in names]
            frames.append(pq.read_table(f, columns=cols, filters=filters).to_pandas())
        frame = pd.concat(frames, ignore_index=True)
        if start:
            frame = frame[frame["time"] >= pd.Timestamp(start)]
        if end:
            frame = frame[frame["time"] <= pd.Timestamp(end)]
        versions = (
            sorted(set(frame.pop("product_version").dropna().astype(str)))
            if "product_version" in frame
            else []
        )
        cube = _to_cube(frame, list(site_ids) if site_ids is not None else None)
        for name in cube.data_vars:
            cube[name].attrs["units"] = meta.get("units", {}).get(name, "")
        cube.attrs.update(
            source=source,
            product=meta.get("product", ""),
            attribution=meta.get("attribution", ""),
            synthetic=meta.get("synthetic", "false"),
            product_version=",".join(versions),
        )
        return cube

    def variables(self, source: str) -> list[str]:
        """Names of the variables stored for a source."""
        files = sorted(self._dir(source).glob("year=*.parquet"))
        if not files:
            return []
        return [n for n in pq.read_schema(files[-1]).names if n not in (*KEY, "product_version")]


def _to_cube(frame: pd.DataFrame, site_ids: list[str] | None) -> xr.Dataset:
    """Long (site, time, variables…) rows → a (site, time) Dataset, by index arithmetic (no unstack)."""
    sites = np.asarray(site_ids if site_ids is not None else sorted(frame["site"].unique()), dtype=object)
    times = np.unique(frame["time"].to_numpy())
    site_pos = pd.Index(sites).get_indexer(frame["site"])
    time_pos = np.searchsorted(times, frame["time"].to_numpy())
    keep = site_pos >= 0
    data = {}
    for name in frame.columns.drop(KEY):
        values = np.full((len(sites), len(times)), np.nan)
        values[site_pos[keep], time_pos[keep]] = frame[name].to_numpy(dtype=float, na_value=np.nan)[keep]
        data[name] = (("site", "time"), values)
    return xr.Dataset(data, coords={"site": sites, "time": times})
