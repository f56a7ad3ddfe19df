"""Constants and small functions that many test files share, kept here once instead of copied.

- `FAST`: command-line flags for a run against the loopback teacher: retries back off in
  milliseconds, not seconds, and no progress bar.
- `tiny_training()`: `--set` flags for a few deterministic steps of `aidsafe train` on the tiny
  local model; `final_loss()` reads the trainer's "N steps, final train loss X;" line (`LOSS`);
  `load_weights()` and `weights_changed()` compare a model folder before and after.
- `THIRD_PARTY_DEPRECATIONS`: warnings from inside PEFT and TRL that tests which train ignore.
- `free_port()`: a loopback port nothing listens on; `write_jsonl()`: rows to a JSONL file
  (tests.conftest.read_jsonl reads them back).
- `aidsafe_run()`: a real generation run over given prompts, against the loopback teacher;
  `killed_after()`: a run as its own process, killed with SIGKILL once it journaled some samples;
  `wait_until()`: poll a condition while a process runs.
- Teacher-client doubles (tests/teacher): `MODEL`, `MESSAGES`, the `Verdict` schema, a
  `verdict_server()` that answers it, fault plans `faults_at()`, `always()` and
  `first_try_faults()`, and `ask()`.

Fixtures stay in the conftest.py files; this module holds only plain values and functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from aidsafe.teacher import Endpoint
from aidsafe.testing.server import Fault, ScriptedServer, responder_by_schema_name

if TYPE_CHECKING:
    from aidsafe.teacher import TeacherClient  # only named in annotations: importing it is heavier

__all__ = [
    "FAST",
    "FAST_NO_RETRY",
    "LOSS",
    "MESSAGES",
    "MODEL",
    "THIRD_PARTY_DEPRECATIONS",
    "Verdict",
    "aidsafe_run",
    "always",
    "ask",
    "faults_at",
    "final_loss",
    "first_try_faults",
    "free_port",
    "killed_after",
    "load_weights",
    "tiny_training",
    "verdict_server",
    "wait_until",
    "weights_changed",
    "write_jsonl",
]

# Against the loopback teacher: a retry waits 10-50 ms instead of seconds; no progress bar.
FAST = ["--set", "teacher.backoff_base_s=0.01", "--set", "teacher.backoff_max_s=0.05", "--no-progress"]
# No transport retry at all: for runs whose teacher is down on purpose (a failure comes at once).
FAST_NO_RETRY = ["--set", "teacher.backoff_base_s=0.01", "--set", "teacher.max_transport_retries=0", "--no-progress"]


# Training on the tiny local model -----------------------------------------------------------------


def tiny_training(steps: int = 2, max_length: int = 256) -> list[str]:
    """`--set` flags for `steps` small, fast, deterministic optimizer steps: batches of 2, no
    warmup (the first step would have learning rate 0), no checkpoints, a loss logged every step."""
    return [
        "--set", f"trainer.max_steps={steps}",
        "--set", "trainer.per_device_train_batch_size=2",
        "--set", "trainer.gradient_accumulation_steps=1",
        "--set", "trainer.learning_rate=1e-3",
        "--set", "trainer.warmup_steps=0",
        "--set", "trainer.save_strategy=no",
        "--set", "trainer.logging_steps=1",
        "--set", f"trainer.max_length={max_length}",
    ]  # fmt: skip


# What `aidsafe train` prints when it is done: "sft: 3 steps, final train loss 2.7100; adapter -> ...".
LOSS = re.compile(r"(\d+) steps, final train loss (\S+);")


def final_loss(err: str, steps: int, mode: str | None = None) -> float:
    """The final train loss in `err` (a train command's stderr), asserting it took `steps` steps;
    with `mode`, the line must also name that mode ("dpo: 2 steps, ...")."""
    pattern = LOSS if mode is None else re.compile(re.escape(mode) + ": " + LOSS.pattern)
    match = pattern.search(err)
    assert match and int(match.group(1)) == steps, err[-2000:]
    return float(match.group(2))


def load_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def weights_changed(before: dict, after: dict) -> bool:
    """Whether any tensor the two state dicts share differs."""
    import torch

    return any(not torch.equal(before[name], after[name]) for name in before if name in after)


# transformers 5.23 renamed gradient checkpointing to activation checkpointing; PEFT 0.21
# (`is_gradient_checkpointing`, when it wraps a model) and TRL 1.16 (`gradient_checkpointing_disable`,
# around DPO's reference forward) still call the old names. The warnings come from inside those
# libraries and are not ours to fix; tests that train ignore them, by exact message.
THIRD_PARTY_DEPRECATIONS = [
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning",
    "ignore:`gradient_checkpointing_disable` is deprecated:FutureWarning",
    "ignore:`gradient_checkpointing_enable` is deprecated:FutureWarning",
]


# Ports and files ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write `rows` one JSON object a line; return `path`."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# Runs made by the real command --------------------------------------------------------------------


def aidsafe_run(root: Path, prompts: list[str]) -> Path:
    """root/run: `aidsafe generate aidsafe` over `prompts` (written to root/prompts.jsonl) against a
    loopback teacher that answers every role (aidsafe_responder, model "teacher-x")."""
    from aidsafe.cli import main
    from aidsafe.testing import aidsafe_responder

    source = write_jsonl(root / "prompts.jsonl", [{"prompt": p} for p in prompts])
    out = root / "run"
    with ScriptedServer(aidsafe_responder(), models=["teacher-x"]) as server:
        args = ["generate", "aidsafe", "--input", str(source), "--output", str(out), "--no-progress"]
        main([*args, "--base-url", server.base_url, "--model", "teacher-x"])
    return out


def wait_until(proc: subprocess.Popen, condition: Callable[[], bool], timeout_s: float = 120) -> None:
    """Poll `condition` until it holds, `proc` ends, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)


def killed_after(cmd: list[str], out: Path, samples: int) -> dict[str, str]:
    """Run `cmd` (an `aidsafe generate` into `out`) as its own process, kill it with SIGKILL once
    `out` journaled `samples` samples, and return the samples finished by then (id -> prompt)."""
    from tests.conftest import read_jsonl

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(proc, lambda: len(read_jsonl(out / "samples.jsonl")) >= samples)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return {r["id"]: r["prompt"] for r in read_jsonl(out / "samples.jsonl")}


# The teacher client against a ScriptedServer ------------------------------------------------------

MODEL = "scripted-model"
MESSAGES = [
    {"role": "system", "content": "You judge safety."},
    {"role": "user", "content": "Is this prompt safe?"},
]


class Verdict(BaseModel):
    """A safety verdict."""

    safe: bool
    reason: str


def verdict_server(**kwargs: Any) -> ScriptedServer:
    """A ScriptedServer that answers the Verdict schema with safe=True, reason "harmless"."""
    return ScriptedServer(
        responder_by_schema_name({"Verdict": lambda request: Verdict(safe=True, reason="harmless")}),
        **kwargs,
    )


def faults_at(*faults: Fault | None) -> Callable[[int, Any], Fault | None]:
    """A plan injecting `faults[i]` into request i and nothing after."""
    return lambda index, request: faults[index] if index < len(faults) else None


def first_try_faults(kinds: list[Fault], every: int) -> Callable[[dict[str, Any]], Fault | None]:
    """A fault for about one in `every` first tries of a chat request (a retry repeats a request,
    a re-ask has more messages), its kind drawn from `kinds` by the request's content, so what
    happens does not depend on the order concurrent calls arrive in. Call it from a fault plan
    (the server calls plans under its lock)."""
    seen: set[str] = set()

    def fault(request: dict[str, Any]) -> Fault | None:
        text = json.dumps(request, sort_keys=True)
        first_try = text not in seen and len(request.get("messages", ())) == 2
        seen.add(text)
        digest = int(hashlib.sha256(text.encode()).hexdigest(), 16)
        return kinds[(digest // every) % len(kinds)] if first_try and digest % every == 0 else None

    return fault


def always(fault: Fault) -> Callable[[int, Any], Fault]:
    """A plan injecting `fault` into every request."""
    return lambda index, request: fault


async def ask(client: TeacherClient, server: ScriptedServer, *, check=None, sampling=None, **endpoint_fields: Any):
    """One Verdict call through `client` to `server`; `endpoint_fields` go to the Endpoint."""
    return await client.generate(
        agent="judge",
        role="verdict",
        messages=MESSAGES,
        schema=Verdict,
        endpoint=Endpoint(base_url=server.base_url, model=MODEL, **endpoint_fields),
        sampling=sampling or {},
        check=check,
    )


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering with `handler`, in a thread, for one test: its
    base URL (no path). Stopped and closed when the block ends."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()
