"""Browser sign-in for the approval page: OpenID Connect authorization code flow with PKCE (S256), as a confidential
or public client of the issuer the bearer tokens come from.

``begin`` makes the authorization URL and the secrets the page keeps until the browser comes back (``state``
against cross-site request forgery of the callback, ``nonce`` against a replayed ID token, the PKCE ``code_verifier``
against a stolen code); ``complete`` checks the ``state``, exchanges the code at the token endpoint and checks both
tokens: the access token exactly as a bearer token of the API (``OidcAuthenticator``), the ID token for this client
with the ``nonce``. The page keeps ``PendingSignIn`` server-side or in a signed, encrypted, HttpOnly cookie — never in
a URL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from api.auth import (
    MAX_ISSUER_DOCUMENT_BYTES,
    AuthConfigError,
    IssuerUnavailableError,
    NoRedirectHandler,
    OidcAuthenticator,
    issuer_tls_context,
    principal_from_claims,
)
from api.identity import AuthenticationError, Principal

ENV_CLIENT_ID = "ORCHESTRATOR_OIDC_CLIENT_ID"
ENV_CLIENT_SECRET = "ORCHESTRATOR_OIDC_CLIENT_SECRET"
ENV_REDIRECT_URI = "ORCHESTRATOR_OIDC_REDIRECT_URI"
ENV_SCOPES = "ORCHESTRATOR_OIDC_SCOPES"


@dataclass(frozen=True)
class SignInSettings:
    """The approval page as a client of the issuer. ``scopes`` should include the API's delegated scope (e.g.
    ``api://bicep-orchestrator/access_as_user``) so the access token is for the API."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...] = ("openid", "profile")
    client_secret: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id.strip():
            raise AuthConfigError(f"{ENV_CLIENT_ID} is empty: set it to the approval page's application (client) id")
        parts = urlsplit(self.redirect_uri)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not loopback):
            raise AuthConfigError(
                f"{ENV_REDIRECT_URI}={self.redirect_uri!r} is not an https URL (http only on loopback): set it to "
                "the page's sign-in callback as registered with the issuer"
            )
        if "openid" not in self.scopes:
            raise AuthConfigError(f"{ENV_SCOPES} must include 'openid' (the ID token proves who signed in)")

    def __repr__(self) -> str:  # the client secret never reaches a log through a repr
        secret = "<set>" if self.client_secret else None
        return (
            f"SignInSettings(client_id={self.client_id!r}, redirect_uri={self.redirect_uri!r}, client_secret={secret})"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SignInSettings:
        env = os.environ if environ is None else environ
        client_id = env.get(ENV_CLIENT_ID, "").strip()
        redirect_uri = env.get(ENV_REDIRECT_URI, "").strip()
        if not client_id:
            raise AuthConfigError(
                f"{ENV_CLIENT_ID} is not set: set it to the approval page's application (client) id (docs/AUTH.md)"
            )
        if not redirect_uri:
            raise AuthConfigError(
                f"{ENV_REDIRECT_URI} is not set: set it to the page's sign-in callback URL (docs/AUTH.md)"
            )
        scopes = tuple(env.get(ENV_SCOPES, "openid profile").replace(",", " ").split())
        return cls(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            client_secret=env.get(ENV_CLIENT_SECRET) or None,
        )


@dataclass(frozen=True)
class PendingSignIn:
    """What the page keeps between sending the browser to the issuer and its return. Secret: never in a URL or log."""

    authorization_url: str
    state: str
    nonce: str
    code_verifier: str
    started_at: float

    def __repr__(self) -> str:
        return f"PendingSignIn(started_at={self.started_at})"


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    access_token: str
    expires_at: float  # epoch seconds: the access token's exp

    def __repr__(self) -> str:
        return f"SignedIn(principal={self.principal!r}, expires_at={self.expires_at})"


# How long a started sign-in may take (the person types a password, maybe a second factor).
SIGN_IN_LIFETIME_SECONDS = 600.0


class BrowserSignIn:
    def __init__(self, authenticator: OidcAuthenticator, settings: SignInSettings) -> None:
        self.authenticator = authenticator
        self.settings = settings
        # The ID token is for this client, signed by the same issuer's keys (the key cache is shared).
        self._id_tokens = OidcAuthenticator(
            replace(authenticator.settings, audiences=(settings.client_id,)), keys=authenticator.keys
        )
        self._tls: ssl.SSLContext = issuer_tls_context(authenticator.settings)

    async def begin(self, *, login_hint: str | None = None) -> PendingSignIn:
        discovery = await self.authenticator.keys.discovery()
        endpoint = _https_endpoint(discovery, "authorization_endpoint")
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
            "response_mode": "query",
        }
        if login_hint:
            params["login_hint"] = login_hint
        url = endpoint + ("&" if urlsplit(endpoint).query else "?") + urlencode(params)
        return PendingSignIn(url, state, nonce, verifier, time.time())

    async def complete(self, pending: PendingSignIn, *, state: str, code: str) -> SignedIn:
        """The signed-in person, from the callback's ``state`` and ``code``; raises ``AuthenticationError``."""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise AuthenticationError("sign-in refused: the callback's state is not the one this sign-in sent")
        if time.time() - pending.started_at > SIGN_IN_LIFETIME_SECONDS:
            raise AuthenticationError("sign-in refused: it was started too long ago; sign in again")
        if not code or len(code) > 4096:
            raise AuthenticationError("sign-in refused: the callback carries no usable code")
        discovery = await self.authenticator.keys.discovery()
        endpoint = _https_endpoint(discovery, "token_endpoint")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": pending.code_verifier,
        }
        if self.settings.client_secret:
            form["client_secret"] = self.settings.client_secret
        answer = await asyncio.to_thread(
            _post_form, endpoint, form, self._tls, self.authenticator.settings.http_timeout_seconds
        )
        access, identity = answer.get("access_token"), answer.get("id_token")
        if not isinstance(access, str) or not isinstance(identity, str):
            raise AuthenticationError("sign-in refused: the issuer's answer lacks the access token or the ID token")
        id_claims = await self._id_tokens.verify(identity)
        if not hmac.compare_digest(str(id_claims.get("nonce", "")).encode(), pending.nonce.encode()):
            raise AuthenticationError("sign-in refused: the ID token's nonce is not the one this sign-in sent")
        access_claims = await self.authenticator.verify(access)
        principal = principal_from_claims(access_claims)
        if principal.subject != principal_from_claims(id_claims).subject:
            raise AuthenticationError("sign-in refused: the access token and the ID token name different people")
        return SignedIn(principal=principal, access_token=access, expires_at=float(access_claims["exp"]))


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _https_endpoint(discovery: Mapping[str, Any], name: str) -> str:
    value = discovery.get(name)
    if not isinstance(value, str) or urlsplit(value).scheme != "https":
        raise IssuerUnavailableError(f"the issuer's discovery document has no https {name}")
    return value


def _post_form(url: str, form: Mapping[str, str], context: ssl.SSLContext, timeout: float) -> dict[str, Any]:
    """POST the token request (blocking: run in a thread). The issuer's error is named; the request is not echoed."""
    opener = urllib.request.build_opener(NoRedirectHandler(), urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(
        url,
        data=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_ISSUER_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read(64 * 1024))
        except ValueError:
            error = {}
        finally:
            exc.close()
        code = error.get("error", f"HTTP {exc.code}") if isinstance(error, dict) else f"HTTP {exc.code}"
        description = error.get("error_description", "") if isinstance(error, dict) else ""
        raise AuthenticationError(
            f"sign-in refused by the issuer: {str(code)[:100]}{': ' + str(description)[:300] if description else ''}"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise IssuerUnavailableError(f"cannot reach the issuer's token endpoint {url}: {reason}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise IssuerUnavailableError(f"the issuer's token endpoint {url} answered something that is not JSON") from None
    if not isinstance(document, dict):
        raise IssuerUnavailableError(f"the issuer's token endpoint {url} answered something that is not an object")
    return document
