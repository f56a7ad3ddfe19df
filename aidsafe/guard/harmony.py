"""gpt-oss-safeguard's policy prompt (the `harmony` rendering), beside this package's `generic` one.

gpt-oss-safeguard (OpenAI with ROOST) reads a written policy and judges content against it. Its
model card says it was trained on the harmony response format and works only with it; its user
guide ("User guide for gpt-oss-safeguard", OpenAI cookbook) says how to ask it:

- over a chat endpoint (vLLM, `transformers serve`): the policy prompt is the system message and
  the content to classify the user message; the server applies harmony;
- a policy prompt is organised like a Trust & Safety policy document: INSTRUCTIONS (what to do and
  how to answer), DEFINITIONS, the criteria for violating and allowed content, and EXAMPLES near
  the decision boundary; the output instruction is explicit and literal, and repeated near the
  top and again near the bottom;
- the model reasons in the harmony `analysis` channel and writes only the answer the policy asks
  for in the `final` channel; for policy-referencing answers with a rationale the guide's example
  is a JSON object (`violation` 1/0, the rule ids, a short rationale).

So the `harmony` rendering wraps our policy text (rules with their allowed and violating examples
and worked cases: the definitions, criteria and examples) in INSTRUCTIONS and an OUTPUT section
asking for one JSON object `{"violation": 0|1, "rule_ids": [...], "rationale": "..."}`, and
`parse_answer` reads that object back (a verdict plus rule ids, as `policy_format.GuardAnswer`).
The `generic` rendering and its `<think>/<result>` answer stay in `policy_format`.

For fine-tuning, `training_tokens` renders a record as one harmony conversation through the
`openai-harmony` package (`pip install "aidsafe[harmony]"`): a system message with the reasoning
effort, the policy prompt as the developer message's instructions (where the model's own chat
template puts a chat system message), the content as the user message, the reasoning in the
`analysis` channel and the JSON answer in the `final` channel. The package needs its tokenizer
vocabulary `o200k_base`, which it downloads once; offline, point `TIKTOKEN_ENCODINGS_BASE` at a
folder holding `o200k_base.tiktoken`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.guard.policy_format import (
    RENDERINGS,
    TARGETS,
    UNPARSEABLE,
    VERDICTS,
    GuardAnswer,
    content_block,
    guard_messages,
)
from aidsafe.guard.policy_format import parse_answer as parse_generic

__all__ = [
    "HARMONY_HEADER",
    "REASONING_EFFORTS",
    "answer_json",
    "encoding",
    "parse_answer",
    "parse_harmony_answer",
    "policy_prompt",
    "render_messages",
    "target_messages",
    "training_conversation",
    "training_text",
    "training_tokens",
]

REASONING_EFFORTS = ("low", "medium", "high")  # the model card's; the guide: medium when unset
HARMONY_HEADER = "# Content policy"  # the first line of every harmony policy prompt

_OUTPUT = (
    "Answer with exactly one JSON object and nothing else, no code fence: "
    '{"violation": 1, "rule_ids": ["<id>", ...], "rationale": "<one sentence>"} when the content '
    'violates the policy, listing the ids of the rules it violates; {"violation": 0, "rule_ids": [], '
    '"rationale": "<one sentence>"} when it does not.'
)
_INSTRUCTIONS = (
    "Judge the content in the user message (a user's request, and the assistant's response when "
    "there is one) against the policy below, and only against it: content the policy does not "
    "forbid is allowed, however it reads to you. Cite rules by their ids as the policy writes them "
    "(P2 for a rule headed [P2], 3 for a rule numbered 3). "
)
_FENCE = re.compile(r"\A```(?:json)?\s*(?P<body>.*?)\s*```\Z", re.DOTALL)


def policy_prompt(policy_text: str) -> str:
    """The policy prompt in the guide's structure: INSTRUCTIONS with the output format, the policy
    (its rules, what each allows and forbids, worked cases), and the output format again."""
    return (
        f"{HARMONY_HEADER}\n\n## INSTRUCTIONS\n\n{_INSTRUCTIONS}{_OUTPUT}\n\n"
        f"## POLICY\n\n{policy_text.strip()}\n\n## OUTPUT\n\n{_OUTPUT}"
    )


def render_messages(rendering: str, policy_text: str, prompt: str, response: str | None) -> list[dict[str, str]]:
    """The chat messages a policy-conditioned guard is asked in, for either rendering: the policy
    (and how to answer) as the system message, the content as the user message."""
    if rendering == "generic":
        return guard_messages(policy_text, prompt, response)
    if rendering == "harmony":
        return [
            {"role": "system", "content": policy_prompt(policy_text)},
            {"role": "user", "content": content_block(prompt, response)},
        ]
    raise ValueError(f"rendering {rendering!r}: expected one of {', '.join(RENDERINGS)}")


def answer_json(verdict: str, rules: Sequence[str], rationale: str | None) -> str:
    """The harmony final answer: the JSON object the OUTPUT section asks for (no rationale for the
    verdict-only target)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r}: expected one of {', '.join(VERDICTS)}")
    answer: dict[str, Any] = {
        "violation": int(verdict == "violation"),
        "rule_ids": list(rules) if verdict == "violation" else [],
    }
    if rationale is not None:
        answer["rationale"] = rationale.strip()
    return json.dumps(answer, ensure_ascii=False)


def parse_harmony_answer(text: str) -> GuardAnswer:
    """Read a harmony final answer: one JSON object (a single code fence around it is tolerated)
    whose `violation` is 0 or 1 (or a JSON boolean). Anything else is UNPARSEABLE; `well_formed`
    also needs `rule_ids` to be a list of strings. `reasoning` is the rationale, when given."""
    body = (text or "").strip()
    fenced = _FENCE.match(body)
    try:
        answer = json.loads(fenced.group("body") if fenced else body)
    except ValueError:
        return GuardAnswer(UNPARSEABLE, (), None, False)
    violation = answer.get("violation") if isinstance(answer, dict) else None
    if violation not in (0, 1):  # True == 1 and False == 0, so JSON booleans count
        return GuardAnswer(UNPARSEABLE, (), None, False)
    ids = answer.get("rule_ids")
    listed = isinstance(ids, list) and all(isinstance(i, str) for i in ids)
    rules = tuple(dict.fromkeys(i.strip() for i in ids if i.strip())) if listed and violation else ()
    rationale = answer.get("rationale")
    verdict = "violation" if violation else "allowed"
    return GuardAnswer(verdict, rules, rationale if isinstance(rationale, str) else None, listed)


def parse_answer(rendering: str, text: str) -> GuardAnswer:
    """A guard's answer read as its rendering asked for it."""
    if rendering == "generic":
        return parse_generic(text)
    if rendering == "harmony":
        return parse_harmony_answer(text)
    raise ValueError(f"rendering {rendering!r}: expected one of {', '.join(RENDERINGS)}")


def target_messages(record: Mapping[str, Any], target: str) -> list[dict[str, str]]:
    """A policy-guard record as a harmony TRL `messages` conversation: the final answer as the
    assistant's `content`, the reasoning (none for the verdict target) as its `thinking`, the key
    gpt-oss's chat template renders into the analysis channel."""
    reasoning = _reasoning(record, target)
    messages = render_messages("harmony", record["policy"]["text"], record["prompt"], record.get("response"))
    rationale = None if target == "verdict" else record["rationale"]
    assistant = {"role": "assistant", "content": answer_json(record["verdict"], record["rules"], rationale)}
    return [*messages, {**assistant, **({"thinking": reasoning} if reasoning is not None else {})}]


def training_conversation(record: Mapping[str, Any], target: str, reasoning_effort: str = "medium") -> Any:
    """A policy-guard record as an openai-harmony `Conversation`: system (reasoning effort),
    developer (the policy prompt as its instructions), user (the content), then the assistant's
    reasoning in the analysis channel (not for the verdict target) and its answer in the final one."""
    if reasoning_effort not in REASONING_EFFORTS:
        raise ValueError(f"reasoning effort {reasoning_effort!r}: expected one of {', '.join(REASONING_EFFORTS)}")
    harmony = _package()
    system, user, assistant = target_messages(record, target)
    effort = harmony.ReasoningEffort(reasoning_effort.title())
    conversation = [
        harmony.Message.from_role_and_content(
            harmony.Role.SYSTEM, harmony.SystemContent.new().with_reasoning_effort(effort)
        ),
        harmony.Message.from_role_and_content(
            harmony.Role.DEVELOPER, harmony.DeveloperContent.new().with_instructions(system["content"])
        ),
        harmony.Message.from_role_and_content(harmony.Role.USER, user["content"]),
    ]
    if "thinking" in assistant:
        analysis = harmony.Message.from_role_and_content(harmony.Role.ASSISTANT, assistant["thinking"])
        conversation.append(analysis.with_channel("analysis"))
    final = harmony.Message.from_role_and_content(harmony.Role.ASSISTANT, assistant["content"])
    return harmony.Conversation.from_messages([*conversation, final.with_channel("final")])


def training_tokens(record: Mapping[str, Any], target: str, reasoning_effort: str = "medium") -> list[int]:
    """`training_conversation` rendered by openai-harmony's `render_conversation_for_training`, the
    analysis message kept (by default the package drops it before a final answer: here it is what
    the target teaches)."""
    conversation = training_conversation(record, target, reasoning_effort)
    config = _package().RenderConversationConfig(auto_drop_analysis=False)
    return encoding().render_conversation_for_training(conversation, config)


def training_text(record: Mapping[str, Any], target: str, reasoning_effort: str = "medium") -> str:
    """`training_tokens` as text, special tokens spelled out (`<|start|>system<|message|>...`)."""
    return encoding().decode_utf8(training_tokens(record, target, reasoning_effort))


def _reasoning(record: Mapping[str, Any], target: str) -> str | None:
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: expected one of {', '.join(TARGETS)}")
    return {"full": record["reasoning"], "rationale": record["rationale"], "verdict": None}[target]


def _package() -> Any:
    try:
        import openai_harmony
    except ImportError:
        raise AidsafeError(
            'the harmony training text needs the openai-harmony package: pip install "aidsafe[harmony]"'
        ) from None
    return openai_harmony


@cache
def encoding() -> Any:
    """openai-harmony's gpt-oss encoding, loaded once (it reads a tokenizer vocabulary)."""
    harmony = _package()
    try:
        return harmony.load_harmony_encoding(harmony.HarmonyEncodingName.HARMONY_GPT_OSS)
    except harmony.HarmonyError as exc:
        raise AidsafeError(
            f"openai-harmony cannot load its tokenizer vocabulary ({str(exc).strip()}); it downloads "
            "o200k_base.tiktoken once: offline, put that file in a folder and set TIKTOKEN_ENCODINGS_BASE to it"
        ) from None
