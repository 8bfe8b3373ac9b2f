"""This folder's fixtures: the shared ones from ``tests.support.security_env``."""

from tests.support.security_env import (  # noqa: F401
    local_arm,
)
