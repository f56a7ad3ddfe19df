"""The evaluation benchmarks an export is decontaminated against, as lists of prompts.

Defaults: the GuardReasoner test sets (read in place from a benchmarks folder: `--benchmarks-dir`
or AIDSAFE_SHARED_BENCHMARKS, holding `guardreasoner/0_*.json`, the layout of the GuardReasoner
repository's `data/benchmark/`) and the Hub sets aidsafe's safety evaluation uses (XSTest,
StrongREJECT, BeaverTails test, WildChat). A default that cannot be loaded (offline, no benchmarks
folder) is reported, not fatal: the caller says how many in one short line (`unavailable_line`),
and export.json and the card name each. A set the user
asks for (`--decontaminate-against FILE_OR_HUB_ID`) must load, or the export stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.sources import looks_like_hub_id

__all__ = ["HUB_DEFAULTS", "BenchmarkSet", "guardreasoner_defaults", "load_benchmark_sets", "unavailable_line"]

# name -> `owner/name[:config]:split`; the prompts of the safety evaluation (AIDSAFE's table, docs/eval.md).
HUB_DEFAULTS: dict[str, str] = {
    "XSTest": "walledai/XSTest:test",
    "StrongREJECT": "walledai/StrongREJECT:train",
    "BeaverTails test": "PKU-Alignment/BeaverTails:30k_test",
    "WildChat": "allenai/WildChat-1M:train",
}


@dataclass(frozen=True)
class BenchmarkSet:
    name: str
    source: str  # the file or Hub id it was read from
    prompts: tuple[str, ...]  # distinct, in the benchmark's order


def guardreasoner_defaults() -> dict[str, str]:
    """name -> file name under guardreasoner/, one entry per file of the suite (WildGuardTest's
    file serves three tasks)."""
    from aidsafe.guard.suite import GUARDREASONER_SUITE

    return {b.folder: b.file for b in GUARDREASONER_SUITE if b.file}


def load_benchmark_sets(
    benchmarks_dir: Path | None, extra: Sequence[str] = (), defaults: bool = True
) -> tuple[list[BenchmarkSet], list[str]]:
    """(the sets loaded, the default sets that could not be, each as `name (why)`)."""
    loaded: list[BenchmarkSet] = []
    missing: list[str] = []
    if defaults:
        folder = Path(benchmarks_dir) / "guardreasoner" if benchmarks_dir else None
        for name, file in guardreasoner_defaults().items():
            if folder is None:
                missing.append(f"{name} (no benchmarks folder: --benchmarks-dir or AIDSAFE_SHARED_BENCHMARKS)")
            elif not (folder / file).is_file():
                missing.append(f"{name} ({folder / file} not found)")
            else:
                loaded.append(_from_file(name, folder / file))
        for name, ref in HUB_DEFAULTS.items():
            try:
                loaded.append(BenchmarkSet(name, ref, _distinct(_hub_prompts(ref))))
            except AidsafeError as exc:
                missing.append(f"{name} ({ref}: {_short(exc)})")
    for ref in extra:
        path = Path(ref).expanduser()
        if path.is_file():
            loaded.append(_from_file(path.stem, path))
        elif looks_like_hub_id(ref):
            loaded.append(BenchmarkSet(ref, ref, _distinct(_hub_prompts(ref))))
        else:
            raise AidsafeError(
                f"--decontaminate-against {ref}: file not found (and not a Hub id like owner/name:split)"
            )
    return loaded, missing


def unavailable_line(checked: int, unavailable: Sequence[str], manifest: Path | None = None) -> str:
    """One short warning for the default sets `load_benchmark_sets` could not load: how many, why
    (the causes counted, not repeated per set), and where the docs say to get them."""
    causes: dict[str, int] = {}
    for entry in unavailable:
        why = entry.split(" (", 1)[1][:-1] if " (" in entry else entry
        if why.startswith("no benchmarks folder"):
            why = "no benchmarks folder (--benchmarks-dir)"
        elif why.endswith(" not found"):
            why = "not in the benchmarks folder"
        else:  # a Hub set: `owner/name:split: why`
            ref = next((r for r in HUB_DEFAULTS.values() if why.startswith(r + ": ")), None)
            why = why[len(ref) + 2 :] if ref else why
        causes[why] = causes.get(why, 0) + 1
    reasons = "; ".join(f"{n}: {why}" for why, n in causes.items())
    names = f", named in {manifest}" if manifest is not None else ""
    return (
        f"warning: decontamination checked {checked} benchmark sets; {len(unavailable)} default sets not loaded "
        f'({reasons}){names}; to get them: docs/export.md, "Getting the benchmark sets"'
    )


def _from_file(name: str, path: Path) -> BenchmarkSet:
    # The guard package's reader knows GuardReasoner records (prompt inside `input`) and
    # JSON/JSONL rows with a `prompt` field; its errors already name the file and record.
    from aidsafe.guard.predict import load_benchmark

    return BenchmarkSet(name, str(path), _distinct(example.prompt for example in load_benchmark(str(path))))


def _hub_prompts(ref: str) -> list[str]:
    """`owner/name[:config]:split` (default split: test), as aidsafe.guard's benchmark reader
    spells Hub ids; WildChat keeps its prompts as the first user turn of `conversation`."""
    name, *rest = ref.split(":")
    config, split = (rest[0], rest[1]) if len(rest) == 2 else (None, rest[0] if rest else "test")
    import datasets

    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing split: the caller decides how bad
        if "OfflineModeIsEnabled" in str(exc):
            raise AidsafeError("offline: HF_HUB_OFFLINE is set") from None
        raise AidsafeError(f"cannot load ({type(exc).__name__}: {exc})") from None
    prompts = [_prompt_of(row) for row in dataset]
    if not any(prompts):
        raise AidsafeError(f"{ref}: no `prompt` column nor `conversation` user turns; columns {dataset.column_names}")
    return [p for p in prompts if p]


def _prompt_of(row: dict[str, Any]) -> str | None:
    if isinstance(row.get("prompt"), str):
        return row["prompt"]
    for turn in row.get("conversation") or ():
        if isinstance(turn, dict) and turn.get("role") == "user" and isinstance(turn.get("content"), str):
            return turn["content"]
    return None


def _distinct(prompts: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for p in prompts if p.strip()))


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
