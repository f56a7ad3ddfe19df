"""The report as one self-contained HTML page: styles, script, plots (inline SVG) and samples inline.

Nothing is fetched at view time. Every string from the run is escaped: text in the markup with
html.escape, the samples as JSON inside a non-executing <script type="application/json"> with
`<`, `>` and `&` written as \\u escapes (so no `</script>` in a prompt can end that element),
then placed into the page by page.js through textContent only.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files

from aidsafe.report.model import ReportData
from aidsafe.report.plots import render_svg

__all__ = ["render_page", "embed_json"]


# Nothing may load from anywhere: a report opened from a CI artifact must not call home.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def embed_json(value: object) -> str:
    """JSON that is safe inside a <script> element, whatever strings it holds."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return files("aidsafe.report").joinpath(name).read_text(encoding="utf-8")


def render_page(data: ReportData) -> str:
    esc = html.escape
    rows = "\n".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in data.summary)
    plots = "\n".join(
        f'<figure class="plot" id="plot-{esc(p.name)}" data-plot="{esc(p.name)}">{render_svg(p)}</figure>'
        for p in data.plots
    )
    total = data.total_samples + data.total_rejected
    cap_note = (
        f'<p class="note" id="cap-note">The browser holds the first {len(data.samples):,} of {total:,} '
        "records (finished first, then rejected; --max-samples raises the cap); the plots and the "
        "summary count all of them.</p>"
        if len(data.samples) < total
        else ""
    )
    # The policy texts once per page, not per tag: page.js shows them on every tag naming an id.
    samples = embed_json({"samples": [s.as_json() for s in data.samples], "policies": data.view.policies})
    title = f"aidsafe report: {data.view.path.name or data.view.path}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{esc(title)}</title>
<style>{_asset("page.css")}</style>
</head><body>
<h1>{esc(title)}</h1>
<h2>Summary</h2>
<table class="summary" id="summary">{rows}</table>
<h2>Plots</h2>
<div class="plots" id="plots">{plots or "<p>No plots for this run.</p>"}</div>
<h2>Samples</h2>
{cap_note}
<div id="controls"><input id="search" type="search" placeholder="search prompts, thoughts, tags">
<span id="filters"></span> <span id="match-count"></span></div>
<div class="browser"><ul id="sample-list"></ul><div id="sample-detail"></div></div>
<script type="application/json" id="aidsafe-samples">{samples}</script>
<script>{_asset("page.js")}</script>
</body></html>
"""
