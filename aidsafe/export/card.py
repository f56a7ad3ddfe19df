"""The dataset card (README.md): Hub YAML metadata and a body a reviewer can check the data against.

The metadata goes through huggingface_hub's own `DatasetCardData` and is parsed back with
`DatasetCard` before it is written, so what the Hub reads is what was meant. The license is the
user's (`--license`, or the recipe's `license`); it is never guessed: without one the card's metadata
names none and a line in the body says that none was given (`--push-to-hub` refuses then).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from aidsafe.errors import AidsafeError
from aidsafe.export import card_kinds
from aidsafe.export.formats import FORMATS
from aidsafe.run.jsonl import write_atomic

__all__ = [
    "NO_FILTERS",
    "no_filters",
    "SHARD_FILE",
    "THOUGHT_DEDUP",
    "build_card",
    "data_files",
    "policy_snapshot",
    "published",
    "size_category",
    "title",
    "write_card",
]

# An export's Parquet shard: the Hub's naming (train-00000-of-00003) and 12 hex digits of its
# content's digest (aidsafe.export.writer names them so), which the card lists file by file.
SHARD_FILE = re.compile(r"(train|test)-\d{5}-of-\d{5}-[0-9a-f]{12}\.parquet")

# The Hub's own buckets (the `size_categories` values its dataset viewer filters on).
_SIZES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)
_DESCRIBE = {
    "sft": "TRL conversational `messages` (user prompt, assistant answer with the chain of thought in "
    "the template `aidsafe train` uses); train with `aidsafe train --data` or TRL's SFTTrainer",
    "aidsafe": "the columns of the published AIDSAFE dataset: `prompt`, `thoughts` (the refined chain of "
    "thought, one thought per line), `response`, `deliberation_log` (the agents' turns as JSON)",
    "thinkguard": "ThinkGuard SFT text: `prompt` (the Llama Guard 3 prompt, BeaverTails-14 categories) and "
    "`completion` (safety assessment, categories when unsafe, explanation); `aidsafe train sft thinkguard`",
    "thinkguard-label-only": "as `thinkguard` without the explanation (`completion` is the verdict and "
    "categories only): the label-only SFT ablation",
    "dpo": "TRL conversational preference data: `prompt` (the user's prompt only, never the belief), `chosen` and "
    "`rejected` (assistant answers with the chain of thought in the template `aidsafe train` uses); train with "
    "`aidsafe train dpo --data` or TRL's DPOTrainer",
    "policy-guard": "TRL conversational `messages`: the policy as the system message, the content (request and "
    "response), the answer with the full reasoning in `<think>` and the verdict and violated rule ids in "
    "`<result>`; and the columns `source_id`, `verdict`, `rules`, `gold`, `label_source`, `policy_set`, "
    "`rule_ids`, `variant` (null, or the counterfactual edit); `aidsafe train sft --data`",
    "policy-guard-rationale": "as `policy-guard`, the one-sentence rationale in `<think>` instead of the full "
    "reasoning",
    "policy-guard-verdict": "as `policy-guard` without `<think>`: the answer is the verdict and rule ids only",
    "guardreasoner": "GuardReasoner's `instruction` (the released classifier instruction, byte for byte), `input` "
    "(the conversation), `output` (reasoning steps per task and the answers block); train with "
    "`aidsafe train sft guardreasoner-rsft --data`",
}
# Hard-sample pairs are the guard model's raw texts, not conversations.
_DESCRIBE_HARD_SAMPLES = (
    "TRL standard preference data: `prompt` (instruction + newline + input, as the released models read it), "
    "`chosen` (a correct output), `rejected` (a wrong one), `weight` (the pair's hardness in [0.8, 1.2]); train "
    "with `aidsafe train dpo guardreasoner-hsdpo --data`"
)
_TASKS = {"guardreasoner": ["text-classification", "text-generation"],
          "hard-samples": ["text-classification", "text-generation"],
          "policy-guard": ["text-classification", "text-generation"]}  # fmt: skip
# Where the endpoint a run used is not part of what the data is (and may name an internal host).
_NOT_PUBLISHED = {"base_url", "api_key_env"}
# What the card (and croissant.json) say of the filters where none ran, and of generation's own dedup.
NO_FILTERS = (
    "None applied at export: these records are guard-model inputs, not the user prompts the corpus filters read."
)
THOUGHT_DEDUP = (
    "Within each sample, near-duplicate thoughts were dropped by embedding similarity and the refiner "
    "removed thoughts (see the counts above)."
)


def no_filters(kind: str) -> str:
    """What the card and croissant.json say where no corpus filter ran."""
    if kind == "policy-guard":
        return (
            "None applied at export: a row and its counterfactual variants share their content, "
            "which dedup would drop as near-duplicates."
        )
    return NO_FILTERS


def size_category(rows: int) -> str:
    return next((label for limit, label in _SIZES if rows < limit), "n>1T")


def build_card(
    run: Any,
    configs: dict[str, dict[str, int]],
    license_: str | None,
    filters: dict[str, Any] | None = None,
    files: dict[str, dict[str, list[str]]] | None = None,
) -> str:
    """README.md text for an export folder holding `configs` (format -> split -> rows) of `run`."""
    from huggingface_hub import DatasetCardData

    names = [n for n in FORMATS if n in configs]
    metadata = DatasetCardData(
        license=license_,  # None: the key is left out; nobody chose one, so none is claimed
        language=["en"],  # the agent cards and policies are English, so thoughts and answers are
        task_categories=_TASKS.get(run.kind, ["text-generation"]),
        tags=card_kinds.tags(run.kind),
        size_categories=[size_category(max(sum(s.values()) for s in configs.values()))],
        pretty_name=title(run),
        configs=[
            {
                "config_name": name,
                # The exact (content-addressed) files, not a pattern: `datasets` keys its cache on them.
                "data_files": [
                    {"split": split, "path": (files or {}).get(name, {}).get(split) or f"{name}/{split}-*.parquet"}
                    for split in configs[name]
                ],
                **({"default": True} if name == names[0] else {}),
            }
            for name in names
        ],
    )
    text = f"---\n{metadata.to_yaml()}\n---\n\n{_body(run, configs, names, license_, filters)}"
    _check(text, metadata.to_dict())
    return text


def write_card(
    output: Path,
    run: Any,
    configs: dict[str, dict[str, int]],
    license_: str | None,
    filters: dict[str, Any] | None = None,
) -> None:
    files = {name: data_files(output, name) for name in configs}
    write_atomic(output / "README.md", build_card(run, configs, license_, filters, files))


def data_files(output: Path, name: str) -> dict[str, list[str]]:
    """The shards of config `name` per split, as the card lists them (relative to the export)."""
    files: dict[str, list[str]] = {}
    for path in sorted((output / name).iterdir()):
        if (match := SHARD_FILE.fullmatch(path.name)) is not None:
            files.setdefault(match[1], []).append(f"{name}/{path.name}")
    return files


def _check(text: str, expected: dict[str, Any]) -> None:
    """Parse the card back with huggingface_hub; any difference is our bug, caught before writing."""
    from huggingface_hub import DatasetCard

    parsed = DatasetCard(text).data.to_dict()
    if parsed != expected:
        raise AidsafeError(f"dataset card metadata does not round-trip through huggingface_hub: {parsed} != {expected}")


def _body(
    run: Any, configs: dict[str, dict[str, int]], names: list[str], license_: str | None, filters: dict[str, Any] | None
) -> str:
    from aidsafe.export.filters import filters_section

    recipe = run.recipe
    resolved = recipe.get("resolved", {}) if isinstance(recipe.get("resolved"), dict) else {}
    policy_set = resolved.get("policy_set", {})
    parts = [
        f"# {title(run)}",
        card_kinds.summary(run.kind),
        "## Configs\n\n| config | what it holds | "
        + " | ".join(_splits(configs))
        + " |\n|---|---|"
        + "---|" * len(_splits(configs))
        + "\n"
        + "\n".join(
            f"| `{n}` | {_describe(n, run.kind)} | "
            + " | ".join(str(configs[n].get(s, 0)) for s in _splits(configs))
            + " |"
            for n in names
        ),
        card_kinds.split_note(run.kind),
        "## License\n\n"
        + (
            f"`{license_}`, as given at export."
            if license_
            else "No license was given at export (`aidsafe export --license`, or `license:` in the recipe); "
            "the metadata names none until the owner of the data chooses one."
        ),
        card_kinds.method_section(run.kind),
        card_kinds.dual_use_note(run.kind),
        _policies_section(recipe, policy_set) if "policies" in recipe else "",
        _teachers_section(card_kinds.teacher_agents(run)),
        card_kinds.counts_section(run),
        (filters_section(filters) if filters else f"## Filters\n\n{no_filters(run.kind)}")
        + (f"\n\n{THOUGHT_DEDUP}" if run.kind == "generation" else ""),
        _recipe_section(run),
        card_kinds.intended_use(run.kind),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _splits(configs: dict[str, dict[str, int]]) -> list[str]:
    return [s for s in ("train", "test") if any(s in c for c in configs.values())]


def _policies_section(recipe: dict[str, Any], policy_set: dict[str, Any]) -> str:
    from aidsafe.agents.policies import load_policies

    ref = recipe.get("policies")
    head = f"## Policies\n\nPolicy set `{policy_set.get('id', ref)}`, version `{policy_set.get('version', '?')}`."
    kept = policy_snapshot(recipe)
    if kept is not None:  # the texts as run, kept in recipe.yaml: the rules themselves
        rows = "\n".join(f"| {p.id} | {p.title} | {_cell(p.rule)} |" for p in kept.policies)
        table = "\n\n| id | title | rule |\n|---|---|---|\n" + rows
        return head + " The rules the agents cited, as the run used them:" + table
    try:
        loaded = load_policies(ref) if isinstance(ref, str) else None
    except AidsafeError:
        loaded = None  # a custom policy file moved since the run: the ids and version still identify it
    if loaded is None or loaded.version != policy_set.get("version", loaded.version):
        return head + f" (the policy texts at `{ref}` are not the version used, so titles are left out.)"
    return head + "\n\n| id | title |\n|---|---|\n" + "\n".join(f"| {p.id} | {p.title} |" for p in loaded.policies)


def _teachers_section(agents: dict[str, Any]) -> str:
    rows = [
        f"| {role} | {slot.get('name', role)} | `{slot.get('model')}` | `{json.dumps(slot.get('sampling', {}))}` |"
        for role, slots in agents.items()
        for slot in (slots if isinstance(slots, list) else [slots])
        if isinstance(slot, dict)
    ]
    if not rows:
        return ""
    return "## Teacher models\n\n| role | agent | model | sampling |\n|---|---|---|---|\n" + "\n".join(rows)


def policy_snapshot(recipe: dict[str, Any]) -> Any:
    """The policy set as the run used it (recipe.yaml's `resolved.policies`, an
    aidsafe.agents.policies.PolicySet); None for a run that kept no snapshot, or a damaged one."""
    from aidsafe.agents.policies import PolicySet

    resolved = recipe.get("resolved")
    snapshot = resolved.get("policies") if isinstance(resolved, dict) else None
    if not isinstance(snapshot, dict):
        return None
    try:
        return PolicySet.model_validate(snapshot)
    except ValueError:
        return None


def title(run: Any) -> str:
    name = run.recipe.get("name") or ("hard-samples" if run.kind == "hard-samples" else "aidsafe")
    return f"{name} {'pairs' if run.kind in ('pairs', 'hard-samples') else 'corpus'} (aidsafe)"


def _describe(name: str, kind: str) -> str:
    return _DESCRIBE_HARD_SAMPLES if (name, kind) == ("dpo", "hard-samples") else _DESCRIBE[name]


def _recipe_section(run: Any) -> str:
    if run.kind == "hard-samples":
        files = run.stats.get("files", {}) if isinstance(run.stats.get("files"), dict) else {}
        names = ", ".join(f"`{Path(f).name}`" for f in files) or "none recorded"
        return (
            f"## Recipe\n\nNone: `aidsafe pairs hard-samples` mined these pairs from predictions files ({names}, in "
            f"that order; the first file's pair of an input wins). Content hash of pairs.jsonl `{run.recipe_hash}`."
        )
    return (
        f"## Recipe\n\nSemantic hash `{run.recipe_hash}` (of the recipe's semantic fields, the policies and "
        "the agent cards). Resolved values (endpoints left out):\n\n```yaml\n"
        + yaml.safe_dump(published(run.recipe), sort_keys=False, allow_unicode=True).rstrip()
        + "\n```"
    )


def published(value: Any) -> Any:
    """`value` (a recipe, or part of one) without the endpoints a run used (a host, a key's variable)."""
    if isinstance(value, dict):
        return {k: published(v) for k, v in value.items() if k not in _NOT_PUBLISHED}
    if isinstance(value, list):
        return [published(v) for v in value]
    return value


def _cell(text: str) -> str:
    """`text` as one Markdown table cell: one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
