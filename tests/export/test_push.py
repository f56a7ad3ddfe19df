"""`aidsafe export --push-to-hub` with huggingface_hub's real client against the loopback Hub."""

from __future__ import annotations

import json
import re

import pytest
from huggingface_hub import DatasetCard

from aidsafe.testing import LoopbackHub

TOKEN = "hf_loopback_secret_123"


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub.constants

    # The suite runs offline (tests/conftest.py); this test's only server is on 127.0.0.1.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with LoopbackHub(token=TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


def test_push_creates_the_repo_and_commits_card_and_parquet_once(run_dir, tmp_path, run_cli, hub):
    out = tmp_path / "dataset"
    code, stdout, err = run_cli(
        "export", run_dir, "-o", out, "-f", "sft", "-f", "aidsafe", "--test-size", "0.25",
        "--license", "cc-by-4.0", "--push-to-hub", "me/safety-cot", "--private", "--revision", "v1",
    )  # fmt: skip
    assert code == 0, err
    repo = hub.repos["me/safety-cot"]
    assert (repo.repo_type, repo.private) == ("dataset", True)
    assert len(hub.commits) == 1 and hub.commits[0].revision == "v1"
    local = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    files = hub.commits[0].files
    assert sorted(files) == local
    shown = {re.sub(r"-[0-9a-f]{12}\.parquet$", ".parquet", name) for name in files}
    assert {
        "README.md",
        "export.json",
        "sft/train-00000-of-00001.parquet",
        "aidsafe/test-00000-of-00001.parquet",
    } <= shown
    assert files["README.md"] == (out / "README.md").read_bytes()
    assert DatasetCard(files["README.md"].decode()).data.license == "cc-by-4.0"
    # The Croissant metadata goes with the card, naming the same license and the pushed shards.
    assert files["croissant.json"] == (out / "croissant.json").read_bytes()
    croissant = json.loads(files["croissant.json"])
    assert croissant["license"] == "cc-by-4.0"
    described = {d["contentUrl"] for d in croissant["distribution"] if d["@type"] == "cr:FileObject"}
    assert described == {name for name in files if name.endswith(".parquet")}
    assert "pushed to me/safety-cot" in err
    # The token reached the Hub (every request was authorized) and nowhere else.
    assert hub.unauthorized == 0
    assert TOKEN not in stdout + err and all(TOKEN.encode() not in data for data in files.values())


def test_a_public_push_to_main(run_dir, tmp_path, run_cli, hub):
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "d", "--license", "mit", "--push-to-hub", "me/open")
    assert code == 0, err
    assert hub.repos["me/open"].private is False and hub.commits[0].revision == "main"


def test_push_refuses_without_a_license_before_writing_anything(run_dir, tmp_path, run_cli, hub):
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", out, "--push-to-hub", "me/x")
    assert code == 2 and "--push-to-hub: no license given" in err
    assert not out.exists() and not hub.repos


def test_push_needs_a_token(run_dir, tmp_path, run_cli, hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "d", "--license", "mit", "--push-to-hub", "me/x")
    assert code == 2 and "HF_TOKEN is not set" in err and not hub.repos


def test_a_refused_token_is_one_line_without_the_token(run_dir, tmp_path, run_cli, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_456")
    code, stdout, err = run_cli("export", run_dir, "-o", tmp_path / "d", "--license", "mit", "--push-to-hub", "me/x")
    assert code == 2 and "the Hub refused (HTTP 401)" in err and len(err.strip().splitlines()) == 1
    assert "hf_wrong_token_456" not in stdout + err and hub.unauthorized == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push-to-hub", "not a repo"], "--push-to-hub not a repo: expected a dataset id like owner/name"),
        (["--private"], "--private and --revision go with --push-to-hub"),
    ],
)
def test_bad_push_options(run_dir, tmp_path, run_cli, args, message):
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "d", "--license", "mit", *args)
    assert code == 2 and message in err


def test_offline_mode_is_named(run_dir, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "d", "--license", "mit", "--push-to-hub", "me/x")
    assert code == 2 and "HF_HUB_OFFLINE is set" in err


def test_push_uploads_exactly_the_files_the_export_wrote(run_dir, tmp_path, run_cli, hub):
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", out, "-f", "sft")
    assert code == 0, err
    outside = tmp_path / "private.txt"
    outside.write_text("not for publishing\n")
    (out / ".env").write_text("HF_TOKEN=hf_other_secret\n")
    (out / "notes.md").write_text("my notes\n")
    (out / "sft" / "linked.parquet").symlink_to(outside)
    (out / "linked-dir").symlink_to(tmp_path)
    code, _, err = run_cli("export", run_dir, "-o", out, "-f", "sft", "--license", "mit", "--push-to-hub", "me/x")
    assert code == 0, err
    files = hub.commits[0].files
    shown = sorted(re.sub(r"-[0-9a-f]{12}\.parquet$", ".parquet", name) for name in files)
    assert shown == ["README.md", "croissant.json", "export.json", "filtered.jsonl", "sft/train-00000-of-00001.parquet"]
    assert all(b"not for publishing" not in data and b"hf_other_secret" not in data for data in files.values())


def test_an_unreachable_hub_is_one_line_that_keeps_the_export(run_dir, tmp_path, run_cli, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", out, "--license", "mit", "--push-to-hub", "me/x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "cannot be reached" in err and "rerun the same command to push it" in err
    assert (out / "README.md").is_file() and TOKEN not in err


def test_offline_push_is_refused_before_anything_is_written(run_dir, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the suite runs with HF_HUB_OFFLINE=1 (tests/conftest.py)
    out = tmp_path / "dataset"
    code, _, err = run_cli("export", run_dir, "-o", out, "--license", "mit", "--push-to-hub", "me/x")
    assert code == 2 and "HF_HUB_OFFLINE is set" in err and "nothing was written" in err
    assert not out.exists()
