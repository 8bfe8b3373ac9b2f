"""A content-addressed store for the bulky documents a deployment handles: templates, parameter values and full
what-if results.

Temporal history carries only a ``BlobRef`` (sha256 digest, size) and small summaries, so a 4 MB template or an
800-resource what-if never approaches Temporal's 2 MB payload limit. Writing the same bytes twice yields the same
reference; a reader verifies the digest, so a corrupted or swapped file is detected, never silently used.

The default store is a local folder (``$ORCHESTRATOR_BLOB_DIR``, else ``~/.cache/bicep-orchestrator/blobs``),
which every process on one machine shares: the starter writes, the workers read. Several workers on several
machines need a folder they all mount (NFS, SMB/Azure Files) or an object store implementing ``BlobStore``; see
docs/WORKFLOW.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from orchestrator.models import BlobRef

BLOB_DIR_ENV = "ORCHESTRATOR_BLOB_DIR"


class BlobNotFoundError(Exception):
    """The referenced document is not in this store (a worker on another machine without the shared folder?)."""

    code = "ContentStoreMissing"  # a LOGIC failure in orchestrator.classification: configuration, not weather


class BlobCorruptError(Exception):
    """The stored bytes do not match the reference's digest."""


class BlobStore(Protocol):
    def put(self, data: bytes, *, media_type: str = "application/json") -> BlobRef: ...

    def get(self, ref: BlobRef) -> bytes: ...


def default_blob_dir() -> Path:
    env = os.environ.get(BLOB_DIR_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "bicep-orchestrator" / "blobs"


class LocalBlobStore:
    """Blobs as files named by their digest under one folder (two-level fan-out), written atomically."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_blob_dir()

    def _path(self, digest: str) -> Path:
        algo, _, hexdigest = digest.partition(":")
        if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ValueError(f"not a sha256 blob digest: {digest!r}")
        return self.root / hexdigest[:2] / hexdigest

    def put(self, data: bytes, *, media_type: str = "application/json") -> BlobRef:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return BlobRef(digest=digest, size=len(data), media_type=media_type)

    def get(self, ref: BlobRef) -> bytes:
        path = self._path(ref.digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(
                f"document {ref.digest} is not in the content store at {self.root}; workers and the starter must "
                f"share one store (set {BLOB_DIR_ENV} to a folder they all see)"
            ) from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != ref.digest:
            raise BlobCorruptError(f"document {ref.digest} in {self.root} does not match its digest")
        return data


def canonical_json(value: Any) -> bytes:
    """Stable bytes for a JSON value, so equal documents share one reference."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def put_json(store: BlobStore, value: Any) -> BlobRef:
    return store.put(canonical_json(value))


def get_json(store: BlobStore, ref: BlobRef) -> Any:
    return json.loads(store.get(ref))


# ------------------------------------------------------------------------------------------ sealed documents

SEALED_MEDIA_TYPE = "application/json+aes256gcm"
_SEAL_MAGIC = b"ORCHSEAL1"


class BlobKeyMissingError(Exception):
    """A sealed document names a key this process does not have."""

    code = "ContentStoreKeyMissing"  # LOGIC: configuration


def seal_json(store: BlobStore, value: Any, key_ring: Any) -> BlobRef:
    """Store a JSON value encrypted (AES-256-GCM) with the key ring's active key — for secure parameter values.

    Uses the payload codec's key ring (``orchestrator.codec.KeyRing``: ``ORCHESTRATOR_CODEC_KEYS``), so one
    rotation covers history and the content store. The key id is stored in clear, the digest covers the ciphertext.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kid = key_ring.active_key_id.encode()
    nonce = os.urandom(12)
    ciphertext = AESGCM(key_ring.keys[key_ring.active_key_id]).encrypt(nonce, canonical_json(value), kid)
    data = _SEAL_MAGIC + bytes([len(kid)]) + kid + nonce + ciphertext
    return store.put(data, media_type=SEALED_MEDIA_TYPE)


def open_json(store: BlobStore, ref: BlobRef, key_ring: Any) -> Any:
    """Read a document written by ``put_json`` or ``seal_json``."""
    data = store.get(ref)
    if not data.startswith(_SEAL_MAGIC):
        return json.loads(data)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    rest = data[len(_SEAL_MAGIC) :]
    kid = rest[1 : 1 + rest[0]]
    nonce = rest[1 + rest[0] : 13 + rest[0]]
    ciphertext = rest[13 + rest[0] :]
    key = key_ring.keys.get(kid.decode()) if key_ring is not None else None
    if key is None:
        raise BlobKeyMissingError(
            f"document {ref.digest} is sealed with key id {kid.decode()!r}, which this process does not have; "
            "configure the same ORCHESTRATOR_CODEC_KEYS (or ORCHESTRATOR_CODEC_KEY_FILE) as the starter"
        )
    return json.loads(AESGCM(key).decrypt(nonce, ciphertext, kid))
