"""Run the shards of one generation as Ray tasks on a cluster, then merge them.

    aidsafe launch ray aidsafe --input prompts.jsonl --output runs/big --shards 16 \\
        --address auto --base-url http://vllm-0:8000/v1 --model M --set ...

Each Ray task is one `aidsafe generate --shard K/N` into OUTPUT/shard-K-of-N (the same function
the CLI runs, with its resume, journal and stats); when all have ended, `merge` combines them into
OUTPUT/merged. A shard that failed is named and the others are kept: rerunning the same command
resumes only the unfinished work (finished shards skip their samples at once). Every task reads
the input itself, so the path must be visible on every node (a shared filesystem, or a Hub id).
Ray is an optional dependency (`pip install 'aidsafe[ray]'`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from aidsafe.errors import AidsafeError
from aidsafe.generation.runner import generate, merge

__all__ = ["launch_on_ray", "shard_dir"]


def shard_dir(output: Path, index: int, count: int) -> Path:
    return output / f"shard-{index}-of-{count}"


def launch_on_ray(
    request: Any, shards: int, env: Mapping[str, str], address: str | None = None, cpus_per_shard: float = 1.0
) -> dict[str, Any]:
    """`request`: a GenerateRequest whose `output` is the root folder. Returns the merged stats."""
    try:
        import ray
    except ImportError:
        raise AidsafeError("launch ray: Ray is not installed; pip install 'aidsafe[ray]'") from None

    if shards < 1:
        raise AidsafeError(f"--shards {shards}: expected at least 1")
    root = Path(request.output)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    try:
        run_shard = ray.remote(num_cpus=cpus_per_shard)(_run_shard)
        requests = [
            replace(request, output=shard_dir(root, k, shards), shard=f"{k}/{shards}", progress=False)
            for k in range(shards)
        ]
        futures = [run_shard.remote(generate, shard_request, dict(env)) for shard_request in requests]
        outcomes = ray.get(futures)
    finally:
        if started_here:
            ray.shutdown()
    failed = [(r.shard, error) for r, error in zip(requests, outcomes, strict=True) if error]
    if failed:
        listed = "; ".join(f"shard {shard}: {error}" for shard, error in failed)
        raise AidsafeError(f"launch ray: {len(failed)} of {shards} shards failed ({listed}); rerun to resume them")
    # merged/ is derived from the shards alone: rebuilt next to the old one, then swapped in.
    fresh = root / "merged.partial"
    shutil.rmtree(fresh, ignore_errors=True)
    _, stats = merge([r.output for r in requests], fresh)
    shutil.rmtree(root / "merged", ignore_errors=True)
    fresh.rename(root / "merged")
    return stats


def _run_shard(generate: Any, request: Any, env: dict[str, str]) -> str | None:
    """One shard on a Ray worker; its error as one line (AidsafeErrors are for people, so they
    travel as text and the driver reports them together)."""
    try:
        generate(request, env)
    except AidsafeError as exc:
        return str(exc).splitlines()[0]
    return None
