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


# How long the interpreter may take to exit once the last test has run. Everything a test starts is stopped by then;
# a thread still blocked (a worker thread waiting on an event nobody sets, say) would otherwise keep pytest alive
# after its summary until CI's own limit. Past this, every thread's stack is printed and the run exits non-zero.
EXIT_GRACE_SECONDS = 120


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import threading

    lingering = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if lingering:
        names = ", ".join(sorted(t.name for t in lingering))
        print(f"\nthreads still running after the last test (the interpreter waits for them at exit): {names}")


def pytest_unconfigure(config: pytest.Config) -> None:
    import faulthandler
    import sys

    faulthandler.dump_traceback_later(EXIT_GRACE_SECONDS, exit=True, file=sys.__stderr__)
