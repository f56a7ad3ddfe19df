"""`aidsafe check RECIPE` over real HTTP against the loopback server (issue 25, part 2): a healthy
server passes with exit code 0 for every recipe kind that calls a teacher; a server that ignores
the schema, a context too small for round `max_rounds`, an unserved model and a refused key are
each caught with one line naming the slot; and `generate`'s pre-flight stops on the same probe
before writing anything."""

from __future__ import annotations

import json

import pytest

from aidsafe.testing import Fault, ScriptedServer, loopback_responder
from tests.conftest import REPO
from tests.helpers import FAST_NO_RETRY, always, write_jsonl

MODEL = "m"
NO_RETRY = ["--set", "teacher.max_transport_retries=0", "--set", "teacher.backoff_base_s=0.01"]
RECIPE = (REPO / "recipes" / "aidsafe.yaml").read_text(encoding="utf-8")


def server(**kwargs) -> ScriptedServer:
    return ScriptedServer(loopback_responder(), models=[MODEL], **kwargs)


def check(run_cli, recipe, url: str, *extra: str) -> tuple[int, str, str]:
    return run_cli("check", recipe, "--base-url", url, "--model", MODEL, *NO_RETRY, *extra)


def check_json(run_cli, recipe, url: str, *extra: str) -> tuple[int, dict, str]:
    code, out, err = check(run_cli, recipe, url, "--json", *extra)
    return code, json.loads(out), err


def failures(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("failed: ")]


def with_refiner(tmp_path, **fields: str):
    """The aidsafe recipe with its refiner slot given `fields` (its own model, URL or key)."""
    slot = ", ".join(f"{key}: {value}" for key, value in {"agent": "refiner", **fields}.items())
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.replace("  refiner: refiner", f"  refiner: {{{slot}}}"), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("recipe", "slots"),
    [("aidsafe", 5), ("llm-zs", 1), ("aidsafe-pairs", 3), ("guardreasoner", 1), ("thinkguard", 1), ("policy-guard", 3)],
)
def test_a_healthy_server_passes_every_check_for_every_kind(run_cli, recipe, slots):
    with server(max_model_len=131072, tokenize=True) as healthy:
        code, report, err = check_json(run_cli, recipe, healthy.base_url)
    assert code == 0, err
    assert report["ok"] is True and len(report["slots"]) == slots
    for slot in report["slots"]:
        states = {name: part["state"] for name, part in slot["checks"].items()}
        assert states == dict.fromkeys(("served", "key", "answers", "schema", "context", "prefix"), "ok"), slot
        assert slot["context"]["counted_by"] == "tokenizer" and slot["context"]["context_length"] == 131072
        assert 0 < slot["prefix"]["shared_tokens"] < slot["prefix"]["prompt_tokens"]
    assert err.strip().splitlines()[-1] == f"ok: every check holds for the {slots} slot{'s' * (slots > 1)} of {recipe}"


def test_a_guard_judge_slot_answers_raw_completions(run_cli):
    with server() as healthy:
        code, report, err = check_json(
            run_cli, "aidsafe-pairs-shieldgemma", healthy.base_url,
            "--set", f"pairs.guard_judge.base_url={healthy.base_url}", "--set", f"pairs.guard_judge.model={MODEL}",
        )  # fmt: skip
        completions = [r for r in healthy.requests if r.path.endswith("/completions") and "prompt" in r.json]
    assert code == 0, err
    judge = report["slots"][-1]
    assert judge["slot"] == "pairs.guard_judge" and judge["checks"]["answers"]["state"] == "ok"
    assert judge["checks"]["schema"]["state"] == "n/a" and len(completions) == 1


def test_a_server_that_does_not_say_its_context_is_not_a_failure(run_cli):
    with server() as silent:
        code, report, err = check_json(run_cli, "aidsafe", silent.base_url)
    assert code == 0, err
    contexts = [slot["checks"]["context"] for slot in report["slots"]]
    assert all(c["state"] == "not known" and c["shown"].endswith("context not known") for c in contexts)
    assert {slot["context"]["counted_by"] for slot in report["slots"]} == {"estimate"}


def test_a_server_that_ignores_the_schema_is_named_by_its_slot(run_cli, tmp_path):
    with server() as honest, server(fault_plan=always(Fault.SCHEMA_IGNORED)) as ignoring:
        recipe = with_refiner(tmp_path, base_url=ignoring.base_url)
        code, out, err = check(run_cli, recipe, honest.base_url)
    assert code == 1
    (line,) = failures(err)
    assert line.startswith(
        f"failed: agents.refiner (refiner): teacher {MODEL} at {ignoring.base_url} ignores the structured-output "
        "schema (json_schema mode): asked for the one value its schema allows, it answered"
    )
    assert "ignored" in out  # the table's schema column
    assert err.strip().splitlines()[-1] == f"1 failure in 1 of 5 slots of {recipe}"


def test_a_context_too_small_for_round_max_rounds_is_named_by_its_slot(run_cli):
    with server(max_model_len=1_000_000, tokenize=True) as roomy:
        _, report, _ = check_json(run_cli, "aidsafe", roomy.base_url)
    need = {slot["slot"]: slot["context"]["prompt_tokens"] + slot["context"]["max_tokens"] for slot in report["slots"]}
    # Room for round 3 (deliberator_a's last turn) but not round 4 (deliberator_b's), nor the refiner after it.
    assert need["agents.deliberators.0"] < need["agents.deliberators.1"] < need["agents.refiner"]
    with server(max_model_len=need["agents.deliberators.0"], tokenize=True) as small:
        code, _, err = check(run_cli, "aidsafe", small.base_url)
    assert code == 1
    lines = failures(err)
    assert [line.split(":", 2)[1] for line in lines] == [
        " agents.deliberators.1 (deliberator_b)",
        " agents.refiner (refiner)",
    ]
    assert lines[0].startswith("failed: agents.deliberators.1 (deliberator_b): round 4 of 4 needs ")
    assert (
        f"= {need['agents.deliberators.1']:,}, more than the {need['agents.deliberators.0']:,} the served model"
        in lines[0]
    )
    assert "by the server's tokenizer" in lines[0] and "\n" not in lines[0]


def test_an_unserved_model_is_named_by_its_slot(run_cli, tmp_path):
    with server() as serving:
        code, _, err = check(run_cli, with_refiner(tmp_path, model="other-model"), serving.base_url)
    assert code == 1
    assert failures(err) == [
        f"failed: agents.refiner (refiner): teacher at {serving.base_url} does not serve model 'other-model'; "
        f"it serves: {MODEL}"
    ]


def test_a_refused_key_is_named_by_its_slot_and_variable(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("REFINER_KEY", "a-stale-key")
    with server() as open_server, server(api_key="the-right-key") as guarded:
        recipe = with_refiner(tmp_path, base_url=guarded.base_url, api_key_env="REFINER_KEY")
        code, out, err = check(run_cli, recipe, open_server.base_url)
    assert code == 1
    assert failures(err) == [
        f"failed: agents.refiner (refiner): teacher at {guarded.base_url} refused the API key from REFINER_KEY "
        "(HTTP 401); set that variable, or api_key_env in the recipe"
    ]
    assert "a-stale-key" not in out + err


def test_a_system_message_that_changes_per_sample_fails_the_prefix_check(run_cli, tmp_path):
    card = (REPO / "agents" / "refiner.yaml").read_text(encoding="utf-8")
    card = card.replace(
        "  Policies in force (ids: {policy_ids}):", "  The user asked: {prompt}\n  Policies (ids: {policy_ids}):"
    )
    (tmp_path / "my_refiner.yaml").write_text(card, encoding="utf-8")
    (tmp_path / "recipe.yaml").write_text(
        RECIPE.replace("refiner: refiner", "refiner: my_refiner.yaml"), encoding="utf-8"
    )
    with server() as healthy:
        code, report, err = check_json(run_cli, tmp_path / "recipe.yaml", healthy.base_url)
    assert code == 1 and report["ok"] is False
    (line,) = failures(err)
    assert line.startswith("failed: agents.refiner (refiner): its system message changes from sample to sample")
    assert report["slots"][-1]["checks"]["prefix"]["shown"] == "varies"


def test_the_table_names_every_slot_and_what_was_counted(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")
    with server(max_model_len=65536) as healthy:
        code, out, _ = check(run_cli, "aidsafe", healthy.base_url)
    assert code == 0
    rows = [line for line in out.splitlines() if "agents." in line]
    assert len(rows) == 5 and all("honoured" in row and "of 65,536" in row and "estimate" in row for row in rows)
    assert "round 4 of 4" in rows[3] and "after round 4" in rows[4]


def test_a_recipe_that_calls_no_teacher_is_refused_in_one_line(run_cli):
    code, _, err = run_cli("check", "sft")
    assert code == 2 and err.strip().splitlines() == [
        "error: sft is a train recipe: it calls no teacher; `aidsafe check` checks generation, pairs, guardreasoner, "
        "thinkguard, policy-guard recipes"
    ]


def test_generate_stops_at_the_preflight_when_the_schema_is_ignored(run_cli, tmp_path):
    source = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "How do I bake bread?"}])
    out = tmp_path / "run"
    with server(fault_plan=always(Fault.SCHEMA_IGNORED)) as ignoring:
        code, _, err = run_cli("generate", "aidsafe", "--input", source, "--output", out, "--base-url",
                               ignoring.base_url, "--model", MODEL, *FAST_NO_RETRY)  # fmt: skip
        sent = len(ignoring.requests)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: teacher {MODEL} at {ignoring.base_url} ignores the structured-output schema")
    assert sent == 1  # the probe, and no sample's call
    assert not (out / "samples.jsonl").exists() and not (out / "rejected.jsonl").exists()


# A mixed recipe: the refiner through LangChain's ChatOpenAI, every other slot through the wire client.
CHAT_OPENAI = {"chat_model": '"langchain_openai:ChatOpenAI"'}


def by_chat_openai(request) -> bool:
    return request.headers.get("user-agent", "").startswith("AsyncOpenAI/Python")


def test_a_mixed_recipe_passes_with_its_langchain_slot_probed_through_the_model(run_cli, tmp_path):
    with server(max_model_len=131072, tokenize=True) as healthy:
        code, report, err = check_json(run_cli, with_refiner(tmp_path, **CHAT_OPENAI), healthy.base_url)
        probes = sorted(by_chat_openai(r) for r in healthy.requests)
    assert code == 0, err
    assert [slot["slot"] for slot in report["slots"]][-1] == "agents.refiner" and len(report["slots"]) == 5
    for slot in report["slots"]:
        assert {part["state"] for part in slot["checks"].values()} == {"ok"}, slot
        assert slot["context"]["counted_by"] == "tokenizer" and slot["context"]["context_length"] == 131072
    assert probes == [False, True]  # one probe per client: the wire's for four slots, ChatOpenAI's for one


def test_a_langchain_slot_whose_server_ignores_the_schema_is_named_by_its_slot(run_cli, tmp_path):
    with server() as honest, server(fault_plan=always(Fault.SCHEMA_IGNORED)) as ignoring:
        recipe = with_refiner(tmp_path, base_url=ignoring.base_url, **CHAT_OPENAI)
        code, _, err = check(run_cli, recipe, honest.base_url)
        ignored = [by_chat_openai(r) for r in ignoring.requests]
    assert code == 1 and ignored == [True]
    (line,) = failures(err)
    assert line.startswith(
        f"failed: agents.refiner (refiner): teacher {MODEL} at {ignoring.base_url} ignores the structured-output schema"
    )


@pytest.mark.parametrize("wrong", ["model", "key"])
def test_a_langchain_slots_unserved_model_or_refused_key_is_named_by_its_slot(run_cli, tmp_path, monkeypatch, wrong):
    monkeypatch.setenv("REFINER_KEY", "a-stale-key")
    with server() as open_server, server(api_key="the-right-key") as guarded:
        if wrong == "model":
            recipe = with_refiner(tmp_path, model="other-model", **CHAT_OPENAI)
            expected = f"teacher at {open_server.base_url} does not serve model 'other-model'; it serves: {MODEL}"
        else:
            recipe = with_refiner(tmp_path, base_url=guarded.base_url, api_key_env="REFINER_KEY", **CHAT_OPENAI)
            expected = f"teacher at {guarded.base_url} refused the API key from REFINER_KEY (HTTP 401)"
        code, out, err = check(run_cli, recipe, open_server.base_url)
    assert code == 1
    (line,) = failures(err)
    assert line.startswith(f"failed: agents.refiner (refiner): {expected}") and "a-stale-key" not in out + err
