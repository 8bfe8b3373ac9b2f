"""A small typed client for the local ARM's admin endpoint (faults, counters, settings).

    admin = AdminClient(arm.endpoint, ca_file=arm.ca_file)
    admin.add_faults(Fault.throttle(operation="Deployments_CreateOrUpdate", count=1))
    ...
    assert admin.counters().count(method="PUT", deployment="web") == 1

Standard library only, so any test or tool can use it without the Azure SDK.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RequestCount:
    method: str
    path: str
    operation: str
    deployment: str
    status: int  # 0 when the connection was dropped on purpose
    count: int


@dataclass(frozen=True)
class Counters:
    requests: list[RequestCount]

    def count(
        self,
        *,
        method: str | None = None,
        deployment: str | None = None,
        operation: str | None = None,
        path_contains: str | None = None,
        status: int | None = None,
    ) -> int:
        """Requests matching every given filter (method, deployment and operation compared case-insensitively)."""

        def ok(r: RequestCount) -> bool:
            return (
                (method is None or r.method.upper() == method.upper())
                and (deployment is None or r.deployment.lower() == deployment.lower())
                and (operation is None or r.operation.lower() == operation.lower())
                and (path_contains is None or path_contains.lower() in r.path.lower())
                and (status is None or r.status == status)
            )

        return sum(r.count for r in self.requests if ok(r))

    @property
    def total(self) -> int:
        return sum(r.count for r in self.requests)


class Fault:
    """Builders for fault rules (plain dicts, the JSON the admin endpoint and config file take).

    Every builder accepts the filters ``method``, ``path`` (substring), ``operation`` (e.g.
    ``Deployments_CreateOrUpdate``), ``deployment``, and the frequency ``count`` / ``probability`` / ``skip``.
    """

    @staticmethod
    def throttle(*, retry_after: int = 1, **filters: Any) -> dict[str, Any]:
        return {"kind": "throttle", "retry_after": retry_after, **filters}

    @staticmethod
    def error(status: int = 500, *, code: str | None = None, **filters: Any) -> dict[str, Any]:
        return {"kind": "error", "status": status, **({"code": code} if code else {}), **filters}

    @staticmethod
    def drop(**filters: Any) -> dict[str, Any]:
        return {"kind": "drop", **filters}

    @staticmethod
    def slow_lro(delay: float, **filters: Any) -> dict[str, Any]:
        return {"kind": "slow_lro", "delay": delay, **filters}

    @staticmethod
    def stuck_lro(**filters: Any) -> dict[str, Any]:
        return {"kind": "stuck_lro", **filters}

    @staticmethod
    def provision_failure(
        code: str = "InternalServerError", *, message: str | None = None, **filters: Any
    ) -> dict[str, Any]:
        return {"kind": "provision_failure", "code": code, **({"message": message} if message else {}), **filters}

    @staticmethod
    def preflight_failure(code: str = "QuotaExceeded", *, message: str | None = None, **filters: Any) -> dict[str, Any]:
        return {"kind": "preflight_failure", "code": code, **({"message": message} if message else {}), **filters}

    # -- health faults: reads of deployed resources, after their deployment ----------------------------
    # Each lasts for ``count`` matching reads and/or ``duration`` seconds (without either: until removed); filter
    # with ``resource_type`` / ``resource_name`` (a child's full or last name).

    @staticmethod
    def resource_state(state: str, *, duration: float | None = None, **filters: Any) -> dict[str, Any]:
        """GET of the resource reports ``properties.provisioningState`` = ``state``."""
        return {"kind": "resource_state", "state": state, **_duration(duration), **filters}

    @staticmethod
    def stays_updating(*, duration: float | None = None, **filters: Any) -> dict[str, Any]:
        """A resource that stays ``Updating`` after its deployment succeeded."""
        return Fault.resource_state("Updating", duration=duration, **filters)

    @staticmethod
    def turns_failed(*, duration: float | None = None, **filters: Any) -> dict[str, Any]:
        """A resource whose provisioningState turned ``Failed`` after its deployment succeeded."""
        return Fault.resource_state("Failed", duration=duration, **filters)

    @staticmethod
    def availability(state: str, *, duration: float | None = None, **filters: Any) -> dict[str, Any]:
        """Resource Health (availabilityStatuses/current) reports ``state``: Unavailable, Degraded or Unknown."""
        return {"kind": "availability", "state": state, **_duration(duration), **filters}

    @staticmethod
    def unavailable(*, duration: float | None = None, **filters: Any) -> dict[str, Any]:
        return Fault.availability("Unavailable", duration=duration, **filters)

    @staticmethod
    def degraded(*, duration: float | None = None, **filters: Any) -> dict[str, Any]:
        return Fault.availability("Degraded", duration=duration, **filters)


def _duration(duration: float | None) -> dict[str, Any]:
    return {} if duration is None else {"duration": duration}


class AdminError(RuntimeError):
    pass


class AdminClient:
    def __init__(self, endpoint: str, *, ca_file: Path | str, timeout: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.endpoint}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._context, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise AdminError(f"{method} {path} failed with {exc.code}: {detail}") from exc
        return json.loads(raw) if raw else None

    # -- faults ------------------------------------------------------------------------------------------------
    def set_faults(self, *rules: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
        """Replace every fault rule."""
        body: dict[str, Any] = {"rules": list(rules)}
        if seed is not None:
            body["seed"] = seed
        result: dict[str, Any] = self._call("PUT", "/admin/faults", body)
        return result

    def add_faults(self, *rules: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/admin/faults", {"rules": list(rules)})
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/admin/faults")

    def faults(self) -> dict[str, Any]:
        """Rules with their ``matched`` and ``fired`` tallies."""
        result: dict[str, Any] = self._call("GET", "/admin/faults")
        return result

    def set_rate_limits(self, enabled: bool = True, **limits: tuple[float, float]) -> None:
        """Enforce token buckets; ``limits`` override ARM's (e.g. ``reads=(3, 0.5)``: capacity, refill per s)."""
        value: Any = {k: list(v) for k, v in limits.items()} if limits else enabled
        self._call("POST", "/admin/faults", {"rules": [], "rate_limits": value})

    # -- counters ----------------------------------------------------------------------------------------------
    def counters(self) -> Counters:
        data = self._call("GET", "/admin/counters")
        return Counters([RequestCount(**r) for r in data["requests"]])

    def reset_counters(self) -> None:
        self._call("POST", "/admin/counters/reset")

    # -- settings ----------------------------------------------------------------------------------------------
    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change retry_after, provisioning_seconds, latency or async_validate of the running server."""
        result: dict[str, Any] = self._call("PATCH", "/admin/config", settings)
        return result

    def reset(self, *, state: bool = False) -> None:
        """Clear faults and counters; with ``state=True`` also every resource group, resource and deployment."""
        self._call("POST", "/admin/reset", {"state": state})

    def change_resource(self, resource_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Change a deployed resource out of band (a JSON merge patch, a null removes a key): drift for tests."""
        result: dict[str, Any] = self._call("PATCH", "/admin/resources", {"id": resource_id, "patch": patch})
        return result

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/admin/health")
        return result
