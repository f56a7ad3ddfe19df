"""Report views as plug-ins: a view is two functions, its plots and its sample view.

Which view a run kind gets is the kinds registry's `report` (aidsafe.kinds). Adding a view
(thinkguard data, eval outputs) is one module with those two functions, one line in `VIEWS` and
its name in the kind's registry entry; a kind without a view gets the rejection plot and the
generic view, so a report never refuses a run it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aidsafe.kinds import KINDS
from aidsafe.report.kinds.common import agent_plots, generic_sample, rejected_sample, rejection_plots
from aidsafe.report.kinds.generation import generation_plots, generation_sample
from aidsafe.report.kinds.guard import guard_plots, guard_sample
from aidsafe.report.kinds.pairs import pairs_plots, pairs_sample
from aidsafe.report.kinds.predictions import predictions_plots, predictions_sample
from aidsafe.report.model import PlotData, SampleView
from aidsafe.report.run import RunView

__all__ = ["Kind", "VIEWS", "kind_of", "rejected_sample"]


@dataclass(frozen=True)
class Kind:
    name: str
    plots: Callable[[RunView], list[PlotData]]
    sample: Callable[[dict[str, Any]], SampleView]


def _generic_plots(view: RunView) -> list[PlotData]:
    return [*agent_plots(view.iter_samples()), *rejection_plots(view)]


VIEWS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("generation", generation_plots, generation_sample),
        Kind("pairs", pairs_plots, pairs_sample),
        Kind("guard_traces", guard_plots, guard_sample),
        Kind("predictions", predictions_plots, predictions_sample),
    )
}


def kind_of(view: RunView) -> Kind:
    """The view of the run's kind, as the registry names it; the generic one when it names none."""
    name = KINDS[view.kind].report if view.kind in KINDS else None
    return VIEWS[name] if name is not None else Kind(view.kind, _generic_plots, generic_sample)
