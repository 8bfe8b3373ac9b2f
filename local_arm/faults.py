"""Fault injection and request counters.

Faults are rules, set per run from a JSON config file (``--config``) or the admin endpoint. Each rule says what
to break (``kind``), where (method, path substring, operation, deployment, resource type or name) and how often
(a seeded ``probability``, a ``count`` of matching events, and ``skip`` to let the first few through). Kinds:

- ``throttle``: 429 TooManyRequests with Retry-After and x-ms-ratelimit-remaining-* headers
- ``error``: an HTTP error status (default 500 InternalServerError; 503 ServiceUnavailable, ...)
- ``drop``: the connection is closed without an answer
  (with ``after_handling``, drop/error/throttle act after the request took effect: the answer is what is lost)
- ``slow_lro``: the long-running operation takes ``delay`` seconds longer
- ``stuck_lro``: the long-running operation never finishes (until cancelled)
- ``provision_failure``: a resource's provisioning fails with ``code`` (Conflict, QuotaExceeded, AllocationFailed,
  ...); the deployment ends Failed with DeploymentFailed wrapping it
- ``preflight_failure``: validate / PUT answer 400 InvalidTemplateDeployment wrapping ``code`` (SkuNotAvailable,
  QuotaExceeded, ...)

Health faults act on reads of deployed resources, after their deployment, and take ``state``:

- ``resource_state``: GET of a matching resource reports ``properties.provisioningState`` = ``state``
  (``Updating``: a resource that stays Updating; ``Failed``: one that turned Failed)
- ``availability``: Resource Health (``.../providers/Microsoft.ResourceHealth/availabilityStatuses/current``)
  reports ``availabilityState`` = ``state`` (``Unavailable``, ``Degraded`` or ``Unknown``)

Either lasts for ``count`` matching reads and/or ``duration`` seconds after the rule was added; without both it
lasts until the rule is removed.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = (
    "throttle",
    "error",
    "drop",
    "slow_lro",
    "stuck_lro",
    "provision_failure",
    "preflight_failure",
    "resource_state",
    "availability",
)

# Where each kind is checked.
REQUEST_KINDS = ("throttle", "error", "drop")
LRO_KINDS = ("slow_lro", "stuck_lro")
HEALTH_KINDS = ("resource_state", "availability")
AVAILABILITY_STATES = ("Available", "Unavailable", "Degraded", "Unknown")

_DEFAULT_MESSAGES = {
    "InternalServerError": "Encountered internal server error. Diagnostic information: timestamp '{ts}'.",
    "ServiceUnavailable": "The service is temporarily unavailable. Please retry later.",
    "ServerBusy": "The server is currently busy. Please retry later.",
    "TooManyRequests": (
        "The request is being throttled as the limit has been reached for operation type - {op}. "
        "For more information, see - https://aka.ms/srpthrottlinglimits"
    ),
    "Conflict": "The operation cannot be performed on resource '{target}' in its current state.",
    "QuotaExceeded": (
        "Operation could not be completed as it results in exceeding approved quota. Maximum allowed: 10, "
        "Current in use: 10, Additional requested: 1."
    ),
    "SkuNotAvailable": (
        "The requested size for resource '{target}' is currently not available in location '{location}'. "
        "Please try another size or deploy to a different location or zones."
    ),
    "AllocationFailed": (
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. "
        "Please retry later or choose another size."
    ),
}


class FaultConfigError(ValueError):
    """A fault rule or config that cannot be used; the message names the field."""


@dataclass
class FaultRule:
    kind: str
    method: str | None = None
    path: str | None = None  # case-insensitive substring of the request path
    operation: str | None = None  # e.g. Deployments_CreateOrUpdate
    deployment: str | None = None
    resource_type: str | None = None
    resource_name: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: int = 1
    delay: float = 0.0
    # drop/error/throttle: handle the request first, then lose or replace the answer (the change is made).
    after_handling: bool = False
    probability: float | None = None
    count: int | None = None
    skip: int = 0
    state: str | None = None  # resource_state: a provisioningState; availability: an availabilityState
    duration: float | None = None  # health faults: seconds after the rule was added during which it applies
    id: int = 0
    matched: int = 0  # events that matched the filters
    fired: int = 0  # times the fault was applied
    added_at: float = 0.0  # time.time() when the rule was set (for ``duration``)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        if not isinstance(data, dict):
            raise FaultConfigError(f"a fault rule must be a JSON object, got {type(data).__name__}")
        known = {f for f in cls.__dataclass_fields__ if f not in ("id", "matched", "fired", "added_at")}
        unknown = set(data) - known
        if unknown:
            raise FaultConfigError(f"fault rule has unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultConfigError(f"fault rule 'kind' must be one of {list(FAULT_KINDS)}, got {kind!r}")
        rule = cls(**data)
        if rule.probability is not None and not 0.0 <= float(rule.probability) <= 1.0:
            raise FaultConfigError(f"fault rule 'probability' must be within 0..1, got {rule.probability!r}")
        if rule.count is not None and int(rule.count) < 0:
            raise FaultConfigError(f"fault rule 'count' must be >= 0, got {rule.count!r}")
        if rule.duration is not None and not float(rule.duration) >= 0:
            raise FaultConfigError(f"fault rule 'duration' must be >= 0 seconds, got {rule.duration!r}")
        if rule.kind in HEALTH_KINDS and not isinstance(rule.state, str):
            raise FaultConfigError(f"a {rule.kind} fault rule needs 'state' (a string)")
        if rule.kind == "availability":
            known_states = {s.lower(): s for s in AVAILABILITY_STATES}
            if str(rule.state).lower() not in known_states:
                raise FaultConfigError(
                    f"an availability fault's 'state' must be one of {list(AVAILABILITY_STATES)}, got {rule.state!r}"
                )
            rule.state = known_states[str(rule.state).lower()]
        return rule

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def error_code(self) -> str:
        if self.code:
            return self.code
        return {
            "throttle": "TooManyRequests",
            "error": "ServiceUnavailable" if self.status == 503 else "InternalServerError",
            "provision_failure": "InternalServerError",
            "preflight_failure": "QuotaExceeded",
        }.get(self.kind, "InternalServerError")

    def error_message(self, **context: str) -> str:
        if self.message:
            return self.message
        template = _DEFAULT_MESSAGES.get(self.error_code(), "The operation failed with code '{code}'.")
        values = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "op": "", "target": "", "location": ""}
        values.update(context)
        values["code"] = self.error_code()
        return template.format(**values)


@dataclass
class TokenBucket:
    capacity: float
    refill_per_second: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float) -> tuple[bool, int]:
        """(allowed, remaining) after trying to take one token."""
        if self.tokens < 0:
            self.tokens, self.stamp = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill_per_second)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, int(self.tokens)
        return False, 0

    def seconds_until_token(self) -> int:
        missing = max(0.0, 1 - self.tokens)
        return max(1, int(missing / self.refill_per_second + 0.999))


# ARM's documented per-subscription token buckets (2024 model): reads 250 @ 25/s, writes 200 @ 10/s, deletes
# 200 @ 10/s.
DEFAULT_BUCKETS = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}


@dataclass
class FaultBook:
    """The live fault rules, the token buckets and the request counters of one server."""

    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    enforce_rate_limits: bool = False
    bucket_limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_BUCKETS))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._next_id = 1
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._counters: dict[tuple[str, str, str, str, int], int] = {}
        for rule in self.rules:
            rule.id = self._take_id()
            rule.added_at = time.time()

    def _take_id(self) -> int:
        rid = self._next_id
        self._next_id += 1
        return rid

    # -- rules -------------------------------------------------------------------------------------------------
    def set_rules(self, rules: list[FaultRule], *, seed: int | None = None, replace: bool = True) -> None:
        with self._lock:
            if seed is not None:
                self.seed = seed
                self._random = random.Random(seed)
            if replace:
                self.rules = []
            for rule in rules:
                rule.id = self._take_id()
                rule.added_at = time.time()
                self.rules.append(rule)

    def set_rate_limits(self, enabled: bool, limits: dict[str, tuple[float, float]] | None = None) -> None:
        with self._lock:
            self.enforce_rate_limits = enabled
            if limits:
                self.bucket_limits.update(limits)
            self._buckets.clear()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seed": self.seed,
                "rules": [r.to_dict() for r in self.rules],
                "rate_limits": {
                    "enabled": self.enforce_rate_limits,
                    **{k: {"capacity": c, "refill_per_second": r} for k, (c, r) in self.bucket_limits.items()},
                },
            }

    def match(self, kinds: tuple[str, ...], **attrs: str | None) -> FaultRule | None:
        """The first rule of one of ``kinds`` that matches these attributes and fires this time, or None."""
        with self._lock:
            for rule in self.rules:
                if rule.kind not in kinds or not _matches(rule, attrs):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.duration is not None and time.time() - rule.added_at >= rule.duration:
                    continue
                if rule.probability is not None and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
            return None

    # -- rate limits -------------------------------------------------------------------------------------------
    def take_token(self, subscription: str, method: str) -> tuple[bool, str, int, int]:
        """(allowed, bucket name, remaining, retry_after) for one request of ``method`` on ``subscription``."""
        kind = "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"
        with self._lock:
            bucket = self._buckets.get((subscription.lower(), kind))
            if bucket is None:
                capacity, refill = self.bucket_limits[kind]
                bucket = self._buckets[(subscription.lower(), kind)] = TokenBucket(capacity, refill)
            allowed, remaining = bucket.take(time.monotonic())
            if allowed or not self.enforce_rate_limits:
                return True, kind, remaining, 0
            return False, kind, 0, bucket.seconds_until_token()

    # -- counters ----------------------------------------------------------------------------------------------
    def count_request(self, method: str, path: str, operation: str, deployment: str, status: int) -> None:
        key = (method, path, operation, deployment, status)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1

    def counters(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"method": m, "path": p, "operation": o, "deployment": d, "status": s, "count": n}
                for (m, p, o, d, s), n in self._counters.items()
            ]

    def reset(self, *, counters: bool = True, rules: bool = True) -> None:
        with self._lock:
            if counters:
                self._counters.clear()
            if rules:
                self.rules = []
                self._random = random.Random(self.seed)
            self._buckets.clear()


def _matches(rule: FaultRule, attrs: dict[str, str | None]) -> bool:
    def eq(want: str | None, have: str | None) -> bool:
        return want is None or (have is not None and want.lower() == have.lower())

    if not eq(rule.method, attrs.get("method")):
        return False
    if rule.path is not None and rule.path.lower() not in (attrs.get("path") or "").lower():
        return False
    if not eq(rule.operation, attrs.get("operation")):
        return False
    if not eq(rule.deployment, attrs.get("deployment")):
        return False
    if not eq(rule.resource_type, attrs.get("resource_type")):
        return False
    if rule.resource_name is not None:
        name = attrs.get("resource_name") or ""
        # A child resource's full name is parent/child: either form matches.
        if rule.resource_name.lower() not in (name.lower(), name.rsplit("/", 1)[-1].lower()):
            return False
    return True
