"""Generate a corpus from Python instead of the CLI.

python examples/python_api.py --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aidsafe.generation.runner import GenerateRequest, generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--output", default="runs/python-api")
    args = parser.parse_args()
    here = Path(__file__).parent
    stats = generate(
        GenerateRequest(
            recipe=str(here / "custom_recipe.yaml"),
            input=str(here / "prompts.jsonl"),
            output=Path(args.output),
            base_url=args.base_url,
            model=args.model,
            progress=False,
        ),
        env=dict(os.environ),
    )
    print(f"{stats['samples']} samples, {stats['rejected']} rejected in {args.output}")


if __name__ == "__main__":
    main()
