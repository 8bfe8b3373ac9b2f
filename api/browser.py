"""Browser sign-in for the approval page: the routes of the OpenID Connect authorization code flow with PKCE
(``api/sign_in.py`` does the protocol) and the session cookie that says who signed in.

- ``GET /ui/sign-in?next=/ui/...`` starts a sign-in: the ``state``, ``nonce`` and PKCE ``code_verifier`` go into a
  sealed cookie (path ``/ui/sign-in``, ten minutes) and the browser to the issuer's authorization endpoint.
- ``GET /ui/sign-in/callback`` (the registered redirect URI) completes it: the cookie's ``state`` must be the
  callback's, the code is exchanged with the verifier, both tokens are checked (``BrowserSignIn.complete``), and
  the session cookie is set; the browser goes back to ``next``.
- ``POST /ui/sign-out`` ends the session.

Cookies are sealed with AES-256-GCM (encrypted and authenticated; the cookie's purpose is the associated data, so a
sign-in cookie is never taken for a session) under ``ORCHESTRATOR_API_SESSION_KEY`` or a key made when the process
starts. They are HttpOnly, SameSite=Lax, Secure when the redirect URI is https (then named ``__Host-…``), and a
session lasts at most an hour and never past the access token's expiry. The session holds who signed in and the
claim values the role map names — never a token. The API's routes take bearer tokens only, never this cookie, so a
page of another site cannot make a browser call them with the session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import AuthConfigError
from api.identity import AuthenticationError, Authenticator, Principal
from api.sign_in import ENV_REDIRECT_URI, SIGN_IN_LIFETIME_SECONDS, BrowserSignIn, PendingSignIn

log = logging.getLogger(__name__)

ENV_SESSION_KEY = "ORCHESTRATOR_API_SESSION_KEY"
SIGN_IN_PATH = "/ui/sign-in"
CALLBACK_PATH = "/ui/sign-in/callback"
SIGN_OUT_PATH = "/ui/sign-out"
SESSION_SECONDS = 3600  # at most; never past the access token's own expiry
# Browsers keep cookies of up to 4096 bytes (name and attributes included).
MAX_COOKIE_CHARS = 3800
_PENDING = "sign-in"
_SESSION = "session"


def session_key_from_env(environ: Mapping[str, str]) -> bytes:
    """``ORCHESTRATOR_API_SESSION_KEY`` (base64 of 32 random bytes; every replica of the service the same), or a key
    made now (sessions then end when the process does). Raises ``AuthConfigError`` naming the variable."""
    raw = (environ.get(ENV_SESSION_KEY) or "").strip()
    if not raw:
        return AESGCM.generate_key(bit_length=256)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise AuthConfigError(
            f"{ENV_SESSION_KEY} is not base64 of 32 bytes: make one with "
            "`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`, or unset it to make a "
            "key per process (sessions then end when it restarts)"
        )
    return key


class SealedCookies:
    """AES-256-GCM sealed JSON documents with an expiry; ``open`` answers None for anything forged, altered,
    expired or sealed for another purpose."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._aead = AESGCM(key)
        self._clock = clock
        # The page's CSRF tokens are keyed from the same secret, so every replica sharing the session key also
        # accepts the forms the others rendered.
        self.csrf_key = hmac.new(key, b"approval-page csrf", hashlib.sha256).digest()

    def seal(self, purpose: str, document: Mapping[str, Any], *, expires_at: float) -> str:
        nonce = os.urandom(12)
        plain = json.dumps({**document, "exp": expires_at}, separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plain, purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        if not value or len(value) > MAX_COOKIE_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            plain = self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
            document = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            return None
        if not isinstance(document, dict) or not isinstance(document.get("exp"), int | float):
            return None
        if document["exp"] <= self._clock():
            return None
        return document


@dataclass
class BrowserSessions:
    """What ``create_app`` needs to offer browser sign-in on the approval page."""

    sign_in: BrowserSignIn
    cookies: SealedCookies
    # The claim values worth keeping in a session (the role map's): a token may carry hundreds of group ids, a
    # cookie holds 4 KB. None keeps them all.
    relevant_claims: frozenset[str] | None = None

    @property
    def secure(self) -> bool:
        return urlsplit(self.sign_in.settings.redirect_uri).scheme == "https"

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes browsers refuse the cookie unless Secure, for path /, with no Domain.
        return "__Host-orchestrator-session" if self.secure else "orchestrator-session"

    @property
    def pending_cookie(self) -> str:
        return "orchestrator-sign-in"

    def principal(self, request: Request) -> Principal | None:
        """The visitor the session cookie names, or None (no cookie, expired, forged)."""
        document = self.cookies.open(_SESSION, request.cookies.get(self.session_cookie))
        if document is None:
            return None
        try:
            return Principal(
                subject=str(document["sub"]),
                name=str(document["name"]),
                issuer=str(document["iss"]),
                groups=frozenset(str(g) for g in document.get("groups") or ()),
                tenant=document.get("tid"),
            )
        except KeyError:
            return None


def check_callback(sessions: BrowserSessions) -> None:
    """The redirect URI must name this service's callback route (the issuer sends the browser there)."""
    uri = sessions.sign_in.settings.redirect_uri
    if urlsplit(uri).path != CALLBACK_PATH:
        raise AuthConfigError(
            f"{ENV_REDIRECT_URI}={uri!r} does not end in {CALLBACK_PATH}, the approval page's sign-in callback: set it "
            f"to the service's public URL followed by {CALLBACK_PATH}, and register that URL with the issuer"
        )


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of the approval page only (never another site)."""
    if not value or not value.startswith("/ui") or value.startswith("//") or "\\" in value:
        return "/ui"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 33 for c in value):
        return "/ui"
    return value


def add_sign_in(app: FastAPI, sessions: BrowserSessions, page: Callable[[str, str, int], Response]) -> None:
    """The sign-in, callback and sign-out routes. ``page(title, body_html, status)`` renders a message page."""

    def cookie_options(path: str, max_age: int) -> dict[str, Any]:
        return {"path": path, "max_age": max_age, "httponly": True, "secure": sessions.secure, "samesite": "lax"}

    @app.get(SIGN_IN_PATH, include_in_schema=False)
    async def begin(request: Request, next: str | None = None) -> Response:
        try:
            pending = await sessions.sign_in.begin()
        except AuthenticationError as exc:  # the issuer's discovery document cannot be fetched
            log.warning("browser sign-in cannot start: %s", exc.detail)
            from html import escape

            return page(
                "Sign-in unavailable",
                f"<h1>Sign-in is unavailable</h1><p class='error'>{escape(exc.detail[:300])}</p>"
                "<p>Try again in a minute; if it persists, tell the service's operator.</p>",
                503,
            )
        sealed = sessions.cookies.seal(
            _PENDING,
            {"state": pending.state, "nonce": pending.nonce, "verifier": pending.code_verifier,
             "started": pending.started_at, "next": safe_next(next)},
            expires_at=pending.started_at + SIGN_IN_LIFETIME_SECONDS,
        )  # fmt: skip
        response = RedirectResponse(pending.authorization_url, status_code=303)
        response.set_cookie(sessions.pending_cookie, sealed, **cookie_options(SIGN_IN_PATH, 600))
        return response

    def refused(why: str, status: int = 401) -> Response:
        from html import escape

        response = page(
            "Sign-in refused",
            f"<h1>Sign-in refused</h1><p class='error'>{escape(why)}</p>"
            f"<p><a href='{SIGN_IN_PATH}'>Sign in again</a></p>",
            status,
        )
        response.delete_cookie(sessions.pending_cookie, path=SIGN_IN_PATH, secure=sessions.secure, httponly=True)
        return response

    @app.get(CALLBACK_PATH, include_in_schema=False)
    async def callback(
        request: Request,
        code: str | None = None,
        state: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> Response:
        kept = sessions.cookies.open(_PENDING, request.cookies.get(sessions.pending_cookie))
        if kept is None:
            return refused(
                "This sign-in was not started in this browser, or was started more than ten minutes ago.", 400
            )
        if not hmac.compare_digest((state or "").encode(), str(kept["state"]).encode()):
            return refused("The callback's state is not the one this sign-in sent (a forged or stale callback).")
        if error:
            detail = f": {error_description[:300]}" if error_description else ""
            return refused(f"The issuer refused the sign-in ({error[:100]}{detail}).")
        pending = PendingSignIn(
            authorization_url="",
            state=str(kept["state"]),
            nonce=str(kept["nonce"]),
            code_verifier=str(kept["verifier"]),
            started_at=float(kept["started"]),
        )
        try:
            signed_in = await sessions.sign_in.complete(pending, state=state or "", code=code or "")
        except AuthenticationError as exc:
            log.warning("browser sign-in refused: %s", exc.detail)
            return refused(exc.detail[:300])
        who = signed_in.principal
        groups = sorted(who.groups if sessions.relevant_claims is None else who.groups & sessions.relevant_claims)
        expires = int(min(signed_in.expires_at, time.time() + SESSION_SECONDS))
        document = {"sub": who.subject, "name": who.name, "iss": who.issuer, "groups": groups, "tid": who.tenant}
        sealed = sessions.cookies.seal(_SESSION, document, expires_at=expires)
        if len(sealed) > MAX_COOKIE_CHARS:
            return refused(
                f"{who.name} carries too many roles and groups the role map names to fit a browser session; ask the "
                "operator to grant access by fewer groups (docs/AUTH.md).",
                403,
            )
        log.info("browser sign-in: %s", who.name)
        response = RedirectResponse(safe_next(str(kept.get("next") or "/ui")), status_code=303)
        response.delete_cookie(sessions.pending_cookie, path=SIGN_IN_PATH, secure=sessions.secure, httponly=True)
        response.set_cookie(sessions.session_cookie, sealed, **cookie_options("/", max(1, expires - int(time.time()))))
        return response

    @app.post(SIGN_OUT_PATH, include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            return page("Refused", "<h1>Refused</h1><p>The form was posted from another site.</p>", 403)
        response = RedirectResponse("/ui/signed-out", status_code=303)
        response.delete_cookie(sessions.session_cookie, path="/", secure=sessions.secure, httponly=True)
        return response

    @app.get("/ui/signed-out", include_in_schema=False)
    async def signed_out() -> Response:
        return page("Signed out", f"<h1>Signed out</h1><p><a href='{SIGN_IN_PATH}'>Sign in again</a></p>", 200)


def page_visitor(authenticator: Authenticator, sessions: BrowserSessions | None) -> Callable[[Request], Any]:
    """The approval page's visitor: a bearer token when the request has one, else the session cookie (without
    browser sign-in: whoever the authenticator says, e.g. the development mode's identity)."""

    async def principal(request: Request) -> Principal | None:
        authorization = request.headers.get("authorization")
        if sessions is None or authorization:
            try:  # the development mode's identity needs no header
                return await authenticator.authenticate(authorization)
            except AuthenticationError:
                return None
        return sessions.principal(request)

    return principal


def sign_in_url(path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(safe_next(path), safe='/')}"
