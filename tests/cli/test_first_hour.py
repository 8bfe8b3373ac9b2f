"""A new user's first hour, through the real CLI process (``python starter.py ...``) on the embedded default (a
real Temporal dev server, the local ARM over HTTPS, a worker): encrypted histories read without keys, pipes that
close early, colour and timings, the --wait message, lifecycle commands, secure values without shell history,
wording, and the audit's deletions."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.embedded import LOCAL_SUBSCRIPTION, EmbeddedDefault
from client.exit_codes import ExitCode
from harness.secret_template import random_token, secret_template
from tests.support.cli_env import EXAMPLE, REPO
from tests.support.stderr_watch import StderrWatcher

STARTER = str(REPO / "starter.py")
TEMPLATE = str(EXAMPLE / "azuredeploy.json")
WITHOUT_WEB = str(EXAMPLE / "azuredeploy.without-web.json")
PARAMS = str(EXAMPLE / "azuredeploy.parameters.json")
KEYS = "k1=" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    # The worker encrypts every payload (keys configured); each CLI call below chooses whether it has the keys.
    embedded = EmbeddedDefault(
        tmp_path_factory.mktemp("first-hour"),
        worker_env={"ORCHESTRATOR_CODEC_KEYS": KEYS, "ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS": "600"},
    )
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


def env_for(stack: EmbeddedDefault, *, keys: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ORCHESTRATOR_CODEC_KEYS", "NO_COLOR", "FORCE_COLOR")}
    env["ORCHESTRATOR_STATE_DIR"] = str(stack.state_dir)
    if keys:
        env["ORCHESTRATOR_CODEC_KEYS"] = KEYS
    env.update(extra)
    return env


def cli(
    stack: EmbeddedDefault, *argv: str, keys: bool = True, stdin: str | None = None, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, STARTER, *argv],
        cwd=REPO,
        env=env_for(stack, keys=keys, **env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def deploy(stack: EmbeddedDefault, rg: str, *extra: str, template: str = TEMPLATE, **env: str) -> Any:
    return cli(stack, "deploy", "--local", "-g", rg, "-l", "eastus", "-t", template, "-p", PARAMS, *extra, **env)


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    for text in (done.stdout, done.stderr):
        assert "Traceback" not in text and "Fatal Python error" not in text, text


@pytest.fixture(scope="module")
def encrypted_deployment(stack: EmbeddedDefault) -> str:
    done = deploy(stack, "fh-encrypted", "--skip-health", "--output", "json")
    assert done.returncode == 0, done.stderr
    workflow_id: str = json.loads(done.stdout)["workflow_id"]
    return workflow_id


# ------------------------------------------------------------------------------------------------ encrypted history


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--local"],
        ["status", "{id}", "--local"],
        ["audit", "{id}", "--local", "--audit-format", "none"],
    ],
    ids=["list", "status", "audit"],
)
def test_reading_an_encrypted_history_without_keys_names_the_configuration(
    stack: EmbeddedDefault, encrypted_deployment: str, argv: list[str]
) -> None:
    done = cli(stack, *[a.format(id=encrypted_deployment) for a in argv], keys=False)
    no_traceback(done)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "encrypted" in done.stderr and "ORCHESTRATOR_CODEC_KEYS" in done.stderr, done.stderr
    assert "no worker answered" not in done.stdout
    # with the keys the same command works
    assert cli(stack, *[a.format(id=encrypted_deployment) for a in argv]).returncode == 0


# ------------------------------------------------------------------------------------------------ pipes


@pytest.mark.parametrize(
    "argv", [["status", "{id}", "--local", "--plan"], ["list", "--local"], ["--help"]], ids=["status", "list", "help"]
)
def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(
    stack: EmbeddedDefault, encrypted_deployment: str, argv: list[str]
) -> None:
    # `true` exits without reading: every write of the command meets a closed pipe (what `| head -1` does once it
    # has its line), deterministically.
    command = " ".join([sys.executable, STARTER, *[a.format(id=encrypted_deployment) for a in argv]])
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | true"],
        cwd=REPO,
        env=env_for(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    no_traceback(done)
    assert "BrokenPipeError" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------------ helpers


def popen(stack: EmbeddedDefault, *argv: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, STARTER, *argv],
        cwd=REPO,
        env=env_for(stack, **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def deploy_argv(rg: str, *extra: str, template: str = TEMPLATE) -> list[str]:
    return ["deploy", "--local", "-g", rg, "-l", "eastus", "-t", template, "-p", PARAMS, "--skip-health", *extra]


def wait_for_stage(stack: EmbeddedDefault, workflow_id: str, stage: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        done = cli(stack, "status", workflow_id, "--local", "--output", "json")
        if done.returncode == 0:
            doc = json.loads(done.stdout)
            if doc.get("stage") == stage:
                return doc
        time.sleep(0.5)
    raise AssertionError(f"{workflow_id} never reached {stage}; last status {doc}")


def workflow_id(rg: str) -> str:
    return f"deploy-{LOCAL_SUBSCRIPTION}-{rg}"


def waiting_removal(stack: EmbeddedDefault, rg: str, *extra: str) -> tuple[subprocess.Popen[str], StderrWatcher]:
    """The web app deployed, then a Complete-mode deployment without it: it waits for approval to delete it."""
    first = cli(stack, *deploy_argv(rg))
    assert first.returncode == 0, first.stderr
    proc = popen(stack, *deploy_argv(rg, "--mode", "Complete", *extra, template=WITHOUT_WEB))
    watcher = StderrWatcher(proc)
    watcher.wait_for("[AWAITING_CONFIRMATION]", timeout=120)
    return proc, watcher


def run_on_pty(argv: list[str], env: dict[str, str], answers: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``starter.py ARGV`` with stdin, stdout and stderr on a pseudo-terminal (as in a user's shell); answer
    prompts that appear (``answers``: prompt fragment → line to type). Returns the exit code and all it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, STARTER, *argv], cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    seen = b""
    pending = dict(answers or {})
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                seen += chunk
                for fragment in list(pending):
                    if fragment.encode() in seen:
                        os.write(master, pending.pop(fragment).encode() + b"\n")
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, seen.decode(errors="replace")


# ------------------------------------------------------------------------------------------------ colour, timings


def test_colour_on_a_terminal_none_in_a_pipe_or_with_no_color(stack: EmbeddedDefault) -> None:
    code, shown = run_on_pty(deploy_argv("fh-colour"), env_for(stack))
    assert code == 0, shown
    assert "\x1b[32m+ Microsoft.Web/sites/" in shown or "\x1b[32m+" in shown, shown  # Create in green
    assert "\x1b[36m[PLANNING]" in shown and "\x1b[32m[COMPLETED]" in shown, shown
    # each stage line carries the time since the request, and deploy ends with the total
    assert re.search(r"\[DEPLOYING\].*\+\d+\.\d s", shown), shown
    assert re.search(r"took \d+\.\d s in total", shown), shown

    piped = cli(stack, *deploy_argv("fh-colour"))
    assert piped.returncode == 0
    assert "\x1b[" not in piped.stdout + piped.stderr
    assert "= Microsoft.Web/sites/" in piped.stdout  # the same plan, plain
    assert re.search(r"\[COMPLETED\] deployment succeeded \+\d+\.\d s", piped.stderr), piped.stderr

    for off in ({"NO_COLOR": "1"}, {}):
        argv = deploy_argv("fh-colour") + ([] if off else ["--no-color"])
        code, shown = run_on_pty(argv, env_for(stack, **off))
        assert code == 0, shown
        assert "\x1b[" not in shown, shown


# ------------------------------------------------------------------------------------------------ --wait, cancel


def test_wait_names_the_blocker_and_its_approval_then_cancel_frees_the_group(stack: EmbeddedDefault) -> None:
    rg = "fh-wait"
    blocker, _blocker_err = waiting_removal(stack, rg)
    try:
        queued = popen(stack, *deploy_argv(rg, "--wait"))
        queued_err = StderrWatcher(queued)
        line = queued_err.wait_for("Waiting for deployment", timeout=60)
        assert workflow_id(rg) in line and "AWAITING_CONFIRMATION" in line, line
        assert "It waits for approval of 1 deletion(s)" in queued_err.wait_for("It waits for approval")
        queued_err.wait_for(f"python starter.py approve {workflow_id(rg)} --local")

        cancelled = cli(stack, "cancel", workflow_id(rg), "--local")
        assert cancelled.returncode == 0, cancelled.stderr
        assert "ended: CANCELLED" in cancelled.stdout, cancelled.stdout
        assert blocker.wait(timeout=60) == ExitCode.ENVIRONMENTAL  # the follower reports the cancellation
        assert queued.wait(timeout=180) == 0, queued_err.text()
        # cancel of something that is not running is a usage error that says why
        again = cli(stack, "cancel", workflow_id(rg), "--local")
        assert again.returncode == ExitCode.USAGE and "not running" in again.stderr
        unknown = cli(stack, "cancel", "deploy-nope", "--local")
        assert unknown.returncode == ExitCode.USAGE and "no deployment workflow" in unknown.stderr
    finally:
        for proc in (blocker,):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# ------------------------------------------------------------------------------------------------ follow, timeout


def test_follow_reattaches_and_ends_with_the_deployments_exit_code(stack: EmbeddedDefault) -> None:
    rg = "fh-follow"
    proc, _err = waiting_removal(stack, rg, "--confirmation-timeout", "6s")
    proc.send_signal(signal.SIGINT)  # Ctrl-C: stops following, not the deployment
    proc.wait(timeout=30)
    followed = cli(stack, "follow", workflow_id(rg), "--local")
    no_traceback(followed)
    assert followed.returncode == ExitCode.REJECTED, followed.stderr + followed.stdout
    assert "was not confirmed in time" in followed.stdout
    assert "no approve/reject signal within 6 s" in followed.stdout + followed.stderr
    bad = cli(stack, *deploy_argv(rg, "--confirmation-timeout", "soon"))
    assert bad.returncode == ExitCode.USAGE and "--confirmation-timeout" in bad.stderr


# ------------------------------------------------------------------------------------------------ secure values


@pytest.fixture(scope="module")
def secret_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secret")
    (folder / "secret.json").write_text(json.dumps(secret_template("fhsecret01")))
    return folder / "secret.json"


def test_secure_value_from_the_environment_stdin_or_a_hidden_prompt(stack: EmbeddedDefault, secret_files: Path) -> None:
    base = ["deploy", "--local", "-g", "fh-secret", "-l", "eastus", "-t", str(secret_files), "--skip-health"]
    token = random_token()
    from_env = cli(stack, *base, "--secure-param-env", "adminPassword=FH_PASSWORD", FH_PASSWORD=token)
    assert from_env.returncode == 0, from_env.stderr
    assert token not in from_env.stdout + from_env.stderr

    token = random_token()
    from_stdin = cli(stack, *base, "--secure-param-stdin", "adminPassword", stdin=token + "\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert token not in from_stdin.stdout + from_stdin.stderr

    token = random_token()
    code, shown = run_on_pty(base, env_for(stack), {"parameter 'adminPassword' (input hidden): ": token})
    assert code == 0, shown
    assert "Value for securestring parameter 'adminPassword' (input hidden)" in shown
    assert token not in shown  # never echoed

    missing = cli(stack, *base, "--secure-param-env", "adminPassword=FH_UNSET")
    assert missing.returncode == ExitCode.USAGE and "FH_UNSET is not set" in missing.stderr
    assert count_runs(stack, "fh-secret") == 3  # the refusal started nothing


def count_runs(stack: EmbeddedDefault, rg: str) -> int:
    done = cli(stack, "list", "--local", "-g", rg, "--output", "json", "--limit", "100")
    assert done.returncode == 0, done.stderr
    return len(json.loads(done.stdout))


# ------------------------------------------------------------------------------------------------ wording, audit


def test_wording_rejection_list_columns_help(stack: EmbeddedDefault) -> None:
    rg = "fh-words"
    proc, err = waiting_removal(stack, rg)
    rejected = cli(stack, "reject", workflow_id(rg), "--local", "--reason", "not during business hours")
    assert rejected.returncode == 0, rejected.stderr
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.wait(timeout=60) == ExitCode.REJECTED
    text = err.text() + out
    assert "not during business hours" in text
    assert re.search(r"rejected by (\S+): not during business hours \(by \1\)", text) is None, text

    listed = cli(stack, "list", "--local", "-g", rg)
    header, *rows = listed.stdout.splitlines()
    assert "RUN ID" in header and "OUTCOME" in header
    assert "REJECTED" in rows[0] and "SUCCEEDED" in rows[1], listed.stdout
    rows_json = json.loads(cli(stack, "list", "--local", "-g", rg, "--output", "json").stdout)
    assert [r["outcome"] for r in rows_json] == ["REJECTED", "SUCCEEDED"]
    assert rows_json[0]["run_id"] in rows[0]

    assert "5 failed and rolled back" in " ".join(cli(stack, "deploy", "--help").stdout.split())  # as wrapped
    assert "local-arm" in cli(stack, "--help").stdout


def test_audit_lists_the_deletions_in_text_and_sqlite(stack: EmbeddedDefault, tmp_path: Path) -> None:
    rg = "fh-audit"
    proc, _err = waiting_removal(stack, rg, "--audit-format", "none")
    approved = cli(stack, "approve", workflow_id(rg), "--local", "--reason", "web app retired")
    assert approved.returncode == 0, approved.stderr
    assert proc.wait(timeout=120) == 0
    shown = cli(stack, "audit", workflow_id(rg), "--local", "--audit-dir", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    deleted = [line for line in shown.stdout.splitlines() if line.strip().startswith("- Delete")]
    assert len(deleted) == 1 and "/providers/Microsoft.Web/sites/" in deleted[0], shown.stdout
    assert re.search(r"approved\s+by .*1 deletion\(s\):\n\s+- /subscriptions/.*/sites/", shown.stdout.lower())
    with sqlite3.connect(tmp_path / "audit.db") as db:
        rows = db.execute(
            "SELECT resource_type, health_status, change_type FROM deployment_resources WHERE change_type = 'Delete'"
        ).fetchall()
    assert rows == [("Microsoft.Web/sites", "Deleted", "Delete")]


def test_the_second_demo_does_not_ask_to_run_it_again(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    argv = [sys.executable, STARTER, "demo", "--state-dir", str(tmp_path / "state")]
    first, second = (
        subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240) for _ in range(2)
    )
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "Run it again (`make demo`)" in first.stdout
    assert "Resource changes: 4 no change." in second.stdout
    assert "Run it again" not in second.stdout and "the plan showed NoChange" in second.stdout


def test_cancel_while_deploying_cancels_the_arm_deployment(stack: EmbeddedDefault) -> None:
    from local_arm.admin import AdminClient, Fault

    rg = "fh-cancel"
    assert stack.instance is not None and stack.instance.arm_endpoint and stack.instance.arm_ca_file
    admin = AdminClient(stack.instance.arm_endpoint, ca_file=stack.instance.arm_ca_file)
    admin.add_faults(Fault.stuck_lro(path=f"/resourceGroups/{rg}/"))
    proc = popen(stack, *deploy_argv(rg))
    err = StderrWatcher(proc)
    err.wait_for("[DEPLOYING]", timeout=120)
    status = wait_for_stage(stack, workflow_id(rg), "DEPLOYING")
    cancelled = cli(stack, "cancel", workflow_id(rg), "--local")
    no_traceback(cancelled)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "ended: CANCELLED at DEPLOYING" in cancelled.stdout, cancelled.stdout
    assert f"the ARM deployment {status['deployment_name']} was cancelled with it" in cancelled.stdout
    assert admin.counters().count(operation="Deployments_Cancel", deployment=status["deployment_name"]) >= 1
    assert proc.wait(timeout=60) == ExitCode.ENVIRONMENTAL  # the follower reports the cancellation (exit 3)
