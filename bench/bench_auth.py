"""Sign-in cost for the team service: checking a bearer token against the local OpenID provider's keys.

    .venv/bin/python bench/bench_auth.py [--repeat N] [--concurrent N]

Rows: the first request of a cold service (discovery document and JWKS over HTTPS on loopback, then the check); a
warm check per token (keys cached; RS256 and ES256); N concurrent checks on one event loop; N tokens naming made-up
key ids (the refetch is rate-limited, so these cost no fetch). Figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.auth import OidcAuthenticator, OidcSettings  # noqa: E402
from api.identity import AuthenticationError  # noqa: E402
from harness.oidc_provider import OidcProvider  # noqa: E402


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.3f} ms ({min(values) * 1000:.3f}–{max(values) * 1000:.3f})"


async def run(idp: OidcProvider, repeat: int, concurrent: int) -> None:
    settings = OidcSettings(issuer=idp.issuer, audiences=(idp.audience,), tenant=idp.tenant, ca_file=idp.ca_file)

    cold: list[float] = []
    for _ in range(repeat):
        authenticator = OidcAuthenticator(settings)
        token = idp.mint()
        start = time.perf_counter()
        await authenticator.authenticate(f"Bearer {token}")
        cold.append(time.perf_counter() - start)
    print(f"cold first request (discovery + JWKS + check): {ms(cold)}")

    authenticator = OidcAuthenticator(settings)
    for alg in ("RS256", "ES256"):
        idp.rotate(alg)
        tokens = [idp.mint(subject=f"user-{i}") for i in range(repeat * 20)]
        await authenticator.authenticate(f"Bearer {tokens[0]}")  # fetch the new key
        warm = []
        for token in tokens:
            start = time.perf_counter()
            await authenticator.authenticate(f"Bearer {token}")
            warm.append(time.perf_counter() - start)
        print(f"warm check, {alg}: {ms(warm)} over {len(warm)} tokens")

    tokens = [idp.mint(subject=f"user-{i}") for i in range(concurrent)]
    start = time.perf_counter()
    await asyncio.gather(*(authenticator.authenticate(f"Bearer {t}") for t in tokens))
    elapsed = time.perf_counter() - start
    print(f"{concurrent} concurrent checks: {elapsed * 1000:.1f} ms ({concurrent / elapsed:.0f} per second)")

    fetches = idp.requests.get("jwks", 0)
    forger = idp.unpublished_key()
    flood = [idp.mint(key=forger, kid=secrets.token_urlsafe(8)) for _ in range(concurrent)]
    start = time.perf_counter()
    results = await asyncio.gather(*(authenticator.authenticate(f"Bearer {t}") for t in flood), return_exceptions=True)
    elapsed = time.perf_counter() - start
    assert all(isinstance(r, AuthenticationError) for r in results)
    print(
        f"{concurrent} made-up key ids: {elapsed * 1000:.1f} ms, "
        f"{idp.requests.get('jwks', 0) - fetches} JWKS fetches (rate-limited)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--concurrent", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, OidcProvider(Path(state)) as idp:
        asyncio.run(run(idp, args.repeat, args.concurrent))


if __name__ == "__main__":
    main()
