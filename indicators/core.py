"""Indicator declarations, risk levels and the registry.

An indicator is a pure function over CF-named DataArrays with dims (site, time) plus an `IndicatorSpec`
that says what it means: units, inputs, parameters (quantities with units), frequency, the materials it
concerns, how its values map onto risk levels, a version and the references of every coefficient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xarray as xr

from indicators.errors import IndicatorInputError, UnknownIndicatorError

#: Risk levels in increasing order of severity; `no_data` is separate and never confused with `none`.
LEVELS: tuple[str, ...] = ("none", "low", "moderate", "high", "severe")
NO_DATA = "no_data"
NO_DATA_CODE = -1
LEVEL_CODES: dict[str, int] = {name: i for i, name in enumerate(LEVELS)} | {NO_DATA: NO_DATA_CODE}

Direction = Literal["higher_is_worse", "lower_is_worse"]


def level_name(code: int) -> str:
    """Name of a level code (-1 → `no_data`)."""
    return NO_DATA if code < 0 else LEVELS[code]


@dataclass(frozen=True)
class Parameter:
    """A parameter of an indicator: default as a quantity with units, and where its value comes from."""

    default: Any
    units: str = ""
    description: str = ""
    reference: str = ""


@dataclass(frozen=True)
class Thresholds:
    """Lower bounds of the levels low, moderate, high and severe, in the indicator's units.

    With `higher_is_worse`, a value >= `low` is at least `low`; with `lower_is_worse` a value <= `low`.
    A level left as None is skipped (the indicator never reaches it).
    """

    low: float | None = None
    moderate: float | None = None
    high: float | None = None
    severe: float | None = None
    direction: Direction = "higher_is_worse"

    def with_overrides(self, overrides: Mapping[str, float] | None) -> Thresholds:
        """These thresholds with some levels replaced (per-site overrides)."""
        if not overrides:
            return self
        unknown = set(overrides) - {"low", "moderate", "high", "severe"}
        if unknown:
            raise IndicatorInputError(f"unknown threshold level(s) {sorted(unknown)}")
        values = {k: getattr(self, k) for k in ("low", "moderate", "high", "severe")}
        values.update({k: float(v) for k, v in overrides.items()})
        return Thresholds(**values, direction=self.direction)

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            **{k: getattr(self, k) for k in ("low", "moderate", "high", "severe")},
        }

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Level codes (int8) of an array of values; NaN → `no_data`."""
        v = np.asarray(values, dtype=float)
        out = np.zeros(v.shape, dtype=np.int8)
        for code, name in enumerate(LEVELS[1:], start=1):
            t = getattr(self, name)
            if t is None:
                continue
            hit = v >= t if self.direction == "higher_is_worse" else v <= t
            out = np.where(hit, np.int8(code), out)
        return np.where(np.isnan(v), np.int8(NO_DATA_CODE), out).astype(np.int8)


@dataclass(frozen=True)
class CategoryLevels:
    """A categorical indicator: its integer category codes, their names, and the level of each."""

    categories: Mapping[int, str]
    levels: Mapping[int, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "categories": {str(k): v for k, v in self.categories.items()},
            "levels": {self.categories[k]: v for k, v in self.levels.items()},
        }

    def classify(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        out = np.full(v.shape, NO_DATA_CODE, dtype=np.int8)
        for cat, level in self.levels.items():
            out = np.where(v == cat, np.int8(LEVEL_CODES[level]), out)
        return out


@dataclass(frozen=True)
class Reference:
    """A bibliographic reference and what the indicator takes from it."""

    citation: str
    used_for: str = ""
    url: str = ""


@dataclass(frozen=True)
class IndicatorSpec:
    """The declaration of one indicator. `id` is stable: it appears in URLs and stored results."""

    id: str
    title: str
    description: str
    units: str
    inputs: tuple[str, ...]
    freq: str  # "D", "MS" or "YS": the period of one value
    func: Callable[..., xr.DataArray]
    levels: Thresholds | CategoryLevels
    version: str
    family: Literal["climate", "atmosphere", "land", "emergency"]
    hazard: str = ""
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    materials: tuple[str, ...] = ()
    material_levels: Mapping[str, Thresholds] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()
    provisional: bool = False
    provisional_note: str = ""
    resolve_after: int = 1  # periods below the alert level before an episode resolves by itself
    history: bool = False  # needs the whole stored record (baselines, percentiles, fitted distributions)
    optional_inputs: tuple[str, ...] = ()  # used when the dataset has them (e.g. GloFAS thresholds)

    def thresholds_for(self, material: str | None = None, overrides: Mapping[str, float] | None = None):
        """The level scheme for one material (default if none), with per-site overrides applied."""
        levels = self.material_levels.get(material, self.levels) if material else self.levels
        if isinstance(levels, Thresholds):
            return levels.with_overrides(overrides)
        if overrides:
            raise IndicatorInputError(f"{self.id} is categorical: its levels cannot be overridden")
        return levels

    def default_params(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()}

    def describe(self, value: float | None) -> str:
        """A value as a reader should see it: a category's name, or the number with its units."""
        if value is None or value != value:
            return "no data"
        if isinstance(self.levels, CategoryLevels) and float(value).is_integer():
            name = self.levels.categories.get(int(value))
            if name is not None:
                return f"{name} (category {int(value)})"
        return f"{value:.4g}" if self.units in ("", "1") else f"{value:.4g} {self.units}"


_REGISTRY: dict[str, IndicatorSpec] = {}


def register(spec: IndicatorSpec, *, replace: bool = False) -> IndicatorSpec:
    """Add an indicator to the catalogue (researchers may register their own)."""
    if spec.id in _REGISTRY and not replace:
        raise ValueError(f"indicator {spec.id!r} is already registered")
    _REGISTRY[spec.id] = spec
    return spec


def get(indicator_id: str) -> IndicatorSpec:
    """The spec of one indicator."""
    try:
        return _REGISTRY[indicator_id]
    except KeyError:
        raise UnknownIndicatorError(indicator_id) from None


def catalog() -> list[IndicatorSpec]:
    """Every registered indicator, in a stable order (family, then id)."""
    order = {"climate": 0, "atmosphere": 1, "land": 2, "emergency": 3}
    return sorted(_REGISTRY.values(), key=lambda s: (order[s.family], s.id))


def compute(indicator_id: str, dataset: xr.Dataset, **params: Any) -> xr.DataArray:
    """Compute one indicator over every site of a cube; the result carries units and provenance attrs."""
    spec = get(indicator_id)
    missing = [name for name in spec.inputs if name not in dataset]
    if missing:
        raise IndicatorInputError(f"{indicator_id} needs {missing}, which the dataset lacks")
    unknown = set(params) - set(spec.parameters)
    if unknown:
        raise IndicatorInputError(f"{indicator_id} has no parameter(s) {sorted(unknown)}")
    kwargs = spec.default_params() | params
    inputs = {name: dataset[name] for name in spec.inputs}
    inputs |= {name: dataset[name] for name in spec.optional_inputs if name in dataset and name not in params}
    kwargs = {k: v for k, v in kwargs.items() if k not in inputs}
    result = spec.func(**inputs, **kwargs)
    result.name = spec.id
    result.attrs.update(
        units=spec.units,
        long_name=spec.title,
        indicator_id=spec.id,
        indicator_version=spec.version,
        freq=spec.freq,
    )
    return result


def classify(
    indicator_id: str,
    values: xr.DataArray | np.ndarray | Sequence[float],
    material: str | None = None,
    overrides: Mapping[str, float] | None = None,
) -> xr.DataArray | np.ndarray:
    """Risk level codes (see `LEVELS`; -1 is `no_data`) of indicator values for one material."""
    scheme = get(indicator_id).thresholds_for(material, overrides)
    if isinstance(values, xr.DataArray):
        codes = xr.apply_ufunc(scheme.classify, values)
        codes.attrs = {
            "flag_values": list(range(-1, len(LEVELS))),
            "flag_meanings": " ".join((NO_DATA, *LEVELS)),
        }
        return codes
    return scheme.classify(np.asarray(values, dtype=float))


def classify_sites(
    spec: IndicatorSpec,
    values: np.ndarray,
    site_materials: Sequence[Sequence[str]],
    site_overrides: Sequence[Mapping[str, float] | None],
) -> tuple[np.ndarray, np.ndarray]:
    """Levels of a (site, time) array where each site's worst concerned material decides, from each
    site's materials and threshold overrides (`classify_site_arrays` with the arrays made here; a
    `SiteSet` gives them ready: `material_matrix`, `threshold_overrides`).

    Returns (codes, deciding material index into `spec.materials`, or -1 when the default scheme decided).
    """
    wanted = {m: j for j, m in enumerate(spec.material_levels)}
    has = np.zeros((len(site_materials), len(wanted)), dtype=bool)
    for i, materials in enumerate(site_materials):
        for m in materials:
            if m in wanted:
                has[i, wanted[m]] = True
    keys = [tuple(sorted(o.items())) if o else () for o in site_overrides]
    distinct = {k: i for i, k in enumerate(sorted(set(keys) - {()}), start=1)}
    group = np.array([distinct.get(k, 0) for k in keys], dtype=np.intp)
    sets: list[Mapping[str, float] | None] = [None, *(dict(k) for k in distinct)]
    return classify_site_arrays(spec, values, has, group, sets)


def classify_site_arrays(
    spec: IndicatorSpec,
    values: np.ndarray,
    has_material: np.ndarray,
    override_group: np.ndarray,
    override_sets: Sequence[Mapping[str, float] | None],
) -> tuple[np.ndarray, np.ndarray]:
    """Levels of a (site, time) array where each site's worst concerned material decides.

    `has_material` is (site, material) booleans over `spec.material_levels`; `override_group` the index
    into `override_sets` of each site's threshold overrides (None: the indicator's own levels). Loops over
    the few materials and override sets, never over sites.

    Returns (codes, deciding material index into `spec.materials`, or -1 when the default scheme decided).
    """
    values = np.asarray(values, dtype=float)
    has_material = np.asarray(has_material, dtype=bool).reshape(values.shape[0], len(spec.material_levels))
    override_group = np.asarray(override_group)
    best = np.full(values.shape, NO_DATA_CODE, dtype=np.int8)
    decider = np.full(values.shape, -1, dtype=np.int16)
    none_concerned = ~has_material.any(axis=1)
    for g, override in enumerate(override_sets):
        rows = override_group == g
        if not rows.any():
            continue
        for j, material in enumerate([None, *spec.material_levels]):
            sel = rows & (none_concerned if material is None else has_material[:, j - 1])
            if not sel.any():
                continue
            codes = spec.thresholds_for(material, dict(override) if override else None).classify(values[sel])
            prev = best[sel]
            better = codes > prev
            best[sel] = np.where(better, codes, prev)
            idx = spec.materials.index(material) if material in spec.materials else -1
            decider[sel] = np.where(better, idx, decider[sel])
    return best, decider
