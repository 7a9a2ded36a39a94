"""Geometry helpers that need a metric CRS: buffers and areas, vectorised over many polygons."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
from shapely.geometry.base import BaseGeometry


def _utm_groups(geoms: Sequence[BaseGeometry]) -> np.ndarray:
    """EPSG code of the UTM zone of each geometry's centroid (north/south by hemisphere)."""
    cent = gpd.GeoSeries(list(geoms), crs="EPSG:4326").representative_point()
    zone = np.clip(np.floor((cent.x.to_numpy() + 180) / 6).astype(int) + 1, 1, 60)
    return np.where(cent.y.to_numpy() >= 0, 32600 + zone, 32700 + zone)


def buffer_geometries(geoms: Sequence[BaseGeometry], distances_m: Sequence[float]) -> list[BaseGeometry]:
    """Each geometry grown by its distance in metres, computed in its UTM zone, returned in EPSG:4326."""
    geoms = list(geoms)
    dist = np.asarray(distances_m, dtype=float)
    out: list[BaseGeometry] = list(geoms)
    if not geoms or not np.any(dist > 0):
        return out
    codes = _utm_groups(geoms)
    for code in np.unique(codes):
        idx = np.flatnonzero((codes == code) & (dist > 0))
        if idx.size == 0:
            continue
        series = gpd.GeoSeries([geoms[i] for i in idx], crs="EPSG:4326").to_crs(int(code))
        grown = series.buffer(dist[idx]).to_crs("EPSG:4326")
        for j, i in enumerate(idx):
            out[i] = grown.iloc[j]
    return out


def areas_m2(geoms: Sequence[BaseGeometry]) -> np.ndarray:
    """Area of each geometry in square metres (in its UTM zone)."""
    geoms = list(geoms)
    out = np.zeros(len(geoms))
    if not geoms:
        return out
    codes = _utm_groups(geoms)
    for code in np.unique(codes):
        idx = np.flatnonzero(codes == code)
        out[idx] = gpd.GeoSeries([geoms[i] for i in idx], crs="EPSG:4326").to_crs(int(code)).area.to_numpy()
    return out
