"""Corpus filters applied at export: duplicate prompts and benchmark contamination.

Every rule looks at the user prompt of a sample and decides by sample id, once per export, so the
same samples leave every format (config). In this order:

1. `duplicate`: the normalised prompt (Unicode NFKC, casefolded, whitespace collapsed) hashes
   like an earlier one; the first in run order (samples.jsonl) stays.
2. `contaminated`: a word 13-gram of the prompt occurs in a benchmark prompt (STAR-1's rule;
   a prompt or benchmark prompt shorter than 13 words counts as one n-gram, so a short benchmark
   prompt copied verbatim is still caught), else its embedding's cosine similarity to a
   benchmark prompt reaches `contamination_threshold` (paraphrases).
3. `near_duplicate`: its embedding's cosine similarity to an earlier kept prompt reaches
   `near_dup_threshold`.

Embeddings are the bundled MiniLM's (the loader generation's thought dedup uses), unit-normalised;
`aidsafe.export.vector_index.nearest` answers exactly for small sets and with an HNSW index for
large ones. Benchmark embeddings can be cached on disk (`cache_dir`): the benchmark sets do not
change between exports, and encoding them costs minutes on a CPU, so the cache is written chunk
by chunk and an interrupted first export keeps what it encoded.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.export.benchsets import BenchmarkSet, load_benchmark_sets

__all__ = [
    "CACHE_CHUNK",
    "FilterReport",
    "FilterSettings",
    "filter_corpus",
    "filter_lines",
    "filters_section",
    "normalise_prompt",
    "shared_encoder",
    "word_ngrams",
]

Encoder = Callable[[list[str]], Any]  # texts -> unit-normalised float32 array (rows, dim)
Progress = Callable[[int, int], None]  # (benchmark prompts embedded or read from the cache, all of them)
NEIGHBOURS = 16  # earlier rows looked at per prompt; a prompt with more near twins is dropped anyway
# Benchmark prompts per cache file: about 7 s of MiniLM on a 2-core CPU (docs/performance.md),
# so Ctrl-C loses at most that.
CACHE_CHUNK = 256
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class FilterSettings:
    dedup: bool = True
    near_dup_threshold: float = 0.95
    decontaminate: bool = True
    contamination_threshold: float = 0.9
    ngram: int = 13
    decontaminate_against: tuple[str, ...] = ()  # files or Hub ids, in addition to the defaults
    benchmarks_dir: Path | None = None  # holds guardreasoner/0_*.json (the shared benchmarks layout)
    model: str = "all-MiniLM-L6-v2"
    device: str | None = None
    cache_dir: Path | None = None  # benchmark embeddings; None: encode every time

    def check(self) -> None:
        for key, value in (("--near-dup-threshold", self.near_dup_threshold),
                           ("--contamination-threshold", self.contamination_threshold)):  # fmt: skip
            if not 0.0 < value <= 1.0:
                raise AidsafeError(f"{key} {value}: expected a cosine similarity > 0 and <= 1")
        if self.ngram < 1:
            raise AidsafeError(f"--ngram {self.ngram}: expected a word count >= 1")

    def decides(self) -> dict[str, Any]:
        """The settings that decide which rows go (export.json compares them across configs)."""
        return {
            "dedup": self.dedup,
            "near_dup_threshold": self.near_dup_threshold if self.dedup else None,
            "decontaminate": self.decontaminate,
            "contamination_threshold": self.contamination_threshold if self.decontaminate else None,
            "ngram": self.ngram if self.decontaminate else None,
            "decontaminate_against": list(self.decontaminate_against) if self.decontaminate else [],
            "model": self.model if (self.dedup or self.decontaminate) else None,
        }


@dataclass
class FilterReport:
    settings: dict[str, Any]
    rows: int  # samples looked at
    dropped: dict[str, dict[str, Any]] = field(default_factory=dict)  # sample id -> filtered.jsonl row
    checked: list[dict[str, Any]] = field(default_factory=list)  # benchmark sets: name, source, prompts
    unavailable: list[str] = field(default_factory=list)  # default sets not loaded: "name (why)"

    @property
    def counts(self) -> dict[str, int]:
        counts = {"duplicate": 0, "near_duplicate": 0, "contaminated": 0}
        for row in self.dropped.values():
            counts[row["reason"]] += 1
        return counts

    def contaminated_by_benchmark(self) -> dict[str, int]:
        by: dict[str, int] = {}
        for row in self.dropped.values():
            if row["reason"] == "contaminated":
                by[row["benchmark"]] = by.get(row["benchmark"], 0) + 1
        return dict(sorted(by.items()))  # by name: the card and export.json do not depend on run order

    def summary(self) -> dict[str, Any]:
        """What export.json, the export's result and the card carry (the rows are in filtered.jsonl)."""
        return {
            "settings": self.settings,
            "rows": self.rows,
            "kept": self.rows - len(self.dropped),
            "counts": self.counts,
            "contaminated_by_benchmark": self.contaminated_by_benchmark(),
            "checked": self.checked,
            "unavailable": self.unavailable,
        }


def normalise_prompt(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def word_ngrams(text: str, n: int) -> list[str]:
    """The word n-grams of the normalised text; one gram of all its words when it has fewer than n."""
    words = _WORD.findall(normalise_prompt(text))
    if len(words) < n:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


@lru_cache(maxsize=2)
def shared_encoder(model: str, device: str | None) -> Encoder:
    """One loaded model per process (loading MiniLM takes seconds to tens of seconds on a CPU)."""
    from aidsafe.embeddings import load_embedder

    try:
        embedder = load_embedder(model, device)
    except Exception as exc:  # a bad name, path or device: nothing can be filtered by embedding
        raise AidsafeError(f"filters: cannot load embedding model {model!r} ({type(exc).__name__}: {exc})") from None

    def encode(texts: list[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, embedder.get_embedding_dimension()), dtype=np.float32)
        return embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)

    encode.model_name = model  # type: ignore[attr-defined]  # part of the benchmark cache key
    return encode


def filter_corpus(
    samples: Sequence[tuple[str, str]],
    settings: FilterSettings,
    encode: Encoder | None = None,
    benchmark_sets: list[BenchmarkSet] | None = None,
    progress: Progress | None = None,
) -> FilterReport:
    """Which of `samples` ((id, prompt) in run order) to drop, and why. `encode` defaults to the
    settings' model; `benchmark_sets` to the defaults plus `decontaminate_against`; `progress`
    hears (prompts done, prompts in all) as the benchmark index is built, chunk by chunk."""
    settings.check()
    report = FilterReport(settings.decides(), len(samples))
    if not (settings.dedup or settings.decontaminate):
        return report
    if settings.decontaminate and benchmark_sets is None:
        benchmark_sets, report.unavailable = load_benchmark_sets(
            settings.benchmarks_dir, settings.decontaminate_against
        )
    benchmark_sets = benchmark_sets if settings.decontaminate else []
    report.checked = [{"name": s.name, "source": s.source, "prompts": len(s.prompts)} for s in benchmark_sets]

    first_by_hash: dict[str, str] = {}
    unique: list[int] = []  # positions of the first of each normalised prompt
    for position, (sample_id, prompt) in enumerate(samples):
        key = hashlib.sha256(normalise_prompt(prompt).encode("utf-8", "surrogatepass")).hexdigest()
        if settings.dedup and key in first_by_hash:
            report.dropped[sample_id] = _row(sample_id, prompt, "duplicate", duplicate_of=first_by_hash[key])
        else:
            first_by_hash.setdefault(key, sample_id)
            unique.append(position)
    if not unique or not (settings.dedup or benchmark_sets):
        return report  # nothing left that needs an embedding (no benchmark loaded, dedup off)
    encode = encode or shared_encoder(settings.model, settings.device)
    vectors = encode([samples[p][1] for p in unique])
    survivors = list(range(len(unique)))  # indices into `unique` / `vectors`
    if benchmark_sets:
        hits = _contamination(samples, unique, vectors, benchmark_sets, settings, encode, progress)
        for i, hit in hits.items():
            sample_id, prompt = samples[unique[i]]
            report.dropped[sample_id] = _row(sample_id, prompt, "contaminated", **hit)
        survivors = [i for i in survivors if i not in hits]
    if settings.dedup and len(survivors) > 1:
        for i, (twin, similarity) in _near_duplicates(vectors[survivors], settings.near_dup_threshold).items():
            sample_id, prompt = samples[unique[survivors[i]]]
            first_id = samples[unique[survivors[twin]]][0]
            report.dropped[sample_id] = _row(
                sample_id, prompt, "near_duplicate", duplicate_of=first_id, similarity=similarity
            )
    return report


def _row(sample_id: str, prompt: str, reason: str, **details: Any) -> dict[str, Any]:
    return {"id": sample_id, "prompt": prompt, "reason": reason, **details}


def _near_duplicates(vectors: Any, threshold: float) -> dict[int, tuple[int, float]]:
    """Greedy in order: row i goes when an earlier kept row is at least `threshold` similar."""
    from aidsafe.export.vector_index import nearest

    indices, similarities = nearest(vectors, vectors, min(NEIGHBOURS, len(vectors)))
    kept = [True] * len(vectors)
    found: dict[int, tuple[int, float]] = {}
    for i in range(len(vectors)):
        for j, similarity in zip(indices[i], similarities[i], strict=True):
            if similarity < threshold:
                break  # best first: nothing further can reach the threshold
            if 0 <= j < i and kept[j]:
                kept[i] = False
                found[i] = (int(j), round(float(similarity), 4))
                break
    return found


def _contamination(
    samples: Sequence[tuple[str, str]],
    unique: list[int],
    vectors: Any,
    sets: list[BenchmarkSet],
    settings: FilterSettings,
    encode: Encoder,
    progress: Progress | None = None,
) -> dict[int, dict[str, Any]]:
    """index into `unique` -> how it matched a benchmark: an n-gram first, else an embedding."""
    import numpy as np

    from aidsafe.export.vector_index import nearest

    owner: dict[str, int] = {}  # n-gram -> the first set holding it
    for number, benchmark in enumerate(sets):
        for prompt in benchmark.prompts:
            for gram in word_ngrams(prompt, settings.ngram):
                owner.setdefault(gram, number)
    hits: dict[int, dict[str, Any]] = {}
    for i, position in enumerate(unique):
        gram = next((g for g in word_ngrams(samples[position][1], settings.ngram) if g in owner), None)
        if gram is not None:
            hits[i] = {"benchmark": sets[owner[gram]].name, "match": "ngram", "ngram": gram}
    texts = [p for s in sets for p in s.prompts]
    names = [s.name for s in sets for _ in s.prompts]
    if not texts:
        return hits
    base = _benchmark_vectors(sets, encode, settings.cache_dir, progress)
    rest = [i for i in range(len(unique)) if i not in hits]
    if rest:
        indices, similarities = nearest(base, vectors[np.asarray(rest)], 1)
        for i, j, similarity in zip(rest, indices[:, 0], similarities[:, 0], strict=True):
            if similarity >= settings.contamination_threshold:
                hits[i] = {
                    "benchmark": names[j],
                    "match": "embedding",
                    "similarity": round(float(similarity), 4),
                    "benchmark_prompt": texts[j],
                }
    return hits


def _benchmark_vectors(
    sets: list[BenchmarkSet], encode: Encoder, cache_dir: Path | None, progress: Progress | None = None
) -> Any:
    """The embeddings of every set's prompts, in order. With `cache_dir`, each set is encoded in
    chunks of `CACHE_CHUNK` prompts and every chunk is saved as it finishes (atomically, under a
    folder keyed by the model and the set's prompts): an interrupted build resumes at the first
    missing chunk, and a set added later does not re-encode the others."""
    import numpy as np

    model = getattr(encode, "model_name", repr(encode))
    chunks = []  # (prompts, cache file or None)
    orders = []  # per set: its prompts' positions, longest first
    for benchmark in sets:
        # Longest first, as sentence-transformers orders one call's texts: chunks of like lengths
        # pad as little as one call over the whole set would, and the time left is not underestimated.
        order = sorted(range(len(benchmark.prompts)), key=lambda i: -len(benchmark.prompts[i]))
        texts = [benchmark.prompts[i] for i in order]
        orders.append(order)
        folder = _set_cache(Path(cache_dir), model, texts) if cache_dir is not None else None
        for start in range(0, len(texts), CACHE_CHUNK):
            path = folder / f"{start // CACHE_CHUNK:05d}.npy" if folder is not None else None
            chunks.append((texts[start : start + CACHE_CHUNK], path))
    if progress is not None and any(path is None or not path.is_file() for _, path in chunks):
        total = sum(len(chunk) for chunk, _ in chunks)
        progress(0, total)  # something to encode: say so before the first chunk's seconds
    else:
        progress = None  # all cached: nothing worth a progress bar
    done = 0
    parts = []
    for chunk, path in chunks:
        vectors = _cached_chunk(path, len(chunk))
        if vectors is None:
            vectors = np.asarray(encode(chunk), dtype=np.float32)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(path.stem + ".partial.npy")
                np.save(partial, vectors)
                partial.replace(path)  # never a half-written chunk under the real name
        parts.append(vectors)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    if not parts:
        return encode([])
    by_length = np.concatenate(parts)
    positions, offset = [], 0
    for order in orders:
        positions.extend(offset + i for i in order)
        offset += len(order)
    vectors = np.empty_like(by_length)
    vectors[positions] = by_length  # back to the sets' own order
    return vectors


def _set_cache(cache_dir: Path, model: str, texts: list[str]) -> Path:
    digest = hashlib.sha256(model.encode() + b"\0" + str(CACHE_CHUNK).encode() + b"\0")
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return cache_dir / "benchmark-index" / digest.hexdigest()[:24]


def _cached_chunk(path: Path | None, rows: int) -> Any:
    import numpy as np

    if path is None or not path.is_file():
        return None
    try:
        vectors = np.load(path)
    except (OSError, ValueError):  # a chunk from a crashed disk or another version: encode it again
        return None
    return vectors if vectors.ndim == 2 and vectors.shape[0] == rows else None


def filters_section(summary: dict[str, Any]) -> str:
    """The card's `## Filters` section for an export's filter summary."""
    lines = filter_lines(summary)
    return "## Filters\n\n" + lines[0] + "\n\n" + "\n".join(lines[1:])


def filter_lines(summary: dict[str, Any]) -> list[str]:
    """What the filters did, a sentence and then one `- ` line per rule (the card and croissant.json say it)."""
    settings, counts = summary["settings"], summary["counts"]
    lines = [f"Applied at export to the {summary['rows']} samples of the run; {summary['kept']} kept. "
             "Each dropped sample is in `filtered.jsonl` with its reason; the same samples are "
             "left out of every config."]  # fmt: skip
    if settings["dedup"]:
        lines.append(
            f"- exact duplicate prompts (NFKC, casefolded, whitespace collapsed): {counts['duplicate']} dropped"
        )
        lines.append(
            f"- near-duplicate prompts (`{settings['model']}` embeddings, cosine >= "
            f"{settings['near_dup_threshold']}, the first kept): {counts['near_duplicate']} dropped"
        )
    else:
        lines.append("- duplicate prompts: not filtered (`--no-dedup`)")
    if settings["decontaminate"]:
        by = summary["contaminated_by_benchmark"]
        lines.append(
            f"- benchmark contamination (word {settings['ngram']}-gram overlap, or cosine >= "
            f"{settings['contamination_threshold']} to a benchmark prompt): {counts['contaminated']} dropped"
            + (" (" + ", ".join(f"{k}: {v}" for k, v in by.items()) + ")" if by else "")
        )
        checked = ", ".join(f"{s['name']} ({s['prompts']} prompts)" for s in summary["checked"]) or "none"
        lines.append(f"- benchmark sets checked: {checked}")
        if summary["unavailable"]:
            names = ", ".join(entry.split(" (", 1)[0] for entry in summary["unavailable"])
            lines.append(f"- benchmark sets **not** checked (could not be loaded at export): {names}")
    else:
        lines.append("- benchmark contamination: not checked (`--no-decontaminate`)")
    return lines
