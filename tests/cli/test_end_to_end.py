"""``starter.py deploy``/``approve``/``reject``/``demo`` end to end: a real Temporal dev server, the local ARM over
HTTPS and a worker, all started by the embedded default, driven through the CLI as a user would."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.embedded import EmbeddedDefault, temporal_binary
from client.exit_codes import ExitCode
from tests.support.cli_env import EXAMPLE, REPO, run_cli
from tests.support.stderr_watch import StderrWatcher

TEMPLATE = str(EXAMPLE / "azuredeploy.json")
WITHOUT_WEB = str(EXAMPLE / "azuredeploy.without-web.json")
PARAMS = str(EXAMPLE / "azuredeploy.parameters.json")
STARTER = str(REPO / "starter.py")  # the real entry point, as a user runs it


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    embedded = EmbeddedDefault(tmp_path_factory.mktemp("stack"))
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def on_stack(stack: EmbeddedDefault, monkeypatch: pytest.MonkeyPatch) -> EmbeddedDefault:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(stack.state_dir))
    return stack


def deploy_argv(rg: str, *extra: str, template: str = TEMPLATE) -> list[str]:
    return ["deploy", "--local", "-g", rg, "-l", "eastus", "-t", template, "-p", PARAMS, "--skip-health", *extra]


def cli_subprocess(argv: list[str], state_dir: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, ORCHESTRATOR_STATE_DIR=str(state_dir))
    return subprocess.Popen(
        [sys.executable, STARTER, *argv],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_stage(workflow_id: str, stage: str, capsys: pytest.CaptureFixture[str], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        result = run_cli(["status", workflow_id, "--local", "--output", "json"], capsys)
        if result.code == 0:
            doc = json.loads(result.out)
            if doc.get("stage") == stage:
                return doc
        time.sleep(0.3)
    raise AssertionError(f"{workflow_id} never reached {stage}; last status {doc}")


@pytest.mark.usefixtures("on_stack")
def test_happy_path_then_no_change(capsys: pytest.CaptureFixture[str]) -> None:
    first = run_cli(deploy_argv("e2e-happy", "--output", "json"), capsys)
    assert first.code == ExitCode.OK, first.err + first.out
    doc = json.loads(first.out)
    assert doc["outcome"] == "SUCCEEDED" and doc["exit_code"] == 0
    assert doc["has_changes"] is True
    assert doc["change_counts"].get("Create") == 4
    assert any("/Microsoft.Web/sites/" in r for r in doc["resources"])
    # progress went to stderr, stage by stage
    for stage in ("VALIDATING_PARAMETERS", "PLANNING", "DEPLOYING", "COMPLETED"):
        assert f"[{stage}]" in first.err
    # what validation and lint found is labelled as theirs, not as the next stage's
    assert "[LINTING] (validation: 4 resources, parameters valid)" in first.err
    assert "[PLANNING] (lint: arm-engine static checks, 0 warnings)" in first.err

    second = run_cli(deploy_argv("e2e-happy"), capsys)
    assert second.code == ExitCode.OK, second.err
    assert "Resource changes: 4 no change." in second.out
    assert "Deployment succeeded" in second.out

    # status shows the last run with its plan; list filters by resource group
    shown = run_cli(["status", doc["workflow_id"], "--local", "--plan"], capsys)
    assert shown.code == ExitCode.OK, shown.err
    assert "stage COMPLETED (SUCCEEDED)" in shown.out and "Resource changes: 4 no change." in shown.out
    listed = run_cli(["list", "--local", "-g", "E2E-HAPPY", "--output", "json"], capsys)
    rows = json.loads(listed.out)
    assert len(rows) == 2 and {r["resource_group"] for r in rows} == {"e2e-happy"}
    assert all(r["status"] == "COMPLETED" for r in rows)

    # nothing waits for confirmation: approve refuses and says why
    not_waiting = run_cli(["approve", doc["workflow_id"], "--local"], capsys)
    assert not_waiting.code == ExitCode.USAGE
    assert "is not running" in not_waiting.err or "not waiting for confirmation" in not_waiting.err


def start_removal(rg: str, state_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], StderrWatcher]:
    proc = cli_subprocess(deploy_argv(rg, "--mode", "Complete", *extra, template=WITHOUT_WEB), state_dir)
    return proc, StderrWatcher(proc)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(timeout=timeout)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_deletion_waits_then_approve_through_starter(on_stack: EmbeddedDefault, capsys) -> None:
    assert run_cli(deploy_argv("e2e-approve"), capsys).code == ExitCode.OK
    proc, stderr = start_removal("e2e-approve", on_stack.state_dir)
    try:
        stderr.wait_for("Microsoft.Web/sites/")  # the CLI names what would be deleted
        command = stderr.wait_for("python starter.py approve ")  # no terminal: it prints the exact command
        stderr.wait_for("temporal workflow signal")
        wf_id = command.split("python starter.py approve ", 1)[1].split()[0]
        pending = wait_for_stage(wf_id, "AWAITING_CONFIRMATION", capsys)
        deleted = [c["resource_id"] for c in pending["pending_confirmation"]["destructive_changes"]]
        assert len(deleted) == 1 and "/Microsoft.Web/sites/" in deleted[0]
        approved = run_cli(["approve", wf_id, "--local", "--reason", "web app retired"], capsys)
        assert approved.code == ExitCode.OK, approved.err
    finally:
        out = finish(proc)
    assert proc.returncode == ExitCode.OK, stderr.text()
    assert "  - Microsoft.Web/sites/" in out  # the plan shows the deletion
    assert "Deployment succeeded" in out
    assert "[COMPLETED]" in stderr.text()


def test_printed_temporal_cli_command_approves(on_stack: EmbeddedDefault, capsys) -> None:
    """The `temporal workflow signal` line the CLI prints works as is (a client we did not write)."""
    assert run_cli(deploy_argv("e2e-tctl"), capsys).code == ExitCode.OK
    proc, stderr = start_removal("e2e-tctl", on_stack.state_dir)
    try:
        line = stderr.wait_for("temporal workflow signal")
        command = line.strip().replace("temporal ", f"{temporal_binary()} ", 1)
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        out = finish(proc)
    assert proc.returncode == ExitCode.OK, stderr.text()
    assert "Deployment succeeded" in out
    assert (
        "APPROVED" in run_cli(["status", "deploy-00000000-0000-0000-0000-000000000001-e2e-tctl", "--local"], capsys).out
    )


def wait_for_listing(capsys: pytest.CaptureFixture[str], timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = run_cli(["list", "--local", "--running", "--output", "json"], capsys)
        rows = json.loads(result.out) if result.code == 0 else []
        if rows:
            return list(rows)
        time.sleep(0.3)
    raise AssertionError("no running deployment appeared")


def test_reject_exits_4_with_the_reason(on_stack: EmbeddedDefault, capsys) -> None:
    assert run_cli(deploy_argv("e2e-reject"), capsys).code == ExitCode.OK
    proc, stderr = start_removal("e2e-reject", on_stack.state_dir, "--output", "json")
    try:
        wf_id = next(r["workflow_id"] for r in wait_for_listing(capsys) if r["resource_group"] == "e2e-reject")
        wait_for_stage(wf_id, "AWAITING_CONFIRMATION", capsys)
        # one deployment per resource group: a second start is refused, naming the running workflow ...
        refused = run_cli(deploy_argv("e2e-reject"), capsys)
        assert refused.code == ExitCode.ENVIRONMENTAL and wf_id in refused.err and "--wait" in refused.err
        # ... or queues behind it with --wait
        queued = cli_subprocess(deploy_argv("e2e-reject", "--wait", "--output", "json"), on_stack.state_dir)
        time.sleep(1.5)
        assert queued.poll() is None
        rejected = run_cli(["reject", wf_id, "--local", "--reason", "still in use", "--approver", "ana"], capsys)
        assert rejected.code == ExitCode.OK, rejected.err
    finally:
        out = finish(proc)
    assert proc.returncode == ExitCode.REJECTED, stderr.text()
    doc = json.loads(out)
    assert doc["outcome"] == "REJECTED" and doc["exit_code"] == 4
    assert any(c["by"] == "ana" and c["reason"] == "still in use" for c in doc["confirmations"])
    # the queued deployment ran after the rejected one; the web app survived, so its plan changes nothing
    queued_out, queued_err = queued.communicate(timeout=120)
    assert queued.returncode == ExitCode.OK, queued_err
    assert json.loads(queued_out)["has_changes"] is False


def test_demo_twice_shows_no_change_the_second_time(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("ORCHESTRATOR_STATE_DIR", None)
    argv = [sys.executable, STARTER, "demo", "--state-dir", str(tmp_path / "state"), "--output", "json"]
    runs = [subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["has_changes"] is True and second["has_changes"] is False
    assert second["change_counts"] == {"NoChange": 4}
    assert not (tmp_path / "state" / "dev.json").exists()  # everything was stopped


def test_terminal_prompt_y_approves(on_stack: EmbeddedDefault, capsys) -> None:
    """On a terminal the CLI asks y/N itself; 'y' approves and the deployment completes."""
    assert run_cli(deploy_argv("e2e-tty"), capsys).code == ExitCode.OK
    master, slave = pty.openpty()
    argv = deploy_argv("e2e-tty", "--mode", "Complete", template=WITHOUT_WEB)
    env = dict(os.environ, ORCHESTRATOR_STATE_DIR=str(on_stack.state_dir))
    proc = subprocess.Popen(
        [sys.executable, STARTER, *argv], cwd=REPO, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 4096)
        assert b"[y/N]" in seen, seen.decode(errors="replace")
        assert b"python starter.py approve" not in seen  # a person at a terminal is asked, not told
        os.write(master, b"y\n")
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == ExitCode.OK
    assert b"Deployment succeeded" in out


def test_ctrl_c_stops_following_not_the_deployment(on_stack: EmbeddedDefault, capsys) -> None:
    assert run_cli(deploy_argv("e2e-sigint"), capsys).code == ExitCode.OK
    proc, stderr = start_removal("e2e-sigint", on_stack.state_dir)
    try:
        command = stderr.wait_for("python starter.py approve ")
        wf_id = command.split("python starter.py approve ", 1)[1].split()[0]
        proc.send_signal(signal.SIGINT)
        finish(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stderr.text()
    assert f"continues in workflow {wf_id}" in stderr.text()
    wait_for_stage(wf_id, "AWAITING_CONFIRMATION", capsys, timeout=10)  # still there, still waiting
    assert run_cli(["reject", wf_id, "--local", "--reason", "test cleanup"], capsys).code == ExitCode.OK


@pytest.mark.usefixtures("on_stack")
def test_circular_dependency_halts_in_validation_with_exit_1(tmp_path: Path, capsys) -> None:
    """A logic failure the offline parameter check does not cover ends in the workflow's validation stage: exit 1,
    with the engine's finding in the message."""
    resources = [
        {
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "apiVersion": "2023-01-31",
            "name": name,
            "location": "[resourceGroup().location]",
            "dependsOn": [f"[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', '{other}')]"],
        }
        for name, other in (("id-a", "id-b"), ("id-b", "id-a"))
    ]
    template = tmp_path / "cycle.json"
    template.write_text(json.dumps({"$schema": "x", "contentVersion": "1.0.0.0", "resources": resources}))
    argv = ["deploy", "--local", "-g", "e2e-cycle", "-l", "eastus", "-t", str(template), "--output", "json"]
    result = run_cli(argv, capsys)
    assert result.code == ExitCode.LOGIC_FAILURE, result.err
    doc = json.loads(result.out)
    assert doc["failure"]["failure_class"] == "LOGIC" and doc["failure"]["stage"] == "VALIDATING_PARAMETERS"
    assert "CircularDependency" in json.dumps(doc["failure"])
    assert "Traceback" not in result.err


def test_dev_runs_until_interrupted_and_stops_its_children(tmp_path: Path, capsys) -> None:
    state = tmp_path / "dev-state"
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_STATE_DIR"}
    proc = subprocess.Popen(
        [sys.executable, STARTER, "dev", "--state-dir", str(state)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert header.startswith("Embedded default running"), header + (proc.stderr.read() if proc.stderr else "")
        lines = [proc.stdout.readline() for _ in range(5)]
        assert any(line.strip().startswith("Web UI      http://127.0.0.1:") for line in lines), lines
        instance = json.loads((state / "dev.json").read_text())
        assert set(instance["pids"]) == {"temporal", "local-arm", "worker", "api"}
        assert any(line.strip().startswith(f"API         {instance['api_url']}") for line in lines), lines
        with urllib.request.urlopen(f"{instance['api_url']}/healthz", timeout=10) as answer:  # the team service
            assert answer.status == 200
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ORCHESTRATOR_STATE_DIR", str(state))
            listed = run_cli(["list", "--local"], capsys)
        assert listed.code == ExitCode.OK, listed.err
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.OK
    assert not (state / "dev.json").exists()
    for pid in instance["pids"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_dev_output_json_prints_its_addresses_as_one_json_object(tmp_path: Path) -> None:
    """`dev --output json`: the addresses a script needs as one JSON object on stdout (dev.json's fields), the
    human text on stderr; Ctrl-C still stops everything."""
    state = tmp_path / "dev-json"
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_STATE_DIR"}
    proc = subprocess.Popen(
        [sys.executable, STARTER, "dev", "--state-dir", str(state), "--no-worker", "--output", "json"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("{"), line + (proc.stderr.read() if proc.stderr else "")
        printed = json.loads(line)
        assert printed == json.loads((state / "dev.json").read_text())
        assert printed["temporal_address"].startswith("127.0.0.1:") and printed["arm_endpoint"].startswith("https://")
        assert set(printed["pids"]) == {"temporal", "local-arm", "api"}
        assert printed["api_url"].startswith("http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.OK, err
    assert out == "" and "Embedded default running" in err
