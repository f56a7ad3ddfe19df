"""Counterfactual policies, pure: which rows get a variant of the policy set, which edit makes it,
the variant set itself, and the editor's reply (its schema and checks).

A guard that memorises a taxonomy answers the same whatever the policy says; one that reads the
policy changes its verdict when the rule behind it goes. So for a share of the rows (drawn from a
hash of the seed and the row's id: the same rows on every machine and rerun) the same content is
judged again under an edited set (aidsafe.guard.policy_guard):

- `drop` (a violation): the violated rule is left out of the set;
- `relax` (a violation): the editor rewrites the violated rule so that it no longer forbids content
  like this one;
- `add` (any verdict): the editor writes a new rule, with the next id of the set's own pattern
  (P6 after P1..P5), that the content breaks.

A violation draws one of the edits the recipe allows uniformly, then (drop, relax) one of its
violated rules; allowed content can only gain a rule. The variant's verdict is judged, never
assumed: a relaxed rule may still forbid it, another rule may still apply after a drop.

Worked cases that name a dropped rule go with it (they would cite a rule the set no longer has);
a relaxed rule loses its violating examples and the violation cases naming it (they may be
allowed now); its allowed examples and cases stay true.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from aidsafe.agents.policies import Policy, PolicySet
from aidsafe.guard.policy_judgement import LINE_PATTERN
from aidsafe.run.task import Rejection

__all__ = [
    "EDITS",
    "NOTE_MAX_CHARS",
    "RULE_MAX_CHARS",
    "TITLE_MAX_CHARS",
    "RuleEdit",
    "VariantPlan",
    "added_rule_id",
    "check_edit",
    "drop_note",
    "edit_model",
    "edit_schema",
    "plan_variant",
    "variant_set",
]

EDITS = ("drop", "relax", "add")
# Ours: a rule is a sentence or two, as the built-in policies' are.
TITLE_MAX_CHARS, RULE_MAX_CHARS, NOTE_MAX_CHARS = 80, 600, 300
_NUMBERED = re.compile(r"^(.*?)(\d+)$")
_LINE = re.compile(LINE_PATTERN)


@dataclass(frozen=True)
class VariantPlan:
    edit: str  # drop, relax or add
    rule: str  # the rule dropped or relaxed, or the id of the rule added

    def key(self, source_id: str) -> str:
        """The variant record's id (the policy-guard contract's scheme)."""
        return f"{source_id}~cf-{self.edit}-{self.rule}"


def added_rule_id(policy_set: PolicySet) -> str:
    """The id an added rule gets: the next number of the set's own pattern (P6 after P1..P5, 15
    after 1..14), or X1, X2 ... where the ids follow no one pattern."""
    ids = policy_set.ids
    found = [_NUMBERED.match(rule) for rule in ids]
    prefixes = {m.group(1) for m in found if m is not None}
    if all(found) and len(prefixes) == 1:
        return f"{prefixes.pop()}{max(int(m.group(2)) for m in found if m is not None) + 1}"
    return next(f"X{n}" for n in range(1, len(ids) + 2) if f"X{n}" not in ids)


def plan_variant(
    source_id: str,
    verdict: str,
    rules: Sequence[str],
    policy_set: PolicySet,
    *,
    share: float,
    edits: Sequence[str],
    seed: int,
) -> VariantPlan | None:
    """The variant the row `source_id` (judged `verdict`, violating `rules`) gets, or None: drawn
    from a hash of the seed and the id, so the same on every machine and every rerun."""
    digest = hashlib.sha256(f"{seed}\x00{source_id}".encode("utf-8", "surrogatepass")).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= share:
        return None
    rng = random.Random(int.from_bytes(digest[8:], "big"))
    applicable = [
        edit for edit in EDITS if edit in edits and (
            edit == "add" or (verdict == "violation" and rules and (edit == "relax" or len(policy_set.ids) > 1))
        )
    ]  # fmt: skip
    if not applicable:
        return None
    edit = rng.choice(applicable)
    return VariantPlan(edit, added_rule_id(policy_set) if edit == "add" else rng.choice(list(rules)))


@dataclass(frozen=True)
class RuleEdit:
    """What the editor wrote: the relaxed rule's text, or the added rule's title and text; a note."""

    rule: str
    note: str
    title: str = ""


def variant_set(policy_set: PolicySet, plan: VariantPlan, edit: RuleEdit | None) -> PolicySet:
    """The set with `plan` applied (`edit`: the editor's text; None for a drop)."""
    data = policy_set.model_dump(mode="json")
    rule = plan.rule

    def keep(case: dict[str, Any], violations_only: bool) -> bool:
        return rule not in case.get("rules", ()) or (violations_only and case["verdict"] == "allowed")

    strict = plan.edit == "drop"  # a dropped rule takes every case naming it; a relaxed one its violations
    for policy in data["policies"]:
        policy["cases"] = [c for c in policy.get("cases", []) if keep(c, not strict)]
    data["cases"] = [c for c in data.get("cases", []) if keep(c, not strict)]
    if plan.edit == "drop":
        data["policies"] = [p for p in data["policies"] if p["id"] != rule]
    elif plan.edit == "relax":
        assert edit is not None
        for policy in data["policies"]:
            if policy["id"] == rule:
                policy.update(rule=edit.rule, disallowed=[])
    else:
        assert edit is not None
        data["policies"].append(Policy(id=rule, title=edit.title, rule=edit.rule).model_dump(mode="json"))
    return PolicySet.model_validate(data)


def edit_schema(edit: str) -> dict[str, Any]:
    """The editor's reply: the rule text (and an added rule's title) and a note saying what changed,
    each one trimmed line within its length."""

    def line(description: str, most: int) -> dict[str, Any]:
        return {"type": "string", "description": description, "maxLength": most, "pattern": LINE_PATTERN}

    properties = {
        **({"title": line("The new rule's short title.", TITLE_MAX_CHARS)} if edit == "add" else {}),
        "rule": line("The rule's full text, as a policy states it.", RULE_MAX_CHARS),
        "note": line("One sentence: what the edit changes about the policy.", NOTE_MAX_CHARS),
    }
    return {"title": "PolicyEdit", "type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}  # fmt: skip


class _EditReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str
    note: str
    title: str = ""  # only an added rule has one

    def to_edit(self) -> RuleEdit:
        return RuleEdit(self.rule, self.note, self.title)


@lru_cache(maxsize=4)
def edit_model(edit: str) -> type[_EditReply]:
    schema = edit_schema(edit)

    def model_json_schema(cls: type, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return json.loads(json.dumps(schema))  # a fresh copy

    return type("PolicyEdit", (_EditReply,), {"model_json_schema": classmethod(model_json_schema)})


def check_edit(reply: RuleEdit, edit: str) -> RuleEdit:
    """The editor's reply, or Rejection("editor") with the first rule of its schema it breaks:
    `empty`, `length` or `format` (not one trimmed line; `#` or `<` that would break the policy text)."""
    texts = {"rule": (reply.rule, RULE_MAX_CHARS), "note": (reply.note, NOTE_MAX_CHARS)}
    if edit == "add":
        texts["title"] = (reply.title, TITLE_MAX_CHARS)
    for name, (text, most) in texts.items():
        if not text.strip():
            raise Rejection("editor", "empty", f"an empty {name}", transient=False)
        if len(text) > most:
            raise Rejection("editor", "length", f"a {name} of {len(text)} characters; at most {most}", transient=False)
        if not _LINE.fullmatch(text):
            raise Rejection("editor", "format", f"{name} {text[:60]!r} is not one trimmed line without '#' or '<'",
                            transient=False)  # fmt: skip
    return reply


def drop_note(policy_set: PolicySet, rule: str) -> str:
    title = next(p.title for p in policy_set.policies if p.id == rule)
    return f"Rule {rule} ({title}) is left out of the policy."
