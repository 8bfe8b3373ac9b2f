"""LINTING: the lint gate (issue 5). The default linter is ``lint_gate`` (``activities/lint_gate.py``): the Bicep
toolchain for Bicep templates, our static checks for ARM JSON; it raises a LOGIC ``LinterError`` on errors, or on
warnings unless the request allows them. Tests may pass another ``Linter``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import activity

from contract.models import ActivityName, DeployRequest, LintReport, StageInput
from services.content_store import BlobStore

from .errors import classified
from .lint_gate import lint_gate


class LintFailed(Exception):
    code = "LinterError"


def passthrough_lint(store: BlobStore, request: DeployRequest, *, deployment_name: str = "") -> LintReport:
    """No linting at all (for tests that exercise other stages)."""
    return LintReport(linter="passthrough", warnings=[])


Linter = Callable[..., LintReport]


class LintActivities:
    def __init__(self, store: BlobStore, linter: Linter = lint_gate) -> None:
        self._store = store
        self._linter = linter

    @activity.defn(name=ActivityName.LINT_TEMPLATE)
    async def lint_template(self, inp: StageInput) -> LintReport:
        async with classified():
            # The compiler runs for seconds: off the event loop, so heartbeats and other activities go on.
            return await asyncio.to_thread(self._linter, self._store, inp.request, deployment_name=inp.deployment_name)
