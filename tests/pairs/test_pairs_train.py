"""`aidsafe train dpo` reads a pairs run directory: generate -> pairs -> train dpo, end to end."""

from __future__ import annotations

import math

import pytest

from aidsafe.errors import AidsafeError
from aidsafe.testing import ScriptedServer
from aidsafe.train.data import format_pair, load_train_data
from aidsafe.train.recipe import load_train_recipe
from tests.helpers import FAST, final_loss, tiny_training
from tests.pairs.helpers import pairs_server_responder


def _pairs_run(tmp_path, run_cli, prompts_file):
    prompts = [f"[sep=1] How do I handle request {i}?" for i in range(4)]
    gen, out = tmp_path / "gen", tmp_path / "pairs"
    with ScriptedServer(pairs_server_responder(), models=["m"]) as server:
        teacher = ["--base-url", server.base_url, "--model", "m", *FAST]
        code, _, err = run_cli("generate", "aidsafe", "-i", prompts_file(prompts), "-o", gen, *teacher,
                               "--set", "dedup.enabled=false")  # fmt: skip
        assert code == 0, err
        code, _, err = run_cli("pairs", "aidsafe-pairs", "-i", gen, "-o", out, *teacher)
        assert code == 0, err
    return gen, out


def test_a_pairs_run_is_trl_conversational_preference_data_without_the_belief(tmp_path, run_cli, prompts_file):
    gen, out = _pairs_run(tmp_path, run_cli, prompts_file)
    recipe = load_train_recipe("dpo")
    dataset = load_train_data(str(out), recipe)
    assert dataset.column_names == ["prompt", "chosen", "rejected"] and len(dataset) == 4
    row = dataset[0]
    assert [m["role"] for m in row["prompt"]] == ["user"] and "STEERED" not in row["prompt"][0]["content"]
    assert row["chosen"][0]["role"] == "assistant" and "STEERED" in row["rejected"][0]["content"]
    assert "STEERED" not in row["chosen"][0]["content"]
    with pytest.raises(AidsafeError, match="pairs run directory holds DPO pairs"):
        load_train_data(str(out), load_train_recipe("sft"))


def test_format_pair_applies_the_cot_template_to_both_sides():
    record = {"prompt": "Q?", "belief": {"text": "SECRET belief", "target_policy": "P1"},
              "chosen": {"thoughts": [{"text": "a"}], "response": "safe"},
              "rejected": {"thoughts": [{"text": "b"}], "response": "unsafe"}}  # fmt: skip
    row = format_pair(record, "<think>{thoughts}</think>{response}")
    assert row["chosen"][0]["content"] == "<think>a</think>safe"
    assert row["rejected"][0]["content"] == "<think>b</think>unsafe"
    assert "SECRET" not in str(row)


@pytest.mark.slow
def test_generate_pairs_train_dpo_chain(tmp_path, run_cli, prompts_file, tiny_model):
    _, out = _pairs_run(tmp_path, run_cli, prompts_file)
    model_out = tmp_path / "dpo"
    code, _, err = run_cli("train", "dpo", "dpo", "--model", tiny_model, "--data", out, "--output", model_out,
                           *tiny_training(steps=2))  # fmt: skip
    assert code == 0, err[-3000:]
    import torch
    from safetensors.torch import load_file

    assert math.isfinite(final_loss(err, steps=2)), err[-2000:]
    adapter = load_file(str(model_out / "adapter_model.safetensors"))  # LoRA B starts at zero: it moved
    assert any(name.endswith("lora_B.weight") and torch.count_nonzero(t) > 0 for name, t in adapter.items())
