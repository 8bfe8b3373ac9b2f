"""``starter.py codec-server``: Temporal's remote codec HTTP protocol over this project's encryption codec, so the
Temporal Web UI and ``temporal workflow show --codec-endpoint`` can show decrypted payloads (the plan an approver
must read) while the Temporal server keeps only ciphertext.

Protocol (docs.temporal.io, "Codec Server"): ``POST /decode`` and ``POST /encode`` (also under a namespace prefix,
``/{namespace}/decode``, for the CLI's ``--codec-endpoint`` templating), body and answer ``{"payloads": [...]}`` in
protobuf JSON (``metadata`` values and ``data`` base64). ``OPTIONS`` answers the browser's CORS preflight for the UI's
origin. Binds 127.0.0.1 by default: whoever reaches it can decrypt, so never expose it without an authenticating
proxy in front (docs/SECURITY.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from client.exit_codes import ExitCode
from services.codec import KEY_FILE_ENV, KEYS_ENV, CodecConfigError, EncryptionCodec, KeyRing

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
ORIGINS_ENV = "ORCHESTRATOR_CODEC_CORS_ORIGINS"
MAX_BODY_BYTES = 64 * 1024 * 1024
# Without --ui-origin: any page served from this machine's loopback (the dev server's UI picks its own port).
_LOOPBACK_ORIGIN = re.compile(r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "codec-server",
        help="serve Temporal's codec protocol so the Web UI and CLI can read encrypted payloads",
        description="Serve POST /encode and /decode (Temporal's remote codec protocol) with the payload encryption "
        f"keys of {KEYS_ENV} or {KEY_FILE_ENV}, for the Temporal Web UI (--ui-codec-endpoint) and "
        "`temporal workflow show --codec-endpoint`. Binds 127.0.0.1 unless told otherwise.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s; loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s; 0 picks a free one)")
    p.add_argument(
        "--ui-origin",
        action="append",
        default=None,
        metavar="URL",
        help=f"browser origin allowed by CORS, e.g. http://localhost:8233 (repeatable; also {ORIGINS_ENV}, "
        "comma-separated). Default: any http(s) origin on localhost/127.0.0.1",
    )
    p.set_defaults(run=run)


class CodecHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], codec: EncryptionCodec, origins: Sequence[str] | None) -> None:
        super().__init__(address, _Handler)
        self.codec = codec
        self.origins = [o.rstrip("/") for o in origins] if origins else None

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.rstrip("/")
        if self.origins is None:
            return bool(_LOOPBACK_ORIGIN.match(origin))
        return origin in self.origins or "*" in self.origins


class _Handler(BaseHTTPRequestHandler):
    server: CodecHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request on stderr: method, path, status; never a payload.
        sys.stderr.write(f"codec-server: {self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}\n")

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin and self.server.origin_allowed(origin):
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Vary", "Origin")

    def _answer(self, status: HTTPStatus, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self._cors()
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _content_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return -1

    def _refuse(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        """Answer a request without using its body. The unread body would otherwise be parsed as the next
        request on this keep-alive connection ("Bad request version"): read and drop it when it is small enough,
        else close the connection after the answer."""
        length = self._content_length()
        if 0 <= length <= MAX_BODY_BYTES:
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        else:
            self.close_connection = True
        self._answer(status, body)

    def do_OPTIONS(self) -> None:
        self._answer(HTTPStatus.OK if self._operation() else HTTPStatus.NOT_FOUND)

    def do_GET(self) -> None:
        self._answer(HTTPStatus.METHOD_NOT_ALLOWED if self._operation() else HTTPStatus.NOT_FOUND)

    def _operation(self) -> str | None:
        last = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return last if last in ("encode", "decode") else None

    def do_POST(self) -> None:
        operation = self._operation()
        if operation is None:
            self._refuse(HTTPStatus.NOT_FOUND, {"message": "POST /encode or /decode"})
            return
        origin = self.headers.get("Origin")
        if origin and not self.server.origin_allowed(origin):
            self._refuse(HTTPStatus.FORBIDDEN, {"message": f"origin {origin} is not allowed (--ui-origin)"})
            return
        length = self._content_length()
        if length < 0 or length > MAX_BODY_BYTES:
            self._refuse(HTTPStatus.BAD_REQUEST, {"message": "a Content-Length up to 64 MiB is required"})
            return
        try:
            payloads = Payloads()
            json_format.Parse(self.rfile.read(length) or b"{}", payloads, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError) as exc:
            self._answer(HTTPStatus.BAD_REQUEST, {"message": f'the body is not {{"payloads": [...]}}: {exc}'})
            return
        codec = self.server.codec
        try:
            if operation == "encode":
                out = asyncio.run(codec.encode(payloads.payloads))
            else:
                out = asyncio.run(codec.decode(payloads.payloads))
        except Exception as exc:  # a key this server lacks, a tampered payload: say so, never echo the payload
            message = str(exc) or f"{type(exc).__name__}: the payload could not be {operation}d (wrong key or tampered)"
            self._answer(HTTPStatus.BAD_REQUEST, {"message": message})
            return
        self._answer(HTTPStatus.OK, json_format.MessageToDict(Payloads(payloads=out)))


def serve(
    key_ring: KeyRing, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, origins: Sequence[str] | None = None
) -> tuple[CodecHTTPServer, threading.Thread]:
    """Start the codec server in a thread (tests, the embedded default); ``server.shutdown()`` stops it."""
    server = CodecHTTPServer((host, port), EncryptionCodec(key_ring), origins)
    thread = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    thread.start()
    return server, thread


def configured_origins(flags: Sequence[str] | None, environ: dict[str, str] | None = None) -> list[str] | None:
    import os

    env = os.environ if environ is None else environ
    origins = list(flags or [])
    origins += [o.strip() for o in (env.get(ORIGINS_ENV) or "").split(",") if o.strip()]
    return origins or None


def run(args: argparse.Namespace) -> int:
    try:
        ring = KeyRing.from_environment()
    except CodecConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return int(ExitCode.USAGE)
    if ring is None:
        sys.stderr.write(
            f"error: no payload encryption keys are configured, so there is nothing to decode. Set {KEYS_ENV} "
            f"(kid=BASE64KEY,...) or {KEY_FILE_ENV} to the same keys the workers use.\n"
        )
        return int(ExitCode.USAGE)
    if not 0 <= args.port < 65536:
        sys.stderr.write(f"error: --port {args.port} is not a port number (0-65535; 0 picks a free one).\n")
        return int(ExitCode.USAGE)
    try:
        server = CodecHTTPServer((args.host, args.port), EncryptionCodec(ring), configured_origins(args.ui_origin))
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}. Choose --port.\n")
        return int(ExitCode.USAGE)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(
            f"warning: the codec server listens on {args.host}: anyone who reaches it can decrypt payloads. Put an "
            "authenticating proxy in front of it.\n"
        )
    # One JSON line on stdout (the embedded default reads it), then the human hint on stderr.
    sys.stdout.write(json.dumps({"endpoint": server.endpoint, "keys": sorted(ring.keys)}) + "\n")
    sys.stdout.flush()
    sys.stderr.write(
        f"codec server on {server.endpoint} (active key {ring.active_key_id}); Temporal UI: "
        f"`temporal server start-dev --ui-codec-endpoint {server.endpoint}`; CLI: "
        f"`temporal workflow show --codec-endpoint {server.endpoint} -w ID`. Ctrl-C stops it.\n"
    )
    sys.stderr.flush()
    import signal

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return int(ExitCode.OK)
