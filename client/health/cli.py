"""The ``deploy`` command's health flags, in one place: ``add_health_arguments`` adds them to a parser and
``health_spec_from_args`` turns them (plus the health file beside the template) into a validated ``HealthSpec``
before any workflow starts. Mistakes raise ``HealthDeclarationError`` (exit code 2, the message names the input)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from client.health.declare import HealthDeclarationError, load_health_spec
from contract.health import HealthSpec


def add_health_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("health checks (format: docs/HEALTH.md)")
    group.add_argument(
        "--health-check",
        action="append",
        default=[],
        metavar="CHECK",
        help="a health check, repeatable: 'tcp:HOST:PORT', 'http:[METHOD ]URL [expect=200-299] [contains=TEXT] "
        "[header=NAME:VALUE] [ca=FILE] [tls=off]', 'arm'; targets may use {outputs.NAME}",
    )
    group.add_argument(
        "--health-file",
        metavar="FILE",
        help="health file to use instead of <template stem>.health.json/.yaml beside the template",
    )
    group.add_argument("--health-window", metavar="DURATION", help="convergence window of all checks (default 10m)")
    group.add_argument("--health-timeout", metavar="DURATION", help="timeout of one attempt (default 10s)")
    group.add_argument("--health-interval", metavar="DURATION", help="pause after a failed attempt (default 5s)")


def health_spec_from_args(
    args: argparse.Namespace,
    *,
    template_path: str | Path | None,
    declared_outputs: Mapping[str, str | None] | Iterable[str],
    skip_health: bool = False,
    known_outputs: Mapping[str, Any] | None = None,
) -> HealthSpec:
    """The checks to run at VERIFYING_HEALTH. ``declared_outputs``: ``targets.declared_outputs(template)`` for ARM
    JSON, ``targets.declared_outputs_from_bicep(source)`` for Bicep. With ``skip_health`` nothing is read (an
    unrelated broken health file must not block a deployment that skips the stage), but explicit health flags
    contradict it."""
    given = [
        flag
        for flag, value in (
            ("--health-check", args.health_check),
            ("--health-file", args.health_file),
            ("--health-window", args.health_window),
            ("--health-timeout", args.health_timeout),
            ("--health-interval", args.health_interval),
        )
        if value
    ]
    if skip_health:
        if given:
            raise HealthDeclarationError(
                f"--skip-health skips the health stage, but {given[0]} declares what it should check; "
                "drop one of the two."
            )
        return HealthSpec()
    return load_health_spec(
        template_path=template_path,
        flags=args.health_check,
        declared_outputs=declared_outputs,
        known_outputs=known_outputs,
        health_file=args.health_file,
        window=args.health_window,
        timeout=args.health_timeout,
        retry_interval=args.health_interval,
    )
