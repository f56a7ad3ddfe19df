"""The report in a real browser (headless Chromium): it renders, plots and samples, no script error,
and hostile sample text stays text."""

from __future__ import annotations

import re

import pytest

from tests.report.chromium import find_chromium, render
from tests.report.conftest import cli

BROWSER = find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BROWSER is None,
        reason="no Chromium on PATH: install the Debian package `chromium` (.ci/run does when apt-get is there)",
    ),
]
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_report_renders_with_plots_samples_and_no_script_error(generation_run, tmp_path):
    page = tmp_path / "report.html"
    cli("report", generation_run, "--output", page)
    shot = tmp_path / "shot.png"
    rendered = render(BROWSER, page, tmp_path, shot)
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000  # a blank page is ~5 kB
    ready = re.search(r'data-report-ready="(\d+)"', rendered.dom)
    assert ready, "page.js did not run to its end"
    # split("\n"), not splitlines(): a prompt holds U+2028, which splitlines() also splits at.
    finished = sum(1 for line in (generation_run / "samples.jsonl").read_text().split("\n") if line)
    rejected = sum(1 for line in (generation_run / "rejected.jsonl").read_text().split("\n") if line)
    assert int(ready[1]) == finished + rejected == rendered.dom.count('class="sample-item')
    assert rendered.dom.count("<svg") >= 7 and 'data-plot="stop_reasons"' in rendered.dom
    assert rendered.script_errors() == []
    # The hostile prompts ran no script: no attribute set, their markup is text in the DOM.
    assert not re.search(r"<body[^>]*data-pwned", rendered.dom)
    assert "&lt;script&gt;document.body.setAttribute('data-pwned', 'script')&lt;/script&gt;" in rendered.dom
    assert '<img src="x"' not in rendered.dom and "&lt;img src=x onerror=" in rendered.dom


def test_the_harness_sees_a_script_error_and_an_executed_script(tmp_path):
    """The checks above can fail: a page with an error and a running injected script is caught."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><script>document.body.setAttribute('data-pwned', 'yes'); undefinedCall();</script></body></html>"
    )
    rendered = render(BROWSER, page, tmp_path, tmp_path / "shot.png")
    assert re.search(r"<body[^>]*data-pwned", rendered.dom)
    assert rendered.script_errors(), rendered.log[-2000:]
