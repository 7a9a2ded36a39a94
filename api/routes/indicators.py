"""The indicator catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

import indicators
from api.errors import ALL_ERRORS
from api.schemas import IndicatorCatalog, IndicatorPublic

router = APIRouter(prefix="/api/v1", tags=["indicators"], responses=ALL_ERRORS)


@router.get("/indicators", summary="The indicator catalogue")
def list_indicators() -> IndicatorCatalog:
    """Every indicator with units, inputs, parameters, materials, risk levels, version and references."""
    return IndicatorCatalog(indicators=[IndicatorPublic.from_spec(s) for s in indicators.catalog()])


@router.get("/indicators/{indicator_id}", summary="One indicator of the catalogue")
def get_indicator(
    indicator_id: Annotated[
        str, Path(max_length=80, description="Indicator id", examples=["freeze_thaw_cycles"])
    ],
) -> IndicatorPublic:
    """One indicator's units, inputs, parameters, risk levels, version and references."""
    return IndicatorPublic.from_spec(indicators.get(indicator_id))
