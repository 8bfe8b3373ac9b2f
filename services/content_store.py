"""A content-addressed store for the bulky documents a deployment handles: templates, parameter values and full
what-if results.

Temporal history carries only a ``BlobRef`` (sha256 digest, size) and small summaries, so a 4 MB template or an
800-resource what-if never approaches Temporal's 2 MB payload limit. Writing the same bytes twice yields the same
reference; a reader verifies the digest, so a corrupted or swapped file is detected, never silently used.

The default store is a local folder (``$ORCHESTRATOR_BLOB_DIR``, else ``~/.cache/bicep-orchestrator/blobs``),
which every process on one machine shares: the starter writes, the workers read. Processes on several machines
share an Azure Blob Storage container instead (``ORCHESTRATOR_CONTENT_STORE=azblob``,
``services/azure_blob_store.py``) or a folder they all mount (NFS, SMB/Azure Files). ``open_content_store`` is the
one place that decides which: the CLI, the worker and the harness all call it.

Besides the content-addressed documents, a store keeps a few small named records that are overwritten in place
(``put_named``/``get_named``): the last good deployment of each resource group and its drift baseline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from contract.models import BlobRef

BLOB_DIR_ENV = "ORCHESTRATOR_BLOB_DIR"
# Which store: "local" (the folder above, the default) or "azblob" (an Azure Blob Storage container, configured by
# the ORCHESTRATOR_BLOB_* variables of services/azure_blob_store.py).
CONTENT_STORE_ENV = "ORCHESTRATOR_CONTENT_STORE"
STORE_KINDS = ("local", "azblob")

log = logging.getLogger(__name__)


class BlobNotFoundError(Exception):
    """The referenced document is not in this store (a worker on another machine without the shared folder?)."""

    code = "ContentStoreMissing"  # a LOGIC failure in services.classification: configuration, not weather


class BlobCorruptError(Exception):
    """The stored bytes do not match the reference's digest."""


class ContentStoreConfigError(ValueError):
    """The content store's configuration is unusable; the message names the variable, what is wrong and what to do
    (never a secret's value)."""


class BlobStore(Protocol):
    def put(self, data: bytes, *, media_type: str = "application/json") -> BlobRef: ...

    def get(self, ref: BlobRef) -> bytes: ...

    def put_named(self, name: str, data: bytes) -> None:
        """Write (or replace, atomically) a small record under a name such as ``last-good/<hash>.json``."""
        ...

    def get_named(self, name: str) -> bytes | None:
        """The record written under ``name``, or None when there is none."""
        ...

    def describe(self) -> str:
        """Where the store is, for messages and logs (never a secret)."""
        ...


_NAME_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_record_name(name: str) -> str:
    """A named record's name: ``/``-separated segments of letters, digits, ``.``, ``_`` and ``-`` (so it can be
    neither an absolute path nor climb out of the store with ``..``)."""
    parts = name.split("/")
    if not 1 <= len(parts) <= 4 or not all(_NAME_SEGMENT.match(p) and p.strip(".") for p in parts):
        raise ValueError(f"not a record name for the content store: {name!r}")
    return name


def default_blob_dir() -> Path:
    env = os.environ.get(BLOB_DIR_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "bicep-orchestrator" / "blobs"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder and rename it into place: a reader never sees half a file,
    and a crash leaves no partial one under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
            _write_atomically(path, data)
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

    def put_named(self, name: str, data: bytes) -> None:
        _write_atomically(self.root / check_record_name(name), data)

    def get_named(self, name: str) -> bytes | None:
        try:
            return (self.root / check_record_name(name)).read_bytes()
        except FileNotFoundError:
            return None

    def describe(self) -> str:
        return f"content store folder {self.root}"


def open_content_store(*, blob_dir: Path | str | None = None, environ: Mapping[str, str] | None = None) -> BlobStore:
    """The content store this process is configured for: ``ORCHESTRATOR_CONTENT_STORE=azblob`` selects the Azure
    Blob Storage container (``services/azure_blob_store.py``), anything else the local folder (``blob_dir``, else
    ``ORCHESTRATOR_BLOB_DIR``, else the default). Raises ``ContentStoreConfigError`` for a bad configuration; makes
    no network call."""
    env = os.environ if environ is None else environ
    kind = (env.get(CONTENT_STORE_ENV) or "local").strip().lower()
    if kind not in STORE_KINDS:
        raise ContentStoreConfigError(
            f"{CONTENT_STORE_ENV}={env.get(CONTENT_STORE_ENV)!r} is not a content store kind; set it to 'local' (a "
            "folder, the default) or 'azblob' (an Azure Blob Storage container), or unset it"
        )
    if kind == "azblob":
        from services.azure_blob_store import azure_blob_store_from_env

        return azure_blob_store_from_env(env)
    from services.azure_blob_store import refuse_stray_settings

    refuse_stray_settings(env)
    if blob_dir is None and env.get(BLOB_DIR_ENV):
        blob_dir = env[BLOB_DIR_ENV]
    return LocalBlobStore(blob_dir)


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


# Secure values never rest in plaintext: without configured keys they are sealed with a key generated for the
# content store, kept beside it (mode 0600). It protects copies of the documents (a backup, a listing of a shared
# folder), not against whoever can read the key file: configure ORCHESTRATOR_CODEC_KEYS for anything real.
LOCAL_KEY_FILE = "local-seal.key"
LOCAL_KEY_PREFIX = "local-"
_PAD = 256  # sealed documents are padded to a multiple of this, so their size says little about the value


def local_key_path(store: BlobStore) -> Path | None:
    root = getattr(store, "root", None)
    return Path(root) / LOCAL_KEY_FILE if root is not None else None


def local_key_ring(store: BlobStore, *, create: bool) -> Any:
    """The content store's local key ring (``services.codec.KeyRing``), generated on first use when ``create``;
    None when the store has no folder or no key yet."""
    from services.codec import KeyRing

    path = local_key_path(store)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return KeyRing(active_key_id=doc["kid"], keys={doc["kid"]: base64.b64decode(doc["key"])})
    except FileNotFoundError:
        if not create:
            return None
    kid = LOCAL_KEY_PREFIX + os.urandom(4).hex()
    doc = {"kid": kid, "key": base64.b64encode(os.urandom(32)).decode()}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return local_key_ring(store, create=False)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    log.warning(
        "no payload encryption keys are configured (ORCHESTRATOR_CODEC_KEYS): secure parameter values are sealed "
        "with a local key generated at %s (mode 0600), which the processes sharing this content store use. "
        "Configure ORCHESTRATOR_CODEC_KEYS for real deployments (docs/SECURITY.md).",
        path,
    )
    return KeyRing(active_key_id=kid, keys={kid: base64.b64decode(doc["key"])})


def seal_json(store: BlobStore, value: Any, key_ring: Any) -> BlobRef:
    """Store a JSON value encrypted (AES-256-GCM) with the key ring's active key — for secure parameter values.

    Uses the payload codec's key ring (``services.codec.KeyRing``: ``ORCHESTRATOR_CODEC_KEYS``), so one
    rotation covers history and the content store; without one, the store's local key (generated on first use).
    The key id is stored in clear; the digest covers the ciphertext (random nonce), so the reference in history
    reveals nothing about the value and cannot confirm a guess.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if key_ring is None:
        key_ring = local_key_ring(store, create=True)
    if key_ring is None:
        raise BlobKeyMissingError(
            f"secure values cannot be stored in the {store.describe()}: it has no folder for a local key, so they "
            "are sealed only with configured keys; set ORCHESTRATOR_CODEC_KEYS (or ORCHESTRATOR_CODEC_KEY_FILE) to "
            "the same keys on every process sharing the store (docs/SECURITY.md)"
        )
    kid = key_ring.active_key_id.encode()
    nonce = os.urandom(12)
    plain = canonical_json(value)
    plain += b" " * (-len(plain) % _PAD)  # JSON allows trailing whitespace
    ciphertext = AESGCM(key_ring.keys[key_ring.active_key_id]).encrypt(nonce, plain, kid)
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
    if key is None and kid.decode().startswith(LOCAL_KEY_PREFIX):
        local = local_key_ring(store, create=False)
        key = local.keys.get(kid.decode()) if local is not None else None
    if key is None:
        raise BlobKeyMissingError(
            f"document {ref.digest} is sealed with key id {kid.decode()!r}, which this process does not have; "
            "configure the same ORCHESTRATOR_CODEC_KEYS (or ORCHESTRATOR_CODEC_KEY_FILE) as the starter"
            + (f", or share the content store's {LOCAL_KEY_FILE}" if kid.decode().startswith(LOCAL_KEY_PREFIX) else "")
        )
    return json.loads(AESGCM(key).decrypt(nonce, ciphertext, kid))
