"""The local development mode: the API on one developer's machine, with nobody signing in.

Used by the embedded default (``starter.py dev``, ``demo --keep-running``) and ``starter.py api --dev``. Every
request is the configured identity (default: the OS account), with every role, and ``Principal.verified`` False, so
what the workflow records is labelled a claim, exactly like the CLI's OS account. It is safe only because the service
then listens on loopback alone: ``check_loopback`` refuses any other bind address, and the app refuses requests from
a non-loopback peer (a proxy forwarding to it would turn it into an open door). Production runs OpenID Connect
bearer tokens instead (``api/auth.py``)."""

from __future__ import annotations

import ipaddress

from api.identity import AuthenticationError, Principal, Role

DEV_ISSUER = "local-development-mode"


class DevModeError(ValueError):
    """The development mode was asked to do what would expose it."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_loopback(bind: str) -> None:
    """Refuse a bind address that is not loopback: nobody signs in in this mode."""
    if not is_loopback(bind):
        raise DevModeError(
            f"--bind {bind} is not a loopback address: the local development mode (--dev) authenticates nobody, so "
            "it listens on 127.0.0.1 or ::1 only. Bind to 127.0.0.1, or run without --dev behind OpenID Connect "
            "(docs/API.md)."
        )


class DevAuthenticator:
    """Everyone is ``identity`` (unverified); an Authorization header is not needed and not read."""

    def __init__(self, identity: str) -> None:
        if not identity.strip() or any(ord(c) < 32 for c in identity) or len(identity) > 256:
            raise DevModeError("the development identity must be a name of at most 256 characters")
        self.principal = Principal(subject=identity, name=identity, issuer=DEV_ISSUER, verified=False)

    async def authenticate(self, authorization: str | None) -> Principal:
        if self.principal is None:  # pragma: no cover - kept for the protocol's shape
            raise AuthenticationError("no development identity configured")
        return self.principal


class DevAuthorizer:
    """The developer holds every role everywhere (the worker's own policy still applies to decisions)."""

    def allows(self, principal: Principal, role: Role, subscription_id: str, resource_group: str) -> bool:
        return principal.issuer == DEV_ISSUER
