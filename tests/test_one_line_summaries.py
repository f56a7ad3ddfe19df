"""Long errors in one-line summaries keep whole words and their closing part (issue 22, item 3):
`(known: AidsafePreflight, Deliberatio` told the user neither the list nor where it ended."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from aidsafe.oneline import one_line
from aidsafe.run.executor import NothingFinished, Outcome, check_something_finished
from aidsafe.run.task import Rejection
from aidsafe.teacher import Endpoint, TeacherClient, TransientTeacherError
from aidsafe.teacher.retry import describe_failure
from aidsafe.teacher.wire import StatusError

SCHEMAS = [f"Schema{name}" for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel")]
# What the scripted server answers for a schema it has no reply for, with a long list of known ones.
LONG = (
    "responder failed: KeyError(\"no scripted reply for schema 'Verdict' (known: AidsafePreflight, "
    + ", ".join(SCHEMAS * 4)
    + ', LastKnownSchema)")'
)


def _words_kept_whole(summary: str, original: str) -> bool:
    words = {word.strip(",;:") for word in original.split()}
    return all(word.strip(",;:") in words for word in summary.replace(" ... ", " ").split())


def test_a_long_text_keeps_whole_words_and_its_end():
    summary = one_line(LONG, 120)
    assert len(summary) <= 120
    assert summary.startswith("responder failed: KeyError(")
    assert summary.endswith('LastKnownSchema)")')
    assert " ... " in summary and _words_kept_whole(summary, LONG)


@pytest.mark.parametrize("limit", [40, 60, 97, 200, 299])
def test_every_limit_is_kept_and_words_stay_whole(limit):
    summary = one_line(LONG, limit)
    assert len(summary) <= limit
    assert _words_kept_whole(summary, LONG)


def test_short_text_is_only_collapsed_to_one_line():
    assert one_line("HTTP 500:\n  server\terror ") == "HTTP 500: server error"


def test_a_server_message_keeps_its_closing_part():
    failure = StatusError(500, {}, "", {"message": LONG})
    line = describe_failure(failure)
    assert line.startswith("HTTP 500: responder failed")
    assert line.endswith('LastKnownSchema)")') and _words_kept_whole(line, "HTTP 500: " + LONG)


def test_the_nothing_finished_line_keeps_the_closing_part(tmp_path: Path):
    outcome = Outcome(items=1)
    outcome.rejected["a"] = Rejection("decompose", "teacher_unavailable", "HTTP 500: " + LONG, transient=True)
    with pytest.raises(NothingFinished) as caught:
        check_something_finished(outcome, tmp_path / "rejected.jsonl", {}, noun="samples")
    message = str(caught.value)
    assert 'LastKnownSchema)")' in message
    inner = message.split("(teacher_unavailable: ", 1)[1].split("); ", 1)[0]
    assert _words_kept_whole(inner, "HTTP 500: " + LONG)


class Verdict(BaseModel):
    safe: bool


async def test_a_rejection_from_the_wire_keeps_whole_words():
    from aidsafe.testing.server import ScriptedServer

    def respond(request):
        raise KeyError(LONG)

    async with TeacherClient(env={}, max_transport_retries=1, backoff_base_s=0.01, seed=0) as client:
        with ScriptedServer(respond) as server:
            with pytest.raises(TransientTeacherError) as caught:
                await client.generate(
                    agent="judge",
                    role="verdict",
                    messages=[{"role": "user", "content": "hi"}],
                    schema=Verdict,
                    endpoint=Endpoint(base_url=server.base_url, model="scripted-model"),
                    sampling={},
                )
            server.errors.clear()  # the responder failed on purpose
    message = str(caught.value)
    assert message.rstrip().endswith("LastKnownSchema)\")')")


def test_a_long_gold_label_is_shown_by_whole_words():
    from aidsafe.guard.formats import parse_gold

    label = "the request asks for something clearly dangerous and should be refused outright"
    with pytest.raises(ValueError) as caught:
        parse_gold(label, "prompt")
    shown = str(caught.value).split("gold label ", 1)[1].split(" is not ", 1)[0].strip("'")
    assert " ... " in shown and shown.endswith(" outright") and _words_kept_whole(shown, label)
