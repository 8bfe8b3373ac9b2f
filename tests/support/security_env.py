"""Fixtures of the security tests: the workflow tests' real dev server and per-test names, and the local ARM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_arm.testing import FAST, LocalArm, running_local_arm
from tests.support.workflow_env import dev_env, resource_group, task_queue

__all__ = ["dev_env", "local_arm", "resource_group", "task_queue"]


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm"), **FAST)
