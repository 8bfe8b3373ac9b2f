"""Connection config over mutual TLS, and the one precedence order: explicit flag > TEMPORAL_* environment >
temporal.toml profile > default (services.temporal_client.connect, used by worker and CLI alike).

`temporal server start-dev` has no TLS options (its --help lists none), so the TLS endpoint here is a small
TLS-terminating proxy in front of a plain dev server: it requires a client certificate from our test CA and speaks
HTTP/2 (ALPN h2), as a TLS-enabled Temporal frontend does. The Temporal client itself does the real handshake."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import TLSConfig

from bench.chaos import Cluster
from services.temporal_client import connect, connect_options

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.timeout(120)]

ENV_VARS = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_PROFILE",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
)


def _pem(obj: object) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    assert isinstance(obj, ec.EllipticCurvePrivateKey)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


class Ca:
    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip

    def issue(self, folder: Path, name: str, *, server: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                  else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )  # fmt: skip
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
        cert_file.write_bytes(_pem(cert))
        key_file.write_bytes(_pem(key))
        return cert_file, key_file

    def write(self, path: Path) -> Path:
        path.write_bytes(_pem(self.cert))
        return path


@contextlib.asynccontextmanager
async def mtls_proxy(target_port: int, server_cert: Path, server_key: Path, client_ca: Path) -> AsyncIterator[int]:
    """A TLS endpoint on a free loopback port that requires a client certificate and forwards to the dev server."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(server_cert, server_key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def reachable(**kw: object) -> bool:
    """Connect (as worker and CLI do) and make one call; False on any connection, TLS or RPC failure."""
    try:
        client = await asyncio.wait_for(connect(**kw), 20)  # type: ignore[arg-type]
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        return True
    except Exception:  # RuntimeError (connect), RPCError, TimeoutError: all mean "not reachable like this"
        return False


async def test_mtls_profile_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    server_ca, client_ca, stranger_ca = Ca("server CA"), Ca("client CA"), Ca("someone else's CA")
    server_cert, server_key = server_ca.issue(tmp_path, "server", server=True)
    client_cert, client_key = client_ca.issue(tmp_path, "client", server=False)
    stranger_cert, stranger_key = stranger_ca.issue(tmp_path, "stranger", server=False)
    server_ca_file = server_ca.write(tmp_path / "server-ca.pem")
    client_ca_file = client_ca.write(tmp_path / "client-ca.pem")

    cluster = Cluster(tmp_path / "cluster", workers=0)
    cluster.root.mkdir(parents=True)
    await asyncio.to_thread(cluster.start_temporal)
    try:
        async with mtls_proxy(cluster.temporal_port, server_cert, server_key, client_ca_file) as tls_port:
            toml = tmp_path / "temporal.toml"
            toml.write_text(
                f'[profile.secure]\naddress = "127.0.0.1:{tls_port}"\nnamespace = "default"\n'
                f'[profile.secure.tls]\nclient_cert_path = "{client_cert}"\nclient_key_path = "{client_key}"\n'
                f'server_ca_cert_path = "{server_ca_file}"\n'
                f'[profile.nocert]\naddress = "127.0.0.1:{tls_port}"\n'
                f'[profile.nocert.tls]\nserver_ca_cert_path = "{server_ca_file}"\n'
            )
            monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(toml))

            # The profile alone: mutual TLS works.
            tls = connect_options(profile="secure")["tls"]
            assert isinstance(tls, TLSConfig) and tls.client_cert == client_cert.read_bytes()
            assert await reachable(profile="secure")
            # mTLS is really enforced: no client certificate, or one from a CA the server does not trust, fails.
            assert not await reachable(profile="nocert")
            monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(stranger_cert))
            monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(stranger_key))
            assert not await reachable(profile="secure"), "TEMPORAL_TLS_* did not override the profile's certificate"
            monkeypatch.delenv("TEMPORAL_TLS_CLIENT_CERT_PATH")
            monkeypatch.delenv("TEMPORAL_TLS_CLIENT_KEY_PATH")

            # Environment over profile: TEMPORAL_ADDRESS points at the plain port, so the TLS profile fails there.
            monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{cluster.temporal_port}")
            assert connect_options(profile="secure")["target_host"] == f"127.0.0.1:{cluster.temporal_port}"
            assert not await reachable(profile="secure")
            # Explicit flag over environment: --address back at the TLS port, the profile's certificates still used.
            assert await reachable(profile="secure", address=f"127.0.0.1:{tls_port}")
            # --tls off (explicit) over the profile's TLS: plain connection to the plain port works.
            assert await reachable(profile="secure", tls=False)
            # Default when nothing is configured.
            monkeypatch.delenv("TEMPORAL_ADDRESS")
            monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
            assert connect_options()["target_host"] == "localhost:7233"
    finally:
        cluster.stop_temporal()
