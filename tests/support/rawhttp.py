"""Raw HTTPS calls for protocol details the SDK hides (status codes, headers, exact bodies)."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from local_arm.credential import LocalArmCredential


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    endpoint: str,
    ca_file: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "default",
    raw_body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    parts = urlsplit(endpoint)
    context = ssl.create_default_context(cafile=ca_file)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    all_headers = dict(headers or {})
    if token == "default":
        token = LocalArmCredential().get_token("https://management.azure.com/.default").token
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=all_headers)
        resp = conn.getresponse()
        raw = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else None)
    finally:
        conn.close()
