"""Generation throughput of an older commit against this working tree, on one machine, in one run.

    python benchmarks/compare_commits.py --old 2d54486 --runs 3 --prompts 1024

Checks the old commit out into a temporary git worktree and runs each tree's own
`benchmarks/throughput.py` (the real CLI against the loopback server) alternately, old then new,
`--runs` times, so both see the same machine and the same noise. Prints every run, the medians,
and the machine's reference-loop speed (benchmarks/machine.py) before and after. The old tree runs
on this environment's packages: a commit that needs packages this one no longer installs (the
openai SDK and langchain-openai before 2026-12-01) needs them installed too.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import reference_loop_ms

_REPO = Path(__file__).resolve().parent.parent
_FIGURES = {
    "calls/s": re.compile(r"^calls/s\s+([\d.]+)", re.M),
    "efficiency": re.compile(r"^efficiency\s+([\d.]+)", re.M),
    "ms CPU/call": re.compile(r"^client CPU per call\s+([\d.]+)", re.M),
    "s to 1st call": re.compile(r"^time to first call\s+([\d.]+)", re.M),
}


def run_tree(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [
        sys.executable,
        str(tree / "benchmarks" / "throughput.py"),
        *("--prompts", str(args.prompts), "--concurrency", str(args.concurrency), "--latency", str(args.latency)),
    ]
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    output = subprocess.run(command, env=env, cwd=tree, check=True, capture_output=True, text=True).stdout
    return {name: float(pattern.search(output).group(1)) for name, pattern in _FIGURES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the commit to compare with (any git revision)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()

    print(f"reference loop before: {reference_loop_ms():.0f} ms (lower is faster)")
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(_REPO), "worktree", "add", "-q", "--detach", str(old_tree), args.old], check=True
        )
        try:
            for run in range(1, args.runs + 1):
                for label, tree in (("old", old_tree), ("new", _REPO)):
                    figures = run_tree(tree, args)
                    results[label].append(figures)
                    print(f"run {run} {label}: " + "  ".join(f"{k} {v:g}" for k, v in figures.items()), flush=True)
        finally:
            subprocess.run(["git", "-C", str(_REPO), "worktree", "remove", "--force", str(old_tree)], check=True)
    print(f"reference loop after:  {reference_loop_ms():.0f} ms")
    print(f"{args.prompts} prompts x {args.concurrency} in flight x {args.latency} s, median of {args.runs}:")
    print(f"{'':6}" + "".join(f"{name:>15}" for name in _FIGURES))
    for label, runs in results.items():
        print(f"{label:6}" + "".join(f"{statistics.median(r[name] for r in runs):>15.2f}" for name in _FIGURES))
    old_cpu = statistics.median(r["ms CPU/call"] for r in results["old"])
    new_cpu = statistics.median(r["ms CPU/call"] for r in results["new"])
    print(f"client CPU per call, new / old: {new_cpu / old_cpu:.2f}")


if __name__ == "__main__":
    main()
