"""GRPO rewards that need no judge model: each reads a completion with the guard format's own parser.

Every function has TRL's reward signature, `f(completions, **kwargs) -> list[float | None]`: the
completions (text, or a one-message assistant list for conversational prompts) and, as keyword
lists, the dataset's columns for each completion (`verdict`, `rules`, `labels`) plus TRL's
`completion_ids`. None means "does not apply" (TRL averages it out of the logged mean and adds
nothing to the total).

Two answer formats, each with a format reward, a correctness reward and GuardReasoner-Omni's
exploration bonus (0.2 * tanh(tokens / 300), only when the answer is wrong):

- policy-guard (`aidsafe.guard.policy_format`): `policy_format` 1 when `parse_answer` finds the
  answer well formed; `policy_verdict` 1 for the gold/judged verdict; `policy_rules` the F1 of the
  rule ids against the gold ones (None when the gold has none: an allowed row); `policy_wrong_length`
  the bonus when the verdict is not the gold one. With the `harmony` rendering (gpt-oss-safeguard's
  policy prompt, `aidsafe.guard.harmony`) the same four read the JSON object of the completion's
  final channel with `harmony.parse_harmony_answer`.
- GuardReasoner (`aidsafe.guard.formats`): `guardreasoner_format` 1 when `parse_trace` reads the
  `# Task` / `Answers:` layout and every answer is one of its task's labels or `None`;
  `guardreasoner_labels` 0.5 per task label equal to the gold one (tasks without a gold label are
  not scored), as GuardReasoner-VL/-Omni; `guardreasoner_wrong_length` the bonus when any scored
  label is wrong.

`reward_functions` builds the list TRL gets. With `format_gate`, every other reward is 0 for a
completion whose format reward is 0: GuardReasoner-Omni's released reward counts accuracy and the
bonus only for well-formed answers; TRL sums weighted rewards, which cannot express that gate.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from aidsafe.guard.formats import TASKS, parse_answers, parse_trace
from aidsafe.guard.harmony import parse_harmony_answer
from aidsafe.guard.policy_format import GuardAnswer, parse_answer
from aidsafe.train.recipe import RewardName

__all__ = [
    "LENGTH_BONUS_MAX",
    "LENGTH_BONUS_TOKENS",
    "REWARDS",
    "Reward",
    "guardreasoner_format",
    "guardreasoner_labels",
    "guardreasoner_wrong_length",
    "harmony_final",
    "length_bonus",
    "policy_format",
    "policy_rules",
    "policy_verdict",
    "policy_wrong_length",
    "reward_functions",
]

# GuardReasoner-Omni's exploration bonus: at most 0.2, reaching most of it at a few hundred tokens.
LENGTH_BONUS_MAX = 0.2
LENGTH_BONUS_TOKENS = 300

Scores = list[float | None]


def _text(completion: str | Sequence[Mapping[str, str]]) -> str:
    """A completion's text: TRL passes a string for plain-text prompts, [assistant message] for chat."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def length_bonus(tokens: int) -> float:
    return LENGTH_BONUS_MAX * math.tanh(tokens / LENGTH_BONUS_TOKENS)


# -- policy-guard answers ---------------------------------------------------------------------------

# The start of gpt-oss's final channel in a completion: the header with special tokens kept, or what
# is left of it when TRL decodes with skip_special_tokens (`analysis...assistantfinal{...}`).
_FINAL_CHANNEL = re.compile(r"<\|channel\|>final<\|message\|>|assistantfinal")


def harmony_final(text: str) -> str:
    """The final-channel answer of a gpt-oss completion (the reasoning in the analysis channel comes
    before it); the whole text when it has no channel header (a chat template that splits channels)."""
    return _FINAL_CHANNEL.split(text)[-1].removesuffix("<|return|>")


def _answer(completion: str | Sequence[Mapping[str, str]], rendering: str) -> GuardAnswer:
    """The answer as the rendering asked for it: `<think>`/`<result>` (generic) or the JSON object in
    the final channel (harmony, `aidsafe.guard.harmony`)."""
    text = _text(completion)
    return parse_harmony_answer(harmony_final(text)) if rendering == "harmony" else parse_answer(text)


def policy_format(
    completions: list, expect_reasoning: bool = True, rendering: str = "generic", **kwargs: Any
) -> Scores:
    """1 when the answer is well formed, else 0. Generic: a <think> block unless the verdict-only
    target, then a result block with a verdict and a rules line. Harmony: one JSON object with
    `violation` and a `rule_ids` list, and a `rationale` unless the verdict-only target."""
    if rendering == "harmony":
        answers = [parse_harmony_answer(harmony_final(_text(c))) for c in completions]
        return [float(a.well_formed and (a.reasoning is not None) == expect_reasoning) for a in answers]
    return [float(parse_answer(_text(c), expect_reasoning=expect_reasoning).well_formed) for c in completions]


def policy_verdict(completions: list, verdict: list[str], rendering: str = "generic", **kwargs: Any) -> Scores:
    """1 when the answer's verdict is the gold (or the judges') verdict, else 0; unparseable is 0."""
    return [float(_answer(c, rendering).verdict == gold) for c, gold in zip(completions, verdict, strict=True)]


def policy_rules(completions: list, rules: list[list[str]], rendering: str = "generic", **kwargs: Any) -> Scores:
    """F1 of the answer's rule ids against the gold ids; None where the gold names no rule (the
    verdict reward scores those rows)."""
    scores: Scores = []
    for completion, gold in zip(completions, rules, strict=True):
        if not gold:
            scores.append(None)
            continue
        predicted = set(_answer(completion, rendering).rules)
        hits = len(predicted & set(gold))
        scores.append(2 * hits / (len(predicted) + len(set(gold))))
    return scores


def policy_wrong_length(
    completions: list, verdict: list[str], completion_ids: list, rendering: str = "generic", **kwargs: Any
) -> Scores:
    """The exploration bonus for a completion whose verdict is not the gold one (unparseable included)."""
    return [
        0.0 if _answer(c, rendering).verdict == gold else length_bonus(len(ids))
        for c, gold, ids in zip(completions, verdict, completion_ids, strict=True)
    ]


# -- GuardReasoner answers --------------------------------------------------------------------------


def guardreasoner_format(completions: list, **kwargs: Any) -> Scores:
    """1 when the completion is a GuardReasoner trace (`parse_trace`) whose answers are labels of their
    tasks or `None`; trailing whitespace after the last label is allowed."""
    return [float(_is_trace(_text(c))) for c in completions]


def _is_trace(text: str) -> bool:
    try:
        trace = parse_trace(text.rstrip())
    except ValueError:
        return False
    allowed = [(*labels, "none") for _, labels in TASKS.values()]
    return all(answer.lower() in ok for answer, ok in zip(trace.answers, allowed, strict=True))


def guardreasoner_labels(completions: list, labels: list[Mapping[str, str | None]], **kwargs: Any) -> Scores:
    """0.5 per task whose gold label the answer block states (`parse_answers`, the published
    protocol); tasks without a gold label are not scored. None when no task has one."""
    scores: Scores = []
    for completion, gold in zip(completions, labels, strict=True):
        scored = {task: label for task, label in gold.items() if label is not None}
        if not scored:
            scores.append(None)
            continue
        found = parse_answers(_text(completion))
        scores.append(0.5 * sum(found[task] == label for task, label in scored.items()))
    return scores


def guardreasoner_wrong_length(
    completions: list, labels: list[Mapping[str, str | None]], completion_ids: list, **kwargs: Any
) -> Scores:
    """The exploration bonus for a completion with any scored label wrong (or unparseable)."""
    scores: Scores = []
    for completion, gold, ids in zip(completions, labels, completion_ids, strict=True):
        found = parse_answers(_text(completion))
        right = all(found[task] == label for task, label in gold.items() if label is not None)
        scores.append(0.0 if right else length_bonus(len(ids)))
    return scores


# -- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reward:
    func: Callable[..., Scores]
    answers: str  # which answer format it reads: "policy-guard" or "guardreasoner"
    columns: tuple[str, ...]  # the dataset columns it reads
    is_format: bool = False


REWARDS: dict[str, Reward] = {
    "policy_format": Reward(policy_format, "policy-guard", (), is_format=True),
    "policy_verdict": Reward(policy_verdict, "policy-guard", ("verdict",)),
    "policy_rules": Reward(policy_rules, "policy-guard", ("rules",)),
    "policy_wrong_length": Reward(policy_wrong_length, "policy-guard", ("verdict",)),
    "guardreasoner_format": Reward(guardreasoner_format, "guardreasoner", (), is_format=True),
    "guardreasoner_labels": Reward(guardreasoner_labels, "guardreasoner", ("labels",)),
    "guardreasoner_wrong_length": Reward(guardreasoner_wrong_length, "guardreasoner", ("labels",)),
}
assert set(REWARDS) == set(get_args(RewardName))


def reward_functions(
    names: Sequence[str], *, format_gate: bool = False, expect_reasoning: bool = True, rendering: str = "generic"
) -> list:
    """TRL's `reward_funcs` for the recipe's `rewards`, in order; each keeps its name, which TRL logs
    (`rewards/policy_verdict/mean`). `expect_reasoning` is False for the verdict-only target;
    `rendering` is the policy-guard prompt's (`generic` or `harmony`), which says how it asked for the answer."""
    bound = {"policy-guard": {"rendering": rendering}, "guardreasoner": {}}
    formats = {
        "policy-guard": _bind(policy_format, expect_reasoning=expect_reasoning, rendering=rendering),
        "guardreasoner": guardreasoner_format,
    }
    funcs = []
    for name in names:
        reward = REWARDS[name]
        func = _bind(reward.func, **bound[reward.answers])
        if reward.is_format:
            funcs.append(formats[reward.answers])
        elif format_gate:
            funcs.append(_gated(func, formats[reward.answers]))
        else:
            funcs.append(func)
    return funcs


def _bind(func: Callable[..., Scores], **settings: Any) -> Callable[..., Scores]:
    """`func` with recipe settings bound, still named as `func` (TRL logs a reward by its name)."""
    return functools.update_wrapper(functools.partial(func, **settings), func) if settings else func


def _gated(func: Callable[..., Scores], gate: Callable[..., Scores]) -> Callable[..., Scores]:
    @functools.wraps(func)  # TRL names the reward by __name__
    def gated(completions: list, **kwargs: Any) -> Scores:
        scores = func(completions, **kwargs)
        return [s if s is None or ok else 0.0 for s, ok in zip(scores, gate(completions, **kwargs), strict=True)]

    return gated
