"""Naming a LangChain chat model in a recipe: `chat_model` (module:Class) and `chat_model_args` on
the teacher or on one agent slot, resolved per slot into the endpoint its calls go to; a bad
reference or argument is one line naming the key, from `aidsafe validate` as from any command."""

from __future__ import annotations

import pytest

from aidsafe.generation.pipeline import load_pipeline
from aidsafe.pairs.recipe import load_pairs_pipeline
from aidsafe.teacher.types import ChatModel

CHAT_OPENAI = "langchain_openai:ChatOpenAI"
# A chat model of no OpenAI kind, installed with langchain-core itself.
OTHER = "langchain_core.language_models.fake_chat_models:FakeListChatModel"


def endpoints(*overrides: str) -> dict[str, list]:
    agents = load_pipeline("aidsafe", list(overrides)).agents
    return {role: [agent.endpoint for agent in found] for role, found in agents.items()}


def test_without_one_every_slot_uses_the_wire_client():
    assert all(e.chat_model is None for found in endpoints().values() for e in found)


def test_the_teachers_chat_model_and_arguments_reach_every_slot_a_slots_own_args_over_them():
    found = endpoints(f"teacher.chat_model={CHAT_OPENAI}", "teacher.chat_model_args={temperature: 0.1, seed: 3}",
                      "agents.refiner={agent: refiner, chat_model_args: {temperature: 0.9}}")  # fmt: skip
    refiner, decomposer = found["refiner"][0], found["intent_decomposer"][0]
    assert decomposer.chat_model == ChatModel(CHAT_OPENAI, {"temperature": 0.1, "seed": 3}, openai_compatible=True)
    assert refiner.chat_model == ChatModel(CHAT_OPENAI, {"temperature": 0.9, "seed": 3}, openai_compatible=True)
    assert decomposer.base_url == "http://localhost:8000/v1"  # ChatOpenAI speaks to the teacher's server


def test_a_slots_own_chat_model_replaces_the_teachers_with_its_own_arguments_only():
    own = f"agents.refiner={{agent: refiner, chat_model: '{OTHER}', chat_model_args: {{responses: [a]}}}}"
    found = endpoints(f"teacher.chat_model={CHAT_OPENAI}", "teacher.chat_model_args={temperature: 0.1}", own)
    refiner = found["refiner"][0]
    assert refiner.chat_model == ChatModel(OTHER, {"responses": ["a"]}, openai_compatible=False)
    # Not an OpenAI-compatible class: it finds its own endpoint; its reference names it.
    assert (refiner.base_url, refiner.replicas) == (OTHER, ())
    assert found["initial_cot"][0].chat_model.ref == CHAT_OPENAI


def test_chatopenai_keeps_the_teachers_replicas():
    urls = "teacher.base_url=[http://gpu-0:8000/v1,http://gpu-1:8000/v1]"
    [endpoint] = endpoints(urls, f"teacher.chat_model={CHAT_OPENAI}")["refiner"]
    assert endpoint.urls == ("http://gpu-0:8000/v1", "http://gpu-1:8000/v1")


def test_a_guard_judge_completes_raw_text_on_its_server_whatever_the_teachers_chat_model():
    pipeline = load_pairs_pipeline("aidsafe-pairs-shieldgemma", [f"teacher.chat_model={CHAT_OPENAI}"])
    assert pipeline.guard_endpoint is not None and pipeline.guard_endpoint.chat_model is None
    assert pipeline.agents["rejected_cot"].endpoint.chat_model.ref == CHAT_OPENAI


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "teacher.chat_model=ChatOpenAI",
            "teacher.chat_model=ChatOpenAI: expected a LangChain chat model as module:Class",
        ),
        (
            "teacher.chat_model=langchain_nowhere:ChatX",
            "teacher.chat_model: cannot import langchain_nowhere (No module named 'langchain_nowhere'); "
            "install its package (pip install langchain-nowhere)",
        ),
        ("teacher.chat_model=langchain_openai:ChatOpenAl", "teacher.chat_model: langchain_openai has no 'ChatOpenAl'"),
        (
            "teacher.chat_model=aidsafe.teacher:Endpoint",
            "teacher.chat_model: aidsafe.teacher:Endpoint is not a LangChain chat model (a subclass of BaseChatModel)",
        ),
        (
            "agents.refiner={agent: refiner, chat_model: 'langchain_openai:Nope'}",
            "agents.refiner.chat_model: langchain_openai has no 'Nope'",
        ),
        (
            "agents.deliberators.1={agent: deliberator, chat_model_args: {temperature: 1}}",
            "agents.deliberators.1.chat_model_args: no chat_model takes them",
        ),
        ("teacher.chat_model_args={temperature: 1}", "teacher: chat_model_args is given without chat_model"),
        ("teacher.chat_model_args={aws_secret_access_key: x}", "aws_secret_access_key: a secret does not belong"),
        (
            f"agents.refiner={{agent: refiner, chat_model: '{CHAT_OPENAI}', chat_model_args: {{api_key: sk}}}}",
            "api_key: a secret does not belong in a recipe",
        ),
        (
            f"agents.refiner={{agent: refiner, chat_model: '{OTHER}', base_url: 'http://x/v1'}}",
            f"agents.refiner.base_url: {OTHER} does not take aidsafe's base_url (only ChatOpenAI does)",
        ),
        (
            f"agents.refiner={{agent: refiner, chat_model: '{OTHER}', api_key_env: MY_KEY}}",
            f"agents.refiner.api_key_env: {OTHER} does not take aidsafe's api_key_env",
        ),
    ],
)
def test_a_bad_chat_model_or_argument_is_one_line_naming_the_key(override, line, run_cli):
    code, out, err = run_cli("validate", "aidsafe", "--set", override)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and line in err, err
    assert "Traceback" not in err and " sk" not in err
