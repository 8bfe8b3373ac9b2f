"""Shared test fixtures.

Corpus and contract tests read ../shared (next to the checkout) or $ORCHESTRATOR_SHARED_DIR; on a user's fresh
clone without it they skip, saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.corpus import shared_dir

REPO_ROOT = Path(__file__).resolve().parent.parent


SHARED_MISSING = (
    "../shared (the public template corpus and ARM contract) is not next to this checkout; "
    "set ORCHESTRATOR_SHARED_DIR to run the corpus tests"
)


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip(SHARED_MISSING)
    return path
