"""LangSmith runs for teacher calls, when tracing is on (LANGSMITH_TRACING=true, or a
`langsmith.tracing_context`): one `llm` run per call, nested under the LangGraph node that made
it, with the request body as input and the parsed reply, token usage and attempts as output.

The client speaks HTTP itself (wire.py), so no langchain chat model reports these runs; this
module does, and costs one context check per call when tracing is off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from aidsafe.teacher.types import CallRecord

__all__ = ["traced"]

T = TypeVar("T")


async def traced(call: CallRecord, body: Mapping[str, Any], work: Awaitable[T]) -> T:
    """`await work`, as one LangSmith `llm` run when tracing is on."""
    # Imported here: LangGraph has loaded langsmith already, but `aidsafe predict guard` has not.
    from langsmith.run_helpers import trace
    from langsmith.utils import tracing_is_enabled

    if not tracing_is_enabled():
        return await work
    inputs = {key: value for key, value in body.items() if key != "model"}
    metadata = {"ls_provider": "openai", "ls_model_name": call.model, "ls_model_type": "chat", "role": call.role}
    async with trace(call.agent, "llm", inputs=inputs, metadata=metadata) as run:
        result = await work
        run.end(
            outputs={
                "output": result.model_dump(mode="json") if isinstance(result, BaseModel) else result,
                "attempts": call.attempts,
                "transport_retries": call.transport_retries,
                "usage_metadata": {
                    "input_tokens": call.prompt_tokens,
                    "output_tokens": call.completion_tokens,
                    "total_tokens": call.prompt_tokens + call.completion_tokens,
                },
            }
        )
    return result
