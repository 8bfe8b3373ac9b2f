"""The content store in an Azure Blob Storage container, for a CLI, an API and workers on different machines.

Selected with ``ORCHESTRATOR_CONTENT_STORE=azblob`` (``services.content_store.open_content_store``) and configured
by environment:

- ``ORCHESTRATOR_BLOB_ACCOUNT_URL`` — ``https://<account>.blob.core.windows.net``: signs in with
  ``DefaultAzureCredential`` (managed identity, workload identity, ``az login`` ...), which needs the role
  "Storage Blob Data Contributor" on the container (or the account, to create the container);
- or ``ORCHESTRATOR_BLOB_CONNECTION_STRING`` — an account key or SAS connection string (a secret: it never appears
  in a message or a log);
- ``ORCHESTRATOR_BLOB_CONTAINER`` — the container (default ``bicep-orchestrator``), created on first write when
  missing and the credential may.

Documents are content-addressed as in the local folder: the blob name is the sha256 digest (``sha256/<hex>``), so a
put of the same bytes is idempotent, and a reader verifies the digest of what it downloads (``BlobCorruptError``
for bytes that do not match, ``BlobNotFoundError`` for a missing blob). Named records (last good deployment,
drift baseline) live under ``named/``.

There is no local key beside a container: secure values are sealed with ``ORCHESTRATOR_CODEC_KEYS`` (or
``ORCHESTRATOR_CODEC_KEY_FILE``), which this store therefore requires (docs/SECURITY.md).

Azure errors leave this module as ``BlobStoreUnavailableError`` (a ``ConnectionError``: the network, a 5xx or 429 —
the failure classification retries it) or ``BlobStoreAccessError`` (a ``PermissionError``: 401/403, a credential
that cannot sign in — configuration), their messages cleaned of SAS signatures and keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from contract.models import BlobRef
from services.content_store import (
    CONTENT_STORE_ENV,
    BlobCorruptError,
    BlobNotFoundError,
    ContentStoreConfigError,
    check_record_name,
)

ACCOUNT_URL_ENV = "ORCHESTRATOR_BLOB_ACCOUNT_URL"
CONNECTION_STRING_ENV = "ORCHESTRATOR_BLOB_CONNECTION_STRING"
CONTAINER_ENV = "ORCHESTRATOR_BLOB_CONTAINER"
DEFAULT_CONTAINER = "bicep-orchestrator"
AZBLOB_ENVS = (ACCOUNT_URL_ENV, CONNECTION_STRING_ENV, CONTAINER_ENV)

# Verified documents kept in memory: a stage reads the same template and parameters several times, and a document
# never changes under its digest. Bounded in bytes; a document above the per-item limit is not kept.
CACHE_BYTES = 64 * 1024 * 1024
CACHE_ITEM_BYTES = 8 * 1024 * 1024

DIGEST_PREFIX = "sha256/"
NAMED_PREFIX = "named/"

_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_SIG = re.compile(r"(?i)(\bsig=)[^&\s'\"]+")
_KEY_IN_TEXT = re.compile(r"(?i)(AccountKey=|SharedAccessSignature=)[^;\s'\"]+")

T = TypeVar("T")


class BlobStoreUnavailableError(ConnectionError):
    """The container could not be reached or answered with a server error; retrying may help."""

    code = "ContentStoreUnavailable"


class BlobStoreAccessError(PermissionError):
    """The credential may not sign in or may not read/write the container: configuration, not weather."""

    code = "ContentStoreAccessDenied"


def refuse_stray_settings(env: Mapping[str, str]) -> None:
    """Blob settings without ``ORCHESTRATOR_CONTENT_STORE=azblob`` would silently leave the processes on separate
    local folders: refused, by name."""
    if env.get(CONTENT_STORE_ENV):
        return  # 'local' chosen on purpose
    stray = [name for name in AZBLOB_ENVS if env.get(name)]
    if stray:
        raise ContentStoreConfigError(
            f"{' and '.join(stray)} {'is' if len(stray) == 1 else 'are'} set but {CONTENT_STORE_ENV} is not, so the "
            f"content store would be the local folder; set {CONTENT_STORE_ENV}=azblob to use the Azure blob "
            f"container, or {CONTENT_STORE_ENV}=local (or unset {' and '.join(stray)}) to keep the folder"
        )


def azure_blob_store_from_env(env: Mapping[str, str]) -> AzureBlobStore:
    """The store ``ORCHESTRATOR_CONTENT_STORE=azblob`` describes; ``ContentStoreConfigError`` naming the variable
    for anything missing or malformed. No network call."""
    from services.codec import KEY_FILE_ENV, KEYS_ENV, CodecConfigError, KeyRing

    container = (env.get(CONTAINER_ENV) or DEFAULT_CONTAINER).strip()
    if not _CONTAINER_NAME.match(container):
        raise ContentStoreConfigError(
            f"{CONTAINER_ENV}={container!r} is not a valid blob container name: use 3 to 63 lower-case letters, "
            "digits and single hyphens, starting and ending with a letter or digit"
        )
    account_url = (env.get(ACCOUNT_URL_ENV) or "").strip()
    connection_string = (env.get(CONNECTION_STRING_ENV) or "").strip()
    if account_url and connection_string:
        raise ContentStoreConfigError(
            f"both {ACCOUNT_URL_ENV} and {CONNECTION_STRING_ENV} are set; set only one: the account URL (signs in "
            "with DefaultAzureCredential) or the connection string"
        )
    if not account_url and not connection_string:
        raise ContentStoreConfigError(
            f"{CONTENT_STORE_ENV}=azblob needs the storage account: set {ACCOUNT_URL_ENV} (e.g. "
            f"https://<account>.blob.core.windows.net, signing in with DefaultAzureCredential) or "
            f"{CONNECTION_STRING_ENV}"
        )
    try:
        ring = KeyRing.from_environment(env)
    except CodecConfigError as exc:
        raise ContentStoreConfigError(f"the payload encryption keys could not be read: {exc}") from None
    if ring is None:
        raise ContentStoreConfigError(
            f"{CONTENT_STORE_ENV}=azblob needs {KEYS_ENV} (or {KEY_FILE_ENV}): secure parameter values are sealed "
            "with those keys before upload, and a blob container has no folder for the local development key; set "
            "the same keys on every process sharing the container (docs/SECURITY.md)"
        )
    if account_url:
        parts = urlsplit(account_url)
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ContentStoreConfigError(
                f"{ACCOUNT_URL_ENV} must be the bare account URL (https://<account>.blob.core.windows.net) without a "
                f"query string or user info; put a SAS token in {CONNECTION_STRING_ENV} instead"
            )
        loopback = (parts.hostname or "") in ("localhost", "::1") or (parts.hostname or "").startswith("127.")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ContentStoreConfigError(
                f"{ACCOUNT_URL_ENV}={account_url!r} must be an https:// URL (the SDK sends no token over plain HTTP)"
            )
        return AzureBlobStore(container=container, account_url=account_url)
    try:
        return AzureBlobStore(container=container, connection_string=connection_string)
    except ValueError:
        raise ContentStoreConfigError(
            f"{CONNECTION_STRING_ENV} is not a storage connection string (its value is not shown); copy it from the "
            "storage account's 'Access keys' or 'Shared access signature' page, e.g. "
            "'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix=core.windows.net'"
        ) from None


class AzureBlobStore:
    """Content-addressed blobs in one container (``BlobStore``). ``credential`` defaults to
    ``DefaultAzureCredential`` when an account URL is given."""

    def __init__(
        self,
        *,
        container: str,
        account_url: str | None = None,
        connection_string: str | None = None,
        credential: Any = None,
        retries: int = 3,
    ) -> None:
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        # The SDK's default waits 15 s, then 18 s, then 24 s: a CLI user would wait a minute for "unreachable", and an
        # activity's own retries (the workflow's schedule) already cover longer outages.
        options: dict[str, Any] = {
            "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=retries),
            "connection_timeout": 10,
        }
        self._secrets: list[str] = []
        if connection_string:
            self._secrets += [
                v
                for k, _, v in (part.partition("=") for part in connection_string.split(";"))
                if k.strip().lower() in ("accountkey", "sharedaccesssignature") and v
            ]
            service = BlobServiceClient.from_connection_string(connection_string, **options)
        else:
            if not account_url:
                raise ValueError("an account URL or a connection string is needed")
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            service = BlobServiceClient(account_url, credential=credential, **options)
        self._service = service
        self.container = container
        self._client = service.get_container_client(container)
        parts = urlsplit(service.url)
        self.account_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))  # no SAS query
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ BlobStore

    def put(self, data: bytes, *, media_type: str = "application/json") -> BlobRef:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        name = DIGEST_PREFIX + digest.removeprefix("sha256:")
        self._upload(name, data, media_type=media_type, overwrite=False)
        return BlobRef(digest=digest, size=len(data), media_type=media_type)

    def get(self, ref: BlobRef) -> bytes:
        algo, _, hexdigest = ref.digest.partition(":")
        if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ValueError(f"not a sha256 blob digest: {ref.digest!r}")
        with self._lock:
            cached = self._cache.get(ref.digest)
            if cached is not None:
                self._cache.move_to_end(ref.digest)
                return cached
        data = self._download(DIGEST_PREFIX + hexdigest)
        if data is None:
            raise BlobNotFoundError(
                f"document {ref.digest} is not in the {self.describe()}; the starter and the workers must share one "
                f"store (the same {CONTENT_STORE_ENV}, account and {CONTAINER_ENV} everywhere)"
            )
        if "sha256:" + hashlib.sha256(data).hexdigest() != ref.digest:
            raise BlobCorruptError(f"document {ref.digest} in the {self.describe()} does not match its digest")
        self._remember(ref.digest, data)
        return data

    def _remember(self, digest: str, data: bytes) -> None:
        if len(data) > CACHE_ITEM_BYTES:
            return
        with self._lock:
            if digest in self._cache:
                return
            self._cache[digest] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > CACHE_BYTES:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped)

    def put_named(self, name: str, data: bytes) -> None:
        self._upload(NAMED_PREFIX + check_record_name(name), data, media_type="application/json", overwrite=True)

    def get_named(self, name: str) -> bytes | None:
        return self._download(NAMED_PREFIX + check_record_name(name))

    def describe(self) -> str:
        return f"Azure blob container {self.container!r} at {self.account_url}"

    def close(self) -> None:
        self._service.close()

    # ------------------------------------------------------------------ Azure calls

    def _upload(self, name: str, data: bytes, *, media_type: str, overwrite: bool) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        def upload() -> None:
            try:
                self._client.upload_blob(
                    name, data, overwrite=overwrite, content_settings=ContentSettings(content_type=media_type)
                )
            except ResourceExistsError:
                if overwrite:
                    raise
                # content-addressed: the same name holds the same bytes (a reader verifies them)

        try:
            self._call(upload)
        except BlobNotFoundError:  # the container is missing: create it once, then write again
            self._create_container()
            self._call(upload)

    def _download(self, name: str) -> bytes | None:
        def download() -> bytes:
            return bytes(self._client.download_blob(name).readall())

        try:
            return self._call(download)
        except BlobNotFoundError:
            return None

    def _create_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        def create() -> None:
            with contextlib.suppress(ResourceExistsError):  # another process created it first
                self._client.create_container()

        try:
            self._call(create)
        except BlobStoreAccessError:
            raise BlobStoreAccessError(
                f"the container {self.container!r} does not exist at {self.account_url} and this credential may not "
                f"create it; create it once (`az storage container create --name {self.container} --account-name "
                "<account> --auth-mode login`) or grant the identity 'Storage Blob Data Contributor' on the account"
            ) from None

    def _call(self, operation: Callable[[], T]) -> T:
        """Run one SDK call, translating its errors into the store's, with secrets removed from the message."""
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
        )

        try:
            return operation()
        except ResourceNotFoundError:
            raise BlobNotFoundError(f"not found in the {self.describe()}") from None
        except ClientAuthenticationError as exc:
            message = self._clean(str(exc.message if hasattr(exc, "message") else exc))
            raise BlobStoreAccessError(
                f"the {self.describe()} refused this credential ({_first_line(message)}); check "
                f"{ACCOUNT_URL_ENV} and the identity DefaultAzureCredential finds, or {CONNECTION_STRING_ENV}"
            ) from None
        except HttpResponseError as exc:
            status = exc.status_code
            code = getattr(exc, "error_code", None) or ""
            if status in (401, 403):
                raise BlobStoreAccessError(
                    f"the {self.describe()} refused access (HTTP {status} {code}); grant the identity 'Storage Blob "
                    f"Data Contributor' on the container, or check {CONNECTION_STRING_ENV}"
                ) from None
            raise BlobStoreUnavailableError(
                f"the {self.describe()} answered HTTP {status} {code}: {_first_line(self._clean(str(exc.message)))}"
            ) from None
        except AzureError as exc:  # ServiceRequestError, ServiceResponseError: the network
            raise BlobStoreUnavailableError(
                f"cannot reach the {self.describe()}: {_first_line(self._clean(str(exc.message or exc)))}"
            ) from None

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        text = _KEY_IN_TEXT.sub(r"\1<redacted>", text)
        return _SIG.sub(r"\1<redacted>", text)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]
