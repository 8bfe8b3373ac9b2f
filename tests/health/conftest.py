from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_arm.testing import local_arm_fixture
from tests.support.health_servers import Pki, ServerThread, make_pki, running_servers


@pytest.fixture
def servers() -> Iterator[ServerThread]:
    with running_servers() as s:
        yield s


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a test that takes tens of seconds (deselect with -m 'not slow')")


local_arm = local_arm_fixture()
