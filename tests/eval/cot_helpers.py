"""Run directories and scripted judges for the `eval cot` tests.

The judges read only what the built-in cards show them: the grader answers the six scores a
prompt carries as `[scores=a,b,c,d,e,f]` (judge-b adds one to coherence where the prompt says
`[b+coherence]`); the pairwise judges always say A, always say B, or prefer the answer whose
response contains MARK.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from aidsafe.eval.cot_judge import CRITERIA
from aidsafe.testing.server import responder_by_schema_name

_SCORES = re.compile(r"\[scores=([1-5](?:,[1-5]){5})\]")
_ANSWERS = re.compile(r"Answer A:\n(.*)\n\nAnswer B:\n(.*?)\n\nWhich answer is better", re.DOTALL)


def write_run(path: Path, samples: list[tuple[str, str]], response: str = "Here is a safe, helpful answer.") -> Path:
    """A generation run directory with one finished sample per (id, prompt), made under aidsafe v1.0."""
    path.mkdir(parents=True, exist_ok=True)
    lines = [
        {"id": sid, "prompt": prompt,
         "thoughts": [{"id": "t1", "text": "The request is benign and can be answered.", "policies": ["P1"]}],
         "response": response, "metadata": {"recipe_hash": "gen0", "policy_set": {"id": "aidsafe", "version": "1.0"}}}
        for sid, prompt in samples
    ]  # fmt: skip
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    used = {"policy_set": {"id": "aidsafe", "version": "1.0"}}
    recipe = {"name": "handmade", "policies": "aidsafe", "resolved": used}
    (path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def _text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in request["messages"])


def grade(request: dict[str, Any]) -> dict[str, Any]:
    text = _text(request)
    scores = [int(s) for s in _SCORES.search(text).group(1).split(",")]
    if request["model"] == "judge-b" and "[b+coherence]" in text:
        scores[1] = min(scores[1] + 1, 5)
    return {"rationale": "Scored as the prompt says.", **dict(zip(CRITERIA, scores, strict=True))}


def prefer(request: dict[str, Any], mark: str | None = None) -> dict[str, Any]:
    if request["model"] == "always-a":
        return {"rationale": "The first one, always.", "preferred": "A"}
    if request["model"] == "always-b":
        return {"rationale": "The second one, always.", "preferred": "B"}
    a, b = _ANSWERS.search(_text(request)).groups()
    choice = "A" if mark in a and mark not in b else "B" if mark in b and mark not in a else "tie"
    return {"rationale": "The one with the mark.", "preferred": choice}


def judge_responder(mark: str = "MARK"):
    return responder_by_schema_name({"CotScores": grade, "PairwisePreference": lambda r: prefer(r, mark)})


def schema_name(request: Any) -> str | None:
    return (request.json.get("response_format") or {}).get("json_schema", {}).get("name")


def calls(server: Any, name: str) -> int:
    return sum(schema_name(r) == name for r in server.requests)
