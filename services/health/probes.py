"""One attempt of each check kind. An attempt returns on success and raises ``ProbeFailure`` otherwise.

TCP and HTTP(S) use asyncio streams only (no thread per check, and a timeout really cancels the attempt), so
twenty checks cost twenty sockets, not twenty threads. Messages never carry a query string, credentials in a URL,
a header value or a response body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from contract.health import HttpCheck, status_matches
from contract.health_targets import redact_url
from services.health.policy import RequestPolicy, RequestRefused

MAX_BODY_BYTES = 1024 * 1024  # body_contains looks at the first MiB
_USER_AGENT = "bicep-deployment-orchestrator-health/1"


class ProbeFailure(Exception):
    """One failed attempt. ``final`` marks a state that waiting will not change (a resource in Failed), so the
    runner stops retrying that check. ``declaration`` marks a fault of the declaration itself (a target the
    worker's request policy refuses): waiting cannot fix it, and it says nothing about the deployment.
    ``decision`` is the request policy's verdict, for the record."""

    def __init__(
        self, message: str, *, final: bool = False, declaration: bool = False, decision: str | None = None
    ) -> None:
        super().__init__(message)
        self.final = final or declaration
        self.declaration = declaration
        self.decision = decision


def _refused(exc: RequestRefused) -> ProbeFailure:
    return ProbeFailure(f"refused by the worker's request policy: {exc}", declaration=True, decision=f"refused: {exc}")


class ResourceStateReader(Protocol):
    """What an ``arm`` check needs from Azure; the worker supplies one built on its ARM client."""

    async def provisioning_state(self, resource_id: str) -> str:
        """The resource's properties.provisioningState (``Succeeded`` when the resource type reports none)."""
        ...

    async def availability_state(self, resource_id: str) -> str | None:
        """Resource Health availabilityStatuses/current: ``Available``, ``Unavailable``, ``Degraded`` or
        ``Unknown``; None when Resource Health is not queried for this resource (not supported, or not built yet)."""
        ...


# --------------------------------------------------------------------------------------------------- TCP


async def probe_tcp(host: str, port: int, *, timeout: float, policy: RequestPolicy) -> str:
    """One connection; returns the request policy's decision (which address was contacted, and why)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    decision: str | None = None
    try:
        async with asyncio.timeout(timeout):
            address, decision = await policy.resolve(host, port)
            _, writer = await asyncio.open_connection(address, port)
    except RequestRefused as exc:
        raise _refused(exc) from None
    except TimeoutError:
        raise ProbeFailure(f"no TCP connection to {where} within {timeout:g} s", decision=decision) from None
    except OSError as exc:
        raise ProbeFailure(f"cannot connect to {where}: {_os_reason(exc, host)}", decision=decision) from None
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return decision


# --------------------------------------------------------------------------------------------------- HTTP(S)


async def probe_http(check: HttpCheck, *, timeout: float, policy: RequestPolicy) -> str:
    """One request; returns the request policy's decision on success. ``check`` has its placeholders already
    resolved. The method and the address are judged by ``policy`` before anything is sent; the connection goes to
    the address that was judged (TLS still verifies the certificate against the URL's host)."""
    shown = redact_url(check.url)
    parts = urlsplit(check.url)
    host = parts.hostname or ""
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    phase = f"connecting to {host}:{port}"
    writer: asyncio.StreamWriter | None = None
    decision: str | None = None
    if https and check.ca_digest and not check.ca_pem:  # never fall back to the system trust store silently
        raise ProbeFailure(
            f"{check.method} {shown}: the CA file {check.ca_file} was not loaded from the content store "
            f"({check.ca_digest}); the worker must share the starter's content store",
            final=True,
        )
    try:
        policy.check_method(check.method)
        context = _tls_context(check) if https else None
        async with asyncio.timeout(timeout):
            address, decision = await policy.resolve(host, port)
            reader, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=host if context else None
            )
            phase = "waiting for the response"
            writer.write(_request_bytes(check, parts.netloc.rpartition("@")[2]))
            await writer.drain()
            status, reason, headers = await _read_head(reader)
            if not status_matches(status, check.expect_status):
                raise ProbeFailure(f"{check.method} {shown} answered {status} {reason}, expected {check.expect_status}")
            if check.body_contains is not None:
                phase = "reading the body"
                body = await _read_body(reader, headers, no_body=check.method == "HEAD" or status in (204, 304))
                if check.body_contains.encode() not in body:
                    raise ProbeFailure(
                        f"{check.method} {shown} answered {status} {reason} but the body "
                        f"({len(body)} bytes read) does not contain {check.body_contains!r}"
                    )
            return decision
    except RequestRefused as exc:
        raise _refused(exc) from None
    except ProbeFailure as exc:
        exc.decision = decision
        raise
    except TimeoutError:
        raise ProbeFailure(
            f"{check.method} {shown}: no answer within {timeout:g} s ({phase})", decision=decision
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise ProbeFailure(
            f"{check.method} {shown}: TLS certificate verification failed: {exc.verify_message or exc.reason}; "
            f"{_certificate_hint(check, exc, host)}, or turn verification off with verify_tls=false (tls=off) for "
            "a test system",
            decision=decision,
        ) from None
    except ssl.SSLError as exc:
        raise ProbeFailure(
            f"{check.method} {shown}: TLS handshake failed: {exc.reason or exc}", decision=decision
        ) from None
    except (ConnectionError, OSError) as exc:
        raise ProbeFailure(f"{check.method} {shown}: {phase}: {_os_reason(exc, host)}", decision=decision) from None
    except asyncio.IncompleteReadError:
        raise ProbeFailure(
            f"{check.method} {shown}: the connection closed in the middle of the answer", decision=decision
        ) from None
    except (ValueError, UnicodeError) as exc:
        raise ProbeFailure(
            f"{check.method} {shown}: the server's answer is not HTTP/1.x ({exc})", decision=decision
        ) from None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)


# OpenSSL's verify codes for a certificate that is trusted but names another host or address.
_NAME_MISMATCH_CODES = frozenset({62, 63, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_, _IP_ADDRESS_MISMATCH


def _certificate_hint(check: HttpCheck, exc: ssl.SSLCertVerificationError, host: str) -> str:
    """What to do about a failed verification: a name/IP mismatch is not a trust problem, so it is not blamed on
    the CA."""
    if exc.verify_code in _NAME_MISMATCH_CODES:
        return (
            f"the server's certificate does not name '{host}' (check its subject alternative names, or use the "
            "host name the certificate was issued for)"
        )
    if check.ca_pem:
        return f"the server's certificate is not issued by the CA in {check.ca_file}"
    return "give the CA that issued the server's certificate with ca_file (or ca= on the flag)"


def _tls_context(check: HttpCheck) -> ssl.SSLContext:
    return _cached_tls_context(check.verify_tls, check.ca_pem)


@functools.lru_cache(maxsize=64)
def _cached_tls_context(verify_tls: bool, ca_pem: str | None) -> ssl.SSLContext:
    """One context per trust setting: loading the system trust store costs milliseconds, and checks retry."""
    if not verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_pem:
        return ssl.create_default_context(cadata=ca_pem)
    return ssl.create_default_context()


def _request_bytes(check: HttpCheck, host_header: str) -> bytes:
    parts = urlsplit(check.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{check.method} {target} HTTP/1.1", f"Host: {host_header}"]
    given = {name.lower() for name in check.headers}
    if "user-agent" not in given:
        lines.append(f"User-Agent: {_USER_AGENT}")
    if "accept" not in given:
        lines.append("Accept: */*")
    lines.extend(f"{name}: {value}" for name, value in check.headers.items())
    if check.method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    while True:
        line = (await reader.readline()).decode("iso-8859-1").rstrip("\r\n")
        if not line:
            raise ConnectionResetError("the server closed the connection without answering")
        version, _, rest = line.partition(" ")
        if not version.startswith("HTTP/"):
            raise ValueError(f"status line {line[:40]!r}")
        code, _, reason = rest.partition(" ")
        status = int(code)
        headers: dict[str, str] = {}
        while True:
            header = (await reader.readline()).decode("iso-8859-1").rstrip("\r\n")
            if not header:
                break
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200 and status != 101:
            continue  # interim response (100 Continue, 103 Early Hints): the real one follows
        return status, reason, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], *, no_body: bool) -> bytes:
    if no_body:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while len(body) < MAX_BODY_BYTES:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readline()
        return bytes(body[:MAX_BODY_BYTES])
    if "content-length" in headers:
        length = min(int(headers["content-length"]), MAX_BODY_BYTES)
        try:
            return await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
    return await reader.read(MAX_BODY_BYTES)


def _os_reason(exc: OSError, host: str) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name '{host}'"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port yet)"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset ({exc.strerror or exc})"
    return exc.strerror or str(exc) or type(exc).__name__


# --------------------------------------------------------------------------------------------------- ARM

# Waiting will not change these: a resource that failed, was cancelled, or does not exist (ARM answered 404).
_TERMINAL_STATES = {"failed", "canceled", "cancelled", "notfound"}


async def probe_arm(resource_ids: Sequence[str], reader: ResourceStateReader, *, availability: bool) -> str | None:
    """Every resource Succeeded (and Available when asked); returns a note for tolerated states."""
    if not resource_ids:
        return "the deployment produced no resources to check"
    states = await asyncio.gather(*(reader.provisioning_state(rid) for rid in resource_ids))
    failed = [(rid, s) for rid, s in zip(resource_ids, states, strict=True) if s.lower() in _TERMINAL_STATES]
    if failed:
        raise ProbeFailure(
            "; ".join(
                f"{rid} does not exist (ARM answered 404)" if state.lower() == "notfound" else f"{rid} is {state}"
                for rid, state in failed
            ),
            final=True,
        )
    waiting = [(rid, s) for rid, s in zip(resource_ids, states, strict=True) if s.lower() != "succeeded"]
    if waiting:
        raise ProbeFailure("; ".join(f"{rid} is {state}, not Succeeded" for rid, state in waiting))
    if not availability:
        return None
    health = await asyncio.gather(*(reader.availability_state(rid) for rid in resource_ids))
    notes: list[str] = []
    bad: list[str] = []
    for rid, status in zip(resource_ids, health, strict=True):
        if status is None:
            notes.append(f"{rid}: Resource Health not available for this resource type")
        elif status.lower() == "unknown":
            notes.append(f"{rid}: Resource Health reports Unknown (tolerated)")
        elif status.lower() != "available":
            bad.append(f"{rid} is {status} in Resource Health")
    if bad:
        raise ProbeFailure("; ".join(bad))
    return "; ".join(notes) or None
