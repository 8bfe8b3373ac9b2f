"""Real servers for the health tests: TCP and HTTP(S) on 127.0.0.1, on an event loop in their own thread (so the
runner under test cannot lean on sharing a loop with them), started late on request, always stopped."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.health.policy import RequestPolicy

# These servers listen on 127.0.0.1, which the strict default request policy refuses: the tests that probe them run
# with the embedded default's policy (private and loopback addresses allowed).
LOOPBACK_POLICY = RequestPolicy(allow_private=True)


@dataclass
class HttpBehaviour:
    status: int = 200
    body: bytes = b"ok"
    answer_after: float = 0.0  # seconds between reading the request and answering
    chunked: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (e.g. Location)


class ServerThread:
    """An asyncio loop in a daemon thread hosting any number of servers; ``close`` stops them all."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="health-test-servers", daemon=True)
        self._thread.start()
        self._servers: list[asyncio.Server] = []
        self._pending: list[asyncio.Future[Any]] = []
        self._sockets: list[socket.socket] = []
        self.requests: list[bytes] = []
        self.connections: list[int] = []  # the port of every server that accepted a connection
        self._handlers: set[asyncio.Task[Any]] = set()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def reserve_port(self) -> socket.socket:
        """A socket bound to a free loopback port but not listening yet: connecting to it is refused."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sockets.append(sock)
        return sock

    def tcp(self, *, start_after: float = 0.0) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        return self._start(handle, start_after=start_after, tls=None)

    def http(
        self,
        behaviour: HttpBehaviour | None = None,
        *,
        start_after: float = 0.0,
        tls: ssl.SSLContext | None = None,
        start_when: threading.Event | None = None,
    ) -> int:
        b = behaviour or HttpBehaviour()
        extra = "".join(f"\r\n{name}: {value}" for name, value in b.headers.items())

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                if b.answer_after:
                    await asyncio.sleep(b.answer_after)
                lines = [f"HTTP/1.1 {b.status} {'OK' if b.status < 400 else 'Trouble'}", "Connection: close" + extra]
                if b.chunked:
                    lines.append("Transfer-Encoding: chunked")
                    half = len(b.body) // 2
                    payload = b"".join(
                        f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (b.body[:half], b.body[half:]) if p
                    )
                    payload += b"0\r\n\r\n"
                else:
                    lines.append(f"Content-Length: {len(b.body)}")
                    payload = b.body
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.close()

        return self._start(handle, start_after=start_after, tls=tls, start_when=start_when)

    def _start(
        self,
        handle: Any,
        *,
        start_after: float,
        tls: ssl.SSLContext | None,
        start_when: threading.Event | None = None,
    ) -> int:
        """Listen on a reserved port: at once, after ``start_after`` seconds, or once ``start_when`` is set (a test
        clock decides when a server comes up)."""
        sock = self.reserve_port()
        port: int = sock.getsockname()[1]

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._handlers.add(task)
            self.connections.append(port)
            try:
                await handle(reader, writer)
            finally:
                self._handlers.discard(task)

        async def start() -> None:
            if start_after:
                await asyncio.sleep(start_after)
            # Polled on the loop, never waited for in a thread: a thread blocked on an event that is never set
            # (a server meant never to come up) keeps the interpreter from exiting after the last test.
            while start_when is not None and not start_when.is_set():
                await asyncio.sleep(0.01)
            self._servers.append(await asyncio.start_server(tracked, sock=sock, ssl=tls))

        if start_after or start_when is not None:
            self._pending.append(asyncio.run_coroutine_threadsafe(start(), self.loop))
        else:
            self._run(start())
        return port

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            handlers = list(self._handlers)
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            for server in self._servers:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 2)

        for pending in self._pending:
            pending.cancel()
        with contextlib.suppress(Exception):
            self._run(stop())
        for sock in self._sockets:
            sock.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


@contextlib.contextmanager
def running_servers() -> Iterator[ServerThread]:
    servers = ServerThread()
    try:
        yield servers
    finally:
        servers.close()


@dataclass
class Pki:
    ca_file: Path
    other_ca_file: Path
    server_context: ssl.SSLContext


def make_pki(directory: Path) -> Pki:
    """A private CA, a server certificate for 127.0.0.1 issued by it, and an unrelated second CA."""
    now = datetime.datetime.now(datetime.UTC)

    def ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = ca("health test CA")
    _, other_cert = ca("some other CA")
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    other_ca_file = directory / "other-ca.pem"
    other_ca_file.write_bytes(other_cert.public_bytes(pem))
    cert_file = directory / "server.pem"
    cert_file.write_bytes(leaf.public_bytes(pem))
    key_file = directory / "server.key"
    key_file.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return Pki(ca_file=ca_file, other_ca_file=other_ca_file, server_context=context)
