"""The heritage site: a stable id, a polygon in EPSG:4326, materials and the parameters the science needs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

#: Materials the indicators know; a site may name others, they are kept but concern no indicator.
MATERIALS = (
    "limestone",
    "marble",
    "sandstone",
    "granite",
    "brick",
    "timber",
    "earthen",
    "metal",
    "carbon_steel",
    "zinc",
    "copper",
    "bronze",
    "glass",
    "plaster",
    "vegetation",
)

T = TypeVar("T")

SITE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-.]{0,99}$")


class SiteParams(BaseModel):
    """Site parameters needed by some indicators; each has a documented default."""

    model_config = ConfigDict(extra="forbid")

    rain_ph: float = Field(5.3, ge=3.0, le=8.0, description="pH of rain (not a Copernicus product).")
    distance_to_sea_km: float | None = Field(None, ge=0, description="Distance to the coast, km.")
    latitude_band: str | None = Field(None, description="Override of the FWI day-length band.")


class Site(BaseModel):
    """One heritage site. The geometry is a (Multi)Polygon in EPSG:4326, lon/lat order."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    id: str = Field(description="Stable id: lowercase letters, digits, '_', '-', '.'.")
    name: str = Field(min_length=1, max_length=300)
    geometry: Polygon | MultiPolygon
    buffer_m: float = Field(0.0, ge=0, le=50_000, description="Buffer around the polygon, metres.")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2 country code.")
    heritage_type: str | None = Field(
        None, description="e.g. monument, archaeological site, historic centre."
    )
    materials: list[str] = Field(default_factory=list)
    unesco_id: str | None = None
    national_id: str | None = None
    thresholds: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per-indicator overrides of risk-level thresholds."
    )
    params: SiteParams = Field(default_factory=SiteParams)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not SITE_ID_PATTERN.match(value):
            raise ValueError(f"site id {value!r} must match {SITE_ID_PATTERN.pattern}")
        return value

    @field_validator("materials")
    @classmethod
    def _normalise_materials(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for material in value:
            m = material.strip().lower().replace(" ", "_")
            if m and m not in out:
                out.append(m)
        return out

    @field_validator("country")
    @classmethod
    def _upper_country(cls, value: str | None) -> str | None:
        return value.strip().upper() if value else value

    @property
    def centroid(self) -> tuple[float, float]:
        """(lon, lat) of a point inside the polygon."""
        p = self.geometry.representative_point()
        return (p.x, p.y)

    def to_feature(self) -> dict[str, Any]:
        """The site as a GeoJSON Feature (id = site id)."""
        props = self.model_dump(exclude={"geometry", "id"})
        return {"type": "Feature", "id": self.id, "geometry": mapping(self.geometry), "properties": props}

    @classmethod
    def from_feature(cls, feature: dict[str, Any]) -> Site:
        """Build a site from a GeoJSON Feature whose `id` (or `properties.id`) is the site id."""
        props = dict(feature.get("properties") or {})
        site_id = feature.get("id", props.pop("id", None))
        props.pop("id", None)
        return cls(id=str(site_id), geometry=shape(feature["geometry"]), **props)


class SiteSet(Sequence[Site]):
    """An ordered set of sites with unique ids: the `site` dimension of every cube."""

    def __init__(self, sites: Iterable[Site]) -> None:
        self._sites = list(sites)
        self._index = {s.id: i for i, s in enumerate(self._sites)}
        if len(self._index) != len(self._sites):
            raise ValueError("site ids must be unique within a SiteSet")
        # arrays derived from the sites, computed on first use and kept: a pass asks for them for every
        # indicator (the sites of a set are not changed after it is made)
        self._centroids: np.ndarray | None = None
        self._id_index: pd.Index | None = None
        self._materials: tuple[dict[str, int], np.ndarray] | None = None
        self._with_thresholds: list[int] | None = None
        self._derived: dict[str, Any] = {}

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return self._sites[self._index[key]]
        return self._sites[key]

    def __len__(self) -> int:
        return len(self._sites)

    def __iter__(self) -> Iterator[Site]:
        return iter(self._sites)

    def __contains__(self, item: object) -> bool:
        return (item.id if isinstance(item, Site) else item) in self._index

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self._sites]

    def centroids(self) -> np.ndarray:
        """(n_sites, 2) lon/lat of every `Site.centroid`, in one vectorised call (computed once per set:
        a pass asks for them for every indicator)."""
        if self._centroids is None:
            if not self._sites:
                self._centroids = np.empty((0, 2))
            else:
                points = shapely.point_on_surface(np.asarray(self.geometries(), dtype=object))
                self._centroids = shapely.get_coordinates(points).astype(np.float64)
        return self._centroids

    def derived(self, key: str, compute: Callable[[], T]) -> T:
        """What `compute` derives from these sites, computed on the first call with `key` and kept with the
        set: a pass asks for it once per source, and a per-site computation is worth doing once."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def positions(self, ids: Iterable[str]) -> np.ndarray:
        """Index in this set of each of `ids`, by one hashed lookup of them all (a KeyError names an id
        that is not in it)."""
        if self._id_index is None:
            self._id_index = pd.Index(self.ids, dtype=object)
        wanted = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=object)
        # the set's own order (every cube of a pass): no hashing
        if len(wanted) == len(self._sites) and np.array_equal(wanted, self._id_index.to_numpy()):
            return np.arange(len(self._sites), dtype=np.intp)
        found = self._id_index.get_indexer(pd.Index(wanted.astype(str), dtype=object))
        if (found < 0).any():
            raise KeyError(str(wanted[np.argmax(found < 0)]))
        return found.astype(np.intp)

    def material_matrix(self, materials: Sequence[str]) -> np.ndarray:
        """(n_sites, len(materials)) booleans: whether each site lists each material. The sites' lists are
        read once per set; every later call selects columns."""
        if self._materials is None:
            columns: dict[str, int] = {}
            rows, cols = [], []
            for i, site in enumerate(self._sites):  # once per set, not per indicator
                for m in site.materials:
                    rows.append(i)
                    cols.append(columns.setdefault(m, len(columns)))
            table = np.zeros((len(self._sites), len(columns)), dtype=bool)
            table[rows, cols] = True
            self._materials = (columns, table)
        columns, table = self._materials
        out = np.zeros((len(self._sites), len(materials)), dtype=bool)
        for j, m in enumerate(materials):  # a loop over the few materials asked, never over sites
            if m in columns:
                out[:, j] = table[:, columns[m]]
        return out

    def threshold_overrides(self, indicator_id: str) -> tuple[np.ndarray, list[dict[str, float] | None]]:
        """Per site, the index into the returned list of its threshold overrides for an indicator (0 is
        None: the indicator's own levels). Only the sites that override some threshold are visited."""
        if self._with_thresholds is None:
            self._with_thresholds = [i for i, s in enumerate(self._sites) if s.thresholds]
        group = np.zeros(len(self._sites), dtype=np.intp)
        sets: list[dict[str, float] | None] = [None]
        seen: dict[tuple, int] = {}
        for i in self._with_thresholds:
            override = self._sites[i].thresholds.get(indicator_id)
            if override:
                key = tuple(sorted(override.items()))
                if key not in seen:
                    seen[key] = len(sets)
                    sets.append(dict(override))
                group[i] = seen[key]
        return group, sets

    def subset(self, ids: Iterable[str]) -> SiteSet:
        """The sites with these ids, in this set's order."""
        wanted = set(ids)
        return SiteSet(s for s in self._sites if s.id in wanted)

    def geometries(self, buffered: bool = False) -> list[Polygon | MultiPolygon]:
        """Polygons in EPSG:4326, optionally grown by each site's buffer (computed in a local metric CRS)."""
        if not buffered:
            return [s.geometry for s in self._sites]
        from sites.geometry import buffer_geometries

        return buffer_geometries([s.geometry for s in self._sites], [s.buffer_m for s in self._sites])

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of all sites and their buffers."""
        return tuple(shapely.total_bounds(self.geometries(buffered=True)))  # type: ignore[return-value]

    def to_geodataframe(self, buffered: bool = False):
        """The sites as a GeoDataFrame indexed by site id (EPSG:4326)."""
        import geopandas as gpd

        return gpd.GeoDataFrame(
            {
                "site": self.ids,
                "name": [s.name for s in self._sites],
                "buffer_m": [s.buffer_m for s in self._sites],
            },
            geometry=self.geometries(buffered=buffered),
            crs="EPSG:4326",
        ).set_index("site")
