"""``starter.py codec-server``: Temporal's remote codec protocol over our AES-GCM codec, CORS for the UI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from client.cli.codec_server import serve
from services.codec import ENCODING, EncryptionCodec, KeyRing

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def ring() -> KeyRing:
    ring = KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"k2={_key()},k1={_key()}"})
    assert ring is not None
    return ring


@pytest.fixture
def server(ring: KeyRing) -> Iterator[str]:
    srv, thread = serve(ring, port=0)
    try:
        yield srv.endpoint
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def as_body(payloads: list[Payload]) -> bytes:
    return json.dumps(json_format.MessageToDict(Payloads(payloads=payloads))).encode()


def from_body(data: bytes) -> list[Payload]:
    parsed = Payloads()
    json_format.Parse(data, parsed)
    return list(parsed.payloads)


async def test_decode_returns_the_plaintext_the_worker_encrypted(ring: KeyRing, server: str) -> None:
    plan = {"changes": [{"resource_id": "/subscriptions/s/resourceGroups/rg/providers/x/y", "change_type": "Delete"}]}
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(plan).encode())
    [sealed] = await EncryptionCodec(ring).encode([plain])
    assert sealed.metadata["encoding"] == ENCODING
    for path in ("/decode", "/default/decode"):  # the CLI's --codec-endpoint templating adds the namespace
        status, _headers, data = post(server + path, as_body([sealed]), {"Content-Type": "application/json"})
        assert status == 200
        [decoded] = from_body(data)
        assert decoded.metadata["encoding"] == b"json/plain"
        assert json.loads(decoded.data) == plan


async def test_encode_then_decode_round_trips_and_hides_the_text(ring: KeyRing, server: str) -> None:
    token = "Zr8qLw3TnV0pXc5YbH2mKd7sEa9uJf1G"
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"approver": token}).encode())
    status, _h, data = post(server + "/encode", as_body([plain]))
    assert status == 200 and token.encode() not in data
    [sealed] = from_body(data)
    assert sealed.metadata["encryption-key-id"] == b"k2"  # the first key encrypts
    [back] = await EncryptionCodec(ring).decode([sealed])
    assert json.loads(back.data) == {"approver": token}


def test_cors_preflight_for_the_ui_origin(server: str) -> None:
    request = urllib.request.Request(
        server + "/decode",
        method="OPTIONS",
        headers={
            "Origin": "http://localhost:8233",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
        assert "X-Namespace" in response.headers["Access-Control-Allow-Headers"]
        assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_foreign_origin_is_refused_and_wrong_key_is_named(server: str) -> None:
    status, headers, _ = post(server + "/decode", as_body([]), {"Origin": "https://evil.example"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    other = KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"zz={_key()}"})
    assert other is not None
    import asyncio

    [foreign] = asyncio.run(EncryptionCodec(other).encode([Payload(data=b"x")]))
    status, _h, data = post(server + "/decode", as_body([foreign]))
    assert status == 400 and "zz" in json.loads(data)["message"]
    assert post(server + "/nope", b"{}")[0] == 404
    assert post(server + "/decode", b"not json")[0] == 400


def test_command_refuses_without_keys_and_serves_on_loopback_with_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_CODEC")}
    refused = subprocess.run(
        [sys.executable, "starter.py", "codec-server", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "ORCHESTRATOR_CODEC_KEYS" in refused.stderr and "Traceback" not in refused.stderr
    env["ORCHESTRATOR_CODEC_KEYS"] = f"k1={_key()}"
    proc = subprocess.Popen(
        [sys.executable, "starter.py", "codec-server", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["endpoint"].startswith("http://127.0.0.1:")
        status, _h, data = post(line["endpoint"] + "/decode", as_body([]))
        assert status == 200 and from_body(data) == []
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_a_refused_request_leaves_the_connection_clean(tmp_path: Path) -> None:
    """A foreign-origin POST refused with 403 must not leave its body to be read as the next request on the same
    keep-alive connection (the server used to log 'Bad request version' and answer garbage)."""
    import http.client

    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_CODEC")}
    env["ORCHESTRATOR_CODEC_KEYS"] = f"k1={_key()}"
    proc = subprocess.Popen(
        [sys.executable, "starter.py", "codec-server", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = json.loads(proc.stdout.readline())["endpoint"]
        host, port = endpoint.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        body = as_body([Payload(data=b"x" * 2000)])
        for origin, expected in (("https://evil.example", 403), ("http://localhost:8233", 200)):
            connection.request("POST", "/decode", body=body, headers={"Origin": origin})
            response = connection.getresponse()
            response.read()
            assert response.status == expected
        connection.close()
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert "Bad request" not in err and "400" not in err, err
