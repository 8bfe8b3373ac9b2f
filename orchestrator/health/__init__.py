"""Health checks that prove a deployment works: declarations, validation before deploying, and a parallel runner.

- ``load_health_spec`` reads the health file beside the template and the ``--health-check`` flags and validates
  them against the template's declared outputs (before the deployment starts);
- ``run_health_checks`` resolves ``{outputs.*}`` against the actual outputs and runs every check in parallel within
  one convergence window, reporting progress through a callback;
- the models are pydantic and small, fit for Temporal payloads and the audit.

The declaration format is documented in docs/HEALTH.md.
"""

from __future__ import annotations

from orchestrator.health.cli import add_health_arguments, health_spec_from_args
from orchestrator.health.declare import (
    FLAG,
    HEALTH_FILE_SUFFIXES,
    HealthDeclarationError,
    find_health_file,
    load_health_spec,
    parse_health_check_flag,
    read_health_file,
)
from orchestrator.health.live import LiveHealthTable, live_health_progress
from orchestrator.health.models import (
    CHECK_KINDS,
    HEALTH_CHECK_ACTIVITY,
    ArmCheck,
    CheckResult,
    CheckState,
    HealthCheck,
    HealthCheckInput,
    HealthCheckReport,
    HealthProgress,
    HealthSpec,
    HttpCheck,
    TcpCheck,
    health_activity_timeouts,
    parse_duration,
)
from orchestrator.health.probes import ProbeFailure, ResourceStateReader
from orchestrator.health.runner import ProgressCallback, resolve_check, run_health_checks
from orchestrator.health.table import format_health_table
from orchestrator.health.targets import (
    TargetError,
    declared_outputs,
    declared_outputs_from_bicep,
    output_values,
    redact_url,
)

__all__ = [
    "CHECK_KINDS",
    "FLAG",
    "HEALTH_CHECK_ACTIVITY",
    "HEALTH_FILE_SUFFIXES",
    "ArmCheck",
    "CheckResult",
    "CheckState",
    "HealthCheck",
    "HealthCheckInput",
    "HealthCheckReport",
    "HealthDeclarationError",
    "HealthProgress",
    "HealthSpec",
    "HttpCheck",
    "LiveHealthTable",
    "ProbeFailure",
    "ProgressCallback",
    "ResourceStateReader",
    "TargetError",
    "TcpCheck",
    "add_health_arguments",
    "declared_outputs",
    "declared_outputs_from_bicep",
    "find_health_file",
    "format_health_table",
    "health_activity_timeouts",
    "health_spec_from_args",
    "live_health_progress",
    "load_health_spec",
    "output_values",
    "parse_duration",
    "parse_health_check_flag",
    "read_health_file",
    "redact_url",
    "resolve_check",
    "run_health_checks",
]
