"""`aidsafe generate` over several teacher replicas with `concurrency: auto`, one replica dying
mid-run, and the prompt layout vLLM's prefix cache needs: the real CLI, client and servers."""

from __future__ import annotations

import json
import threading

from aidsafe.testing import ScriptedServer, aidsafe_responder
from tests.conftest import read_jsonl
from tests.helpers import FAST


def test_generate_over_two_replicas_loses_no_sample_when_one_dies(tmp_path, run_cli, prompts_file):
    prompts = [f"[r{i:02d}] How do I look after houseplant number {i}?" for i in range(16)]
    source = prompts_file(prompts)
    out = tmp_path / "run"
    with (
        ScriptedServer(aidsafe_responder(), models=["teacher-x"], latency_s=0.01) as alive,
        ScriptedServer(aidsafe_responder(), models=["teacher-x"], latency_s=0.01) as dying,
    ):
        # The second replica dies after its 15th request, while the run is under way.
        killer = threading.Thread(target=lambda: (_wait_for(dying, 15), dying.stop()), daemon=True)
        killer.start()
        replicas = f"teacher.base_url=[{alive.base_url},{dying.base_url}]"
        code, _, err = run_cli(
            "generate", "aidsafe", "--input", source, "--output", out, "--model", "teacher-x",
            "--set", replicas, "--set", "teacher.concurrency=auto", "--set", "teacher.max_concurrency=8",
            "--set", "dedup.enabled=false", "--set", "teacher.max_transport_retries=6", *FAST,
        )  # fmt: skip
        killer.join(timeout=30)
        assert code == 0, err
        samples = read_jsonl(out / "samples.jsonl")
        assert sorted(s["prompt"] for s in samples) == sorted(prompts)  # every prompt, once
        assert read_jsonl(out / "rejected.jsonl") == []
        assert len(dying.requests) >= 15 and len(alive.requests) > 0
        # After the death every request went to the live replica: it served the rest.
        calls = sum(len(s["metadata"]["calls"]) for s in samples)
        assert len(alive.requests) + len(dying.requests) >= calls
        requests = alive.requests + dying.requests

    # Prefix caching: each agent's system message (role + policies) is byte-identical across
    # samples and comes first; only the user message carries the sample.
    by_agent: dict[str, set[str]] = {}
    for request in requests:
        messages = request.json["messages"]
        if messages[0]["role"] != "system":
            continue
        assert not any(p in messages[0]["content"] for p in prompts)
        first_line = messages[0]["content"].splitlines()[0]
        by_agent.setdefault(first_line, set()).add(messages[0]["content"])
    assert len(by_agent) >= 4  # decomposer, initial CoT, deliberators, refiner
    assert all(len(systems) == 1 for systems in by_agent.values()), {k: len(v) for k, v in by_agent.items()}


def _wait_for(server: ScriptedServer, count: int) -> None:
    event = threading.Event()
    while len(server.requests) < count and not event.wait(0.01):
        pass


def test_metadata_names_no_replica_url(tmp_path, run_cli, prompts_file):
    """Replica URLs are where, not what: not in the recipe hash, so adding one keeps a run resumable."""
    source = prompts_file(["[m] What is a safe way to store bleach?"])
    with (
        ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as a,
        ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as b,
    ):
        one, two = tmp_path / "one", tmp_path / "two"
        for out, urls in ((one, f"[{a.base_url}]"), (two, f"[{a.base_url},{b.base_url}]")):
            code, _, err = run_cli("generate", "aidsafe", "--input", source, "--output", out,
                                   "--model", "teacher-x", "--set", f"teacher.base_url={urls}",
                                   "--set", "dedup.enabled=false", *FAST)  # fmt: skip
            assert code == 0, err
    hashes = {json.loads((d / "run.json").read_text())["recipe_hash"] for d in (one, two)}
    assert len(hashes) == 1
