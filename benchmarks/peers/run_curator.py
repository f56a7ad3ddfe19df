"""The workload in Bespoke Curator: five curator.LLM stages, each over the previous one's dataset.

Run by the benchmark with the python of Curator's own venv (benchmarks/peers/venvs.py). Each
stage is its own `curator.LLM` with the pydantic `response_format` (sent as a json_schema
response_format), backend "openai" pointed at the loopback base_url, `max_concurrent_requests`
set to the benchmark's concurrency and request/token rate limits far above what the server can
do, so the limit on calls in flight is the concurrency alone. Curator runs a stage over the
whole dataset before the next starts (each call returns a dataset), which is how a chain of
dependent calls is written with it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # workload.py, from outside aidsafe's env

import workload  # noqa: E402

# Curator counts tokens with tiktoken's cl100k_base, which tiktoken downloads on first use; the
# benchmark has no internet, and litellm (a Curator dependency) ships that file, named as
# tiktoken's cache names it. Point tiktoken's cache there before anything loads it.
_litellm = importlib.util.find_spec("litellm")
if _litellm is not None and _litellm.origin:
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(_litellm.origin).parent / "litellm_core_utils" / "tokenizers"))

from bespokelabs import curator  # noqa: E402

__all__ = ["Stage", "main"]


class Stage(curator.LLM):
    """Call `stage` of five: the prompt and the previous stage's answer in, this answer added."""

    response_format = workload.StageAnswer

    def __init__(self, stage: int, **kwargs: Any) -> None:
        self.stage = stage
        super().__init__(**kwargs)

    def prompt(self, input: dict[str, Any]) -> list[dict[str, str]]:
        previous = input.get(f"answer_{self.stage - 1}") if self.stage > 1 else None
        return [
            {"role": "system", "content": workload.SYSTEM},
            {"role": "user", "content": workload.stage_message(input["prompt"], self.stage, previous)},
        ]

    def parse(self, input: dict[str, Any], response: workload.StageAnswer) -> dict[str, Any]:
        return {**input, f"answer_{self.stage}": response.model_dump_json()}


def main() -> None:
    from importlib.metadata import version

    args = workload.runner_args(__doc__.split("\n\n")[0])
    backend_params = {
        "base_url": args.base_url,
        "api_key": "bench",
        "max_concurrent_requests": args.concurrency,
        "max_requests_per_minute": 1_000_000,
        "max_tokens_per_minute": 1_000_000_000,
        "max_retries": 1,
    }
    rows: Any = [{"prompt": p} for p in workload.prompt_texts(args.prompts)]
    for stage in range(1, workload.STAGES + 1):
        llm = Stage(stage, model_name=args.model, backend="openai", backend_params=dict(backend_params))
        rows = llm(rows, working_dir=str(args.work_dir / "curator")).dataset
    complete = 0
    for row in rows:
        try:
            workload.check_answer(row[f"answer_{workload.STAGES}"])
        except (ValueError, KeyError):
            continue
        complete += 1
    config = {k: v for k, v in backend_params.items() if k not in ("base_url", "api_key")}
    workload.write_result(args.out, version=version("bespokelabs-curator"), rows=complete, config=config)


if __name__ == "__main__":
    main()
