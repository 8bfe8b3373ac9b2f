"""Test helpers: a running local ARM with SDK clients wired to it. Reusable by every area's tests.

from local_arm.testing import local_arm_fixture
local_arm = local_arm_fixture()            # in a conftest.py: a function-scoped fixture named local_arm

def test_x(local_arm): local_arm.deployments_client().deployments.begin_create_or_update(...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .admin import AdminClient
from .config import LocalArmConfig
from .credential import AsyncLocalArmCredential, LocalArmCredential
from .server import LocalArmServer

SUBSCRIPTION_ID = "00000000-0000-0000-0000-0000000000aa"

# Fast settings for tests: 10 ms between polls (retry-after-ms only, which azure-core honours) and tiny provisioning
# times.
FAST = {"retry_after": 0, "retry_after_ms_only": True, "provisioning_seconds": 0.0}


@dataclass
class LocalArm:
    """A running server plus ready-made clients. Client kwargs default to a near-zero polling interval."""

    server: LocalArmServer
    subscription_id: str = SUBSCRIPTION_ID
    polling_interval: float = 0.01
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def ca_file(self) -> str:
        return str(self.server.ca_file)

    @property
    def admin(self) -> AdminClient:
        return AdminClient(self.endpoint, ca_file=self.ca_file)

    def client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.endpoint,
            "connection_verify": self.ca_file,
            "polling_interval": self.polling_interval,
        }
        kwargs.update(overrides)
        return kwargs

    def deployments_client(self, **overrides: Any) -> Any:
        from azure.mgmt.resource.deployments import DeploymentsMgmtClient

        client = DeploymentsMgmtClient(LocalArmCredential(), self.subscription_id, **self.client_kwargs(**overrides))
        self._closers.append(client.close)
        return client

    def resource_client(self, **overrides: Any) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        client = ResourceManagementClient(LocalArmCredential(), self.subscription_id, **self.client_kwargs(**overrides))
        self._closers.append(client.close)
        return client

    def async_client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Async clients run over azure-core's AsyncioRequestsTransport (no aiohttp needed)."""
        from azure.core.pipeline.transport import AsyncioRequestsTransport

        kwargs = self.client_kwargs(**overrides)
        kwargs.setdefault("transport", AsyncioRequestsTransport(connection_verify=self.ca_file))
        return kwargs

    def async_deployments_client(self, **overrides: Any) -> Any:
        """Close it yourself (``async with``)."""
        from azure.mgmt.resource.deployments.aio import DeploymentsMgmtClient

        return DeploymentsMgmtClient(
            AsyncLocalArmCredential(), self.subscription_id, **self.async_client_kwargs(**overrides)
        )

    def async_resource_client(self, **overrides: Any) -> Any:
        """Close it yourself (``async with``)."""
        from azure.mgmt.resource.resources.aio import ResourceManagementClient

        return ResourceManagementClient(
            AsyncLocalArmCredential(), self.subscription_id, **self.async_client_kwargs(**overrides)
        )

    def create_resource_group(self, name: str, location: str = "eastus") -> None:
        self.resource_client().resource_groups.create_or_update(name, {"location": location})

    def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):  # closing is best effort
                close()
        self._closers.clear()


def running_local_arm(state_dir: Path, **config: Any) -> Iterator[LocalArm]:
    """A generator for fixtures: starts a server (FAST settings unless overridden), yields, always stops it."""
    settings = {**FAST, **config}
    server = LocalArmServer(state_dir, port=0, config=LocalArmConfig.from_dict(settings))
    server.start()
    arm = LocalArm(server)
    try:
        yield arm
    finally:
        arm.close()
        server.stop()


def local_arm_fixture(*, scope: str = "function", name: str = "local_arm", **config: Any) -> Any:
    """Build a pytest fixture yielding a ``LocalArm``; assign it to a module-level name in a conftest.py."""
    import pytest

    def _fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
        yield from running_local_arm(tmp_path_factory.mktemp("local-arm"), **config)

    return pytest.fixture(scope=scope, name=name)(_fixture)  # type: ignore[call-overload]
