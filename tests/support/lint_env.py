"""Fixtures for the lint gate's tests.

``compiler`` runs each test twice: against the recorded stand-in ``tests/fakes/bicep`` (a TEST DOUBLE replaying the
real compiler's outputs from ../shared/corpus), and against a real ``bicep`` when one is on PATH (skipped otherwise,
saying so). Both are reached the way production reaches them: through PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# The workflow acceptance tests share the workflow suite's Temporal dev server and per-test names.
from tests.support.workflow_env import dev_env, resource_group, task_queue  # noqa: F401

FAKES_DIR = Path(__file__).resolve().parent.parent / "fakes"
REAL_BICEP = shutil.which("bicep", path=os.environ.get("PATH", "").replace(str(FAKES_DIR), ""))


@dataclass(frozen=True)
class Compiler:
    kind: str  # "fake" | "real"

    @property
    def is_fake(self) -> bool:
        return self.kind == "fake"


@pytest.fixture
def fake_bicep_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only the stand-in can be found: tests/fakes first on PATH, az and BICEP_PATH out of reach."""
    # The stand-in's `#!/usr/bin/env python3` finds this interpreter's folder (stdlib only is needed).
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES_DIR), os.path.dirname(sys.executable)]))
    monkeypatch.delenv("BICEP_PATH", raising=False)
    monkeypatch.delenv("BICEP_FAKE_VERSION", raising=False)
    return FAKES_DIR / "bicep"


@pytest.fixture(params=["fake", "real"])
def compiler(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, shared: Path) -> Compiler:
    if request.param == "real":
        if REAL_BICEP is None:
            pytest.skip("no real `bicep` on PATH: the Bicep CLI is not installable from this machine's registries")
        monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(REAL_BICEP), os.environ.get("PATH", "")]))
        return Compiler("real")
    request.getfixturevalue("fake_bicep_on_path")
    return Compiler("fake")


@pytest.fixture
def no_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing on PATH can compile Bicep (an empty folder), and BICEP_PATH is unset."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("BICEP_PATH", raising=False)


@pytest.fixture
def baselines(shared: Path) -> Path:
    return shared / "corpus" / "bicep-baselines"


@pytest.fixture
def quickstarts(shared: Path) -> Path:
    return shared / "corpus" / "quickstarts"
