"""Generation throughput against the loopback ScriptedServer with a set latency.

    python benchmarks/throughput.py --prompts 1024 --concurrency 64 --latency 0.3

Runs `aidsafe generate` as a subprocess (the real CLI, client and graph) against a server in
this process, and prints samples/s, calls/s, efficiency against the ideal
(calls x latency / concurrency), the client's CPU ms per call, and the time from launch to the
first call. Dedup is off by default so the numbers measure the orchestration, not MiniLM;
`--dedup` (or `--dedup on`) runs it on, `--dedup both` runs off then on, one after the other in
one invocation, and prints both. `--client langchain` sends every call through LangChain's
ChatOpenAI (`teacher.chat_model`) instead of aidsafe's wire client; `--client both` runs the
two alternately, `--rounds` times each, so both meet the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import reference_loop_ms

from aidsafe.testing import ScriptedServer, aidsafe_responder

DEDUP_RUNS = {"off": [False], "on": [True], "both": [False, True]}
CLIENTS = {"wire": ["wire"], "langchain": ["langchain"], "both": ["wire", "langchain"]}
CHAT_OPENAI = ["--set", "teacher.chat_model=langchain_openai:ChatOpenAI"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=1024, help="enough that start and tail do not dominate")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.3, help="server seconds per call")
    parser.add_argument(
        "--dedup",
        nargs="?",
        const="on",
        default="off",
        choices=sorted(DEDUP_RUNS),
        help="embedding dedup (MiniLM): off, on (a bare --dedup), or both, one run each",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override passed to aidsafe generate, e.g. teacher.checkpoint=step")  # fmt: skip
    parser.add_argument("--client", default="wire", choices=sorted(CLIENTS),
                        help="the teacher client: aidsafe's wire client, LangChain's ChatOpenAI, or both")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="runs of each client, alternating")
    args = parser.parse_args()

    print(f"machine: reference loop {reference_loop_ms():.0f} ms (benchmarks/machine.py; lower is faster)")
    for dedup in DEDUP_RUNS[args.dedup]:
        for _ in range(args.rounds):
            for client in CLIENTS[args.client]:
                report(args, dedup, client, run_once(args, dedup, client))
    print(f"machine: reference loop {reference_loop_ms():.0f} ms after the runs")


def run_once(args: argparse.Namespace, dedup: bool, client: str = "wire") -> dict:
    """One `aidsafe generate` against a fresh server: its stats and the measured times."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        ScriptedServer(aidsafe_responder(), models=["bench"], latency_s=args.latency) as server,
    ):
        source = Path(tmp) / "prompts.jsonl"
        source.write_text(
            "".join(json.dumps({"prompt": f"[b{i}] benchmark prompt {i}"}) + "\n" for i in range(args.prompts))
        )
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "aidsafe",
            "generate",
            "aidsafe",
            "-i",
            str(source),
            "-o",
            str(out),
            "--base-url",
            server.base_url,
            "--model",
            "bench",
            "--concurrency",
            str(args.concurrency),
            "--set",
            f"dedup.enabled={str(dedup).lower()}",
            *(flag for override in args.set for flag in ("--set", override)),
            *(CHAT_OPENAI if client == "langchain" else []),
            "--no-progress",
        ]
        launched = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL)
        finished = time.monotonic()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        stats = json.loads((out / "stats.json").read_text())
        first_call = min(r.time for r in server.requests if r.path.endswith("/chat/completions"))
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"stats": stats, "launched": launched, "first_call": first_call, "finished": finished, "cpu_s": cpu_s}


def report(args: argparse.Namespace, dedup: bool, client: str, run: dict) -> None:
    stats = run["stats"]
    calls = stats["last_run"]["calls"]
    generating_s = run["finished"] - run["first_call"]
    ideal_s = calls * args.latency / args.concurrency
    print(f"client {client}  prompts {args.prompts}  concurrency {args.concurrency}  latency {args.latency}s  "
          f"dedup {dedup}" + "".join(f"  {override}" for override in args.set))  # fmt: skip
    print(f"samples {stats['samples']}  rejected {stats['rejected']}  calls {calls}")
    print(f"time to first call      {run['first_call'] - run['launched']:7.2f} s")
    print(f"generation wall         {generating_s:7.2f} s  (ideal {ideal_s:.2f} s)")
    print(f"samples/s               {stats['samples'] / generating_s:7.2f}")
    print(f"calls/s                 {calls / generating_s:7.2f}")
    print(f"efficiency              {ideal_s / generating_s:7.2f}")
    print(f"client CPU per call     {1000 * run['cpu_s'] / calls:7.2f} ms (whole process, start-up included)")


if __name__ == "__main__":
    main()
