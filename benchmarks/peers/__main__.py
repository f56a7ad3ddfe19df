"""aidsafe, distilabel and Bespoke Curator side by side on one multi-agent workload.

    python -m benchmarks.peers                                  # all three, one run each
    python -m benchmarks.peers --runs 3 --frameworks aidsafe,curator

(run from the repository root.) The workload (benchmarks/peers/workload.py): per prompt, five
dependent structured calls, call k's prompt carrying call k-1's answer; 256 prompts, 64 requests
in flight, 0.3 s per call, so the ideal is 256 x 5 x 0.3 / 64 = 6 s (213 calls/s). Every
framework calls ONE loopback `aidsafe.testing.ScriptedServer` in this process (its base_url is
printed), which answers after the latency; its responder gives aidsafe's five roles aidsafe's
scripted replies (the deliberator agrees on its second turn, so each prompt costs exactly five
calls: intents, initial CoT, two deliberation turns, refiner) and every other JSON-schema request
a random object valid for the request's own schema (`schema_responder`).

- aidsafe: the real `aidsafe generate aidsafe` CLI in a subprocess (executor, journal, LangGraph
  with its SQLite checkpointer, aidsafe's own HTTP client over aiohttp), `--concurrency 64`, dedup off
  (the peers do no dedup).
- distilabel (run_distilabel.py): a Pipeline of a loader and five chained Tasks, each with its
  own OpenAILLM (structured output through instructor), input_batch_size 64 // 5 = 12 so that the
  five stage processes together keep at most 64 calls in flight.
- Curator (run_curator.py): five curator.LLM stages, each with a pydantic response_format,
  backend "openai" at the base_url, max_concurrent_requests 64 (and rate limits far above what the
  server can do); stage k runs over stage k-1's whole dataset.

The peers run in venvs of their own under ~/.cache/aidsafe-bench/<name>-<version> (made on first
use by benchmarks/peers/venvs.py: pinned pip installs; reused after), never in aidsafe's.

Per framework and run it prints: version, calls (counted at the server), prompts that came back
complete, wall time (first call at the server to the process's exit), calls/s, efficiency
against the ideal (calls x latency / concurrency over the wall), the client's CPU seconds and ms
per call (getrusage of the child process and the descendants it waited for, start-up included),
the peak of requests in flight at the server, the time from launch to the first call, and the
mean request size; with --runs N each run and then each framework's median. The machine's speed
on benchmarks/machine.py's fixed reference loop heads the table: figures from different machines
compare only with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aidsafe.testing import ScriptedServer
from benchmarks.machine import reference_loop_ms
from benchmarks.peers import workload
from benchmarks.peers.calls import is_workload_call, workload_responder
from benchmarks.peers.results import Figures, Measurement, figures, format_header, format_table, median_figures
from benchmarks.peers.venvs import PEERS, InstallError, ensure_venv

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("aidsafe", "distilabel", "curator")


def aidsafe_command(args: argparse.Namespace, base_url: str, work: Path) -> tuple[list[str], Path]:
    source = work / "prompts.jsonl"
    source.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in workload.prompt_texts(args.prompts)))
    out = work / "run"
    cmd = [
        sys.executable, "-m", "aidsafe", "generate", "aidsafe", "-i", str(source), "-o", str(out),
        "--base-url", base_url, "--model", args.model, "--concurrency", str(args.concurrency),
        "--set", "dedup.enabled=false", "--no-progress",
    ]  # fmt: skip
    return cmd, out


def peer_command(args: argparse.Namespace, python: Path, script: str, base_url: str, work: Path) -> list[str]:
    return [
        str(python), str(HERE / script), "--base-url", base_url, "--model", args.model,
        "--prompts", str(args.prompts), "--concurrency", str(args.concurrency),
        "--work-dir", str(work), "--out", str(work / "result.json"),
        *(["--batch", str(args.distilabel_batch)] if args.distilabel_batch and script == "run_distilabel.py" else []),
    ]  # fmt: skip


def child_env(work: Path) -> dict[str, str]:
    """No network, no telemetry, caches inside the run's own folder (so no run reads another's)."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(work / "hf-datasets"),
        "CURATOR_CACHE_DIR": str(work / "curator-cache"),
        "CURATOR_DISABLE_CACHE": "true",
        "TELEMETRY_ENABLED": "false",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_KEY": "bench",
        "CURATOR_DISABLE_RICH_DISPLAY": "1",  # as aidsafe runs with --no-progress
    }


def run_one(
    framework: str, run: int, args: argparse.Namespace, server: ScriptedServer, pythons: dict[str, Path]
) -> Measurement:
    with tempfile.TemporaryDirectory(prefix=f"peers-{framework}-") as tmp:
        work = Path(tmp)
        if framework == "aidsafe":
            cmd, run_dir = aidsafe_command(args, server.base_url, work)
        else:
            cmd = peer_command(args, pythons[framework], PEERS[framework].script, server.base_url, work)
        seen = len(server.requests)
        server.max_in_flight = 0  # the server is idle between runs: this run's peak only
        log = work / "log.txt"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        launched = time.monotonic()
        with log.open("w") as out:
            # A session of its own, so a hung run is ended with the processes it started.
            child = subprocess.Popen(
                cmd, env=child_env(work), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                returncode = child.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                raise RuntimeError(
                    f"{framework} did not finish in {args.timeout:g} s; its last lines:\n{_tail(log)}"
                ) from None
        finished = time.monotonic()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if returncode != 0:
            raise RuntimeError(f"{framework} exited {returncode}; its last lines:\n{_tail(log)}")
        requests = [r for r in server.requests[seen:] if r.path.endswith("/chat/completions")]
        calls = [r for r in requests if is_workload_call(r.json)]
        if not calls:
            raise RuntimeError(f"{framework} made no call to the server")
        if framework == "aidsafe":
            stats = json.loads((run_dir / "stats.json").read_text())
            version, rows = _aidsafe_version(), stats["samples"]
        else:
            result = json.loads((work / "result.json").read_text())
            version, rows = result["version"], result["rows"]
            if run == 1:
                print(f"[{framework}] config: {json.dumps(result['config'])}", flush=True)
        first = min(r.time for r in requests)  # a framework's probes are part of its time
        return Measurement(
            framework=framework,
            version=version,
            run=run,
            calls=len(calls),
            rows=rows,
            generating_s=finished - first,
            launch_s=first - launched,
            cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            probes=len(requests) - len(calls),
            peak_in_flight=server.max_in_flight,
            request_bytes=statistics.fmean(len(json.dumps(r.json)) for r in calls),
        )


def _tail(log: Path, lines: int = 20) -> str:
    return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def _aidsafe_version() -> str:
    from importlib.metadata import version

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    return f"{version('aidsafe')}@{commit}" if commit else version("aidsafe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frameworks", default=",".join(FRAMEWORKS), help="comma-separated: aidsafe,distilabel,curator"
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat each framework; the median follows")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.3, help="server seconds per call")
    parser.add_argument("--model", default="bench")
    parser.add_argument(
        "--distilabel-batch",
        type=int,
        default=None,
        help="distilabel input_batch_size (default concurrency // 5: its five stages keep at most that many in flight)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds a framework's run may take")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.frameworks.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FRAMEWORKS))
    if unknown or not chosen:
        parser.error(
            f"--frameworks: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(FRAMEWORKS)}"
        )

    pythons: dict[str, Path] = {}
    for name in [n for n in chosen if n in PEERS]:
        try:
            pythons[name] = ensure_venv(PEERS[name])
        except InstallError as exc:
            print(f"[{name}] skipped: {exc}", file=sys.stderr)
    frameworks = [n for n in chosen if n == "aidsafe" or n in pythons]

    reference = reference_loop_ms()
    results: dict[str, list[Figures]] = {name: [] for name in frameworks}
    with ScriptedServer(workload_responder(), models=[args.model], latency_s=args.latency) as server:
        print(f"server {server.base_url}", flush=True)
        for run in range(1, args.runs + 1):
            for name in frameworks:  # interleaved, so a noisy minute hits every framework alike
                try:
                    measured = run_one(name, run, args, server, pythons)
                except RuntimeError as exc:
                    print(f"[{name}] run {run} failed: {exc}", file=sys.stderr)
                    continue
                row = figures(measured, latency_s=args.latency, concurrency=args.concurrency)
                results[name].append(row)
                print(format_table([row]).splitlines()[-1], flush=True)
                if measured.rows != args.prompts:
                    print(
                        f"[{name}] run {run}: only {measured.rows} of {args.prompts} prompts came back complete",
                        file=sys.stderr,
                    )

    header = format_header(
        prompts=args.prompts,
        stages=workload.STAGES,
        concurrency=args.concurrency,
        latency_s=args.latency,
        reference_ms=reference,
    )
    table = [row for name in frameworks for row in results[name]]
    if args.runs > 1:
        table += [median_figures(results[name]) for name in frameworks if results[name]]
    print()
    print(header)
    print(format_table(table))


if __name__ == "__main__":
    main()
