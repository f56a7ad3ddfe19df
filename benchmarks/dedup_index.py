"""Near-duplicate search at corpus scale: the index's time against the encoding time it hides behind.

    python benchmarks/dedup_index.py --rows 20000                                   # a few minutes, 2 cores
    python benchmarks/dedup_index.py --rows 1000000 --threads 16 --backends faiss-ivf  # the full run

Encoding: the bundled MiniLM encodes `--encode-sample` real prompts (the GuardReasoner benchmark
prompts when AIDSAFE_SHARED_BENCHMARKS or ../shared/benchmarks has them, else synthetic sentences);
the per-row time is extrapolated to `--rows`. Search: `--rows` random unit vectors of dimension 384
(the embedding size), 1% of them replaced by near-duplicates (cosine about 0.95) of an earlier
row; each backend builds its index over all rows and asks for the 10 nearest of every row, as the
near-duplicate filter does. Recall is the share of planted duplicates whose original is among
those 10. Prints per backend: build s, search s, (build+search) / encode, recall.
Backends: faiss-ivf (what aidsafe uses above EXACT_MAX_ROWS), faiss-hnsw, usearch (HNSW), exact.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
K = 10


def sample_prompts(count: int) -> list[str]:
    root = Path(os.environ.get("AIDSAFE_SHARED_BENCHMARKS") or REPO.parent / "shared" / "benchmarks")
    texts: list[str] = []
    for path in sorted((root / "guardreasoner").glob("0_*.json")):
        for record in json.loads(path.read_text(encoding="utf-8")):
            texts.append(record["input"].split("\n", 1)[1].split("\n\nAI assistant:")[0])
    if not texts:
        words = "how do I make explain the safest way to a for my report about history of chemistry law".split()
        rng = np.random.default_rng(0)
        texts = [" ".join(rng.choice(words, size=int(rng.integers(8, 40)))) for _ in range(count)]
    return texts[:count]


def encode_seconds_per_row(count: int) -> float:
    from aidsafe.embeddings import load_embedder

    model = load_embedder("all-MiniLM-L6-v2", device="cpu")
    prompts = sample_prompts(count)
    model.encode(prompts[:32], normalize_embeddings=True)  # warm-up: first-call allocations
    started = time.perf_counter()
    model.encode(prompts, normalize_embeddings=True, batch_size=64)
    return (time.perf_counter() - started) / len(prompts)


def planted_vectors(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random unit vectors with 1% near-duplicates: (vectors, duplicate rows, their originals)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    copies = rng.choice(np.arange(rows // 2, rows), size=max(1, rows // 100), replace=False)
    originals = rng.integers(0, rows // 2, size=len(copies))
    noise = rng.standard_normal((len(copies), 384), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    vectors[copies] = 0.95 * vectors[originals] + (1 - 0.95**2) ** 0.5 * noise
    vectors[copies] /= np.linalg.norm(vectors[copies], axis=1, keepdims=True)
    return vectors, copies, originals


def run_faiss_ivf(vectors: np.ndarray, threads: int) -> tuple[float, float, np.ndarray]:
    import faiss

    from aidsafe.export.vector_index import inverted_file

    faiss.omp_set_num_threads(threads)
    started = time.perf_counter()
    index = inverted_file(vectors)
    built = time.perf_counter()
    _, found = index.search(vectors, K)
    return built - started, time.perf_counter() - built, found


def run_faiss_hnsw(vectors: np.ndarray, threads: int) -> tuple[float, float, np.ndarray]:
    import faiss

    faiss.omp_set_num_threads(threads)
    started = time.perf_counter()
    index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.add(vectors)
    built = time.perf_counter()
    index.hnsw.efSearch = 32
    _, found = index.search(vectors, K)
    return built - started, time.perf_counter() - built, found


def run_usearch(vectors: np.ndarray, threads: int) -> tuple[float, float, np.ndarray]:
    from usearch.index import Index

    started = time.perf_counter()
    index = Index(ndim=vectors.shape[1], metric="ip", dtype="f16", connectivity=16, expansion_add=40,
                  expansion_search=32)  # fmt: skip
    index.add(np.arange(len(vectors)), vectors, threads=threads)
    built = time.perf_counter()
    matches = index.search(vectors, K, threads=threads)
    return built - started, time.perf_counter() - built, np.asarray(matches.keys)


def run_exact(vectors: np.ndarray, threads: int) -> tuple[float, float, np.ndarray]:
    from aidsafe.export.vector_index import nearest

    started = time.perf_counter()
    found, _ = nearest(vectors, vectors, K, exact_max_rows=len(vectors))
    return 0.0, time.perf_counter() - started, found


BACKENDS = {"faiss-ivf": run_faiss_ivf, "faiss-hnsw": run_faiss_hnsw, "usearch": run_usearch, "exact": run_exact}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--encode-sample", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backends", default="faiss-ivf,usearch,faiss-hnsw,exact")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; rows {args.rows:,}")
    per_row = encode_seconds_per_row(args.encode_sample)
    encode = per_row * args.rows
    print(f"encode: {per_row * 1000:.1f} ms/row on {args.encode_sample} rows -> {encode:,.0f} s for {args.rows:,}")
    vectors, copies, originals = planted_vectors(args.rows)
    for name in args.backends.split(","):
        build, search, found = BACKENDS[name](vectors, args.threads)
        recall = float(np.mean([o in found[c] for c, o in zip(copies, originals, strict=True)]))
        print(
            f"{name:10s} build {build:8.1f} s  search {search:8.1f} s  "
            f"(build+search)/encode {(build + search) / encode:6.1%}  recall {recall:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
