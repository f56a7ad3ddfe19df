"""`aidsafe eval cot`: an LLM judge grades a generation run's samples, or prefers between two runs.

Each judge model is one run through the one entrance (aidsafe.run.stage.run_stage) into its own folder, by default
`RUN/eval-cot/<model>` (grading) or `RUN/eval-cot/vs-<OTHER>/<model>` (`--compare OTHER`):
samples.jsonl holds one record per graded sample or judged pair, written only once the judge's
reply validated, so a rerun asks only for what is missing. The report (aidsafe.eval.cot_report)
is computed from those records, for every judge, with their agreement when there are several.

Items are the finished samples of the run (aidsafe.pairs.records.read_chosen); the policies the
judge reads are the run's own (its recipe.yaml), or `--policies`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.agents.context import ResolvedAgent, agent_rng, run_agent
from aidsafe.agents.policies import PolicySet, load_policies
from aidsafe.agents.resolve import resolve_agent
from aidsafe.agents.schemas import DEFAULT_MIN_CHARS
from aidsafe.agents.settings import AgentSlot, TeacherSettings
from aidsafe.config.yamlio import load_yaml
from aidsafe.errors import AidsafeError, RunSetupError
from aidsafe.eval.cot_judge import COT_ROLES, CRITERIA, CotAgentContext
from aidsafe.eval.cot_report import build_report
from aidsafe.pairs.records import Chosen, read_chosen
from aidsafe.pairs.roles import judge_order
from aidsafe.run.executor import RecipeJournal
from aidsafe.run.identity import run_hash
from aidsafe.run.journal import RunDirectory, folder_name, input_digest
from aidsafe.run.jsonl import write_atomic
from aidsafe.run.loop import run_async
from aidsafe.run.stage import run_stage
from aidsafe.run.task import RunContext, Task, rejection_for
from aidsafe.teacher.types import Teacher

__all__ = ["JudgeModel", "CotEvalRequest", "Matched", "parse_judges", "match_runs", "evaluate_cot"]


@dataclass(frozen=True)
class JudgeModel:
    """One judge: a model on an OpenAI-compatible endpoint."""

    base_url: str
    model: str

    @property
    def slug(self) -> str:
        return folder_name(self.model, "judge")


def parse_judges(entries: list[str], base_url: str | None) -> list[JudgeModel]:
    """`--model` values: a model name (served at `--base-url`) or `base_url=URL,model=NAME`."""
    judges = []
    for entry in entries:
        if "=" not in entry:
            if not base_url:
                raise AidsafeError(f"--model {entry!r}: give --base-url, or write base_url=URL,model={entry}")
            judges.append(JudgeModel(base_url, entry))
            continue
        parts = dict(part.split("=", 1) for part in entry.split(",") if "=" in part)
        if set(parts) != {"base_url", "model"} or not all(parts.values()) or entry.count("=") != 2:
            raise AidsafeError(f"--model {entry!r}: expected a model name or base_url=URL,model=NAME")
        judges.append(JudgeModel(parts["base_url"], parts["model"]))
    if not judges:
        raise AidsafeError("--model: give at least one judge model")
    if len(set(judges)) < len(judges):
        raise AidsafeError("--model: the same judge is given twice")
    return judges


@dataclass
class CotEvalRequest:
    run: Path
    judges: list[JudgeModel]
    compare: Path | None = None
    card: str | None = None  # default: cot_grader, or cot_pairwise with `compare`
    output: Path | None = None  # the folder holding one folder per judge
    policies: str | None = None  # default: the run's own
    limit: int | None = None
    concurrency: int = 8
    seed: int = 0  # draws which run is answer A, per prompt
    api_key_env: str = "OPENAI_API_KEY"
    retry_rejected: bool = False
    progress: bool = True
    min_chars: int = DEFAULT_MIN_CHARS


@dataclass(frozen=True)
class Matched:
    """One prompt that both runs finished: `run`'s sample and `other`'s."""

    id: str
    prompt: str
    run: Chosen
    other: Chosen

    def digest(self) -> str:
        return input_digest(self.run.digest() + self.other.digest())


def evaluate_cot(request: CotEvalRequest, env: Mapping[str, str], teacher: Teacher | None = None) -> dict[str, Any]:
    """Grade (or compare) with every judge; returns the report (aidsafe.eval.cot_report)."""
    return run_async(_evaluate(request, env, teacher))


async def _evaluate(request: CotEvalRequest, env: Mapping[str, str], teacher: Teacher | None) -> dict[str, Any]:
    policies = _run_policies(request.run, request.policies)
    role = COT_ROLES["cot_pairwise" if request.compare else "cot_grader"]
    card = request.card or role.name
    items: list[Any]
    matching: dict[str, Any] | None = None
    if request.compare is None:
        items = read_chosen(request.run, policies.id)
        base = request.output or Path(request.run) / "eval-cot"
    else:
        items, matching = match_runs(read_chosen(request.run, policies.id), read_chosen(request.compare, policies.id))
        base = request.output or Path(request.run) / "eval-cot" / f"vs-{Path(request.compare).resolve().name}"
    if request.limit is not None:
        items = items[: request.limit]
    judged: list[dict[str, Any]] = []
    for judge_model in request.judges:  # every judge resolved first: a bad card stops before any call
        settings = TeacherSettings(base_url=judge_model.base_url, model=judge_model.model,
                                   api_key_env=request.api_key_env, concurrency=request.concurrency)  # fmt: skip
        agent = resolve_agent(AgentSlot(agent=card), role, _JudgeSetup(settings), "--judge")
        judged.append({"model": judge_model, "settings": settings, "agent": agent})
    for entry in judged:
        entry["dir"] = _judge_dir(base, entry["model"], request.judges)
        entry["records"] = await _run_judge(request, entry, policies, items, teacher, env)
    report = build_report(request, judged, policies, matching)
    write_atomic(base / "report.json", json.dumps(report, indent=2, allow_nan=False) + "\n")
    return report


async def _run_judge(request: CotEvalRequest, entry: dict[str, Any], policies: PolicySet, items: list[Any],
                     teacher: Teacher | None, env: Mapping[str, str]) -> list[dict[str, Any]]:  # fmt: skip
    agent: ResolvedAgent = entry["agent"]
    run_dir = RunDirectory(entry["dir"])
    about = {"eval": "cot", "mode": "compare" if request.compare else "grade", "run": str(request.run),
             "compare": str(request.compare) if request.compare else None, "seed": request.seed}  # fmt: skip
    body = {**about, "card": agent.fingerprint, "model": agent.endpoint.model, "sampling": agent.sampling,
            "policies": policies.model_dump(mode="json"), "min_chars": request.min_chars}  # fmt: skip
    body.pop("run"), body.pop("compare")  # where the runs are does not change a verdict; their content does
    if not request.compare:
        body.pop("seed")  # it only draws the A/B order of --compare
    judge_hash = run_hash(body, ensure_ascii=True)  # the bytes eval cot always hashed
    resolved = {**about, "judge": {"agent": agent.name, "model": agent.endpoint.model,
                                   "base_url": agent.endpoint.base_url, "sampling": agent.sampling},
                "policy_set": {"id": policies.id, "version": policies.version}}  # fmt: skip
    kind = CompareTask if request.compare else GradeTask
    await run_stage(
        lambda client, owns: kind(agent, policies, client, request.seed, request.min_chars, check_endpoints=owns),
        items, RecipeJournal(run_dir, judge_hash, resolved, "eval-cot"), settings=entry["settings"],
        seed=request.seed, env=env,
        teacher=teacher, workers=2 * request.concurrency, noun=kind.noun, retry_rejected=request.retry_rejected,
        progress=request.progress,
    )  # fmt: skip
    keys = {item.id for item in items}
    records = [r for r in run_dir.iter_samples() if r["id"] in keys]
    entry["rejected"] = sum(1 for r in run_dir.iter_rejected() if r["id"] in keys)
    return records


def match_runs(run: list[Chosen], other: list[Chosen]) -> tuple[list[Matched], dict[str, int]]:
    """The prompts both runs finished, matched by prompt id, in `run`'s order, and the counts."""
    by_id = {sample.id: sample for sample in other}
    matched = []
    for sample in run:
        found = by_id.get(sample.id)
        if found is None:
            continue
        if found.prompt != sample.prompt:
            raise AidsafeError(
                f"sample {sample.id!r}: the two runs hold different prompts under this id; "
                "compare runs generated from the same prompts file"
            )
        matched.append(Matched(sample.id, sample.prompt, sample, found))
    n = len(matched)
    counts = {"matched": n, "only_in_run": len(run) - n, "only_in_other": len(other) - n}
    if not matched:
        raise AidsafeError("--compare: no prompt id is in both runs; compare runs generated from the same prompts")
    return matched, counts


@dataclass
class _JudgeSetup:
    """What `resolve_agent` reads of a recipe: the endpoint settings, where card paths resolve."""

    teacher: TeacherSettings
    base_dir: Path = field(default_factory=Path.cwd)


def _judge_dir(base: Path, judge: JudgeModel, judges: list[JudgeModel]) -> Path:
    same = [j for j in judges if j.slug == judge.slug]
    suffix = "" if len(same) == 1 else f"-{same.index(judge) + 1}"  # one model on two endpoints
    return Path(base) / f"{judge.slug}{suffix}"


def _run_policies(run: Path, given: str | None) -> PolicySet:
    """The policy set the run was made under (its recipe.yaml), or `given`, checked against it."""
    recipe_path = Path(run) / "recipe.yaml"
    # The one YAML loader: a damaged file is one line naming its file and line.
    stored: dict[str, Any] = load_yaml(recipe_path)[0] if recipe_path.is_file() else {}
    snapshot = (stored.get("resolved") or {}).get("policies") if isinstance(stored.get("resolved"), dict) else None
    if given is None and isinstance(snapshot, dict):  # the texts the run used, kept in its recipe.yaml
        try:
            return PolicySet.model_validate(snapshot)
        except ValueError as exc:
            raise AidsafeError(f"{recipe_path}: resolved.policies: {' '.join(str(exc).split())[:300]}") from None
    ref = given or stored.get("policies")
    if not isinstance(ref, str):
        raise AidsafeError(f"{recipe_path}: policies: missing; pass --policies NAME_OR_PATH")
    try:
        policies = load_policies(ref).without_cases()  # the generation run's rules, as its roles read them
    except AidsafeError as exc:
        hint = "" if given else f" (from {recipe_path}: policies; pass --policies NAME_OR_PATH)"
        raise AidsafeError(f"{exc}{hint}") from None
    used = ((stored.get("resolved") or {}).get("policy_set") or {}) if isinstance(stored.get("resolved"), dict) else {}
    if used and (used.get("id"), str(used.get("version"))) != (policies.id, str(policies.version)):
        raise AidsafeError(
            f"{recipe_path}: resolved.policy_set: the run used {used.get('id')} v{used.get('version')}, "
            f"the policies loaded are {policies.id} v{policies.version}; pass --policies with the run's own"
        )
    return policies


class _JudgeTask(Task[Any]):
    """One judge call per item, through the card machinery (resolve_agent, run_agent)."""

    noun = "samples"

    def __init__(self, agent: ResolvedAgent, policies: PolicySet, teacher: Teacher, seed: int, min_chars: int,
                 check_endpoints: bool = True) -> None:  # fmt: skip
        self.agent, self.policies, self.teacher = agent, policies, teacher
        self.seed, self.min_chars, self.check_endpoints = seed, min_chars, check_endpoints

    def key(self, item: Any) -> str:
        return item.id

    def digest(self, item: Any) -> str:
        return item.digest()

    def describe(self, item: Any) -> dict[str, Any]:
        return {"prompt": item.prompt}

    async def preflight(self) -> None:
        if self.check_endpoints:
            await self.teacher.check_reachable(self.agent.endpoint)

    async def ask(self, state: dict[str, Any]) -> tuple[Any, list[dict]]:
        agent = self.agent
        ctx = CotAgentContext(teacher=self.teacher, policies=self.policies,
                              rng=agent_rng(self.seed, state["id"], 0, agent.name), role=agent.role,
                              endpoint=agent.endpoint, sampling=agent.sampling, max_rounds=0,
                              agent_name=agent.name, min_chars=self.min_chars)  # fmt: skip
        try:
            return await run_agent(agent, state, ctx)
        except (asyncio.CancelledError, RunSetupError):
            raise
        except Exception as exc:
            raise rejection_for(self.stage, exc) from exc

    def metadata(self, calls: list[dict], **extra: Any) -> dict[str, Any]:
        judge = {"agent": self.agent.name, "model": self.agent.endpoint.model}
        return {"judge": judge, **extra, "calls": calls}


def _side(sample: Chosen) -> dict[str, Any]:
    return {"thoughts": [dict(t) for t in sample.thoughts], "response": sample.response}


class GradeTask(_JudgeTask):
    """One sample scored on the six criteria."""

    stage = "grade"

    async def run(self, item: Chosen, ctx: RunContext) -> dict[str, Any]:
        state = {"id": item.id, "prompt": item.prompt, **_side(item)}
        output, calls = await self.ask(state)
        return {"id": item.id, "prompt": item.prompt, "scores": {c: int(getattr(output, c)) for c in CRITERIA},
                "rationale": output.rationale,
                "metadata": self.metadata(calls, source_recipe_hash=item.source_hash)}  # fmt: skip


class CompareTask(_JudgeTask):
    """One prompt's two samples, shown as A and B in a seeded order; the verdict mapped back."""

    noun = "pairs"
    stage = "compare"

    async def run(self, item: Matched, ctx: RunContext) -> dict[str, Any]:
        run_first = judge_order(self.seed, item.id, 0) == "chosen_first"  # "chosen" is the run being evaluated
        first, second = (item.run, item.other) if run_first else (item.other, item.run)
        state = {"id": item.id, "prompt": item.prompt, "answer_a": _side(first), "answer_b": _side(second)}
        output, calls = await self.ask(state)
        preferred = output.preferred
        winner = "tie" if preferred == "tie" else "run" if (preferred == "A") == run_first else "other"
        sources = {"run": item.run.source_hash, "other": item.other.source_hash}
        return {"id": item.id, "prompt": item.prompt, "run_position": "A" if run_first else "B",
                "preferred": preferred, "winner": winner, "rationale": output.rationale,
                "metadata": self.metadata(calls, source_recipe_hashes=sources)}  # fmt: skip
