"""The content store's contract, on both backends: the local folder and an Azure Blob Storage container (Azurite,
the Azure Storage emulator, started by the test on loopback — the real azure-storage-blob SDK over HTTP, nothing
mocked). Plus the configuration of ``ORCHESTRATOR_CONTENT_STORE=azblob``: every mistake refused by name, no secret
in any message."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken

from services.azure_blob_store import (
    ACCOUNT_URL_ENV,
    CONNECTION_STRING_ENV,
    CONTAINER_ENV,
    AzureBlobStore,
    BlobStoreAccessError,
    BlobStoreUnavailableError,
    azure_blob_store_from_env,
)
from services.classification import classify_failure
from services.codec import KeyRing
from services.content_store import (
    CONTENT_STORE_ENV,
    BlobCorruptError,
    BlobKeyMissingError,
    BlobNotFoundError,
    BlobStore,
    ContentStoreConfigError,
    LocalBlobStore,
    open_content_store,
    open_json,
    put_json,
    seal_json,
)
from services.last_good import LastGoodStore
from tests.support.azurite import DEV_KEY, Azurite, azurite  # noqa: F401 (the fixture)

KEYS = "k1=" + base64.b64encode(b"\x01" * 32).decode()


@dataclass
class Backend:
    store: BlobStore
    tamper: Callable[[str, bytes], None]  # replace the stored bytes of a digest behind the store's back
    count: Callable[[], int]  # documents held


@pytest.fixture(params=["local", "azblob"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        local = LocalBlobStore(tmp_path / "blobs")

        def tamper_file(digest: str, data: bytes) -> None:
            hexdigest = digest.removeprefix("sha256:")
            (local.root / hexdigest[:2] / hexdigest).write_bytes(data)

        def count_files() -> int:
            return sum(1 for p in local.root.rglob("*") if p.is_file() and len(p.name) == 64)

        yield Backend(local, tamper_file, count_files)
        return
    emulator: Azurite = request.getfixturevalue("azurite")
    container = f"t-{uuid.uuid4().hex[:12]}"
    store = open_content_store(environ=azblob_env(emulator, container))
    assert isinstance(store, AzureBlobStore)
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(emulator.connection_string)
    raw = service.get_container_client(container)

    def tamper_blob(digest: str, data: bytes) -> None:
        raw.upload_blob("sha256/" + digest.removeprefix("sha256:"), data, overwrite=True)

    def count_blobs() -> int:
        return sum(1 for _ in raw.list_blobs(name_starts_with="sha256/"))

    try:
        yield Backend(store, tamper_blob, count_blobs)
    finally:
        store.close()
        service.close()


def azblob_env(emulator: Azurite, container: str, **extra: str) -> dict[str, str]:
    return {
        CONTENT_STORE_ENV: "azblob",
        CONNECTION_STRING_ENV: emulator.connection_string,
        CONTAINER_ENV: container,
        "ORCHESTRATOR_CODEC_KEYS": KEYS,
        **extra,
    }


# ------------------------------------------------------------------------------------------------ the contract


def test_round_trip_and_reference(backend: Backend) -> None:
    data = b'{"resources": []}'
    ref = backend.store.put(data)
    assert ref.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert backend.store.get(ref) == data


def test_put_is_idempotent(backend: Backend) -> None:
    first = backend.store.put(b"same bytes")
    second = backend.store.put(b"same bytes")
    assert first == second
    assert backend.store.get(second) == b"same bytes"
    assert backend.count() == 1


def test_missing_document_is_reported_as_missing(backend: Backend) -> None:
    stored = backend.store.put(b"present")
    absent = stored.model_copy(update={"digest": "sha256:" + hashlib.sha256(b"never stored").hexdigest()})
    with pytest.raises(BlobNotFoundError, match="is not in the"):
        backend.store.get(absent)
    assert classify_failure(BlobNotFoundError("x")).failure_class.value == "LOGIC"


def test_tampered_document_is_detected(backend: Backend) -> None:
    ref = backend.store.put(b'{"adminUser": "ops"}')
    backend.tamper(ref.digest, b'{"adminUser": "attacker"}')
    with pytest.raises(BlobCorruptError, match="does not match its digest"):
        backend.store.get(ref)


def test_large_document_round_trips(backend: Backend) -> None:
    data = os.urandom(9 * 1024 * 1024)  # above the 2 MB payload limit history never carries
    ref = backend.store.put(data, media_type="application/octet-stream")
    assert ref.size == len(data)
    assert backend.store.get(ref) == data


def test_named_records_are_replaced_in_place(backend: Backend) -> None:
    assert backend.store.get_named("last-good/abc.json") is None
    backend.store.put_named("last-good/abc.json", b"1")
    backend.store.put_named("last-good/abc.json", b"2")
    assert backend.store.get_named("last-good/abc.json") == b"2"
    for bad in ("../escape", "/abs/path", "a//b", ".."):
        with pytest.raises(ValueError, match="not a record name"):
            backend.store.put_named(bad, b"x")


def test_sealed_values_rest_encrypted_and_open_with_the_key(backend: Backend) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    ring = KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": KEYS})
    ref = seal_json(backend.store, {"adminPassword": {"value": secret}}, ring)
    assert secret.encode() not in backend.store.get(ref)
    assert open_json(backend.store, ref, ring) == {"adminPassword": {"value": secret}}


def test_last_good_pointer_round_trips(backend: Backend) -> None:
    from contract.models import LastGoodDeployment

    template = put_json(backend.store, {"resources": []})
    record = LastGoodDeployment(
        subscription_id="00000000-0000-0000-0000-000000000001", resource_group="rg-lg", location="westeurope",
        workflow_id="deploy-x", deployment_name="d1", completed_at="2026-01-01T00:00:00Z", template=template,
        template_hash=template.digest,
    )  # fmt: skip
    records = LastGoodStore(backend.store)
    assert records.load(record.subscription_id, "rg-lg") is None
    records.save(record)
    loaded = records.load(record.subscription_id, "RG-LG")
    assert loaded is not None and loaded.deployment_name == "d1"


# ------------------------------------------------------------------------------------------------ azblob only


def test_missing_container_is_created_on_first_write(azurite: Azurite) -> None:  # noqa: F811
    from azure.storage.blob import BlobServiceClient

    container = f"new-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    assert not service.get_container_client(container).exists()
    store = open_content_store(environ=azblob_env(azurite, container))
    ref = store.put(b"first")
    assert service.get_container_client(container).exists()
    assert store.get(ref) == b"first"
    # A reader of a container that does not exist yet finds nothing, and creates nothing.
    other = open_content_store(environ=azblob_env(azurite, f"none-{uuid.uuid4().hex[:12]}"))
    with pytest.raises(BlobNotFoundError):
        other.get(ref)
    service.close()


def test_wrong_account_key_is_refused_without_showing_it(azurite: Azurite) -> None:  # noqa: F811
    wrong = base64.b64encode(os.urandom(64)).decode()
    env = azblob_env(azurite, "wrongkey", **{CONNECTION_STRING_ENV: azurite.connection_string.replace(DEV_KEY, wrong)})
    store = open_content_store(environ=env)
    with pytest.raises(BlobStoreAccessError) as caught:
        store.put(b"x")
    message = str(caught.value)
    assert "refused access (HTTP 403" in message and "wrongkey" in message
    assert wrong not in message and wrong[:20] not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert classify_failure(caught.value).failure_class.value == "LOGIC"


def test_unreachable_account_is_environmental_and_shows_no_signature(tmp_path: Path) -> None:
    # A SAS connection string to a closed loopback port: the request fails before any answer.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sas = "sv=2023-11-03&ss=b&srt=co&sp=rwl&se=2099-01-01T00:00:00Z&sig=" + uuid.uuid4().hex + "%3D"
    store = AzureBlobStore(
        container="closed",
        connection_string=f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;SharedAccessSignature={sas}",
        retries=0,
    )
    with pytest.raises(BlobStoreUnavailableError) as caught:
        store.put(b"x")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert sas not in message and "sig=" + sas.split("sig=")[1] not in message
    assert classify_failure(caught.value).failure_class.value == "ENVIRONMENTAL"


# ------------------------------------------------------------------------------------------------ configuration


SECRET_CS = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + base64.b64encode(b"k" * 64).decode()


def az(*, keys: bool = True, **variables: str) -> dict[str, str]:
    """``ORCHESTRATOR_CONTENT_STORE=azblob`` with codec keys and the given ORCHESTRATOR_BLOB_* variables."""
    env = {CONTENT_STORE_ENV: "azblob", **{f"ORCHESTRATOR_BLOB_{k.upper()}": v for k, v in variables.items()}}
    return env | ({"ORCHESTRATOR_CODEC_KEYS": KEYS} if keys else {})


URL = "https://a.blob.core.windows.net"


@pytest.mark.parametrize(
    ("env", "names", "says"),
    [
        ({CONTENT_STORE_ENV: "s3"}, [CONTENT_STORE_ENV], "'local'"),
        (az(), [ACCOUNT_URL_ENV, CONNECTION_STRING_ENV], "needs the storage account"),
        (az(account_url=URL, connection_string=SECRET_CS), [ACCOUNT_URL_ENV, CONNECTION_STRING_ENV], "set only one"),
        (az(connection_string=SECRET_CS, keys=False), ["ORCHESTRATOR_CODEC_KEYS"], "sealed"),
        (az(connection_string="AccountKey=" + "z" * 40), [CONNECTION_STRING_ENV], "not a storage connection string"),
        (az(connection_string=SECRET_CS, container="Bad_Name"), [CONTAINER_ENV], "3 to 63"),
        (az(account_url="http://a.blob.core.windows.net"), [ACCOUNT_URL_ENV], "https://"),
        (az(account_url=URL + "/?sv=1&sig=abc"), [ACCOUNT_URL_ENV], "without a query"),
        ({CONNECTION_STRING_ENV: SECRET_CS}, [CONNECTION_STRING_ENV, CONTENT_STORE_ENV], "=azblob"),
    ],
)
def test_bad_configuration_is_refused_by_name(env: dict[str, str], names: list[str], says: str) -> None:
    with pytest.raises(ContentStoreConfigError) as caught:
        open_content_store(environ=env)
    message = str(caught.value)
    for name in names:
        assert name in message
    assert says in message
    assert "AccountKey=" + "z" * 10 not in message and SECRET_CS.split("AccountKey=")[1] not in message
    assert "sig=abc" not in message


def test_account_url_signs_in_with_default_azure_credential() -> None:
    store = azure_blob_store_from_env(
        {ACCOUNT_URL_ENV: "https://acct.blob.core.windows.net", "ORCHESTRATOR_CODEC_KEYS": KEYS}
    )
    assert type(store._service.credential).__name__ == "DefaultAzureCredential"
    assert store.describe() == "Azure blob container 'bicep-orchestrator' at https://acct.blob.core.windows.net/"


def test_local_store_is_the_default_and_honours_the_folder(tmp_path: Path) -> None:
    store = open_content_store(environ={"ORCHESTRATOR_BLOB_DIR": str(tmp_path / "x")})
    assert isinstance(store, LocalBlobStore) and store.root == tmp_path / "x"
    explicit = open_content_store(blob_dir=tmp_path / "y", environ={CONTENT_STORE_ENV: "local"})
    assert isinstance(explicit, LocalBlobStore) and explicit.root == tmp_path / "y"


def test_a_container_store_never_falls_back_to_a_local_key(azurite: Azurite) -> None:  # noqa: F811
    """Without configured keys there is nowhere to keep a local key that other machines could share: sealing is
    refused, saying what to configure (the factory already demands the keys; this is the store's own guard)."""
    store = AzureBlobStore(container=f"nokey-{uuid.uuid4().hex[:8]}", connection_string=azurite.connection_string)
    with pytest.raises(BlobKeyMissingError, match="ORCHESTRATOR_CODEC_KEYS"):
        seal_json(store, {"pw": "x"}, None)
    assert json.dumps(str(store.describe()))


# ------------------------------------------------------------------------------------------------ signing in


class EntraLikeToken:
    """A sync ``TokenCredential`` issuing an unsigned JWT shaped like Microsoft Entra ID's for Azure Storage —
    Entra ID itself cannot exist here; Azurite's ``--oauth basic`` checks issuer, audience and lifetime, as the
    service checks them (and the signature, which the emulator skips). Records the scopes it was asked for."""

    def __init__(self, *, audience: str = "https://storage.azure.com", lifetime: int = 3600) -> None:
        self.audience, self.lifetime = audience, lifetime
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        import time

        self.scopes += scopes
        now = int(time.time())
        claims = {"aud": self.audience, "iss": "https://sts.windows.net/00000000-0000-0000-0000-0000000000aa/",
                  "iat": now - 60, "nbf": now - 60, "exp": now + self.lifetime, "oid": "worker"}  # fmt: skip

        def part(doc: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

        return AccessToken(f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.", now + self.lifetime)


@pytest.fixture(scope="module")
def azurite_oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    from tests.support.azurite import running_azurite

    with running_azurite(tmp_path_factory.mktemp("azurite-oauth"), oauth=True) as emulator:
        yield emulator


def test_account_url_with_a_token_credential(azurite_oauth: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    """The account-URL path (the one DefaultAzureCredential takes in production) over HTTPS with a bearer token:
    documents round-trip, and a token for the wrong audience is refused as access denied."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azurite_oauth.ca_file))  # trust the emulator's certificate
    token = EntraLikeToken()
    store = AzureBlobStore(
        container=f"oauth-{uuid.uuid4().hex[:8]}", account_url=azurite_oauth.blob_endpoint, credential=token
    )
    ref = store.put(b'{"signed": "in"}')
    assert store.get(ref) == b'{"signed": "in"}'
    assert token.scopes and all(s.startswith("https://storage.azure.com") for s in token.scopes)
    store.close()

    wrong = AzureBlobStore(
        container="oauth-wrong", account_url=azurite_oauth.blob_endpoint,
        credential=EntraLikeToken(audience="https://management.azure.com"),
    )  # fmt: skip
    with pytest.raises(BlobStoreAccessError, match="refused this credential") as caught:
        wrong.put(b"x")
    assert "ORCHESTRATOR_BLOB_ACCOUNT_URL" in str(caught.value)
    wrong.close()
