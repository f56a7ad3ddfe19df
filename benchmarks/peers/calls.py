"""What the benchmark's one server answers, and which of the calls it sees are the workload's.

The responder gives aidsafe's five roles aidsafe's scripted replies (the deliberator agrees on
its second turn, so a prompt costs exactly five calls), any other JSON-schema request a random
object valid for that request's own schema, and a request with no schema (a framework's probe)
a plain "ok". Only the workload's calls are counted as calls; probes are counted apart.
"""

from __future__ import annotations

from typing import Any

from aidsafe.testing import DEFAULT_REPLIES, aidsafe_responder, schema_responder
from benchmarks.peers import workload

__all__ = ["AIDSAFE_ROLES", "requested_schema", "is_workload_call", "workload_responder"]

AIDSAFE_ROLES = frozenset(DEFAULT_REPLIES)  # the schema names of the five calls (not the pre-flight)


def requested_schema(request: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """(name, JSON schema) a chat request asks for: a json_schema response_format or a forced tool.
    (aidsafe.testing's own parsers are private, and the schema responder's raises on a request
    with no schema, which is what a probe is.)"""
    format_ = request.get("response_format") or {}
    if format_.get("type") == "json_schema":
        spec = format_.get("json_schema") or {}
        return spec.get("name"), spec.get("schema")
    choice = request.get("tool_choice")
    wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    for tool in request.get("tools") or []:
        function = tool.get("function", {})
        if wanted in (None, function.get("name")):
            return function.get("name"), function.get("parameters")
    return None, None


def is_workload_call(request: dict[str, Any]) -> bool:
    """One of the five calls per prompt, not a framework's own probe (aidsafe's pre-flight,
    Curator's rate-limit and structured-output checks): only these are counted as calls."""
    name, schema = requested_schema(request)
    return name in AIDSAFE_ROLES or name == workload.SCHEMA_NAME or (schema or {}).get("title") == workload.SCHEMA_NAME


def workload_responder() -> Any:
    """aidsafe's roles by schema name (exactly five calls a prompt), any other schema a random
    valid object, and a request with no schema (a probe) a plain "ok". (aidsafe's pre-flight
    probe never reaches it: the scripted server answers that itself.)"""
    scripted, generic = aidsafe_responder(), schema_responder(seed=0)

    def respond(request: dict[str, Any]) -> Any:
        name, schema = requested_schema(request)
        if name in AIDSAFE_ROLES:
            return scripted(request)
        return generic(request) if schema is not None else "ok"

    return respond
