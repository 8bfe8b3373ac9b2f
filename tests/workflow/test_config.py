"""Worker configuration from the environment: Azure by default, the local ARM only on loopback."""

from __future__ import annotations

import pytest

from services.config import AZURE_PUBLIC_ARM, ArmConfig, ConfigError, arm_config_from_env, worker_config_from_env


def test_default_is_azure_public_cloud_with_default_credential() -> None:
    config = arm_config_from_env({})
    assert (config.endpoint, config.credential, config.ca_file) == (AZURE_PUBLIC_ARM, "default", None)


def test_a_loopback_endpoint_gets_the_local_token_and_a_fast_poll() -> None:
    config = arm_config_from_env({"ORCHESTRATOR_ARM_ENDPOINT": "https://127.0.0.1:8443/"})
    assert (config.endpoint, config.credential, config.polling_interval) == ("https://127.0.0.1:8443", "local", 1.0)


def test_a_sovereign_cloud_keeps_default_credential() -> None:
    config = arm_config_from_env({"ORCHESTRATOR_ARM_ENDPOINT": "https://management.usgovcloudapi.net"})
    assert config.credential == "default" and config.polling_interval == 30.0


def test_plain_http_and_a_missing_ca_file_are_refused_naming_the_setting(tmp_path) -> None:
    with pytest.raises(ConfigError, match="ORCHESTRATOR_ARM_ENDPOINT"):
        ArmConfig(endpoint="http://127.0.0.1:8080").validate()
    with pytest.raises(ConfigError, match="ORCHESTRATOR_ARM_CA_FILE"):
        ArmConfig(endpoint="https://127.0.0.1:8443", ca_file=tmp_path / "nope.pem").validate()


def test_worker_settings_from_environment() -> None:
    config = worker_config_from_env(
        {
            "ORCHESTRATOR_TASK_QUEUE": "q1",
            "ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS": "90",
            "ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS": "7",
            "ORCHESTRATOR_RETRY_MAXIMUM_RETRIES": "2",
        }
    )
    assert config.task_queue == "q1"
    assert config.settings.confirmation_timeout_seconds == 90
    assert config.settings.heartbeat_timeout_seconds == 7
    assert config.settings.retry.maximum_retries == 2
    with pytest.raises(ConfigError, match="ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS"):
        worker_config_from_env({"ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS": "an hour"})


async def test_static_token_is_a_well_formed_unexpired_jwt() -> None:
    import base64
    import json
    import time

    from services.config import StaticTokenCredential

    token = await StaticTokenCredential().get_token("https://management.azure.com/.default")
    _header, claims, signature = token.token.split(".")
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert body["aud"] == "https://management.azure.com" and signature == ""
    assert token.expires_on > time.time() + 3000


def test_temporal_connection_from_environment_profile_and_flags(tmp_path, monkeypatch) -> None:
    from services.temporal_client import connect_options

    for var in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_TLS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    assert connect_options() == {"target_host": "localhost:7233", "namespace": "default"}

    toml = tmp_path / "temporal.toml"
    toml.write_text(
        '[profile.prod]\naddress = "prod.tmprl.cloud:7233"\nnamespace = "deploys.acct"\napi_key = "k-123"\n'
    )
    options = connect_options(profile="prod", config_file=str(toml))
    assert options["target_host"] == "prod.tmprl.cloud:7233" and options["namespace"] == "deploys.acct"
    assert options["api_key"] == "k-123" and options["tls"] is True  # an API key implies TLS

    monkeypatch.setenv("TEMPORAL_ADDRESS", "10.0.0.5:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "from-env")
    options = connect_options()
    assert (options["target_host"], options["namespace"]) == ("10.0.0.5:7233", "from-env")
    # Explicit flags win over both.
    assert connect_options(address="127.0.0.1:9999")["target_host"] == "127.0.0.1:9999"
