"""`starter.py deploy` with health checks, end to end: the embedded default (Temporal dev server, local ARM,
worker) and real servers on 127.0.0.1; the user sees the table of checks on stderr and the exit code says it all.
Bad declarations are refused before anything is contacted. Skips, saying why, until deploy takes health checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.embedded import EmbeddedDefault
from client.exit_codes import ExitCode
from tests.support.cli_env import EXAMPLE, run_cli
from tests.support.health_servers import ServerThread


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


def deploy_argv(rg: str, *extra: str) -> list[str]:
    return [
        "deploy", "--local", "-g", rg, "-l", "eastus",
        "-t", str(EXAMPLE / "azuredeploy.json"), "-p", str(EXAMPLE / "azuredeploy.parameters.json"),
        "--health-timeout", "1s", "--health-interval", "0.3s", *extra,
    ]  # fmt: skip


@pytest.mark.usefixtures("on_stack")
def test_deploy_waits_for_a_late_server_then_succeeds(
    servers: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    late = servers.tcp(start_after=2)
    web = servers.http()
    result = run_cli(
        deploy_argv(
            "e2e-health-ok",
            "--health-check", f"tcp:127.0.0.1:{late} name=db",
            "--health-check", f"http:GET http://127.0.0.1:{web}/health?site={{outputs.siteName}} name=web",
            "--health-window", "20s",
        ),
        capsys,
    )  # fmt: skip
    assert result.code == ExitCode.OK, result.err
    assert "✓ db " in result.err and "✓ web " in result.err  # the final table, drawn from the result
    assert "?<redacted>" in result.err and "site=" not in result.err


@pytest.mark.usefixtures("on_stack")
def test_output_json_keeps_stdout_one_document_and_draws_the_health_table_on_stderr(
    servers: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/OUTPUT.md: progress, the live health table and prompts go to stderr — with --output json too."""
    db = servers.tcp()
    result = run_cli(
        deploy_argv("e2e-health-json", "--health-check", f"tcp:127.0.0.1:{db} name=db", "--output", "json"), capsys
    )
    assert result.code == ExitCode.OK, result.err
    doc = json.loads(result.out)  # stdout is exactly one JSON document
    assert doc["health_checks"]["healthy"] is True
    assert "CHECK  STATE" in result.err and "✓ db " in result.err, result.err  # the table, on stderr
    assert "[VERIFYING_HEALTH]" in result.err


@pytest.mark.usefixtures("on_stack")
def test_deploy_fails_naming_the_check_that_never_passed(
    servers: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = servers.reserve_port().getsockname()[1]
    result = run_cli(
        deploy_argv("e2e-health-bad", "--health-check", f"tcp:127.0.0.1:{dead} name=db", "--health-window", "2s"),
        capsys,
    )
    assert result.code == ExitCode.ENVIRONMENTAL, result.err
    assert "HealthCheckFailed" in result.err + result.out
    assert f"db (127.0.0.1:{dead})" in result.err + result.out and "connection refused" in result.err + result.out
    # An environmental failure, but not retried on the 5, 10, 20, 40, 80 s schedule: the stage retried for its
    # whole convergence window, and the user is told so rather than "outlasted the retries".
    assert "not retried again: the convergence window was the retry" in result.out, result.out
    assert "re-ran the checks for its convergence window (--health-window)" in result.out
    assert "[VERIFYING_HEALTH] attempt 1 failed" not in result.err  # no "trying again" either
    workflow_id = next(w for w in result.out.split() if w.startswith("deploy-")).rstrip(".")
    status = run_cli(["status", workflow_id, "--local", "--output", "json"], capsys)
    assert status.code == ExitCode.OK, status.err
    stages = json.loads(status.out)["stages"]
    # Its two activities (resource reads, declared checks) ran once each; no attempt failed, none was retried.
    health_stage = stages["VERIFYING_HEALTH"]
    assert health_stage["attempts"] == 2 and health_stage["last_error"] is None, health_stage
    assert health_stage.get("retry_at") is None, health_stage
    text = run_cli(["status", workflow_id, "--local"], capsys)
    assert "not retried again: VERIFYING_HEALTH re-ran the checks" in text.out, text.out


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("htp:web:80", "--health-check 'htp:web:80' has the kind 'htp'; known kinds: arm, tcp, http"),
        ("http:GET https://{outputs.siteNme}/", "uses the output 'siteNme', which the template does not declare"),
        ("tcp:db:70000", "the port 70000 is out of range"),
        ("http:GET htp//x", "the URL 'htp//x' is malformed"),
    ],
)
def test_bad_declarations_are_refused_before_anything_starts(
    flag: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "no-stack-here"))  # nothing to connect to
    result = run_cli(deploy_argv("e2e-health-refused", "--health-check", flag), capsys)
    assert result.code == ExitCode.USAGE, result.err
    assert result.err.startswith("error: ") and expected in result.err and "Traceback" not in result.err


@pytest.mark.usefixtures("on_stack")
def test_deploy_rolls_back_to_the_last_healthy_deployment_exit_5(
    servers: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    first = run_cli(deploy_argv("e2e-rollback"), capsys)
    assert first.code == ExitCode.OK, first.err
    dead = servers.reserve_port().getsockname()[1]
    failing = ("--health-check", f"tcp:127.0.0.1:{dead} name=db", "--health-window", "1s", "--rollback-on-failure")
    text = run_cli(deploy_argv("e2e-rollback", *failing), capsys)
    assert text.code == ExitCode.ROLLED_BACK == 5, text.err
    assert "Deployment failed and was rolled back to the last healthy deployment" in text.out
    assert "at VERIFYING_HEALTH: HealthCheckFailed" in text.out and "rolled back: redeployed" in text.out
    assert "[ROLLED_BACK]" in text.err  # the stages as they happened
    doc = run_cli([*deploy_argv("e2e-rollback", *failing), "--output", "json"], capsys)
    result = json.loads(doc.out)
    assert doc.code == 5 and result["exit_code"] == 5 and result["outcome"] == "ROLLED_BACK"
    assert result["rollback"]["state"] == "ROLLED_BACK" and result["failure"]["code"] == "HealthCheckFailed"
    # `status` tells the same afterwards: the failure and what the rollback redeployed.
    status = run_cli(["status", result["workflow_id"], "--local"], capsys)
    assert status.code == ExitCode.OK, status.err
    assert "failed at VERIFYING_HEALTH: " in status.out and "HealthCheckFailed" in status.out
    assert "rolled back: redeployed " in status.out, status.out
    assert result["rollback"]["target_deployment_name"] in status.out


def test_hints_name_local_when_the_deployment_runs_on_the_local_stack(
    on_stack: EmbeddedDefault, servers: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands `deploy --local` prints for the user to type carry --local (and parse): the rollback's
    `rollback-params` hint (the workflow writes it, not knowing how the CLI reached it) and the audit-failure hint.
    Typed as printed, the rollback-params command completes the rollback (exit 5)."""
    import os
    import re
    import subprocess
    import sys

    from harness.secret_template import random_token, secret_template
    from tests.support.cli_env import REPO
    from tests.support.doc_commands import command_argv, parse_failure

    template = tmp_path / "main.json"
    template.write_text(json.dumps(secret_template("sthint" + random_token()[:8].lower())))
    password = random_token()
    rg = "e2e-hints"
    base = ["deploy", "--local", "-g", rg, "-l", "eastus", "-t", str(template), "--health-timeout", "1s",
            "--health-interval", "0.3s", "--param", f"adminPassword={password}"]  # fmt: skip
    first = run_cli(base, capsys)
    assert first.code == ExitCode.OK, first.err

    # The audit record cannot be written (the audit "folder" is a file): the hint to rebuild it names --local.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    again = run_cli([*base, "--audit-dir", str(blocker)], capsys)
    assert again.code == ExitCode.OK, again.err
    hint = re.search(r"Rebuild it with `([^`]+)`", again.err)
    assert hint is not None, again.err
    assert " --local" in hint.group(1) and f"--audit-dir {blocker}" in hint.group(1)
    parsed = command_argv(hint.group(1))
    assert parsed is not None and parse_failure(*parsed) is None, hint.group(1)

    # No codec keys: the last good record kept only the name of adminPassword, so the rollback asks for it.
    dead = servers.reserve_port().getsockname()[1]
    argv = [sys.executable, "starter.py", *base, "--health-check", f"tcp:127.0.0.1:{dead} name=db",
            "--health-window", "1s", "--rollback-on-failure"]  # fmt: skip
    env = {**os.environ, "ORCHESTRATOR_STATE_DIR": str(on_stack.state_dir)}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:
            lines.append(line)
            if "rollback-params" in line:
                break
        printed = re.search(r"`(python starter\.py rollback-params [^`]+)`", "".join(lines))
        assert printed is not None, "".join(lines)
        assert " --local " in printed.group(1), printed.group(1)
        typed = printed.group(1).replace("--param NAME", f"--param adminPassword={password}").split()[2:]
        assert parse_failure("cli", typed) is None
        provided = run_cli(typed, capsys)
        assert provided.code == ExitCode.OK, provided.err
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.ROLLED_BACK, err
    assert password not in out + err + "".join(lines)
