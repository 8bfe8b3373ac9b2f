"""Credentials for the local ARM, built and used exactly like ``azure.identity`` credentials.

The token is a well-formed unsigned JWT (``alg: none``) with a real ``exp``; the server accepts any well-formed,
unexpired bearer token, as the issue asks. It carries no secret, so it is safe to see in a debug log.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

ARM_SCOPE = "https://management.azure.com/.default"
_LIFETIME_SECONDS = 3600


def make_local_token(*, scopes: tuple[str, ...] = (ARM_SCOPE,), lifetime: int = _LIFETIME_SECONDS) -> AccessTokenInfo:
    now = int(time.time())
    expires_on = now + lifetime
    audience = scopes[0].removesuffix("/.default") if scopes else "https://management.azure.com"
    claims = {
        "aud": audience,
        "iss": "https://local-arm.invalid/",
        "iat": now,
        "nbf": now,
        "exp": expires_on,
        "oid": "00000000-0000-0000-0000-00000000a11c",
        "tid": "00000000-0000-0000-0000-000000000000",
        "sub": "local-arm-user",
        "jti": str(uuid.uuid4()),
    }
    token = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""])
    return AccessTokenInfo(token, expires_on, token_type="Bearer", refresh_on=expires_on - 300)


class LocalArmCredential:
    """A sync ``TokenCredential`` (and ``SupportsTokenInfo``) for the local ARM."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        info = make_local_token(scopes=scopes or (ARM_SCOPE,))
        return AccessToken(info.token, info.expires_on)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return make_local_token(scopes=scopes or (ARM_SCOPE,))

    def close(self) -> None:
        return None

    def __enter__(self) -> LocalArmCredential:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class AsyncLocalArmCredential:
    """The ``AsyncTokenCredential`` twin, for the ``.aio`` clients."""

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        info = make_local_token(scopes=scopes or (ARM_SCOPE,))
        return AccessToken(info.token, info.expires_on)

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return make_local_token(scopes=scopes or (ARM_SCOPE,))

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AsyncLocalArmCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


def _b64(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
