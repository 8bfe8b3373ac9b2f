"""Helpers for tests of sign-in against the local OpenID provider (harness/oidc_provider.py)."""

from __future__ import annotations


class FakeClock:
    """Monotonic time the signing-key cache reads, advanced by the test: the refetch interval and the keys' age are
    minutes long, and a test must not wait them out."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
