"""This folder's fixtures: the shared ones from ``tests.support.security_env``."""

from tests.support.security_env import (  # noqa: F401
    local_arm,
)
from tests.support.workflow_env import dev_env, resource_group, task_queue  # noqa: F401
