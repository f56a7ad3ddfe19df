"""Export a run directory as a Hugging Face dataset: Parquet configs per format and a dataset card.

`export_run` writes the folder and, given a `HubTarget`, pushes it (`push_export`); `aidsafe export`
calls it. The row formats are pure functions in
`aidsafe.export.formats` (`cot_answer` is the chain-of-thought rendering `aidsafe train` uses too);
`FilterSettings` says which corpus filters run (`aidsafe.export.filters`).
"""

from aidsafe.export.filters import FilterSettings
from aidsafe.export.formats import FORMATS, cot_answer
from aidsafe.export.hub import HubTarget, push_export
from aidsafe.export.writer import ExportRequest, ExportResult, export_run

__all__ = [
    "FORMATS",
    "ExportRequest",
    "FilterSettings",
    "ExportResult",
    "HubTarget",
    "cot_answer",
    "export_run",
    "push_export",
]
