"""The stage kinds: each kind of recipe and of run, declared once, and what takes its output.

"What kind of recipe or run is this, and which commands take it?" is answered here and nowhere
else: the CLI (`generate`, `validate`, `graph`, `pairs make`, `train`), the JSON schemas, export,
report and train ask this registry. Stage code is named by "module:attr" strings and imported
only when used (`load_object`), so export/, report/ and train/ consult the registry without
importing any stage package: this module imports only config/, run/jsonl.py and errors.

A recipe says its kind on its first lines (`kind: pairs`); a run directory says it in run.json
(`"kind": "pairs"`, written when the executor opens it). Recipes without a `kind:` and run
directories written before run.json held one are told apart once, here (`recipe_kind`,
`run_kind`), by the rules aidsafe used before.

Adding a stage is one `StageKind(...)` in `KINDS`: a one-call stage that writes a run directory
of `samples.jsonl` needs its name, title, command, recipe model, schema name, loader and runner;
what consumes its output (export formats, training rows, report view) is optional. Its recipe
model has a `kind` field, which its runner hands to `RecipeJournal` so run.json names the kind
(`LoadedGuardRecipe.journal` does that for every guard-data stage).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aidsafe.config.resources import ResourceNotFoundError, resolve_resource
from aidsafe.config.yamlio import load_yaml
from aidsafe.errors import AidsafeError
from aidsafe.run.jsonl import iter_jsonl

__all__ = [
    "KINDS",
    "RecordField",
    "StageKind",
    "load_object",
    "record_kind",
    "recipe_for",
    "recipe_kind",
    "recipe_kind_of_file",
    "recipe_kinds",
    "run_kind",
]


@dataclass(frozen=True)
class RecordField:
    """A field every record of a kind has: checked before export and training read the records."""

    key: str
    types: type | tuple[type, ...]
    expected: str  # how the error names the type: "a str"


@dataclass(frozen=True)
class StageKind:
    name: str  # recipe `kind:`, run.json `kind`
    title: str  # how messages name its runs: "a {title} run directory"
    command: str  # the command that makes it (and, for a recipe kind, takes its recipe)
    # -- its recipe (None: the stage takes no recipe) --------------------------------------------
    recipe: str | None = None  # "module:Model", the pydantic model of its YAML
    schema: str | None = None  # its JSON schema's name: `aidsafe schema NAME`, schemas/NAME.schema.json
    load: str | None = None  # "module:func": func(ref, overrides) -> the recipe loaded and checked, no LLM call
    describe: str | None = None  # "module:func": func(loaded) -> what `aidsafe validate` prints after "ok: "
    graph: str | None = None  # "module:func": func(loaded) -> the compiled graph `aidsafe graph` draws
    run: str | None = None  # "module:func": func(request, env) -> stats: what `command` calls
    # "module:func": func(loaded, input_tokens) -> aidsafe.teacher.calls.RecipeCalls, its agent slots
    # and their longest calls, for `aidsafe check` (None: the stage calls no teacher)
    check: str | None = None
    shards: bool = False  # `generate --shard K/N` splits it
    builtin_dir: str = ""  # where its built-in recipes live under recipes/
    recipe_keys: frozenset[str] = frozenset()  # top-level keys that mark its recipe when it has no `kind:`
    # -- its output -------------------------------------------------------------------------------
    output_file: bool = False  # one JSONL file rather than a directory
    records: str | None = "samples.jsonl"  # the records file in its directory; None: no records (a model)
    fields: tuple[RecordField, ...] = ()
    record_keys: frozenset[str] = frozenset()  # keys that tell its records apart when nothing else says
    export: tuple[str, ...] = ()  # `aidsafe export --format`s, the default first
    train: Mapping[str, str] = field(default_factory=dict)  # "sft"/"dpo" -> "module:func(record, recipe) -> row"
    report: str | None = None  # its view in aidsafe/report/kinds (None: the generic one)
    paper: str = "aidsafe"  # whose method made the data: the dataset card cites it
    filtered: bool = False  # records hold the user's prompt in `prompt`: the corpus filters apply

    @property
    def consumers(self) -> tuple[str, ...]:
        """The commands that take this kind's output as it is written (a directory, or the file)."""
        if self.records is None:
            return ()
        return (*(f"train {mode}" for mode in self.train), *(("export",) if self.export else ()), "report", "show")


def _text(*keys: str) -> tuple[RecordField, ...]:
    return tuple(RecordField(key, str, "a str") for key in keys)


_SIDE = "a {thoughts, response} object"

KINDS: dict[str, StageKind] = {
    kind.name: kind
    for kind in (
        StageKind(
            "generation", "generation", "aidsafe generate",
            recipe="aidsafe.generation.recipe:Recipe", schema="recipe",
            load="aidsafe.generation.pipeline:load_pipeline", describe="aidsafe.cli.recipes:describe_generation",
            graph="aidsafe.cli.recipes:generation_graph", run="aidsafe.generation.runner:generate", shards=True,
            check="aidsafe.generation.longest:slot_calls",
            fields=(*_text("id", "prompt", "response"), RecordField("thoughts", list, "a list")),
            record_keys=frozenset({"thoughts"}),  # pairs nest theirs in chosen and rejected
            export=("sft", "aidsafe"), train={"sft": "aidsafe.train.data:generation_row"},
            report="generation", filtered=True,
        ),
        StageKind(
            "pairs", "pairs", "aidsafe pairs make",
            recipe="aidsafe.pairs.recipe:PairsRecipe", schema="pairs-recipe",
            load="aidsafe.pairs.recipe:load_pairs_pipeline", describe="aidsafe.cli.recipes:describe_pairs",
            graph="aidsafe.cli.recipes:pairs_graph", run="aidsafe.pairs.runner:make_pairs",
            check="aidsafe.pairs.longest:slot_calls",
            recipe_keys=frozenset({"pairs"}),
            fields=(*_text("id", "prompt"), RecordField("chosen", dict, _SIDE), RecordField("rejected", dict, _SIDE)),
            record_keys=frozenset({"chosen", "rejected", "scores"}),
            export=("dpo",), train={"dpo": "aidsafe.train.data:pairs_row"}, report="pairs", filtered=True,
        ),
        StageKind(
            "guardreasoner", "GuardReasoner traces", "aidsafe generate",
            recipe="aidsafe.guard.traces:TraceRecipe", schema="guardreasoner-recipe",
            load="aidsafe.guard.traces:load_trace_recipe", describe="aidsafe.cli.recipes:describe_traces",
            run="aidsafe.guard.traces:generate_traces", check="aidsafe.guard.longest:trace_calls",
            fields=_text("id", "instruction", "input", "output"),
            record_keys=frozenset({"instruction", "output", "labels"}),
            export=("guardreasoner",),
            train={"sft": "aidsafe.train.data:trace_row", "grpo": "aidsafe.train.data:trace_grpo_row"},
            report="guard_traces", paper="guardreasoner",
        ),
        # A one-call stage (aidsafe/guard/critiques.py): this entry is all it registers.
        StageKind(
            "thinkguard", "ThinkGuard", "aidsafe generate",
            recipe="aidsafe.guard.critiques:CritiqueRecipe", schema="thinkguard-recipe",
            load="aidsafe.guard.critiques:load_critique_recipe", describe="aidsafe.cli.recipes:describe_critiques",
            run="aidsafe.guard.critiques:generate_critiques", check="aidsafe.guard.longest:critique_calls",
            fields=_text("id", "input", "output", "output_label_only"),
            record_keys=frozenset({"output_label_only"}),
            export=("thinkguard", "thinkguard-label-only"), train={"sft": "aidsafe.train.data:critique_row"},
            paper="thinkguard", filtered=True,
        ),
        # Two passes over one journal: the rows, then their counterfactual variants (aidsafe/guard/policy_guard.py).
        StageKind(
            "policy-guard", "policy-guard", "aidsafe generate",
            recipe="aidsafe.guard.policy_recipe:PolicyGuardRecipe", schema="policy-guard-recipe",
            load="aidsafe.guard.policy_recipe:load_policy_guard_recipe",
            describe="aidsafe.cli.recipes:describe_policy_guard",
            run="aidsafe.guard.policy_guard:generate_policy_guard", check="aidsafe.guard.longest:policy_guard_calls",
            fields=(*_text("id", "source_id", "prompt", "verdict", "reasoning", "rationale"),
                    RecordField("policy", dict, "a {set_id, version, rule_ids, text, variant} object"),
                    RecordField("rules", list, "a list of rule ids")),
            record_keys=frozenset({"source_id", "policy", "label_source"}),
            export=("policy-guard", "policy-guard-rationale", "policy-guard-verdict"),
            train={"sft": "aidsafe.train.data:policy_guard_row", "grpo": "aidsafe.train.data:policy_guard_grpo_row"},
        ),
        StageKind(
            "hard-samples", "hard-sample pairs", "aidsafe pairs hard-samples",
            records="pairs.jsonl",
            fields=(*_text("prompt", "chosen", "rejected"), RecordField("weight", (int, float), "a number")),
            record_keys=frozenset({"chosen", "rejected", "weight"}),
            export=("dpo",), train={"dpo": "aidsafe.train.data:hard_sample_row"}, paper="guardreasoner",
        ),
        StageKind(
            "predictions", "guard predictions", "aidsafe predict guard",
            output_file=True, record_keys=frozenset({"predict"}), report="predictions", paper="guardreasoner",
        ),
        # The evaluations' run directories (per judge for `eval cot`): `report` and `show` read them.
        StageKind("eval-cot", "CoT grading", "aidsafe eval cot", recipe_keys=frozenset({"eval", "judge"})),
        StageKind("eval-safety", "safety eval", "aidsafe eval safety", recipe_keys=frozenset({"stage", "student"})),
        StageKind(
            "train", "training", "aidsafe train sft|dpo|grpo",
            recipe="aidsafe.train.recipe:TrainRecipe", schema="train-recipe",
            load="aidsafe.train.recipe:load_train_recipe", describe="aidsafe.cli.recipes:describe_train",
            builtin_dir="train", recipe_keys=frozenset({"mode"}), records=None,
        ),
    )
}  # fmt: skip


def recipe_kinds() -> list[StageKind]:
    return [kind for kind in KINDS.values() if kind.recipe is not None]


def load_object(spec: str) -> Any:
    """The object a "module:attr" string names, imported now."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


# -- recipes ----------------------------------------------------------------------------------------


def _infer(data: Mapping[str, Any], kinds: list[StageKind]) -> StageKind | None:
    """The kind of a recipe mapping without `kind:`: the first whose marking keys it has."""
    return next((kind for kind in kinds if kind.recipe_keys and kind.recipe_keys <= data.keys()), None)


def recipe_kind_of_file(path: Path) -> StageKind:
    """The kind of the recipe file at `path`: its `kind:`, else inferred as before kinds were
    declared (a `pairs:` section: pairs; a `mode:`: train; otherwise AIDSAFE generation)."""
    data, lines = load_yaml(path)
    declared = data.get("kind")
    kinds = recipe_kinds()
    if declared is None:
        return _infer(data, kinds) or KINDS["generation"]
    if not isinstance(declared, str) or declared not in {k.name for k in kinds}:
        line = lines.get(("kind",))
        raise AidsafeError(
            f"{path}:{line}: kind: {declared!r} is not a recipe kind; expected one of: "
            f"{', '.join(k.name for k in kinds)}"
        )
    return KINDS[declared]


def _resolve(ref: str | Path, folders: list[str]) -> Path:
    """`ref` as a file: a path, else a built-in recipe of that name in the first of `folders` (under
    recipes/) that has one; the error is the one for the first folder."""
    first: ResourceNotFoundError | None = None
    for folder in folders:
        try:
            return resolve_resource(ref, "recipes", folder)
        except ResourceNotFoundError as exc:
            first = first or exc
    assert first is not None
    raise first


def _folders(preferred: list[str]) -> list[str]:
    return list(dict.fromkeys([*preferred, *(kind.builtin_dir for kind in recipe_kinds())]))


def recipe_kind(ref: str | Path) -> StageKind:
    """The kind of the recipe `ref` (a path or a built-in name; built-in stage recipes first, then
    the training ones under recipes/train/)."""
    return recipe_kind_of_file(_resolve(ref, _folders([""])))


def recipe_for(ref: str | Path, command: str) -> StageKind:
    """The kind of the recipe `ref` given to `command` ("aidsafe generate"); a recipe that another
    command runs is refused with one line naming that command, before its model sees it."""
    mine = [kind.builtin_dir for kind in recipe_kinds() if kind.command == command]
    kind = recipe_kind_of_file(_resolve(ref, _folders(mine)))
    if kind.command != command:
        raise AidsafeError(f"{ref} is a {kind.name} recipe: use `{kind.command}`")
    return kind


# -- runs -------------------------------------------------------------------------------------------


def record_kind(record: Mapping[str, Any] | None) -> str | None:
    """The kind whose records look like `record` (for a lone JSONL file, or an old run without a recipe)."""
    if not isinstance(record, Mapping):
        return None
    return next((kind.name for kind in KINDS.values() if kind.record_keys and kind.record_keys <= record.keys()), None)


def run_kind(path: Path) -> str | None:
    """What made the run at `path`, a directory or one JSONL file; None when it holds no records
    of any kind. Read from run.json's `kind`; for directories written before run.json said it,
    inferred as then: recipe.yaml's `kind:`, its marking keys (a `pairs:` section ...), any other
    recipe is AIDSAFE generation; without a recipe, the records file or the first record's keys.
    A name this version does not know is returned as it is (the report shows it generically)."""
    path = Path(path)
    if path.is_file():
        return record_kind(_first_record(path))
    if not path.is_dir():
        return None
    declared = _read(path / "run.json", json.loads).get("kind")
    if isinstance(declared, str):
        return declared
    recipe = _read(path / "recipe.yaml", yaml.safe_load)
    if isinstance(recipe.get("kind"), str):
        return recipe["kind"]
    if recipe:
        return (_infer(recipe, list(KINDS.values())) or KINDS["generation"]).name
    samples = path / "samples.jsonl"
    if not samples.is_file():  # a stage with a records file of its own (hard-sample mining: pairs.jsonl)
        own = [k for k in KINDS.values() if k.records not in (None, samples.name) and not k.output_file]
        return next((k.name for k in own if (path / str(k.records)).is_file()), None)
    return record_kind(_first_record(samples))


def _read(path: Path, parse: Any) -> dict[str, Any]:
    """A mapping aidsafe wrote, or {} when it is missing; a damaged file is an error naming it."""
    if not path.is_file():
        return {}
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError is a ValueError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AidsafeError(f"{path}: cannot be parsed ({first}); expected the file aidsafe wrote") from None
    return data if isinstance(data, dict) else {}


def _first_record(path: Path) -> dict[str, Any] | None:
    for _, record in iter_jsonl(path, skip_partial_tail=True):
        if isinstance(record, dict):
            return record
    return None
