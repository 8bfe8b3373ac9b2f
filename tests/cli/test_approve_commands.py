"""The approve commands the CLI prints: exact, shell-safe, and never carrying a secret."""

from __future__ import annotations

import json
import shlex
from typing import Any, cast

from client.cli._common import Target, approve_commands


def target(**kwargs: Any) -> Target:
    return Target(cast(Any, None), "deployments", "temporal.example.com:7233", "prod-ns", None, **kwargs)


def test_temporal_cli_command_parses_back_to_the_signal_payload() -> None:
    ours, theirs = approve_commands(target(), "deploy-sub-rg", ["/subscriptions/s/resourcegroups/rg/x"])
    assert ours == "python starter.py approve deploy-sub-rg --reason 'reviewed the plan'"
    argv = shlex.split(theirs)
    assert argv[:3] == ["temporal", "workflow", "signal"]
    assert argv[argv.index("--address") + 1] == "temporal.example.com:7233"
    assert argv[argv.index("--namespace") + 1] == "prod-ns"
    assert argv[argv.index("--name") + 1] == "approve"
    payload = json.loads(argv[argv.index("--input") + 1])
    assert set(payload) == {"approver", "reason", "destructive_set"}
    assert payload["destructive_set"] == ["/subscriptions/s/resourcegroups/rg/x"]
    assert "--tls" not in argv


def test_api_key_is_referenced_not_printed(monkeypatch: Any) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "sk-very-secret")
    _ours, theirs = approve_commands(target(api_key=True), "deploy-sub-rg")
    assert "sk-very-secret" not in theirs
    assert '--tls --api-key "$TEMPORAL_API_KEY"' in theirs
