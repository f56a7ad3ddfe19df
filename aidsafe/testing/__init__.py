"""Test doubles for aidsafe users and for aidsafe's own tests.

- `FakeTeacher`: in-process teacher keyed by agent role (unit tests).
- `ScriptedServer`: an OpenAI-compatible HTTP server on 127.0.0.1 with fault injection
  (end-to-end tests, benchmarks); `aidsafe_responder()` answers every AIDSAFE role;
  `schema_responder()` answers any structured request with random JSON valid for the
  request's own schema, and nothing more (what guided decoding guarantees).
- `check_agent`: conformance check for a custom agent.
- `LoopbackHub`: the Hugging Face Hub's write API on 127.0.0.1 (export --push-to-hub tests).
- `build_tiny_model`: a tiny random Llama and tokenizer for training runs with no GPU
  (`python -m aidsafe.testing.tiny_model DIR`).
"""

from __future__ import annotations

from typing import Any

from aidsafe.testing.conformance import check_agent, example_state
from aidsafe.testing.fake import FakeCall, FakeTeacher
from aidsafe.testing.replies import DEFAULT_REPLIES, aidsafe_responder, default_reply
from aidsafe.testing.schema_responder import schema_responder

__all__ = [
    "FakeTeacher",
    "FakeCall",
    "check_agent",
    "example_state",
    "default_reply",
    "DEFAULT_REPLIES",
    "ScriptedServer",
    "Fault",
    "aidsafe_responder",
    "schema_responder",
    "loopback_responder",
    "build_tiny_model",
    "LoopbackHub",
]


def __getattr__(name: str) -> Any:
    # The HTTP server is only needed by end-to-end tests; import it on first use.
    if name in ("ScriptedServer", "Fault"):
        from aidsafe.testing import server

        return getattr(server, name)
    if name == "loopback_responder":  # imports the guard formats; the server's default
        from aidsafe.testing.loopback import loopback_responder

        return loopback_responder
    if name == "LoopbackHub":  # the Hub stand-in for `aidsafe export --push-to-hub` tests
        from aidsafe.testing.hub import LoopbackHub

        return LoopbackHub
    if name == "build_tiny_model":  # imports torch and transformers when called, not here
        from aidsafe.testing.tiny_model import build_tiny_model

        return build_tiny_model
    raise AttributeError(name)
