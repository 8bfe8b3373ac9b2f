"""The audit tests reuse the workflow tests' dev server (with the search attributes registered) and the lint tests'
corpus fixture."""

from __future__ import annotations

from tests.support.lint_env import quickstarts
from tests.support.workflow_env import dev_env, resource_group, task_queue

__all__ = ["dev_env", "quickstarts", "resource_group", "task_queue"]
