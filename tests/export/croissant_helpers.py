"""Check an export's croissant.json the way a consumer would: mlcroissant validates it (offline:
the JSON-LD context is inline) and reads every config's records from the Parquet shards, which
must be the rows pyarrow reads; the files, checksums, configs and license agree with the card."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from huggingface_hub import DatasetCard

# mlcroissant's "recommended" properties an export cannot know: when it is published, as which
# version (the owner's choice, like the license when none was given).
UNKNOWABLE = {"datePublished", "version"}


@contextmanager
def _dependency_deprecations_ignored() -> Iterator[None]:
    """What mlcroissant 1.1.1's dependencies say of its calls, by exact message: rdflib 7.6's JSON-LD
    parser builds the graph class rdflib deprecates; mlcroissant passes pandas 3.1 an `inplace=`."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "The inplace keyword in DataFrame.reset_index is deprecated")
        yield


def read_records(folder: Path, record_set: str) -> list[dict[str, Any]]:
    """The records of `record_set` as mlcroissant reads them from the export's files."""
    with _dependency_deprecations_ignored():
        return list(load_croissant(folder).records(record_set=record_set))


def load_croissant(folder: Path) -> Any:
    """The export's croissant.json through mlcroissant, failing on any validation error."""
    import mlcroissant as mlc

    with _dependency_deprecations_ignored():
        dataset = mlc.Dataset(jsonld=folder / "croissant.json")  # raises ValidationError on an error
    issues = dataset.metadata.ctx.issues
    assert not issues.errors, issues.report()
    allowed = UNKNOWABLE | ({"license"} if "license" not in _document(folder) else set())
    for warning in issues.warnings:
        assert any(f'"https://schema.org/{name}" is recommended' in str(warning) for name in allowed), warning
    return dataset


def check_croissant(folder: Path) -> dict[str, Any]:
    """Everything this module's doc says; returns croissant.json's JSON."""
    document = _document(folder)
    card = DatasetCard((folder / "README.md").read_text(encoding="utf-8")).data.to_dict()
    manifest = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert document.get("license") == card.get("license") == manifest["license"]
    objects = {d["contentUrl"]: d for d in document["distribution"] if d["@type"] == "cr:FileObject"}
    card_files = {path for c in card["configs"] for split in c["data_files"] for path in split["path"]}
    assert set(objects) == card_files == {p.relative_to(folder).as_posix() for p in folder.glob("*/*.parquet")}
    for path, entry in objects.items():
        data = (folder / path).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["contentSize"] == f"{len(data)} B"
    configs = [c["config_name"] for c in card["configs"]]
    sets = [r["@id"] for r in document["recordSet"] if r["@id"] not in ("splits", "policies")]
    assert sets == configs == list(manifest["configs"])
    for name in configs:
        expected = [
            {"split": path.name.split("-", 1)[0], **row}
            for path in sorted((folder / name).glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()
        ]
        read = [_plain(record, f"{name}/") for record in read_records(folder, name)]
        assert _sorted(read) == _sorted(expected), name
        assert sum(manifest["configs"][name].values()) == len(read)
    return document


def _document(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "croissant.json").read_text(encoding="utf-8"))


def _plain(value: Any, prefix: str) -> Any:
    """An mlcroissant record as the Parquet row: field ids to column names, bytes to text."""
    if isinstance(value, dict):
        plain = {key.removeprefix(prefix).rsplit("/", 1)[-1]: _plain(v, prefix) for key, v in value.items()}
        # mlcroissant 1.1.1 reads a null struct (a policy-guard original's `variant`) as every
        # sub-field null: the same row, which Croissant's record model cannot tell apart.
        return None if plain and all(v is None for v in plain.values()) else plain
    if isinstance(value, list):
        return [_plain(v, prefix) for v in value]
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _sorted(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in rows)
