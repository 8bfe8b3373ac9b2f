"""Who is calling the team service, and what they may do: the shapes shared by sign-in (OpenID Connect bearer
tokens, the local development mode) and the routes that check roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

# What a caller may do for a subscription/resource group: start deployments, approve or reject them, read them.
Role = Literal["deployer", "approver", "reader"]
ROLES: tuple[Role, ...] = ("deployer", "approver", "reader")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``subject`` is stable per person or application (Entra ID's ``oid``, else ``sub``);
    ``name`` is for people to read (``preferred_username``, ``upn``, ``email``); ``groups`` holds the app roles and
    group ids of the token, which the role map turns into roles per scope."""

    subject: str
    name: str
    issuer: str
    groups: frozenset[str] = field(default_factory=frozenset)
    tenant: str | None = None
    # False only in the local development mode, where nobody signed in and the identity is configured.
    verified: bool = True


class AuthenticationError(Exception):
    """No credential, or one that does not hold: answered 401 with a ``WWW-Authenticate`` challenge."""

    def __init__(self, detail: str, *, error: str = "invalid_token") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error  # RFC 6750: invalid_request, invalid_token, insufficient_scope


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization`` header value; raises ``AuthenticationError``."""
        ...


class Authorizer(Protocol):
    def allows(self, principal: Principal, role: Role, subscription_id: str, resource_group: str) -> bool:
        """Whether ``principal`` holds ``role`` for that resource group."""
        ...
