"""LINTING: a pass-through for ARM JSON until the lint-gate issue (5) brings the Bicep linter.

``lint_template`` is the replaceable part: issue 5 swaps in a function with the same signature that runs the Bicep
toolchain and raises ``LintFailed`` (a LOGIC failure, code ``LinterError``) on errors, or on warnings unless the
request allows them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from orchestrator.blobstore import BlobStore
from orchestrator.models import ActivityName, LintReport, StageInput

from .errors import classified
from .parameters import load_template


class LintFailed(Exception):
    code = "LinterError"


def passthrough_lint(template: dict[str, Any], *, allow_warnings: bool) -> LintReport:
    """ARM JSON is not linted yet (the engine already validated it); report that honestly."""
    return LintReport(linter="passthrough", warnings=[])


Linter = Callable[..., LintReport]


class LintActivities:
    def __init__(self, store: BlobStore, linter: Linter = passthrough_lint) -> None:
        self._store = store
        self._linter = linter

    @activity.defn(name=ActivityName.LINT_TEMPLATE)
    async def lint_template(self, inp: StageInput) -> LintReport:
        async with classified():
            template = load_template(self._store, inp.request)
            return self._linter(template, allow_warnings=inp.request.allow_warnings)
