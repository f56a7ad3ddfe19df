"""What a kind plug-in hands to the renderers: plot data and sample views, plain data only;
and `ReportData`, everything one page shows, which the page renders and `build` gathers.

Both renderers (the HTML page and `aidsafe show`) draw the same `SampleView`, so the browser
and the terminal show the same content; plots are data here and drawn by aidsafe.report.plots,
so tests can check the numbers without reading an image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aidsafe.report.run import RunView

__all__ = ["PlotData", "ReportData", "Row", "Section", "SampleView"]


@dataclass
class PlotData:
    """A bar chart: one bar per category and series (several series are grouped side by side)."""

    name: str  # file name of the PNG, and the element id in the page
    title: str
    categories: list[str]
    series: dict[str, list[float]]
    xlabel: str = ""
    ylabel: str = "count"

    def is_empty(self) -> bool:
        return not self.categories or not any(any(values) for values in self.series.values())


@dataclass
class Row:
    text: str
    tags: list[str] = field(default_factory=list)
    label: str = ""  # a short lead such as "round 1 · deliberator_a"


@dataclass
class Section:
    title: str
    rows: list[Row]


@dataclass
class SampleView:
    id: str
    title: str  # the prompt, or what stands for it
    facets: dict[str, list[str]] = field(default_factory=dict)  # filter name -> values
    sizes: dict[str, int] = field(default_factory=dict)  # shown in `aidsafe show`'s table
    sections: list[Section] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReportData:
    view: RunView
    summary: list[tuple[str, str]]
    plots: list[PlotData]
    samples: list[SampleView]  # the finished ones first, then the rejected ones
    total_samples: int
    total_rejected: int
    cap: int
