"""This folder's fixtures: the shared ones from ``tests.support.workflow_env``."""

from tests.support.workflow_env import (  # noqa: F401
    dev_env,
    find_binary,
    resource_group,
    task_queue,
    time_skipping_env,
)
