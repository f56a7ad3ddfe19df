"""`aidsafe generate -> aidsafe export -> datasets.load_dataset / aidsafe train --data` on a real run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pytest
from huggingface_hub import DatasetCard

from aidsafe.errors import AidsafeError
from aidsafe.export import ExportRequest, export_run
from aidsafe.export.formats import cot_answer, in_test_split
from aidsafe.train import DEFAULT_COT_TEMPLATE, TrainRecipe, format_sample, load_train_data
from tests.conftest import read_jsonl


def _records(run_dir) -> dict[str, dict]:
    return {r["prompt"]: r for r in read_jsonl(run_dir / "samples.jsonl")}


def test_export_loads_back_with_load_dataset_in_both_formats(run_dir, tmp_path, run_cli):
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "--output", out, "-f", "sft", "-f", "aidsafe", "--test-size", "0.3")
    assert code == 0, err
    records = _records(run_dir)

    sft = datasets.load_dataset(str(out))  # no config named: the card's default, sft
    assert set(sft) == {"train", "test"} and sft["train"].column_names == ["id", "messages"]
    assert len(sft["train"]) + len(sft["test"]) == len(records)
    for split in ("train", "test"):
        for row in sft[split]:
            user, assistant = row["messages"]
            record = records[user["content"]]
            assert (user["role"], assistant["role"]) == ("user", "assistant")
            assert assistant["content"] == cot_answer(record, DEFAULT_COT_TEMPLATE)
            assert in_test_split(record["id"], 0.3) == (split == "test")

    published = datasets.load_dataset(str(out), "aidsafe")
    assert published["train"].column_names == [
        "id", "prompt", "intents", "thoughts", "response", "removed", "deliberation_log"
    ]  # fmt: skip
    for split in ("train", "test"):
        # One split rule for every config: the same prompts on the same side.
        assert sorted(published[split]["prompt"]) == sorted(m[0]["content"] for m in sft[split]["messages"])
    row = published["train"][0]
    record = records[row["prompt"]]
    assert row["id"] == record["id"]  # every row joins back to samples.jsonl
    assert row["thoughts"] == [
        {"id": t["id"], "text": t["text"], "policies": t["policies"]} for t in record["thoughts"]
    ]
    assert row["intents"] == [{k: i[k] for k in ("text", "kind", "nature")} for i in record["intents"]]
    assert [(r["id"], r["reason"]) for r in row["removed"]] == [(r["id"], r["reason"]) for r in record["removed"]]
    assert row["response"] == record["response"]
    assert json.loads(row["deliberation_log"]) == record["deliberation"]


def test_the_trainer_reads_the_export_as_it_reads_the_run(run_dir, tmp_path):
    out = tmp_path / "dataset"
    export_run(ExportRequest(run_dir, out, ("sft",)))
    recipe = TrainRecipe(mode="sft")
    from_export = load_train_data(str(out), recipe)
    from_run = load_train_data(str(run_dir), recipe)
    assert from_export.column_names == ["prompt", "completion"]
    key = lambda row: row["prompt"][0]["content"]  # noqa: E731
    assert sorted(from_export, key=key) == sorted(from_run, key=key)
    record = next(iter(_records(run_dir).values()))
    assert format_sample(record, DEFAULT_COT_TEMPLATE)["completion"][0]["content"] == cot_answer(
        record, DEFAULT_COT_TEMPLATE
    )


def test_card_metadata_is_valid_for_the_hub_and_the_body_describes_the_run(run_dir, tmp_path):
    out = tmp_path / "dataset"
    export_run(ExportRequest(run_dir, out, ("sft", "aidsafe"), test_size=0.25))
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert "license" not in data  # nobody gave one: none is claimed (it said `other`)
    assert {"aidsafe", "synthetic"} <= set(data["tags"])
    assert data["task_categories"] == ["text-generation"] and data["language"] == ["en"]
    assert data["size_categories"] == ["n<1K"]
    shards = {
        split: sorted(f"sft/{p.name}" for p in (out / "sft").glob(f"{split}-*.parquet")) for split in ("train", "test")
    }
    assert data["configs"][0] == {
        "config_name": "sft",
        "data_files": [{"split": "train", "path": shards["train"]}, {"split": "test", "path": shards["test"]}],
        "default": True,
    }  # the files themselves, content-addressed, not a pattern: `datasets` keys its cache on them
    assert data["configs"][1]["config_name"] == "aidsafe"
    stats = json.loads((run_dir / "stats.json").read_text())
    recipe_hash = json.loads((run_dir / "run.json").read_text())["recipe_hash"]
    body = card.text
    assert "No license was given at export" in body
    assert f"`{recipe_hash}`" in body and "@inproceedings{kumarage2025aidsafe" in body
    assert "| P3 | Physical harm |" in body and "version `1.0`" in body
    assert "| deliberator | deliberator_b | `teacher-x` |" in body
    assert f"- samples: {stats['samples']}" in body
    assert f"- teacher prompt tokens in kept samples: {stats['tokens']['prompt']}" in body
    spent = stats["spent"]  # every call of every run, rejected samples included: at least what was kept
    assert spent["prompt_tokens"] >= stats["tokens"]["prompt"] and spent["calls"] >= 1
    assert f"- teacher tokens spent, every call of every run (prompt / completion): {spent['prompt_tokens']} /" in body
    # Filters on by default: the twelve prompts share a template but are not near-duplicates (0.90 < 0.95).
    assert (
        f"## Filters\n\nApplied at export to the {stats['samples']} samples of the run; {stats['samples']} kept."
        in body
    )
    assert "127.0.0.1" not in body  # the endpoint is not part of the data


def test_a_given_license_is_the_cards(run_dir, tmp_path):
    out = tmp_path / "dataset"
    result = export_run(ExportRequest(run_dir, out, ("aidsafe",), license="cc-by-4.0"))
    card = DatasetCard.load(out / "README.md")
    assert result.license == card.data.license == "cc-by-4.0"
    assert "No license was given" not in card.text and "`cc-by-4.0`, as given at export" in card.text


def test_a_second_format_joins_the_same_dataset_and_reexport_replaces_its_config(run_dir, tmp_path):
    out = tmp_path / "dataset"
    export_run(ExportRequest(run_dir, out, ("sft",), test_size=0.5))
    export_run(ExportRequest(run_dir, out, ("aidsafe",), test_size=0.5))
    names = [c["config_name"] for c in DatasetCard.load(out / "README.md").data.to_dict()["configs"]]
    assert names == ["sft", "aidsafe"]
    (out / "sft" / "train-00000-of-00009.parquet").write_bytes(b"stale")
    export_run(ExportRequest(run_dir, out, ("sft",), test_size=0.5))
    assert not (out / "sft" / "train-00000-of-00009.parquet").exists()
    assert len(datasets.load_dataset(str(out), "aidsafe", split="train")) == len(
        datasets.load_dataset(str(out), "sft", split="train")
    )


def test_the_split_follows_the_id_hash_and_many_shards_keep_every_row(run_dir, tmp_path, monkeypatch):
    import aidsafe.export.writer as writer

    monkeypatch.setattr(writer, "SHARD_ROWS", 5)
    out = tmp_path / "dataset"
    export_run(ExportRequest(run_dir, out, ("aidsafe",), test_size=0.0))
    shards = sorted(p.name for p in (out / "aidsafe").iterdir())
    assert [re.sub(r"-[0-9a-f]{12}\.parquet$", "", s) for s in shards] == [
        "train-00000-of-00003", "train-00001-of-00003", "train-00002-of-00003"
    ]  # fmt: skip
    assert sorted(datasets.load_dataset(str(out), "aidsafe", split="train")["prompt"]) == sorted(_records(run_dir))
    ids = [f"id-{i}" for i in range(2000)]
    share = sum(in_test_split(i, 0.2) for i in ids) / len(ids)
    assert 0.15 < share < 0.25
    assert [in_test_split(i, 0.2) for i in ids] == [in_test_split(i, 0.2) for i in ids]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"formats": ("orpo",)}, "--format orpo: expected one of sft, aidsafe, dpo, guardreasoner"),
        ({"test_size": 1.0}, "--test-size 1.0: expected a fraction >= 0 and < 1"),
        ({"license": "CC BY 4.0"}, "--license CC BY 4.0: expected a Hub license id"),
    ],
)
def test_bad_options_are_one_line_errors(run_dir, tmp_path, change, message):
    request = {"run_dir": run_dir, "output": tmp_path / "dataset", "formats": ("sft",)} | change
    with pytest.raises(AidsafeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_run(ExportRequest(**request))
    assert not (tmp_path / "dataset").exists()


def test_the_output_folder_is_never_mixed_with_other_content(run_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(AidsafeError, match="not empty and not an aidsafe export"):
        export_run(ExportRequest(run_dir, other))
    out = tmp_path / "dataset"
    export_run(ExportRequest(run_dir, out))
    manifest = json.loads((out / "export.json").read_text())
    (out / "export.json").write_text(json.dumps(manifest | {"recipe_hash": "0" * 16}))
    with pytest.raises(AidsafeError, match="holds an export of another run"):
        export_run(ExportRequest(run_dir, out))


def test_bad_run_directories_name_the_file_and_line(run_dir, tmp_path):
    with pytest.raises(AidsafeError, match="not a run directory"):
        export_run(ExportRequest(tmp_path, tmp_path / "a"))
    samples = run_dir / "samples.jsonl"
    lines = samples.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["response"]
    samples.write_text("\n".join([lines[0], json.dumps(broken), *lines[2:]]) + "\n")
    with pytest.raises(AidsafeError, match=rf"{samples}:2: field 'response' missing"):
        export_run(ExportRequest(run_dir, tmp_path / "b"))
    (run_dir / "stats.json").unlink()
    with pytest.raises(AidsafeError, match="stats.json: missing"):
        export_run(ExportRequest(run_dir, tmp_path / "c"))


def test_the_recipes_license_reaches_the_card(tmp_path):
    # `license:` is a recipe key (set here with --set, as a user would in the YAML); the export
    # takes it when --license is not given, and it leaves the recipe hash alone.
    from aidsafe.cli import main
    from aidsafe.testing import ScriptedServer, aidsafe_responder

    source = tmp_path / "prompts.jsonl"
    source.write_text('{"prompt": "How do I store bleach safely?"}\n', encoding="utf-8")
    run = tmp_path / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        main(["generate", "aidsafe", "-i", str(source), "-o", str(run), "--no-progress",
              "--base-url", server.base_url, "--model", "teacher-x", "--set", "license=cc-by-4.0"])  # fmt: skip
    out = tmp_path / "dataset"
    result = export_run(ExportRequest(run, out, ("sft",)))
    assert result.license == DatasetCard.load(out / "README.md").data.license == "cc-by-4.0"


def test_without_a_license_the_terminal_says_none_was_given(run_dir, tmp_path, run_cli):
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "d", "-f", "sft", "--no-decontaminate")
    assert code == 0, err
    assert "license: none given" in err and "license: other" not in err


def test_an_export_whose_filters_drop_everything_says_so(tmp_path, run_cli):
    """It said "no finished samples for the train split" of a run whose samples all finished."""
    import shutil

    run = Path(shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs" / "generation",
                               tmp_path / "run"))  # fmt: skip
    prompts = [json.loads(line)["prompt"] for line in (run / "samples.jsonl").read_text().splitlines() if line]
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    code, _, err = run_cli("export", run, "-o", tmp_path / "d", "-f", "sft", "--decontaminate-against", bench)
    assert code == 2, err
    assert f"the filters dropped all {len(prompts)} finished samples (contaminated {len(prompts)})" in err
    assert "--no-decontaminate" in err.strip().splitlines()[-1]
    assert not (tmp_path / "d").exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_reexport_into_a_folder_of_the_same_name_never_loads_the_old_rows(tmp_path, run_cli):
    """`datasets` caches a local folder by its name, configs and data files: an export B into another
    folder named like A's loaded A's rows. Content-addressed shard names, listed in the card, differ."""
    import shutil

    legacy = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs" / "generation"
    run = Path(shutil.copytree(legacy, tmp_path / "run"))
    first, second = tmp_path / "a" / "dataset", tmp_path / "b" / "dataset"
    flags = ["-f", "sft", "--no-decontaminate", "--no-dedup", "--test-size", "0"]
    assert run_cli("export", run, "-o", first, *flags)[0] == 0
    loaded = datasets.load_dataset(str(first), split="train")
    lines = (run / "samples.jsonl").read_text().splitlines()
    (run / "samples.jsonl").write_text("\n".join(lines[:2]) + "\n")  # B: other rows (fewer)
    assert run_cli("export", run, "-o", second, *flags)[0] == 0
    again = datasets.load_dataset(str(second), split="train")  # the default cache, as users load
    assert len(loaded) == 4 and len(again) == 2
    assert sorted(again["id"]) == sorted(json.loads(line)["id"] for line in lines[:2])
