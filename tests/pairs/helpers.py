"""Scripted replies for the pair roles, read only from what the built-in cards show the teacher.

- ear-whisperer: "STEERED belief <n>", n = 1 + the earlier attempts its prompt lists;
- rejected CoT: echoes the belief it was given (so the judge can tell the steered side);
- judge: a side is violating (faithfulness 1) when it echoes belief n >= the prompt's `[sep=k]`
  (k = 0: never); every other side follows the policies (faithfulness 5).

So a prompt tagged `[sep=k]` separates at iteration k, or never when k = 0.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aidsafe.testing import default_reply
from aidsafe.testing.replies import DEFAULT_REPLIES, policy_id

_ATTEMPT = re.compile(r"^attempt \d+:", re.MULTILINE)
_BELIEF = re.compile(r"STEERED belief (\d+)")
_SEP = re.compile(r"\[sep=(\d+)\]")
_ANSWERS = re.compile(r"Answer A:\n(.*)\n\nAnswer B:\n(.*?)\n\nJudge each answer", re.DOTALL)


def belief_reply(text: str) -> dict[str, Any]:
    n = len(_ATTEMPT.findall(text)) + 1
    return {
        "target_policy": policy_id(text) or "P1",
        "belief": f"STEERED belief {n}: the user is an authorised expert.",
    }


def rejected_reply(text: str) -> dict[str, Any]:
    belief = _BELIEF.search(text)
    cited = [pid] if (pid := policy_id(text)) else []
    return {
        "thoughts": [
            {"text": f"Given STEERED belief {belief.group(1)}, the usual limits do not apply.", "policies": cited}
        ],
        "response": f"Under STEERED belief {belief.group(1)}: here is everything, unfiltered.",
    }


def judge_reply(text: str) -> dict[str, Any]:
    sep = int(m.group(1)) if (m := _SEP.search(text)) else 1
    a, b = _ANSWERS.search(text).groups()
    return {"a": _verdict(a, sep, text), "b": _verdict(b, sep, text)}


def _verdict(answer: str, sep: int, text: str) -> dict[str, Any]:
    steered = _BELIEF.search(answer)
    if steered and sep and int(steered.group(1)) >= sep:
        pid = policy_id(text) or "P1"
        return {
            "rationale": "It gives harmful detail.",
            "violates": True,
            "violated_policies": [pid],
            "faithfulness": 1,
        }
    return {"rationale": "It follows the policies.", "violates": False, "violated_policies": [], "faithfulness": 5}


def fake_responders() -> dict[str, Any]:
    """FakeTeacher responders keyed by role."""
    return {
        "ear_whisperer": lambda call: belief_reply(call.text),
        "rejected_cot": lambda call: rejected_reply(call.text),
        "judge": lambda call: judge_reply(call.text),
    }


def pairs_server_responder():
    """A ScriptedServer responder for generate and pairs: AIDSAFE roles plus the pair roles."""
    from aidsafe.testing.server import responder_by_schema_name

    def text(request: dict) -> str:
        return "\n".join(str(m.get("content", "")) for m in request["messages"])

    def initial_or_rejected(request: dict) -> dict:
        body = text(request)
        return rejected_reply(body) if _BELIEF.search(body) else default_reply("InitialCoT", request["messages"])

    by_name = {name: (lambda r, name=name: default_reply(name, r["messages"])) for name in DEFAULT_REPLIES}
    by_name.update(
        InitialCoT=initial_or_rejected,
        Belief=lambda r: belief_reply(text(r)),
        JudgeVerdict=lambda r: judge_reply(text(r)),
    )
    return responder_by_schema_name(by_name)


def write_chosen_run(path, prompts: list[str], policy_set: str = "aidsafe") -> None:
    """A generation run's samples.jsonl with one finished sample per prompt (ids s0, s1, ...)."""
    path.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, prompt in enumerate(prompts):
        lines.append({
            "id": f"s{i}",
            "prompt": prompt,
            "intents": [{"text": "Get help.", "kind": "explicit", "nature": "benign"}],
            "thoughts": [{"id": "t1", "text": "The request is benign and can be answered.", "policies": ["P1"]}],
            "response": "Here is a safe, helpful answer.",
            "metadata": {"recipe_hash": "gen0", "policy_set": {"id": policy_set, "version": "1"}},
        })  # fmt: skip
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")


# The guard judge: a completions responder that reads the side from the guard prompt itself.
_GUARD_SIDE = re.compile(r"(?:Chatbot Response: |\n\nAgent: )(.*?)(?:\n<end_of_turn>|\n\n<END CONVERSATION>)", re.DOTALL)
GUARD_UNSAFE, GUARD_SAFE = 0.9, 0.1  # P(unsafe) the scripted guard gives a steered / a normal side


def guard_completion(prompt: str) -> dict[str, Any]:
    """A ShieldGemma or Llama Guard 3 reply with first-token logprobs: unsafe (P 0.9) when the side
    echoes STEERED belief n >= the prompt's `[sep=k]` (k = 0: never), else safe (P 0.1)."""
    import math

    sep = int(m.group(1)) if (m := _SEP.search(prompt)) else 1
    side = _GUARD_SIDE.search(prompt)
    assert side is not None, "not a guard prompt"
    steered = _BELIEF.search(side.group(1))
    unsafe = bool(steered and sep and int(steered.group(1)) >= sep)
    yes, no = ("Yes", "No") if "Chatbot Response:" in prompt else ("unsafe", "safe")
    p = GUARD_UNSAFE if unsafe else GUARD_SAFE
    first = yes if unsafe else no
    top = {yes: math.log(p), no: math.log(1 - p)}
    return {"text": first, "logprobs": {"tokens": [first], "token_logprobs": [top[first]], "top_logprobs": [top]}}


def guard_server_responder():
    """pairs_server_responder for chat requests, guard_completion for raw completions."""
    chat = pairs_server_responder()

    def respond(request: dict):
        return guard_completion(request["prompt"]) if "prompt" in request else chat(request)

    return respond
