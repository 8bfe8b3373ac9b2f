"""docker-compose.temporal.yml, checked structurally: Docker cannot run on these machines, so this test is what
stands between a typo and a team that brings the file up for the first time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.temporal.yml"
SEARCH_ATTRIBUTES = ["GitSha", "ResourceGroup", "Subscription", "TemplateFile", "DeploymentState", "Initiator"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_present(compose: dict) -> None:
    assert set(compose["services"]) >= {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-register",
        "temporal-admin-tools",
        "temporal-ui",
    }


def test_every_image_is_pinned(compose: dict) -> None:
    for name, svc in compose["services"].items():
        image = svc["image"]
        assert ":" in image, f"{name}: image {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.fullmatch(r"\d+(\.\d+)+", tag), f"{name}: {image} is not pinned to a version"


def test_server_uses_postgres_for_persistence_and_waits_for_schema(compose: dict) -> None:
    server = compose["services"]["temporal"]
    assert server["environment"]["DB"] == "postgres12"
    assert server["environment"]["POSTGRES_SEEDS"] == "postgresql"
    assert server["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    schema = compose["services"]["temporal-schema"]
    assert schema["depends_on"]["postgresql"]["condition"] == "service_healthy"
    script = (ROOT / "deploy/temporal/setup-postgres.sh").read_text()
    assert "temporal_visibility" in script and "update-schema" in script


def test_health_checks_and_dependencies(compose: dict) -> None:
    services = compose["services"]
    for name in ("postgresql", "temporal"):
        assert "test" in services[name]["healthcheck"], name
    for name in ("temporal-ui", "temporal-register", "temporal-admin-tools"):
        assert services[name]["depends_on"]["temporal"]["condition"] == "service_healthy", name
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_ports_bind_loopback_by_default(compose: dict) -> None:
    published = [p for svc in compose["services"].values() for p in svc.get("ports", [])]
    assert published, "the server and UI must be reachable from the host"
    for port in published:
        assert port.startswith("${TEMPORAL_BIND_IP:-127.0.0.1}:"), port


def test_data_lives_in_a_named_volume(compose: dict) -> None:
    volume = compose["services"]["postgresql"]["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def test_search_attributes_registered_at_start(compose: dict) -> None:
    script = (ROOT / "deploy/temporal/register.sh").read_text()
    for attr in SEARCH_ATTRIBUTES:
        assert attr in script
    assert "search-attribute create" in script


def test_mounted_files_exist(compose: dict) -> None:
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name} mounts missing {src}"
        entry = svc.get("entrypoint", [])
        for arg in entry:
            if arg.startswith("/orchestrator/"):
                assert (ROOT / "deploy/temporal" / arg.removeprefix("/orchestrator/")).is_file(), arg
