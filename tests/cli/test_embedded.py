"""The embedded default's bookkeeping: dev.json, finding a running instance, the worker's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import embedded
from client.embedded import DevInstance, EmbeddedDefault, EmbeddedError, find_running_instance


def test_running_instance_is_found_and_refuses_a_second_start(temporal_dev: EmbeddedDefault) -> None:
    found = find_running_instance(temporal_dev.state_dir)
    assert found is not None and temporal_dev.instance is not None
    assert found.temporal_address == temporal_dev.instance.temporal_address
    assert found.ui_url.startswith("http://127.0.0.1:")
    with pytest.raises(EmbeddedError, match="already running"):
        EmbeddedDefault(temporal_dev.state_dir, worker=False, local_arm=False).start()


def test_stale_instance_file_is_ignored(tmp_path: Path) -> None:
    stale = DevInstance(
        temporal_address="127.0.0.1:1",
        ui_url="http://127.0.0.1:2",
        namespace="default",
        task_queue="q",
        arm_endpoint=None,
        arm_ca_file=None,
        blob_dir=str(tmp_path / "blobs"),
        state_dir=str(tmp_path),
        pid=2**22 + 12345,  # no such process
    )
    (tmp_path / "dev.json").write_text(stale.to_json())
    assert find_running_instance(tmp_path) is None
    with pytest.raises(EmbeddedError, match=r"starter\.py dev"):
        embedded.require_running_instance(tmp_path)


def test_worker_environment_uses_the_names_config_reads() -> None:
    from services import config

    instance = DevInstance(
        temporal_address="127.0.0.1:7233",
        ui_url="http://127.0.0.1:8233",
        namespace="default",
        task_queue="deployments",
        arm_endpoint="https://127.0.0.1:9443",
        arm_ca_file="/tmp/ca.pem",
        blob_dir="/tmp/blobs",
        state_dir="/tmp",
    )
    env = embedded.worker_environment(instance)
    arm = config.arm_config_from_env(env)
    assert arm.endpoint == "https://127.0.0.1:9443"
    assert str(arm.ca_file) == "/tmp/ca.pem"
    assert arm.credential == "local"
    assert config.worker_config_from_env(env).task_queue == "deployments"


def test_temporal_port_taken_by_someone_else_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process may take the probed port before the dev server binds it: the port answers, but not for
    us. The embedded default must notice (our process died) and start again on new ports."""
    import socket

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real_free_port = embedded.free_port
    ports = iter([taken])
    monkeypatch.setattr(embedded, "free_port", lambda: next(ports, None) or real_free_port())
    starter = EmbeddedDefault(tmp_path, worker=False, local_arm=False)
    try:
        instance = starter.start()
        assert instance.temporal_address != f"127.0.0.1:{taken}"
        assert embedded.find_running_instance(tmp_path) is not None
    finally:
        starter.stop()
        squatter.close()


def test_children_left_by_a_killed_owner_are_named(tmp_path: Path) -> None:
    import subprocess
    import sys

    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = DevInstance(
            temporal_address="127.0.0.1:1",
            ui_url="http://127.0.0.1:2",
            namespace="default",
            task_queue="q",
            arm_endpoint=None,
            arm_ca_file=None,
            blob_dir=str(tmp_path / "blobs"),
            state_dir=str(tmp_path),
            pid=2**22 + 12345,  # the owner is gone
            pids={"temporal": orphan.pid},
        )
        (tmp_path / "dev.json").write_text(stale.to_json())
        with pytest.raises(EmbeddedError) as exc:
            EmbeddedDefault(tmp_path, worker=False, local_arm=False).start()
        assert f"temporal (pid {orphan.pid})" in str(exc.value) and f"kill {orphan.pid}" in str(exc.value)
        assert orphan.poll() is None  # named, not killed: the pid came from a file
    finally:
        orphan.kill()
        orphan.wait()


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_children_end_when_the_owner_is_killed(tmp_path: Path) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import json, sys, time; from pathlib import Path; from client.embedded import EmbeddedDefault; "
        "e = EmbeddedDefault(Path(sys.argv[1]), worker=False, local_arm=False); i = e.start(); "
        "print(json.dumps(i.pids), flush=True); time.sleep(120)"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], cwd=embedded.PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        owner.send_signal(signal.SIGKILL)  # no finalizer runs
        owner.wait(timeout=10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pids["temporal"], 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(pids["temporal"], signal.SIGKILL)
            raise AssertionError("the Temporal dev server outlived its killed owner")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
