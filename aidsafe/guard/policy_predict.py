"""`aidsafe predict guard --format policy`: a policy-conditioned guard over a benchmark whose rows
each bring their own policy.

Policy guards are chat models that take the policy as the system message (gpt-oss-safeguard under
vLLM, an instruct model, a guard trained on a policy-guard run), so each row is one call to the
OpenAI-compatible `/v1/chat/completions` endpoint with the messages of its rendering
(`aidsafe.guard.harmony.render_messages`), greedy and without a token cap: a reasoning guard must
not be cut off mid-thought (gpt-oss-safeguard's user guide asks not to cap its output; a served
model still stops at its context). Everything else is `predict guard`'s: the same executor
entrance, the predictions file as the resume journal, rewritten in benchmark order at the end.

A row of the output: `prompt` (the messages asked, as JSON: the resume key), `predict` (the
assistant's content: for a harmony model served by vLLM, the final channel, its reasoning being
sent apart), `index`, `rendering`, and the evaluation row's `id`, `gold`, `gold_rules`, `variant`
and `rule_ids`, which `eval guard --format policy` scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aidsafe.agents.settings import TeacherSettings
from aidsafe.guard.harmony import render_messages
from aidsafe.guard.policy_bench import PolicyExample
from aidsafe.guard.predict import PredictTask, run_predictions
from aidsafe.run.task import RunContext
from aidsafe.teacher.types import Endpoint

__all__ = ["PolicyPredictTask", "predict_policy_guard"]

_SCORED = ("id", "gold", "gold_rules", "variant", "rule_ids")
_ATTEMPTS = 6  # per request, as predict guard's


async def predict_policy_guard(
    examples: list[PolicyExample],
    output: Path,
    base_url: str,
    model: str,
    rendering: str = "generic",
    *,
    concurrency: int = 16,
    api_key: str | None = None,
    progress: bool = False,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> dict[str, int]:
    """Ask the guard about every example not yet in `output`; returns counts {done, skipped}.
    Timeout and retries are `predict guard`'s: 600 s per request, 6 attempts."""
    messages = [render_messages(rendering, e.policy_text, e.prompt, e.response) for e in examples]
    prompts = [json.dumps(m, ensure_ascii=False) for m in messages]
    settings = TeacherSettings(base_url=base_url, model=model, timeout_s=600.0, concurrency=concurrency,
                               max_transport_retries=_ATTEMPTS - 1)  # fmt: skip

    def make_task(client: Any, endpoint: Endpoint) -> PolicyPredictTask:
        return PolicyPredictTask(examples, messages, prompts, rendering, client, endpoint, temperature, top_p)

    return await run_predictions(prompts, make_task, output, settings, api_key, progress=progress)


class PolicyPredictTask(PredictTask):
    """One benchmark row (by index) through the served policy guard: one chat call."""

    def __init__(
        self,
        examples: list[PolicyExample],
        messages: list[list[dict[str, str]]],
        prompts: list[str],
        rendering: str,
        client: Any,
        endpoint: Endpoint,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> None:
        super().__init__([], prompts, "policy", client, endpoint, _ATTEMPTS, 1, temperature, top_p)
        self.policy_examples = examples
        self.messages = messages
        self.rendering = rendering
        del self.sampling["max_tokens"]  # a reasoning guard is not cut off (the module docstring)

    async def run(self, i: int, ctx: RunContext) -> dict[str, Any]:
        reply = await self.asked(
            self.client.chat_text(
                agent="guard", messages=self.messages[i], endpoint=self.endpoint, sampling=self.sampling
            )
        )
        scored = self.policy_examples[i].to_row()
        row = {"prompt": self.prompts[i], "predict": reply["text"], "index": i, "rendering": self.rendering}
        return {**row, **{key: scored[key] for key in _SCORED}}
