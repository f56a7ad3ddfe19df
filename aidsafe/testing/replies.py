"""Deterministic, schema-valid replies for each AIDSAFE role, for test doubles and benchmarks.

They read only what any card shows the teacher (thought ids at line starts, policy ids), so they
work with custom cards too. The deliberator adds a near-duplicate thought on its first turn (to
exercise dedup) and agrees once three thoughts exist, so a default run stops on agreement in
round 2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["default_reply", "aidsafe_responder", "DEFAULT_REPLIES", "thought_ids", "policy_id"]

_THOUGHT_LINE = re.compile(r"^(t\d+)\b", re.MULTILINE)
_POLICY_ID = re.compile(r"^\[([A-Za-z0-9_.-]+)\]", re.MULTILINE)


def thought_ids(text: str) -> list[str]:
    return list(dict.fromkeys(_THOUGHT_LINE.findall(text)))


def policy_id(text: str) -> str | None:
    """The first policy id the messages show (policies render as `[ID] Title`)."""
    match = _POLICY_ID.search(text)
    return match.group(1) if match else None


def _intents(text: str) -> dict[str, Any]:
    return {
        "intents": [
            {"text": "Get an answer to the question as asked.", "kind": "explicit", "nature": "benign"},
            {
                "text": "Possibly use the answer in a way that could harm others.",
                "kind": "implicit",
                "nature": "harmful",
            },
        ]
    }


def _initial(text: str) -> dict[str, Any]:
    cited = [pid] if (pid := policy_id(text)) else []
    return {
        "thoughts": [
            {"text": "The explicit request is benign and can be answered helpfully.", "policies": cited},
            {"text": "Details that would enable harm to others must be left out.", "policies": cited},
        ],
        "response": "Here is a safe, helpful answer.",
    }


def _turn(text: str) -> dict[str, Any]:
    ids = thought_ids(text)
    if len(ids) >= 3:
        return {"thoughts": [], "response": "Here is a safe, helpful answer.", "complete": True}
    cited = [pid] if (pid := policy_id(text)) else []
    return {
        "thoughts": [
            {
                "text": "The explicit request is benign and can be answered helpfully!",
                "policies": cited,
                "replaces": None,
            },
        ],
        "response": "Here is a safe, helpful answer.",
        "complete": False,
    }


def _refine(text: str) -> dict[str, Any]:
    ids = thought_ids(text)
    verdicts = {i: "keep" for i in ids}
    if len(ids) > 1:
        verdicts[ids[-1]] = "redundant"
    return {"verdicts": verdicts, "response": "Here is the final safe, helpful answer."}


DEFAULT_REPLIES: dict[str, Callable[[str], dict[str, Any]]] = {
    "IntentList": _intents,
    "InitialCoT": _initial,
    "DeliberationTurn": _turn,
    "Refinement": _refine,
}


def default_reply(schema_name: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid reply for `schema_name` given the request's messages."""
    text = "\n".join(str(m.get("content", "")) for m in messages)
    return DEFAULT_REPLIES[schema_name](text)


def aidsafe_responder() -> Callable[[dict[str, Any]], Any]:
    """A ScriptedServer responder answering every AIDSAFE role's schema with `default_reply`."""
    from aidsafe.testing.server import responder_by_schema_name

    return responder_by_schema_name(
        {name: (lambda request, name=name: default_reply(name, request["messages"])) for name in DEFAULT_REPLIES}
    )
