"""Errors of the indicator library."""


class IndicatorError(Exception):
    """Base class of indicator errors."""


class UnknownIndicatorError(IndicatorError, KeyError):
    """No indicator with this id is registered."""

    def __init__(self, indicator_id: str) -> None:
        super().__init__(f"unknown indicator {indicator_id!r}")
        self.indicator_id = indicator_id

    def __str__(self) -> str:
        return self.args[0]


class IndicatorInputError(IndicatorError, ValueError):
    """The dataset lacks an input the indicator needs, or a parameter is invalid."""
