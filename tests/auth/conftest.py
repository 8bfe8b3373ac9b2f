from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import OidcAuthenticator, OidcSettings, SigningKeys
from harness.oidc_provider import OidcClient, OidcProvider, OidcUser
from tests.support.oidc import FakeClock


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc-tls")


@pytest.fixture
def idp(tls_dir: Path) -> Iterator[OidcProvider]:
    """The real local OpenID provider over HTTPS on loopback, stopped when the test ends (also when it fails)."""
    provider = OidcProvider(
        tls_dir,
        users=[
            OidcUser("alice", "alice-password", name="Alice", roles=("Deployments.Approve",), groups=("g-platform",))
        ],
        clients=[
            OidcClient("pipeline", secret="pipeline-secret", roles=("Deployments.Deploy",)),
            OidcClient("approval-page", redirect_uris=("http://127.0.0.1/callback",)),
        ],
    )
    with provider:
        yield provider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(idp: OidcProvider) -> OidcSettings:
    return OidcSettings(issuer=idp.issuer, audiences=(idp.audience,), tenant=idp.tenant, ca_file=idp.ca_file)


@pytest.fixture
def authenticator(settings: OidcSettings, clock: FakeClock) -> OidcAuthenticator:
    return OidcAuthenticator(settings, keys=SigningKeys(settings, clock=clock))
