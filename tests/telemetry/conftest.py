"""The telemetry tests reuse the security tests' fixtures (real dev server, local ARM)."""

from __future__ import annotations

from tests.support.security_env import dev_env, local_arm, resource_group, task_queue

__all__ = ["dev_env", "local_arm", "resource_group", "task_queue"]
