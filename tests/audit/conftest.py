"""The audit tests reuse the workflow tests' dev server (with the search attributes registered) and the lint tests'
corpus fixture."""

from __future__ import annotations

from tests.lint.conftest import quickstarts
from tests.workflow.conftest import dev_env, resource_group, task_queue

__all__ = ["dev_env", "quickstarts", "resource_group", "task_queue"]
