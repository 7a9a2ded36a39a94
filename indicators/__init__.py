"""Heritage risk indicators: pure functions over site cubes (dims site, time) and their declarations.

>>> import indicators
>>> [spec.id for spec in indicators.catalog()]
>>> indicators.compute("freeze_thaw_cycles", cube)
>>> indicators.classify("freeze_thaw_cycles", values, material="limestone")
"""

from indicators import atmosphere, climate, emergency, fire, flood, land  # noqa: F401  (registers indicators)
from indicators.core import (
    LEVEL_CODES,
    LEVELS,
    NO_DATA,
    CategoryLevels,
    IndicatorSpec,
    Parameter,
    Reference,
    Thresholds,
    catalog,
    classify,
    classify_site_arrays,
    classify_sites,
    compute,
    get,
    level_name,
    register,
)
from indicators.errors import IndicatorError, IndicatorInputError, UnknownIndicatorError

__all__ = [
    "LEVELS",
    "LEVEL_CODES",
    "NO_DATA",
    "CategoryLevels",
    "IndicatorError",
    "IndicatorInputError",
    "IndicatorSpec",
    "Parameter",
    "Reference",
    "Thresholds",
    "UnknownIndicatorError",
    "catalog",
    "classify",
    "classify_site_arrays",
    "classify_sites",
    "compute",
    "get",
    "level_name",
    "register",
]
