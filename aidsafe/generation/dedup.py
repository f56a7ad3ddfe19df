"""Embedding-based removal of near-duplicate thoughts (our addition to AIDSAFE, before the refiner).

The model loads once per run, in a worker thread, the first time it is needed; `torch` and
`sentence_transformers` are imported only then, so a run's first teacher call is not delayed.

Encoding is batched across samples, off the event loop thread: a sample's thoughts join a queue,
and one drainer task encodes everything queued (up to `MAX_BATCH_TEXTS`) in ONE `model.encode` in
a worker thread, then hands each sample its own rows. There is no waiting timer: a batch is what
queued while the previous one ran, so a lone sample is encoded at once. Similarity is computed
per sample, so the removals are those of encoding each sample alone.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aidsafe.embeddings import load_embedder
from aidsafe.errors import RunSetupError

__all__ = ["MAX_BATCH_TEXTS", "ThoughtDeduplicator", "near_duplicates"]

# Texts per encode: enough to spread MiniLM's per-call overhead over many samples (measured in
# docs/performance.md, **Dedup.**), few enough that one batch does not hold the worker for long.
MAX_BATCH_TEXTS = 256


class ThoughtDeduplicator:
    """Drops each thought whose cosine similarity to an earlier kept thought reaches `threshold`."""

    def __init__(self, model_name: str, threshold: float, device: str | None = None) -> None:
        self.model_name = model_name
        self.threshold = threshold
        self.device = device
        self._model: Any = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()  # warm_up's thread and the first encode's may race
        self._queue: list[tuple[list[str], asyncio.Future]] = []  # touched only on the loop thread
        self._drainer: asyncio.Task | None = None

    def _model_loaded(self) -> Any:
        with self._load_lock:
            if self._load_error is not None:  # tried once: a retry per batch would only repeat it, slowly
                raise RunSetupError(self._load_error)
            if self._model is None:
                try:
                    self._model = load_embedder(self.model_name, self.device)
                except Exception as exc:  # a bad name, path or device: no sample can be deduplicated
                    where = f" on device {self.device!r}" if self.device else ""
                    self._load_error = (
                        f"dedup.model: cannot load {self.model_name!r}{where} ({type(exc).__name__}: {exc})"
                    )
                    raise RunSetupError(self._load_error) from None
            return self._model

    def warm_up(self) -> None:
        """Load the model now (call from a thread at run start to hide the load time)."""
        self._model_loaded()

    def _encode(self, texts: list[str]) -> Any:
        return self._model_loaded().encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    async def __call__(self, thoughts: list[dict]) -> list[dict]:
        if len(thoughts) < 2:
            return []
        vectors = await self._embed([t["text"] for t in thoughts])
        return near_duplicates(thoughts, vectors @ vectors.T, self.threshold)

    async def _embed(self, texts: list[str]) -> Any:
        rows = asyncio.get_running_loop().create_future()
        self._queue.append((texts, rows))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        # A cancelled waiter cancels only its own future; the drainer skips it.
        return await rows

    async def _drain(self) -> None:
        """Encode queued requests batch by batch until none is left (one encode at a time:
        concurrent encodes on one model only contend for the CPU)."""
        batch: list[tuple[list[str], asyncio.Future]] = []
        try:
            while self._queue:
                batch = self._next_batch()
                if not batch:
                    continue
                try:
                    vectors = await asyncio.to_thread(self._encode, [text for texts, _ in batch for text in texts])
                except Exception as exc:  # a load failure (RunSetupError) reaches every waiter
                    for _, rows in batch:
                        if not rows.done():
                            rows.set_exception(exc)
                    continue
                offset = 0
                for texts, rows in batch:
                    if not rows.done():
                        rows.set_result(vectors[offset : offset + len(texts)])
                    offset += len(texts)
                batch = []
        finally:
            self._drainer = None
            # Only when the drainer itself is cancelled (its loop is closing): no waiter hangs.
            for _, rows in batch + self._queue:
                rows.cancel()
            self._queue.clear()

    def _next_batch(self) -> list[tuple[list[str], asyncio.Future]]:
        """The oldest queued requests, up to MAX_BATCH_TEXTS texts (always at least one);
        requests whose waiter is gone are dropped unencoded."""
        batch, size = [], 0
        while self._queue and (not batch or size + len(self._queue[0][0]) <= MAX_BATCH_TEXTS):
            texts, rows = self._queue.pop(0)
            if not rows.done():
                batch.append((texts, rows))
                size += len(texts)
        return batch


def near_duplicates(thoughts: list[dict], similarity: Any, threshold: float) -> list[dict]:
    """Greedy in order: a thought is removed when it is too close to one already kept."""
    kept: list[int] = []
    removed = []
    for i, thought in enumerate(thoughts):
        twin = max(kept, key=lambda k: similarity[i][k], default=None)
        if twin is not None and similarity[i][twin] >= threshold:
            removed.append(
                {
                    **thought,
                    "stage": "dedup",
                    "reason": "near_duplicate",
                    "duplicate_of": thoughts[twin]["id"],
                    "similarity": round(float(similarity[i][twin]), 4),
                }
            )
        else:
            kept.append(i)
    return removed
