"""This folder's fixtures: the shared ones from ``tests.support.lint_env``."""

from tests.support.lint_env import (  # noqa: F401
    FAKES_DIR,
    REAL_BICEP,
    Compiler,
    baselines,
    compiler,
    fake_bicep_on_path,
    no_compiler,
    quickstarts,
)
from tests.support.workflow_env import dev_env, resource_group, task_queue  # noqa: F401
