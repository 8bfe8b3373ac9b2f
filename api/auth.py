"""Sign-in for the team service: OpenID Connect bearer tokens (Microsoft Entra ID in production) checked against the
issuer's signing keys.

The keys come from the issuer's JWKS, found through its discovery document, cached and refreshed: on a schedule, and
once when a token names a key we do not hold (the issuer rotated) — rate-limited, so a caller sending made-up key
ids cannot make us hammer the issuer. Only asymmetric algorithms are accepted, and each key only for the algorithms
of its type, so neither ``alg: none`` nor the HS256-with-the-public-key confusion can pass. Messages say what was
wrong with a token and never echo it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWKError,
)

from api.identity import AuthenticationError, Authenticator, Principal

log = logging.getLogger(__name__)

ENV_ISSUER = "ORCHESTRATOR_OIDC_ISSUER"
ENV_AUDIENCE = "ORCHESTRATOR_OIDC_AUDIENCE"
ENV_TENANT = "ORCHESTRATOR_OIDC_TENANT"
ENV_CA_FILE = "ORCHESTRATOR_OIDC_CA_FILE"
ENV_LEEWAY = "ORCHESTRATOR_OIDC_LEEWAY_SECONDS"
ENV_ALGORITHMS = "ORCHESTRATOR_OIDC_ALGORITHMS"
ENV_KEYS_MAX_AGE = "ORCHESTRATOR_OIDC_KEYS_MAX_AGE_SECONDS"
ENV_REFETCH_INTERVAL = "ORCHESTRATOR_OIDC_KEYS_REFETCH_SECONDS"

# Asymmetric only: a symmetric algorithm would let anyone holding a "key" from the public JWKS sign tokens.
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
# Which key type (and curve) may verify which algorithm: a key is used only for the algorithms of its kind.
_KEY_KIND: dict[str, tuple[str, str | None]] = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}

# Without keys, how long a failed fetch of the issuer's keys is answered from memory before the issuer is asked again.
COLD_RETRY_SECONDS = 5.0
_MAX_TOKEN_CHARS = 16 * 1024
MAX_ISSUER_DOCUMENT_BYTES = 1024 * 1024
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class AuthConfigError(ValueError):
    """The sign-in or authorization settings are unusable: the message names the setting, what is wrong and what to
    do. Raised when the service starts, never for a request."""


class IssuerUnavailableError(AuthenticationError):
    """The issuer's discovery document or keys could not be fetched and none are cached: the token may be fine, we
    cannot check it. The service may answer 503 rather than 401."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="temporarily_unavailable")


@dataclass(frozen=True)
class OidcSettings:
    """Who may sign tokens for the service and for whom they must be meant."""

    issuer: str
    audiences: tuple[str, ...]
    tenant: str | None = None
    ca_file: Path | None = None
    leeway_seconds: float = 60.0
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    # The JWKS is fetched again after this long even if no unknown key was seen (Entra ID publishes new keys well
    # before signing with them, so the scheduled refresh usually picks up a rotation first).
    keys_max_age_seconds: float = 3600.0
    # At most one fetch per this interval because a token named a key we do not hold.
    refetch_interval_seconds: float = 60.0
    http_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        _check_https(self.issuer, ENV_ISSUER)
        if not self.audiences or any(not a.strip() for a in self.audiences):
            raise AuthConfigError(
                f"{ENV_AUDIENCE} is empty: set it to the API's application id URI or client id (comma-separated "
                "for several)"
            )
        for alg in self.algorithms:
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise AuthConfigError(
                    f"{ENV_ALGORITHMS} names {alg!r}, which is not an accepted signing algorithm: use any of "
                    f"{', '.join(ASYMMETRIC_ALGORITHMS)} (symmetric algorithms and 'none' are never accepted)"
                )
        if not self.algorithms:
            raise AuthConfigError(f"{ENV_ALGORITHMS} is empty: name at least one of {', '.join(ASYMMETRIC_ALGORITHMS)}")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise AuthConfigError(
                f"{ENV_CA_FILE}={self.ca_file}: no such file; name a PEM bundle of the CAs the issuer's TLS "
                "certificate chains to, or unset it to use the system's"
            )
        for name, value, low in (
            (ENV_LEEWAY, self.leeway_seconds, 0.0),
            (ENV_KEYS_MAX_AGE, self.keys_max_age_seconds, 1.0),
            (ENV_REFETCH_INTERVAL, self.refetch_interval_seconds, 0.0),
        ):
            if not low <= value < 10**7:
                raise AuthConfigError(f"{name}={value} is out of range: give seconds, at least {low:g}")
        if self.leeway_seconds > 300:
            raise AuthConfigError(
                f"{ENV_LEEWAY}={self.leeway_seconds:g} is too large: clock skew leeway is at most 300 seconds"
            )

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcSettings:
        """The settings from ``ORCHESTRATOR_OIDC_*``; raises ``AuthConfigError`` naming the variable at fault."""
        env = os.environ if environ is None else environ
        issuer = env.get(ENV_ISSUER, "").strip()
        if not issuer:
            raise AuthConfigError(
                f"{ENV_ISSUER} is not set: set it to the token issuer, for Entra ID "
                "https://login.microsoftonline.com/<tenant id>/v2.0 (docs/AUTH.md)"
            )
        audience = env.get(ENV_AUDIENCE, "").strip()
        if not audience:
            raise AuthConfigError(
                f"{ENV_AUDIENCE} is not set: set it to the API's application id URI (api://...) or client id, "
                "comma-separated for several (docs/AUTH.md)"
            )
        tenant = env.get(ENV_TENANT, "").strip() or None
        ca = env.get(ENV_CA_FILE, "").strip()
        algorithms = tuple(a.strip() for a in env.get(ENV_ALGORITHMS, "RS256,ES256").split(",") if a.strip())
        return cls(
            issuer=issuer,
            audiences=tuple(a.strip() for a in audience.split(",") if a.strip()),
            tenant=tenant,
            ca_file=Path(ca).expanduser() if ca else None,
            leeway_seconds=_seconds(env, ENV_LEEWAY, 60.0),
            algorithms=algorithms,
            keys_max_age_seconds=_seconds(env, ENV_KEYS_MAX_AGE, 3600.0),
            refetch_interval_seconds=_seconds(env, ENV_REFETCH_INTERVAL, 60.0),
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise AuthConfigError(f"{name}={raw!r} is not a number of seconds") from None


def _check_https(url: str, setting: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise AuthConfigError(
            f"{setting}={url!r} is not an https URL: the issuer's keys must come over TLS "
            "(e.g. https://login.microsoftonline.com/<tenant id>/v2.0)"
        )
    if parts.query or parts.fragment:
        raise AuthConfigError(f"{setting}={url!r} must not carry a query or fragment")


def issuer_tls_context(settings: OidcSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class NoRedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _fetch_json(url: str, context: ssl.SSLContext, timeout: float) -> dict[str, Any]:
    """GET a JSON object over HTTPS (blocking: run in a thread). No redirects, bounded size."""
    opener = urllib.request.build_opener(NoRedirectHandler(), urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_ISSUER_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise IssuerUnavailableError(f"the issuer answered {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise IssuerUnavailableError(f"cannot reach the issuer at {url}: {reason}") from None
    if len(body) > MAX_ISSUER_DOCUMENT_BYTES:
        raise IssuerUnavailableError(f"the issuer's document at {url} is larger than {MAX_ISSUER_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        raise IssuerUnavailableError(f"the issuer's document at {url} is not JSON") from None
    if not isinstance(document, dict):
        raise IssuerUnavailableError(f"the issuer's document at {url} is not a JSON object")
    return document


@dataclass
class _KeySet:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float | None = None


class SigningKeys:
    """The issuer's signing keys by ``kid``: fetched through discovery, cached for ``keys_max_age_seconds``, fetched
    again once for an unknown ``kid`` but at most once per ``refetch_interval_seconds``. Fetches run in a thread (the
    event loop never blocks) and one at a time (a burst of requests causes one fetch). When a scheduled refresh fails
    the keys held are kept and the failure logged."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        fetch_json: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        if fetch_json is None:
            context = issuer_tls_context(settings)

            def fetch_json(url: str) -> dict[str, Any]:
                return _fetch_json(url, context, settings.http_timeout_seconds)

        self._fetch_json = fetch_json
        self._set = _KeySet()
        self._last_unknown_kid_fetch: float | None = None
        # With no keys held, a failed fetch is remembered for a few seconds: requests meanwhile fail at once instead
        # of each asking the issuer again (and queueing behind one another's timeouts).
        self._cold_failure: tuple[float, IssuerUnavailableError] | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # JWKS fetches made, for tests and diagnostics
        self._discovery: dict[str, Any] | None = None

    async def key(self, kid: str) -> dict[str, Any] | None:
        """The JWK for ``kid``, or None when the issuer does not publish it (after at most one rate-limited
        refetch)."""
        if self._stale():
            async with self._lock:
                if self._stale():
                    self._raise_recent_cold_failure()
                    await self._refresh(scheduled=True)
        found = self._set.keys.get(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._set.keys.get(kid)  # another request may have refetched while we waited
            if found is not None or not self._may_refetch():
                return found
            self._last_unknown_kid_fetch = self._clock()
            log.info(
                "token names signing key %s, which the issuer did not publish when last fetched: refetching",
                _shown(kid),  # bounded and escaped: the kid is the caller's text
            )
            await self._refresh(scheduled=False)
            return self._set.keys.get(kid)

    async def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document as last fetched with the keys (fetched now if never)."""
        if self._discovery is None:
            async with self._lock:
                if self._discovery is None:
                    self._raise_recent_cold_failure()
                    await self._refresh(scheduled=True)
        assert self._discovery is not None
        return self._discovery

    def _raise_recent_cold_failure(self) -> None:
        if self._set.keys or self._cold_failure is None:
            return
        failed_at, error = self._cold_failure
        if self._clock() - failed_at < min(self._settings.refetch_interval_seconds, COLD_RETRY_SECONDS):
            raise IssuerUnavailableError(error.detail)

    def _stale(self) -> bool:
        fetched = self._set.fetched_at
        return fetched is None or self._clock() - fetched >= self._settings.keys_max_age_seconds

    def _may_refetch(self) -> bool:
        last = self._last_unknown_kid_fetch
        if last is None:
            return True
        return self._clock() - last >= self._settings.refetch_interval_seconds

    async def _refresh(self, *, scheduled: bool) -> None:
        try:
            keys = await asyncio.to_thread(self._load)
        except IssuerUnavailableError as exc:
            if self._set.keys:
                log.warning("refreshing the issuer's signing keys failed, keeping the ones held: %s", exc.detail)
                # Try again after the refetch interval rather than on every request.
                self._set.fetched_at = (
                    self._clock()
                    - self._settings.keys_max_age_seconds
                    + max(self._settings.refetch_interval_seconds, 1.0)
                )
                return
            self._cold_failure = (self._clock(), exc)
            raise
        self._cold_failure = None
        self._set = _KeySet(keys, self._clock())
        log.info(
            "fetched the issuer's signing keys (%s): %s",
            "scheduled" if scheduled else "unknown key id",
            ", ".join(sorted(keys)) or "none",
        )

    def _load(self) -> dict[str, dict[str, Any]]:
        settings = self._settings
        discovery = self._fetch_json(settings.discovery_url)
        issuer = discovery.get("issuer")
        if issuer != settings.issuer:
            raise IssuerUnavailableError(
                f"the discovery document at {settings.discovery_url} names issuer {issuer!r}, not the configured "
                f"{settings.issuer!r}: check {ENV_ISSUER}"
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != "https":
            raise IssuerUnavailableError(f"the discovery document at {settings.discovery_url} has no https jwks_uri")
        self.fetches += 1
        jwks = self._fetch_json(jwks_uri)
        entries = jwks.get("keys")
        if not isinstance(entries, list):
            raise IssuerUnavailableError(f"the JWKS at {jwks_uri} has no 'keys' list")
        keys: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue  # encryption keys and symmetric keys never verify a token
            keys[entry["kid"]] = entry
        self._discovery = discovery
        return keys


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def _when(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return repr(timestamp)


def _shown(value: Any) -> str:
    """A claim value for an error message, bounded (claims are not secret, but a message is no place for a novel)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text if len(text) <= 120 else text[:117] + "...")


class OidcAuthenticator:
    """``api.identity.Authenticator`` for OpenID Connect bearer tokens: ``Authorization: Bearer <JWT>`` checked
    against the configured issuer, audience(s) and tenant, signed by a key of the issuer's JWKS."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        keys: SigningKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys or SigningKeys(settings)
        self._clock = clock
        # (kid, alg) -> (the JWK it was built from, the key ready to verify): reading a public key costs about a
        # tenth of a check. Rebuilt when a refresh brings a new JWK object for the kid.
        self._verifiers: dict[tuple[str, str], tuple[dict[str, Any], jwt.PyJWK]] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcAuthenticator:
        return cls(OidcSettings.from_env(environ))

    async def authenticate(self, authorization: str | None) -> Principal:
        token = _bearer_token(authorization)
        claims = await self.verify(token)
        return principal_from_claims(claims)

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token that holds; raises ``AuthenticationError`` saying why not."""
        settings = self.settings
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise AuthenticationError("malformed token: its header names no signing algorithm")
        if alg.lower() == "none":
            raise AuthenticationError("unsigned token (alg 'none') refused: tokens must be signed by the issuer")
        if alg.upper().startswith("HS"):
            raise AuthenticationError(
                f"token signed with the symmetric algorithm {alg} refused: only the issuer's asymmetric keys "
                f"({', '.join(settings.algorithms)}) are accepted"
            )
        if alg not in settings.algorithms:
            raise AuthenticationError(
                f"token signed with {alg} refused: accepted algorithms are {', '.join(settings.algorithms)}"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("malformed token: its header names no signing key (kid)")
        jwk = await self.keys.key(kid)
        if jwk is None:
            raise AuthenticationError(
                f"unknown signing key {_shown(kid)}: the issuer {settings.issuer} does not publish it"
            )
        cached = self._verifiers.get((kid, alg))
        if cached is not None and cached[0] is jwk:
            key = cached[1]
        else:
            key = _verification_key(jwk, alg, kid)
            if len(self._verifiers) >= 64:
                self._verifiers.clear()
            self._verifiers[(kid, alg)] = (jwk, key)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=list(settings.audiences),
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"], "verify_signature": True},
            )
        except InvalidSignatureError:
            raise AuthenticationError(
                f"bad signature: the token was not signed by the issuer's key {_shown(kid)}"
            ) from None
        except ExpiredSignatureError:
            exp = _unverified_claim(token, "exp")
            raise AuthenticationError(
                f"token expired at {_when(exp)} (now {_when(self._clock())}, leeway {settings.leeway_seconds:g} s): "
                "get a new one"
            ) from None
        except ImmatureSignatureError:
            nbf = _unverified_claim(token, "nbf")
            iat = _unverified_claim(token, "iat")
            raise AuthenticationError(
                f"token not valid yet: valid from {_when(nbf if nbf is not None else iat)} "
                f"(now {_when(self._clock())}, leeway {settings.leeway_seconds:g} s)"
            ) from None
        except InvalidAudienceError:
            aud = _unverified_claim(token, "aud")
            raise AuthenticationError(
                f"wrong audience: expected {' or '.join(settings.audiences)}, the token is for {_shown(aud)}"
            ) from None
        except InvalidIssuerError:
            iss = _unverified_claim(token, "iss")
            raise AuthenticationError(
                f"wrong issuer: expected {settings.issuer}, the token was issued by {_shown(iss)}"
            ) from None
        except MissingRequiredClaimError as exc:
            raise AuthenticationError(f"malformed token: it has no {exc.claim!r} claim") from None
        except InvalidIssuedAtError:
            raise AuthenticationError("malformed token: its 'iat' claim is not a number") from None
        except (InvalidAlgorithmError, InvalidKeyError, PyJWKError):
            raise AuthenticationError(
                f"token refused: signing key {_shown(kid)} cannot verify algorithm {alg}"
            ) from None
        except DecodeError:
            raise AuthenticationError("malformed token: its claims are not a JSON object of valid values") from None
        except InvalidTokenError as exc:  # any other claim PyJWT refuses (e.g. a non-numeric exp)
            raise AuthenticationError(f"malformed token: {exc}") from None
        if settings.tenant is not None:
            tid = claims.get("tid")
            if tid is None:
                raise AuthenticationError(f"wrong tenant: expected {settings.tenant}, the token has no 'tid' claim")
            if str(tid).lower() != settings.tenant.lower():
                raise AuthenticationError(f"wrong tenant: expected {settings.tenant}, the token is from {_shown(tid)}")
        if not isinstance(claims.get("oid") or claims.get("sub"), str):
            raise AuthenticationError("malformed token: it names no subject ('oid' or 'sub')")
        return claims


def _bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise AuthenticationError(
            "no bearer token: send 'Authorization: Bearer <access token>'", error="invalid_request"
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        shown = scheme if len(scheme) <= 20 and scheme.isalnum() else "other"
        raise AuthenticationError(
            f"malformed Authorization header: expected the Bearer scheme, got {shown!r}", error="invalid_request"
        )
    token = token.strip()
    if not token:
        raise AuthenticationError("malformed Authorization header: 'Bearer' without a token", error="invalid_request")
    if len(token) > _MAX_TOKEN_CHARS:
        raise AuthenticationError(f"malformed token: longer than {_MAX_TOKEN_CHARS} characters")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise AuthenticationError("malformed token: not a JWT (three base64url parts separated by dots)")
    return token


def _header(token: str) -> dict[str, Any]:
    try:
        header = _b64_json(token.split(".", 1)[0])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise AuthenticationError("malformed token: its header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise AuthenticationError("malformed token: its header is not a JSON object")
    return header


def _unverified_claim(token: str, name: str) -> Any:
    """A claim of a token whose signature already verified (for the message of a claim check that failed)."""
    try:
        payload = _b64_json(token.split(".")[1])
    except (ValueError, binascii.Error, UnicodeDecodeError, IndexError, RecursionError):
        return None
    return payload.get(name) if isinstance(payload, dict) else None


def _verification_key(jwk: dict[str, Any], alg: str, kid: str) -> jwt.PyJWK:
    """The JWK bound to the token's algorithm, only if the key is of that algorithm's kind (an RSA key never verifies
    an EC algorithm, and a key whose JWK names an ``alg`` only verifies that one)."""
    kty, crv = _KEY_KIND[alg]
    declared = jwk.get("alg")
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv) or (declared and declared != alg):
        raise AuthenticationError(
            f"token refused: signing key {_shown(kid)} is a {jwk.get('kty')} key"
            f"{' for ' + str(declared) if declared else ''}, which does not verify {alg}"
        )
    try:
        return jwt.PyJWK(jwk, algorithm=alg)
    except (PyJWKError, InvalidKeyError, ValueError, TypeError):
        raise AuthenticationError(f"unknown key: the issuer's key {_shown(kid)} cannot be read") from None


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The caller a verified token names: ``oid`` (stable across an Entra tenant's applications) else ``sub``; the
    app roles (``roles``) and group ids (``groups``) the role map reads."""
    subject = claims.get("oid") or claims.get("sub")
    name = next(
        (
            claims[c]
            for c in ("preferred_username", "upn", "email", "name")
            if isinstance(claims.get(c), str) and claims[c]
        ),
        subject,
    )
    groups: set[str] = set()
    for claim in ("roles", "groups"):
        value = claims.get(claim)
        if isinstance(value, str):
            groups.add(value)
        elif isinstance(value, list):
            groups.update(v for v in value if isinstance(v, str))
    if "groups" not in claims and "groups" in (claims.get("_claim_names") or {}):
        # Entra ID leaves out the groups of a member of too many groups ("overage"): roles then come from app roles
        # only (docs/AUTH.md recommends app roles for that reason).
        log.warning("token of %s has too many groups to carry them (overage): only its app roles count", subject)
    tid = claims.get("tid")
    return Principal(
        subject=str(subject),
        name=str(name),
        issuer=str(claims.get("iss")),
        groups=frozenset(groups),
        tenant=str(tid) if tid is not None else None,
    )


def _conforms(authenticator: OidcAuthenticator) -> Authenticator:
    """mypy checks here that ``OidcAuthenticator`` is an ``api.identity.Authenticator``."""
    return authenticator
