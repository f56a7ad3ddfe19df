"""Push an export folder to the Hugging Face Hub: create the dataset repo, then one commit of the
files the export wrote (card, export.json, filtered.jsonl, every Parquet shard), with
huggingface_hub's own client. Nothing else in the folder is uploaded (a stray `.env`, notes, a
link to a file elsewhere), and a link among the export's own files is refused, never followed.

The token is passed in by the caller (the CLI reads it from HF_TOKEN) and lives only in the
`HfApi` object of this call: nothing here writes it to a file, a log line or the card.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from aidsafe.errors import AidsafeError

__all__ = ["HubTarget", "check_hub_target", "push_export"]


@dataclass(frozen=True)
class HubTarget:
    repo_id: str
    token: str | None = field(default=None, repr=False)  # never in a repr, so never in a traceback
    private: bool = False
    revision: str | None = None  # a branch, created if missing; None: main
    endpoint: str | None = None  # None: huggingface_hub's own (HF_ENDPOINT, else huggingface.co)
    token_env: str = "HF_TOKEN"  # where the token came from, for the error message only


def check_hub_target(target: HubTarget, license_: str | None) -> None:
    """Refuse a push that cannot or must not happen, before anything is written."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(target.repo_id)
        valid = target.repo_id.count("/") == 1
    except HFValidationError:
        valid = False
    if not valid:
        raise AidsafeError(f"--push-to-hub {target.repo_id}: expected a dataset id like owner/name")
    if not license_:
        raise AidsafeError(
            "--push-to-hub: no license given (--license, or `license:` in the recipe); "
            "a published dataset needs the owner's choice of license"
        )
    if not target.token:
        raise AidsafeError(f"--push-to-hub: {target.token_env} is not set; export a Hub token with write access")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:  # the push would be refused after the folder was written
        raise AidsafeError(
            "--push-to-hub: HF_HUB_OFFLINE is set, so the Hub cannot be reached; unset it to push, or export "
            "without --push-to-hub now and rerun with it later (nothing was written)"
        )


def push_export(folder: Path, files: list[Path], target: HubTarget) -> str:
    """Upload `files` (the export wrote them, in `folder`) as one commit; returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    files = sorted(files)
    for path in files:
        if not stat.S_ISREG(path.lstat().st_mode):  # a link: its target is not the export's to publish
            raise AidsafeError(f"{path}: not a regular file (a link?); the export pushes only files it wrote")
    operations = [CommitOperationAdd(p.relative_to(folder).as_posix(), str(p)) for p in files]
    api = HfApi(endpoint=target.endpoint, token=target.token)
    try:
        api.create_repo(target.repo_id, repo_type="dataset", private=target.private, exist_ok=True)
        if target.revision:
            api.create_branch(target.repo_id, repo_type="dataset", branch=target.revision, exist_ok=True)
        commit = api.create_commit(
            target.repo_id,
            operations,
            commit_message=f"aidsafe export ({len(files)} files)",
            repo_type="dataset",
            revision=target.revision,
        )
    except OfflineModeIsEnabled:
        raise AidsafeError("--push-to-hub: HF_HUB_OFFLINE is set; unset it to reach the Hub") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AidsafeError(f"--push-to-hub {target.repo_id}: the Hub refused (HTTP {status}): {first}") from None
    except (OSError, *_transport_errors()) as exc:  # no answer at all: DNS, refused, reset, TLS
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AidsafeError(
            f"--push-to-hub {target.repo_id}: the Hub at {target.endpoint or 'huggingface.co'} cannot be reached "
            f"({type(exc).__name__}: {first}); the export in {folder} is complete: rerun the same command to push it"
        ) from None
    return commit.commit_url


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP library's error for a request that got no answer: huggingface_hub 2.x sends its
    requests with httpx2, 1.x with httpx; whichever is installed."""
    import importlib

    found = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)
