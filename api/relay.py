"""The service's relay key: an Ed25519 key with which it attests the decisions of the people it authenticated.

An approval sent through the API carries an approval statement (contract/approvals.py) for the pending plan, signed
by this key (``services.approvals.sign_relay``); a worker whose approval policy lists the key's public half under
``[[relay]]`` verifies it and records the approver as verified (docs/SECURITY.md, "Verified approvals").

The private key is read from a PKCS#8 PEM file (``ORCHESTRATOR_API_RELAY_KEY_FILE``, mode 0600 advised) and never
leaves this process; ``ORCHESTRATOR_API_RELAY_KEY_ID`` names it in proofs (default ``team-api-1``). Without a file
(the development mode) a key is made and kept in the state folder, so restarts keep attesting with the same key."""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_RELAY_KEY_FILE = "ORCHESTRATOR_API_RELAY_KEY_FILE"
ENV_RELAY_KEY_ID = "ORCHESTRATOR_API_RELAY_KEY_ID"
DEFAULT_KEY_ID = "team-api-1"


class RelayKeyError(ValueError):
    """The relay key file cannot be used; the message names it and what to do."""


@dataclass(frozen=True)
class RelayKey:
    key_id: str
    private_key: Any  # Ed25519PrivateKey

    @property
    def public_key_base64(self) -> str:
        """What an approval policy's ``[[relay]] public_key`` holds: base64 of the raw 32-byte public key."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")


def load_relay_key(path: Path, key_id: str = DEFAULT_KEY_ID) -> RelayKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RelayKeyError(f"cannot read the relay key {path} ({ENV_RELAY_KEY_FILE}): {exc.strerror or exc}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise RelayKeyError(
            f"the relay key {path} is not an unencrypted PKCS#8 PEM private key; make one with "
            "`openssl genpkey -algorithm ed25519 -out relay.pem`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RelayKeyError(f"the relay key {path} is not an Ed25519 key; relays sign with Ed25519")
    return RelayKey(key_id=key_id, private_key=key)


def make_relay_key_file(path: Path) -> None:
    """A new Ed25519 private key in ``path`` (PKCS#8 PEM, readable by the owner only)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def relay_key_from_env(environ: dict[str, str] | os._Environ[str], *, state_dir: Path | None = None) -> RelayKey:
    """The configured relay key; without one, the state folder's own key (made on first use)."""
    key_id = environ.get(ENV_RELAY_KEY_ID) or DEFAULT_KEY_ID
    configured = environ.get(ENV_RELAY_KEY_FILE)
    if configured:
        return load_relay_key(Path(configured), key_id)
    if state_dir is None:
        raise RelayKeyError(
            f"no relay key: set {ENV_RELAY_KEY_FILE} to an Ed25519 PKCS#8 PEM file (docs/API.md), so approvals "
            "made through the API are attested"
        )
    path = state_dir / "api-relay-key.pem"
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another service of this state folder made it first
            make_relay_key_file(path)
    return load_relay_key(path, key_id)
