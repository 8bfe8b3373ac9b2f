"""Worker configuration: where Temporal is, which ARM to talk to and with what credential, and the per-worker
settings the workflow reads (retry schedule, timeouts).

Defaults target Azure's public cloud with ``DefaultAzureCredential``. The local ARM (an HTTPS server on loopback,
docs/LOCAL_ARM.md) is selected by ``ORCHESTRATOR_ARM_ENDPOINT=https://127.0.0.1:PORT`` plus
``ORCHESTRATOR_ARM_CA_FILE=<its ca.pem>`` and ``ORCHESTRATOR_ARM_CREDENTIAL=local`` (or the worker's flags). This
module never imports the local ARM: the "local" credential is a static unsigned token of our own, which the local
ARM accepts like any well-formed, unexpired bearer token.

The SDK's async clients run over azure-core's ``AsyncioRequestsTransport`` (requests in a thread pool), so no
aiohttp is needed; the sync ``DefaultAzureCredential`` is adapted to the async protocol the same way. Tokens are
fetched again by the SDK's bearer policy as they near expiry, so long deployments outlive a token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline.transport import AsyncioRequestsTransport

from contract.approvals import TrustPolicy
from contract.models import ApprovalPolicy, WorkerSettings
from contract.retry import schedule_from_env
from services.approvals import ENV_APPROVAL_POLICY, PolicyError, load_policy
from services.notifications.config import NotificationConfigError, Notifier, notifier_from_env
from services.temporal_client import DEFAULT_TASK_QUEUE

AZURE_PUBLIC_ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"

ENV_ARM_ENDPOINT = "ORCHESTRATOR_ARM_ENDPOINT"
ENV_ARM_CA_FILE = "ORCHESTRATOR_ARM_CA_FILE"
ENV_ARM_CREDENTIAL = "ORCHESTRATOR_ARM_CREDENTIAL"
ENV_ARM_POLL_INTERVAL = "ORCHESTRATOR_ARM_POLL_INTERVAL_SECONDS"
# The shared ARM request budget per subscription (services/arm_budget.py): the reserve it keeps in each of ARM's
# buckets, or "off" to send without it.
ENV_ARM_RESERVE = "ORCHESTRATOR_ARM_RESERVE"
ENV_TASK_QUEUE = "ORCHESTRATOR_TASK_QUEUE"
ENV_CONFIRMATION_TIMEOUT = "ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS"
ENV_HEARTBEAT_TIMEOUT = "ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS"
# Four eyes (docs/SECURITY.md): who may approve or reject deletions.
ENV_FOUR_EYES = "ORCHESTRATOR_FOUR_EYES"
ENV_APPROVERS = "ORCHESTRATOR_APPROVERS"
ENV_APPROVERS_FILE = "ORCHESTRATOR_APPROVERS_FILE"
ENV_ALLOW_SELF_APPROVAL = "ORCHESTRATOR_ALLOW_SELF_APPROVAL"
ENV_ALLOW_APPROVER_OVERRIDE = "ORCHESTRATOR_ALLOW_APPROVER_OVERRIDE"
ENV_ALLOW_SKIP_CONFIRMATION = "ORCHESTRATOR_ALLOW_SKIP_CONFIRMATION"  # initiators whose --no-confirm-deletes counts
# Worker capacity and shutdown (several workers on one task queue: docs/OPERATIONS.md)
ENV_MAX_CONCURRENT_ACTIVITIES = "ORCHESTRATOR_MAX_CONCURRENT_ACTIVITIES"
ENV_MAX_CONCURRENT_WORKFLOW_TASKS = "ORCHESTRATOR_MAX_CONCURRENT_WORKFLOW_TASKS"
ENV_MAX_CONCURRENT_LOCAL_ACTIVITIES = "ORCHESTRATOR_MAX_CONCURRENT_LOCAL_ACTIVITIES"
ENV_GRACEFUL_SHUTDOWN = "ORCHESTRATOR_GRACEFUL_SHUTDOWN_SECONDS"
ENV_BUILD_ID = "ORCHESTRATOR_BUILD_ID"

CredentialKind = Literal["default", "local"]


class ConfigError(ValueError):
    """A configuration value is unusable; the message names it and what to do."""


class StaticTokenCredential:
    """An ``AsyncTokenCredential`` issuing an unsigned JWT with a real expiry, for a local ARM endpoint only.

    It carries no secret. Never point it at Azure: Azure rejects it (401 InvalidAuthenticationToken).
    """

    def __init__(self, *, lifetime_seconds: int = 3600) -> None:
        self._lifetime = lifetime_seconds

    def _token(self, scopes: tuple[str, ...]) -> AccessTokenInfo:
        now = int(time.time())
        audience = scopes[0].removesuffix("/.default") if scopes else AZURE_PUBLIC_ARM
        claims = {
            "aud": audience,
            "iss": "https://bicep-orchestrator.invalid/",
            "iat": now,
            "nbf": now,
            "exp": now + self._lifetime,
            "sub": "bicep-orchestrator-worker",
            "jti": str(uuid.uuid4()),
        }
        token = ".".join([_b64url({"alg": "none", "typ": "JWT"}), _b64url(claims), ""])
        return AccessTokenInfo(token, now + self._lifetime, token_type="Bearer", refresh_on=now + self._lifetime - 300)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        info = self._token(scopes or (ARM_SCOPE,))
        return AccessToken(info.token, info.expires_on)

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return self._token(scopes or (ARM_SCOPE,))

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


class ThreadedAsyncCredential:
    """Adapts a sync ``TokenCredential`` (e.g. azure.identity's DefaultAzureCredential) to the async protocol by
    running it in a worker thread — the async azure.identity credentials would need aiohttp."""

    def __init__(self, sync_credential: Any) -> None:
        self._sync = sync_credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token: AccessToken = await asyncio.to_thread(self._sync.get_token, *scopes, **kwargs)
        return token

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        if hasattr(self._sync, "get_token_info"):
            info: AccessTokenInfo = await asyncio.to_thread(self._sync.get_token_info, *scopes, options=options)
            return info
        token = await self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)

    async def close(self) -> None:
        close = getattr(self._sync, "close", None)
        if close is not None:
            await asyncio.to_thread(close)

    async def __aenter__(self) -> ThreadedAsyncCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


def _b64url(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


@dataclass
class ArmConfig:
    endpoint: str = AZURE_PUBLIC_ARM
    ca_file: Path | None = None
    credential: CredentialKind = "default"
    # Seconds between LRO polls when ARM sends no Retry-After (the SDK's default is 30).
    polling_interval: float = 30.0
    # azure-core's own retries (its default is 3 on 408/429/5xx). 0: the workflow's schedule is the only retry
    # policy, so every retry is an attempt in history and the 5/10/20/40/80 s schedule is what ARM sees.
    sdk_retries: int = 0
    # Requests wait while a subscription's ARM bucket is at or below this many tokens (None: no budget).
    request_reserve: int | None = 20

    def validate(self) -> None:
        if not self.endpoint.startswith("https://"):
            raise ConfigError(
                f"the ARM endpoint {self.endpoint!r} ({ENV_ARM_ENDPOINT} or --arm-endpoint) must be an https:// URL; "
                "the Azure SDK refuses to send a bearer token over plain HTTP"
            )
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ConfigError(
                f"the CA file {str(self.ca_file)!r} ({ENV_ARM_CA_FILE} or --arm-ca-file) does not exist; point it "
                "at the local ARM's ca.pem (printed by `python -m local_arm`), or unset it for Azure"
            )
        if self.credential not in ("default", "local"):
            raise ConfigError(f"{ENV_ARM_CREDENTIAL} must be 'default' or 'local', not {self.credential!r}")

    def make_credential(self) -> Any:
        if self.credential == "local":
            return StaticTokenCredential()
        from azure.identity import DefaultAzureCredential  # imported late: it is slow and needs no aiohttp

        return ThreadedAsyncCredential(DefaultAzureCredential())


@dataclass
class WorkerConfig:
    arm: ArmConfig = field(default_factory=ArmConfig)
    task_queue: str = DEFAULT_TASK_QUEUE
    temporal_address: str | None = None
    temporal_namespace: str | None = None
    temporal_api_key: str | None = None
    temporal_tls: bool | None = None
    temporal_profile: str | None = None
    blob_dir: Path | None = None
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    max_concurrent_activities: int = 200
    max_concurrent_workflow_tasks: int | None = None  # None: the SDK's default (100)
    max_concurrent_local_activities: int | None = None  # None: the SDK's default (100)
    # On SIGTERM/SIGINT: how long running activities may go on before they are cancelled. The deploy activity
    # hands over at once (it leaves the ARM deployment running for the next worker), so a short grace is enough.
    graceful_shutdown_seconds: float = 10.0
    build_id: str | None = None  # None: the package version (worker.default_build_id)
    # What declared health checks may reach (services/health/policy.py). None: from the ORCHESTRATOR_HEALTH_*
    # variables when the activities are built, with the ARM endpoint refused.
    health_policy: Any = None
    # The approval policy file (ORCHESTRATOR_APPROVAL_POLICY, docs/SECURITY.md): the verify_approval activity
    # re-reads it at each check, so a revoked signer stops verifying without a restart.
    approval_policy_path: Path | None = None
    # Notification sinks, with their secrets (ORCHESTRATOR_NOTIFICATIONS, docs/NOTIFICATIONS.md); their routing, without
    # secrets, is ``settings.notifications``.
    notifier: Notifier | None = None


def _float_env(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None


def arm_config_from_env(environ: Mapping[str, str] | None = None) -> ArmConfig:
    env = os.environ if environ is None else environ
    endpoint = env.get(ENV_ARM_ENDPOINT) or AZURE_PUBLIC_ARM
    ca = env.get(ENV_ARM_CA_FILE)
    loopback = is_loopback(endpoint)
    # The static local token only ever for a loopback endpoint (the local ARM); any other endpoint — Azure's
    # public cloud or a sovereign one — gets DefaultAzureCredential unless told otherwise.
    kind = env.get(ENV_ARM_CREDENTIAL) or ("local" if loopback else "default")
    poll = _float_env(env, ENV_ARM_POLL_INTERVAL)
    reserve_text = (env.get(ENV_ARM_RESERVE) or "20").strip().lower()
    if reserve_text in ("off", "none", "0-off"):
        reserve: int | None = None
    else:
        try:
            reserve = int(reserve_text)
        except ValueError:
            raise ConfigError(f"{ENV_ARM_RESERVE}={reserve_text!r} is not a number of requests (or 'off')") from None
        if not 0 <= reserve <= 1000:
            raise ConfigError(f"{ENV_ARM_RESERVE}={reserve} is outside 0 .. 1000")
    config = ArmConfig(
        endpoint=endpoint.rstrip("/"),
        ca_file=Path(ca) if ca else None,
        credential=kind,  # type: ignore[arg-type]
        polling_interval=poll if poll is not None else (1.0 if loopback else 30.0),
        request_reserve=reserve,
    )
    return config


def is_loopback(endpoint: str) -> bool:
    host = (urlsplit(endpoint).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _flag_env(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={env.get(name)!r} must be 1/true/yes or 0/false/no")


def approval_policy_from_env(environ: Mapping[str, str] | None = None) -> ApprovalPolicy:
    """Four eyes: on with ``ORCHESTRATOR_FOUR_EYES=1`` or as soon as approvers are listed
    (``ORCHESTRATOR_APPROVERS=ana,bo`` or ``ORCHESTRATOR_APPROVERS_FILE``: one identity per line, ``#`` comments)."""
    env = os.environ if environ is None else environ
    approvers: list[str] | None = None
    sources: list[str] = []
    if env.get(ENV_APPROVERS):
        approvers = [a.strip() for a in env[ENV_APPROVERS].split(",") if a.strip()]
        sources.append(ENV_APPROVERS)
    if env.get(ENV_APPROVERS_FILE):
        path = Path(env[ENV_APPROVERS_FILE])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the approvers file {path} ({ENV_APPROVERS_FILE}): {exc.strerror or exc}; list one "
                "identity per line, or unset the variable"
            ) from None
        from_file = [line.split("#", 1)[0].strip() for line in lines]
        approvers = [*(approvers or []), *(a for a in from_file if a)]
        sources.append(f"{ENV_APPROVERS_FILE}={path}")
    if approvers is not None and not approvers:
        raise ConfigError(
            f"{' and '.join(sources)} list no approver, so no deletion could ever be approved; name at least one"
        )
    enabled = _flag_env(env, ENV_FOUR_EYES) or approvers is not None
    if enabled and not sources:
        sources.append(f"{ENV_FOUR_EYES}=1")
    return ApprovalPolicy(
        enabled=enabled,
        allowed_approvers=approvers,
        allow_self_approval=_flag_env(env, ENV_ALLOW_SELF_APPROVAL),
        allow_approver_override=_flag_env(env, ENV_ALLOW_APPROVER_OVERRIDE),
        skip_confirmation_allowed=[a.strip() for a in env.get(ENV_ALLOW_SKIP_CONFIRMATION, "").split(",") if a.strip()],
        source=", ".join(sources),
    )


def verified_approval_policy(trust: TrustPolicy) -> ApprovalPolicy:
    """The worker's approval settings under an approval policy file: the file decides (proofs, approvers, N of M,
    --no-confirm-deletes); the claimed-name variables no longer apply."""
    return ApprovalPolicy(enabled=True, trust=trust, source=trust.source or ENV_APPROVAL_POLICY)


def worker_config_from_env(environ: Mapping[str, str] | None = None) -> WorkerConfig:
    env = os.environ if environ is None else environ
    settings = WorkerSettings(retry=schedule_from_env(env))
    confirmation = _float_env(env, ENV_CONFIRMATION_TIMEOUT)
    if confirmation is not None:
        settings.confirmation_timeout_seconds = confirmation
    heartbeat = _float_env(env, ENV_HEARTBEAT_TIMEOUT)
    if heartbeat is not None:
        settings.heartbeat_timeout_seconds = heartbeat
    settings.approval = approval_policy_from_env(env)
    policy_path = env.get(ENV_APPROVAL_POLICY)
    if policy_path:
        try:
            trust = load_policy(Path(policy_path))
        except PolicyError as exc:
            raise ConfigError(str(exc)) from None
        settings.approval = verified_approval_policy(trust)
    config = WorkerConfig(
        arm=arm_config_from_env(env), task_queue=env.get(ENV_TASK_QUEUE) or DEFAULT_TASK_QUEUE, settings=settings
    )
    activities = _positive_int_env(env, ENV_MAX_CONCURRENT_ACTIVITIES)
    if activities is not None:
        config.max_concurrent_activities = activities
    config.max_concurrent_workflow_tasks = _positive_int_env(env, ENV_MAX_CONCURRENT_WORKFLOW_TASKS)
    config.max_concurrent_local_activities = _positive_int_env(env, ENV_MAX_CONCURRENT_LOCAL_ACTIVITIES)
    grace = _float_env(env, ENV_GRACEFUL_SHUTDOWN)
    if grace is not None:
        if grace < 0:
            raise ConfigError(f"{ENV_GRACEFUL_SHUTDOWN}={grace!r} must be >= 0 seconds")
        config.graceful_shutdown_seconds = grace
    if policy_path:
        config.approval_policy_path = Path(policy_path)
    config.build_id = env.get(ENV_BUILD_ID) or None
    try:
        config.notifier = notifier_from_env(env)
    except NotificationConfigError as exc:
        raise ConfigError(str(exc)) from None
    if config.notifier is not None:
        settings.notifications = config.notifier.routing
    return config


def _positive_int_env(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be a whole number >= 1")
    return value


class ArmClients:
    """The async ARM SDK clients, one pair per subscription, built on first use and closed together."""

    def __init__(self, config: ArmConfig, credential: Any | None = None) -> None:
        self.config = config
        self.credential = credential if credential is not None else config.make_credential()
        self._deployments: dict[str, Any] = {}
        self._resources: dict[str, Any] = {}
        self.budget: Any = None
        from services.metrics import arm_series_at_zero

        arm_series_at_zero()
        if config.request_reserve is not None:
            from services.arm_budget import ArmBudget

            self.budget = ArmBudget(reserve=config.request_reserve)  # one per worker, shared by every client

    def _client_kwargs(self) -> dict[str, Any]:
        verify: bool | str = str(self.config.ca_file) if self.config.ca_file else True
        from services.metrics import ArmMetricsPolicy

        # Per retry, so each response is seen (the SDK retries 429s and 5xx itself): metrics after the budget.
        per_retry: list[Any] = [ArmMetricsPolicy()]
        if self.budget is not None:
            from services.arm_budget import ArmBudgetPolicy

            per_retry.insert(0, ArmBudgetPolicy(self.budget))
        return {
            "per_retry_policies": per_retry,
            "base_url": self.config.endpoint,
            "transport": AsyncioRequestsTransport(connection_verify=verify),
            "polling_interval": self.config.polling_interval,
            "retry_total": self.config.sdk_retries,
        }

    def deployments(self, subscription_id: str) -> Any:
        """``azure.mgmt.resource.deployments.aio.DeploymentsMgmtClient`` for the subscription."""
        client = self._deployments.get(subscription_id)
        if client is None:
            from azure.mgmt.resource.deployments.aio import DeploymentsMgmtClient

            client = DeploymentsMgmtClient(self.credential, subscription_id, **self._client_kwargs())
            self._deployments[subscription_id] = client
        return client

    def resources(self, subscription_id: str) -> Any:
        """``azure.mgmt.resource.resources.aio.ResourceManagementClient`` for the subscription."""
        client = self._resources.get(subscription_id)
        if client is None:
            from azure.mgmt.resource.resources.aio import ResourceManagementClient

            client = ResourceManagementClient(self.credential, subscription_id, **self._client_kwargs())
            self._resources[subscription_id] = client
        return client

    async def close(self) -> None:
        for client in [*self._deployments.values(), *self._resources.values()]:
            await client.close()
        self._deployments.clear()
        self._resources.clear()
        close = getattr(self.credential, "close", None)
        if close is not None:
            await close()
