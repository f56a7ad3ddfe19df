"""Draw `PlotData` with matplotlib (the Agg backend: no display, no GUI toolkit) as SVG or PNG."""

from __future__ import annotations

import io
import re

from aidsafe.report.model import PlotData

__all__ = ["render_svg", "render_png"]


def _figure(plot: PlotData):  # -> matplotlib Figure (imported lazily: the CLI starts fast)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # Figure() rather than pyplot: no global state, nothing to close, safe when called repeatedly.
    figure = Figure(figsize=(6.4, 3.4), layout="constrained")
    axes = figure.add_subplot()
    names = list(plot.series)
    width = 0.8 / max(len(names), 1)
    for n, name in enumerate(names):
        positions = [i + (n - (len(names) - 1) / 2) * width for i in range(len(plot.categories))]
        bars = axes.bar(positions, plot.series[name], width, label=name)
        axes.bar_label(bars, fmt="%g", fontsize=7)
    axes.set_xticks(range(len(plot.categories)), plot.categories, rotation=20 if len(plot.categories) > 4 else 0,
                    ha="right" if len(plot.categories) > 4 else "center", fontsize=8)  # fmt: skip
    if all(float(v).is_integer() for values in plot.series.values() for v in values):
        axes.yaxis.get_major_locator().set_params(integer=True)  # counts: no 0.5 ticks
    axes.set_title(plot.title, fontsize=10)
    axes.set_xlabel(plot.xlabel, fontsize=8)
    axes.set_ylabel(plot.ylabel, fontsize=8)
    if len(names) > 1:
        axes.legend(fontsize=8)
    return figure


def render_svg(plot: PlotData) -> str:
    """The plot as an <svg> element (no XML prolog), text kept as text so the page stays searchable."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": plot.name}):
        _figure(plot).savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # The RDF metadata block only names URLs (Dublin Core, Creative Commons): a viewer needs none.
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    return text[text.index("<svg") :]


def render_png(plot: PlotData) -> bytes:
    buffer = io.BytesIO()
    _figure(plot).savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()
