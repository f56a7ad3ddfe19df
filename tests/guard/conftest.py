"""Locate the GuardReasoner benchmark files, read in place (never copied into the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_benchmarks


def shared_guardreasoner() -> Path:
    """guardreasoner/ of the shared benchmarks folder (tests.conftest.locate_shared_benchmarks)."""
    return shared_benchmarks() / "guardreasoner"


@pytest.fixture(scope="session")
def guardreasoner_dir() -> Path:
    path = shared_guardreasoner()
    if not path.is_dir():
        pytest.skip(f"GuardReasoner benchmark files not found at {path} (set AIDSAFE_SHARED_BENCHMARKS)")
    return path


@pytest.fixture(scope="session")
def predictions_dir(guardreasoner_dir: Path) -> Path:
    return guardreasoner_dir / "predictions"
