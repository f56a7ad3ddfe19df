"""Run a served guard model over a benchmark and write prediction rows like the released ones.

Both formats go through the OpenAI-compatible `/v1/completions` endpoint with the raw prompt text,
because that is how the released models were run: GuardReasoner's script feeds
instruction + "\\n" + input to vLLM, and ThinkGuard's feeds Llama Guard 3's prompt with its special
tokens as plain text. A chat endpoint would wrap the text in the served model's chat template
(for Llama Guard 3 derivatives, one that injects its own categories). Decoding is greedy.

The output file is append-only while running and doubles as the resume journal: rows already
there (matched by `index`, else by `prompt`) are skipped, and a partial last line left by a kill
is cut off. When every row is done the file is rewritten once, atomically, in benchmark order, so
it lines up with the benchmark file as the released prediction files do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.guard.evaluate import WILDGUARD_GOLD_FIELDS
from aidsafe.guard.formats import (
    BEAVERTAILS_CATEGORIES,
    guardreasoner_prompt,
    split_guardreasoner_input,
    thinkguard_prompt,
    verdict_score,
)
from aidsafe.run.jsonl import append_jsonl, cut_partial_tail, read_jsonl, write_atomic
from aidsafe.generation.policies import PolicySet
from aidsafe.teacher.types import Endpoint, TeacherError

__all__ = ["FORMATS", "MAX_TOKENS", "GuardExample", "load_benchmark", "predict_guard", "render_prompt"]

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


def load_benchmark(ref: str) -> list[GuardExample]:
    """Examples from a GuardReasoner JSON file, a JSONL file, or a Hub id `owner/name[:config]:split`."""
    path = Path(ref).expanduser()
    if path.is_file():
        records = _read_file(path)
    elif _looks_like_hub_id(ref):
        records = _read_hub(ref)
    else:
        raise AidsafeError(f"{ref}: file not found (and not a Hugging Face dataset id like owner/name:split)")
    if not records:
        raise AidsafeError(f"{ref}: the benchmark has no rows")
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
) -> dict[str, int]:
    """Predict every example not yet in `output`; returns counts {done, skipped}.

    Requests go through `TeacherClient.complete_text`, as generation's do: `concurrency` in flight
    at most, each tried `attempts` times on transport failures (backoff from `backoff_s`, honouring
    Retry-After). `on_progress(n)` hears of finished rows: once with the rows already done, then 1
    per new row.
    """
    if fmt not in FORMATS:
        raise AidsafeError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    prompts = [render_prompt(example, fmt, policies) for example in examples]
    done = _finished(output, prompts)
    pending = [i for i in range(len(examples)) if i not in done]
    if on_progress is not None:
        on_progress(len(done))
    if not pending:  # nothing to ask: no pre-flight check either (the server may be gone by now)
        if output.exists():
            _rewrite_in_order(output, prompts)
        return {"done": 0, "skipped": len(done)}
    output.parent.mkdir(parents=True, exist_ok=True)
    from aidsafe.teacher.client import TeacherClient

    endpoint = Endpoint(base_url=base_url, model=model, timeout_s=timeout_s)
    sampling: dict[str, Any] = {"temperature": 0, "max_tokens": MAX_TOKENS}
    if fmt == "thinkguard":
        sampling["logprobs"] = TOP_LOGPROBS
    failures: list[str] = []
    async with TeacherClient(
        concurrency=concurrency,
        max_transport_retries=attempts - 1,
        env={endpoint.api_key_env: api_key} if api_key else {},
        backoff_base_s=backoff_s,
        seed=0,
    ) as client:
        await client.check_reachable(endpoint, structured=False)  # raw completions only

        async def one(i: int) -> None:
            try:
                reply, _ = await client.complete_text(
                    agent="guard", prompt=prompts[i], endpoint=endpoint, sampling=sampling
                )
                row = _row(examples[i], prompts[i], reply, fmt)
            except (TeacherError, ValueError, TypeError) as exc:  # the latter two: malformed logprobs
                failures.append(f"row {i}: {_reason(exc, attempts)}")
                return
            append_jsonl(output, row)  # a kill leaves at most a partial last line
            if on_progress is not None:
                on_progress(1)

        await asyncio.gather(*(one(i) for i in pending))
    if failures:
        raise AidsafeError(
            f"{len(failures)} of {len(pending)} rows failed ({failures[0]}); rerun the same command to retry them"
        )
    _rewrite_in_order(output, prompts)
    return {"done": len(pending), "skipped": len(done)}


def _reason(exc: Exception, attempts: int) -> str:
    """One line (the CLI prints errors as one): for a failed request what went wrong on the wire
    (`HTTP 400: ...`), without the client's "agent: teacher ... at ..." prefix."""
    import openai  # here, not at the top: `eval guard` imports this module and needs no HTTP client

    from aidsafe.teacher.retry import describe_failure

    if isinstance(exc.__cause__, openai.APIError):
        tried = f" ({attempts} attempts)" if isinstance(exc, TeacherError) and exc.transient else ""
        return describe_failure(exc.__cause__) + tried
    text = str(exc) if isinstance(exc, TeacherError) else f"malformed reply ({type(exc).__name__}: {exc})"
    return " ".join(text.split())[:300]


def _row(example: GuardExample, prompt: str, reply: dict[str, Any], fmt: str) -> dict[str, Any]:
    row: dict[str, Any] = {"prompt": prompt, "label": example.label, "predict": reply["text"], "index": example.index}
    if fmt == "thinkguard":
        logprobs = reply["logprobs"] or {}
        tokens, top = logprobs.get("tokens"), logprobs.get("top_logprobs")
        row["score"] = verdict_score(tokens, top) if tokens and top else None
    row.update(example.gold)
    return row


def _finished(output: Path, prompts: list[str]) -> set[int]:
    """Indexes already predicted in `output`, after cutting off a partial last line."""
    if not output.exists():
        return set()
    cut_partial_tail(output)
    by_prompt: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_prompt.setdefault(prompt, []).append(i)
    done: set[int] = set()
    for number, row in read_jsonl(output):
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
    rows = [row for _, row in read_jsonl(output)]
    rows.sort(key=lambda row: row.get("index", position.get(row.get("prompt"), len(prompts))))
    write_atomic(output, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _read_file(path: Path) -> list[tuple[str, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AidsafeError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        return [(f"{path}: record {i}", record) for i, record in enumerate(records)]
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                rows.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise AidsafeError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return rows


def _looks_like_hub_id(ref: str) -> bool:
    name = ref.split(":", 1)[0]
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).suffix


def _read_hub(ref: str) -> list[tuple[str, dict[str, Any]]]:
    """`owner/name:split` or `owner/name:config:split` (default split: test)."""
    name, *rest = ref.split(":")
    config, split = (rest[0], rest[1]) if len(rest) == 2 else (None, rest[0] if rest else "test")
    import datasets

    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, gated, bad split: all end the command before any request
        raise AidsafeError(f"{ref}: cannot load Hugging Face dataset ({type(exc).__name__}: {exc})") from None
    return [(f"{ref}: row {i}", row) for i, row in enumerate(dataset)]


def _to_example(index: int, where: str, record: Any) -> GuardExample:
    if not isinstance(record, dict):
        raise AidsafeError(f"{where}: expected an object, got {type(record).__name__}")
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
        return GuardExample(index, prompt, response, record.get("output"), gold, text)
    if isinstance(record.get("prompt"), str):
        label = record.get("label")
        if label is None and isinstance(record.get("is_safe"), bool):  # BeaverTails judges the response
            label = "unharmful" if record["is_safe"] else "harmful"
        return GuardExample(index, record["prompt"], record.get("response") or None, label, gold)
    fields = ", ".join(map(str, record)) or "none"
    raise AidsafeError(
        f"{where}: expected instruction/input (GuardReasoner) or prompt[/response] fields; found {fields}"
    )
