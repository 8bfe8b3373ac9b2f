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
from tests.support.cli_env import health_deploy_argv as deploy_argv
from tests.support.cli_env import run_cli
from tests.support.health_servers import Pki, ServerThread


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


def replay_history(stack: EmbeddedDefault, workflow_id: str) -> None:
    """Replay the run's history on today's workflow code (as a worker taking it over would): new patch markers and
    commands must line up."""
    import asyncio

    from temporalio.worker import Replayer

    from services.temporal_client import connect, data_converter
    from workflows.deployment import DeploymentWorkflow

    assert stack.instance is not None

    async def replay() -> None:
        client = await connect(address=stack.instance.temporal_address, namespace="default")  # type: ignore[union-attr]
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
        assert result.replay_failure is None

    asyncio.run(replay())


def started_workflow(err: str) -> str:
    return next(line.split()[2] for line in err.splitlines() if line.startswith("Started workflow "))


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
    from services.audit.store import DATABASE_NAME
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

    # The audit record cannot be written (the folder is fine when deploy checks it, but its audit.db is a folder):
    # the hint to rebuild it names --local.
    blocker = tmp_path / "audit"
    (blocker / DATABASE_NAME).mkdir(parents=True)
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


@pytest.mark.usefixtures("on_stack")
def test_a_check_that_would_change_the_local_arm_is_refused_and_never_rolls_back(
    stack: EmbeddedDefault, servers: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """`http:DELETE <local ARM>/admin/faults` once wiped the emulator's fault rules and showed ✓. The worker's request
    policy refuses it (a method other than GET/HEAD, and the worker's own ARM endpoint) before sending anything; the
    stage fails as the declaration's fault (LOGIC, exit 1), which is never a reason to roll back."""
    from local_arm.admin import AdminClient, Fault

    assert stack.instance is not None and stack.instance.arm_endpoint and stack.instance.arm_ca_file
    admin = AdminClient(stack.instance.arm_endpoint, ca_file=stack.instance.arm_ca_file)
    first = run_cli(deploy_argv("e2e-policy"), capsys)
    assert first.code == ExitCode.OK, first.err
    web = servers.http()
    admin.add_faults(Fault.error(503, path="/never-requested-by-anyone"))
    try:
        result = run_cli(
            deploy_argv(
                "e2e-policy",
                "--health-check", f"http:DELETE {stack.instance.arm_endpoint}/admin/faults name=wipe",
                "--health-check", f"http:POST http://127.0.0.1:{web}/ name=post",
                "--health-window", "5s", "--rollback-on-failure",
            ),
            capsys,
        )  # fmt: skip
        rules = admin.faults()["rules"]
    finally:
        admin.clear_faults()
    assert [r["path"] for r in rules] == ["/never-requested-by-anyone"], rules  # the DELETE never reached it
    assert servers.connections == []  # nor did the POST reach its listener
    assert result.code == ExitCode.LOGIC_FAILURE, result.err
    shown = result.out + result.err
    assert "HealthDeclarationFailed" in shown and "refused by the worker's request policy" in shown
    assert "the method DELETE is not allowed" in shown
    assert "[ROLLED_BACK]" not in result.err and "rolled back" not in result.out
    # The decision is in the audit record (from history): what was refused and why.
    audit_json = next(
        line.split("Audit record: ")[1].split(", ")[0] for line in result.err.splitlines() if "Audit record: " in line
    )
    checks = {c["name"]: c for c in json.loads(Path(audit_json).read_text())["health_checks"]["checks"]}
    assert checks["wipe"]["request_policy"].startswith("refused: the method DELETE is not allowed")
    assert checks["post"]["declaration_error"] is True
    replay_history(stack, started_workflow(result.err))  # the health-declaration-logic patch marker lines up


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("http:GET htp//x 'header=Authorization: Bearer {token}'", "the URL 'htp//x' is malformed"),
        ("http:GET https://h/ 'header=Authorization: Bearer {token}' tls=maybe", "write tls=on or tls=off"),
        ("http:GET https://h/ 'header=X-Key: {{outputs.nope}}{token}'", "uses the output 'nope'"),
        ("http:GET https://h/ 'header=X-Key: {{{token}'", "the value of header 'X-Key' has a malformed placeholder"),
        ("http:GET https://ops:{token}@h/health", "holds credentials (user:password@), which a health check does"),
        ("http:GET 'https://h/health?sig={token}' 'header=Authorization: x", "No closing quotation"),
    ],
)
def test_a_refused_declaration_never_prints_a_secret(
    flag: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Header values, URL credentials and query strings are secrets: a message about a bad declaration names the
    header and the problem, never the value; credentials in a URL are refused (not silently dropped)."""
    token = "tok3n-" + "x7Q9" * 6
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "no-stack-here"))
    result = run_cli(deploy_argv("e2e-health-secret", "--health-check", flag.format(token=token)), capsys)
    assert result.code == ExitCode.USAGE, result.err
    assert expected in result.err, result.err
    assert token not in result.err + result.out and "Traceback" not in result.err


@pytest.mark.usefixtures("on_stack")
def test_one_failed_provider_read_in_an_arm_check_is_retried_not_remembered(
    stack: EmbeddedDefault, capsys: pytest.CaptureFixture[str]
) -> None:
    """One 503 on the provider read (the arm check's api-version lookup) once counted as "no api-version known" for
    the whole window: the check never read the resource, the stage failed and --rollback-on-failure rolled a healthy
    deployment back. A failed lookup is a failed attempt; the next attempt reads the provider again and passes."""
    from local_arm.admin import AdminClient, Fault

    assert stack.instance is not None and stack.instance.arm_endpoint and stack.instance.arm_ca_file
    admin = AdminClient(stack.instance.arm_endpoint, ca_file=stack.instance.arm_ca_file)
    first = run_cli(deploy_argv("e2e-provider-503"), capsys)
    assert first.code == ExitCode.OK, first.err
    admin.add_faults(Fault.error(503, code="ServiceUnavailable", operation="Providers_Get", count=1))
    try:
        result = run_cli(
            deploy_argv(
                "e2e-provider-503", "--health-check", "arm name=resources", "--health-window", "8s",
                "--rollback-on-failure", "--output", "json",
            ),
            capsys,
        )  # fmt: skip
        injected = admin.faults()["rules"]
    finally:
        admin.clear_faults()
    assert result.code == ExitCode.OK, result.err
    doc = json.loads(result.out)
    [check] = doc["health_checks"]["checks"]
    assert check["state"] == "passed" and check["attempts"] == 2, check
    assert "could not be read (503 Service Unavailable); trying again" in check["last_error"]
    assert doc["rollback"] is None
    assert injected, "the fault rule was not in place"


@pytest.mark.usefixtures("on_stack")
def test_the_window_is_the_whole_stages(
    stack: EmbeddedDefault, servers: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--health-window 12s` once took the resource-state wait's 12 s and then the declared checks' own 12 s. One
    window for the stage: a site that stays Updating for its first four reads (about 8 s at a 2 s interval) leaves
    the never-passing check the rest, so VERIFYING_HEALTH ends within the window plus one attempt's timeout."""
    from datetime import datetime

    from local_arm.admin import AdminClient, Fault

    assert stack.instance is not None and stack.instance.arm_endpoint and stack.instance.arm_ca_file
    admin = AdminClient(stack.instance.arm_endpoint, ca_file=stack.instance.arm_ca_file)
    dead = servers.reserve_port().getsockname()[1]
    admin.add_faults(Fault.stays_updating(resource_type="Microsoft.Web/sites", count=4))
    try:
        result = run_cli(
            deploy_argv(
                "e2e-one-window", "--health-check", f"tcp:127.0.0.1:{dead} name=db",
                "--health-window", "12s", "--health-interval", "2s", "--output", "json",
            ),
            capsys,
        )  # fmt: skip
    finally:
        admin.clear_faults()
    assert result.code == ExitCode.ENVIRONMENTAL, result.err
    doc = json.loads(result.out)
    stages = [(t["stage"], datetime.fromisoformat(t["at"])) for t in doc["transitions"]]
    began = next(at for stage, at in stages if stage == "VERIFYING_HEALTH")
    ended = next(at for stage, at in stages if stage == "FAILED")
    took = (ended - began).total_seconds()
    assert took <= 12 + 1 + 2, f"VERIFYING_HEALTH took {took:.1f} s for a 12 s window"  # window + timeout + margin
    [check] = doc["health_checks"]["checks"]
    assert check["state"] == "failed" and check["elapsed_seconds"] > 8  # counted from the stage's start


def outputs_template(tmp_path: Path) -> Path:
    """A storage account, and outputs as a database's would be: a literal object (known before deploying), the
    account as ARM returns it (known only after), an int."""
    import uuid

    account = "stlate" + uuid.uuid4().hex[:12]
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-05-01",
                "name": account,
                "location": "eastus",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
            }
        ],
        "outputs": {
            "db": {"type": "object", "value": {"host": "127.0.0.1", "name": "orders"}},
            "account": {
                "type": "object",
                "value": f"[reference(resourceId('Microsoft.Storage/storageAccounts', '{account}'), '2023-05-01', "
                "'Full')]",
            },
            "port": {"type": "int", "value": 5432},
        },
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(template))
    return path


def outputs_argv(template: Path, rg: str, *extra: str) -> list[str]:
    return [
        "deploy", "--local", "-g", rg, "-l", "eastus", "-t", str(template),
        "--health-timeout", "1s", "--health-interval", "0.3s", *extra,
    ]  # fmt: skip


def test_what_the_template_says_about_outputs_is_checked_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tcp:{outputs.db}:{outputs.port}` with `db` an object output was accepted offline and failed only after
    deploying. The template's declared output types say it cannot work: exit 2, nothing started."""
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "no-stack-here"))
    template = outputs_template(tmp_path)
    result = run_cli(outputs_argv(template, "e2e-outputs", "--health-check", "tcp:{outputs.db}:{outputs.port}"), capsys)
    assert result.code == ExitCode.USAGE, result.err
    assert "uses the output 'db' as a whole, but it is declared as object" in result.err
    assert "{outputs.db.field}" in result.err and "Traceback" not in result.err
    # The engine knows the literal object's fields before deploying: a field it lacks is refused now too.
    missing = run_cli(outputs_argv(template, "e2e-outputs", "--health-check", "tcp:{outputs.db.hostname}:5432"), capsys)
    assert missing.code == ExitCode.USAGE, missing.err
    assert "the output outputs.db has no field 'hostname' (it has: host, name)" in missing.err


@pytest.mark.usefixtures("on_stack")
def test_a_declaration_that_fails_only_after_deploying_is_logic_and_never_rolls_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A field the object output — the account as ARM returns it — turns out not to have is only known after
    deploying: the check fails with zero attempts as a fault of its declaration — LOGIC (exit 1),
    HealthDeclarationFailed, no rollback — not as an environmental failure (exit 3) that rolls a healthy deployment
    back."""
    template = outputs_template(tmp_path)
    first = run_cli(outputs_argv(template, "e2e-late-declaration"), capsys)
    assert first.code == ExitCode.OK, first.err
    result = run_cli(
        outputs_argv(
            template, "e2e-late-declaration", "--health-check", "tcp:{outputs.account.hostname}:{outputs.port} name=db",
            "--rollback-on-failure", "--output", "json",
        ),
        capsys,
    )  # fmt: skip
    assert result.code == ExitCode.LOGIC_FAILURE, result.err
    doc = json.loads(result.out)
    assert doc["failure"]["code"] == "HealthDeclarationFailed" and doc["failure"]["failure_class"] == "LOGIC"
    [check] = doc["health_checks"]["checks"]
    assert check["attempts"] == 0 and check["declaration_error"]
    assert "the output outputs.account has no field 'hostname' (it has: " in check["last_error"]
    assert doc["rollback"] is None and doc["outcome"] == "LOGIC_FAILURE"


@pytest.mark.usefixtures("on_stack")
def test_a_large_ca_bundle_is_stored_once_not_copied_into_every_check(
    servers: ServerThread, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """12 checks with a 220 KB CA bundle once made a request over Temporal's payload limit ("Blob data size exceeds
    limit", exit 3). The bundle goes to the content store once; every check verifies TLS with it."""
    other = pki.other_ca_file.read_text()
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(pki.ca_file.read_text() + other * (220_000 // len(other)))
    assert bundle.stat().st_size > 200_000
    port = servers.http(tls=pki.server_context)
    flags = [
        f for n in range(12) for f in ("--health-check", f"http:GET https://127.0.0.1:{port}/ ca={bundle} name=c{n}")
    ]
    result = run_cli(deploy_argv("e2e-ca-bundle", *flags, "--output", "json"), capsys)
    assert result.code == ExitCode.OK, result.err[-2000:]
    checks = json.loads(result.out)["health_checks"]["checks"]
    assert len(checks) == 12 and all(c["state"] == "passed" for c in checks)


@pytest.mark.usefixtures("on_stack")
def test_a_request_too_large_to_start_is_refused_naming_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each declaration is bounded, but 100 checks with 12 KiB of headers each still make a request over what a
    workflow input may take: refused before starting, naming the health checks (exit 2), not exit 3 from the server."""
    checks = [
        {"kind": "http", "name": f"c{n}", "url": "https://h.example/", "headers": {"A": "a" * 6000, "B": "b" * 6000}}
        for n in range(66)
    ]
    health = tmp_path / "big.health.json"
    health.write_text(json.dumps({"checks": checks}))  # under the 1 MB a health file may have
    flags = [
        arg
        for n in range(66, 100)
        for arg in (
            "--health-check",
            f"http:GET https://h.example/ name=c{n} 'header=A: {'a' * 6000}' 'header=B: {'b' * 6000}'",
        )
    ]
    result = run_cli(deploy_argv("e2e-huge", "--health-file", str(health), *flags), capsys)
    assert result.code == ExitCode.USAGE, result.err[-2000:]
    assert "the health checks (--health-check / the health file) make up" in result.err
    assert "nothing was started" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--health-interval", "1ms"], "--health-interval '1ms' is shorter than the minimum of 0.2 s"),
        (["--health-window", "24h"], "--health-window '24h' is longer than the maximum of 1 h"),
        (["--health-check", "http:GET https://h.example/ contains=" + "x" * 1_000_000], "one flag declares one check"),
        (["--health-check", "http:GET https://h.example/ contains=" + "x" * 9000], "body_contains is 8 KiB; at most"),
    ],
)
def test_timing_and_sizes_have_bounds(
    extra: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--health-interval 1ms` once made 6,241 requests in 3 s from 5 checks; a 1 MB flag took minutes to read."""
    import time

    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "no-stack-here"))
    started = time.monotonic()
    result = run_cli(deploy_argv("e2e-bounds", *extra), capsys)
    assert result.code == ExitCode.USAGE, result.err[-2000:]
    assert expected in result.err and "Traceback" not in result.err
    assert time.monotonic() - started < 5  # refused, not worked through (a 1 MB flag took minutes)


@pytest.mark.usefixtures("on_stack")
def test_an_arm_check_on_a_missing_resource_fails_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    first = run_cli(deploy_argv("e2e-arm-missing", "--output", "json"), capsys)
    assert first.code == ExitCode.OK, first.err
    group = json.loads(first.out)["resources"][0].split("/providers/")[0]
    missing = f"{group}/providers/Microsoft.Storage/storageAccounts/stnosuchaccount1"
    result = run_cli(
        deploy_argv("e2e-arm-missing", "--health-check", f"arm:{missing} name=gone", "--health-window", "60s",
                    "--output", "json"),
        capsys,
    )  # fmt: skip
    assert result.code == ExitCode.ENVIRONMENTAL, result.err
    [check] = json.loads(result.out)["health_checks"]["checks"]
    assert check["attempts"] == 1 and check["elapsed_seconds"] < 20, check  # not the 60 s window
    assert check["last_error"] == f"{missing} does not exist (ARM answered 404)"


def test_an_arm_check_needs_a_resource_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "no-stack-here"))
    result = run_cli(deploy_argv("e2e-arm-bad", "--health-check", "arm:not-a-resource-id"), capsys)
    assert result.code == ExitCode.USAGE, result.err
    assert "'not-a-resource-id' is not an ARM resource id" in result.err and "Traceback" not in result.err


@pytest.mark.usefixtures("on_stack")
def test_a_person_watching_sees_each_wait_and_retry_once(
    stack: EmbeddedDefault, servers: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `deploy` prints while VERIFYING_HEALTH and a rollback wait: the Resource Health "Unknown" note, what the
    resource-state wait waits for (once per change, not every poll), the table of a failing check only when a check
    changes (not every heartbeat), the rollback's plan though it deletes nothing, the rollback's own retried stage
    (labelled, its attempts kept apart from the deployment's in `status`), and last the rollback's table."""
    from local_arm.admin import AdminClient, Fault

    assert stack.instance is not None and stack.instance.arm_endpoint and stack.instance.arm_ca_file
    admin = AdminClient(stack.instance.arm_endpoint, ca_file=stack.instance.arm_ca_file)
    admin.add_faults(Fault.availability("Unknown", resource_type="Microsoft.Storage/storageAccounts"))
    try:
        good = run_cli(deploy_argv("e2e-watching"), capsys)
    finally:
        admin.clear_faults()
    assert good.code == ExitCode.OK, good.err
    assert "[VERIFYING_HEALTH] note: " in good.err and "Resource Health reports Unknown (tolerated)" in good.err

    dead = servers.reserve_port().getsockname()[1]
    admin.add_faults(
        Fault.stays_updating(resource_type="Microsoft.Web/sites", count=6),
        # the failed deployment's PUT passes; the rollback's first PUT gets a 503 and is retried
        Fault.error(503, code="ServiceUnavailable", operation="Deployments_CreateOrUpdate", skip=1, count=1),
    )
    try:
        result = run_cli(
            deploy_argv(
                "e2e-watching", "--health-check", f"tcp:127.0.0.1:{dead} name=db", "--health-window", "25s",
                "--health-interval", "0.5s", "--rollback-on-failure",
            ),
            capsys,
        )  # fmt: skip
    finally:
        admin.clear_faults()
    assert result.code == ExitCode.ROLLED_BACK, result.err
    err = result.err
    waits = [line for line in err.splitlines() if "[VERIFYING_HEALTH] waiting for 1 resource(s)" in line]
    assert len(waits) == 1 and "Microsoft.Web/sites/" in waits[0] and "Updating" in waits[0], err
    failing_tables = err.count("db     pending")  # the failing check's live frames (not a frame per heartbeat)
    assert 1 <= failing_tables <= 3, err
    assert "Rollback plan (the last good deployment over the current state):" in err
    assert "[rollback DEPLOYING] attempt 1 failed, ENVIRONMENTAL" in err, err
    tables = err.split("  CHECK  STATE")
    assert "✗ db" not in tables[-1], "the last table drawn is the original failing one, not the rollback's"
    workflow_id = started_workflow(err)
    replay_history(stack, workflow_id)
    status = run_cli(["status", workflow_id, "--local"], capsys)
    assert "    DEPLOYING: 1 attempt(s)" in status.out, status.out
    assert "    rollback DEPLOYING: 2 attempt(s)" in status.out, status.out


BICEP_OUTPUTS = """// output commented string = 'x'
/* output blocked string = 'y'
*/
var notes = '''
output inString string = 'z'
'''
@secure()
@description('the key')
output key string = 'k'
output site object = { host: 'h' }
"""


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("http:GET https://h.example/?k={outputs.key}", "uses the output 'key', which is declared securestring"),
        ("tcp:{outputs.inString}:80", "uses the output 'inString', which the template does not declare"),
        ("tcp:{outputs.commented}:80", "uses the output 'commented', which the template does not declare"),
        ("tcp:{outputs.blocked}:80", "It declares: key, site."),
    ],
)
def test_bicep_outputs_are_read_as_bicep_reads_them(
    flag: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`@secure()` on the line above an output makes it secure; outputs inside comments or strings are not outputs."""
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "no-stack-here"))
    template = tmp_path / "main.bicep"
    template.write_text(BICEP_OUTPUTS)
    result = run_cli(
        ["deploy", "--local", "-g", "rg-bicep-outputs", "-l", "eastus", "-t", str(template), "--health-check", flag],
        capsys,
    )
    assert result.code == ExitCode.USAGE, result.err
    assert expected in result.err and "Traceback" not in result.err
