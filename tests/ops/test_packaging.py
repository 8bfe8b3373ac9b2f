"""Packaging: the project builds as a wheel holding every package and both console commands, and both commands
report the installed version."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["arm_engine", "azure_types", "local_arm", "contract", "services", "client", "workflows", "activities"]
SCRIPTS = {"bicep-orchestrator": "starter:console_main", "bicep-orchestrator-worker": "worker:console_main"}


@pytest.mark.timeout(300)
def test_wheel_contains_packages_and_console_commands(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheels = list(tmp_path.glob("bicep_deployment_orchestrator-*.whl"))
    assert len(wheels) == 1, list(tmp_path.iterdir())
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        for package in PACKAGES:
            assert f"{package}/__init__.py" in names, f"{package} is missing from the wheel"
        assert "starter.py" in names and "worker.py" in names
        assert "services/health/runner.py" in names  # subpackages too
        # Azure's type schemas ship as package data, with the upstream licence and the source note
        for data in ("azure-types.zip", "LICENSE", "SOURCE.md"):
            assert f"azure_types/data/{data}" in names, f"azure_types/data/{data} is missing from the wheel"
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(wheel.read(entry_points).decode())
    assert dict(parser["console_scripts"]) == SCRIPTS


@pytest.mark.parametrize("script", ["starter.py", "worker.py"])
def test_version_flag(script: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / script), "--version"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{script} {version('bicep-deployment-orchestrator')}"


def test_console_commands_installed_with_the_project() -> None:
    """`pip install -e .` (make test) puts both commands next to this Python; they answer --version."""
    bindir = Path(sys.executable).parent
    for command in SCRIPTS:
        path = bindir / command
        if not path.exists():
            pytest.skip(f"{command} is not installed in this environment; run `pip install -e .` again")
        proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"{command} {version('bicep-deployment-orchestrator')}"
