"""Every built-in agent card loads, fits its role, renders, and its role's output parses."""

from __future__ import annotations

import pytest

import aidsafe.pairs.schemas  # noqa: F401  registers the pair roles' outputs (tests/pairs checks those cards)
from aidsafe.agents.cards import AgentCard, load_card, template_fields
from aidsafe.agents.context import CardAgent
from aidsafe.agents.policies import load_policies
from aidsafe.config.resources import builtin_names
from aidsafe.generation.roles import ROLES, template_values
from aidsafe.testing import default_reply, example_state

CARDS = builtin_names("agents")
GENERATION_CARDS = [name for name in CARDS if load_card(name)[0].role in ROLES]


def test_every_role_has_a_builtin_card():
    roles = {load_card(name)[0].role for name in CARDS}
    assert set(ROLES) <= roles


@pytest.mark.parametrize("name", GENERATION_CARDS)
def test_card_renders_and_its_output_parses(name):
    card, _ = load_card(name)
    spec = ROLES[card.role]
    assert card.output_schema == spec.output.__name__
    assert template_fields(card.system) | template_fields(card.user) <= spec.fields

    policies = load_policies("aidsafe")
    state = example_state(card.role, policies)
    messages = CardAgent(card, card.name).build_messages(template_values(state, policies, card.name, 4))
    assert [m["role"] for m in messages] == ["system", "user"]
    rendered = messages[0]["content"] + messages[1]["content"]
    if "prompt" in template_fields(card.user):
        assert state["prompt"] in rendered
    if "thoughts" in template_fields(card.user):
        assert "t1 [P1]: Knife storage" in rendered

    # The scripted reply is valid for this call's own schema (its ids, the content floor).
    reply = spec.call_model(state, policies).model_validate(default_reply(spec.output.__name__, messages))
    spec.validate(spec.output.model_validate(reply.model_dump()), state, policies)


def test_template_with_unbalanced_brace_is_rejected():
    with pytest.raises(ValueError, match="literal braces"):
        AgentCard(name="x", role="refiner", output_schema="Refinement", system="ok", user="{oops")


def test_unknown_output_schema_lists_known_ones():
    with pytest.raises(ValueError, match="IntentList"):
        AgentCard(name="x", role="refiner", output_schema="Nope", system="a", user="b")
