"""A `policy-guard` record (one line of samples.jsonl) and the stage's part of stats.json, pure
but for reading the journal.

A record is one example, flat (the policy-guard contract): an original row judged under the
recipe's policy set has the row's id; a counterfactual variant is its own record, id
`<row id>~cf-<edit>-<rule>`, with the same `source_id`:

    id, source_id, prompt, response (or null),
    policy: {set_id, version, rule_ids (the ids of the set judged under), text (as a guard reads
             it, policy_format.render_policy_text), variant: null or {edit, rule, note}},
    verdict, rules (violated ids, [] when allowed), reasoning, rationale,
    gold (the row's gold verdict, originals only), label_source ("gold" or "judges_agree"),
    source (file:line), recipe_hash, metadata: {calls, prompt_tokens, completion_tokens, latency_s}

and `finished_at`, which every journal adds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from aidsafe.agents.policies import PolicySet
from aidsafe.guard.policy_format import render_policy_text
from aidsafe.guard.policy_judgement import Judgement
from aidsafe.guard.policy_rows import PolicyRow
from aidsafe.guard.policy_variants import VariantPlan
from aidsafe.run.journal import RunDirectory
from aidsafe.run.stats import StageCounts

__all__ = ["is_variant", "planned_variants", "policy_counts", "policy_record"]


def policy_record(
    row: PolicyRow,
    policy_set: PolicySet,
    judgement: Judgement,
    *,
    variant: tuple[VariantPlan, str] | None,
    calls: list[dict[str, Any]],
    recipe_hash: str,
) -> dict[str, Any]:
    """The record of `row` judged under `policy_set`; `variant`: the plan and its note, or None."""
    plan, note = variant if variant is not None else (None, "")
    return {
        "id": row.id if plan is None else plan.key(row.id),
        "source_id": row.id,
        "prompt": row.prompt,
        "response": row.response,
        "policy": {
            "set_id": policy_set.id,
            "version": policy_set.version,
            "rule_ids": policy_set.ids,
            "text": render_policy_text(policy_set),
            "variant": None if plan is None else {"edit": plan.edit, "rule": plan.rule, "note": note},
        },
        "verdict": judgement.verdict,
        "rules": list(judgement.rules),
        "reasoning": judgement.reasoning,
        "rationale": judgement.rationale,
        "gold": row.gold if plan is None else None,
        "label_source": "gold" if plan is None and row.gold is not None else "judges_agree",
        "source": row.source,
        "recipe_hash": recipe_hash,
        "metadata": {
            "calls": calls,
            "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
            "completion_tokens": sum(c["completion_tokens"] for c in calls),
            "latency_s": round(sum(c["latency_s"] for c in calls), 3),
        },
    }


def is_variant(record: dict[str, Any]) -> bool:
    return record["policy"]["variant"] is not None


def planned_variants(
    run_dir: RunDirectory, rows: dict[str, PolicyRow], plan: Callable[[dict[str, Any]], VariantPlan | None]
) -> Iterator[tuple[PolicyRow, VariantPlan, dict[str, Any]]]:
    """The variants the journal's judged originals of `rows` call for: (row, plan, original)."""
    for record in run_dir.iter_samples():
        row = rows.get(record["source_id"])
        if row is not None and not is_variant(record) and (chosen := plan(record)) is not None:
            yield row, chosen, record


def policy_counts(run_dir: RunDirectory, rows: dict[str, PolicyRow], repeats: int, planned: int) -> StageCounts:
    """The stage's part of stats.json (the rest is the one writer's, aidsafe.run.stats): its inputs
    are this run's rows and the variants their judged originals call for; then, over every record
    in the journal, originals and variants apart: verdicts and label sources, violated rule ids
    (originals: an added rule's id means another rule in every variant), variants by edit."""
    originals = {"records": 0, "verdicts": Counter(), "label_sources": Counter(), "rules": Counter()}
    variants = {"records": 0, "verdicts": Counter(), "by_edit": Counter()}
    for record in run_dir.iter_samples():
        if is_variant(record):
            variants["records"] += 1
            variants["verdicts"][record["verdict"]] += 1
            variants["by_edit"][record["policy"]["variant"]["edit"]] += 1
        else:
            originals["records"] += 1
            originals["verdicts"][record["verdict"]] += 1
            originals["label_sources"][record["label_source"]] += 1
            originals["rules"].update(record["rules"])
    section = {"originals": _plain(originals), "variants": _plain(variants)}
    before = {"repeated_inputs": repeats, "rows": len(rows), "variants_planned": planned}
    return StageCounts(len(rows) + planned, before, {"policy_guard": section})


def _plain(counts: dict[str, Any]) -> dict[str, Any]:
    return {key: dict(sorted(value.items())) if isinstance(value, Counter) else value for key, value in counts.items()}
