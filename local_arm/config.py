"""Per-run settings of the local ARM: from a JSON file (``--config``), the admin endpoint, or code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .faults import FaultConfigError, FaultRule


@dataclass
class LocalArmConfig:
    # Seconds the SDK should wait between polls of a long-running operation. Whole seconds go out as Retry-After;
    # less than a second as retry-after-ms (0 → 10 ms) plus Retry-After: 1 (ARM's smallest), so that no client
    # falls back to its default (azure-core's 30 s polling_interval, the JavaScript poller's 2 s).
    retry_after: float = 1.0
    # Below a second, send only retry-after-ms. azure-core (Python) then polls at that pace (with Retry-After it
    # reads that first and waits a whole second); clients that read only Retry-After wait their default. For fast
    # Python test runs (local_arm.testing sets it); off by default, as ARM always sends Retry-After.
    retry_after_ms_only: bool = False
    # Simulated provisioning time of each resource (Creating/Updating before Succeeded).
    provisioning_seconds: float = 0.05
    # Simulated latency added to every request.
    latency: float = 0.0
    # Validate answers 202 + Location (async validation) instead of a synchronous 200/400.
    async_validate: bool = False
    # Seed of the fault rules' probabilities.
    seed: int = 0
    faults: list[FaultRule] = field(default_factory=list)
    # Enforce ARM's per-subscription token buckets (429 SubscriptionRequestsThrottled when empty).
    rate_limits: bool = False
    # Deployments kept per resource group; beyond it the oldest finished ones are deleted, as ARM does.
    history_limit: int = 800
    # Seconds added to the clock templates see (utcNow()): preview what a redeploy later would plan, or tell which
    # planned changes come from the time of deployment (the corpus sequence does). Nothing else is shifted.
    clock_offset: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalArmConfig:
        if not isinstance(data, dict):
            raise FaultConfigError("the config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FaultConfigError(f"unknown config field(s) {sorted(unknown)}; known: {sorted(known)}")
        values = dict(data)
        values["faults"] = [FaultRule.from_dict(r) for r in data.get("faults", [])]
        try:
            config = cls(**values)
            config.retry_after = float(config.retry_after)
            config.provisioning_seconds = float(config.provisioning_seconds)
            config.latency = float(config.latency)
            config.retry_after_ms_only = bool(config.retry_after_ms_only)
            config.history_limit = int(config.history_limit)
            config.clock_offset = float(config.clock_offset)
        except (TypeError, ValueError) as exc:
            raise FaultConfigError(f"bad config value: {exc}") from exc
        if config.history_limit < 1:
            raise FaultConfigError("history_limit must be >= 1")
        if config.retry_after < 0 or config.provisioning_seconds < 0 or config.latency < 0 or config.clock_offset < 0:
            raise FaultConfigError("retry_after, provisioning_seconds, latency and clock_offset must be >= 0")
        return config

    @classmethod
    def from_file(cls, path: Path) -> LocalArmConfig:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FaultConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise FaultConfigError(f"config file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def settings(self) -> dict[str, Any]:
        return {
            "retry_after": self.retry_after,
            "provisioning_seconds": self.provisioning_seconds,
            "latency": self.latency,
            "async_validate": self.async_validate,
            "seed": self.seed,
            "rate_limits": self.rate_limits,
            "clock_offset": self.clock_offset,
        }
