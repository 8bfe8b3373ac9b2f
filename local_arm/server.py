"""The HTTPS server on loopback: TLS, authentication, faults, counters, the admin endpoint, then the service.

``LocalArmServer`` is the Python API (tests, benchmarks, the orchestrator's ``dev`` command):

    with LocalArmServer(state_dir) as arm:
        client = DeploymentsMgmtClient(LocalArmCredential(), SUB, base_url=arm.endpoint,
                                       connection_verify=str(arm.ca_file))
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .config import LocalArmConfig
from .errors import ArmError, invalid_request_content
from .faults import REQUEST_KINDS, FaultBook, FaultConfigError, FaultRule
from .http import Request, Response, RouteInfo
from .service import MAX_REQUEST_BYTES, ArmService, classify
from .store import Store
from .tls import TlsFiles, ensure_certificates, server_context

log = logging.getLogger("local_arm")

_STATUS_TEXT = {429: "Too Many Requests"}
_DISCARD_LIMIT = 64 * 1024 * 1024


class LocalArmServer:
    """The local ARM: start()/stop() or a context manager. Binds 127.0.0.1 only; ``port=0`` picks a free port."""

    def __init__(self, state_dir: Path | str, *, port: int = 0, config: LocalArmConfig | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.requested_port = port
        self.config = config or LocalArmConfig()
        self.faults = FaultBook(seed=self.config.seed)
        self.faults.set_rules(list(self.config.faults), seed=self.config.seed)
        self.faults.set_rate_limits(self.config.rate_limits)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.store: Store | None = None
        self.service: ArmService | None = None
        self.tls: TlsFiles | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LocalArmServer:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tls = ensure_certificates(self.state_dir)
        self.store = Store(self.state_dir / "arm.sqlite3")
        self.service = ArmService(self.store, self.config, self.faults, lambda: self.endpoint)
        httpd = _Server(("127.0.0.1", self.requested_port), _Handler, server_context(self.tls), self)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.name = "local-arm-http"
        self._thread.start()
        self.service.runner.resume_unfinished()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self.service is not None:
            self.service.runner.stop()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> LocalArmServer:
        return self.start()

    def __exit__(self, *args: object) -> None:
        self.stop()

    # -- facts -------------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the local ARM is not running")
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        if self.tls is None:
            raise RuntimeError("the local ARM is not running")
        return self.tls.ca_file

    def describe(self) -> dict[str, str]:
        return {"endpoint": self.endpoint, "ca_file": str(self.ca_file), "state_dir": str(self.state_dir)}

    # -- admin -------------------------------------------------------------------------------------------------
    def _change_out_of_band(self, body: dict[str, Any]) -> dict[str, Any]:
        """Change a deployed resource behind the deployments' back, as someone in the portal would (drift tests):
        ``{"id": ..., "patch": {...}}`` merges the patch into the stored resource (RFC 7386: a null removes a key).
        No deployment, operation or counter records it."""
        resource_id, patch = body.get("id"), body.get("patch")
        if not isinstance(resource_id, str) or not isinstance(patch, dict):
            raise ArmError(400, "InvalidRequest", 'give {"id": "<resource id>", "patch": {...}}')
        if self.store is None:
            raise ArmError(503, "NotReady", "the local ARM is not started")
        record = self.store.get_resource(resource_id)
        if record is None:
            raise ArmError(404, "ResourceNotFound", f"no resource {resource_id}")
        change = {k: v for k, v in patch.items() if k not in ("id", "name", "type", "apiVersion")}
        for part in ("body", "payload"):  # as deployed (what-if compares it) and as GET returns it
            if isinstance(record.get(part), dict):
                _merge(record[part], change)
        parts = record["id"].split("/")
        self.store.put_resource(parts[2], parts[4], record)
        return record

    def admin(self, req: Request) -> Response:
        path = req.path.rstrip("/").lower()
        method = req.method
        if path == "/admin/health" and method == "GET":
            return Response(200, {"status": "ok", **self.describe()})
        if path == "/admin/counters" and method == "GET":
            return Response(200, {"requests": self.faults.counters()})
        if path == "/admin/counters/reset" and method == "POST":
            self.faults.reset(counters=True, rules=False)
            return Response(204)
        if path == "/admin/faults":
            if method == "GET":
                return Response(200, self.faults.describe())
            if method in ("POST", "PUT"):
                body = req.json_object()
                try:
                    rules = [FaultRule.from_dict(r) for r in body.get("rules", [])]
                except FaultConfigError as exc:
                    raise ArmError(400, "InvalidFaultRule", str(exc)) from exc
                self.faults.set_rules(
                    rules, seed=body.get("seed"), replace=method == "PUT" or body.get("replace", False)
                )
                if "rate_limits" in body:
                    self.faults.set_rate_limits(*_rate_limits(body["rate_limits"]))
                return Response(200, self.faults.describe())
            if method == "DELETE":
                self.faults.set_rules([], replace=True)
                return Response(204)
        if path == "/admin/config":
            if method == "GET":
                return Response(200, self.config.settings())
            if method in ("POST", "PATCH"):
                body = req.json_object()
                allowed = {"retry_after", "provisioning_seconds", "latency", "async_validate", "clock_offset"}
                unknown = set(body) - allowed
                if unknown:
                    raise ArmError(
                        400, "InvalidConfig", f"unknown setting(s) {sorted(unknown)}; known: {sorted(allowed)}"
                    )
                for key, value in body.items():
                    try:
                        converted = type(getattr(self.config, key))(value)
                    except (TypeError, ValueError) as exc:
                        raise ArmError(400, "InvalidConfig", f"setting '{key}' cannot take {value!r}: {exc}") from exc
                    if isinstance(converted, (int, float)) and converted < 0:
                        raise ArmError(400, "InvalidConfig", f"setting '{key}' must be >= 0, got {value!r}")
                    setattr(self.config, key, converted)
                return Response(200, self.config.settings())
        if path == "/admin/resources" and method == "PATCH":
            return Response(200, self._change_out_of_band(req.json_object()))
        if path == "/admin/reset" and method == "POST":
            body = req.json_object(required=False)
            self.faults.reset(counters=True, rules=True)
            if body.get("state") and self.store is not None:
                self.store.wipe()
            return Response(204)
        raise ArmError(404, "NotFound", f"Unknown admin endpoint {method} {req.path}.")


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386): objects merge, a null removes the key, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
        arm: LocalArmServer,
    ) -> None:
        self.ssl_context = context
        self.arm = arm
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The TLS handshake runs on the request's own thread (in the handler's setup), not on the accept loop.
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalARM/1.0"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(30)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.close_connection = True
            raise
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _dispatch(self) -> None:
        arm = self.server.arm
        service = arm.service
        assert service is not None
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        info = RouteInfo()
        too_large = False
        length = int(headers.get("content-length") or 0)
        if length > MAX_REQUEST_BYTES:
            too_large = True
            self._discard(length)
            body = b""
        else:
            body = self.rfile.read(length) if length else b""
        req = Request(self.command, path, query, headers, body)

        if path.lower().startswith("/admin/") or path.lower() == "/admin":
            self._send(self._safe(lambda: arm.admin(req)), req)
            return

        if arm.config.latency:
            time.sleep(arm.config.latency)
        started = time.monotonic()
        response = self._safe(lambda: self._handle(req, info, too_large))
        if response is None:  # a dropped connection
            arm.faults.count_request(req.method, path, info.operation, info.deployment, 0)
            self._send(None, req)
            return
        arm.faults.count_request(req.method, path, info.operation, info.deployment, response.status)
        response.headers.setdefault("x-ms-local-arm-ms", f"{(time.monotonic() - started) * 1000:.1f}")
        self._send(response, req)

    def _handle(self, req: Request, info: RouteInfo, too_large: bool) -> Response | None:
        arm = self.server.arm
        service = arm.service
        assert service is not None
        _classify(req, info)
        auth = _authenticate(req)
        if auth is not None:
            return auth
        if too_large:
            raise ArmError(
                413,
                "RequestEntityTooLarge",
                f"The request content size exceeds the maximum of {MAX_REQUEST_BYTES // (1024 * 1024)} MB. Reduce "
                "the template or parameters size (see https://aka.ms/arm-template-limits).",
            )
        allowed, bucket, remaining, wait = arm.faults.take_token(info.subscription or "-", req.method)
        limit_header = f"x-ms-ratelimit-remaining-subscription-{bucket}"
        if not allowed:
            raise ArmError(
                429,
                "SubscriptionRequestsThrottled",
                f"Number of '{bucket}' requests for subscription '{info.subscription}' exceeded the limit. Please "
                f"try again after '{wait}' seconds.",
                headers={"Retry-After": str(wait), limit_header: "0"},
            )
        rule = arm.faults.match(
            REQUEST_KINDS, method=req.method, path=req.path, operation=info.operation, deployment=info.deployment
        )
        if rule is not None and rule.after_handling:
            # The request takes effect and then its answer is lost: what a client retrying a PUT meets for real.
            with contextlib.suppress(ArmError):
                service.route(req, info)
        if rule is not None:
            if rule.kind == "drop":
                return None
            if rule.kind == "throttle":
                raise ArmError(
                    429,
                    rule.error_code(),
                    rule.error_message(op=f"Subscription{bucket.capitalize()}"),
                    headers={"Retry-After": str(rule.retry_after), limit_header: "0"},
                )
            status = rule.status or 500
            headers = {"Retry-After": str(rule.retry_after)} if status == 503 else {}
            raise ArmError(status, rule.error_code(), rule.error_message(), headers=headers)
        try:
            response = service.route(req, info)
        except ArmError as err:
            err.headers.setdefault(limit_header, str(remaining))
            raise
        response.headers.setdefault(limit_header, str(remaining))
        return response

    def _safe(self, fn: Any) -> Response | None:
        try:
            result: Response | None = fn()
            return result
        except ArmError as err:
            return Response.error(err)
        except FaultConfigError as exc:
            return Response.error(ArmError(400, "InvalidFaultRule", str(exc)))
        except Exception:
            log.exception("local ARM bug while handling %s %s", self.command, self.path)
            return Response.error(
                ArmError(500, "InternalServerError", "The local ARM failed to handle the request (see its log).")
            )

    def _discard(self, length: int) -> None:
        remaining = min(length, _DISCARD_LIMIT)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
        if length > _DISCARD_LIMIT:
            self.close_connection = True

    def _send(self, response: Response | None, req: Request) -> None:
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
            return
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        request_id = str(uuid.uuid4())
        self.send_response(response.status, _STATUS_TEXT.get(response.status))
        headers = {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": req.headers.get("x-ms-correlation-request-id", request_id),
            "x-ms-routing-request-id": f"LOCAL:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{request_id}",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
        }
        if "x-ms-client-request-id" in req.headers:
            headers["x-ms-client-request-id"] = req.headers["x-ms-client-request-id"]
        if response.status in (401, 413, 429):
            headers["x-ms-failure-cause"] = "gateway"  # answered by ARM's front door, not a resource provider
        if response.status == 401:
            headers["WWW-Authenticate"] = (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
                "error_description=\"The authentication failed because of missing or invalid 'Authorization' header.\""
            )
        if payload:
            headers["Content-Type"] = "application/json; charset=utf-8"
        headers.update(response.headers)
        if "x-ms-correlation-request-id" in req.headers:  # ARM echoes the client's correlation id
            headers["x-ms-correlation-request-id"] = req.headers["x-ms-correlation-request-id"]
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and req.method != "HEAD":
            self.wfile.write(payload)


def _rate_limits(value: Any) -> tuple[bool, dict[str, tuple[float, float]] | None]:
    """``true``/``false``, or ``{"reads": [capacity, refill_per_second], "writes": [...], "deletes": [...]}``."""
    if isinstance(value, bool):
        return value, None
    if not isinstance(value, dict) or not set(value) <= {"reads", "writes", "deletes"}:
        raise ArmError(400, "InvalidFaultRule", "rate_limits must be true/false or {reads|writes|deletes: [cap, rate]}")
    try:
        limits = {k: (float(v[0]), float(v[1])) for k, v in value.items()}
    except (TypeError, ValueError, IndexError) as exc:
        raise ArmError(
            400, "InvalidFaultRule", f"rate_limits entries must be [capacity, refill_per_second]: {exc}"
        ) from exc
    return True, limits


def _classify(req: Request, info: RouteInfo) -> None:
    """Name the operation, subscription and deployment early, so faults and counters can match on them."""
    info.operation, info.subscription, info.deployment = classify(req.method, req.path)


def _authenticate(req: Request) -> Response | None:
    header = req.headers.get("authorization", "")
    if not header:
        return Response.error(
            ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return Response.error(
            ArmError(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid: the 'Authorization' header must be 'Bearer <token>'.",
            )
        )
    parts = token.split(".")
    if len(parts) != 3:
        return Response.error(
            ArmError(401, "InvalidAuthenticationToken", "The access token is invalid: it is not a well-formed JWT.")
        )
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError):
        return Response.error(
            ArmError(401, "InvalidAuthenticationToken", "The access token is invalid: its claims cannot be decoded.")
        )
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and exp < time.time():
        return Response.error(
            ArmError(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            )
        )
    return None


__all__ = ["LocalArmServer", "invalid_request_content"]
