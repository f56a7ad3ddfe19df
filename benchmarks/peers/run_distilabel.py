"""The workload as a distilabel Pipeline: a loader and five chained Tasks, one OpenAILLM each.

Run by the benchmark with the python of distilabel's own venv (benchmarks/peers/venvs.py).
Every Task sends its batch's calls concurrently (AsyncLLM gathers a batch) and the five Tasks run
in processes of their own, so up to five batches are in flight at once: `input_batch_size` is
concurrency // 5 so that at most `concurrency` calls are in flight, as for the other frameworks.
Structured output goes through instructor, distilabel's documented way for OpenAILLM
(`structured_output={"schema": Model}`; instructor's default mode, a forced tool call).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # workload.py, from outside aidsafe's env

import workload  # noqa: E402
from distilabel.models.llms import OpenAILLM  # noqa: E402
from distilabel.pipeline import Pipeline  # noqa: E402
from distilabel.steps import LoadDataFromDicts  # noqa: E402
from distilabel.steps.tasks import Task  # noqa: E402

__all__ = ["Stage", "main"]


class Stage(Task):
    """Call `stage` of five: the prompt and the previous stage's answer in, this answer out."""

    stage: int

    @property
    def inputs(self) -> list[str]:
        return ["prompt"] if self.stage == 1 else ["prompt", f"answer_{self.stage - 1}"]

    @property
    def outputs(self) -> list[str]:
        return [f"answer_{self.stage}"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        previous = input.get(f"answer_{self.stage - 1}") if self.stage > 1 else None
        return [
            {"role": "system", "content": workload.SYSTEM},
            {"role": "user", "content": workload.stage_message(input["prompt"], self.stage, previous)},
        ]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {f"answer_{self.stage}": output}


def main() -> None:
    import distilabel

    args = workload.runner_args(__doc__.split("\n\n")[0])
    batch = args.batch or max(1, args.concurrency // workload.STAGES)
    with Pipeline(name="aidsafe-bench-peers", cache_dir=args.work_dir / "distilabel-cache") as pipeline:
        previous = LoadDataFromDicts(
            data=[{"prompt": p} for p in workload.prompt_texts(args.prompts)], batch_size=batch
        )
        for stage in range(1, workload.STAGES + 1):
            llm = OpenAILLM(
                model=args.model,
                base_url=args.base_url,
                api_key="bench",
                structured_output={"schema": workload.StageAnswer},
            )
            task = Stage(name=f"stage_{stage}", stage=stage, llm=llm, input_batch_size=batch, add_raw_output=False)
            previous >> task
            previous = task
    distiset = pipeline.run(use_cache=False)
    rows = 0
    for row in distiset["default"]["train"]:
        try:
            workload.check_answer(row[f"answer_{workload.STAGES}"] or "")
        except ValueError:
            continue
        rows += 1
    workload.write_result(
        args.out,
        version=distilabel.__version__,
        rows=rows,
        config={"input_batch_size": batch, "loader batch_size": batch, "structured_output": "instructor (tools)"},
    )


if __name__ == "__main__":
    main()
