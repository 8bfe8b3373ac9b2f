"""Running the API under uvicorn: on a socket bound before serving (so ``--port 0`` can report the port it got), with
uvicorn's own handling of SIGINT/SIGTERM (stop accepting, finish or cut open streams after a grace period)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from api.identity import Authenticator, Authorizer

GRACEFUL_SHUTDOWN_SECONDS = 3


class ServiceConfigError(ValueError):
    """The service cannot start as configured; the message says what to set."""


def production_auth(environ: dict[str, str] | os._Environ[str]) -> tuple[Authenticator, Authorizer]:
    """OpenID Connect sign-in and the role map, from the environment (``api/auth.py``'s ``from_env``)."""
    try:
        auth = importlib.import_module("api.auth")
    except ImportError:
        raise ServiceConfigError(
            "OpenID Connect sign-in is not available in this build; run with --dev on loopback for local "
            "development (docs/API.md)."
        ) from None
    from_env: Callable[[Any], tuple[Authenticator, Authorizer]] = auth.from_env
    try:
        return from_env(environ)
    except ValueError as exc:
        raise ServiceConfigError(str(exc)) from None


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
