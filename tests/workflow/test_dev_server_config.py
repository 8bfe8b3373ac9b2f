"""The dynamic config our dev servers start with is the one the compose cluster gets (docs/BENCHMARKS.md says why)."""

from __future__ import annotations

from pathlib import Path

import yaml

from client.embedded import DEV_SERVER_DYNAMIC_CONFIG, dev_server_args

REPO = Path(__file__).resolve().parents[2]


def test_compose_dynamic_config_matches_the_embedded_dev_server() -> None:
    compose = yaml.safe_load((REPO / "deploy/temporal/dynamicconfig/orchestrator.yaml").read_text())
    for key, value in DEV_SERVER_DYNAMIC_CONFIG.items():
        assert compose.get(key) == [{"value": value, "constraints": {}}], key


def test_dev_server_args_pass_every_value() -> None:
    args = dev_server_args()
    pairs = [args[i + 1] for i in range(0, len(args), 2) if args[i] == "--dynamic-config-value"]
    assert pairs == [f"{k}={v}" for k, v in DEV_SERVER_DYNAMIC_CONFIG.items()]
    assert "history.transferProcessorMaxPollRPS=1000" in pairs
