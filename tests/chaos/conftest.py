"""The workflow tests' servers (a real Temporal dev server, unique task queues and resource groups) for the chaos
tests that run a worker in-process."""

from tests.support.workflow_env import dev_env, resource_group, task_queue  # noqa: F401
