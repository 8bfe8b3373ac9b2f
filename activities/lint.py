"""LINTING: the lint gate. The default linter is ``lint_gate`` (``activities/lint_gate.py``): the Bicep
toolchain for Bicep templates, our static checks for ARM JSON; it raises a LOGIC ``LinterError`` on errors, or on
warnings unless the request allows them. Tests may pass another ``Linter``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import activity

from contract.models import ActivityName, LintReport, StageInput
from services.content_store import BlobStore

from .errors import classified
from .lint_gate import lint_gate

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
