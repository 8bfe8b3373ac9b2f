"""Running the API under uvicorn: on a socket bound before serving (so ``--port 0`` can report the port it got), with
uvicorn's own handling of SIGINT/SIGTERM (stop accepting, finish or cut open streams after a grace period)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from api.auth import OidcAuthenticator, OidcSettings
    from api.browser import BrowserSessions
    from api.role_map import RoleMap

GRACEFUL_SHUTDOWN_SECONDS = 3
ENV_PUBLIC_URL = "ORCHESTRATOR_PUBLIC_URL"  # where people reach the service (services/notifications links there too)


class ServiceConfigError(ValueError):
    """The service cannot start as configured; the message says what to set."""


@dataclass
class ProductionAuth:
    """Sign-in and roles of the service outside the development mode."""

    authenticator: OidcAuthenticator
    role_map: RoleMap
    browser: BrowserSessions | None  # None: the approval page takes bearer tokens only


def production_auth(environ: Mapping[str, str]) -> ProductionAuth:
    """OpenID Connect bearer tokens (``ORCHESTRATOR_OIDC_*``), the role map (``ORCHESTRATOR_ROLE_MAP``: required —
    without one nobody could do anything, and a service that silently refuses everyone is a misconfiguration) and,
    when ``ORCHESTRATOR_OIDC_CLIENT_ID`` is set, browser sign-in for the approval page (its callback
    ``ORCHESTRATOR_OIDC_REDIRECT_URI``, by default ``$ORCHESTRATOR_PUBLIC_URL/ui/sign-in/callback``). Raises
    ``ServiceConfigError`` naming the variable at fault; nothing is fetched from the issuer yet."""
    from api.auth import AuthConfigError, OidcAuthenticator, OidcSettings
    from api.browser import CALLBACK_PATH, BrowserSessions, SealedCookies, check_callback, session_key_from_env
    from api.role_map import ENV_ROLE_MAP, role_map_from_env
    from api.sign_in import ENV_CLIENT_ID, ENV_REDIRECT_URI, BrowserSignIn, SignInSettings

    try:
        settings = OidcSettings.from_env(environ)
        _check_ca_file(settings)
        authenticator = OidcAuthenticator(settings)
        role_map = role_map_from_env(environ)
        if role_map is None:
            raise AuthConfigError(
                f"{ENV_ROLE_MAP} is not set: name the role map file that grants deployer, approver and reader per "
                "subscription/resource group (docs/AUTH.md, 'The role map'); without one nobody may do anything"
            )
        browser = None
        if (environ.get(ENV_CLIENT_ID) or "").strip():
            env = dict(environ)
            public = (env.get(ENV_PUBLIC_URL) or "").strip().rstrip("/")
            if public and not (env.get(ENV_REDIRECT_URI) or "").strip():
                env[ENV_REDIRECT_URI] = public + CALLBACK_PATH  # the callback under the service's public URL
            sign_in = BrowserSignIn(authenticator, SignInSettings.from_env(env))
            browser = BrowserSessions(
                sign_in,
                SealedCookies(session_key_from_env(environ)),
                relevant_claims=frozenset(grant.claim for grant in role_map.grants),
            )
            check_callback(browser)
    except AuthConfigError as exc:
        raise ServiceConfigError(str(exc)) from None
    return ProductionAuth(authenticator, role_map, browser)


def _check_ca_file(settings: OidcSettings) -> None:
    """A CA bundle that is not PEM certificates is a setting to fix now, not a failed request later."""
    import ssl

    from api.auth import ENV_CA_FILE, AuthConfigError, issuer_tls_context

    try:
        issuer_tls_context(settings)
    except (ssl.SSLError, OSError, ValueError):
        raise AuthConfigError(
            f"{ENV_CA_FILE}={settings.ca_file}: not a readable PEM bundle of CA certificates; name the "
            "file holding the certificates the issuer's TLS chains to, or unset it to use the system's"
        ) from None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one); OSError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """Uvicorn re-raises a captured SIGINT/SIGTERM once it has shut down, so the process would end "killed by
    signal"; a stop asked for is a clean stop here (exit code 0), so the signals are handled on the loop instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_stop(self) -> None:
        if self.should_exit:  # asked twice: stop waiting for open connections
            self.force_exit = True
        self.should_exit = True


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(app: Any, sock: socket.socket, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM; ``on_ready(url)`` once it accepts connections."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # request lines go nowhere by default: a query string is the caller's business
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        lifespan="off",
        server_header=False,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.request_stop)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        if on_ready is not None:
            on_ready(url_of(sock))

    task = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
