"""Headless Chromium for the report tests: screenshot and DOM after the page's scripts ran."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["find_chromium", "Rendered", "render"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@dataclass
class Rendered:
    dom: str
    log: str  # chromium's stderr with console messages (--enable-logging=stderr)

    def script_errors(self) -> list[str]:
        # Console errors reach the log as `CONSOLE(...)` / `Uncaught ...` lines.
        return [line for line in self.log.splitlines() if "Uncaught" in line or ("CONSOLE" in line and "rror" in line)]


def _run(browser: str, page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess:
    args = [browser, "--headless", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *flags,
            page.resolve().as_uri()]  # fmt: skip
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def render(browser: str, page: Path, work: Path, screenshot: Path) -> Rendered:
    """The DOM as it stands after the scripts ran, and a screenshot of the page."""
    done = _run(browser, page, work / "profile-dom", "--dump-dom")
    shot = _run(browser, page, work / "profile-shot", f"--screenshot={screenshot}", "--window-size=1280,2000")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
    return Rendered(done.stdout, done.stderr + shot.stderr)
