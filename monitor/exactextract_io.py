"""exactextract's polygon input and output as arrays: the polygons go in as WKB, the results come out as
per-polygon arrays.

exactextract's own GeoPandas source hands every polygon over as a GeoJSON string built from
`__geo_interface__`, and its pandas writer copies every result into a JSON feature then a DataFrame: at
100,000 polygons that was over half of the weights' time. These use its documented extension points (a
`FeatureSource` and a `Writer`), with the same processing in between.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import shapely
from exactextract import exact_extract
from exactextract.feature import Feature, FeatureSource
from exactextract.writer import Writer
from shapely.geometry.base import BaseGeometry


class _WkbFeature(Feature):
    """One polygon as WKB, with the fields exactextract sets on it."""

    def __init__(self, wkb: bytes | None = None) -> None:
        Feature.__init__(self)
        self._wkb = wkb
        self._fields: dict[str, object] = {}

    def geometry(self) -> bytes | None:
        return self._wkb

    def set_geometry(self, wkb: bytes) -> None:
        self._wkb = wkb

    def set_geometry_format(self) -> str:
        return "wkb"

    def get(self, name: str) -> object:
        return self._fields[name]

    def set(self, name: str, value: object) -> None:
        self._fields[name] = value

    def fields(self) -> list[str]:
        return list(self._fields)


class _WkbSource(FeatureSource):
    """Polygons given as WKB (one `shapely.to_wkb` call for all), in their order."""

    def __init__(self, wkb: np.ndarray, srs_wkt: str) -> None:
        super().__init__()
        self._wkb = wkb
        self._srs_wkt = srs_wkt

    def count(self) -> int:
        return len(self._wkb)

    def __iter__(self) -> Iterator[_WkbFeature]:
        for wkb in self._wkb:
            yield _WkbFeature(wkb)

    def srs_wkt(self) -> str:
        return self._srs_wkt


class _ArrayWriter(Writer):
    """Keeps each operation's value of every polygon, in the order they are written."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list] = {}

    def add_operation(self, op) -> None:
        self.values[op.name] = []

    def add_column(self, col_name: str) -> None:
        self.values[col_name] = []

    def write(self, feature) -> None:
        out = _WkbFeature()
        feature.copy_to(out)
        for name, values in self.values.items():
            values.append(out._fields.get(name))

    def features(self) -> dict[str, list]:
        return self.values


def cell_coverage(
    raster, geoms: Sequence[BaseGeometry], srs_wkt: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per polygon of `geoms`, in order: the ids of the raster cells it touches and the fraction of each
    cell it covers (exactextract's ``cell_id`` and ``coverage``)."""
    source = _WkbSource(shapely.to_wkb(np.asarray(geoms, dtype=object)), srs_wkt)
    values = exact_extract(raster, source, ["cell_id", "coverage"], output=_ArrayWriter())
    return values["cell_id"], values["coverage"]
