"""This folder's fixtures: the shared ones from ``tests.support.cli_env``."""

from tests.support.cli_env import (  # noqa: F401
    EXAMPLE,
    REPO,
    CliRun,
    count_workflows,
    local_state,
    run_cli,
    temporal_dev,
)
