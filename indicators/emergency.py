"""Emergency indicators: fire danger (EFFIS classes of the Canadian Fire Weather Index)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from indicators.core import CategoryLevels, IndicatorSpec, Parameter, Reference, register

#: EFFIS fire danger classes: FWI lower bounds, upper bound excluded.
EFFIS_CLASSES = ("very low", "low", "moderate", "high", "very high", "extreme")
EFFIS_FWI_BOUNDS = (5.2, 11.2, 21.3, 38.0, 50.0)
EFFIS = Reference(
    "EFFIS, Fire Danger Forecast, technical background (European Forest Fire Information System, JRC)",
    "FWI class limits 5.2, 11.2, 21.3, 38.0, 50.0",
    "https://forest-fire.emergency.copernicus.eu/about-effis/technical-background/fire-danger-forecast",
)


def fire_danger_class(fwi: xr.DataArray, freq: str = "D") -> xr.DataArray:
    """EFFIS class (0 very low … 5 extreme) of the daily Fire Weather Index; NaN stays NaN."""
    if freq != "D":
        fwi = fwi.resample(time=freq).max()
    codes = xr.apply_ufunc(
        lambda v: np.where(np.isnan(v), np.nan, np.digitize(v, EFFIS_FWI_BOUNDS, right=False)), fwi
    )
    return codes.assign_attrs(
        flag_values=list(range(6)), flag_meanings=" ".join(c.replace(" ", "_") for c in EFFIS_CLASSES)
    )


register(
    IndicatorSpec(
        id="fire_danger_class",
        title="Fire danger class (EFFIS)",
        description="EFFIS fire danger class of the daily Canadian Fire Weather Index: wildfire threat to "
        "sites in or near vegetation, and to timber and thatch.",
        units="1",
        inputs=("fwi",),
        freq="D",
        func=fire_danger_class,
        parameters={"freq": Parameter("D", "", "Period of one value (the class of the period's maximum).")},
        levels=CategoryLevels(
            categories=dict(enumerate(EFFIS_CLASSES)),
            levels={0: "none", 1: "low", 2: "moderate", 3: "high", 4: "severe", 5: "severe"},
        ),
        version="1",
        family="emergency",
        hazard="wildfire",
        references=(
            EFFIS,
            Reference(
                "Van Wagner C.E. 1987, Development and structure of the Canadian Forest Fire Weather "
                "Index System, Forestry Technical Report 35",
                "the FWI itself",
            ),
        ),
        resolve_after=3,
    )
)
