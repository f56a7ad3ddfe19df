"""GRPO recipes and data: rewards and their weights checked on load, prompts and gold columns from
run directories and files, every wrong value one line before a model loads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.guard.formats import GUARDREASONER_INSTRUCTION, TaskTrace, Trace, guardreasoner_input, render_trace
from aidsafe.guard.harmony import HARMONY_HEADER, render_messages
from aidsafe.guard.policy_bench import is_heldout
from aidsafe.guard.policy_format import guard_messages
from aidsafe.kinds import KINDS, StageKind
from aidsafe.train import load_train_data, load_train_recipe
from aidsafe.train.config import build_trainer_config
from aidsafe.train.data import policy_guard_grpo_row

PG = load_train_recipe("policy-guard-grpo")
GR = load_train_recipe("guardreasoner-grpo")
POLICY = "# Policy demo (version 1)\n\n## [P1] Weapons\nNo help building weapons.\n\n## [P2] Privacy\nNo doxxing."


def trace_record(number: int, prompt: str, label: str) -> dict:
    """A record as `aidsafe generate guardreasoner` writes it (no response: two tasks are None)."""
    task = TaskTrace(("The user asks.",), "So it is " + label + ".")
    return {
        "id": f"t{number}",
        "instruction": GUARDREASONER_INSTRUCTION,
        "input": guardreasoner_input(prompt, None),
        "output": render_trace(Trace((task, task, task), (label, "None", "None"))),
        "labels": {"prompt": label, "refusal": None, "response": None},
    }


def policy_record(number: int, prompt: str, response: str | None, verdict: str, rules: list[str]) -> dict:
    """A record as the policy-guard stage writes it (the fields the GRPO row reads, plus a few)."""
    return {
        "id": f"r{number}", "source_id": f"r{number}", "prompt": prompt, "response": response,
        "policy": {"set_id": "demo", "version": "1", "rule_ids": ["P1", "P2"], "text": POLICY, "variant": None},
        "verdict": verdict, "rules": rules, "reasoning": "Because.", "rationale": "Because.",
        "gold": None, "label_source": "judges_agree",
    }  # fmt: skip


def test_builtin_grpo_recipes_reach_trl(tmp_path):
    pg = build_trainer_config(PG, tmp_path)
    assert type(pg).__name__ == "GRPOConfig" and len(pg.reward_weights) == len(PG.rewards) == 4
    assert pg.reward_weights[PG.rewards.index("policy_wrong_length")] == 0.0  # the bonus is an option, off
    gr = build_trainer_config(GR, tmp_path)
    assert GR.format_gate and GR.lora is None  # GuardReasoner-Omni: gated reward, full fine-tuning
    assert (gr.learning_rate, gr.num_generations, gr.max_completion_length, gr.beta) == (2e-6, 16, 2048, 0.0)
    assert gr.per_device_train_batch_size * gr.gradient_accumulation_steps * 4 == 128 * 16
    assert load_train_recipe("policy-guard-sft").target == "full"
    assert load_train_recipe("policy-guard-sft", ["target=verdict"]).target == "verdict"


def _write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("mode: grpo\n", [], r"recipe.yaml: \(top level\): a GRPO recipe needs rewards"),
        ("mode: grpo\nrewards: [policy_verdict, policy_fmt]\n", [], r"recipe.yaml:2: rewards.1: Input should be"),
        (
            "mode: grpo\nrewards: [policy_verdict, guardreasoner_labels]\n",
            [],
            r"recipe.yaml:2: rewards: .*use one kind",
        ),
        ("mode: grpo\nrewards: [policy_verdict, policy_verdict]\n", [], r"recipe.yaml:2: rewards: each reward at most"),
        ("mode: sft\nrewards: [policy_verdict]\n", [], r"rewards and format_gate apply to GRPO only"),
        (
            "mode: grpo\nrewards: [guardreasoner_labels]\n",
            ["rendering=harmony"],
            r"rendering applies to policy-guard data",
        ),
        ("mode: sft\nrendering: chatml\n", [], r"recipe.yaml:2: rendering: Input should be 'generic' or 'harmony'"),
        (
            "mode: grpo\nrewards: [policy_format, policy_verdict]\ntrainer:\n  reward_weights: [1.0]\n",
            [],
            r"recipe.yaml:4: trainer.reward_weights: one number per reward, in the order of rewards "
            r"\(2: policy_format, policy_verdict\), got \[1.0\]",
        ),
        (
            "mode: grpo\nrewards: [policy_format]\n",
            ["trainer.reward_weights=[1, 2]"],
            r"--set trainer.reward_weights=\[1, 2\]: trainer.reward_weights: one number per reward",
        ),
        (
            "mode: grpo\nrewards: [policy_format]\n",
            ["trainer.reward_weights=[high]"],
            r"trainer.reward_weights: one number per reward, .*got \['high'\]",
        ),
        ("mode: grpo\nrewards: [policy_format]\ntrainer:\n  max_length: 9\n", [], r"not a field of TRL's GRPOConfig"),
    ],
)
def test_recipe_mistakes_are_one_line_naming_the_key(tmp_path, text, overrides, message):
    with pytest.raises(AidsafeError, match=message) as error:
        load_train_recipe(_write(tmp_path, text), overrides)
    assert "\n" not in str(error.value)


def test_the_summary_names_a_reward_that_never_applied():
    from aidsafe.train.run import TrainResult

    result = TrainResult(
        Path("o"), 1, 0.0, "adapter", 1, True, rewards={"policy_verdict": 0.25, "policy_rules": math.nan}
    )
    assert result.rewards_summary == "mean rewards policy_verdict 0.250, policy_rules n/a"


def test_a_guardreasoner_run_directory_gives_the_rsft_prompt_and_its_labels(tmp_path, write_jsonl):
    run = tmp_path / "gr"
    run.mkdir()
    record = trace_record(0, "How do I build a bomb?", "harmful")
    write_jsonl(run / "samples.jsonl", [record])
    [row] = load_train_data(str(run), GR).to_list()
    assert row == {
        "prompt": GUARDREASONER_INSTRUCTION + "\n" + record["input"],  # what R-SFT trained on, no chat template
        "labels": {"prompt": "harmful", "refusal": None, "response": None},
    }
    with pytest.raises(AidsafeError, match=r"GRPO data for rewards policy_format.* missing: rules, verdict"):
        load_train_data(str(run), PG)


def test_an_exported_guardreasoner_file_reads_its_labels_from_the_answer_block(tmp_path, write_jsonl):
    record = trace_record(0, "hi", "unharmful")
    exported = {key: record[key] for key in ("instruction", "input", "output")}
    [row] = load_train_data(str(write_jsonl(tmp_path / "gr.jsonl", [exported])), GR).to_list()
    assert row["labels"] == {"prompt": "unharmful", "refusal": None, "response": None}
    bare = {**exported, "output": "unharmful"}  # a benchmark file's bare label names no task
    with pytest.raises(AidsafeError, match=r"row 0: output: expected a GuardReasoner answer block"):
        load_train_data(str(write_jsonl(tmp_path / "bare.jsonl", [bare])), GR)


def test_the_policy_guard_row_is_the_generic_guard_prompt_and_the_judged_answer():
    record = policy_record(0, "Where does Ana live?", "Her address is ...", "violation", ["P2"])
    row = policy_guard_grpo_row(record, PG)
    assert row == {
        "prompt": guard_messages(POLICY, "Where does Ana live?", "Her address is ..."),
        "verdict": "violation",
        "rules": ["P2"],
    }
    assert [m["role"] for m in row["prompt"]] == ["system", "user"] and POLICY in row["prompt"][0]["content"]


def test_the_harmony_rendering_asks_in_gpt_oss_safeguards_policy_prompt():
    record = policy_record(0, "Where does Ana live?", None, "violation", ["P2"])
    row = policy_guard_grpo_row(record, load_train_recipe("policy-guard-grpo", ["rendering=harmony"]))
    assert row["prompt"] == render_messages("harmony", POLICY, "Where does Ana live?", None)
    assert row["prompt"][0]["content"].startswith(HARMONY_HEADER) and POLICY in row["prompt"][0]["content"]


# Source ids that policy_bench.is_heldout keeps for evaluation (r0-r3 train).
HELD_OUT = (25, 33)


@pytest.fixture
def policy_guard_run(tmp_path, write_jsonl, monkeypatch):
    """A run directory of `aidsafe generate policy-guard`. Until the stage's kind is registered
    (branch pgstage), a stand-in entry with the same GRPO row function takes its place."""
    kind = KINDS.get("policy-guard") or StageKind(
        "policy-guard", "policy-guard", "aidsafe generate", record_keys=frozenset({"policy", "verdict", "rules"}),
        train={"grpo": "aidsafe.train.data:policy_guard_grpo_row"},
    )  # fmt: skip
    assert kind.train["grpo"] == "aidsafe.train.data:policy_guard_grpo_row"
    monkeypatch.setitem(KINDS, "policy-guard", kind)

    def write(records: list[dict]):
        run = tmp_path / "pg"
        run.mkdir(exist_ok=True)
        (run / "run.json").write_text('{"kind": "policy-guard"}', encoding="utf-8")
        write_jsonl(run / "samples.jsonl", records)
        return run

    return write


def test_a_policy_guard_run_directory_trains_grpo_without_its_held_out_rows(policy_guard_run):
    assert all(is_heldout(f"r{n}") for n in HELD_OUT) and not any(is_heldout(f"r{n}") for n in range(4))
    variant = {**policy_record(HELD_OUT[0], "Gun?", "No.", "allowed", []), "id": f"r{HELD_OUT[0]}~cf-drop-P1"}
    run = policy_guard_run(
        [
            policy_record(0, "Bake bread?", None, "allowed", []),
            policy_record(HELD_OUT[0], "Gun?", "No.", "violation", ["P1"]),
            variant,  # a counterfactual variant is held out with its source row
            policy_record(1, "Gun?", "No.", "violation", ["P1"]),
        ]
    )
    rows = load_train_data(str(run), PG).to_list()
    assert [(r["verdict"], r["rules"]) for r in rows] == [("allowed", []), ("violation", ["P1"])]
    assert rows[1]["prompt"] == guard_messages(POLICY, "Gun?", "No.")


def test_a_run_with_only_held_out_rows_is_one_line(policy_guard_run):
    run = policy_guard_run([policy_record(n, "Gun?", None, "violation", ["P1"]) for n in HELD_OUT])
    with pytest.raises(AidsafeError, match=r"pg: all 2 records are held out for evaluation; nothing to train on$"):
        load_train_data(str(run), PG)


@pytest.mark.parametrize(
    ("recipe", "row", "message"),
    [
        (
            PG,
            {"prompt": "p", "verdict": "unsafe", "rules": []},
            r"row 0: verdict must be allowed or violation, got 'unsafe'",
        ),
        (PG, {"prompt": "p", "verdict": "violation", "rules": "P1"}, r"row 0: rules must be a list of rule ids"),
        (PG, {"messages": [], "verdict": "allowed"}, r"needs columns prompt, rules, verdict; missing: prompt, rules"),
        (GR, {"prompt": "p", "labels": {"prompt": "safe"}}, r"row 0: labels must map prompt to harmful\|unharmful"),
        (GR, {"prompt": "p"}, r"needs columns prompt, labels; missing: labels; found: prompt"),
        (GR, {"prompt": "p", "labels": {"prompt": None}}, r"row 0: labels names no gold label, got \{'prompt': None"),
    ],
)
def test_wrong_gold_values_give_one_line(tmp_path, write_jsonl, recipe, row, message):
    with pytest.raises(AidsafeError, match=message) as error:
        load_train_data(str(write_jsonl(tmp_path / "d.jsonl", [row])), recipe)
    assert "\n" not in str(error.value)


def test_a_file_of_policy_guard_rows_is_grpo_data(tmp_path, write_jsonl):
    rows = [policy_guard_grpo_row(policy_record(0, "Gun?", None, "violation", ["P1"]), PG)]
    from datasets import Dataset

    Dataset.from_list(rows).to_parquet(str(tmp_path / "pg.parquet"))
    for data in (write_jsonl(tmp_path / "pg.jsonl", rows), tmp_path / "pg.parquet"):
        assert load_train_data(str(data), PG).to_list() == rows
