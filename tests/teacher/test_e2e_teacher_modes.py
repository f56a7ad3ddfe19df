"""`aidsafe generate` against a server that refuses the recipe's structured-output mode, as
llama-cpp-python's server refuses json_schema: the pre-flight stops the run in one line that
names the other mode, and the other mode then works."""

from __future__ import annotations

from aidsafe.run.jsonl import read_jsonl
from aidsafe.testing import aidsafe_responder
from aidsafe.testing.server import Fault, ScriptedServer
from tests.helpers import FAST


def test_refused_json_schema_stops_before_the_first_sample_and_function_calling_works(tmp_path, run_cli, prompts_file):
    prompts = prompts_file(["How do I pick a strong password?"])
    refuses = lambda index, request: Fault.NO_JSON_SCHEMA  # noqa: E731
    with ScriptedServer(aidsafe_responder(), fault_plan=refuses) as server:
        args = ["generate", "aidsafe", "-i", prompts, "--base-url", server.base_url, "--model", "scripted-model", *FAST]
        code, _, err = run_cli(*args, "-o", tmp_path / "refused")
        sent_before_stopping = len(server.requests)
        retried = run_cli(*args, "-o", tmp_path / "ok", "--set", "teacher.structured_output=function_calling")
    assert code != 0
    line = err.strip()
    assert "refused a structured-output request in json_schema mode" in line
    assert "--set teacher.structured_output=function_calling" in line
    assert "Traceback" not in err and len(line.splitlines()) == 1
    assert sent_before_stopping == 3  # the pre-flight's attempts, no sample's
    assert retried[0] == 0, retried[2]
    assert len(read_jsonl(tmp_path / "ok" / "samples.jsonl")) == 1
