"""Run a served guard model over a benchmark and write prediction rows like the released ones.

Both formats go through the OpenAI-compatible `/v1/completions` endpoint with the raw prompt text,
because that is how the released models were run: GuardReasoner's script feeds
instruction + "\\n" + input to vLLM, and ThinkGuard's feeds Llama Guard 3's prompt with its special
tokens as plain text. A chat endpoint would wrap the text in the served model's chat template
(for Llama Guard 3 derivatives, one that injects its own categories). Decoding is greedy.

Prediction runs on the executor, through the one entrance every stage takes
(aidsafe.run.stage.run_stage): one `PredictTask` call per row. The
output file is append-only while running and doubles as the resume journal: rows already
there (matched by `index`, else by `prompt`) are skipped, and a partial last line left by a
kill is cut off. Only transport failures count as transient. When every row is done the file
is rewritten once, atomically, in benchmark order, so it lines up with the benchmark file as
the released prediction files do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.agents.policies import PolicySet
from aidsafe.agents.settings import TeacherSettings
from aidsafe.errors import AidsafeError
from aidsafe.guard.evaluate import WILDGUARD_GOLD_FIELDS
from aidsafe.guard.formats import (
    BEAVERTAILS_CATEGORIES,
    guardreasoner_prompt,
    split_guardreasoner_input,
    thinkguard_prompt,
    verdict_score,
)
from aidsafe.oneline import one_line
from aidsafe.run.journal import JournalIndex, input_digest
from aidsafe.run.jsonl import append_jsonl, cut_partial_tail, read_jsonl, write_atomic
from aidsafe.run.lock import run_lock
from aidsafe.run.stage import run_stage
from aidsafe.run.task import Rejection, RunContext, Task, rejection_for
from aidsafe.sources import read_rows
from aidsafe.teacher.types import Endpoint, TeacherError

__all__ = [
    "FORMATS",
    "MAX_TOKENS",
    "GuardExample",
    "PredictTask",
    "PredictionFile",
    "check_sampling",
    "load_benchmark",
    "predict_guard",
    "render_prompt",
    "run_predictions",
    "split_logprobs",
]

FORMATS = ("guardreasoner", "thinkguard")
MAX_TOKENS = 2048  # the published evaluation's generation limit
TOP_LOGPROBS = 5  # enough to see both verdicts at the verdict token


@dataclass(frozen=True)
class GuardExample:
    index: int
    prompt: str
    response: str | None
    label: Any  # the gold as the benchmark gives it: a bare label or an answer block
    gold: dict[str, Any] = field(default_factory=dict)  # WildGuardTest columns, BeaverTails categories
    text: str | None = None  # a GuardReasoner record's own instruction + "\n" + input, kept verbatim
    where: str = ""  # how read_rows names the row in messages (`path:LINE`, `path: record N`)


def load_benchmark(ref: str, split: str = "test") -> list[GuardExample]:
    """Examples from a GuardReasoner JSON file, a JSONL file, or a Hub id `owner/name[:config]:split`
    (`split` where the id names none: benchmarks are test splits)."""
    records = read_rows(ref, split=split)
    return [_to_example(index, where, record) for index, (where, record) in enumerate(records)]


def render_prompt(example: GuardExample, fmt: str, policies: PolicySet | None = None) -> str:
    if fmt == "guardreasoner":
        return example.text or guardreasoner_prompt(example.prompt, example.response)
    if policies is None:
        raise ValueError("the thinkguard format needs a policy set for its category block")
    return thinkguard_prompt(example.prompt, example.response, policies)


async def predict_guard(
    examples: list[GuardExample],
    output: Path,
    base_url: str,
    model: str,
    fmt: str = "guardreasoner",
    policies: PolicySet | None = None,
    concurrency: int = 16,
    api_key: str | None = None,
    timeout_s: float = 600.0,
    attempts: int = 6,
    backoff_s: float = 1.0,
    on_progress: Callable[[int], None] | None = None,
    progress: bool = False,
    samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> dict[str, int]:
    """Predict every example not yet in `output`; returns counts {done, skipped}.

    Runs through the one entrance (aidsafe.run.stage.run_stage) as a `PredictTask`, with `output`
    as its journal; every row must finish, or the run fails naming the first that did not.
    Requests go through `TeacherClient.complete_text`, as generation's do: `concurrency` in flight
    at most, each tried `attempts` times on transport failures (backoff from `backoff_s`, honouring
    Retry-After). `on_progress(n)` hears of finished rows: once with the rows already done, then 1
    per new row; `progress` shows the executor's live line instead.
    """
    if fmt not in FORMATS:
        raise AidsafeError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_sampling(fmt, samples, temperature, top_p)
    prompts = [render_prompt(example, fmt, policies) for example in examples]
    settings = TeacherSettings(base_url=base_url, model=model, timeout_s=timeout_s, concurrency=concurrency,
                               max_transport_retries=attempts - 1, backoff_base_s=backoff_s)  # fmt: skip

    def make_task(client: Any, endpoint: Endpoint) -> PredictTask:
        return PredictTask(examples, prompts, fmt, client, endpoint, attempts, samples, temperature, top_p)

    return await run_predictions(prompts, make_task, output, settings, api_key, on_progress, progress)


async def run_predictions(
    prompts: list[str],
    make_task: Callable[[Any, Endpoint], Task[int]],
    output: Path,
    settings: TeacherSettings,
    api_key: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    progress: bool = False,
) -> dict[str, int]:
    """Ask `make_task(client, endpoint)` for every row of `prompts` (what each row is asked, its
    resume key) not yet in `output`, through the one entrance, with `output` as the journal; then
    rewrite it in benchmark order. Returns counts {done, skipped}."""
    journal = PredictionFile(output, prompts, on_progress)
    journal.check()
    if on_progress is not None:
        on_progress(len(journal.done))
    if len(journal.done) == len(prompts):  # nothing to ask: no pre-flight either (the server may be gone)
        if output.exists():
            _rewrite_in_order(output, prompts)
        return {"done": 0, "skipped": len(journal.done)}
    endpoint, env = settings.endpoint(), {settings.api_key_env: api_key} if api_key else {}
    outcome, _ = await run_stage(
        lambda client, _: make_task(client, endpoint), range(len(prompts)), journal, settings=settings, seed=0,
        env=env, workers=settings.concurrency, progress=progress,
    )  # fmt: skip
    _rewrite_in_order(output, prompts)
    return {"done": outcome.finished, "skipped": outcome.skipped}


class PredictTask(Task[int]):
    """One benchmark row (by index) through the served guard model: one completions call."""

    noun = "rows"
    stage = "predict"

    def __init__(
        self,
        examples: list[GuardExample],
        prompts: list[str],
        fmt: str,
        client: Any,
        endpoint: Endpoint,
        attempts: int,
        samples: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> None:
        self.examples = examples
        self.prompts = prompts
        self.fmt = fmt
        self.client = client
        self.endpoint = endpoint
        self.attempts = attempts
        self.samples = samples
        self.sampling: dict[str, Any] = {"temperature": temperature or 0, "max_tokens": MAX_TOKENS}
        if top_p != 1.0:
            self.sampling["top_p"] = top_p
        if fmt == "thinkguard":
            self.sampling["logprobs"] = TOP_LOGPROBS

    def key(self, i: int) -> str:
        return str(i)

    def digest(self, i: int) -> str:
        return input_digest(self.prompts[i])

    async def preflight(self) -> None:
        await self.client.check_reachable(self.endpoint, structured=False)  # raw completions only

    async def run(self, i: int, ctx: RunContext) -> dict[str, Any]:
        if self.samples == 1:
            return _row(self.examples[i], self.prompts[i], await self._complete(i, self.sampling), self.fmt)
        # K calls, sample k seeded with k: a rerun draws the same K outputs from the same server.
        replies = await asyncio.gather(*(self._complete(i, {**self.sampling, "seed": k}) for k in range(self.samples)))
        row = _row(self.examples[i], self.prompts[i], replies[0], self.fmt)
        row["predicts"] = [reply["text"] for reply in replies]  # `predict` stays the first: eval reads it
        return row

    async def _complete(self, i: int, sampling: dict[str, Any]) -> dict[str, Any]:
        return await self.asked(
            self.client.complete_text(agent="guard", prompt=self.prompts[i], endpoint=self.endpoint, sampling=sampling)
        )

    async def asked(self, call: Awaitable[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
        """The reply of one client call, a failed call being this row's rejection."""
        try:
            reply, _ = await call
        except TeacherError as exc:  # only transport failures are transient; a bug is not caught here
            raise rejection_for(self.stage, exc, _reason(exc, self.attempts)) from exc
        return reply


class PredictionFile:
    """The predictions JSONL as the executor's journal: rows are appended while running (a kill
    leaves at most a partial last line, cut off by the next run) and rewritten in benchmark
    order at the end. Failed rows are not written: the next run tries them again."""

    checkpoints_path = None
    rejected_path = None  # failed rows are not written: the next run tries them again

    def __init__(self, output: Path, prompts: list[str], on_progress: Callable[[int], None] | None = None) -> None:
        self.output = output
        self.prompts = prompts
        self.on_progress = on_progress
        self.done: dict[str, str] = {}

    def check(self) -> None:
        self.done = {str(i): input_digest(self.prompts[i]) for i in sorted(_finished(self.output, self.prompts))}

    def lock(self) -> AbstractContextManager[None]:
        # One predictions file in a folder that may hold others: a lock file of its own beside it.
        return run_lock(self.output.parent, name=f".{self.output.name}.lock")

    def finish(self) -> None:
        """Nothing to save: the predictions file is its own index."""

    def open(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        cut_partial_tail(self.output)

    def index(self) -> JournalIndex:
        return JournalIndex(finished=dict(self.done))

    def forget_rejections(self, ids: set[str]) -> None:
        pass  # never written

    def append_sample(self, record: dict[str, Any], digest: str) -> None:
        append_jsonl(self.output, record)
        if self.on_progress is not None:
            self.on_progress(1)

    def append_rejected(self, entry: dict[str, Any], digest: str) -> None:
        pass  # reported when the run ends (aidsafe.run.executor.check_every_item_finished)

    def write_stats(self, counts: Any, teacher: Any, wall_s: float) -> dict[str, Any]:
        return {}  # one file is the whole output: there is no run directory to hold stats.json


def check_sampling(fmt: str, samples: int, temperature: float, top_p: float) -> None:
    """The --samples/--temperature/--top-p combination makes sense (before any file is read)."""
    if samples < 1:
        raise AidsafeError(f"--samples: {samples}; expected 1 or more")
    if not 0 <= temperature <= 2 or not 0 < top_p <= 1:
        raise AidsafeError(f"--temperature {temperature} / --top-p {top_p}: expected 0..2 and (0, 1]")
    if samples > 1 and fmt != "guardreasoner":
        raise AidsafeError("--samples: K samples per row are for the guardreasoner format (HS-DPO mining)")
    if samples > 1 and temperature == 0:
        raise AidsafeError(f"--samples {samples} with --temperature 0 gives {samples} equal outputs; pass e.g. 0.7")


def _reason(exc: TeacherError, attempts: int) -> str:
    """One line (the CLI prints errors as one): for a failed request what went wrong on the wire
    (`HTTP 400: ...`), without the client's "agent: teacher ... at ..." prefix."""
    from aidsafe.teacher.retry import describe_failure  # here: `eval guard` needs no HTTP client
    from aidsafe.teacher.wire import WireError

    if isinstance(exc.__cause__, WireError):
        tried = f" ({attempts} attempts)" if exc.transient else ""
        return describe_failure(exc.__cause__) + tried
    return one_line(str(exc), 300)


def _row(example: GuardExample, prompt: str, reply: dict[str, Any], fmt: str) -> dict[str, Any]:
    row: dict[str, Any] = {"prompt": prompt, "label": example.label, "predict": reply["text"], "index": example.index}
    if fmt == "thinkguard":
        tokens, top = _logprobs(reply["logprobs"])
        row["score"] = verdict_score(tokens, top) if tokens and top else None
    row.update(example.gold)
    return row


def _logprobs(logprobs: Any) -> tuple[list[str], list[Any]]:
    """`split_logprobs`, a bad shape being a rejection of the reply, not an exception in scoring."""
    try:
        return split_logprobs(logprobs)
    except ValueError as exc:
        raise Rejection(PredictTask.stage, "malformed_reply", str(exc), False) from None


def split_logprobs(logprobs: Any) -> tuple[list[str], list[Any]]:
    """The per-token lists (tokens, top_logprobs) of a completions reply's `logprobs`, checked:
    ValueError if a server sent another shape; ([], []) if it sent none."""
    logprobs = logprobs or {}
    if not isinstance(logprobs, dict):
        raise ValueError("logprobs are not per-token lists (tokens, top_logprobs)")
    tokens, top = logprobs.get("tokens") or [], logprobs.get("top_logprobs") or []
    shaped = isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) and isinstance(top, list)
    shaped = shaped and all(
        alternatives is None
        or (isinstance(alternatives, dict) and all(isinstance(v, int | float) for v in alternatives.values()))
        for alternatives in top
    )
    if not shaped:
        raise ValueError("logprobs are not per-token lists (tokens, top_logprobs)")
    return tokens, top


def _finished(output: Path, prompts: list[str]) -> set[int]:
    """Indexes already predicted in `output` (read-only: a partial last line is skipped here and
    cut off when the run opens the file)."""
    if not output.exists():
        return set()
    by_prompt: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_prompt.setdefault(prompt, []).append(i)
    done: set[int] = set()
    for number, row in read_jsonl(output, skip_partial_tail=True):
        index = row.get("index")
        if isinstance(index, int) and 0 <= index < len(prompts) and row.get("prompt") == prompts[index]:
            done.add(index)
        elif index is None and row.get("prompt") in by_prompt:
            done.update(by_prompt[row["prompt"]])
        else:
            raise AidsafeError(
                f"{output}:{number}: this row is not from this benchmark and format (index {index}); "
                "use another --output"
            )
    return done


def _rewrite_in_order(output: Path, prompts: list[str]) -> None:
    position = {prompt: i for i, prompt in reversed(list(enumerate(prompts)))}
    rows = [row for _, row in read_jsonl(output, skip_partial_tail=True)]
    rows.sort(key=lambda row: row.get("index", position.get(row.get("prompt"), len(prompts))))
    write_atomic(output, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _to_example(index: int, where: str, record: dict[str, Any]) -> GuardExample:
    gold = {column: record[column] for column in WILDGUARD_GOLD_FIELDS.values() if column in record}
    if isinstance(record.get("category"), dict):  # BeaverTails: {category key: bool}
        gold["categories"] = [
            f"S{i + 1}" for i, key in enumerate(BEAVERTAILS_CATEGORIES) if record["category"].get(key)
        ]
    if isinstance(record.get("instruction"), str) and isinstance(record.get("input"), str):
        try:
            prompt, response = split_guardreasoner_input(record["input"])
        except ValueError as exc:
            raise AidsafeError(f"{where}: input: {exc}") from None
        text = record["instruction"] + "\n" + record["input"]
        return GuardExample(index, prompt, response, record.get("output"), gold, text, where)
    if isinstance(record.get("prompt"), str):
        label = record.get("label")
        if label is None and isinstance(record.get("is_safe"), bool):  # BeaverTails judges the response
            label = "unharmful" if record["is_safe"] else "harmful"
        return GuardExample(index, record["prompt"], record.get("response") or None, label, gold, where=where)
    fields = ", ".join(map(str, record)) or "none"
    raise AidsafeError(
        f"{where}: expected instruction/input (GuardReasoner) or prompt[/response] fields; found {fields}"
    )
