"""A run's identity: one hash over what changes a stage's output, for every stage.

The hash goes into run.json; a rerun into the same directory whose hash differs is refused (the
records would no longer describe one recipe), and one whose hash is the same resumes. So a stage
hashes what changes its output (prompts, policies, cards, the semantic recipe fields) and never
where or how fast the work runs (endpoints, concurrency, timeouts).

`ensure_ascii` is json.dumps's own option, kept per stage because a non-ASCII character in a
recipe, card or policy serialises to different bytes under each, and a changed hash would refuse
every run directory written before: generation and pairs have always hashed with
`ensure_ascii=False` (the default here), the guard-data stages and the evaluations with json's
default, `ensure_ascii=True`. A new stage takes the default.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["NON_SEMANTIC_CHAT_ARGS", "NON_SEMANTIC_TEACHER", "file_digest", "run_hash"]

# The keys of a recipe's `teacher:` section that say where or how fast the teacher runs, not what
# it is asked: no stage hashes them, so changing them keeps a run resumable. Here, in run/, so
# that the stages dropping them (aidsafe.agents.settings) and the refusal naming what changed
# (aidsafe.run.recipe_diff) read one list.
NON_SEMANTIC_TEACHER = frozenset(
    {
        "base_url",
        "api_key_env",
        "timeout_s",
        "concurrency",
        "max_concurrency",
        "max_transport_retries",
        "backoff_base_s",
        "backoff_max_s",
        "checkpoint",
    }
)


# The constructor arguments of a LangChain chat model (`chat_model_args`) that say where or how
# fast it runs, in the words of the provider packages (langchain-openai, -anthropic, -aws,
# -google-vertexai): its endpoint, region, project, API version, timeouts, retries. The class
# itself, its model and every other argument (temperature, ...) are hashed.
NON_SEMANTIC_CHAT_ARGS = frozenset(
    {
        "base_url",
        "endpoint_url",
        "azure_endpoint",
        "api_version",
        "openai_api_version",
        "region_name",
        "location",
        "project",
        "credentials_profile_name",
        "timeout",
        "request_timeout",
        "default_request_timeout",
        "max_retries",
    }
)


def run_hash(payload: Mapping[str, Any], *, ensure_ascii: bool = False) -> str:
    """16 hex digits of the SHA-256 of `payload` as JSON with sorted keys."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=ensure_ascii)
    # surrogatepass: the same bytes as plain UTF-8 wherever that works, and a hash, not a crash,
    # for a lone surrogate that JSON text can carry.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MB blocks (an output with no recipe, such as
    hard-sample pairs, is identified by its content; an export's shards are named by theirs)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
