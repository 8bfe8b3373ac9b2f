"""Health check declarations (what the user asks for) and results (what happened), as pydantic models.

Both travel through Temporal (the declarations in the deploy request, the report as the activity's result), so they
are small and JSON-friendly: no attempt log, only the count, the last error and the final state of each check.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, computed_field, field_validator, model_validator

from contract.health_targets import (
    TargetError,
    has_placeholders,
    output_references,
    placeholder_probe,
    redact_url,
    validate_port,
    validate_resource_id,
    validate_url,
)

HEALTH_CHECK_ACTIVITY = "run_health_checks"  # the activity's name (contract.models.ActivityName refers here)

DEFAULT_WINDOW_SECONDS = 600.0
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRY_INTERVAL_SECONDS = 5.0

# Bounds of the timing settings, in seconds (docs/HEALTH.md, Timing). A window under a second cannot hold an attempt
# and a pause; one over an hour outlives any rollout worth waiting for (and holds a worker slot). A pause under 0.2 s
# turns a few checks into a request flood against the service being verified.
DURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "window_seconds": (1.0, 3600.0),
    "timeout_seconds": (0.1, 300.0),
    "retry_interval_seconds": (0.2, 600.0),
}
MAX_CHECKS = 100
MAX_TEXT = 8 * 1024  # a URL, a header value, an expected body text

_METHOD = re.compile(r"[A-Z]{1,20}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a text like ``500ms``, ``30s``, ``10m``, ``1h`` (a bare number is seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a duration; write seconds (30) or a text like '30s', '10m'")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.fullmatch(str(value))
    if not match:
        raise ValueError(f"'{value}' is not a duration; write seconds (30) or a text like '500ms', '30s', '10m'")
    number = float(match.group(1))
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]


def bounded_duration(key: str, value: Any) -> float:
    """``parse_duration`` checked against ``DURATION_BOUNDS[key]``; the message says the bound and its unit."""
    seconds = parse_duration(value)
    low, high = DURATION_BOUNDS[key]
    if seconds < low:
        raise ValueError(f"'{value}' is shorter than the minimum of {_seconds(low)}")
    if seconds > high:
        raise ValueError(f"'{value}' is longer than the maximum of {_seconds(high)}")
    return seconds


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"


def parse_status_ranges(expect: str) -> list[tuple[int, int]]:
    """``"200"``, ``"200-299"``, ``"2xx"``, ``"200,204,300-399"`` → inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for raw in str(expect).split(","):
        part = raw.strip().lower()
        if re.fullmatch(r"[1-5]xx", part):
            low, high = int(part[0]) * 100, int(part[0]) * 100 + 99
        elif re.fullmatch(r"\d{3}", part):
            low = high = int(part)
        elif re.fullmatch(r"\d{3}\s*-\s*\d{3}", part):
            a, b = (int(x) for x in part.split("-"))
            low, high = a, b
        else:
            raise ValueError(
                f"expected status '{expect}' is not a status list; write 200, 200-299, 2xx or 200,204 (codes 100-599)"
            )
        if not (100 <= low <= high <= 599):
            raise ValueError(
                f"expected status '{expect}' has '{raw.strip()}', outside 100-599 or with its bounds reversed"
            )
        ranges.append((low, high))
    return ranges


def status_matches(status: int, expect: str) -> bool:
    return any(low <= status <= high for low, high in parse_status_ranges(expect))


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""  # filled by the loader when the user gives none
    timeout_seconds: float | None = None  # one attempt; None → the spec's default
    retry_interval_seconds: float | None = None

    @field_validator("timeout_seconds", "retry_interval_seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else bounded_duration(str(info.field_name), value)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if len(name) > 200:
            raise ValueError(f"the name is {len(name)} characters long; keep it under 200")
        return name

    def placeholder_texts(self) -> list[str]:
        """The fields that may hold ``{outputs.*}`` placeholders."""
        return []

    def describe_target(self) -> str:
        """The target as a user would recognise it, secrets redacted (placeholders left in)."""
        raise NotImplementedError


class ArmCheck(_Check):
    """provisioningState of the deployment's resources must be Succeeded.

    ``availability`` is the hook for Resource Health (Microsoft.ResourceHealth/availabilityStatuses/current): the
    runner asks the state reader for it when set; a reader that cannot answer yet returns None, recorded as a note.
    """

    kind: Literal["arm"] = "arm"
    resources: list[str] = Field(default_factory=list)  # resource ids; empty → every resource the deployment produced
    availability: bool = False

    @field_validator("resources")
    @classmethod
    def _resources(cls, resources: list[str]) -> list[str]:
        checked = []
        for resource in resources:
            _placeholders_ok(resource)
            if not has_placeholders(resource):  # an id from an output is checked once it is known
                try:
                    resource = validate_resource_id(resource)
                except TargetError as exc:
                    raise ValueError(str(exc)) from None
            checked.append(resource.strip())
        return checked

    def placeholder_texts(self) -> list[str]:
        return list(self.resources)

    def describe_target(self) -> str:
        if not self.resources:
            return "all deployed resources"
        return ", ".join(self.resources)


class TcpCheck(_Check):
    """A TCP connection to host:port opens within the timeout."""

    kind: Literal["tcp"] = "tcp"
    host: str
    port: int | str  # a number, or a text holding an {outputs.*} placeholder

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        host = host.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host:
            raise ValueError("the host is empty; give a host name or address")
        if "://" in host or "/" in host:
            raise ValueError(
                f"the host '{host}' looks like a URL; give only the host name (use an http check for URLs)"
            )
        if any(c.isspace() for c in host):
            raise ValueError(f"the host '{host}' contains whitespace")
        _placeholders_ok(host)
        return host

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, port: Any) -> Any:
        if isinstance(port, bool):
            raise ValueError(f"the port '{port}' is not a number; give a port from 1 to 65535")
        if isinstance(port, str) and has_placeholders(port):
            return port.strip()
        try:
            return validate_port(port)
        except TargetError as exc:
            raise ValueError(str(exc)) from None

    def placeholder_texts(self) -> list[str]:
        return [self.host, str(self.port)]

    def describe_target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class HttpCheck(_Check):
    """An HTTP(S) request answers with an expected status (and, optionally, a body holding a text)."""

    kind: Literal["http"] = "http"
    url: str
    method: str = "GET"
    expect_status: str = "200-299"
    body_contains: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True
    ca_file: str | None = None  # as the user wrote it, for messages
    ca_pem: str | None = None  # the CA certificates read from ca_file by the loader, so the worker needs no file
    # Where deploy put ca_pem instead of the request (services/health/bundles.py): the content store's digest.
    ca_digest: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        url = url.strip()
        if len(url) > MAX_TEXT:
            raise ValueError(f"the URL is {len(url) // 1024} KiB long; at most {MAX_TEXT // 1024} KiB")
        _placeholders_ok(url)
        # A URL that starts with a placeholder gets its scheme and host from an output: checked after deployment.
        if not url.startswith("{") or url.startswith("{{"):
            try:
                validate_url(placeholder_probe(url))
            except TargetError as exc:
                raise ValueError(str(exc)) from None
        return url

    @field_validator("method")
    @classmethod
    def _method(cls, method: str) -> str:
        upper = method.strip().upper()
        if not _METHOD.fullmatch(upper):
            raise ValueError(f"the method '{method}' is not an HTTP method; write GET, HEAD, POST, ...")
        return upper

    @field_validator("expect_status", mode="before")
    @classmethod
    def _expect(cls, value: Any) -> str:
        if isinstance(value, bool):
            raise ValueError(f"expected status '{value}' is not a status; write 200, 200-299 or 2xx")
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        text = str(value).strip()
        parse_status_ranges(text)
        return text

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if len(value) > MAX_TEXT:
                raise ValueError(f"the value of header '{name}' is {len(value) // 1024} KiB; at most 8 KiB")
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"the header name '{name}' is not a valid HTTP header name")
            if "\r" in value or "\n" in value:
                raise ValueError(f"the value of header '{name}' contains a line break")
            if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
                raise ValueError(f"the header '{name}' is set by the check itself; leave it out")
            try:
                output_references(value)
            except TargetError:  # the message would quote the value, and header values are secrets
                raise ValueError(
                    f"the value of header '{name}' has a malformed placeholder or a lone brace; write "
                    "{outputs.NAME} for a deployment output, or double the brace ('{{' or '}}') for a literal one"
                ) from None
        return headers

    @model_validator(mode="after")
    def _consistent(self) -> HttpCheck:
        if self.body_contains is not None and self.method == "HEAD":
            raise ValueError("body_contains needs a body, and a HEAD answer has none; use GET")
        if self.body_contains == "":
            raise ValueError("body_contains is empty; give the text the body must contain, or leave it out")
        if self.body_contains is not None and len(self.body_contains) > MAX_TEXT:
            raise ValueError(f"body_contains is {len(self.body_contains) // 1024} KiB; at most 8 KiB of text")
        if self.ca_file and not self.verify_tls:
            raise ValueError("ca_file is given but verify_tls is false; keep verification on to use the CA file")
        if self.url.lower().startswith("http://") and self.ca_file:
            raise ValueError(f"ca_file is given but the URL '{redact_url(self.url)}' is plain http")
        return self

    def placeholder_texts(self) -> list[str]:
        return [self.url, *self.headers.values()]

    def describe_target(self) -> str:
        return f"{self.method} {redact_url(self.url)}"


PLUGIN_ENTRY_POINT_GROUP = "bicep_orchestrator.health_checks"
_PLUGIN_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
MAX_PLUGIN_SETTINGS_BYTES = 8192


class PluginCheck(_Check):
    """A team's own check, from an installed package registered under the entry-point group
    ``bicep_orchestrator.health_checks`` (docs/HEALTH.md, "Plugin checks"). ``settings`` are plain JSON values
    (texts may hold ``{outputs.*}`` placeholders); ``secret_env`` names worker environment variables the plugin
    receives as secrets — their values never enter the declaration, history or the report."""

    kind: Literal["plugin"] = "plugin"
    plugin: str
    settings: dict[str, Any] = Field(default_factory=dict)
    secret_env: list[str] = Field(default_factory=list)

    @field_validator("plugin")
    @classmethod
    def _plugin(cls, value: str) -> str:
        if not _PLUGIN_NAME.fullmatch(value):
            raise ValueError(
                f"'{value[:80]}' is not a plugin name (the entry point's name: lower-case letters, digits, '-', '_', "
                "'.')"
            )
        return value

    @field_validator("settings")
    @classmethod
    def _settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, default=str))
        if size > MAX_PLUGIN_SETTINGS_BYTES:
            raise ValueError(f"the settings are {size} bytes of JSON; keep them under {MAX_PLUGIN_SETTINGS_BYTES}")
        for text in _texts(value):
            _placeholders_ok(text)
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"'{name[:80]}' is not an environment variable name (upper-case, digits, '_')")
        return value

    def placeholder_texts(self) -> list[str]:
        return list(_texts(self.settings))

    def describe_target(self) -> str:
        return f"plugin {self.plugin}"


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _placeholders_ok(text: str) -> None:
    try:
        output_references(text)
    except TargetError as exc:
        raise ValueError(str(exc)) from None


HealthCheck = Annotated[ArmCheck | TcpCheck | HttpCheck | PluginCheck, Field(discriminator="kind")]
CHECK_KINDS: tuple[str, ...] = ("arm", "tcp", "http", "plugin")


class HealthSpec(BaseModel):
    """Every check of one deployment and the timing they run under. Validated before the deployment starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checks: list[HealthCheck] = Field(default_factory=list)
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    retry_interval_seconds: float = DEFAULT_RETRY_INTERVAL_SECONDS

    @field_validator("window_seconds", "timeout_seconds", "retry_interval_seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any, info: ValidationInfo) -> Any:
        return bounded_duration(str(info.field_name), value)

    @field_validator("checks")
    @classmethod
    def _few_enough(cls, checks: list[Any]) -> list[Any]:
        if len(checks) > MAX_CHECKS:
            raise ValueError(f"there are {len(checks)} checks; at most {MAX_CHECKS} run in one deployment")
        return checks


# --------------------------------------------------------------------------------------------------- results


class CheckState(StrEnum):
    PENDING = "pending"  # still trying within the window
    PASSED = "passed"
    FAILED = "failed"


class CheckResult(BaseModel):
    name: str
    kind: str
    target: str  # redacted: no query strings, no credentials
    state: CheckState = CheckState.PENDING
    attempts: int = 0
    last_error: str | None = None  # the error of the latest failed attempt (kept after a pass, for the audit)
    note: str | None = None  # something tolerated, e.g. Resource Health "Unknown"
    elapsed_seconds: float = 0.0  # from the start of the stage to this check's last attempt
    # The worker's request policy on the latest attempt: "allowed: 10.0.0.5:443, private address, ..." (the address
    # contacted and why) or "refused: ..." (nothing was sent). None for arm checks, which only talk to ARM.
    request_policy: str | None = None
    # The declaration itself is at fault (its target cannot be resolved from the outputs, or the request policy
    # refuses it): a LOGIC failure that says nothing about the deployment, so it is never a reason to roll back.
    declaration_error: bool = False


class HealthCheckReport(BaseModel):
    window_seconds: float
    elapsed_seconds: float = 0.0
    checks: list[CheckResult] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def healthy(self) -> bool:
        return all(c.state is CheckState.PASSED for c in self.checks)

    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.state is CheckState.FAILED]

    def only_declaration_errors(self) -> bool:
        """Every check that did not pass failed because of its declaration (none because of the deployment)."""
        bad = [c for c in self.checks if c.state is not CheckState.PASSED]
        return bool(bad) and all(c.declaration_error for c in bad)

    def summary(self) -> str:
        """One line per check that did not pass, for an error message; or a short all-clear."""
        bad = [c for c in self.checks if c.state is not CheckState.PASSED]
        if not bad:
            return f"all {len(self.checks)} health checks passed in {self.elapsed_seconds:.1f} s"
        lines = [
            f"{len(bad)} of {len(self.checks)} health checks did not pass within the {self.window_seconds:g} s window:"
        ]
        for c in bad:
            tries = f"{c.attempts} attempt{'s' if c.attempts != 1 else ''}"
            lines.append(f"- {c.name} ({c.target}): {c.state.value} after {tries}; last error: {c.last_error}")
        return "\n".join(lines)


class HealthProgress(BaseModel):
    """What the health check activity heartbeats: when the window began (Unix time; a retried attempt resumes the
    window from it) and every check's state so far. A CLI reads it from the pending activity's heartbeat details
    (``describe()`` of the workflow) and draws ``format_health_table(progress.report)``."""

    started_at: float
    report: HealthCheckReport


class HealthCheckInput(BaseModel):
    """The health check activity's input, built by the workflow after DEPLOYING succeeded."""

    model_config = ConfigDict(extra="ignore")

    spec: HealthSpec
    deployment_name: str
    subscription_id: str
    outputs: dict[str, Any] = Field(default_factory=dict)  # the deployment's outputs, ARM-shaped or plain
    resources: list[str] = Field(default_factory=list)  # ids of the deployed resources (ARM outputResources)
    api_versions: dict[str, str] = Field(default_factory=dict)  # resource id (any case) → api-version, if known
    # When VERIFYING_HEALTH began (Unix time, fixed by the workflow): the convergence window is the whole stage's,
    # shared with the resource-state wait before it and kept across attempts. None: the attempt's own start.
    window_started_at: float | None = None
    # The report of a previous attempt that was lost (its last heartbeat): checks that ended keep their result, the
    # others continue with their tries counted, so the final report holds every attempt's tries.
    resume: HealthCheckReport | None = None


def health_activity_timeouts(spec: HealthSpec, *, heartbeat_seconds: float = 10.0) -> tuple[timedelta, timedelta]:
    """(start_to_close, heartbeat) timeouts for the activity: the window, one more attempt, and a minute's margin.
    The activity heartbeats every 5 s whatever its checks do; the SDK forwards heartbeats to the server every
    0.8 × the heartbeat timeout, so 10 s keeps a CLI's live table within about 8 s of the truth."""
    longest_attempt = max(
        [spec.timeout_seconds, *(c.timeout_seconds for c in spec.checks if c.timeout_seconds is not None)]
    )
    return timedelta(seconds=spec.window_seconds + longest_attempt + 60), timedelta(seconds=heartbeat_seconds)
