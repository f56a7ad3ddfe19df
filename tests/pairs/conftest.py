"""The tiny local model of tests/train, and the third-party warnings ignored where it trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import THIRD_PARTY_DEPRECATIONS
from tests.train.conftest import tiny_model  # noqa: F401 (a fixture)

_TRAINS = Path(__file__).resolve().parent / "test_pairs_train.py"


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).resolve() == _TRAINS:
            for ignored in THIRD_PARTY_DEPRECATIONS:
                item.add_marker(pytest.mark.filterwarnings(ignored))
