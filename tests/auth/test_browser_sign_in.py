"""The approval page's sign-in (api/sign_in.py) against the real local provider: authorization code with PKCE S256
through the provider's login form, as a browser would post it; the tokens checked as the API checks bearer tokens.
Refusals: a forged callback state, a replayed code, a PKCE verifier that is not the one the challenge was made
from, an ID token whose nonce is not this sign-in's, a sign-in started too long ago."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.auth import AuthConfigError, OidcAuthenticator
from api.identity import AuthenticationError
from api.sign_in import SIGN_IN_LIFETIME_SECONDS, BrowserSignIn, PendingSignIn, SignInSettings
from harness.oidc_provider import OidcProvider

CALLBACK = "http://127.0.0.1:8080/callback"  # registered as http://127.0.0.1/callback: any loopback port


@pytest.fixture
def sign_in(authenticator: OidcAuthenticator) -> BrowserSignIn:
    settings = SignInSettings(
        client_id="approval-page", redirect_uri=CALLBACK, scopes=("openid", "profile", "api://x/access_as_user")
    )
    return BrowserSignIn(authenticator, settings)


def browser_login(idp: OidcProvider, pending: PendingSignIn) -> dict[str, str]:
    """What a browser does: open the authorization URL, fill in the form, follow the redirect to the callback."""
    with httpx.Client(verify=idp.client_ssl_context(), timeout=10) as browser:
        form_page = browser.get(pending.authorization_url)
        assert form_page.status_code == 200 and 'id="sign-in"' in form_page.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(pending.authorization_url).query).items()}
        answer = browser.post(idp.authorize_url, data={**query, "username": "alice", "password": "alice-password"})
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def test_alice_signs_in(idp: OidcProvider, sign_in: BrowserSignIn, authenticator: OidcAuthenticator) -> None:
    pending = await sign_in.begin()
    params = parse_qs(urlsplit(pending.authorization_url).query)
    assert params["code_challenge_method"] == ["S256"] and params["redirect_uri"] == [CALLBACK]
    assert pending.code_verifier not in pending.authorization_url  # only its hash travels

    callback = browser_login(idp, pending)
    signed_in = await sign_in.complete(pending, state=callback["state"], code=callback["code"])

    assert signed_in.principal.name == "alice"
    assert signed_in.principal.groups == {"Deployments.Approve", "g-platform"}
    # The access token the page got is a bearer token the API accepts.
    assert await authenticator.authenticate(f"Bearer {signed_in.access_token}") == signed_in.principal
    assert signed_in.access_token not in repr(signed_in) and pending.code_verifier not in repr(pending)


async def test_a_forged_state_or_a_replayed_code_is_refused(idp: OidcProvider, sign_in: BrowserSignIn) -> None:
    pending = await sign_in.begin()
    callback = browser_login(idp, pending)
    with pytest.raises(AuthenticationError, match="the callback's state is not the one this sign-in sent"):
        await sign_in.complete(pending, state="attacker-state", code=callback["code"])
    await sign_in.complete(pending, state=callback["state"], code=callback["code"])
    with pytest.raises(AuthenticationError, match="sign-in refused by the issuer: invalid_grant"):
        await sign_in.complete(pending, state=callback["state"], code=callback["code"])


async def test_a_stolen_code_without_its_verifier_is_refused(idp: OidcProvider, sign_in: BrowserSignIn) -> None:
    """An attacker who intercepts the code (and starts its own sign-in to get a state) lacks the code verifier."""
    victim = await sign_in.begin()
    stolen = browser_login(idp, victim)
    attacker = await sign_in.begin()
    with pytest.raises(AuthenticationError, match="code_verifier does not match the code_challenge"):
        await sign_in.complete(attacker, state=attacker.state, code=stolen["code"])


async def test_an_id_token_for_another_sign_in_is_refused(idp: OidcProvider, sign_in: BrowserSignIn) -> None:
    pending = await sign_in.begin()
    callback = browser_login(idp, pending)
    replayed = dataclasses.replace(pending, nonce="the-nonce-of-another-sign-in")
    with pytest.raises(AuthenticationError, match="the ID token's nonce is not the one this sign-in sent"):
        await sign_in.complete(replayed, state=callback["state"], code=callback["code"])


async def test_a_sign_in_started_too_long_ago_is_refused(sign_in: BrowserSignIn) -> None:
    pending = await sign_in.begin()
    old = dataclasses.replace(pending, started_at=pending.started_at - SIGN_IN_LIFETIME_SECONDS - 1)
    with pytest.raises(AuthenticationError, match="started too long ago"):
        await sign_in.complete(old, state=pending.state, code="whatever")


def test_sign_in_settings() -> None:
    settings = SignInSettings.from_env(
        {
            "ORCHESTRATOR_OIDC_CLIENT_ID": "page",
            "ORCHESTRATOR_OIDC_CLIENT_SECRET": "very-secret-value",
            "ORCHESTRATOR_OIDC_REDIRECT_URI": "https://deploy.contoso.example/auth/callback",
            "ORCHESTRATOR_OIDC_SCOPES": "openid profile api://bicep-orchestrator/access_as_user",
        }
    )
    assert settings.scopes == ("openid", "profile", "api://bicep-orchestrator/access_as_user")
    assert "very-secret-value" not in repr(settings)
    with pytest.raises(AuthConfigError, match="ORCHESTRATOR_OIDC_CLIENT_ID is not set"):
        SignInSettings.from_env({"ORCHESTRATOR_OIDC_REDIRECT_URI": CALLBACK})
    with pytest.raises(AuthConfigError, match="is not an https URL"):
        SignInSettings(client_id="page", redirect_uri="http://deploy.contoso.example/cb")
    with pytest.raises(AuthConfigError, match="must include 'openid'"):
        SignInSettings(client_id="page", redirect_uri=CALLBACK, scopes=("profile",))
