"""Policy-conditioned guard data: `aidsafe generate policy-guard --input ROWS --output RUN`, on the
stage contract (a recipe, a `Task`, the entrance every stage takes: aidsafe.run.stage.run_stage).

Each row (a prompt, an optional response, an optional gold verdict: aidsafe.guard.policy_rows)
is judged against the recipe's policy set, the policy text in the system message (the same for
every row, so a server's prefix cache serves it once). With gold, one judge explains the gold
verdict (the schema pins it); without, two judges answer on their own and must agree on the
verdict and the rule ids, or the row is rejected `judges_disagree`, so no label is one model's
guess. The schemas, checks and agreement are aidsafe.guard.policy_judgement.

Counterfactual policies (aidsafe.guard.policy_variants): a share of the judged rows is judged
again under an edited set (a rule dropped or relaxed, or one added that the content breaks; the
editor agent writes a relaxed or added rule), by both judges, each variant its own record.

One item is one record on the executor, and a variant exists only once its original is judged
(a drop or relax edits the rule it violated). So the run is two passes over one journal, both
through `run_stage` (its `then`): first the rows, then the variants that the journal's judged
originals call for, derived from the records themselves. Both passes resume alike: a rerun skips
what either finished, and the variants of originals judged by an earlier run are done by the
next. The two passes share one client and one stats.json (aidsafe.guard.policy_records counts
both; its `inputs` are the rows plus the variants planned).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aidsafe.agents.cards import render_template
from aidsafe.agents.policies import PolicySet
from aidsafe.guard.policy_format import content_block, render_policy_text
from aidsafe.guard.policy_judgement import Judgement, agree, check_judgement, judge_values, judgement_model
from aidsafe.guard.policy_recipe import LoadedPolicyGuardRecipe, load_policy_guard_recipe
from aidsafe.guard.policy_records import planned_variants, policy_counts, policy_record
from aidsafe.guard.policy_rows import PolicyRow, read_policy_rows
from aidsafe.guard.policy_variants import VariantPlan, check_edit, drop_note, edit_model, plan_variant, variant_set
from aidsafe.guard.synthesis import ask_teacher
from aidsafe.run.journal import input_digest
from aidsafe.run.loop import run_async
from aidsafe.run.stage import StageRequest, run_stage
from aidsafe.run.task import RunContext, Task
from aidsafe.teacher.types import Teacher

__all__ = [
    "RECIPE_KIND",
    "PolicyGuardTask",
    "Variant",
    "generate_policy_guard",
    "generate_policy_guard_async",
]

RECIPE_KIND = "policy-guard"


@dataclass(frozen=True)
class Variant:
    """A row to judge again under a counterfactual policy; `verdict` is its original's."""

    row: PolicyRow
    plan: VariantPlan
    verdict: str


def _messages(card: Any, values: Mapping[str, str]) -> list[dict[str, str]]:
    return [
        {"role": part, "content": render_template(getattr(card, part), dict(values))} for part in ("system", "user")
    ]


class PolicyGuardTask(Task[Any]):
    """A row (or a variant) judged under the policy, or a named rejection."""

    noun = "examples"
    stage = "judge"
    # Two judges that disagree judged the content; the run did its work (aidsafe.run.stage).
    verdicts = frozenset({"judges_disagree"})

    def __init__(self, loaded: LoadedPolicyGuardRecipe, teacher: Teacher, check_endpoints: bool = True) -> None:
        self.loaded, self.teacher = loaded, teacher
        self.checked = not check_endpoints  # the second pass does not check again
        self.policy_text = render_policy_text(loaded.policies)

    def key(self, item: PolicyRow | Variant) -> str:
        return item.id if isinstance(item, PolicyRow) else item.plan.key(item.row.id)

    def digest(self, item: PolicyRow | Variant) -> str:
        if isinstance(item, PolicyRow):
            return item.digest()
        return input_digest(json.dumps([item.row.prompt, item.row.response, item.plan.edit, item.plan.rule]))

    def describe(self, item: PolicyRow | Variant) -> dict[str, Any]:
        if isinstance(item, PolicyRow):
            return {"source": item.source, "gold": item.gold}
        return {"source": item.row.source, "variant": {"edit": item.plan.edit, "rule": item.plan.rule}}

    async def preflight(self) -> None:
        if self.checked:
            return
        self.checked = True
        for endpoint in dict.fromkeys(slot.endpoint for slot in self.loaded.slots.values()):
            await self.teacher.check_reachable(endpoint)

    async def run(self, item: PolicyRow | Variant, ctx: RunContext) -> dict[str, Any]:
        loaded = self.loaded
        if isinstance(item, PolicyRow):
            judgement, calls = await self._judge(loaded.policies, self.policy_text, item, item.gold)
            return policy_record(item, loaded.policies, judgement, variant=None, calls=calls,
                                 recipe_hash=loaded.recipe_hash)  # fmt: skip
        plan, calls = item.plan, []
        if plan.edit == "drop":  # nothing to write: the rule goes
            edit, note = None, drop_note(loaded.policies, plan.rule)
        else:
            reply, call = await self._ask("editor", self._editor_values(item), edit_model(plan.edit))
            edit = check_edit(reply.to_edit(), plan.edit)
            note, calls = edit.note, [call.to_dict()]
        varied = variant_set(loaded.policies, plan, edit)
        judgement, judged = await self._judge(varied, render_policy_text(varied), item.row, None)
        return policy_record(item.row, varied, judgement, variant=(plan, note), calls=calls + judged,
                             recipe_hash=loaded.recipe_hash)  # fmt: skip

    async def _judge(
        self, policy_set: PolicySet, text: str, row: PolicyRow, gold: str | None
    ) -> tuple[Judgement, list[dict[str, Any]]]:
        """Gold: the judge explains it. None: both judges, at once, checked, and they must agree."""
        ids = tuple(policy_set.ids)
        slots = ("judge",) if gold is not None else ("judge", "second_judge")
        values = judge_values(text, row.prompt, row.response, gold)
        answers = await asyncio.gather(
            *(self._ask(slot, values, judgement_model(ids, gold)) for slot in slots), return_exceptions=True
        )
        for answer in answers:  # the first slot's failure is the one named
            if isinstance(answer, BaseException):
                raise answer
        judgements = [check_judgement(reply.to_judgement(), ids, gold, slot)
                      for slot, (reply, _) in zip(slots, answers, strict=True)]  # fmt: skip
        if len(judgements) == 2:
            agree(*judgements)
        return judgements[0], [call.to_dict() for _, call in answers]

    async def _ask(self, slot_key: str, values: Mapping[str, str], schema: Any) -> tuple[Any, Any]:
        slot = self.loaded.slots[slot_key]
        return await ask_teacher(self.teacher, slot, slot_key, _messages(slot.card, values), schema, slot_key)

    def _editor_values(self, item: Variant) -> dict[str, str]:
        rule = item.plan.rule
        current = next((p for p in self.loaded.policies.policies if p.id == rule), None)
        return {
            "policy": self.policy_text,
            "content": content_block(item.row.prompt, item.row.response),
            "verdict": item.verdict,
            "edit": item.plan.edit,
            "rule_id": rule,
            "rule_text": f"{current.title}: {' '.join(current.rule.split())}" if current else "(a new rule)",
        }


async def generate_policy_guard_async(
    request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    """`aidsafe generate policy-guard`: `request` is the CLI's `GenerateRequest`."""
    loaded = load_policy_guard_recipe(request.recipe, request.recipe_overrides())
    prompt_field = getattr(request, "prompt_field", "prompt")
    rows, repeats = read_policy_rows(str(request.input), prompt_field, getattr(request, "gold_field", None))
    rows = rows[: request.limit]
    by_id, recipe, journal = {row.id: row for row in rows}, loaded.recipe, loaded.journal(request.output)
    counterfactuals = recipe.counterfactuals

    def plan(record: dict[str, Any]) -> VariantPlan | None:
        return plan_variant(record["source_id"], record["verdict"], record["rules"], loaded.policies,
                            share=counterfactuals.share, edits=counterfactuals.edits, seed=recipe.seed)  # fmt: skip

    def variants() -> Sequence[Variant]:
        return [Variant(row, chosen, original["verdict"])
                for row, chosen, original in planned_variants(journal.run_dir, by_id, plan)]  # fmt: skip

    def counts(_: Any) -> Any:
        planned = sum(1 for _ in planned_variants(journal.run_dir, by_id, plan))
        return policy_counts(journal.run_dir, by_id, repeats, planned)

    _, stats = await run_stage(
        lambda client, owns: PolicyGuardTask(loaded, client, check_endpoints=owns), rows, journal,
        settings=recipe.teacher, seed=recipe.seed, env=env, teacher=teacher, workers=recipe.teacher.most_in_flight,
        counts=counts, then=variants, retry_rejected=request.retry_rejected, progress=request.progress,
    )  # fmt: skip
    return stats


def generate_policy_guard(
    request: StageRequest, env: Mapping[str, str], teacher: Teacher | None = None
) -> dict[str, Any]:
    return run_async(generate_policy_guard_async(request, env, teacher))
