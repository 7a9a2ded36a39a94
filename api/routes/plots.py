"""A PNG chart of one indicator at one site, with its risk bands shaded (matplotlib's object API: no
pyplot and no global backend switch, so importing the API never changes a notebook's backend)."""

from __future__ import annotations

import io
import textwrap
from datetime import date
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from matplotlib.figure import Figure

import indicators
from api.auth import ReaderDep
from api.deps import StoreDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from api.routes.timeseries import read_provenance
from indicators import LEVELS, CategoryLevels, Thresholds

router = APIRouter(prefix="/api/v1", tags=["timeseries"], responses=COMMON_ERRORS)
COLOURS = {"none": "#e8f5e9", "low": "#fff9c4", "moderate": "#ffe0b2", "high": "#ffcdd2", "severe": "#e1bee7"}


def _bands(levels: Thresholds, lo: float, hi: float) -> list[tuple[float, float, str]]:
    """(bottom, top, level) spans covering [lo, hi] for a threshold scheme."""
    bounds = [(name, getattr(levels, name)) for name in LEVELS[1:] if getattr(levels, name) is not None]
    if not bounds:
        return [(lo, hi, "none")]
    out = []
    if levels.direction == "higher_is_worse":
        edges = [(-np.inf, "none")] + [(v, n) for n, v in bounds]
        for i, (start, name) in enumerate(edges):
            stop = edges[i + 1][0] if i + 1 < len(edges) else np.inf
            out.append((max(start, lo), min(stop, hi), name))
    else:
        edges = [(np.inf, "none")] + [(v, n) for n, v in bounds]
        for i, (top, name) in enumerate(edges):
            bottom = edges[i + 1][0] if i + 1 < len(edges) else -np.inf
            out.append((max(bottom, lo), min(top, hi), name))
    return [b for b in out if b[1] > b[0]]


@router.get(
    "/sites/{site_id}/plot.png",
    summary="Chart of one indicator at one site with its risk bands (PNG)",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **problem_responses(404),
    },
)
def plot(
    site_id: Annotated[str, Path(description="Site id", examples=["athens"])],
    store: StoreDep,
    _: ReaderDep,
    indicator: Annotated[str, Query(description="Indicator id", examples=["hot_days"])],
    start: Annotated[
        date | None, Query(description="First period (inclusive)", examples=["2020-01-01"])
    ] = None,
    end: Annotated[date | None, Query(description="Last period (inclusive)", examples=["2026-12-31"])] = None,
) -> Response:
    """The series as a line, the risk levels as shaded bands (thresholds or categories), units on the axis,
    the site name in the title and the Copernicus attribution (or the synthetic notice) at the foot."""
    spec = indicators.get(indicator)
    site = store.get_site(site_id)
    if start and end and start > end:
        raise ProblemError(422, "start must not be after end", errors=[{"field": "query.start"}])
    frame = store.series([site_id], [indicator], start, end)
    attr = read_provenance(store, [site_id], [indicator], start, end).attribution
    levels = spec.thresholds_for(None, site.thresholds.get(indicator))
    fig = Figure(figsize=(9, 4.8), dpi=100)
    ax = fig.add_subplot()
    times = pd.to_datetime(frame["period_start"]) if len(frame) else pd.DatetimeIndex([])
    values = frame["value"].astype(float).to_numpy() if len(frame) else np.array([])
    finite = values[np.isfinite(values)]
    if isinstance(levels, CategoryLevels):
        codes = sorted(levels.categories)
        for code in codes:
            level = levels.levels.get(code, "none")
            ax.axhspan(code - 0.5, code + 0.5, color=COLOURS.get(level, "#eeeeee"), zorder=0)
        ax.set_yticks(codes, [levels.categories[c] for c in codes])
        ax.set_ylim(min(codes) - 0.5, max(codes) + 0.5)
        shown = sorted({levels.levels.get(c, "none") for c in codes}, key=lambda n: LEVELS.index(n))
    else:
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        marks = [getattr(levels, n) for n in LEVELS[1:] if getattr(levels, n) is not None]
        lo, hi = min([lo, *marks]), max([hi, *marks])
        pad = (hi - lo) * 0.08 or 1.0
        lo, hi = lo - pad, hi + pad
        bands = _bands(levels, lo, hi)
        for bottom, top, name in bands:
            ax.axhspan(bottom, top, color=COLOURS[name], zorder=0, label=name)
        ax.set_ylim(lo, hi)
        shown = []
    if len(frame):
        ax.plot(times, values, color="#263238", marker="o" if len(frame) < 60 else None, lw=1.2, zorder=3)
    else:
        ax.text(0.5, 0.5, "no data in this period", transform=ax.transAxes, ha="center", va="center")
    ax.set_ylabel(f"{spec.title} [{spec.units}]")
    ax.set_title(f"{site.name} — {spec.title}")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", fontsize=7, title="risk level", title_fontsize=7)
    elif shown:
        from matplotlib.patches import Patch

        ax.legend([Patch(color=COLOURS[n]) for n in shown], shown, loc="upper left", fontsize=7)
    foot = "\n".join(textwrap.wrap(attr or "No data: no attribution.", 150)[:4])
    fig.text(0.01, 0.01, foot, fontsize=6, va="bottom", ha="left", color="#455a64")
    fig.subplots_adjust(bottom=0.12 + 0.025 * foot.count("\n"))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Response(buf.getvalue(), media_type="image/png")
