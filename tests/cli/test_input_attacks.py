"""Hostile and careless inputs to the CLI (`starter.py` commands run as a user runs them, against the session's
Temporal dev server): every one is answered with exit 2 and a message naming the input — never a traceback, a
hang, exit 3, or a workflow started / a document stored for a refused input."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from client.embedded import EmbeddedDefault
from client.inputs import MAX_PARAMETER_VALUES_BYTES
from tests.support.cli_env import EXAMPLE, count_workflows, run_cli

TEMPLATE = str(EXAMPLE / "azuredeploy.json")
PARAMS = str(EXAMPLE / "azuredeploy.parameters.json")
BASE = ["deploy", "--local", "-g", "rg-inputs", "-l", "westeurope"]


def refused(result, *needles: str) -> None:
    text = result.out + result.err
    assert result.code == 2, text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, text


@pytest.fixture
def blob_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A content store of the test's own, to prove nothing is stored for a refused input."""
    folder = tmp_path / "blobs"
    monkeypatch.setenv("ORCHESTRATOR_BLOB_DIR", str(folder))
    return folder


def stored(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# ------------------------------------------------------------------------------- files that are not files


@pytest.mark.parametrize("flag", ["-t", "-p"])
def test_dev_zero_is_refused_without_reading_it(flag: str, local_state, blob_dir, capsys) -> None:
    argv = [*BASE, "-t", TEMPLATE, "-p", PARAMS]
    argv[argv.index(flag) + 1] = "/dev/zero"
    refused(run_cli(argv, capsys), "/dev/zero", "character device")
    assert stored(blob_dir) == []


def test_a_fifo_is_refused_instead_of_hanging(tmp_path: Path, local_state, blob_dir, capsys) -> None:
    fifo = tmp_path / "template.json"
    os.mkfifo(fifo)
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.update(r=run_cli([*BASE, "-t", str(fifo)], capsys)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the reader before failing, so the test run does not hang
        with open(fifo, "wb") as f:
            f.write(b"{}")
        pytest.fail("deploy blocked reading a FIFO given as the template")
    refused(box["r"], str(fifo), "named pipe")


@pytest.mark.skipif(os.geteuid() == 0, reason="root enters every folder; the permission check needs another user")
def test_a_template_in_a_folder_the_user_cannot_enter(tmp_path: Path, local_state, blob_dir, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(TEMPLATE, locked / "t.json")
    locked.chmod(0)
    try:
        refused(run_cli([*BASE, "-t", str(locked / "t.json")], capsys), "permission denied")
    finally:
        locked.chmod(0o700)


def test_permission_denied_is_named_when_running_as_root(tmp_path: Path, local_state, blob_dir, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Root enters every folder, so here (tests run as root) the kernel's EACCES is simulated — the one thing
    mocked: os.open raises what it raises for a user in a folder they cannot enter."""
    if os.geteuid() != 0:
        pytest.skip("the real permission check runs above")
    target = str(tmp_path / "locked" / "t.json")
    real_open = os.open

    def denied(path, *args, **kwargs):
        if str(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    refused(run_cli([*BASE, "-t", target], capsys), target, "permission denied")
    assert stored(blob_dir) == []


def test_an_oversized_template_is_refused_before_anything_is_stored(
    tmp_path: Path, local_state, blob_dir, capsys
) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # 50 MB (sparse): never read, never copied
    refused(run_cli([*BASE, "-t", str(big)], capsys), str(big), "52,428,800 bytes")
    assert stored(blob_dir) == []


def test_a_template_over_arms_limit_is_refused_before_it_is_stored(tmp_path: Path, local_state, blob_dir,
                                                                   capsys) -> None:  # fmt: skip
    template = json.loads(Path(TEMPLATE).read_text())
    template["variables"] = {"blob": "x" * (5 * 1024 * 1024)}  # a readable file, 5 MB of compact JSON
    path = tmp_path / "five-mb.json"
    path.write_text(json.dumps(template))
    refused(run_cli([*BASE, "-t", str(path), "-p", PARAMS], capsys), str(path), "4,194,304 bytes")
    assert stored(blob_dir) == []


def test_bicep_and_bicepparam_and_health_files_get_the_same_guard(tmp_path: Path, local_state, blob_dir,
                                                                  capsys) -> None:  # fmt: skip
    fifo_bicep = tmp_path / "main.bicep"
    os.mkfifo(fifo_bicep)
    refused(run_cli([*BASE, "-t", str(fifo_bicep)], capsys), "main.bicep", "named pipe")
    fifo_params = tmp_path / "main.bicepparam"
    os.mkfifo(fifo_params)
    refused(run_cli([*BASE, "-p", str(fifo_params)], capsys), "main.bicepparam", "named pipe")
    refused(run_cli([*BASE, "-t", TEMPLATE, "-p", PARAMS, "--health-file", "/dev/zero"], capsys),
            "/dev/zero", "character device")  # fmt: skip
    assert stored(blob_dir) == []


# ------------------------------------------------------------------------------- values and flags


def test_a_huge_parameter_value_is_refused_naming_it_before_anything_starts(
    temporal_dev: EmbeddedDefault, local_state, blob_dir, capsys
) -> None:
    before = count_workflows(temporal_dev)
    value = "x" * (3 * 1024 * 1024)
    result = run_cli([*BASE, "-t", TEMPLATE, "-p", PARAMS, "--param", f"namePrefix={value}"], capsys)
    refused(result, "Parameter 'namePrefix'", f"{MAX_PARAMETER_VALUES_BYTES:,} bytes")
    assert len(result.err) < 5_000  # the value is not echoed
    assert count_workflows(temporal_dev) == before and stored(blob_dir) == []


def test_audit_dir_that_is_a_file_or_not_writable_is_refused_before_starting(
    tmp_path: Path, temporal_dev: EmbeddedDefault, local_state, blob_dir, capsys
) -> None:
    before = count_workflows(temporal_dev)
    a_file = tmp_path / "audit.txt"
    a_file.write_text("x")
    refused(run_cli([*BASE, "-t", TEMPLATE, "-p", PARAMS, "--audit-dir", str(a_file)], capsys),
            "--audit-dir", "is a file")  # fmt: skip
    refused(run_cli([*BASE, "-t", TEMPLATE, "-p", PARAMS, "--audit-dir", str(a_file / "sub")], capsys),
            "--audit-dir", "not writable")  # fmt: skip
    assert count_workflows(temporal_dev) == before and stored(blob_dir) == []


@pytest.mark.parametrize("sha", ["not-a-sha!!", "a" * 5000, "abc", "xyz12345", ""])
def test_git_sha_is_validated_the_same_way_by_deploy_and_list(sha: str, local_state, blob_dir, capsys) -> None:
    refused(run_cli([*BASE, "-t", TEMPLATE, "-p", PARAMS, "--git-sha", sha], capsys), "--git-sha", "hexadecimal")
    refused(run_cli(["list", "--local", "--git-sha", sha], capsys), "--git-sha", "hexadecimal") if sha else None
    assert stored(blob_dir) == []


def test_a_valid_git_sha_is_accepted_by_list(local_state, capsys) -> None:
    result = run_cli(["list", "--local", "--git-sha", "ABCDEF1234", "--output", "json"], capsys)
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["approve", ""],
        ["reject", "   "],
        ["status", ""],
        ["audit", "deploy-x", "--run-id", "garbage"],
        ["audit", ""],
        ["rollback-params", "deploy-no-such-deployment", "--param", "x=y"],
        ["rollback-params", ""],
        ["status", "deploy-no-such-deployment"],
        ["approve", "deploy-x", "--reason", "r" * 5000],
        ["reject", "deploy-x", "--as", ""],
        ["approve", "deploy-no-such-deployment"],
        ["audit", "deploy-no-such-deployment"],
    ],
)
def test_bad_ids_are_usage_errors_not_unreachable_servers(argv: list[str], local_state, capsys) -> None:
    result = run_cli([*argv, "--local"], capsys)
    refused(result)
    assert "Cannot reach" not in result.err


def test_expand_refuses_a_malformed_subscription_like_deploy(capsys) -> None:
    argv = ["-t", TEMPLATE, "-p", PARAMS, "-g", "rg", "-l", "westeurope", "--subscription", "not-a-guid"]
    expand = run_cli(["expand", *argv], capsys)
    deploy = run_cli(["deploy", *argv], capsys)
    refused(expand, "not-a-guid", "GUID")
    refused(deploy, "not-a-guid", "GUID")
    assert expand.err.splitlines()[0] == deploy.err.splitlines()[0]  # one rule, one message


def test_a_duplicated_param_warns_naming_it(tmp_path: Path, capsys) -> None:
    argv = ["expand", "-t", TEMPLATE, "-p", PARAMS, "-g", "rg", "-l", "westeurope", "--output", "json",
            "--param", "namePrefix=first", "--param", "namePrefix=second"]  # fmt: skip
    result = run_cli(argv, capsys)
    assert result.code == 0, result.err
    assert "--param namePrefix is given more than once" in result.err
    assert "first" not in result.err  # values are not echoed (they may be secret)
    assert "second" in json.dumps(json.loads(result.out))


def test_secure_parameter_default_warns_in_arm_json_as_bicep_does(tmp_path: Path, capsys) -> None:
    template = json.loads(Path(TEMPLATE).read_text())
    template["parameters"]["adminPassword"] = {"type": "securestring", "defaultValue": "Summer2026!"}
    template["parameters"]["token"] = {"type": "securestring", "defaultValue": "[newGuid()]"}  # allowed
    path = tmp_path / "secure-default.json"
    path.write_text(json.dumps(template, indent=2))
    result = run_cli(["lint", "-t", str(path)], capsys)
    text = result.out + result.err
    assert "secure-parameter-default" in text and "adminPassword" in text, text
    assert "'token'" not in text
    assert result.code == 1  # a warning closes the gate unless --allow-warnings, as for Bicep's own warnings


def test_an_id_of_another_kind_of_workflow_is_a_usage_error(temporal_dev: EmbeddedDefault, local_state, capsys) -> None:
    """A workflow that is not a deployment (no worker will ever answer its status query): exit 2, not 3."""
    import asyncio
    import uuid

    from services.temporal_client import connect

    assert temporal_dev.instance is not None
    workflow_id = f"not-a-deployment-{uuid.uuid4().hex[:8]}"

    async def start_other() -> None:
        client = await connect(address=temporal_dev.instance.temporal_address, namespace="default")
        await client.start_workflow("SomethingElse", id=workflow_id, task_queue=f"nobody-{workflow_id}")

    asyncio.run(start_other())
    for command in ("status", "approve", "reject"):
        result = run_cli([command, workflow_id, "--local"], capsys)
        refused(result, "SomethingElse", "not a deployment")
