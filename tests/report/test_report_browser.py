"""The report in a real browser (headless Chromium): it renders, plots and samples, no script error,
and hostile sample text stays text."""

from __future__ import annotations

import html
import re
import shutil
from html.parser import HTMLParser

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


class _Tags(HTMLParser):
    """Every tag span of the rendered DOM as (classes, text, title), and the filters' option labels."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, str, str | None]] = []
        self.options: list[str] = []
        self._open: list | None = None

    def handle_starttag(self, name, attrs):
        found = dict(attrs)
        if name == "span" and "tag" in (found.get("class") or "").split():
            self._open = [found["class"], "", found.get("title")]
        elif name == "option":
            self._open = ["option", "", None]

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, name):
        if self._open is not None and name in ("span", "option"):
            if self._open[0] == "option":
                self.options.append(self._open[1])
            else:
                self.tags.append(tuple(self._open))
            self._open = None


def _tags(dom: str) -> _Tags:
    parser = _Tags()
    parser.feed(dom)
    return parser


def test_a_policy_tag_shows_the_rule_the_run_used_and_an_old_run_its_bare_id(tmp_path):
    from tests.report.test_policy_tags import LEGACY, OLD_RULE, OLD_TITLE, with_old_snapshot

    run = with_old_snapshot(tmp_path / "run")
    cli("report", run)
    rendered = render(BROWSER, run / "report.html", tmp_path, tmp_path / "shot.png")
    assert rendered.script_errors() == []
    found = _tags(rendered.dom)
    p3 = [t for t in found.tags if t[1] == "P3"]  # the first sample's thoughts cite P3
    assert p3 and all(t[0] == "tag policy" and t[2] == f"P3 · {OLD_TITLE}: {OLD_RULE}" for t in p3)
    assert f"P3 · {OLD_TITLE}" in found.options  # the policy filter names each policy too
    legend = re.search(r'<section class="sample-section policies">(.*?)</section>', rendered.dom, re.DOTALL)
    assert legend and "P3 · " + OLD_TITLE in legend[1] and html.escape(OLD_RULE, quote=False) in legend[1]

    bare = tmp_path / "bare"
    shutil.copytree(LEGACY, bare)  # written before the snapshot: it renders, and its tags are ids
    cli("report", bare)
    rendered = render(BROWSER, bare / "report.html", tmp_path / "b", tmp_path / "bare.png")
    assert rendered.script_errors() == [] and re.search(r'data-report-ready="[1-9]', rendered.dom)
    found = _tags(rendered.dom)
    assert ("tag", "P3", None) in found.tags and not any(t[0] == "tag policy" for t in found.tags)
    assert "P3" in found.options and 'class="sample-section policies"' not in rendered.dom
