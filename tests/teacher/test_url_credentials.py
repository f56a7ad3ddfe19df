"""A teacher behind a proxy with basic auth: `--base-url http://user:password@host/v1` sends the
credentials as HTTP Basic auth, and the password is in no message, rejection or recipe.yaml
(it was a ValueError traceback from aiohttp)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from aidsafe.testing import schema_responder
from aidsafe.testing.server import ScriptedServer
from tests.helpers import FAST_NO_RETRY as FAST

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
PASSWORD = "s3cret-p@ss"


def _with_credentials(url: str) -> str:
    return url.replace("http://", "http://proxyuser:s3cret-p%40ss@")


def test_credentials_in_the_url_are_sent_as_basic_auth_and_kept_out_of_the_run(tmp_path, run_cli):
    run = tmp_path / "run"
    with ScriptedServer(schema_responder(seed=3), models=["m"]) as server:
        url = _with_credentials(server.base_url)
        args = ["-i", FIXTURES / "beavertails.jsonl", "-o", run, "--limit", "1", "--base-url", url, "--model", "m"]
        code, _, err = run_cli("generate", "thinkguard", *args, *FAST)
        sent = [r.headers.get("authorization") for r in server.requests]
    assert code == 0, err
    expected = "Basic " + base64.b64encode(f"proxyuser:{PASSWORD}".encode()).decode()
    assert sent and all(header == expected for header in sent)
    stored = "".join(p.read_text(encoding="utf-8") for p in run.iterdir() if p.suffix in (".yaml", ".json", ".jsonl"))
    assert "proxyuser:***@" in (run / "recipe.yaml").read_text() and "s3cret" not in stored


def test_a_failing_teacher_behind_credentials_is_one_line_without_the_password(tmp_path, run_cli):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "generation", run)
    url = "http://proxyuser:s3cret-p%40ss@127.0.0.1:9/v1"  # nothing listens on port 9
    code, out, err = run_cli("generate", "aidsafe", "-i", FIXTURES.parents[2] / "examples" / "prompts.jsonl", "-o", run,
                             "--set", "dedup.enabled=false", "--base-url", url, "--model", "m", *FAST)  # fmt: skip
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "s3cret" not in out + err and "Traceback" not in err
