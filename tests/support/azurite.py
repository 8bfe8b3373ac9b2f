"""Azurite, the Azure Storage emulator (npm package ``azurite``), as a test fixture: its blob service on 127.0.0.1 on
a free port, in memory, stopped when the test is done (also when it fails).

``make test`` installs it under ``.tools/`` (``make azurite``); ``azurite-blob`` on PATH works too. Where neither is
there (no node/npm on the machine, or no registry), the tests that need it skip, saying why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_BINARY = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"

# Azurite's well-known development account (public, documented by Microsoft: it is not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

MISSING = (
    "Azurite (the Azure Storage emulator, npm package azurite) is not installed: `make azurite` (run by `make test`) "
    "installs it under .tools/ with npm; it needs node and npm"
)


@dataclass(frozen=True)
class Azurite:
    port: int
    ca_file: Path | None = None  # set when it serves HTTPS (with OAuth): the certificate to trust

    @property
    def blob_endpoint(self) -> str:
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={'https' if self.ca_file else 'http'};AccountName={DEV_ACCOUNT};"
            f"AccountKey={DEV_KEY};BlobEndpoint={self.blob_endpoint};"
        )


def azurite_binary() -> str | None:
    if LOCAL_BINARY.exists():
        return str(LOCAL_BINARY)
    return shutil.which("azurite-blob")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1, valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@contextlib.contextmanager
def running_azurite(workdir: Path, *, oauth: bool = False, timeout: float = 60.0) -> Iterator[Azurite]:
    """Azurite's blob service for the duration of the block (skips the test when Azurite is not installed). With
    ``oauth`` it serves HTTPS (a self-signed certificate) and accepts bearer tokens (``--oauth basic``: issuer,
    audience and lifetime checked, not the signature)."""
    binary = azurite_binary()
    if binary is None:
        pytest.skip(MISSING)
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = workdir / "azurite.log"
    argv = [
        binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence", "--skipApiVersionCheck",
        "--disableTelemetry", "--silent",
    ]  # fmt: skip
    ca_file = None
    if oauth:
        ca_file, key_file = self_signed_certificate(workdir)
        argv += ["--oauth", "basic", "--cert", str(ca_file), "--key", str(key_file)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Azurite did not start on 127.0.0.1:{port}:\n{log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.1)
        yield Azurite(port, ca_file)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # its own session: node and anything it started
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite per test module; each test uses its own container."""
    with running_azurite(tmp_path_factory.mktemp("azurite")) as emulator:
        yield emulator
