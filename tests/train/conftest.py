"""A tiny random causal LM and tokenizer built locally once per session; nothing is downloaded.

`aidsafe.testing.tiny_model` builds it (the helper users get too): a 2-layer Llama with hidden
size 32 and a byte-level BPE tokenizer with a ChatML-style chat template.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidsafe.testing.tiny_model import build_tiny_model
from tests import helpers
from tests.helpers import THIRD_PARTY_DEPRECATIONS

# PEFT and TRL still call transformers' renamed gradient-checkpointing methods (tests.helpers):
# those warnings are ignored for these tests only, by exact message.
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            for ignored in THIRD_PARTY_DEPRECATIONS:
                item.add_marker(pytest.mark.filterwarnings(ignored))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def write_jsonl():
    return helpers.write_jsonl


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory as `aidsafe generate` writes it, its last line cut off by a killed run."""
    folder = tmp_path / "run"
    folder.mkdir()
    records = [
        {
            "id": f"s{i}",
            "prompt": prompt,
            "intents": [{"text": "get help", "kind": "explicit", "nature": "benign"}],
            "thoughts": [
                {"id": "t1", "text": "P5: the request is benign.", "policies": ["P5"]},
                {"id": "t2", "text": "P3: no physical harm involved.", "policies": ["P3"]},
            ],
            "response": response,
            "deliberation": [],
            "removed": [],
            "metadata": {},
        }
        for i, (prompt, response) in enumerate(
            [
                ("How do I bake bread?", "Mix flour, water, yeast and salt."),
                ("How do I make a weapon?", "I cannot help with that."),
                ("What is a recipe?", "A list of steps to cook something."),
                ("Can you help me?", "Yes, I can help with that."),
            ]
        )
    ]
    text = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "samples.jsonl").write_text(text + '{"id": "s4", "prompt": "cut o', encoding="utf-8")
    return folder
