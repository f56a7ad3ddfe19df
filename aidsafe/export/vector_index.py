"""Nearest neighbours by cosine similarity: exact for small sets, a faiss IVF index for large ones.

Both export filters ask the same question, "which rows of `base` are closest to each query?":
near-duplicate prompts (the corpus against itself) and embedding decontamination (the corpus
against the benchmark prompts). Vectors are unit-normalised float32, so the inner product is the
cosine. Up to `EXACT_MAX_ROWS` rows of `base` the answer is exact (blocked matrix products); beyond,
exact search grows with rows squared and would cost more than encoding, so an inverted-file index
(faiss `IndexIVFFlat`: k-means cells, each query scans the `NPROBE` nearest cells) answers. The
search is one batch over all rows, which suits an inverted file: a graph index (HNSW, the only kind
usearch offers) spends its time building a graph that pays off over many later queries, and on
384-dimensional vectors that build costs more than our whole search. docs/performance.md has the
measurements behind the choice.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXACT_MAX_ROWS", "NPROBE", "cells_for", "inverted_file", "nearest"]

# Exact search costs base x 384 multiply-adds per query row: 7.7 M at 20,000, about 2% of what
# MiniLM spends encoding a prompt (docs/performance.md), so smaller sets stay exact.
EXACT_MAX_ROWS = 20_000
# Cells scanned per query. A near-duplicate (cosine >= 0.9) sits in the query's own cell or next
# to it; 16 of ~4,000 cells at 1M rows is 0.4% of the base per query.
NPROBE = 16
_TRAIN_PER_CELL = 64  # k-means sample: faiss wants >= 39 points per centroid
_KMEANS_ITERATIONS = 10  # faiss's default 25 makes training the largest cost; cells need not be optimal
_BLOCK = 2048  # query rows per matrix product: bounds memory at 2048 x base floats


def cells_for(rows: int) -> int:
    """The usual IVF rule of thumb: about 4 sqrt(rows) cells."""
    return max(1, int(4 * rows**0.5))


def nearest(base: Any, queries: Any, k: int, exact_max_rows: int = EXACT_MAX_ROWS) -> tuple[Any, Any]:
    """The `k` rows of `base` most similar to each query: (indices, similarities), both shaped
    (queries, k), best first; index -1 (similarity -inf) where fewer than k were found."""
    import numpy as np

    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if len(base) <= exact_max_rows:
        return _exact(base, queries, k)
    return _inverted_file(base, queries, k)


def _exact(base: Any, queries: Any, k: int) -> tuple[Any, Any]:
    import numpy as np

    found = min(k, len(base))
    indices = np.full((len(queries), k), -1, dtype=np.int64)
    similarities = np.full((len(queries), k), -np.inf, dtype=np.float32)
    if found == 0:
        return indices, similarities
    for start in range(0, len(queries), _BLOCK):
        sims = queries[start : start + _BLOCK] @ base.T
        top = np.argpartition(-sims, found - 1, axis=1)[:, :found]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        indices[start : start + len(sims), :found] = np.take_along_axis(top, order, axis=1)
        similarities[start : start + len(sims), :found] = np.take_along_axis(top_sims, order, axis=1)
    return indices, similarities


def inverted_file(base: Any) -> Any:
    """A trained and filled faiss IndexIVFFlat over `base` (the benchmark times this too)."""
    import faiss
    import numpy as np

    cells = cells_for(len(base))
    quantizer = faiss.IndexFlatIP(base.shape[1])
    index = faiss.IndexIVFFlat(quantizer, base.shape[1], cells, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = _KMEANS_ITERATIONS
    # A fixed sample (seeded) so the same corpus gets the same cells, hence the same result.
    sample = np.random.default_rng(0).choice(len(base), size=min(len(base), cells * _TRAIN_PER_CELL), replace=False)
    index.train(base[np.sort(sample)])
    index.add(base)
    index.nprobe = min(NPROBE, cells)
    return index


def _inverted_file(base: Any, queries: Any, k: int) -> tuple[Any, Any]:
    import numpy as np

    similarities, indices = inverted_file(base).search(queries, k)
    similarities[indices < 0] = -np.inf
    return indices.astype(np.int64), similarities
