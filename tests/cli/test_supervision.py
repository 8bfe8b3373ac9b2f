"""``starter.py dev`` supervises its children as a service manager would: a worker or local ARM killed with SIGKILL
is started again (same ports, same state) while Temporal keeps running, a deployment in flight completes, the
restart is reported on the console, and the crashed run's log is kept (appended to, never truncated).

Everything runs through the real path: ``starter.py dev`` and ``starter.py deploy --local`` as processes, a real
Temporal dev server, the local ARM over HTTPS (a ``slow_lro`` fault keeps the deployment in DEPLOYING long enough
to kill something under it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.embedded import free_port, rotate_log
from client.exit_codes import ExitCode
from local_arm.admin import AdminClient, Fault
from tests.support.cli_env import EXAMPLE, REPO
from tests.support.stderr_watch import StderrWatcher

STARTER = str(REPO / "starter.py")


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_STATE_DIR"}
    env["ORCHESTRATOR_STATE_DIR"] = str(state)
    # A killed worker's activity is handed to its successor once its heartbeat is overdue (default 30 s).
    env["ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS"] = "3"
    return env


def _start_dev(state: Path) -> tuple[subprocess.Popen[str], StderrWatcher, str]:
    port, ui_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, STARTER, "dev", "--state-dir", str(state), "--port", str(port), "--ui-port", str(ui_port)],
        cwd=REPO,
        env=_env(state),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = StderrWatcher(proc)
    assert proc.stdout is not None
    return proc, watcher, proc.stdout.readline()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], StderrWatcher, Path]]:
    state = tmp_path / "dev-state"
    # Explicit free ports (a taken one is an error then): another process on this shared machine may take one
    # between the probe and the bind, so a start that fails that way is tried again on new ports.
    for _attempt in range(3):
        proc, watcher, header = _start_dev(state)
        if header.startswith("Embedded default running"):
            break
        proc.wait(timeout=60)
    assert header.startswith("Embedded default running"), header + watcher.text()
    try:
        yield proc, watcher, state
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _instance(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "dev.json").read_text())
    return data


def _deploy(state: Path, rg: str) -> tuple[subprocess.Popen[str], StderrWatcher]:
    proc = subprocess.Popen(
        [
            sys.executable,
            STARTER,
            "deploy",
            "--local",
            "-g",
            rg,
            "-l",
            "eastus",
            "-t",
            str(EXAMPLE / "azuredeploy.json"),
            "-p",
            str(EXAMPLE / "azuredeploy.parameters.json"),
            "--skip-health",
        ],
        cwd=REPO,
        env=_env(state),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, StderrWatcher(proc)


def _finish(proc: subprocess.Popen[str], timeout: float = 180) -> str:
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(timeout=timeout)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _kill_during_deploying(state: Path, rg: str, child: str, dev_err: StderrWatcher) -> tuple[int, str, str]:
    """Start a deployment whose ARM deployment takes 8 s, SIGKILL ``child`` while it is DEPLOYING, and return the
    deployment's exit code, stdout and stderr."""
    instance = _instance(state)
    admin = AdminClient(instance["arm_endpoint"], ca_file=instance["arm_ca_file"])
    admin.set_faults(Fault.slow_lro(8, path=f"/resourceGroups/{rg}/"))
    proc, err = _deploy(state, rg)
    err.wait_for("[DEPLOYING]", timeout=120)
    os.kill(instance["pids"][child], signal.SIGKILL)
    dev_err.wait_for(f"the {child} (pid {instance['pids'][child]}) was killed by signal 9", timeout=30)
    dev_err.wait_for(f"restarted the {child} (pid", timeout=30)
    dev_err.wait_for(f"the {child} is serving again", timeout=60)
    out = _finish(proc)
    return proc.returncode, out, err.text()


def test_a_killed_worker_is_restarted_and_the_deployment_in_flight_completes(dev) -> None:
    proc, dev_err, state = dev
    before = _instance(state)
    code, out, err = _kill_during_deploying(state, "sup-worker-rg", "worker", dev_err)
    assert code == ExitCode.OK, out + err
    assert "Deployment succeeded" in out
    assert proc.poll() is None, "dev must keep running"
    after = _instance(state)
    # Temporal and the local ARM kept running; the worker is a new process, recorded in dev.json
    assert after["pids"]["temporal"] == before["pids"]["temporal"]
    assert after["pids"]["local-arm"] == before["pids"]["local-arm"]
    assert after["pids"]["worker"] != before["pids"]["worker"]
    os.kill(after["pids"]["worker"], 0)
    # the crashed worker's log is kept: the file holds both runs, each marked
    log = (state / "worker.log").read_text()
    assert log.count("----- worker starting at") == 2
    assert log.count("worker on task queue") == 2


def test_a_killed_local_arm_is_restarted_on_its_port_and_the_deployment_completes(dev) -> None:
    proc, dev_err, state = dev
    before = _instance(state)
    code, out, err = _kill_during_deploying(state, "sup-arm-rg", "local-arm", dev_err)
    assert code == ExitCode.OK, out + err
    assert "Deployment succeeded" in out
    assert proc.poll() is None
    after = _instance(state)
    assert after["pids"]["temporal"] == before["pids"]["temporal"]
    assert after["pids"]["worker"] == before["pids"]["worker"]
    assert after["pids"]["local-arm"] != before["pids"]["local-arm"]
    # the same endpoint answers (the worker was never told about another one)
    assert AdminClient(after["arm_endpoint"], ca_file=after["arm_ca_file"]).health()["status"] == "ok"
    assert (state / "local-arm.log").read_text().count("----- local-arm starting at") == 2
    # a second Ctrl-C-free restart of dev appends too: stop it and look at the worker's log after the next start
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == ExitCode.OK


def test_a_log_past_its_limit_is_rotated_not_lost(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("first run\n")
    assert rotate_log(log, max_bytes=5, keep=2)
    assert log.read_text() == "" and (tmp_path / "worker.log.1").read_text() == "first run\n"
    log.write_text("second run\n")
    assert rotate_log(log, max_bytes=5, keep=2)
    assert (tmp_path / "worker.log.1").read_text() == "second run\n"
    assert (tmp_path / "worker.log.2").read_text() == "first run\n"
    assert not rotate_log(log, max_bytes=5, keep=2)  # an empty log stays where it is


def test_dev_falls_back_from_a_taken_default_port_and_says_how_temporal_reaches_it(tmp_path: Path) -> None:
    """7233 held by another program: dev still starts, on free ports, and prints the one export that makes plain
    `temporal` commands reach it; asking for a taken port explicitly is an error naming it."""
    import socket

    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", 7233))
        squatter.listen()
    except OSError:  # someone else holds it already: the same situation
        squatter.close()
        squatter = None  # type: ignore[assignment]
    state = tmp_path / "state"
    env = _env(state)
    try:
        started = subprocess.run(
            [sys.executable, STARTER, "dev", "--detach", "--state-dir", str(state)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert "port 7233 is taken" in started.stderr, started.stderr
        export = next(line for line in started.stdout.splitlines() if "export TEMPORAL_ADDRESS=" in line)
        address = export.rsplit("export TEMPORAL_ADDRESS=", 1)[1].strip()
        assert address != "127.0.0.1:7233"
        from client.embedded import temporal_binary

        listed = subprocess.run(
            [temporal_binary(), "workflow", "list"],
            env={**env, "TEMPORAL_ADDRESS": address}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        strict = subprocess.run(
            [sys.executable, STARTER, "dev", "--state-dir", str(tmp_path / "other"), "--port", "7233"],
            cwd=REPO, env=_env(tmp_path / "other"), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert strict.returncode == ExitCode.ENVIRONMENTAL and "7233" in strict.stderr and "--port" in strict.stderr
    finally:
        stopped = subprocess.run(
            [sys.executable, STARTER, "dev", "--stop", "--state-dir", str(state)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if squatter is not None:
            squatter.close()
    assert stopped.returncode == 0 and "Stopped the embedded default" in stopped.stdout


def test_a_killed_temporal_server_comes_back_on_its_port_with_its_history(dev) -> None:
    proc, dev_err, state = dev
    before = _instance(state)
    first, _err = _deploy(state, "sup-temporal-rg")
    assert first.wait(timeout=180) == 0
    os.kill(before["pids"]["temporal"], signal.SIGKILL)
    dev_err.wait_for(f"the temporal (pid {before['pids']['temporal']}) was killed by signal 9", timeout=30)
    dev_err.wait_for("the temporal is serving again", timeout=90)
    after = _instance(state)
    assert after["temporal_address"] == before["temporal_address"]
    assert after["pids"]["worker"] == before["pids"]["worker"]  # the worker reconnects by itself
    # the history survived (same database file), and a new deployment runs through the same worker
    listed = subprocess.run(
        [sys.executable, STARTER, "list", "--local", "-g", "sup-temporal-rg", "--output", "json"],
        cwd=REPO, env=_env(state), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1, listed.stderr
    again, _err = _deploy(state, "sup-temporal-rg")
    assert again.wait(timeout=180) == 0
    assert proc.poll() is None
