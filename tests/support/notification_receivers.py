"""Real receivers for the notification tests, on 127.0.0.1 and free ports, always stopped: an HTTP receiver that
answers from a script (fail N times, hold a request unanswered) and keeps every request, and an SMTP server
(aiosmtpd) that requires STARTTLS (a certificate from a private CA) and a login before it takes mail.

The real Slack, Teams and e-mail services cannot be reached from here; these stand in for them at the HTTP and
SMTP level (what the orchestrator sends is what they would receive)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.health_servers import make_pki

WEBHOOK_KEY = "receiver-test-key-0123456789abcdef"
SMTP_USER = "notifier"
SMTP_PASSWORD = "smtp-test-password-4711"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """``statuses``: the answers to the first requests, in order (then 200). ``hold``: while set, requests are
    kept unanswered (and recorded when they arrive) until ``release`` or the server stops."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    hold: bool = False
    url: str = ""
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def answer_for(self) -> int:
        with self._lock:
            return self.statuses.pop(0) if self.statuses else 200

    def record(self, received: Received) -> None:
        with self.arrived:
            self.requests.append(received)
            self.arrived.notify_all()

    def release(self) -> None:
        self.hold = False
        self._released.set()

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the receiver got {len(self.requests)} request(s), expected {count}")
                self.arrived.wait(left)
            return list(self.requests)

    async def arrival(self, count: int, timeout: float) -> list[Received]:
        """``wait_for`` without blocking the event loop (an in-process worker runs on it)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(self.requests)} request(s), expected {count}")
            await asyncio.sleep(0.05)
        return list(self.requests)

    def processed(self) -> dict[str, Received]:
        """What a deduplicating receiver handles: the first request of each event id."""
        seen: dict[str, Received] = {}
        for r in self.requests:
            seen.setdefault(r.headers.get("x-orchestrator-event-id") or r.json().get("id"), r)
        return seen


@contextlib.contextmanager
def http_receiver(receiver: HttpReceiver | None = None) -> Iterator[HttpReceiver]:
    state = receiver or HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if state.hold:
                state._released.wait(60)
                if state.hold:
                    return
            status = state.answer_for()
            payload = b"ok" if status < 300 else b"failing on purpose"
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="notification-receiver", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        state.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def verify_signature(received: Received, key: str = WEBHOOK_KEY) -> bool:
    """The receiver-side check docs/NOTIFICATIONS.md shows: HMAC-SHA256 of the raw body, constant-time compare."""
    expected = "sha256=" + hmac.new(key.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers.get("x-orchestrator-signature", ""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.tls: list[bool] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(
                message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
            )
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.tls.append(session.ssl is not None)
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the SMTP server got {len(self.messages)} message(s), expected {count}")
                self.arrived.wait(left)
            return list(self.messages)

    async def arrival(self, count: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the SMTP server got {len(self.messages)} message(s), expected {count}")
            await asyncio.sleep(0.05)
        return list(self.messages)


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    mailbox: _Mailbox


@contextlib.contextmanager
def smtp_server(directory: Path, *, starttls: bool = True) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1: STARTTLS required before anything (and a login) when ``starttls``; plain otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = make_pki(directory)
    mailbox = _Mailbox()
    port = free_port()
    kwargs: dict[str, Any] = (
        {
            "tls_context": pki.server_context,
            "require_starttls": True,
            "authenticator": _authenticator,
            "auth_required": True,
        }
        if starttls
        else {"auth_require_tls": False}
    )
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer(host="127.0.0.1", port=port, ca_file=pki.ca_file, mailbox=mailbox)
    finally:
        controller.stop()
