"""The one place a Temporal client is built: worker, starter and tests all come through ``connect``.

The pydantic data converter is always set (every workflow, activity, signal and query exchanges pydantic models).
When payload encryption keys are configured (``services.codec``), the codec is added too, so history holds
ciphertext only.

Where to connect comes from temporalio.envconfig: a ``temporal.toml`` profile (``TEMPORAL_CONFIG_FILE``,
``TEMPORAL_PROFILE``) and the ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS*`` variables, the same ones the Temporal CLI reads. Explicit arguments win over both.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.exceptions import ApplicationError

from services.codec import EncryptionCodec, KeyRing, MissingKeysCodec
from services.telemetry import client_interceptors, temporal_runtime

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "deployments"


# ApplicationError types whose message says everything a reader needs (a classified failure, a rejection, a
# confirmation timeout, a rollback): the Temporal UI shows them without the Python stack trace of where the
# workflow raised them. Any other error keeps its stack trace (it is a bug worth a trace).
READABLE_FAILURE_PREFIXES = ("LOGIC.", "ENVIRONMENTAL.", "NOT_DEPLOYED.", "ROLLED_BACK.")


class ReadableFailureConverter(DefaultFailureConverter):
    """The default failure converter, without stack traces on the deployment's own classified failures."""

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, ApplicationError) and (exception.type or "").startswith(READABLE_FAILURE_PREFIXES):
            # The whole chain: the workflow raises these while handling its internal StageFailed, which becomes
            # the cause, with the trace of where the stage gave up.
            current: Failure | None = failure
            while current is not None:
                current.stack_trace = ""
                current = current.cause if current.HasField("cause") else None


_CONVERTER = dataclasses.replace(pydantic_data_converter, failure_converter_class=ReadableFailureConverter)


def data_converter() -> DataConverter:
    """The pydantic converter, plus the encryption codec when keys are configured (without keys, a codec that
    names the missing key configuration when it meets an encrypted payload)."""
    ring = KeyRing.from_environment()
    if ring is None:
        return dataclasses.replace(_CONVERTER, payload_codec=MissingKeysCodec())
    return dataclasses.replace(_CONVERTER, payload_codec=EncryptionCodec(ring))


def connect_options(
    *,
    address: str | None = None,
    namespace: str | None = None,
    api_key: str | None = None,
    tls: bool | None = None,
    profile: str | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect``: the envconfig profile, overridden by explicit arguments."""
    # A str config_source is read as TOML text, a Path as a file: config_file names a file.
    prof = ClientConfigProfile.load(profile=profile, config_source=Path(config_file) if config_file else None)
    options: dict[str, Any] = dict(prof.to_client_connect_config())
    options.setdefault("target_host", DEFAULT_ADDRESS)
    options.setdefault("namespace", DEFAULT_NAMESPACE)
    if address:
        options["target_host"] = address
    if namespace:
        options["namespace"] = namespace
    if api_key:
        options["api_key"] = api_key
        options.setdefault("tls", True)
    if tls is not None:
        options["tls"] = tls
    return options


async def connect(
    *,
    address: str | None = None,
    namespace: str | None = None,
    api_key: str | None = None,
    tls: bool | None = None,
    profile: str | None = None,
    config_file: str | None = None,
    **client_kwargs: Any,
) -> Client:
    """A connected client with this project's data converter, the tracing interceptor when tracing is configured
    (``services.telemetry``) and, in a process that records metrics (``services.metrics``), its runtime."""
    options = connect_options(
        address=address, namespace=namespace, api_key=api_key, tls=tls, profile=profile, config_file=config_file
    )
    target = options.pop("target_host")
    interceptors = client_interceptors()
    if interceptors:
        client_kwargs["interceptors"] = [*interceptors, *client_kwargs.get("interceptors", [])]
    runtime = temporal_runtime()
    if runtime is not None:
        client_kwargs.setdefault("runtime", runtime)
    return await Client.connect(target, data_converter=data_converter(), **options, **client_kwargs)
