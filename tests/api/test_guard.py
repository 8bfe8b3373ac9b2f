"""The service's outer guard on a real uvicorn server (loopback, free port): an exception nobody foresaw is answered
as problem details and logged by its type only — its text, which may quote a request's values, reaches neither the
caller nor the log (the server's own error middleware would log the whole traceback)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from api.app import ApiSettings, GuardMiddleware
from api.server import bind_socket, url_of

SECRET = "pw-Zq8rT3vLx0"


async def exploding_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """Stands in for a route failing in a way nobody foresaw (the only double here: the failure itself)."""
    raise ValueError(f"input_value={SECRET!r} did not validate")


@pytest.fixture
def guarded_server() -> Iterator[str]:
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(GuardMiddleware(exploding_app, ApiSettings()), log_level="info", lifespan="off")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_unforeseen_error_is_a_problem_without_its_text(
    guarded_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = httpx.post(f"{guarded_server}/deployments", json={"pw": SECRET}, timeout=10)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/internal"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert SECRET not in response.text
    assert "ValueError" in caplog.text and SECRET not in caplog.text
