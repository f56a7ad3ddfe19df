"""The CLI starts without importing heavy libraries (first call out fast, `--help` instant)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "langgraph", "langchain_core", "langchain_openai", "trl", "sentence_transformers", "datasets")


def test_help_and_every_subcommand_help_import_nothing_heavy():
    script = (
        "import sys\n"
        "from aidsafe.cli import main\n"
        "for args in (['--help'], ['generate', '--help'], ['train', 'sft', '--help'], ['eval', 'guard', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
