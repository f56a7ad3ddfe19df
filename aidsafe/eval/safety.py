"""`aidsafe eval safety`: a served student answers the safety benchmarks; judges score the answers.

One `SafetyTask` item is one benchmark prompt: the student's chat reply (greedy), then one judge
call chosen by the benchmark (aidsafe.eval.benchmarks): BeaverTails and WildChat get a safe/unsafe
verdict (a served Llama Guard 3 over completions, or the `safety_judge` card), StrongREJECT its
rubric (`strongreject_judge`), XSTest its refusal class (`refusal_judge`). It runs on the
executor, through the one entrance every stage takes (aidsafe.run.stage.run_stage), with
`--output` as the run directory: one record per finished prompt in samples.jsonl, rejections
with reasons in rejected.jsonl, stats.json, and a rerun asks only what is not finished. The run's
settings (student, judges, cards, benchmarks) are its "recipe": an output made with other
settings is refused rather than mixed.

A reply that is empty, or an HTML page instead of an answer (a proxy's error page passed on as
content), is a rejection of that prompt, as is a judge whose reply never fits its schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.agents.cards import AgentCard
from aidsafe.agents.settings import TeacherSettings
from aidsafe.errors import AidsafeError
from aidsafe.eval.benchmarks import BENCHMARKS, SafetyItem
from aidsafe.eval.judges import ask_judge, load_judge_card, strongreject_score
from aidsafe.eval.safety_report import SafetyReport, build_report
from aidsafe.oneline import one_line
from aidsafe.run.executor import RecipeJournal
from aidsafe.run.identity import run_hash
from aidsafe.run.journal import RunDirectory, input_digest
from aidsafe.run.jsonl import write_atomic
from aidsafe.run.stage import run_stage
from aidsafe.run.task import Rejection, RunContext, Task, rejection_for
from aidsafe.teacher.types import Endpoint, TeacherError

__all__ = ["LLAMA_GUARD", "SafetySettings", "SafetyTask", "evaluate_safety"]

LLAMA_GUARD = "llama-guard-3"
_HTML = re.compile(r"\A\s*(<!doctype html|<html\b|<head\b|<body\b)", re.IGNORECASE)


@dataclass(frozen=True)
class SafetySettings:
    student: Endpoint
    judge: Endpoint  # the safe/unsafe judge
    grader: Endpoint  # the rubric and refusal cards (the judge's endpoint unless told otherwise)
    judge_kind: str = "safety_judge"  # LLAMA_GUARD, or a card name/path for the safety_judge role
    strongreject_card: str | None = None
    refusal_card: str | None = None
    max_tokens: int = 512
    concurrency: int = 16


class SafetyTask(Task[SafetyItem]):
    noun = "prompts"
    stage = "eval_safety"

    def __init__(self, settings: SafetySettings, client: Any, cards: dict[str, AgentCard], metrics: set[str]) -> None:
        self.settings = settings
        self.client = client
        self.cards = cards
        self.metrics = metrics

    def key(self, item: SafetyItem) -> str:
        return item.id

    def digest(self, item: SafetyItem) -> str:
        return input_digest(item.prompt)

    def describe(self, item: SafetyItem) -> dict[str, Any]:
        return {"benchmark": item.benchmark, "prompt": item.prompt[:500]}

    async def preflight(self) -> None:
        s = self.settings
        await self.client.check_reachable(s.student, structured=False)
        if "safe_rate" in self.metrics:
            await self.client.check_reachable(s.judge, structured=s.judge_kind != LLAMA_GUARD)
        if self.metrics & {"strongreject", "xstest"} and (s.grader != s.judge or s.judge_kind == LLAMA_GUARD):
            await self.client.check_reachable(s.grader)

    async def run(self, item: SafetyItem, ctx: RunContext) -> dict[str, Any]:
        response, finish = await self._answer(item)
        record: dict[str, Any] = {
            "id": item.id, "benchmark": item.benchmark, "prompt": item.prompt, "kind": item.kind,
            "response": response, "finish_reason": finish,
        }  # fmt: skip
        metric = BENCHMARKS[item.benchmark].metric
        if metric == "safe_rate" and self.settings.judge_kind == LLAMA_GUARD:
            record.update(await self._llama_guard(item, response))
        elif metric == "safe_rate":
            verdict = await self._card("safety_judge", self.settings.judge, item, response)
            record.update(judge=verdict, safe=verdict["verdict"] == "safe")
        elif metric == "strongreject":
            grade = await self._card("strongreject_judge", self.settings.grader, item, response)
            score = strongreject_score(grade["refused"], grade["convincing"], grade["specific"])
            record.update(judge=grade, refused=bool(grade["refused"]), score=score)
        else:
            verdict = await self._card("refusal_judge", self.settings.grader, item, response)
            record.update(judge=verdict, refusal=verdict["label"], refused=verdict["label"] != "full_compliance")
        return record

    async def _answer(self, item: SafetyItem) -> tuple[str, str | None]:
        try:
            reply, _ = await self.client.chat_text(
                agent="student", messages=[{"role": "user", "content": item.prompt}], endpoint=self.settings.student,
                sampling={"temperature": 0, "max_tokens": self.settings.max_tokens},
            )  # fmt: skip
        except TeacherError as exc:
            raise rejection_for("student", exc) from exc
        text = reply["text"].strip()
        if not text:
            raise Rejection(
                "student", "empty_reply", f"the student sent no text (finish_reason {reply['finish_reason']})"
            )
        if _HTML.match(text):
            raise Rejection("student", "malformed_reply", f"an HTML page, not an answer: {one_line(text, 80)!r}")
        return text, reply["finish_reason"]

    async def _card(self, role: str, endpoint: Endpoint, item: SafetyItem, response: str) -> dict[str, Any]:
        try:
            verdict, _ = await ask_judge(self.client, self.cards[role], endpoint, item.prompt, response)
        except TeacherError as exc:
            raise rejection_for(role, exc) from exc
        return verdict.model_dump()

    async def _llama_guard(self, item: SafetyItem, response: str) -> dict[str, Any]:
        from aidsafe.guard.judge import GuardClient, guard_p_unsafe

        guard = GuardClient(self.client, self.settings.judge, agent="safety_judge")
        try:
            score = await guard_p_unsafe(guard, LLAMA_GUARD, item.prompt, response)
        except TeacherError as exc:  # InvalidOutputError too: a reply with no verdict at all
            raise rejection_for("safety_judge", exc) from exc
        judge = {
            "label": score.label, "p_unsafe": score.p_unsafe, "text": score.text, "from_logprobs": score.from_logprobs,
        }  # fmt: skip
        return {"judge": judge, "safe": score.label == "safe", "p_unsafe": score.p_unsafe}


def _run_settings(settings: SafetySettings, cards: dict[str, AgentCard], items: list[SafetyItem]) -> dict[str, Any]:
    """What the records depend on: a different student, judge, card or benchmark is another run."""
    return {
        "stage": "eval_safety",
        "student": {"base_url": settings.student.base_url, "model": settings.student.model},
        "judge": {"kind": settings.judge_kind, "base_url": settings.judge.base_url, "model": settings.judge.model},
        "grader": {"base_url": settings.grader.base_url, "model": settings.grader.model},
        "cards": {role: card.model_dump() for role, card in sorted(cards.items())},
        "max_tokens": settings.max_tokens,
        "benchmarks": sorted({item.benchmark for item in items}),
    }


async def evaluate_safety(
    items: list[SafetyItem],
    settings: SafetySettings,
    output: Path,
    *,
    progress: bool = True,
    seed: int = 0,
    env: Mapping[str, str] | None = None,
) -> SafetyReport:
    """Run every unfinished item, then report over every finished record of these items. `env`:
    where API keys are read (None: the process environment)."""
    metrics = {BENCHMARKS[item.benchmark].metric for item in items}
    cards: dict[str, AgentCard] = {}
    if "safe_rate" in metrics and settings.judge_kind != LLAMA_GUARD:
        cards["safety_judge"] = load_judge_card("safety_judge", settings.judge_kind)
    if "strongreject" in metrics:
        cards["strongreject_judge"] = load_judge_card("strongreject_judge", settings.strongreject_card)
    if "xstest" in metrics:
        cards["refusal_judge"] = load_judge_card("refusal_judge", settings.refusal_card)
    resolved = _run_settings(settings, cards, items)
    settings_hash = run_hash(resolved, ensure_ascii=True)  # the bytes eval safety always hashed
    run_dir = RunDirectory(output)
    # One client for the student and every judge: the endpoints are per call, the limits shared.
    client_settings = TeacherSettings(model=settings.student.model, concurrency=settings.concurrency)
    await run_stage(
        lambda client, _: SafetyTask(settings, client, cards, metrics), items,
        RecipeJournal(run_dir, settings_hash, resolved, "eval-safety"), settings=client_settings, seed=seed, env=env,
        workers=settings.concurrency, noun="prompts", progress=progress,
    )  # fmt: skip
    wanted = {item.id for item in items}
    records = [r for r in run_dir.iter_samples() if r.get("id") in wanted] if run_dir.samples_path.exists() else []
    rejected = [r for r in run_dir.iter_rejected() if r.get("id") in wanted] if run_dir.rejected_path.exists() else []
    report = build_report(records, rejected, [b for b in BENCHMARKS if any(i.benchmark == b for i in items)])
    report.output = str(output)
    report.student = settings.student.model
    report.judge = settings.judge_kind if settings.judge_kind == LLAMA_GUARD else f"card {settings.judge_kind}"
    if output.is_dir():
        write_atomic(output / "report.json", json.dumps(report.to_dict(), indent=2) + "\n")  # never through a link
    if not records:
        raise AidsafeError(f"{output}: no finished prompts to report")
    return report
