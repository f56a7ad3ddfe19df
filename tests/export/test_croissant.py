"""croissant.json (issue 25, part 3): Croissant 1.1 with the RAI vocabulary beside the dataset card,
validated and read by mlcroissant offline (tests/export/croissant_helpers.py). Every export kind's
is checked in test_kind_consumers.py; the push in test_push.py."""

from __future__ import annotations

import json
import socket

import yaml

from aidsafe.export.filters import filter_lines
from tests.export.croissant_helpers import check_croissant, read_records

RAI = ("rai:dataCollection", "rai:dataCollectionType", "rai:dataPreprocessingProtocol", "rai:dataLimitations",
       "rai:dataBiases", "rai:personalSensitiveInformation", "rai:dataUseCases")  # fmt: skip


def test_a_generation_export_is_described_and_read_back_offline(run_dir, tmp_path, run_cli, monkeypatch):
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", out, "-f", "sft", "-f", "aidsafe", "--test-size", "0.25")
    assert code == 0, err

    def no_network(*args, **kwargs):
        raise AssertionError(f"mlcroissant reached for the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    document = check_croissant(out)
    # The policy set as the run used it: ids, titles and rule texts from recipe.yaml's snapshot.
    snapshot = yaml.safe_load((run_dir / "recipe.yaml").read_text())["resolved"]["policies"]
    rules = read_records(out, "policies")
    assert [(r["policies/id"], r["policies/title"], r["policies/rule"]) for r in rules] == [
        (p["id"], p["title"], " ".join(p["rule"].split())) for p in snapshot["policies"]
    ]
    assert f"`{snapshot['id']}` version `{snapshot['version']}`" in document["rai:dataCollection"]
    # Synthetic, by which models and recipe; no license claimed where none was given.
    assert "license" not in document and "No license was given" in (out / "README.md").read_text()
    assert document["conformsTo"] == ["http://mlcommons.org/croissant/1.1", "http://mlcommons.org/croissant/RAI/1.0"]
    assert all(key in document for key in RAI) and document["rai:dataCollectionType"] == ["Synthetic"]
    activity = document["prov:wasGeneratedBy"]
    assert {a["prov:label"] for a in activity["prov:wasAssociatedWith"]} == {"teacher-x"}
    run = json.loads((run_dir / "run.json").read_text())
    assert run["recipe_hash"] in activity["description"] and document["dateCreated"] == run["created"]["at"]
    assert "127.0.0.1" not in (out / "croissant.json").read_text()  # the teacher's endpoint is not published


def test_the_filters_are_said_as_the_card_says_them(run_dir, tmp_path, run_cli):
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", out)  # default filters; no benchmark set loads here
    assert code == 0, err
    document = json.loads((out / "croissant.json").read_text())
    summary = json.loads((out / "export.json").read_text())["filters"]
    card = (out / "README.md").read_text()
    assert document["rai:dataPreprocessingProtocol"][:-1] == filter_lines(summary)
    assert all(line in card for line in filter_lines(summary))
    assert any("Benchmark sets not checked" in line for line in document["rai:dataLimitations"])
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "raw", "--no-dedup", "--no-decontaminate")
    assert code == 0, err
    limits = json.loads((tmp_path / "raw" / "croissant.json").read_text())["rai:dataLimitations"]
    assert "Duplicate prompts were not filtered at export." in limits
    assert "Not checked for overlap with evaluation benchmarks at export." in limits


def test_a_config_added_later_is_described_with_the_kept_one(run_dir, tmp_path, run_cli):
    out = tmp_path / "dataset"
    assert run_cli("export", run_dir, "-o", out, "-f", "sft", "--license", "mit")[0] == 0
    code, _, err = run_cli("export", run_dir, "-o", out, "-f", "aidsafe")
    assert code == 0, err
    document = check_croissant(out)  # both configs, their files, and the license the folder has
    assert document["license"] == "mit"


def test_a_run_without_the_policy_snapshot_names_its_set_only(run_dir, tmp_path, run_cli):
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    del recipe["resolved"]["policies"]  # written before runs kept the texts
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "dataset"
    assert run_cli("export", run_dir, "-o", out)[0] == 0
    document = check_croissant(out)
    assert "policies" not in [r["@id"] for r in document["recordSet"]]
    assert "its rule texts were not kept by the run" in document["rai:dataCollection"]


def test_an_export_that_cannot_describe_its_data_leaves_nothing(run_dir, tmp_path, run_cli, monkeypatch):
    from aidsafe.errors import AidsafeError
    from aidsafe.export import croissant

    def refuse(field_id, arrow_type):
        raise AidsafeError(f"croissant.json: column {field_id} of type {arrow_type}, which it cannot describe")

    monkeypatch.setattr(croissant, "_data_type", refuse)
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", out, "-f", "sft")
    assert code == 2 and "cannot describe" in err and len(err.strip().splitlines()) == 1, err
    assert not [p for p in tmp_path.iterdir() if p.name.lstrip(".").startswith("dataset")]
