"""The benchmark index an export builds once per machine: written chunk by chunk (Ctrl-C keeps
what was encoded), shown as progress, and the sets it could not load said in one short line.

An embedder double (a vector per text from its hash) stands in for MiniLM: what is under test is
which texts get encoded and when, not the embeddings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from aidsafe.export import filters
from aidsafe.export.benchsets import HUB_DEFAULTS, BenchmarkSet, guardreasoner_defaults
from aidsafe.export.filters import FilterSettings, filter_corpus

REPO = Path(__file__).resolve().parents[2]
CACHE_CHUNK = getattr(filters, "CACHE_CHUNK", 256)  # (getattr: the tests run, and fail, on code without it)


def _vector(text: str) -> np.ndarray:
    """Random unit vectors by text, except that "subject" and "topic" embed alike (a paraphrase
    only the embedding sees)."""
    seed = int.from_bytes(hashlib.sha256(text.replace("subject", "topic").encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return vector / np.linalg.norm(vector)


class Embedder:
    """Records the calls that encode benchmark prompts; raises KeyboardInterrupt (Ctrl-C) instead
    of encoding past `interrupt_after` benchmark prompts in all."""

    model_name = "double"

    def __init__(self, benchmark: set[str], interrupt_after: int | None = None) -> None:
        self.benchmark = benchmark
        self.interrupt_after = interrupt_after
        self.chunks: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        if texts and texts[0] in self.benchmark:
            encoded = sum(len(chunk) for chunk in self.chunks)
            if self.interrupt_after is not None and encoded + len(texts) > self.interrupt_after:
                raise KeyboardInterrupt
            self.chunks.append(list(texts))
        return np.stack([_vector(t) for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def _sets() -> list[BenchmarkSet]:
    # 2.5 chunks and 1.2 chunks: both sets end in a short chunk.
    big = tuple(f"benchmark prompt number {i} about topic {i % 7}" for i in range(CACHE_CHUNK * 5 // 2))
    small = tuple(f"another set's prompt {i}" for i in range(CACHE_CHUNK * 6 // 5))
    return [BenchmarkSet("Big", "big.json", big), BenchmarkSet("Small", "small.json", small)]


SAMPLES = [("a", "How do I bake bread?"), ("b", "benchmark prompt number 600 about subject 5")]


def test_an_interrupted_benchmark_index_keeps_its_chunks_and_the_rerun_encodes_only_the_rest(tmp_path):
    sets = _sets()
    texts = [p for s in sets for p in s.prompts]
    settings = FilterSettings(cache_dir=tmp_path / "cache")
    # Ctrl-C once the first set (640 prompts, 3 chunks) is encoded, while the second set's first chunk is.
    first = Embedder(set(texts), interrupt_after=len(sets[0].prompts))
    with pytest.raises(KeyboardInterrupt):
        filter_corpus(SAMPLES, settings, first, sets)

    rerun = Embedder(set(texts))
    report = filter_corpus(SAMPLES, settings, rerun, sets)
    assert sorted(p for chunk in rerun.chunks for p in chunk) == sorted(sets[1].prompts)  # only what was left
    assert [len(chunk) for chunk in rerun.chunks] == [CACHE_CHUNK, len(sets[1].prompts) - CACHE_CHUNK]
    # Its twin sits in a chunk encoded before Ctrl-C: the vectors read back line up with their prompts.
    hit = report.dropped["b"]
    assert (hit["benchmark"], hit["match"]) == ("Big", "embedding"), hit
    assert hit["benchmark_prompt"] == "benchmark prompt number 600 about topic 5" and "a" not in report.dropped
    # The same answer as an export with no cache.
    assert filter_corpus(SAMPLES, FilterSettings(), Embedder(set(texts)), sets).dropped == report.dropped

    third = Embedder(set(texts))
    filter_corpus(SAMPLES, settings, third, sets)
    assert third.chunks == []  # all cached


def test_the_index_reports_progress_per_chunk_and_nothing_once_cached(tmp_path):
    sets = _sets()
    texts = [p for s in sets for p in s.prompts]
    settings = FilterSettings(cache_dir=tmp_path / "cache")
    seen: list[tuple[int, int]] = []
    filter_corpus(SAMPLES, settings, Embedder(set(texts)), sets, progress=lambda *done_total: seen.append(done_total))
    total = len(texts)  # 640 + 307
    assert seen == [(0, total), (256, total), (512, total), (640, total), (896, total), (947, total)]
    seen.clear()
    filter_corpus(SAMPLES, settings, Embedder(set(texts)), sets, progress=lambda *done_total: seen.append(done_total))
    assert seen == []  # nothing to encode, nothing to show


def test_a_damaged_chunk_is_encoded_again(tmp_path):
    sets = _sets()
    texts = [p for s in sets for p in s.prompts]
    settings = FilterSettings(cache_dir=tmp_path / "cache")
    filter_corpus(SAMPLES, settings, Embedder(set(texts)), sets)
    files = sorted((tmp_path / "cache" / "benchmark-index").rglob("*.npy"))
    assert len(files) == 5 and not list((tmp_path / "cache").rglob("*.partial.npy"))
    files[0].write_bytes(b"not numpy")
    again = Embedder(set(texts))
    filter_corpus(SAMPLES, settings, again, sets)
    assert len(again.chunks) == 1


@pytest.fixture
def fake_model(monkeypatch):
    """`aidsafe export`'s default embedder replaced by the double (no MiniLM load, instant)."""
    monkeypatch.setattr(filters, "shared_encoder", lambda model, device: Embedder(set()))


def _benchmarks(tmp_path: Path) -> Path:
    """A benchmarks folder with two GuardReasoner-shaped files (600 and 40 prompts)."""
    folder = tmp_path / "benchmarks" / "guardreasoner"
    folder.mkdir(parents=True)
    names = list(guardreasoner_defaults().items())[:2]
    for (_, file), count in zip(names, (600, 40), strict=True):
        records = [{"instruction": "classify", "input": f"Human user:\n{file} prompt {i}\n\nAI assistant:\nNone\n\n",
                    "output": "harmful"} for i in range(count)]  # fmt: skip
        (folder / file).write_text(json.dumps(records), encoding="utf-8")
    return tmp_path / "benchmarks"


def test_export_shows_the_index_progress_without_spamming_a_log_and_one_short_line_for_missing_sets(
    run_dir, tmp_path, run_cli, fake_model
):
    benchmarks = _benchmarks(tmp_path)
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "out", "--benchmarks-dir", benchmarks)
    assert code == 0, err
    lines = err.splitlines()
    # Not a terminal: the first line and the last, each a line of its own (the double is fast,
    # so no line in between: at most one every few seconds).
    assert [line for line in lines if "benchmark index" in line] == [
        "benchmark index, one time: 0/640",
        "benchmark index, one time: 640/640",
    ]
    warnings = [line for line in lines if "warning" in line]
    out = str(tmp_path / "out" / "export.json")
    assert len(warnings) == 1 and len(warnings[0].replace(out, "OUT")) < 250, warnings
    missing = len(guardreasoner_defaults()) - 2
    assert warnings[0].startswith(
        f"warning: decontamination checked 2 benchmark sets; {missing + len(HUB_DEFAULTS)} default sets not "
        f"loaded ({missing}: not in the benchmarks folder; {len(HUB_DEFAULTS)}: offline: HF_HUB_OFFLINE is set)"
    )
    assert 'docs/export.md, "Getting the benchmark sets"' in warnings[0]
    assert f", named in {out};" in warnings[0]
    unavailable = json.loads((tmp_path / "out" / "export.json").read_text())["filters"]["unavailable"]
    assert [entry.split(" (")[0] for entry in unavailable] == [*list(guardreasoner_defaults())[2:], *HUB_DEFAULTS]

    # The same export again: the index is cached, nothing to show.
    code, _, err = run_cli("export", run_dir, "-o", tmp_path / "out2", "--benchmarks-dir", benchmarks)
    assert code == 0, err
    assert "benchmark index" not in err


def test_the_export_docs_say_where_to_get_the_benchmark_sets_and_name_no_folder_users_lack():
    text = (REPO / "docs" / "export.md").read_text(encoding="utf-8")
    assert "\n## Getting the benchmark sets\n" in text
    section = text.split("\n## Getting the benchmark sets\n", 1)[1].split("\n## ", 1)[0]
    assert "github.com/yueliu1999/GuardReasoner" in section and "--benchmarks-dir" in section
    for absent in ("../shared", "shared/benchmarks", "methods.md"):
        assert absent not in text, absent
