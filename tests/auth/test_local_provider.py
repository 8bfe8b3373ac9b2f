"""The local OpenID provider itself, over real HTTPS: discovery, client credentials for machine callers, the
authorization code flow with PKCE S256 (the approval page's sign-in), and the refusals a real provider makes. The
tokens it issues are checked by the service's authenticator."""

from __future__ import annotations

import base64
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.auth import OidcAuthenticator
from harness.oidc_provider import OidcProvider, pkce_pair, running_provider

ROOT = Path(__file__).resolve().parents[2]
REDIRECT = "http://127.0.0.1:8765/callback"  # loopback: any port of a registered loopback redirect (RFC 8252)


def client(idp: OidcProvider) -> httpx.Client:
    return httpx.Client(verify=idp.client_ssl_context(), timeout=10)


def authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "approval-page",
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "st-123",
        "nonce": "n-456",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def sign_in(http: httpx.Client, idp: OidcProvider, challenge: str) -> str:
    """Through the login form, as a browser would: GET the form, POST the user's name and password."""
    form = http.get(idp.authorize_url, params=authorize_params(challenge))
    assert form.status_code == 200 and 'name="username"' in form.text
    answer = http.post(
        idp.authorize_url, data={**authorize_params(challenge), "username": "alice", "password": "alice-password"}
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st-123"]
    return query["code"][0]


def test_discovery_document(idp: OidcProvider) -> None:
    with client(idp) as http:
        document = http.get(idp.discovery_url).json()
        jwks = http.get(document["jwks_uri"]).json()
    assert document["issuer"] == idp.issuer
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert [k["kid"] for k in jwks["keys"]] == [idp.active_key.kid]
    assert all("d" not in k for k in jwks["keys"])  # public keys only


async def test_pkce_round_trip_signs_alice_in(idp: OidcProvider, authenticator: OidcAuthenticator) -> None:
    verifier, challenge = pkce_pair()
    with client(idp) as http:
        code = sign_in(http, idp, challenge)
        tokens = http.post(
            idp.token_url,
            data={
                "grant_type": "authorization_code",
                "client_id": "approval-page",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
        )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    principal = await authenticator.authenticate(f"Bearer {body['access_token']}")
    assert principal.name == "alice"
    assert principal.groups == {"Deployments.Approve", "g-platform"}
    # The ID token is for the client application, not the API: the service refuses it as an access token.
    with pytest.raises(Exception, match="wrong audience"):
        await authenticator.authenticate(f"Bearer {body['id_token']}")
    id_claims = await OidcAuthenticator(
        type(authenticator.settings)(
            issuer=idp.issuer, audiences=("approval-page",), tenant=idp.tenant, ca_file=idp.ca_file
        )
    ).verify(body["id_token"])
    assert (id_claims["nonce"], id_claims["name"]) == ("n-456", "Alice")


def test_a_wrong_code_verifier_is_refused_and_the_code_is_spent(idp: OidcProvider) -> None:
    verifier, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    exchange = {"grant_type": "authorization_code", "client_id": "approval-page", "redirect_uri": REDIRECT}
    with client(idp) as http:
        code = sign_in(http, idp, challenge)
        wrong = http.post(idp.token_url, data={**exchange, "code": code, "code_verifier": other_verifier})
        assert wrong.status_code == 400
        assert wrong.json() == {
            "error": "invalid_grant",
            "error_description": "code_verifier does not match the code_challenge",
        }
        # A code is single use: after a failed exchange, even the right verifier gets nothing.
        again = http.post(idp.token_url, data={**exchange, "code": code, "code_verifier": verifier})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

        # No verifier, or another redirect_uri, is refused too.
        code = sign_in(http, idp, challenge)
        missing = http.post(idp.token_url, data={**exchange, "code": code})
        assert "code_verifier missing" in missing.json()["error_description"]
        code = sign_in(http, idp, challenge)
        moved = http.post(
            idp.token_url,
            data={**exchange, "code": code, "code_verifier": verifier, "redirect_uri": "http://127.0.0.1:1/other"},
        )
        assert "redirect_uri differs" in moved.json()["error_description"]


def test_authorize_refusals(idp: OidcProvider) -> None:
    _, challenge = pkce_pair()
    with client(idp) as http:
        # Without PKCE, or with the plain method: an error sent back to the client.
        for extra in ({"code_challenge_method": "plain"}, {"code_challenge": ""}):
            answer = http.get(idp.authorize_url, params=authorize_params(challenge, **extra))
            assert answer.status_code == 302
            assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == ["invalid_request"]
        # An unregistered redirect URI is never redirected to (it could be an attacker's).
        answer = http.get(idp.authorize_url, params=authorize_params(challenge, redirect_uri="https://evil.example/cb"))
        assert answer.status_code == 400 and "location" not in answer.headers
        # A wrong password shows the form again.
        answer = http.post(
            idp.authorize_url, data={**authorize_params(challenge), "username": "alice", "password": "guess"}
        )
        assert answer.status_code == 401 and "Wrong user name or password" in answer.text


def test_login_hint_signs_in_at_once_only_with_auto_login(tmp_path: Path) -> None:
    from harness.oidc_provider import OidcClient, OidcUser

    _, challenge = pkce_pair()
    options = {
        "users": [OidcUser("bob", "pw")],
        "clients": [OidcClient("approval-page", redirect_uris=(REDIRECT,))],
    }
    with running_provider(tmp_path, auto_login=True, **options) as idp, client(idp) as http:  # type: ignore[arg-type]
        answer = http.get(idp.authorize_url, params=authorize_params(challenge, login_hint="bob"))
        assert answer.status_code == 302 and "code=" in answer.headers["location"]
    with running_provider(tmp_path, **options) as idp, client(idp) as http:  # type: ignore[arg-type]
        answer = http.get(idp.authorize_url, params=authorize_params(challenge, login_hint="bob"))
        assert answer.status_code == 200 and 'name="password"' in answer.text


async def test_client_credentials(idp: OidcProvider, authenticator: OidcAuthenticator) -> None:
    with client(idp) as http:
        by_form = http.post(
            idp.token_url,
            data={"grant_type": "client_credentials", "client_id": "pipeline", "client_secret": "pipeline-secret"},
        )
        basic = base64.b64encode(b"pipeline:pipeline-secret").decode()
        by_basic = http.post(
            idp.token_url, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
        )
        wrong = http.post(
            idp.token_url,
            data={"grant_type": "client_credentials", "client_id": "pipeline", "client_secret": "nope"},
        )
        public = http.post(idp.token_url, data={"grant_type": "client_credentials", "client_id": "approval-page"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert public.status_code == 400 and public.json()["error"] == "unauthorized_client"
    for answer in (by_form, by_basic):
        assert answer.status_code == 200
        principal = await authenticator.authenticate(f"Bearer {answer.json()['access_token']}")
        assert principal.groups == {"Deployments.Deploy"}


def test_the_provider_stops_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="test failed"), running_provider(tmp_path) as idp:
        url = idp.discovery_url
        context = idp.client_ssl_context()
        raise RuntimeError("test failed")
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=context, timeout=2) as http:
        http.get(url)


async def test_the_provider_runs_standalone_for_development(tmp_path: Path) -> None:
    """`python -m harness.oidc_provider` (docs/AUTH.md): prints the settings that trust it, issues tokens the service
    accepts with exactly those settings, stops on SIGTERM with exit code 0."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.oidc_provider",
            "--state-dir",
            str(tmp_path),
            "--client",
            "pipeline:s3cret:Deployments.Deploy",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Lines come through a reader thread: select() on a buffered pipe misses lines already read ahead.
        queue: Queue[str] = Queue()
        reader = threading.Thread(target=lambda: [queue.put(line) for line in process.stdout or ()], daemon=True)
        reader.start()
        lines: list[str] = []
        while not lines or lines[-1] != "# ready; Ctrl-C stops":
            try:
                lines.append(queue.get(timeout=60).rstrip("\n"))
            except Empty:
                pytest.fail(f"the provider printed {lines} in 60 s; exit code {process.poll()}")
        environ = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
        token_url = next(line.split(": ", 1)[1] for line in lines if line.startswith("# token endpoint"))
        with httpx.Client(
            verify=ssl.create_default_context(cafile=environ["ORCHESTRATOR_OIDC_CA_FILE"]), timeout=10
        ) as http:
            answer = http.post(
                token_url,
                data={"grant_type": "client_credentials", "client_id": "pipeline", "client_secret": "s3cret"},
            )
        principal = await OidcAuthenticator.from_env(environ).authenticate(f"Bearer {answer.json()['access_token']}")
        assert principal.groups == {"Deployments.Deploy"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_bad_user_argument_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.oidc_provider", "--state-dir", str(tmp_path), "--user", "alice"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "'alice': expected NAME:PASSWORD[:ROLE,ROLE...]" in done.stderr
    assert "Traceback" not in done.stderr
