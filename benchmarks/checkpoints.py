"""The client CPU that storing LangGraph checkpoints costs, per `teacher.checkpoint` mode.

    python benchmarks/checkpoints.py --prompts 256 --concurrency 32 --rounds 3

Runs the real generation graph, executor and SQLite checkpointer in this process with the
in-process fake teacher (no HTTP, no latency), so what differs between the modes is the
checkpointing alone. The modes take turns (step, sample, step, sample, ...), each round into a
fresh run directory, so a busy machine slows both alike; the best round of each is printed
with the machine's reference loop. `benchmarks/throughput.py --set teacher.checkpoint=step`
measures the same against the real HTTP client.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from machine import reference_loop_ms

from aidsafe.generation.runner import GenerateRequest, generate
from aidsafe.testing import FakeTeacher

MODES = ("step", "sample")


def _one(mode: str, source: Path, out: Path, concurrency: int) -> tuple[float, int, int]:
    """CPU seconds, samples and teacher calls of one run."""
    teacher = FakeTeacher()
    request = GenerateRequest(recipe="aidsafe", input=str(source), output=out, progress=False,
                              concurrency=concurrency,
                              overrides=["dedup.enabled=false", f"teacher.checkpoint={mode}"])  # fmt: skip
    started = time.process_time()
    stats = generate(request, env={}, teacher=teacher)
    return time.process_time() - started, stats["samples"], len(teacher.calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32, help="teacher calls in flight (workers: twice)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"reference loop: {reference_loop_ms():.0f} ms")
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "prompts.jsonl"
        source.write_text("".join(f'{{"prompt": "[c{i}] checkpoint benchmark {i}"}}\n' for i in range(args.prompts)))
        _one("sample", source, Path(tmp) / "warm", args.concurrency)  # imports and caches out of the way
        for round_ in range(args.rounds):
            for mode in MODES:
                cpu_s, samples, calls = _one(mode, source, Path(tmp) / f"{mode}-{round_}", args.concurrency)
                per_call = 1000 * cpu_s / calls
                best[mode] = min(best.get(mode, per_call), per_call)
                print(f"round {round_ + 1}  {mode:6}  samples {samples}  calls {calls}  "
                      f"CPU {cpu_s:6.2f} s  {per_call:5.2f} ms/call")  # fmt: skip
    print(f"reference loop: {reference_loop_ms():.0f} ms")
    step, sample = best["step"], best["sample"]
    print(f"best: step {step:.2f} ms/call, sample {sample:.2f} ms/call; checkpoints per step cost "
          f"{step - sample:.2f} ms/call more")  # fmt: skip


if __name__ == "__main__":
    main()
