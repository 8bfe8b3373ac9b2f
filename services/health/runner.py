"""Running a ``HealthSpec`` after a deployment: every check at once, retried within one convergence window.

Each check tries until it passes, until a failure that waiting cannot change (``ProbeFailure.final``), or until its
next attempt would start after the window closes. Every attempt begins inside the window and gets its full per-check
timeout (an attempt squeezed into the window's last milliseconds would only record a meaningless timeout), so the
stage ends at most one attempt's timeout after the window closes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from contract.health import (
    ArmCheck,
    CheckResult,
    CheckState,
    HealthCheck,
    HealthCheckReport,
    HealthSpec,
    HttpCheck,
    PluginCheck,
    TcpCheck,
)
from contract.health_targets import (
    TargetError,
    output_values,
    redact_url,
    substitute,
    validate_port,
    validate_resource_id,
    validate_url,
)
from services.health.policy import RequestPolicy
from services.health.probes import ProbeFailure, ResourceStateReader, probe_arm, probe_http, probe_tcp

ProgressCallback = Callable[[HealthCheckReport], None]
"""Called with a snapshot of every check after each attempt (a CLI redraws its table, an activity heartbeats)."""


def resolve_check(check: HealthCheck, outputs: Mapping[str, Any]) -> HealthCheck:
    """``check`` with ``{outputs.*}`` replaced by the deployment's actual outputs (ARM-shaped or plain) and its
    target checked again now that it is known. Raises ``TargetError``."""
    plain = output_values(outputs)
    if isinstance(check, TcpCheck):
        host = substitute(check.host, plain).strip()
        if not host:
            raise TargetError(f"the host '{check.host}' resolved to an empty text")
        return check.model_copy(update={"host": host, "port": validate_port(substitute(str(check.port), plain))})
    if isinstance(check, HttpCheck):
        url = substitute(check.url, plain)
        validate_url(url)
        headers = {name: substitute(value, plain) for name, value in check.headers.items()}
        return check.model_copy(update={"url": url, "headers": headers})
    if isinstance(check, PluginCheck):
        return check.model_copy(update={"settings": _substituted(check.settings, plain)})
    return check.model_copy(update={"resources": [validate_resource_id(substitute(r, plain)) for r in check.resources]})


class Clock(Protocol):
    """The runner's time: a monotonic clock for the window, the wall clock the window's start is given in, and
    waiting. Tests pass a clock of their own, so a 20-second convergence is checked without waiting 20 seconds."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


def _substituted(value: Any, plain: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return substitute(value, plain)
    if isinstance(value, dict):
        return {k: _substituted(v, plain) for k, v in value.items()}
    if isinstance(value, list):
        return [_substituted(v, plain) for v in value]
    return value


async def run_health_checks(
    spec: HealthSpec,
    *,
    outputs: Mapping[str, Any] | None = None,
    output_resource_ids: Sequence[str] = (),
    arm_reader: ResourceStateReader | None = None,
    on_progress: ProgressCallback | None = None,
    policy: RequestPolicy | None = None,
    window_started_at: float | None = None,
    resume: HealthCheckReport | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> HealthCheckReport:
    """Run every check of ``spec`` in parallel and report each one's attempts, last error and final state.

    ``outputs`` are the deployment's outputs; ``output_resource_ids`` the ids of the resources it produced (what
    an ``arm`` check without explicit ``resources`` verifies); ``arm_reader`` answers ``arm`` checks; ``policy`` is
    the worker's request policy (default: the strict one — public addresses, GET and HEAD).

    ``window_started_at`` (Unix time) is when the convergence window began, if before this call (the stage's
    start); ``resume`` is a lost attempt's report: its ended checks are kept and its pending ones continue with
    their tries counted. ``clock`` measures the window and waits between attempts.
    """
    policy = policy or RequestPolicy()
    started_wall = clock.time() if window_started_at is None else min(window_started_at, clock.time())
    started = clock.monotonic() - (clock.time() - started_wall)
    deadline = started + spec.window_seconds
    earlier = {c.name: c for c in (resume.checks if resume else [])}
    results = [
        earlier.get(c.name)
        or CheckResult(name=c.name, kind=c.kind, target=c.describe_target(), state=CheckState.PENDING)
        for c in spec.checks
    ]

    def snapshot() -> HealthCheckReport:
        return HealthCheckReport(
            window_seconds=spec.window_seconds,
            elapsed_seconds=round(clock.monotonic() - started, 3),
            checks=[r.model_copy() for r in results],
        )

    def record(index: int, **changes: Any) -> None:
        changes["elapsed_seconds"] = round(clock.monotonic() - started, 3)
        results[index] = results[index].model_copy(update=changes)
        if on_progress is not None:
            on_progress(snapshot())

    async def run_one(index: int, declared: HealthCheck) -> None:
        if results[index].state is not CheckState.PENDING:
            return  # ended in an earlier attempt
        try:
            check = resolve_check(declared, outputs or {})
        except TargetError as exc:
            record(
                index,
                state=CheckState.FAILED,
                last_error=f"cannot resolve the target: {exc}",
                declaration_error=True,
            )
            return
        record(index, target=_target(check))
        attempt = _attempt_function(check, output_resource_ids, arm_reader, policy, outputs or {})
        timeout = check.timeout_seconds or spec.timeout_seconds
        interval = check.retry_interval_seconds or spec.retry_interval_seconds
        attempts = results[index].attempts
        while True:
            if attempts and clock.monotonic() >= deadline:  # resumed after the window closed: no new attempt
                record(index, state=CheckState.FAILED)
                return
            attempts += 1
            try:
                note, decision = await attempt(timeout)
            except Exception as exc:  # a ProbeFailure, or anything a probe or an ARM reader did not foresee
                failure = exc if isinstance(exc, ProbeFailure) else None
                final = failure is not None and failure.final
                message = str(exc) if failure is not None else _unexpected(exc, check)
                policy_record = failure.decision if failure is not None else None
                declaration = failure is not None and failure.declaration
                if final or clock.monotonic() + interval >= deadline:
                    record(
                        index,
                        state=CheckState.FAILED,
                        attempts=attempts,
                        last_error=message,
                        request_policy=policy_record,
                        declaration_error=declaration,
                    )
                    return
                record(index, attempts=attempts, last_error=message, request_policy=policy_record)
                await clock.sleep(interval)
                continue
            record(index, state=CheckState.PASSED, attempts=attempts, note=note, request_policy=decision)
            return

    async with asyncio.TaskGroup() as group:
        for i, check in enumerate(spec.checks):
            group.create_task(run_one(i, check), name=f"health-check {check.name}")
    return snapshot()


def _attempt_function(
    check: HealthCheck,
    output_resource_ids: Sequence[str],
    arm_reader: ResourceStateReader | None,
    policy: RequestPolicy,
    outputs: Mapping[str, Any] | None = None,
) -> Callable[[float], Any]:
    """``async (timeout) -> (note | None, request policy decision | None)`` for one attempt of ``check``."""
    if isinstance(check, PluginCheck):
        return _plugin_attempt(check, output_resource_ids, outputs or {})
    if isinstance(check, TcpCheck):
        host, port = check.host, int(check.port)

        async def tcp(timeout: float) -> tuple[str | None, str | None]:
            return None, await probe_tcp(host, port, timeout=timeout, policy=policy)

        return tcp
    if isinstance(check, HttpCheck):

        async def http(timeout: float) -> tuple[str | None, str | None]:
            return None, await probe_http(check, timeout=timeout, policy=policy)

        return http
    assert isinstance(check, ArmCheck)
    resources = list(check.resources) or list(output_resource_ids)

    async def arm(timeout: float) -> tuple[str | None, str | None]:
        if arm_reader is None:
            raise ProbeFailure("no ARM state reader is configured for arm checks in this worker", final=True)
        try:
            async with asyncio.timeout(timeout):
                return await probe_arm(resources, arm_reader, availability=check.availability), None
        except TimeoutError:
            raise ProbeFailure(f"ARM did not answer within {timeout:g} s") from None

    return arm


def _plugin_attempt(
    check: PluginCheck, output_resource_ids: Sequence[str], outputs: Mapping[str, Any]
) -> Callable[[float], Any]:
    from services.health.plugins import PluginCheckFailed, PluginContext, call_plugin, load_plugin, secrets_for

    async def plugin(timeout: float) -> tuple[str | None, str | None]:
        try:
            fn = load_plugin(check.plugin)
            secrets = secrets_for(check)
        except LookupError as exc:  # not installed on this worker, or its secret is not configured here
            raise ProbeFailure(str(exc), declaration=True) from None
        ctx = PluginContext(settings=check.settings, outputs=output_values(outputs),
                            resources=list(output_resource_ids), timeout=timeout, secrets=secrets)  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                return await call_plugin(fn, ctx), None
        except TimeoutError:
            raise ProbeFailure(f"the plugin did not answer within {timeout:g} s") from None
        except PluginCheckFailed as exc:
            raise ProbeFailure(_redacted(str(exc), secrets)) from None
        except Exception as exc:
            raise ProbeFailure(_redacted(f"{type(exc).__name__}: {exc}", secrets)) from None

    return plugin


def _redacted(text: str, secrets: Mapping[str, str]) -> str:
    for value in secrets.values():
        if value:
            text = text.replace(value, "***")
    return text


def _unexpected(exc: Exception, check: HealthCheck) -> str:
    """An error no probe anticipated (e.g. from an ARM reader), with the check's URL redacted if it shows up."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(check, HttpCheck):
        text = text.replace(check.url, redact_url(check.url))
    return text


def _target(check: HealthCheck) -> str:
    if isinstance(check, HttpCheck):
        return f"{check.method} {redact_url(check.url)}"
    return check.describe_target()
