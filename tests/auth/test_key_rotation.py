"""The issuer's signing keys: cached, refetched once when a token names a key we do not hold (a rotation), that
refetch rate-limited (made-up key ids cannot make us hammer the issuer), refreshed on schedule (a retired key stops
verifying), fetched in a thread (a slow issuer does not stall the event loop). Through real HTTPS to the local
provider; the cache's clock is a fake one so that minutes-long intervals need no waiting."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from api.auth import OidcAuthenticator, OidcSettings, SigningKeys
from api.identity import AuthenticationError
from harness.oidc_provider import OidcProvider
from tests.support.oidc import FakeClock


async def test_a_rotated_key_is_picked_up_by_one_refetch(idp: OidcProvider, authenticator: OidcAuthenticator) -> None:
    old = idp.active_key
    old_token = idp.mint(subject="before")
    await authenticator.authenticate(f"Bearer {old_token}")
    assert idp.requests["jwks"] == 1

    new = idp.rotate()
    principal = await authenticator.authenticate("Bearer " + idp.mint(name="after"))

    assert principal.name == "after"
    assert idp.requests["jwks"] == 2
    assert new.kid != old.kid
    # Tokens signed before the rotation still hold while the issuer publishes the old key.
    await authenticator.authenticate(f"Bearer {old_token}")
    assert idp.requests["jwks"] == 2


async def test_the_unknown_kid_refetch_is_rate_limited(
    idp: OidcProvider, settings: OidcSettings, authenticator: OidcAuthenticator, clock: FakeClock
) -> None:
    await authenticator.authenticate("Bearer " + idp.mint())
    fetches = idp.requests["jwks"]

    # The issuer signs with a key it has not published yet: one refetch, which does not find it.
    pending = idp.rotate(publish=False)
    token = idp.mint(name="new-key")
    with pytest.raises(AuthenticationError, match=f"unknown signing key {pending.kid!r}"):
        await authenticator.authenticate(f"Bearer {token}")
    assert idp.requests["jwks"] == fetches + 1

    # An attacker sends a flood of made-up key ids, concurrently: no further fetch within the interval.
    forger = idp.unpublished_key()
    flood = [idp.mint(key=forger, kid=secrets.token_urlsafe(8)) for _ in range(50)]
    results = await asyncio.gather(*(authenticator.authenticate(f"Bearer {t}") for t in flood), return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) and "unknown signing key" in r.detail for r in results)
    assert idp.requests["jwks"] == fetches + 1

    # The issuer publishes the key; within the interval we have not looked again yet.
    idp.publish(pending)
    clock.advance(settings.refetch_interval_seconds - 1)
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await authenticator.authenticate(f"Bearer {token}")
    assert idp.requests["jwks"] == fetches + 1

    # Once the interval has passed, the next unknown kid refetches and the key is found.
    clock.advance(1)
    assert (await authenticator.authenticate(f"Bearer {token}")).name == "new-key"
    assert idp.requests["jwks"] == fetches + 2


async def test_a_burst_on_a_cold_cache_fetches_once(idp: OidcProvider, settings: OidcSettings) -> None:
    authenticator = OidcAuthenticator(settings)
    tokens = [idp.mint(subject=f"user-{i}", drop=["oid"]) for i in range(20)]
    principals = await asyncio.gather(*(authenticator.authenticate(f"Bearer {t}") for t in tokens))
    assert [p.subject for p in principals] == [f"user-{i}" for i in range(20)]
    assert idp.requests == {"discovery": 1, "jwks": 1}


async def test_a_retired_key_stops_verifying_after_the_scheduled_refresh(
    idp: OidcProvider, settings: OidcSettings, authenticator: OidcAuthenticator, clock: FakeClock
) -> None:
    old = idp.active_key
    old_token = idp.mint()
    await authenticator.authenticate(f"Bearer {old_token}")
    idp.rotate()
    idp.retire(old.kid)
    assert old.kid not in {k["kid"] for k in idp.jwks()["keys"]}

    clock.advance(settings.keys_max_age_seconds)
    with pytest.raises(AuthenticationError, match=f"unknown signing key {old.kid!r}"):
        await authenticator.authenticate(f"Bearer {old_token}")
    await authenticator.authenticate("Bearer " + idp.mint())


async def test_a_slow_issuer_does_not_block_the_event_loop(idp: OidcProvider, settings: OidcSettings) -> None:
    idp.jwks_delay = 0.5
    authenticator = OidcAuthenticator(settings, keys=SigningKeys(settings))
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        await authenticator.authenticate("Bearer " + idp.mint())
    finally:
        done.set()
        await ticking
    # A blocking fetch would have let the ticker run once; half a second in a thread lets it run dozens of times.
    assert ticks >= 10


async def test_nothing_logged_holds_a_token(
    idp: OidcProvider,
    settings: OidcSettings,
    authenticator: OidcAuthenticator,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    good = idp.mint()
    await authenticator.authenticate(f"Bearer {good}")
    injected = idp.mint(key=idp.unpublished_key(), kid="evil\nFAKE LOG LINE " + "x" * 500)
    with pytest.raises(AuthenticationError):
        await authenticator.authenticate(f"Bearer {injected}")
    clock.advance(settings.refetch_interval_seconds)
    idp.rotate()
    rotated = idp.mint()
    await authenticator.authenticate(f"Bearer {rotated}")

    assert caplog.text.count("refetching") == 2  # both unknown kids were logged...
    for token in (good, rotated, injected):
        for part in token.split("."):
            assert part not in caplog.text  # ...without any part of a token
    assert "evil\\nFAKE LOG LINE" in caplog.text  # the caller's kid is escaped: it cannot forge a log line
    assert "\nFAKE LOG LINE" not in caplog.text
    assert "x" * 200 not in caplog.text  # nor flood the log
