"""The distribution's name and version: what ``--version``, worker build ids and audit records report."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "bicep-deployment-orchestrator"


def package_version() -> str:
    """The installed distribution's version, as ``--version`` of the CLI and the worker reports it."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # a source checkout that was never pip-installed
        return "0+unknown"
