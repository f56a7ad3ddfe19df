"""Run kinds as plug-ins: a kind is two functions, its plots and its sample view.

Adding a kind (thinkguard data, eval outputs) is one module with those two functions and one
line in `KINDS`; a kind nobody registered gets the rejection plot and the generic view, so a
report never refuses a run it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aidsafe.report.kinds.common import agent_plots, generic_sample, rejected_sample, rejection_plots
from aidsafe.report.kinds.generation import generation_plots, generation_sample
from aidsafe.report.kinds.guard import guard_plots, guard_sample
from aidsafe.report.kinds.pairs import pairs_plots, pairs_sample
from aidsafe.report.kinds.predictions import predictions_plots, predictions_sample
from aidsafe.report.model import PlotData, SampleView
from aidsafe.report.run import RunView

__all__ = ["Kind", "KINDS", "kind_of", "rejected_sample"]


@dataclass(frozen=True)
class Kind:
    name: str
    plots: Callable[[RunView], list[PlotData]]
    sample: Callable[[dict[str, Any]], SampleView]


def _generic_plots(view: RunView) -> list[PlotData]:
    return [*agent_plots(view.iter_samples()), *rejection_plots(view)]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("generation", generation_plots, generation_sample),
        Kind("pairs", pairs_plots, pairs_sample),
        Kind("guard_traces", guard_plots, guard_sample),
        Kind("predictions", predictions_plots, predictions_sample),
    )
}


def kind_of(view: RunView) -> Kind:
    return KINDS.get(view.kind, Kind(view.kind, _generic_plots, generic_sample))
