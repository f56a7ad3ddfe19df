"""Examples TRL drops for `max_length` are counted (issue 22, item 11): all of them dropped is one
line before training, not a 60-line `num_samples=0` traceback; some dropped is in the summary."""

from __future__ import annotations

import re

from tests.helpers import tiny_training

FAST = tiny_training(steps=3)  # small, fast, deterministic steps

LONG_PROMPT = "Task: assess the conversation below against every policy in the list.\nUser: " + "please " * 40
SHORT_PROMPT = "User: hi\n"


def _guard_data(tmp_path, prompts: list[str]):
    from datasets import Dataset

    rows = [{"prompt": prompt, "completion": "- Safety Assessment: safe\n- Why: ok."} for prompt in prompts]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "guard"))
    return tmp_path / "guard"


def _train(run_cli, tiny_model, data, out):
    args = [*FAST, "--set", "trainer.max_length=32"]  # the last --set wins over FAST's 256
    return run_cli("train", "sft", "thinkguard", "--model", tiny_model, "--data", data, "--output", out, *args)


def test_every_example_too_long_is_one_line_before_training(run_cli, tiny_model, tmp_path):
    data = _guard_data(tmp_path, [LONG_PROMPT, LONG_PROMPT + "now", LONG_PROMPT + "again"])
    code, _, err = _train(run_cli, tiny_model, data, tmp_path / "out")
    assert code == 2, err[-3000:]
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(
        "error: 3 of 3 examples are longer than max_length 32 and were dropped; raise trainer.max_length"
    )
    assert "Traceback" not in err and "num_samples" not in err


def test_the_summary_counts_the_examples_kept_and_dropped(run_cli, tiny_model, tmp_path):
    data = _guard_data(tmp_path, [SHORT_PROMPT, SHORT_PROMPT + "there", LONG_PROMPT])
    code, _, err = _train(run_cli, tiny_model, data, tmp_path / "out")
    assert code == 0, err[-3000:]
    assert re.search(
        r"sft: 3 steps, final train loss \S+; 2 of 3 examples \(1 longer than max_length 32 dropped\); full model -> ",
        err,
    ), err[-2000:]
