"""What every teacher (the real HTTP client or a test double) takes and returns."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel

from aidsafe.errors import AidsafeError

__all__ = [
    "CallRecord",
    "ChatModel",
    "Endpoint",
    "InvalidOutputError",
    "LatencySample",
    "Message",
    "Served",
    "Teacher",
    "TeacherError",
    "TeacherStats",
    "TransientTeacherError",
]

M = TypeVar("M", bound=BaseModel)
Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


@dataclass(frozen=True)
class ChatModel:
    """A LangChain chat model that an endpoint's calls go through instead of aidsafe's own wire
    client (aidsafe.teacher.langchain): any `BaseChatModel` subclass by `module:Class`, made with
    `args` and, where its constructor takes them, the endpoint's model and timeout."""

    ref: str  # module:Class
    args: Mapping[str, Any] = field(default_factory=dict, hash=False)  # further constructor arguments
    # ChatOpenAI or a subclass: it speaks the OpenAI API at the endpoint's URLs, so it gets them
    # and the endpoint's key as the wire client would use them. Any other class finds its endpoint
    # and credentials itself (its provider's environment, or `args`).
    openai_compatible: bool = False


@dataclass(frozen=True)
class Endpoint:
    """Where one agent's calls go. Resolved from the recipe, per-agent overrides and the CLI."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    structured_output: Literal["json_schema", "function_calling"] = "json_schema"
    timeout_s: float = 120.0
    # Further replica URLs serving the same model (vLLM data-parallel replicas, several hosts);
    # base_url is the first. Requests are routed among them (aidsafe.teacher.lanes).
    replicas: tuple[str, ...] = ()
    # None: aidsafe's wire client. A chat model without a URL of its own has its reference as
    # base_url, which then only names it (messages, the concurrency lanes).
    chat_model: ChatModel | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.base_url, *(url for url in self.replicas if url != self.base_url))

    def at(self, url: str) -> Endpoint:
        """This endpoint on one of its replicas only."""
        return replace(self, base_url=url, replicas=())


@dataclass(frozen=True)
class Served:
    """What the pre-flight learnt of an endpoint (`check_reachable`'s answer), for `aidsafe check`."""

    context_length: int | None = None  # tokens the server says the model takes (vLLM: max_model_len)
    schema: str | None = None  # "honoured", "not known" (the probe was cut off), None: not probed


@dataclass
class CallRecord:
    """Provenance of one successful structured call (kept in each sample's metadata)."""

    agent: str
    role: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1  # parse/validate attempts, 1 when the first reply was valid
    transport_retries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LatencySample:
    """A bounded, uniform sample of call latencies: every latency up to `size` calls, then a
    reservoir (Vitter's algorithm R: call n replaces a random kept one with probability size/n).

    A list would grow by a float per call for the whole run (a million-sample run makes several
    million calls). With 10,000 kept, a quantile's rank error has a standard deviation of at
    most 0.5 percentile points (0.2 at p95). Iterate it or `sorted()` it like the list it
    replaces; `seen` is how many latencies were offered."""

    def __init__(self, size: int = 10_000, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self._kept: list[float] = []
        self._rng = random.Random(seed)  # fixed: the sample is a statistic, not a choice

    def append(self, latency_s: float) -> None:
        self.seen += 1
        if len(self._kept) < self.size:
            self._kept.append(latency_s)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self._kept[slot] = latency_s

    def __iter__(self) -> Iterator[float]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)


@dataclass
class TeacherStats:
    """Live counters for the progress bar and stats.json; mutated only on the event loop."""

    calls: int = 0
    in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    parse_retries: int = 0
    transport_retries: int = 0
    failed_calls: int = 0
    timeouts: int = 0  # attempts that got no whole reply within timeout_s
    concurrency_limit: int | None = None  # the adaptive limit now (teacher.concurrency: auto), else None
    latency_total_s: float = 0.0
    latencies_s: LatencySample = field(default_factory=LatencySample, repr=False)

    def record(self, call: CallRecord, *, ok: bool = True) -> None:
        """Count one call, successful or finally failed: its replies cost tokens and time."""
        if ok:
            self.calls += 1
        else:
            self.failed_calls += 1
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.parse_retries += call.attempts - 1
        self.latency_total_s += call.latency_s
        self.latencies_s.append(call.latency_s)


class TeacherError(AidsafeError):
    """A call that did not produce a valid structured output. `call` is its record (tokens,
    attempts, latency) when it came from a teacher call, for the sample's rejection."""

    transient: bool = False
    call: CallRecord | None = None


class TransientTeacherError(TeacherError):
    """Transport failures (5xx, 429, timeouts, resets) outlasted the retries: worth a rerun."""

    transient = True


class InvalidOutputError(TeacherError):
    """The teacher's replies kept failing to parse or validate after the allowed re-asks."""


class Teacher(Protocol):
    """The one method agents use. `check` runs after schema validation; a ValueError it raises
    is treated like a validation error (the teacher is asked again with the message)."""

    stats: TeacherStats

    async def generate(
        self,
        *,
        agent: str,
        role: str,
        messages: list[Message],
        schema: type[M],
        endpoint: Endpoint,
        sampling: Mapping[str, Any],
        check: Callable[[M], None] | None = None,
    ) -> tuple[M, CallRecord]: ...
