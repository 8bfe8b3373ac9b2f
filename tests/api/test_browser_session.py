"""The approval page's session cookie and sign-in redirects (api/browser.py), without a server: sealing, tampering,
expiry, purpose binding, the ``next`` target, and the session key setting. The flow itself runs in a real browser
in test_production_end_to_end.py."""

from __future__ import annotations

import base64

import pytest

from api.auth import AuthConfigError
from api.browser import ENV_SESSION_KEY, SealedCookies, safe_next, session_key_from_env


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_sealed_cookie_opens_only_unaltered_unexpired_and_for_its_purpose() -> None:
    clock = Clock()
    cookies = SealedCookies(session_key_from_env({}), clock=clock)
    sealed = cookies.seal("session", {"sub": "alice", "groups": ["Deployments.Approve"]}, expires_at=clock.now + 60)
    assert "alice" not in sealed and "Approve" not in sealed  # encrypted, not just signed
    assert cookies.open("session", sealed)["sub"] == "alice"
    assert cookies.open("sign-in", sealed) is None  # sealed for another purpose
    raw = bytearray(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
    raw[20] ^= 1
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert cookies.open("session", altered) is None
    assert cookies.open("session", "not-a-cookie") is None and cookies.open("session", None) is None
    other = SealedCookies(session_key_from_env({}), clock=clock)  # another process's key (no shared key set)
    assert other.open("session", sealed) is None
    clock.now += 61
    assert cookies.open("session", sealed) is None  # expired: the expiry is inside the sealed document


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/ui/deployments/deploy-1", "/ui/deployments/deploy-1"),
        ("/ui", "/ui"),
        (None, "/ui"),
        ("//evil.example/ui", "/ui"),
        ("https://evil.example/ui", "/ui"),
        ("/ui\\@evil.example", "/ui"),
        ("/deployments/deploy-1", "/ui"),  # the API is not a page to land on
        ("/ui/x\r\nSet-Cookie: a=b", "/ui"),
    ],
)
def test_after_sign_in_only_a_page_of_the_service_is_a_destination(asked: str | None, goes_to: str) -> None:
    assert safe_next(asked) == goes_to


def test_the_session_key_setting_is_checked() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    assert session_key_from_env({ENV_SESSION_KEY: key}) == bytes(range(32))
    assert len(session_key_from_env({})) == 32
    for bad in ("c2hvcnQ=", "not base64 at all!", base64.b64encode(bytes(64)).decode()):
        with pytest.raises(AuthConfigError, match=ENV_SESSION_KEY):
            session_key_from_env({ENV_SESSION_KEY: bad})


def test_replicas_sharing_the_session_key_accept_each_others_forms() -> None:
    from api.identity import Principal
    from api.page import CsrfTokens

    key = base64.b64encode(bytes(range(32))).decode()
    alice = Principal(subject="alice", name="alice", issuer="https://issuer.example/v2.0")
    one = CsrfTokens(SealedCookies(session_key_from_env({ENV_SESSION_KEY: key})).csrf_key)
    two = CsrfTokens(SealedCookies(session_key_from_env({ENV_SESSION_KEY: key})).csrf_key)
    elsewhere = CsrfTokens(SealedCookies(session_key_from_env({})).csrf_key)
    token = one.token(alice, "deploy-1", "sha256:ab")
    assert two.valid(token, alice, "deploy-1", "sha256:ab")
    assert not two.valid(token, alice, "deploy-1", "sha256:cd")  # another plan
    assert not elsewhere.valid(token, alice, "deploy-1", "sha256:ab")
