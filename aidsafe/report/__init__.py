"""Seeing a run: `aidsafe report` (one self-contained HTML page) and `aidsafe show` (the terminal).

run.py reads a run directory; kinds/ turns its records into plot data and sample views, one
plug-in per run kind; plots.py draws with matplotlib; page.py and terminal.py render.
"""

from aidsafe.report.build import first_views, gather, sample_by_id, write_report
from aidsafe.report.run import RunView, open_run

__all__ = ["write_report", "gather", "sample_by_id", "first_views", "open_run", "RunView"]
