"""Climate indicators of heritage risk, computed from daily ERA5-Land-like variables.

Where xclim has the index, xclim computes it: these functions only fix the heritage definition
(thresholds, operators, frequency) and declare it.
"""

from __future__ import annotations

import xarray as xr
import xclim.indices as xci
from xclim.core.units import convert_units_to

from indicators.core import IndicatorSpec, Parameter, Reference, Thresholds, register

POROUS = ("limestone", "marble", "sandstone", "granite", "brick", "earthen", "plaster")
XCLIM = Reference("Bourgault et al. 2023, xclim: xarray-based climate data analytics, JOSS 8(85):5415")


def freeze_thaw_cycles(
    tasmax: xr.DataArray, tasmin: xr.DataArray, thresh: str = "0 degC", freq: str = "YS"
) -> xr.DataArray:
    """Days per period on which air temperature crosses `thresh`: tasmax > thresh and tasmin <= thresh."""
    return xci.multiday_temperature_swing(
        tasmin,
        tasmax,
        thresh_tasmin=thresh,
        thresh_tasmax=thresh,
        op_tasmin="<=",
        op_tasmax=">",
        window=1,
        op="sum",
        freq=freq,
    )


def max_1day_precipitation(pr: xr.DataArray, freq: str = "MS") -> xr.DataArray:
    """Rx1day: the largest one-day precipitation total of each period, in mm."""
    daily = convert_units_to(pr, "mm/d", context="hydro")
    return xci.max_1day_precipitation_amount(daily, freq=freq).assign_attrs(units="mm")  # one day's total


def hot_days(tasmax: xr.DataArray, thresh: str = "30 degC", freq: str = "MS") -> xr.DataArray:
    """Days per period with daily maximum temperature above `thresh`."""
    return xci.tx_days_above(tasmax, thresh=thresh, freq=freq)


register(
    IndicatorSpec(
        id="freeze_thaw_cycles",
        title="Freeze–thaw cycles",
        description="Days per year on which the air temperature crosses 0 °C (Tmax > 0 °C and Tmin ≤ 0 °C). "
        "Water freezing in pores expands by about 9 % and cracks porous stone, brick and mortar.",
        units="days",
        inputs=("tasmax", "tasmin"),
        freq="YS",
        func=freeze_thaw_cycles,
        parameters={
            "thresh": Parameter("0 degC", "degC", "Temperature that is crossed.", "Grossi et al. 2007"),
            "freq": Parameter("YS", "", "Period of one value."),
        },
        levels=Thresholds(low=10, moderate=30, high=60, severe=90),
        version="1",
        family="climate",
        hazard="frost weathering",
        materials=POROUS,
        references=(
            Reference(
                "Grossi C.M., Brimblecombe P., Harris I. 2007, Predicting long term freeze–thaw risks on "
                "Europe built heritage and archaeological sites in a changing climate, "
                "Sci. Total Environ. 377:273–281",
                "definition of a freeze–thaw cycle from daily Tmax/Tmin",
            ),
            XCLIM,
        ),
        provisional=True,
        provisional_note="Level thresholds (10/30/60/90 days a year) are project defaults, not published.",
    )
)

register(
    IndicatorSpec(
        id="max_1day_precipitation",
        title="Maximum one-day precipitation (Rx1day)",
        description="Largest daily precipitation of each month: flash floods, runoff erosion, roof overload.",
        units="mm",
        inputs=("pr",),
        freq="MS",
        func=max_1day_precipitation,
        parameters={"freq": Parameter("MS", "", "Period of one value.")},
        levels=Thresholds(low=20, moderate=40, high=70, severe=100),
        version="1",
        family="climate",
        hazard="heavy rain and flooding",
        references=(
            Reference(
                "Zhang X. et al. 2011, Indices for monitoring changes in extremes (ETCCDI), "
                "WIREs Clim. Change 2:851–870",
                "Rx1day definition",
            ),
            XCLIM,
        ),
        provisional=True,
        provisional_note="Level thresholds (20/40/70/100 mm in a day) are project defaults.",
    )
)

register(
    IndicatorSpec(
        id="hot_days",
        title="Hot days",
        description="Days per month with a maximum temperature above 30 °C: thermal stress on stone and "
        "timber, drying of earthen structures, visitor heat risk.",
        units="days",
        inputs=("tasmax",),
        freq="MS",
        func=hot_days,
        parameters={
            "thresh": Parameter("30 degC", "degC", "Daily maximum temperature above which a day is hot."),
            "freq": Parameter("MS", "", "Period of one value."),
        },
        levels=Thresholds(low=5, moderate=10, high=15, severe=22),
        version="1",
        family="climate",
        hazard="heat",
        references=(XCLIM,),
        provisional=True,
        provisional_note="Level thresholds (5/10/15/22 days a month) are project defaults.",
    )
)
