"""The recorded stand-in itself (tests/fakes/bicep, a TEST DOUBLE): it replays real outputs and refuses the rest."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.lint_env import FAKES_DIR

FAKE = FAKES_DIR / "bicep"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, str(FAKE), *args], capture_output=True, cwd=cwd, env={**os.environ, **(env or {})}, check=False
    )


def test_version_is_the_recorded_compilers(shared: Path) -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode() == "Bicep CLI version 0.46.1 (545b338e2c)\n"


def test_build_to_stdout_is_the_recorded_template_byte_for_byte(baselines: Path) -> None:
    main = baselines / "AKS_LF" / "main.bicep"
    proc = run("build", str(main), "--stdout")
    assert proc.returncode == 0
    assert proc.stdout == (baselines / "AKS_LF" / "main.json").read_bytes()
    assert proc.stderr.decode().count(" : Warning ") == 2


def test_errors_mean_exit_1_and_no_output(baselines: Path, tmp_path: Path) -> None:
    shutil.copyfile(baselines / "InvalidTargetScopes_LF" / "main.bicep", tmp_path / "main.bicep")
    proc = run("build", str(tmp_path / "main.bicep"))
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert not (tmp_path / "main.json").exists()
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 14 and all(line.startswith(f"{tmp_path / 'main.bicep'}(") for line in lines)


def test_unknown_input_is_refused(shared: Path, tmp_path: Path) -> None:
    main = tmp_path / "main.bicep"
    main.write_text("param location string = resourceGroup().location\n", encoding="utf-8")
    for args in (("build", str(main), "--stdout"), ("lint", str(main)), ("build-params", str(main))):
        proc = run(*args)
        assert proc.returncode != 0
        assert proc.stdout == b""
        assert proc.stderr.decode().startswith("bicep (test double): ")
    assert "no recording of `bicep build`" in run("build", str(main)).stderr.decode()


def test_a_changed_module_is_refused(baselines: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    shutil.copytree(baselines / "ModulesWithScopes_LF", sample)
    os.chmod(sample / "modules", 0o755)
    module = sample / "modules" / "tenant.bicep"
    os.chmod(module, 0o644)
    assert run("build", str(sample / "main.bicep"), "--stdout").returncode == 0
    module.write_text(module.read_text(encoding="utf-8") + "\n// edited\n", encoding="utf-8")
    proc = run("build", str(sample / "main.bicep"), "--stdout")
    assert proc.returncode == 1 and proc.stdout == b""
    assert "modules/tenant.bicep differs" in proc.stderr.decode()


def test_a_bicepconfig_it_was_not_recorded_with_is_refused(baselines: Path, tmp_path: Path) -> None:
    shutil.copyfile(baselines / "Empty" / "main.bicep", tmp_path / "main.bicep")
    assert run("build", str(tmp_path / "main.bicep"), "--stdout").returncode == 0
    (tmp_path / "bicepconfig.json").write_text('{"analyzers": {}}', encoding="utf-8")
    proc = run("build", str(tmp_path / "main.bicep"), "--stdout")
    assert proc.returncode == 1
    assert "bicepconfig.json configures the compiler" in proc.stderr.decode()


def test_old_versions_refuse_the_diagnostics_format_option(baselines: Path) -> None:
    proc = run("lint", str(baselines / "Empty" / "main.bicep"), "--diagnostics-format", "sarif",
               env={"BICEP_FAKE_VERSION": "0.20.4"})  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith('Unrecognized arguments "--diagnostics-format sarif"')


def test_build_params_stdout_is_compact_and_needs_a_recorded_template(baselines: Path) -> None:
    proc = run("build-params", str(baselines / "cli-build-params-stdout__Json" / "main.bicepparam"), "--stdout")
    assert proc.returncode == 0 and b"\n" not in proc.stdout and proc.stdout.startswith(b'{"parametersJson":')
    refused = run("build-params", str(baselines / "bicepparam__Variables" / "parameters.bicepparam"), "--stdout")
    assert refused.returncode == 1 and "templateJson" in refused.stderr.decode()


def test_build_params_rejects_a_bicep_file_other_than_using(baselines: Path) -> None:
    sample = baselines / "bicepparam__Variables"
    other = baselines / "Empty" / "main.bicep"
    proc = run("build-params", str(sample / "parameters.bicepparam"), "--bicep-file", str(other), "--stdout")
    assert proc.returncode == 1
    assert "doesn't match the Bicep file" in proc.stderr.decode()


def test_nothing_from_shared_is_copied_into_the_repository(shared: Path) -> None:
    """The stand-in reads ../shared at run time; the repository holds no copy of a corpus file."""
    corpus = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (shared / "corpus").rglob("*") if p.is_file()}
    repo = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(["git", "ls-files", "tests", "docs", "examples"], cwd=repo, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    for rel in [*tracked.stdout.split(), "tests/fakes/bicep", "tests/fakes/az"]:
        path = repo / rel
        if path.is_file() and path.stat().st_size > 64:
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in corpus, f"{rel} is a copy of a corpus file"
