"""An OpenID Connect issuer that cannot be reached is the service's trouble, not the caller's: a request whose token
cannot be checked is answered 503 issuer-unavailable with Retry-After, never 401 "invalid token". The real local
OpenID provider is started and then stopped; the app runs in-process (no Temporal needed: sign-in comes first)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.auth import OidcAuthenticator, OidcSettings
from api.role_map import parse_role_map
from harness.oidc_provider import OidcProvider

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_an_unreachable_issuer_is_a_503_not_a_401(tmp_path: Path) -> None:
    with OidcProvider(tmp_path) as idp:
        settings = OidcSettings(issuer=idp.issuer, audiences=(idp.audience,), tenant=idp.tenant, ca_file=idp.ca_file)
        token = idp.mint(subject="bo", roles=["Deployments.Read"])
    # The provider is gone before the service ever fetched its keys.
    roles = parse_role_map({"grants": [{"claim": "Deployments.Read", "roles": ["reader"], "scopes": ["*/*"]}]},
                           source="test")  # fmt: skip
    app = create_app(None, authenticator=OidcAuthenticator(settings), authorizer=roles)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answer = await http.get("/deployments/deploy-x", headers={"Authorization": f"Bearer {token}"})
        missing = await http.get("/deployments/deploy-x")
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "/problems/issuer-unavailable" and answer.headers["retry-after"] == "5"
    assert token not in answer.text
    assert missing.status_code == 401  # no token at all is still the caller's to fix
