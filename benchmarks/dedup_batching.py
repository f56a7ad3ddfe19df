"""Thought dedup's embedding cost, one sample per encode against samples batched together.

    python benchmarks/dedup_batching.py --samples 64 --thoughts 3 --rounds 3

Runs the real `ThoughtDeduplicator` with the bundled MiniLM (on CPU unless `--device`): "per sample" awaits the
samples one after another (each encode holds one sample's thoughts, as before batching);
"batched" starts them all at once (`asyncio.gather`, as concurrent samples in a run do), so the
deduplicator merges them into encodes of up to `MAX_BATCH_TEXTS` texts. Prints the process CPU ms
(all threads: the event loop, the worker, torch's) and wall ms per thought, the best of `--rounds`
each, with the machine's reference loop (benchmarks/machine.py), and checks both give the same
removals. Each sample's thoughts vary in length and its last one is a near-copy of its first.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
from machine import reference_loop_ms

from aidsafe.generation.dedup import MAX_BATCH_TEXTS, ThoughtDeduplicator

WORDS = (
    "the user request is benign and can be answered helpfully but details that would enable harm to "
    "others must be left out under the policy so the answer should refuse politely and point to safe "
    "legal resources instead while keeping the explicit question in view"
).split()


def samples(count: int, thoughts: int, seed: int = 0) -> list[list[dict]]:
    rng = np.random.default_rng(seed)
    out = []
    for s in range(count):
        texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 30)))) + "." for _ in range(thoughts - 1)]
        texts.append(texts[0][:-1] + "!")  # the near-duplicate the refiner should not see
        out.append([{"id": f"s{s}t{k}", "text": text, "policies": []} for k, text in enumerate(texts)])
    return out


async def per_sample(dedup: ThoughtDeduplicator, batch: list[list[dict]]) -> list[list[dict]]:
    return [await dedup(sample) for sample in batch]


async def batched(dedup: ThoughtDeduplicator, batch: list[list[dict]]) -> list[list[dict]]:
    return list(await asyncio.gather(*(dedup(sample) for sample in batch)))


def measure(run, dedup: ThoughtDeduplicator, batch: list[list[dict]], rounds: int) -> tuple[float, float, list]:
    """Best CPU and best wall seconds over `rounds`, and the last round's removals."""
    best_cpu = best_wall = float("inf")
    removed: list = []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        removed = asyncio.run(run(dedup, batch))
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall, removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--thoughts", type=int, default=3, help="per sample (at least 2)")
    parser.add_argument("--rounds", type=int, default=3, help="each way; the best is printed")
    parser.add_argument("--device", default="cpu", help="where MiniLM runs (cpu, cuda, ...)")
    parser.add_argument("--torch-threads", type=int, help="torch's intra-op threads (default: torch's own)")
    args = parser.parse_args()

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(f"machine: reference loop {reference_loop_ms():.0f} ms (benchmarks/machine.py; lower is faster)")
    print(f"device {args.device}, torch {torch.__version__} with {torch.get_num_threads()} intra-op threads")
    dedup = ThoughtDeduplicator("all-MiniLM-L6-v2", 0.9, device=args.device)
    dedup.warm_up()
    batch = samples(args.samples, max(2, args.thoughts))
    asyncio.run(batched(dedup, batch[:8]))  # warm-up: first-call allocations
    count = sum(len(sample) for sample in batch)
    print(f"{args.samples} samples x {max(2, args.thoughts)} thoughts, batches of up to {MAX_BATCH_TEXTS} texts")
    results = {}
    for name, run in (("per sample", per_sample), ("batched", batched)):
        cpu, wall, removed = measure(run, dedup, batch, args.rounds)
        results[name] = [[(r["id"], r["duplicate_of"]) for r in sample] for sample in removed]
        print(f"{name:<11} CPU {1000 * cpu / count:7.2f} ms/thought   wall {1000 * wall / count:7.2f} ms/thought")
    assert results["per sample"] == results["batched"], "batched removals differ from per-sample ones"
    print(f"same removals both ways ({sum(map(len, results['batched']))} thoughts removed)")


if __name__ == "__main__":
    main()
