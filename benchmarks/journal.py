"""Resume over a large run directory: how long a rerun takes to skip finished samples, and its RSS.

    python benchmarks/journal.py --samples 100000
    python benchmarks/journal.py --samples 100000 --pythonpath /path/to/an/older/checkout
    python benchmarks/journal.py --scan-only --samples 100000,300000,1000000

Builds a run directory of synthetic finished samples shaped like real ones (intents, several
thoughts, a deliberation of a few turns, removed thoughts, one call record per teacher call;
about 6.5 KB a line, printed), a prompts file with the same ids, run.json for the built-in recipe,
and stats.json and samples.ids.json as the run that wrote them would have left them. Then it runs the real
`aidsafe generate` over it as a subprocess (every sample finished: no teacher call, no teacher
needed) and prints the wall time, the time beyond start-up (the same command over a one-sample
directory) and the child's peak RSS. `--scan-only` times just the journal work in a child
process (the index and the stats update), to show how RSS grows with the corpus without
holding a million prompts.

The reference loop at the top (a fixed pure-Python workload) makes figures comparable across
machines: divide by it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_WORDS = (
    "policy request user harm safe answer explain context detail risk legal medical advice "
    "information refuse help provide general guidance specific instructions could might should "
    "the a of to and in that is for with as on not be this are it by or from an which"
).split()


def reference_loop() -> float:
    """Seconds for a fixed mix of dict building, json and string work (about 1 s on a 2-core VM)."""
    started = time.perf_counter()
    blob = {"id": "x" * 16, "text": "word " * 200, "numbers": list(range(50))}
    total = 0
    for i in range(40_000):
        blob["n"] = i
        total += len(json.loads(json.dumps(blob)))
    return time.perf_counter() - started


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(_WORDS, k=words)).capitalize() + "."


def synthetic_record(rng: random.Random, item: str, prompt: str, recipe_hash: str) -> dict:
    """A finished sample with the shape and rough sizes of a real one from a 7B teacher."""
    thought = lambda n: {"id": f"t{n}", "text": _text(rng, rng.randint(25, 45)), "policies": ["P1", "P3"]}  # noqa: E731
    thoughts = [thought(n) for n in range(1, rng.randint(4, 7))]
    rounds = rng.randint(1, 3)
    turns = [
        {
            "agent": f"deliberator_{'ab'[r % 2]}",
            "round": r,
            "thoughts": [thought(10 + r) | {"author": "deliberator_a", "round": r}],
            "response": _text(rng, rng.randint(60, 120)),
            "complete": r == rounds,
        }
        for r in range(1, rounds + 1)
    ]
    roles = ["intent_decomposer", "initial_cot"] + ["deliberator"] * rounds + ["refiner"]
    calls = [
        {
            "agent": role,
            "role": role,
            "model": "Qwen/Qwen2.5-7B-Instruct",
            "prompt_tokens": rng.randint(600, 1800),
            "completion_tokens": rng.randint(40, 400),
            "latency_s": round(rng.uniform(0.5, 9.0), 3),
            "attempts": 1,
            "transport_retries": 0,
        }
        for role in roles
    ]
    return {
        "id": item,
        "prompt": prompt,
        "intents": [
            {"text": _text(rng, 12), "kind": kind, "nature": nature}
            for kind, nature in (("explicit", "benign"), ("implicit", "harmful"), ("implicit", "benign"))
        ],
        "thoughts": thoughts,
        "response": _text(rng, rng.randint(100, 220)),
        "deliberation": turns,
        "removed": [thought(20) | {"stage": "refine", "reason": "redundant"}],
        "metadata": {
            "recipe_hash": recipe_hash,
            "policy_set": {"id": "aidsafe", "version": "1.0"},
            "rounds_used": rounds,
            "stop_reason": "complete",
            "calls": calls,
            "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
            "completion_tokens": sum(c["completion_tokens"] for c in calls),
            "latency_s": round(sum(c["latency_s"] for c in calls), 3),
        },
    }


def build_run_dir(root: Path, samples: int) -> tuple[Path, Path, int]:
    """(prompts file, run directory, bytes of samples.jsonl), as a finished run leaves them."""
    from aidsafe.generation.pipeline import load_pipeline
    from aidsafe.generation.records import write_corpus_stats
    from aidsafe.run.journal import RunDirectory, input_digest
    from aidsafe.run.jsonl import encode_line
    from aidsafe.teacher.types import TeacherStats

    pipeline = load_pipeline("aidsafe", [])
    run = RunDirectory(root / f"run-{samples}")
    run.open(pipeline.recipe_hash, pipeline.resolved_recipe())
    rng = random.Random(samples)
    # A thousand distinct bodies, reused under every id: building a million lines then costs
    # the disk writes, not a million json.dumps calls.
    bodies = []
    for _ in range(min(samples, 1000)):
        body = encode_line(synthetic_record(rng, "", "", pipeline.recipe_hash))
        bodies.append(b", " + body[body.index(b'"intents"') :])
    prompts = root / f"prompts-{samples}.jsonl"
    with prompts.open("wb") as plist, run.samples_path.open("wb") as journal:
        for i in range(samples):
            item, prompt = f"s{i:07d}", f"[{i}] " + _text(rng, rng.randint(15, 60))
            plist.write(encode_line({"id": item, "prompt": prompt}))
            # The journal's own line layout: id and digest first.
            head = encode_line({"id": item, "input_sha": input_digest(prompt), "prompt": prompt})
            journal.write(head[:-2] + bodies[i % len(bodies)])
    write_corpus_stats(run, inputs=samples, repeated_inputs=0, teacher=TeacherStats(), wall_s=0.0)
    run.save_index()
    return prompts, run.path, run.samples_path.stat().st_size


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS in MB, stderr, CPU seconds) of one child process.

    CPU time (user + system) is printed too: on a shared machine the wall time varies with
    the others' load far more than the CPU time does."""
    started = time.perf_counter()
    # Not from the checkout: `python -m` puts the working directory first on sys.path.
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir()
    )
    err = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024, err, usage.ru_utime + usage.ru_stime


def _generate(prompts: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aidsafe",
        "generate",
        "aidsafe",
        "-i",
        str(prompts),
        "-o",
        str(run_dir),
        "--no-progress",
    ]


_SCAN = """
import sys, time
from pathlib import Path
from aidsafe.generation.records import write_corpus_stats
from aidsafe.run.journal import RunDirectory
from aidsafe.teacher.types import TeacherStats
run = RunDirectory(Path(sys.argv[1]))
t = time.perf_counter(); index = run.index(); t_index = time.perf_counter() - t
t = time.perf_counter()
write_corpus_stats(run, inputs=len(index.finished), repeated_inputs=0, teacher=TeacherStats(), wall_s=0.0)
t_stats = time.perf_counter() - t
saved = run.ids_path.rename(run.ids_path.with_name("aside"))  # the prefix scan of the whole file
t = time.perf_counter(); run.index(); t_scan = time.perf_counter() - t
saved.rename(run.ids_path)
print(f"{t_index:.3f} {t_stats:.3f} {t_scan:.3f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", default="100000", help="finished samples; comma-separated for several sizes")
    parser.add_argument("--pythonpath", type=Path, help="run the CLI from this checkout (e.g. an older commit)")
    parser.add_argument("--scan-only", action="store_true", help="time the journal work, not the whole CLI")
    parser.add_argument("--repeat", type=int, default=2, help="reruns per size (the best is printed first)")
    args = parser.parse_args()

    print(f"reference loop: {reference_loop():.2f} s")
    code = args.pythonpath.resolve() if args.pythonpath else REPO
    env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        tiny_prompts, tiny_run, _ = build_run_dir(root, 1)
        if not args.scan_only:
            runs = [measure(_generate(tiny_prompts, tiny_run), env) for _ in range(args.repeat)]
            startup, startup_cpu = min(r[0] for r in runs), min(r[3] for r in runs)
            where = subprocess.run(
                [sys.executable, "-c", "import aidsafe; print(aidsafe.__file__)"],
                env=env, capture_output=True, text=True, cwd=tempfile.gettempdir(),
            ).stdout.strip()  # fmt: skip
            print(f"start-up (1 finished sample): {startup:.2f} s, CPU {startup_cpu:.2f} s  [code: {where}]")
        for size in (int(s) for s in args.samples.split(",")):
            started = time.perf_counter()
            prompts, run_dir, size_bytes = build_run_dir(root, size)
            print(
                f"{size} samples: {size_bytes / 1e6:.0f} MB, {size_bytes / size / 1e3:.1f} KB a line "
                f"(built with stats in {time.perf_counter() - started:.0f} s)"
            )
            for _ in range(args.repeat):
                if args.scan_only:
                    cmd = [sys.executable, "-c", _SCAN, str(run_dir)]
                    proc_started = time.perf_counter()
                    out = subprocess.run(
                        cmd, env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()
                    ).stdout.split()
                    wall = time.perf_counter() - proc_started
                    _, rss, _, _ = measure(cmd, env)
                    print(
                        f"  index {out[0]} s (prefix scan without samples.ids.json {out[2]} s), "
                        f"stats update {out[1]} s, process {wall:.2f} s, peak RSS {rss:.0f} MB"
                    )
                else:
                    wall, rss, err, cpu = measure(_generate(prompts, run_dir), env)
                    print(
                        f"  rerun: {wall:.2f} s, {wall - startup:.2f} s beyond start-up; CPU {cpu:.2f} s, "
                        f"{cpu - startup_cpu:.2f} s beyond start-up; peak RSS {rss:.0f} MB; "
                        f"{err.strip().splitlines()[-1] if err.strip() else ''}"
                    )
            for path in run_dir.iterdir():  # free the disk before the next size
                path.unlink()


if __name__ == "__main__":
    main()
