"""A real, local OpenID Connect provider for tests, benchmarks and local development.

HTTPS on 127.0.0.1 (a free port; the loopback CA of ``local_arm.tls``), its own signing keys made with
``cryptography`` (RSA by default, EC on request), a discovery document, a JWKS, and a token endpoint that issues
tokens shaped like Microsoft Entra ID's v2.0 access tokens (``iss``, ``aud``, ``tid``, ``oid``, ``sub``, ``roles``,
``groups``, ``preferred_username``):

- ``client_credentials`` for machine callers (client secret in the form or HTTP Basic);
- ``authorization_code`` with PKCE (S256 only) for browser sign-in. ``GET /authorize`` shows a small login form
  (``username``/``password`` of a configured user); for headless tests ``login_hint=<username>`` signs that user in
  at once when the provider was made with ``auto_login=True``.

For refusal tests, ``mint`` signs tokens with chosen claims, expiry, audience, issuer and key; ``unpublished_key``
makes a key the JWKS does not hold; ``rotate`` adds a key and signs with it, ``retire`` takes one out of the JWKS.

    with OidcProvider(tmp_path) as idp:
        token = idp.mint(subject="alice", roles=["Deployments.Deploy"])
        # verify with issuer=idp.issuer, audience=idp.audience, CA bundle idp.ca_file

Nothing here is for production: users' passwords are held in memory in clear, and any loopback caller can fetch
tokens for the configured clients.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import html
import json
import secrets
import signal
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from local_arm.tls import TlsFiles, ensure_certificates, server_context

DEFAULT_TENANT = "11111111-2222-3333-4444-555555555555"
DEFAULT_AUDIENCE = "api://bicep-orchestrator"
_CODE_LIFETIME = 60.0
_MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True)
class OidcUser:
    """A person who can sign in through ``/authorize``."""

    username: str
    password: str
    name: str = ""
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class OidcClient:
    """An application registered with the provider. ``secret`` None makes a public client (PKCE only);
    ``roles`` are the app roles a ``client_credentials`` token carries."""

    client_id: str
    secret: str | None = None
    redirect_uris: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class SigningKey:
    kid: str
    alg: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    published: bool = True

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig"})
        return jwk

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_signing_key(alg: str = "RS256", *, published: bool = True) -> SigningKey:
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg.startswith(("RS", "PS")):
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "ES384":
        private_key = ec.generate_private_key(ec.SECP384R1())
    else:
        raise ValueError(f"the local provider makes RS*/PS*/ES256/ES384 keys, not {alg}")
    return SigningKey(kid=secrets.token_urlsafe(12), alg=alg, private_key=private_key, published=published)


def forge_token(header: Mapping[str, Any], claims: Mapping[str, Any], *, hmac_secret: bytes | None = None) -> str:
    """A token built by hand, as an attacker would: unsigned (``alg: none``) when ``hmac_secret`` is None, else an
    HMAC-SHA256 signature with that secret (e.g. the issuer's public key PEM, the classic confusion attack)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps(dict(header)).encode()) + "." + b64(json.dumps(dict(claims)).encode())
    if hmac_secret is None:
        return signing_input + "."
    signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


@dataclass
class _PendingCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    user: OidcUser
    scope: str
    nonce: str | None
    expires: float


class OidcProvider:
    """The provider; a context manager that starts it on enter and stops it on exit (also when the body raises)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        tenant: str = DEFAULT_TENANT,
        audience: str = DEFAULT_AUDIENCE,
        users: Sequence[OidcUser] = (),
        clients: Sequence[OidcClient] = (),
        auto_login: bool = False,
        token_lifetime: float = 3600.0,
        alg: str = "RS256",
        port: int = 0,
    ) -> None:
        self.state_dir = state_dir
        self._requested_port = port
        self.tenant = tenant
        self.audience = audience
        self.users = {u.username: u for u in users}
        self.clients = {c.client_id: c for c in clients}
        self.auto_login = auto_login
        self.token_lifetime = token_lifetime
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = [new_signing_key(alg)]
        self._active = self._keys[0]
        self._codes: dict[str, _PendingCode] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tls: TlsFiles | None = None
        self.port = 0
        # What was asked of the provider, for tests that count fetches.
        self.requests: dict[str, int] = {}
        # Seconds the JWKS answer waits (a slow issuer: the verifier must not block its event loop meanwhile).
        self.jwks_delay = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> OidcProvider:
        self._tls = ensure_certificates(self.state_dir)
        context = server_context(self._tls)
        provider = self

        class Handler(_Handler):
            owner = provider

        server = _Server(("127.0.0.1", self._requested_port), Handler, bind_and_activate=False)
        try:
            server.server_bind()
            server.server_activate()
            # The handshake runs in the request's thread, so a client that connects and stalls blocks nobody.
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        except BaseException:
            server.server_close()
            raise
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-oidc-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("the local OpenID provider is not started")
        return f"https://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        """Shaped like Entra ID's v2.0 issuer: ``https://<host>/<tenant>/v2.0``."""
        return f"{self.base_url}/{self.tenant}/v2.0"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/discovery/v2.0/keys"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/authorize"

    @property
    def ca_file(self) -> Path:
        if self._tls is None:
            raise RuntimeError("the local OpenID provider is not started")
        return self._tls.ca_file

    def client_ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorize_url,
            "token_endpoint": self.token_url,
            "jwks_uri": self.jwks_url,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self._keys}),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "oid", "tid", "iss", "aud", "exp", "nbf", "iat", "name", "preferred_username"],
            "tenant_region_scope": "local",
        }

    # -- keys --------------------------------------------------------------------------------------------------

    @property
    def active_key(self) -> SigningKey:
        return self._active

    @property
    def keys(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [k.public_jwk() for k in self._keys if k.published]}

    def rotate(self, alg: str = "RS256", *, publish: bool = True) -> SigningKey:
        """Add a new key and sign with it from now on. ``publish=False`` keeps it out of the JWKS until ``publish``
        (to see a verifier refuse an unknown key, then pick it up after a refetch)."""
        key = new_signing_key(alg, published=publish)
        with self._lock:
            self._keys.append(key)
            self._active = key
        return key

    def publish(self, key: SigningKey) -> None:
        with self._lock:
            key.published = True

    def retire(self, kid: str) -> None:
        """Take a key out of the JWKS (and stop signing with it)."""
        with self._lock:
            self._keys = [k for k in self._keys if k.kid != kid]
            if self._active.kid == kid:
                if not self._keys:
                    raise ValueError("cannot retire the provider's last key: rotate first")
                self._active = self._keys[-1]

    @staticmethod
    def unpublished_key(alg: str = "RS256") -> SigningKey:
        """A key the provider never publishes (a forger's)."""
        return new_signing_key(alg, published=False)

    # -- tokens ------------------------------------------------------------------------------------------------

    def claims_for(
        self,
        *,
        subject: str,
        oid: str | None = None,
        audience: str | list[str] | None = None,
        name: str | None = None,
        roles: Sequence[str] = (),
        groups: Sequence[str] = (),
        expires_in: float | None = None,
        not_before: float | None = None,
        issued_at: float | None = None,
    ) -> dict[str, Any]:
        now = time.time()
        iat = int(now if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience if audience is None else audience,
            "tid": self.tenant,
            "sub": subject,
            "oid": oid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tenant}/{subject}")),
            "iat": iat,
            "nbf": int(iat if not_before is None else not_before),
            "exp": int(now + (self.token_lifetime if expires_in is None else expires_in)),
            "ver": "2.0",
            "uti": secrets.token_urlsafe(16),
        }
        if name:
            claims["preferred_username"] = name
        if roles:
            claims["roles"] = list(roles)
        if groups:
            claims["groups"] = list(groups)
        return claims

    def sign(self, claims: Mapping[str, Any], *, key: SigningKey | None = None, kid: str | None = None) -> str:
        """Sign ``claims`` with ``key`` (default: the active key); ``kid`` overrides the header's key id (a token
        claiming a published key's id but signed by another key has a bad signature)."""
        signing = key or self._active
        return jwt.encode(
            dict(claims),
            signing.private_key,
            algorithm=signing.alg,
            headers={"kid": kid or signing.kid, "typ": "JWT"},
        )

    def mint(
        self,
        *,
        subject: str = "user-1",
        key: SigningKey | None = None,
        kid: str | None = None,
        issuer: str | None = None,
        tenant: str | None = None,
        drop: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed token with chosen claims: the keyword arguments of ``claims_for``, ``issuer``/``tenant`` to
        override those claims, ``drop`` to leave claims out, ``extra`` to add or replace any."""
        body = self.claims_for(subject=subject, **claims)
        if issuer is not None:
            body["iss"] = issuer
        if tenant is not None:
            body["tid"] = tenant
        body.update(extra or {})
        for name in drop:
            body.pop(name, None)
        return self.sign(body, key=key, kid=kid)

    # -- endpoints (run in the server's threads) ---------------------------------------------------------------

    def _count(self, what: str) -> None:
        with self._lock:
            self.requests[what] = self.requests.get(what, 0) + 1

    def _client(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> OidcClient:
        client_id = basic[0] if basic else form.get("client_id", "")
        secret = basic[1] if basic else form.get("client_secret")
        client = self.clients.get(client_id)
        if client is None:
            raise _OAuthError(401, "invalid_client", f"unknown client {client_id!r}")
        if client.secret is not None and (secret is None or not hmac.compare_digest(secret, client.secret)):
            raise _OAuthError(401, "invalid_client", "client authentication failed")
        return client

    def _token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        grant = form.get("grant_type")
        if grant == "client_credentials":
            client = self._client(form, basic)
            if client.secret is None:
                raise _OAuthError(400, "unauthorized_client", "a public client cannot use client_credentials")
            claims = self.claims_for(subject=client.oid, oid=client.oid, roles=client.roles)
            claims["azp"] = client.client_id
            return {"access_token": self.sign(claims), "token_type": "Bearer", "expires_in": int(self.token_lifetime)}
        if grant == "authorization_code":
            client = self._client(form, basic)
            code = form.get("code", "")
            with self._lock:
                pending = self._codes.pop(code, None)  # single use, also when the exchange fails
            if pending is None or pending.expires < time.time() or pending.client_id != client.client_id:
                raise _OAuthError(400, "invalid_grant", "the code is unknown, used, expired or for another client")
            if form.get("redirect_uri") != pending.redirect_uri:
                raise _OAuthError(400, "invalid_grant", "redirect_uri differs from the one of the authorization")
            verifier = form.get("code_verifier", "")
            if not _valid_verifier(verifier):
                raise _OAuthError(400, "invalid_grant", "code_verifier missing or not 43-128 unreserved characters")
            if not hmac.compare_digest(_s256(verifier), pending.code_challenge):
                raise _OAuthError(400, "invalid_grant", "code_verifier does not match the code_challenge")
            user = pending.user
            access = self.claims_for(
                subject=user.username, oid=user.oid, name=user.username, roles=user.roles, groups=user.groups
            )
            access.update({"azp": client.client_id, "scp": "access_as_user", "name": user.name or user.username})
            identity = self.claims_for(
                subject=user.username, oid=user.oid, name=user.username, audience=client.client_id
            )
            identity["name"] = user.name or user.username
            if pending.nonce:
                identity["nonce"] = pending.nonce
            return {
                "access_token": self.sign(access),
                "id_token": self.sign(identity),
                "token_type": "Bearer",
                "expires_in": int(self.token_lifetime),
                "scope": pending.scope,
            }
        raise _OAuthError(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _authorization_request(self, params: Mapping[str, str]) -> tuple[OidcClient, str]:
        """Checks that must not redirect (RFC 6749 4.1.2.1): an unknown client or redirect URI gets an error page."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise _OAuthError(400, "invalid_request", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if not _redirect_allowed(redirect_uri, client.redirect_uris):
            raise _OAuthError(400, "invalid_request", "redirect_uri is not registered for this client")
        return client, redirect_uri

    def _issue_code(self, params: Mapping[str, str], user: OidcUser) -> str:
        client, redirect_uri = self._authorization_request(params)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _PendingCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                code_challenge=params["code_challenge"],
                user=user,
                scope=params.get("scope", "openid"),
                nonce=params.get("nonce"),
                expires=time.time() + _CODE_LIFETIME,
            )
        query = {"code": code}
        if params.get("state"):
            query["state"] = params["state"]
        return _with_query(redirect_uri, query)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops the connection or fails the TLS handshake is not the provider's problem: no
        traceback on stderr."""


class _OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _valid_verifier(verifier: str) -> bool:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return 43 <= len(verifier) <= 128 and set(verifier) <= allowed


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, code_challenge) for S256."""
    verifier = secrets.token_urlsafe(48)
    return verifier, _s256(verifier)


def _redirect_allowed(uri: str, registered: Sequence[str]) -> bool:
    """Exact match, or for a loopback redirect any port (RFC 8252 7.3: native apps listen on an ephemeral port)."""
    if uri in registered:
        return True
    parts = urlsplit(uri)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or parts.scheme not in ("http", "https"):
        return False
    for candidate in registered:
        known = urlsplit(candidate)
        if (known.scheme, known.hostname, known.path) == (parts.scheme, parts.hostname, parts.path):
            return True
    return False


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    return uri + ("&" if urlsplit(uri).query else "?") + urlencode(params)


_LOGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Local sign-in</title></head>
<body style="font-family:sans-serif;max-width:24em;margin:4em auto">
<h1>Local OpenID provider</h1>
<p>Sign in to <b>{client}</b> (development and tests only).</p>
{error}
<form method="post" action="{action}">
{hidden}
<p><label>User name <input name="username" id="username" autocomplete="username" autofocus></label></p>
<p><label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label></p>
<p><button type="submit" id="sign-in">Sign in</button></p>
</form></body></html>
"""
_AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


class _Handler(BaseHTTPRequestHandler):
    owner: OidcProvider
    server_version = "LocalOIDC/1"
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:  # tokens and codes travel in requests: log nothing
        return

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.request.do_handshake()  # in this request's thread (the listening socket defers it)
        super().setup()

    def handle(self) -> None:
        with contextlib.suppress(ssl.SSLError, ConnectionError, TimeoutError, OSError):
            super().handle()

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_FORM_BYTES:
            raise _OAuthError(413, "invalid_request", "request too large")
        body = self.rfile.read(length).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body).items()}

    def _basic(self) -> tuple[str, str] | None:
        value = self.headers.get("Authorization", "")
        if not value.lower().startswith("basic "):
            return None
        try:
            user, _, secret = base64.b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, secret

    def do_GET(self) -> None:
        owner, path = self.owner, self._path()
        if path == urlsplit(owner.discovery_url).path:
            owner._count("discovery")
            self._json(200, owner.discovery_document())
        elif path == urlsplit(owner.jwks_url).path:
            owner._count("jwks")
            if owner.jwks_delay:
                time.sleep(owner.jwks_delay)
            self._json(200, owner.jwks())
        elif path == urlsplit(owner.authorize_url).path:
            owner._count("authorize")
            self._authorize(self._query(), login=None)
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        owner, path = self.owner, self._path()
        try:
            form = self._form()
            if path == urlsplit(owner.token_url).path:
                owner._count("token")
                self._json(200, owner._token(form, self._basic()))
            elif path == urlsplit(owner.authorize_url).path:
                owner._count("authorize")
                self._authorize(form, login=(form.get("username", ""), form.get("password", "")))
            else:
                self._json(404, {"error": "not_found"})
        except _OAuthError as exc:
            headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else None
            self._send(
                exc.status,
                json.dumps({"error": exc.error, "error_description": exc.description}).encode(),
                "application/json",
                headers,
            )

    def _authorize(self, params: dict[str, str], *, login: tuple[str, str] | None) -> None:
        owner = self.owner
        try:
            client, redirect_uri = owner._authorization_request(params)
        except _OAuthError as exc:
            self._send(exc.status, f"<p>{html.escape(exc.description)}</p>".encode(), "text/html; charset=utf-8")
            return

        def refuse(error: str, description: str) -> None:
            query = {"error": error, "error_description": description}
            if params.get("state"):
                query["state"] = params["state"]
            self._send(302, b"", "text/plain", {"Location": _with_query(redirect_uri, query)})

        if params.get("response_type") != "code":
            return refuse("unsupported_response_type", "only response_type=code is supported")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return refuse("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        user: OidcUser | None = None
        error = ""
        if login is not None:
            candidate = owner.users.get(login[0])
            if candidate is not None and hmac.compare_digest(candidate.password.encode(), login[1].encode()):
                user = candidate
            else:
                error = '<p style="color:#b00" id="error">Wrong user name or password.</p>'
        elif owner.auto_login and params.get("login_hint") in owner.users:
            user = owner.users[params["login_hint"]]
        if user is None:
            hidden = "\n".join(
                f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
                for name in _AUTHORIZE_PARAMS
                if name in params
            )
            page = _LOGIN_PAGE.format(
                client=html.escape(client.client_id),
                error=error,
                action=html.escape(owner.authorize_url),
                hidden=hidden,
            )
            self._send(401 if login is not None else 200, page.encode(), "text/html; charset=utf-8")
            return
        self._send(302, b"", "text/plain", {"Location": owner._issue_code(params, user)})


@contextlib.contextmanager
def running_provider(state_dir: Path, **options: Any) -> Iterator[OidcProvider]:
    """Start a provider for the block and stop it after, also when the block raises."""
    provider = OidcProvider(state_dir, **options)
    with provider:
        yield provider


def _user_arg(text: str) -> OidcUser:
    name, sep, rest = text.partition(":")
    password, _, roles = rest.partition(":")
    if not name or not sep or not password:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME:PASSWORD[:ROLE,ROLE...]")
    return OidcUser(name, password, name=name, roles=tuple(r for r in roles.split(",") if r))


def _client_arg(text: str) -> OidcClient:
    client_id, _, rest = text.partition(":")
    secret, _, roles = rest.partition(":")
    if not client_id:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ID[:SECRET[:ROLE,ROLE...]] (no secret: a public client)")
    return OidcClient(client_id, secret=secret or None, roles=tuple(r for r in roles.split(",") if r))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.oidc_provider",
        description="A local OpenID Connect provider for development and tests (HTTPS on 127.0.0.1). Prints the "
        "ORCHESTRATOR_OIDC_* settings that trust it, then serves until interrupted.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".oidc-provider"), help="where the TLS files go")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT)
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    parser.add_argument("--user", type=_user_arg, action="append", default=[], metavar="NAME:PASSWORD[:ROLES]")
    parser.add_argument("--client", type=_client_arg, action="append", default=[], metavar="ID[:SECRET[:ROLES]]")
    parser.add_argument(
        "--redirect-uri", action="append", default=[], help="registered for every client (loopback: any port)"
    )
    parser.add_argument("--auto-login", action="store_true", help="/authorize?login_hint=NAME signs NAME in at once")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        build_parser().error(f"--port {args.port}: give 0 (a free port) or a port number up to 65535")
    clients = [
        OidcClient(c.client_id, secret=c.secret, roles=c.roles, redirect_uris=tuple(args.redirect_uri))
        for c in args.client
    ]
    provider = OidcProvider(
        args.state_dir,
        tenant=args.tenant,
        audience=args.audience,
        users=args.user,
        clients=clients,
        auto_login=args.auto_login,
        port=args.port,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        provider.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}; choose another --port", file=sys.stderr)
        return 2
    try:
        print(f"ORCHESTRATOR_OIDC_ISSUER={provider.issuer}")
        print(f"ORCHESTRATOR_OIDC_AUDIENCE={provider.audience}")
        print(f"ORCHESTRATOR_OIDC_TENANT={provider.tenant}")
        print(f"ORCHESTRATOR_OIDC_CA_FILE={provider.ca_file.resolve()}")
        print(f"# token endpoint: {provider.token_url}")
        print(f"# authorize endpoint: {provider.authorize_url}")
        print("# ready; Ctrl-C stops", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        provider.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
