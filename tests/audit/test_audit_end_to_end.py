"""The audit export, end to end (issue 7 acceptance): the embedded default (a real Temporal dev server with the
search attributes registered, the local ARM over HTTPS, a worker), driven through ``starter.py`` as a user would.

One deployment carries everything the record must show: ARM throttles its PUT twice (retries, classified), the plan
deletes a resource in Complete mode (an approval), a declared TCP health check and the provisioningState check run,
and a securestring parameter holds a random token. The record ``deploy`` wrote is compared with the one ``audit``
rebuilds from history after the audit folder is deleted, and the run is found with the Temporal CLI by GitSha and
ResourceGroup."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client.embedded import EmbeddedDefault, temporal_binary
from client.exit_codes import ExitCode
from tests.support.cli_env import EXAMPLE, REPO, CliRun, run_cli

STARTER = str(REPO / "starter.py")
RG = "audit-e2e-rg"
SEED_FIELDS = ("deployment_id", "git_sha", "template_file", "parameters_file", "timestamp", "events", "result")
ADDED_FIELDS = (
    "template_hash",
    "plan",
    "approvals",
    "retries",
    "bicep_version",
    "worker_identity",
    "worker_identities",
    "health_checks",
)


@dataclass
class Deployed:
    stack: EmbeddedDefault
    audit_dir: Path
    workflow_id: str
    run_id: str
    first_run_id: str
    git_sha: str
    first_git_sha: str
    token: str
    approver: str
    json_file: Path
    json_text: str
    deploy_doc: dict[str, Any]


def _with_secret(source: Path, target: Path) -> Path:
    """The example template plus a securestring parameter (unused by the resources: only its value matters)."""
    template = json.loads(source.read_text(encoding="utf-8"))
    template["parameters"]["adminToken"] = {"type": "securestring"}
    target.write_text(json.dumps(template, indent=2), encoding="utf-8")
    return target


def _deploy_argv(template: Path, git_sha: str, token: str, audit_dir: Path, *extra: str, rg: str = RG) -> list[str]:
    return [
        "deploy", "--local", "-g", rg, "-l", "eastus", "-t", str(template),
        "-p", str(EXAMPLE / "azuredeploy.parameters.json"), "--param", f"adminToken={token}",
        "--git-sha", git_sha, "--audit-dir", str(audit_dir), "--output", "json", *extra,
    ]  # fmt: skip


def _wait_for_stage(workflow_id: str, stage: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        result = _cli(["status", workflow_id, "--local", "--output", "json"])
        if result.code == 0:
            last = json.loads(result.out)
            if last.get("stage") == stage:
                return
        time.sleep(0.3)
    raise AssertionError(f"{workflow_id} never reached {stage}; last status {last}")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Deploy the example, then remove its web app in Complete mode with two throttled PUTs, an approval and a
    health check; yields what the second deployment left behind."""
    work = tmp_path_factory.mktemp("audit-e2e")
    retries = {
        "ORCHESTRATOR_RETRY_INITIAL_SECONDS": "0.2",
        "ORCHESTRATOR_RETRY_BACKOFF_COEFFICIENT": "1.5",
        "ORCHESTRATOR_RETRY_MAXIMUM_RETRIES": "4",
    }
    stack = EmbeddedDefault(work / "state", worker_env=retries)
    stack.start()
    health_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("ORCHESTRATOR_STATE_DIR", str(stack.state_dir))
        health_socket.bind(("127.0.0.1", 0))
        health_socket.listen(16)  # a TCP check passes once the port accepts connections
        port = health_socket.getsockname()[1]
        template = _with_secret(EXAMPLE / "azuredeploy.json", work / "main.json")
        without_web = _with_secret(EXAMPLE / "azuredeploy.without-web.json", work / "main.without-web.json")
        audit_dir = work / "audit"
        token = secrets.token_urlsafe(24)[:32]
        first_sha, sha = secrets.token_hex(20), secrets.token_hex(20)
        first = _cli(_deploy_argv(template, first_sha, token, audit_dir, "--skip-health"))
        assert first.code == ExitCode.OK, first.err
        first_doc = json.loads(first.out)

        from local_arm.admin import AdminClient, Fault

        assert stack.instance is not None and stack.instance.arm_endpoint
        admin = AdminClient(stack.instance.arm_endpoint, ca_file=stack.instance.arm_ca_file)
        admin.add_faults(Fault.throttle(operation="Deployments_CreateOrUpdate", count=2, retry_after=0))

        env = dict(os.environ, ORCHESTRATOR_STATE_DIR=str(stack.state_dir))
        argv = _deploy_argv(
            without_web, sha, token, audit_dir, "--mode", "Complete",
            "--health-check", f"tcp:127.0.0.1:{port} name=db", "--health-timeout", "1s", "--health-interval", "0.3s",
        )  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, STARTER, *argv],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            workflow_id = first_doc["workflow_id"]
            _wait_for_stage(workflow_id, "AWAITING_CONFIRMATION")
            approved = _cli(
                ["approve", workflow_id, "--local", "--approver", "auditor-ana", "--reason", "web app retired"]
            )
            assert approved.code == ExitCode.OK, approved.err
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == ExitCode.OK, err
        doc = json.loads(out)
        assert "Audit record:" in err
        run_id = _run_id_of(stack, workflow_id, sha)
        json_file = next(audit_dir.glob(f"*{run_id}.json"))
        yield Deployed(
            stack=stack,
            audit_dir=audit_dir,
            workflow_id=workflow_id,
            run_id=run_id,
            first_run_id=_run_id_of(stack, workflow_id, first_sha),
            git_sha=sha,
            first_git_sha=first_sha,
            token=token,
            approver="auditor-ana",
            json_file=json_file,
            json_text=json_file.read_text(encoding="utf-8"),
            deploy_doc=doc,
        )
    finally:
        mp.undo()
        health_socket.close()
        stack.stop()


def _cli(argv: list[str]) -> CliRun:
    """``starter.py ARGV`` in this process, for the module fixture (where capsys is not available)."""
    from client import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return CliRun(code, out.getvalue(), err.getvalue())


def _run_id_of(stack: EmbeddedDefault, workflow_id: str, git_sha: str) -> str:
    rows = _temporal_list(stack, f"GitSha='{git_sha}' AND ResourceGroup='{RG}'")
    assert len(rows) == 1, rows
    assert rows[0]["execution"]["workflowId"] == workflow_id
    return str(rows[0]["execution"]["runId"])


def _temporal_list(stack: EmbeddedDefault, query: str) -> list[dict[str, Any]]:
    """The Temporal CLI (a client we did not write) lists the runs matching a visibility query."""
    assert stack.instance is not None
    done = subprocess.run(
        [temporal_binary(), "workflow", "list", "--address", stack.instance.temporal_address, "--namespace",
         "default", "--query", query, "--output", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout.strip()
    if not text:
        return []
    parsed = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]
    return list(parsed)


def test_json_record_has_every_field(deployed: Deployed) -> None:
    record = json.loads(deployed.json_text)
    for name in (*SEED_FIELDS, "resources", *ADDED_FIELDS):
        assert name in record, name
    assert record["deployment_id"] == deployed.workflow_id and record["run_id"] == deployed.run_id
    assert record["git_sha"] == deployed.git_sha
    assert record["template_file"].endswith("main.without-web.json")
    assert record["parameters_file"].endswith("azuredeploy.parameters.json")
    assert record["timestamp"] and record["result"]["timestamp"] > record["timestamp"]
    assert record["result"]["success"] is True and record["result"]["outcome"] == "SUCCEEDED"
    assert record["result"]["message"]
    assert record["template_hash"].startswith("sha256:") and len(record["template_hash"]) == 71
    assert record["template_hash"] == deployed.deploy_doc["template_hash"]
    assert record["bicep_version"] is None and record["linter"]  # ARM JSON: no compiler (the key is there)
    assert record["mode"] == "Complete" and record["resource_group"] == RG
    assert record["secure_parameter_names"] == ["adminToken"] and "adminToken" not in record["parameters"]

    for event in record["events"]:
        assert set(event) >= {"timestamp", "event_type", "message", "details"}, event
    kinds = [e["event_type"] for e in record["events"]]
    for kind in ("deployment_started", "stage_transition", "activity_completed", "activity_failed",
                 "retry_scheduled", "signal_received", "confirmation_recorded", "deployment_completed"):  # fmt: skip
        assert kind in kinds, kind
    stages = [e["details"]["stage"] for e in record["events"] if e["event_type"] == "stage_transition"]
    assert stages[0] == "VALIDATING_PARAMETERS" and stages[-1] == "COMPLETED"
    assert "AWAITING_CONFIRMATION" in stages and "VERIFYING_HEALTH" in stages

    # the plan: a summary with the full what-if referenced in the content store
    assert record["plan"]["counts"].get("Delete") == 1
    assert record["plan"]["full_result"]["digest"].startswith("sha256:")

    # the approval: who, when, why, and the plan approved
    [approval] = record["approvals"]
    assert approval["decision"] == "APPROVED" and approval["by"] == deployed.approver
    assert approval["reason"] == "web app retired" and approval["at"]
    assert len(approval["destructive_set"]) == 1 and "microsoft.web/sites/" in approval["destructive_set"][0]
    assert approval["plan_counts"].get("Delete") == 1 and approval["plan_full_result"]["digest"]
    assert approval["signal_identity"]  # the Temporal client that sent the signal

    # the retries: ARM throttled the PUT twice, each classified and followed by a durable backoff
    deploying = [r for r in record["retries"] if r["stage"] == "DEPLOYING"]
    assert len(deploying) == 2, record["retries"]
    for retry in deploying:
        assert retry["failure_class"] == "ENVIRONMENTAL" and retry["code"] == "TooManyRequests"
        assert retry["retried"] is True and retry["backoff_seconds"] > 0 and retry["worker_identity"]
    assert [r["attempt"] for r in deploying] == [1, 2]

    # resources and their health
    assert record["resources"], record
    types = {r["resource_type"] for r in record["resources"]}
    assert "Microsoft.Storage/storageAccounts" in types and "Microsoft.Web/sites" not in types
    assert {r["health_status"] for r in record["resources"]} == {"Healthy"}
    [check] = record["health_checks"]["checks"]
    assert check["name"] == "db"

    # the workers
    assert record["worker_identity"] and "@" in record["worker_identity"]
    assert record["worker_identity"] in record["worker_identities"]
    assert record["search_attributes"]["DeploymentState"] == "COMPLETED"
    assert record["search_attributes"]["GitSha"] == deployed.git_sha


def test_sqlite_rows_have_every_field(deployed: Deployed) -> None:
    record = json.loads(deployed.json_text)
    with sqlite3.connect(deployed.audit_dir / "audit.db") as db:
        db.row_factory = sqlite3.Row
        row = db.execute(
            "SELECT * FROM deployments WHERE deployment_id = ? AND run_id = ?", (deployed.workflow_id, deployed.run_id)
        ).fetchone()
        events = db.execute(
            "SELECT * FROM deployment_events WHERE run_id = ? ORDER BY seq", (deployed.run_id,)
        ).fetchall()
        resources = db.execute("SELECT * FROM deployment_resources WHERE run_id = ?", (deployed.run_id,)).fetchall()
        runs = db.execute("SELECT run_id FROM deployments WHERE deployment_id = ?", (deployed.workflow_id,)).fetchall()
    assert row is not None
    assert row["git_sha"] == deployed.git_sha and row["template_file"] == record["template_file"]
    assert row["parameters_file"] == record["parameters_file"] and row["timestamp"] == record["timestamp"]
    assert row["success"] == 1 and row["result_message"] == record["result"]["message"]
    assert row["result_timestamp"] == record["result"]["timestamp"]
    assert row["template_hash"] == record["template_hash"] and row["worker_identity"] == record["worker_identity"]
    assert row["approvals"] == 1 and row["retries"] == 2 and row["state"] == "COMPLETED"
    assert json.loads(row["record_json"]) == record
    assert [e["event_type"] for e in events] == [e["event_type"] for e in record["events"]]
    assert all(e["timestamp"] and e["message"] and json.loads(e["details"]) is not None for e in events)
    deployed_rows = [r for r in resources if r["health_status"] != "Deleted"]
    assert {(r["resource_id"], r["resource_type"], r["health_status"]) for r in deployed_rows} == {
        (r["resource_id"], r["resource_type"], r["health_status"]) for r in record["resources"]
    }
    # the resource the approved plan deleted is listed too, with its change type (not only inside record_json)
    deleted = [c["resource_id"] for c in record["plan"]["changes"] if c["change_type"] == "Delete"]
    assert deleted and sorted(
        (r["resource_id"], r["change_type"]) for r in resources if r["health_status"] == "Deleted"
    ) == [(rid, "Delete") for rid in sorted(deleted)]
    assert {r["run_id"] for r in runs} == {deployed.run_id, deployed.first_run_id}  # both deployments kept


def test_secure_value_is_in_no_audit_output(deployed: Deployed) -> None:
    assert deployed.token not in deployed.json_text
    for path in deployed.audit_dir.iterdir():
        assert deployed.token.encode() not in path.read_bytes(), path


def test_rebuilt_from_history_alone_is_the_same(deployed: Deployed, tmp_path: Path, capsys) -> None:
    written = {p.name: p.read_bytes() for p in deployed.audit_dir.glob("*.json")}
    for path in deployed.audit_dir.iterdir():
        path.unlink()
    deployed.audit_dir.rmdir()
    rebuilt = run_cli(
        ["audit", deployed.workflow_id, "--local", "--audit-dir", str(deployed.audit_dir), "--output", "json"],
        capsys,
    )
    assert rebuilt.code == ExitCode.OK, rebuilt.err
    assert (deployed.audit_dir / deployed.json_file.name).read_text(encoding="utf-8") == deployed.json_text
    assert json.loads(rebuilt.out) == json.loads(deployed.json_text)
    with sqlite3.connect(deployed.audit_dir / "audit.db") as db:
        (stored,) = db.execute("SELECT record_json FROM deployments WHERE run_id = ?", (deployed.run_id,)).fetchone()
    assert json.loads(stored) == json.loads(deployed.json_text)
    # an earlier run of the same workflow id, by --run-id
    first = run_cli(
        ["audit", deployed.workflow_id, "--local", "--run-id", deployed.first_run_id, "--audit-dir",
         str(deployed.audit_dir), "--audit-format", "json", "--output", "json"],
        capsys,
    )  # fmt: skip
    assert first.code == ExitCode.OK, first.err
    first_name = next(n for n in written if deployed.first_run_id in n)
    assert (deployed.audit_dir / first_name).read_bytes() == written[first_name]
    assert {r["health_status"] for r in json.loads(first.out)["resources"]} == {"NotChecked"}  # --skip-health


def test_temporal_cli_finds_the_run_by_search_attributes(deployed: Deployed) -> None:
    rows = _temporal_list(deployed.stack, f"GitSha='{deployed.git_sha}' AND ResourceGroup='{RG}'")
    assert [r["execution"]["runId"] for r in rows] == [deployed.run_id]
    state = _temporal_list(deployed.stack, f"ResourceGroup='{RG}' AND DeploymentState='COMPLETED'")
    assert {r["execution"]["runId"] for r in state} == {deployed.run_id, deployed.first_run_id}
    assert _temporal_list(deployed.stack, f"GitSha='{'0' * 40}' AND ResourceGroup='{RG}'") == []


def test_list_filters_by_git_sha_state_and_time(deployed: Deployed, capsys) -> None:
    def listed(*extra: str) -> list[dict[str, Any]]:
        result = run_cli(["list", "--local", "--output", "json", "-g", RG, *extra], capsys)
        assert result.code == ExitCode.OK, result.err
        return list(json.loads(result.out))

    by_sha = listed("--git-sha", deployed.git_sha)
    assert [r["run_id"] for r in by_sha] == [deployed.run_id]
    assert by_sha[0]["state"] == "COMPLETED" and by_sha[0]["git_sha"] == deployed.git_sha
    assert [r["run_id"] for r in listed("--git-sha", deployed.first_git_sha)] == [deployed.first_run_id]
    assert {r["run_id"] for r in listed("--state", "completed")} == {deployed.run_id, deployed.first_run_id}
    assert listed("--state", "AWAITING_CONFIRMATION") == []
    assert len(listed("--since", "1h")) == 2
    assert listed("--until", "2000-01-01") == []
    assert listed("-g", "some-other-rg", "--git-sha", deployed.git_sha) == []


def test_audit_of_an_unknown_workflow_is_a_usage_error(deployed: Deployed, capsys) -> None:
    result = run_cli(["audit", "deploy-no-such-workflow", "--local", "--audit-dir", str(deployed.audit_dir)], capsys)
    assert result.code == ExitCode.USAGE
    assert "deploy-no-such-workflow" in result.err and "starter.py list" in result.err
    assert "Traceback" not in result.err


def test_an_audit_dir_that_is_a_file_is_refused_before_starting(deployed: Deployed, tmp_path: Path, capsys) -> None:
    """The record the user asked for must be writable before a deployment starts (exit 2, nothing started); a
    write that still fails after the deployment (the folder removed meanwhile) only warns, keeping the outcome."""
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    template = Path(json.loads(deployed.json_text)["template_file"])
    argv = _deploy_argv(
        template, secrets.token_hex(20), deployed.token, not_a_folder, "--skip-health", rg="audit-e2e-other"
    )
    result = run_cli(argv, capsys)
    assert result.code == ExitCode.USAGE, result.err
    assert "--audit-dir" in result.err and str(not_a_folder) in result.err and "is a file" in result.err
    listed = run_cli(["list", "--local", "-g", "audit-e2e-other", "--output", "json"], capsys)
    assert json.loads(listed.out) == []  # nothing was started


def test_text_outputs_a_person_reads(deployed: Deployed, tmp_path: Path, capsys) -> None:
    shown = run_cli(
        ["audit", deployed.workflow_id, "--local", "--audit-dir", str(tmp_path), "--audit-format", "none"], capsys
    )
    assert shown.code == ExitCode.OK, shown.err
    assert f"Deployment {deployed.workflow_id} (run {deployed.run_id})" in shown.out
    assert f"git sha     {deployed.git_sha}" in shown.out
    assert "approved    by auditor-ana" in shown.out and "web app retired" in shown.out
    assert (
        shown.out.count("failed      DEPLOYING deploy attempt") == 2 and "TooManyRequests, retried after" in shown.out
    )
    assert "resource    Healthy    Microsoft.Storage/storageAccounts" in shown.out
    assert "adminToken" in shown.out and deployed.token not in shown.out  # the name, never the value
    assert list(tmp_path.iterdir()) == []  # --audit-format none writes nothing

    listed = run_cli(["list", "--local", "-g", RG, "--git-sha", deployed.git_sha], capsys)
    assert listed.code == ExitCode.OK, listed.err
    [header, row] = listed.out.strip().splitlines()
    assert "STATE" in header and "GIT SHA" in header
    assert deployed.workflow_id in row and "COMPLETED" in row and deployed.git_sha[:12] in row
