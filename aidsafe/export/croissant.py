"""croissant.json: the export described in Croissant 1.1 with its responsible-AI (RAI) vocabulary.

Written beside the dataset card, from the same facts (aidsafe.export.card, card_kinds): the same
configs and shard files, the same license (none given: none claimed), the same policy set, filters
and intended use. What it says of the data comes from the files themselves, so a new export kind
or format is described without an edit here:

- `distribution`: one `cr:FileObject` per Parquet shard (its path relative to the export folder,
  its size and sha256, which mlcroissant checks when it reads the file), and per config a
  `cr:FileSet` contained in that config's shards;
- `recordSet`: per config, a field per Parquet column, its type read from the Parquet schema (a
  list column is `isArray`, a struct's members are `subField`s), and a `split` field from the
  shard's file name that refers to the `splits` record set (`cr:Split`); the run's policy set
  (ids, titles and rule texts from recipe.yaml's snapshot) as the embedded record set `policies`;
- dataset level: the method as `rai:dataCollection`, `rai:dataCollectionType` "Synthetic", the
  teacher models as PROV agents of the generating activity, the filters (or that none ran) as
  `rai:dataPreprocessingProtocol`, known limitations, biases, personal information and uses.

Endpoints (a teacher's host, a key's variable) are left out, as the card leaves them out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.export import card_kinds
from aidsafe.export.card import THOUGHT_DEDUP, data_files, no_filters, policy_snapshot, published, title
from aidsafe.export.filters import filter_lines
from aidsafe.kinds import KINDS
from aidsafe.run.identity import file_digest
from aidsafe.run.jsonl import write_atomic

__all__ = ["CONFORMS_TO", "CONTEXT", "CROISSANT", "build_croissant", "write_croissant"]

CROISSANT = "croissant.json"
CONFORMS_TO = ["http://mlcommons.org/croissant/1.1", "http://mlcommons.org/croissant/RAI/1.0"]
PARQUET = "application/x-parquet"
# The JSON-LD context of the Croissant 1.1 spec (its Appendix 1, with the terms mlcroissant 1.1
# adds: path, repeated, replace, samplingRate), and the RAI and PROV-O prefixes.
# Inline, so a reader (mlcroissant too) expands it without fetching anything.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
_SPLITS = {"train": "cr:TrainingSplit", "test": "cr:TestSplit"}


def write_croissant(
    output: Path, run: Any, configs: dict[str, dict[str, int]], license_: str | None, filters: dict[str, Any] | None
) -> None:
    document = build_croissant(output, run, configs, license_, filters)
    write_atomic(output / CROISSANT, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def build_croissant(
    output: Path, run: Any, configs: dict[str, dict[str, int]], license_: str | None, filters: dict[str, Any] | None
) -> dict[str, Any]:
    """croissant.json's content for the export folder `output` holding `configs` of `run` (the
    arguments the card is written from; `filters`: the filter summary, None where none ran)."""
    files = {name: [path for split in data_files(output, name).values() for path in split] for name in configs}
    splits = [s for s in _SPLITS if any(s in c for c in configs.values())]
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": title(run),
        "description": card_kinds.summary(run.kind),
        "conformsTo": CONFORMS_TO,
        **({"license": license_} if license_ else {}),  # nobody chose one, so none is claimed
        "inLanguage": "en",
        "keywords": card_kinds.tags(run.kind),
        "citeAs": card_kinds.BIBTEX[card_kinds.paper(run.kind)],
        "isLiveDataset": False,
        **_dates(run),
        "prov:wasGeneratedBy": _activity(run),
        **_rai(run, filters),
        "distribution": _distribution(output, files),
        "recordSet": [
            _splits_record_set(splits),
            *(_config_record_set(output, name, paths) for name, paths in files.items()),
            *_policies_record_set(run.recipe),
        ],
    }
    return document


# -- dataset level ------------------------------------------------------------------------------


def _dates(run: Any) -> dict[str, Any]:
    """When the run was made (run.json); a stage without one (hard-sample mining) says nothing."""
    try:
        made = json.loads((Path(run.path) / "run.json").read_text(encoding="utf-8"))
        first, last = made["created"]["at"], made["last_run"]["at"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {"dateCreated": first, "rai:dataCollectionTimeframe": [first, last]}


def _activity(run: Any) -> dict[str, Any]:
    """The command that made the records, its recipe and the models it called (PROV-O, as the
    Croissant 1.1 spec recommends for provenance)."""
    kind = KINDS[run.kind] if run.kind in KINDS else None
    recipe = published(run.recipe)
    activity: dict[str, Any] = {
        "@type": "prov:Activity",
        "prov:label": f"`{kind.command if kind else run.kind}` (aidsafe)",
        "description": (
            f"Recipe `{recipe.get('name')}`, semantic hash `{run.recipe_hash}`; its resolved values "
            "are in README.md's Recipe section."
            if recipe
            else f"No recipe; content hash of the records `{run.recipe_hash}`."
        ),
    }
    agents = [
        {
            "@type": "prov:SoftwareAgent",
            "prov:label": str(slot.get("model")),
            "description": f"{role} ({slot.get('name') or role}), sampling {json.dumps(slot.get('sampling') or {})}",
        }
        for role, slots in card_kinds.teacher_agents(run).items()
        for slot in (slots if isinstance(slots, list) else [slots])
        if isinstance(slot, dict)
    ]
    if agents:
        activity["prov:wasAssociatedWith"] = agents
    return activity


def _rai(run: Any, filters: dict[str, Any] | None) -> dict[str, Any]:
    models = sorted({agent["prov:label"] for agent in _activity(run).get("prov:wasAssociatedWith", [])})
    written_by = f"the LLMs {', '.join(models)}" if models else "models"
    snapshot = policy_snapshot(run.recipe)
    policy_set = (run.recipe.get("resolved") or {}).get("policy_set") or {}
    policies = (
        f" The policy set is `{policy_set.get('id', run.recipe.get('policies'))}` version "
        f"`{policy_set.get('version', '?')}`"
        + (" (its rules are the `policies` record set)." if snapshot else "; its rule texts were not kept by the run.")
        if "policies" in run.recipe
        else ""
    )
    preprocessing = filter_lines(filters) if filters else [no_filters(run.kind)]
    if run.kind == "generation":
        preprocessing.append(THOUGHT_DEDUP.replace(" (see the counts above)", " (README.md's counts)"))
    limitations = [
        f"Synthetic: written by {written_by}, not reviewed by people; they may be wrong, inconsistent or unsafe.",
        "English only: the agent cards and policies are English.",
    ]
    if "policies" in run.recipe:
        limitations.append("Safety is judged against the policy set named above only, not any other policy.")
    if not filters or not filters["settings"].get("dedup"):
        limitations.append("Duplicate prompts were not filtered at export.")
    if not filters or not filters["settings"].get("decontaminate"):
        limitations.append("Not checked for overlap with evaluation benchmarks at export.")
    elif filters.get("unavailable"):
        names = ", ".join(entry.split(" (", 1)[0] for entry in filters["unavailable"])
        limitations.append(f"Benchmark sets not checked for overlap (could not be loaded at export): {names}.")
    rai: dict[str, Any] = {
        "rai:dataCollection": f"Synthetic data, generated with the aidsafe framework. {card_kinds.method(run.kind)}"
        + policies,
        "rai:dataCollectionType": ["Synthetic"],
        "rai:dataPreprocessingProtocol": preprocessing,
        "rai:dataLimitations": limitations,
        "rai:dataBiases": [
            f"The text carries the biases of {written_by} and of the prompts the run was given; what counts as "
            "harmful is what the policy set and the agent cards say."
        ],
        "rai:personalSensitiveInformation": [
            "Not screened: the prompts are those of the run's input file, which aidsafe does not check for "
            "personal or sensitive information; the rest was written by models."
        ],
        "rai:dataUseCases": [card_kinds.uses(run.kind)],
    }
    if card_kinds.dual_use(run.kind):
        rai["rai:dataSocialImpact"] = card_kinds.dual_use(run.kind)
    return rai


# -- resources and record sets -------------------------------------------------------------------


def _distribution(output: Path, files: dict[str, list[str]]) -> list[dict[str, Any]]:
    objects = [
        {
            "@type": "cr:FileObject",
            "@id": path,
            "name": path,
            "contentUrl": path,  # relative to the export folder (a clone of the Hub repo too)
            "contentSize": f"{(output / path).stat().st_size} B",
            "encodingFormat": PARQUET,
            "sha256": file_digest(output / path),
        }
        for paths in files.values()
        for path in paths
    ]
    sets = [
        {
            "@type": "cr:FileSet",
            "@id": f"{name}-parquet",
            "name": f"{name}-parquet",
            "description": f"The Parquet shards of config `{name}`.",
            "encodingFormat": PARQUET,
            "includes": paths,
        }
        for name, paths in files.items()
    ]
    return objects + sets


def _splits_record_set(splits: list[str]) -> dict[str, Any]:
    return {
        "@type": "cr:RecordSet",
        "@id": "splits",
        "name": "splits",
        "description": "The splits, the same in every config: a hash of each sample's id decides.",
        "dataType": "cr:Split",
        "key": {"@id": "splits/name"},
        "field": [
            {"@type": "cr:Field", "@id": "splits/name", "name": "splits/name", "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": "splits/url", "name": "splits/url", "dataType": "sc:URL"},
        ],
        "data": [{"splits/name": split, "splits/url": _SPLITS[split]} for split in splits],
    }


def _config_record_set(output: Path, name: str, paths: list[str]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    schema = pq.read_schema(output / paths[0])
    for path in paths[1:]:  # written from one Features, so they agree; a shard that does not is our bug
        if not pq.read_schema(output / path).equals(schema, check_metadata=False):
            raise AidsafeError(f"{output / path}: its Parquet schema differs from {output / paths[0]}'s")
    files = {"fileSet": {"@id": f"{name}-parquet"}}
    split = {
        "@type": "cr:Field",
        "@id": f"{name}/split",
        "name": f"{name}/split",
        "description": "The split of the record, from its shard's file name.",
        "dataType": "sc:Text",
        "source": {**files, "extract": {"fileProperty": "filename"}, "transform": {"regex": r"^(train|test)(?:-|$)"}},
        "references": {"field": {"@id": "splits/name"}},
    }
    fields = [_field(f"{name}/{column.name}", column.type, {**files, "extract": {"column": column.name}}, [])
              for column in schema]  # fmt: skip
    record_set: dict[str, Any] = {
        "@type": "cr:RecordSet",
        "@id": name,
        "name": name,
        "description": f"Config `{name}`: one record per row of its Parquet shards.",
        "field": [split, *fields],
    }
    if "id" in schema.names:
        record_set["key"] = {"@id": f"{name}/id"}
    return record_set


def _field(field_id: str, arrow_type: Any, source: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """A Croissant field for a Parquet column (or a member of one, at `path` inside it)."""
    import pyarrow as pa

    field: dict[str, Any] = {"@type": "cr:Field", "@id": field_id, "name": field_id}
    own_source = {**source, "transform": {"jsonPath": ".".join(path)}} if path else source
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        field |= {"isArray": True, "arrayShape": "-1"}
        arrow_type = arrow_type.value_type
        if pa.types.is_struct(arrow_type):  # a list of objects: each member is read per element
            field["subField"] = [_field(f"{field_id}/{m.name}", m.type, own_source, [m.name]) for m in arrow_type]
            return field
    if pa.types.is_struct(arrow_type):
        field["subField"] = [_field(f"{field_id}/{m.name}", m.type, source, [*path, m.name]) for m in arrow_type]
        return field
    return field | {"dataType": _data_type(field_id, arrow_type), "source": own_source}


def _data_type(field_id: str, arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "sc:Text"
    if pa.types.is_boolean(arrow_type):
        return "sc:Boolean"
    if pa.types.is_integer(arrow_type):
        return "sc:Integer"
    if pa.types.is_floating(arrow_type):
        return "sc:Float"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "sc:Text"  # bytes: Croissant has no byte type of its own; mlcroissant reads them as they are
    raise AidsafeError(f"croissant.json: column {field_id} is of Parquet type {arrow_type}, which it cannot describe")


def _policies_record_set(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules as the run used them (recipe.yaml's snapshot), embedded; none without a snapshot."""
    kept = policy_snapshot(recipe)
    if kept is None:
        return []
    columns = {"id": "the rule's id, as thoughts cite it", "title": "its title", "rule": "the rule's text"}
    return [
        {
            "@type": "cr:RecordSet",
            "@id": "policies",
            "name": "policies",
            "description": f"Policy set `{kept.id}`, version `{kept.version}`: the rules the agents cited, "
            "as the run used them.",
            "key": {"@id": "policies/id"},
            "field": [
                {
                    "@type": "cr:Field",
                    "@id": f"policies/{c}",
                    "name": f"policies/{c}",
                    "description": what,
                    "dataType": "sc:Text",
                }
                for c, what in columns.items()
            ],  # fmt: skip
            "data": [
                {"policies/id": p.id, "policies/title": p.title, "policies/rule": " ".join(p.rule.split())}
                for p in kept.policies
            ],
        }
    ]
