"""Export a run directory as a Hugging Face dataset: Parquet configs per format and a dataset card.

`export_run` writes the folder and, given a `HubTarget`, pushes it (`push_export`); `aidsafe export`
calls it. The row formats are pure functions in
`aidsafe.export.formats` (`cot_answer` is the chain-of-thought rendering `aidsafe train` uses too).
"""

from aidsafe.export.formats import FORMATS, cot_answer
from aidsafe.export.hub import HubTarget, push_export
from aidsafe.export.writer import ExportRequest, ExportResult, export_run

__all__ = ["FORMATS", "ExportRequest", "ExportResult", "HubTarget", "cot_answer", "export_run", "push_export"]
