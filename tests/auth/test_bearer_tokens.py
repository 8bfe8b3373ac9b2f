"""Bearer tokens from the real local OpenID provider (HTTPS on loopback: discovery, JWKS, its own keys) checked by the
service's authenticator: what holds becomes a Principal, every refusal says what was wrong and never echoes the
token."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import pytest

from api.auth import (
    COLD_RETRY_SECONDS,
    AuthConfigError,
    IssuerUnavailableError,
    OidcAuthenticator,
    OidcSettings,
    SigningKeys,
)
from api.identity import AuthenticationError, Principal
from harness.oidc_provider import OidcProvider, forge_token
from tests.support.oidc import FakeClock


async def refused(authenticator: OidcAuthenticator, authorization: str | None) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        await authenticator.authenticate(authorization)
    detail = caught.value.detail
    if authorization:
        for part in authorization.removeprefix("Bearer ").split("."):
            if len(part) > 12:
                assert part not in detail, f"the message echoes the token: {detail}"
    return caught.value


async def test_a_valid_token_becomes_the_principal(idp: OidcProvider, authenticator: OidcAuthenticator) -> None:
    token = idp.mint(
        subject="pairwise-sub",
        oid="0f0f0f0f-1111-2222-3333-444444444444",
        name="alice@contoso.example",
        roles=["Deployments.Deploy"],
        groups=["7d1c1a5e-group"],
    )

    principal = await authenticator.authenticate(f"Bearer {token}")

    assert principal == Principal(
        subject="0f0f0f0f-1111-2222-3333-444444444444",
        name="alice@contoso.example",
        issuer=idp.issuer,
        groups=frozenset({"Deployments.Deploy", "7d1c1a5e-group"}),
        tenant=idp.tenant,
        verified=True,
    )
    assert idp.requests == {"discovery": 1, "jwks": 1}
    # The keys are cached: a second request fetches nothing.
    await authenticator.authenticate(f"bearer {idp.mint()}")
    assert idp.requests == {"discovery": 1, "jwks": 1}


async def test_subject_falls_back_to_sub_and_name_to_upn_or_email(
    idp: OidcProvider, authenticator: OidcAuthenticator
) -> None:
    by_upn = await authenticator.authenticate(
        "Bearer " + idp.mint(subject="svc-sub", drop=["oid"], extra={"upn": "bob@contoso.example"})
    )
    assert (by_upn.subject, by_upn.name, by_upn.groups) == ("svc-sub", "bob@contoso.example", frozenset())
    by_email = await authenticator.authenticate("Bearer " + idp.mint(extra={"email": "carol@contoso.example"}))
    assert by_email.name == "carol@contoso.example"
    anonymous = await authenticator.authenticate("Bearer " + idp.mint(subject="s", drop=["oid"]))
    assert anonymous.name == "s"


async def test_an_ec_signed_token_holds_too(idp: OidcProvider, settings: OidcSettings) -> None:
    key = idp.rotate("ES256")
    principal = await OidcAuthenticator(settings).authenticate("Bearer " + idp.mint(name="ec-user"))
    assert principal.name == "ec-user"
    assert key.kid in {k["kid"] for k in idp.jwks()["keys"]}


@pytest.mark.parametrize(
    ("authorization", "expected", "code"),
    [
        (None, "no bearer token", "invalid_request"),
        ("", "no bearer token", "invalid_request"),
        ("Basic YWxpY2U6cGFzc3dvcmQ=", "expected the Bearer scheme, got 'Basic'", "invalid_request"),
        ("Bearer", "'Bearer' without a token", "invalid_request"),
        ("Bearer not-a-jwt", "not a JWT", "invalid_token"),
        ("Bearer a.b.c.d", "not a JWT", "invalid_token"),
        ("Bearer %%%.%%%.%%%", "not a JWT", "invalid_token"),
        ("Bearer eyJub3QganNvbg.eyJ9.c2ln", "header is not base64url-encoded JSON", "invalid_token"),
        ("Bearer " + "a" * 20000 + ".b.c", "longer than", "invalid_token"),
        ("Bearer " + base64.urlsafe_b64encode(b"[" * 9000).decode() + ".e30.c2ln", "header is not", "invalid_token"),
        (
            "Bearer " + base64.urlsafe_b64encode(b"[1]").decode().rstrip("=") + ".e30.c2ln",
            "not a JSON object",
            "invalid_token",
        ),
    ],
)
async def test_missing_or_malformed_header_is_refused(
    idp: OidcProvider, authenticator: OidcAuthenticator, authorization: str | None, expected: str, code: str
) -> None:
    error = await refused(authenticator, authorization)
    assert expected in error.detail
    assert error.error == code
    assert idp.requests == {}  # refused before any key is fetched


async def test_expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway(
    idp: OidcProvider, authenticator: OidcAuthenticator
) -> None:
    expired = await refused(authenticator, "Bearer " + idp.mint(expires_in=-120))
    assert expired.detail.startswith("token expired at ")
    assert "leeway 60 s" in expired.detail

    early = await refused(
        authenticator, "Bearer " + idp.mint(not_before=time.time() + 600, issued_at=time.time(), expires_in=3600)
    )
    assert early.detail.startswith("token not valid yet: valid from ")

    # Within the leeway a clock a little ahead or behind is forgiven.
    await authenticator.authenticate("Bearer " + idp.mint(expires_in=-20))
    await authenticator.authenticate("Bearer " + idp.mint(not_before=time.time() + 20))


async def test_wrong_audience_issuer_and_tenant_are_refused(
    idp: OidcProvider, authenticator: OidcAuthenticator
) -> None:
    audience = await refused(authenticator, "Bearer " + idp.mint(audience="api://some-other-service"))
    assert audience.detail == (f"wrong audience: expected {idp.audience}, the token is for 'api://some-other-service'")
    # An ID token (audience: the client application) is not an access token for the API.
    assert "wrong audience" in (await refused(authenticator, "Bearer " + idp.mint(audience="approval-page"))).detail

    issuer = await refused(authenticator, "Bearer " + idp.mint(issuer="https://login.example/other/v2.0"))
    assert issuer.detail == (
        f"wrong issuer: expected {idp.issuer}, the token was issued by 'https://login.example/other/v2.0'"
    )

    tenant = await refused(authenticator, "Bearer " + idp.mint(tenant="99999999-0000-0000-0000-000000000000"))
    assert tenant.detail == (
        f"wrong tenant: expected {idp.tenant}, the token is from '99999999-0000-0000-0000-000000000000'"
    )
    no_tenant = await refused(authenticator, "Bearer " + idp.mint(drop=["tid"]))
    assert "the token has no 'tid' claim" in no_tenant.detail

    for claim in ("exp", "aud", "iss"):
        missing = await refused(authenticator, "Bearer " + idp.mint(drop=[claim]))
        assert missing.detail == f"malformed token: it has no {claim!r} claim"
    nobody = await refused(authenticator, "Bearer " + idp.mint(drop=["oid", "sub"]))
    assert "names no subject" in nobody.detail


async def test_several_audiences_and_no_tenant_check_when_unconfigured(idp: OidcProvider) -> None:
    settings = OidcSettings(
        issuer=idp.issuer, audiences=("api://bicep-orchestrator", "0000-client-id"), ca_file=idp.ca_file
    )
    authenticator = OidcAuthenticator(settings)
    await authenticator.authenticate("Bearer " + idp.mint(audience="0000-client-id", tenant="any-tenant"))
    await authenticator.authenticate("Bearer " + idp.mint(audience=["x", "api://bicep-orchestrator"]))


async def test_a_signature_by_a_key_the_issuer_does_not_publish_is_refused(
    idp: OidcProvider, authenticator: OidcAuthenticator
) -> None:
    forger = idp.unpublished_key()
    # The forger claims the issuer's key id: the signature does not verify with that key.
    claimed = await refused(authenticator, "Bearer " + idp.mint(key=forger, kid=idp.active_key.kid))
    assert claimed.detail == f"bad signature: the token was not signed by the issuer's key {idp.active_key.kid!r}"
    # The forger names its own key: the issuer does not publish it.
    own = await refused(authenticator, "Bearer " + idp.mint(key=forger))
    assert own.detail.startswith(f"unknown signing key {forger.kid!r}: the issuer {idp.issuer} does not publish it")
    # A token whose payload was changed after signing.
    header, payload, signature = idp.mint(subject="reader").split(".")
    tampered = idp.mint(subject="admin").split(".")[1]
    assert "bad signature" in (await refused(authenticator, f"Bearer {header}.{tampered}.{signature}")).detail
    assert payload != tampered


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_unsigned_tokens_are_refused(idp: OidcProvider, authenticator: OidcAuthenticator, alg: str) -> None:
    token = forge_token({"alg": alg, "typ": "JWT", "kid": idp.active_key.kid}, idp.claims_for(subject="mallory"))
    error = await refused(authenticator, f"Bearer {token}")
    assert error.detail.startswith("unsigned token (alg 'none') refused")


async def test_hs256_signed_with_the_public_key_is_refused(idp: OidcProvider, authenticator: OidcAuthenticator) -> None:
    """The classic algorithm confusion: the attacker takes the issuer's public key (it is public) and uses it as an
    HMAC secret. A verifier that lets the token pick the algorithm would accept it."""
    claims = idp.claims_for(subject="mallory", roles=["Deployments.Approve"])
    for secret in (idp.active_key.public_pem(), idp.active_key.public_pem().strip()):
        token = forge_token({"alg": "HS256", "typ": "JWT", "kid": idp.active_key.kid}, claims, hmac_secret=secret)
        error = await refused(authenticator, f"Bearer {token}")
        assert error.detail.startswith("token signed with the symmetric algorithm HS256 refused")


async def test_an_algorithm_the_key_is_not_for_is_refused(idp: OidcProvider, authenticator: OidcAuthenticator) -> None:
    """An ES256 header naming the issuer's RSA key, and an RS384 token while only RS256/ES256 are accepted."""
    rsa_kid = idp.active_key.kid
    ec_key = idp.unpublished_key("ES256")
    token = idp.sign(idp.claims_for(subject="x"), key=ec_key, kid=rsa_kid)
    error = await refused(authenticator, f"Bearer {token}")
    assert error.detail == f"token refused: signing key {rsa_kid!r} is a RSA key, which does not verify ES256"

    idp.rotate("RS384")
    error = await refused(authenticator, "Bearer " + idp.mint())
    assert error.detail == "token signed with RS384 refused: accepted algorithms are RS256, ES256"


async def test_the_issuer_unreachable_or_untrusted_is_said(idp: OidcProvider, tmp_path: Path) -> None:
    # Without the provider's CA, its TLS certificate is not trusted: no keys are fetched from an impostor.
    untrusting = OidcAuthenticator(OidcSettings(issuer=idp.issuer, audiences=(idp.audience,)))
    with pytest.raises(IssuerUnavailableError) as caught:
        await untrusting.authenticate("Bearer " + idp.mint())
    assert "certificate verify failed" in caught.value.detail
    assert idp.requests.get("jwks") is None

    # A discovery document naming another issuer is not believed.
    settings = OidcSettings(issuer=idp.base_url + "/" + idp.tenant + "/v2.0", audiences=("a",), ca_file=idp.ca_file)
    assert settings.issuer == idp.issuer  # same issuer: accepted; a trailing slash is another issuer
    other = OidcSettings(issuer=idp.issuer + "/", audiences=("a",), ca_file=idp.ca_file)
    with pytest.raises(IssuerUnavailableError) as caught:
        await OidcAuthenticator(other).authenticate("Bearer " + idp.mint())
    assert f"names issuer {idp.issuer!r}, not the configured" in caught.value.detail


async def test_keys_held_survive_an_issuer_outage_but_a_cold_start_cannot(
    idp: OidcProvider, settings: OidcSettings, authenticator: OidcAuthenticator, clock: FakeClock
) -> None:
    token = idp.mint()
    await authenticator.authenticate(f"Bearer {token}")
    idp.stop()
    clock.advance(settings.keys_max_age_seconds + 1)  # a scheduled refresh is due and fails: the held keys stay
    assert (await authenticator.authenticate(f"Bearer {token}")).issuer == settings.issuer

    cold = OidcAuthenticator(settings)
    with pytest.raises(IssuerUnavailableError) as caught:
        await cold.authenticate(f"Bearer {token}")
    assert caught.value.detail.startswith(f"cannot reach the issuer at {settings.discovery_url}")
    assert caught.value.error == "temporarily_unavailable"


async def test_an_unreachable_issuer_is_not_asked_again_by_every_request(idp: OidcProvider, clock: FakeClock) -> None:
    """With no keys held, a failed fetch answers the requests of the next seconds from memory: a flood of requests
    while the issuer is down (or misconfigured) does not become a flood of requests to the issuer."""
    misconfigured = OidcSettings(issuer=idp.issuer + "/", audiences=("a",), ca_file=idp.ca_file)
    authenticator = OidcAuthenticator(misconfigured, keys=SigningKeys(misconfigured, clock=clock))
    token = idp.mint()
    results = await asyncio.gather(
        *(authenticator.authenticate(f"Bearer {token}") for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, IssuerUnavailableError) for r in results)
    assert idp.requests == {"discovery": 1}
    clock.advance(COLD_RETRY_SECONDS)
    with pytest.raises(IssuerUnavailableError, match="names issuer"):
        await authenticator.authenticate(f"Bearer {token}")
    assert idp.requests == {"discovery": 2}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "ORCHESTRATOR_OIDC_ISSUER is not set"),
        ({"ORCHESTRATOR_OIDC_ISSUER": "https://login.example/t/v2.0"}, "ORCHESTRATOR_OIDC_AUDIENCE is not set"),
        (
            {"ORCHESTRATOR_OIDC_ISSUER": "http://login.example/t/v2.0", "ORCHESTRATOR_OIDC_AUDIENCE": "a"},
            "is not an https URL",
        ),
        (
            {
                "ORCHESTRATOR_OIDC_ISSUER": "https://login.example/t/v2.0",
                "ORCHESTRATOR_OIDC_AUDIENCE": "a",
                "ORCHESTRATOR_OIDC_ALGORITHMS": "RS256,HS256",
            },
            "ORCHESTRATOR_OIDC_ALGORITHMS names 'HS256', which is not an accepted signing algorithm",
        ),
        (
            {
                "ORCHESTRATOR_OIDC_ISSUER": "https://login.example/t/v2.0",
                "ORCHESTRATOR_OIDC_AUDIENCE": "a",
                "ORCHESTRATOR_OIDC_LEEWAY_SECONDS": "soon",
            },
            "ORCHESTRATOR_OIDC_LEEWAY_SECONDS='soon' is not a number of seconds",
        ),
        (
            {
                "ORCHESTRATOR_OIDC_ISSUER": "https://login.example/t/v2.0",
                "ORCHESTRATOR_OIDC_AUDIENCE": "a",
                "ORCHESTRATOR_OIDC_LEEWAY_SECONDS": "3600",
            },
            "is too large",
        ),
        (
            {
                "ORCHESTRATOR_OIDC_ISSUER": "https://login.example/t/v2.0",
                "ORCHESTRATOR_OIDC_AUDIENCE": "a",
                "ORCHESTRATOR_OIDC_CA_FILE": "/nonexistent/ca.pem",
            },
            "ORCHESTRATOR_OIDC_CA_FILE=/nonexistent/ca.pem: no such file",
        ),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        OidcSettings.from_env(environ)
    assert expected in str(caught.value)


def test_settings_from_env(idp: OidcProvider) -> None:
    settings = OidcSettings.from_env(
        {
            "ORCHESTRATOR_OIDC_ISSUER": idp.issuer,
            "ORCHESTRATOR_OIDC_AUDIENCE": "api://bicep-orchestrator, 1234-client-id",
            "ORCHESTRATOR_OIDC_TENANT": idp.tenant,
            "ORCHESTRATOR_OIDC_CA_FILE": str(idp.ca_file),
            "ORCHESTRATOR_OIDC_LEEWAY_SECONDS": "30",
        }
    )
    assert settings.audiences == ("api://bicep-orchestrator", "1234-client-id")
    assert (settings.tenant, settings.ca_file, settings.leeway_seconds) == (idp.tenant, idp.ca_file, 30.0)
    assert settings.algorithms == ("RS256", "ES256")
    assert settings.discovery_url == idp.discovery_url
