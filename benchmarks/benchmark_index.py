"""The export's one-time cost: building the benchmark index (embedding every benchmark prompt).

    python benchmarks/benchmark_index.py --benchmarks-dir DIR     # or AIDSAFE_SHARED_BENCHMARKS

Loads the default benchmark sets an export would (the GuardReasoner files under DIR; the Hub sets
when online), then builds their embeddings through the export's own code path
(`aidsafe.export.filters._benchmark_vectors`, the bundled MiniLM) into a fresh cache folder: the
first build encodes everything and writes the cache chunk by chunk, the second reads it back.
Prints the machine's reference loop (benchmarks/machine.py) and the load average before and after,
so a figure from a shared machine says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import reference_loop_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks-dir", default=os.environ.get("AIDSAFE_SHARED_BENCHMARKS"))
    args = parser.parse_args()
    if not args.benchmarks_dir:
        parser.error("--benchmarks-dir DIR (or AIDSAFE_SHARED_BENCHMARKS): a folder with guardreasoner/0_*.json")

    from aidsafe.export.benchsets import load_benchmark_sets
    from aidsafe.export.filters import _benchmark_vectors, shared_encoder

    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()}")
    print(f"reference loop: {reference_loop_ms():.0f} ms (before)")
    sets, missing = load_benchmark_sets(Path(args.benchmarks_dir))
    prompts = sum(len(s.prompts) for s in sets)
    print(f"{len(sets)} sets loaded ({prompts:,} distinct prompts), {len(missing)} not loaded")
    started = time.perf_counter()
    encode = shared_encoder("all-MiniLM-L6-v2", None)
    encode(["warm up"])
    print(f"model load: {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as cache:
        for label in ("first build (encode, write the cache)", "second build (read the cache)"):
            started = time.perf_counter()
            vectors = _benchmark_vectors(sets, encode, Path(cache))
            elapsed = time.perf_counter() - started
            print(f"{label}: {elapsed:.1f} s ({prompts / elapsed:,.0f} prompts/s), shape {vectors.shape}")
    print(f"reference loop: {reference_loop_ms():.0f} ms (after); load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
