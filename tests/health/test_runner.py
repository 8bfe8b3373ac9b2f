"""The runner against real TCP and HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import threading
import time

from client.health.declare import load_health_spec
from client.health.live import LiveHealthTable
from client.health.table import format_health_table
from contract.health import CheckResult, CheckState, HealthCheckReport, HealthProgress, HealthSpec
from services.health.runner import run_health_checks as run_with_policy
from tests.support.health_servers import LOOPBACK_POLICY, HttpBehaviour, Pki, ServerThread

# The servers are on 127.0.0.1: run with the embedded default's request policy (see tests/health/servers.py).
run_health_checks = functools.partial(run_with_policy, policy=LOOPBACK_POLICY)


def spec(
    *flags: str, window: float = 10, timeout_seconds: float = 2, retry_interval_seconds: float = 0.2
) -> HealthSpec:
    return load_health_spec(
        template_path=None,
        flags=list(flags),
        declared_outputs=["web", "api"],
        window=window,
        timeout=timeout_seconds,
        retry_interval=retry_interval_seconds,
    )


async def test_all_healthy_passes_each_check_on_its_first_attempt(servers: ServerThread) -> None:
    tcp_port = servers.tcp()
    http_port = servers.http(HttpBehaviour(status=204, body=b""))
    report = await run_health_checks(
        spec(f"tcp:127.0.0.1:{tcp_port} name=db", f"http:GET http://127.0.0.1:{http_port}/health name=web")
    )
    assert report.healthy
    assert [(c.name, c.state, c.attempts) for c in report.checks] == [
        ("db", CheckState.PASSED, 1),
        ("web", CheckState.PASSED, 1),
    ]


async def test_targets_come_from_the_deployment_outputs(servers: ServerThread) -> None:
    port = servers.http(HttpBehaviour(body=b"status: healthy"))
    health = spec("http:GET http://{outputs.web}/{outputs.api.path} contains=healthy name=web")
    arm_outputs = {
        "web": {"type": "String", "value": f"127.0.0.1:{port}"},
        "api": {"type": "Object", "value": {"path": "healthz"}},
    }
    report = await run_health_checks(health, outputs=arm_outputs)
    assert report.healthy, report.summary()
    assert report.checks[0].target == f"GET http://127.0.0.1:{port}/healthz"
    assert servers.requests[0].startswith(b"GET /healthz HTTP/1.1\r\n")


async def test_a_server_that_comes_up_late_within_the_window_passes_after_retries(servers: ServerThread) -> None:
    tcp_port = servers.tcp(start_after=2)
    http_port = servers.http(start_after=2)
    started = time.monotonic()
    report = await run_health_checks(spec(f"tcp:127.0.0.1:{tcp_port}", f"http:http://127.0.0.1:{http_port}/"))
    elapsed = time.monotonic() - started
    assert report.healthy, report.summary()
    for check in report.checks:
        assert check.attempts > 1
        assert check.last_error is not None and "connection refused" in check.last_error  # kept for the audit
    assert 1.8 < elapsed < 5


async def test_a_server_that_never_comes_up_fails_naming_the_check_and_its_last_error(servers: ServerThread) -> None:
    healthy = servers.http()
    dead = servers.reserve_port().getsockname()[1]
    started = time.monotonic()
    report = await run_health_checks(
        spec(f"http:GET http://127.0.0.1:{healthy}/ name=web", f"tcp:127.0.0.1:{dead} name=database", window=1.5)
    )
    assert time.monotonic() - started < 3
    assert not report.healthy
    [failed] = report.failed()
    assert failed.name == "database"
    assert failed.attempts >= 3
    assert (
        failed.last_error
        == f"cannot connect to 127.0.0.1:{dead}: connection refused (nothing listens on that port yet)"
    )
    assert "database" in report.summary() and "connection refused" in report.summary()
    assert report.checks[0].state is CheckState.PASSED


async def test_twenty_checks_answering_after_one_second_run_in_parallel(servers: ServerThread) -> None:
    ports = [servers.http(HttpBehaviour(answer_after=1.0)) for _ in range(20)]
    health = spec(*(f"http:GET http://127.0.0.1:{p}/health" for p in ports), timeout_seconds=5)
    started = time.monotonic()
    report = await run_health_checks(health)
    elapsed = time.monotonic() - started
    assert report.healthy, report.summary()
    assert len(report.checks) == 20
    assert all(c.attempts == 1 for c in report.checks)
    assert 0.9 < elapsed < 5


async def test_a_slow_answer_counts_as_a_timed_out_attempt(servers: ServerThread) -> None:
    port = servers.http(HttpBehaviour(answer_after=3))
    report = await run_health_checks(spec(f"http:GET http://127.0.0.1:{port}/ timeout=0.3", window=1))
    [check] = report.failed()
    assert "no answer within 0.3 s (waiting for the response)" in (check.last_error or "")
    assert check.attempts >= 2
    assert report.elapsed_seconds < 1 + 0.3 + 0.5  # attempts start within the window and last one timeout at most


async def test_status_range_and_body_substring(servers: ServerThread) -> None:
    created = servers.http(HttpBehaviour(status=201, body=b'{"status":"ready"}', chunked=True))
    broken = servers.http(HttpBehaviour(status=503, body=b"down"))
    wrong_body = servers.http(HttpBehaviour(status=200, body=b"starting"))
    report = await run_health_checks(
        spec(
            f'http:GET http://127.0.0.1:{created}/ expect=200-299 contains=\'"status":"ready"\' name=created',
            f"http:GET http://127.0.0.1:{broken}/ expect=2xx name=broken",
            f"http:GET http://127.0.0.1:{wrong_body}/ contains=ready name=wrong-body",
            f"http:GET http://127.0.0.1:{broken}/ expect=200,503 name=503-expected",
            window=1,
        )
    )
    states = {c.name: c.state for c in report.checks}
    assert states == {
        "created": CheckState.PASSED,
        "broken": CheckState.FAILED,
        "wrong-body": CheckState.FAILED,
        "503-expected": CheckState.PASSED,
    }
    errors = {c.name: c.last_error or "" for c in report.checks}
    assert f"GET http://127.0.0.1:{broken}/ answered 503 Trouble, expected 2xx" == errors["broken"]
    assert "does not contain 'ready'" in errors["wrong-body"]


async def test_headers_are_sent(servers: ServerThread) -> None:
    port = servers.http()
    report = await run_health_checks(
        spec(f"http:HEAD http://127.0.0.1:{port}/ 'header=X-Probe: {{outputs.api}}'"), outputs={"api": "v2"}
    )
    assert report.healthy, report.summary()
    assert servers.requests[0].startswith(b"HEAD / HTTP/1.1\r\n")
    assert b"\r\nX-Probe: v2\r\n" in servers.requests[0]


async def test_https_with_verification_fails_on_a_private_ca_unless_its_ca_file_is_given(
    servers: ServerThread, pki: Pki
) -> None:
    port = servers.http(tls=pki.server_context)
    url = f"https://127.0.0.1:{port}/health"
    report = await run_health_checks(
        spec(
            f"http:GET {url} name=default-trust",
            f"http:GET {url} ca={pki.ca_file} name=with-ca",
            f"http:GET {url} ca={pki.other_ca_file} name=wrong-ca",
            f"http:GET {url} tls=off name=unverified",
            window=1,
        )
    )
    results = {c.name: c for c in report.checks}
    assert results["with-ca"].state is CheckState.PASSED
    assert results["unverified"].state is CheckState.PASSED
    for name in ("default-trust", "wrong-ca"):
        assert results[name].state is CheckState.FAILED
        assert "TLS certificate verification failed: unable to get local issuer certificate" in (
            results[name].last_error or ""
        )
    assert "give the CA that issued the server's certificate with ca_file" in (
        results["default-trust"].last_error or ""
    )
    assert f"not issued by the CA in {pki.other_ca_file}" in (results["wrong-ca"].last_error or "")


async def test_recorded_errors_and_targets_never_hold_query_strings(servers: ServerThread) -> None:
    port = servers.http(HttpBehaviour(status=500))
    report = await run_health_checks(
        spec(f"http:GET http://127.0.0.1:{port}/h?sig=SECRET123&code={{outputs.api}} name=web", window=1),
        outputs={"api": "ALSOSECRET"},
    )
    text = report.model_dump_json()
    assert "SECRET123" not in text and "ALSOSECRET" not in text
    assert f"http://127.0.0.1:{port}/h?<redacted>" in (report.checks[0].last_error or "")
    assert servers.requests and b"sig=SECRET123&code=ALSOSECRET" in servers.requests[0]  # the request itself had it


async def test_an_output_missing_after_deployment_fails_that_check_without_attempts(servers: ServerThread) -> None:
    report = await run_health_checks(spec("tcp:{outputs.web}:443 name=web"), outputs={"api": "x"})
    [check] = report.failed()
    assert check.attempts == 0
    assert check.last_error == "cannot resolve the target: the deployment returned no output 'web' (it returned: api)"


async def test_a_resolved_port_out_of_range_fails_that_check(servers: ServerThread) -> None:
    report = await run_health_checks(spec("tcp:127.0.0.1:{outputs.api}"), outputs={"api": 70000})
    assert "the port 70000 is out of range" in (report.failed()[0].last_error or "")


async def test_progress_reports_every_attempt_and_the_report_round_trips_as_json(servers: ServerThread) -> None:
    port = servers.tcp(start_after=0.5)
    seen: list[HealthCheckReport] = []
    report = await run_health_checks(spec(f"tcp:127.0.0.1:{port} name=db"), on_progress=seen.append)
    assert report.healthy
    attempts = [s.checks[0].attempts for s in seen]
    assert attempts == sorted(attempts) and attempts[-1] == report.checks[0].attempts
    assert [s.checks[0].state for s in seen][-1] is CheckState.PASSED
    assert {s.checks[0].state for s in seen[:-1]} == {CheckState.PENDING}
    again = HealthCheckReport.model_validate(json.loads(report.model_dump_json()))
    assert again == report and json.loads(report.model_dump_json())["healthy"] is True


async def test_no_checks_is_healthy() -> None:
    report = await run_health_checks(HealthSpec())
    assert report.healthy and report.checks == []


class FakeArm:
    """An ARM whose resources move through states over time, like the local ARM's fault knobs."""

    def __init__(self, timeline: dict[str, list[str]], availability: dict[str, str | None] | None = None) -> None:
        self.timeline = timeline
        self.availability = availability or {}
        self.reads: dict[str, int] = {}

    async def provisioning_state(self, resource_id: str) -> str:
        n = self.reads.get(resource_id, 0)
        self.reads[resource_id] = n + 1
        states = self.timeline[resource_id]
        return states[min(n, len(states) - 1)]

    async def availability_state(self, resource_id: str) -> str | None:
        return self.availability.get(resource_id)


ST = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1"
WEB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/web1"


async def test_arm_check_waits_for_updating_resources_and_fails_fast_on_failed() -> None:
    arm = FakeArm({ST: ["Updating", "Updating", "Succeeded"], WEB: ["Succeeded"]})
    report = await run_health_checks(spec("arm"), output_resource_ids=[ST, WEB], arm_reader=arm)
    assert report.healthy and report.checks[0].attempts == 3
    assert report.checks[0].last_error == f"{ST} is Updating, not Succeeded"

    failing = FakeArm({ST: ["Updating", "Failed"], WEB: ["Succeeded"]})
    started = time.monotonic()
    report = await run_health_checks(spec("arm"), output_resource_ids=[ST, WEB], arm_reader=failing)
    assert time.monotonic() - started < 2  # Failed is final: no waiting out the window
    [check] = report.failed()
    assert check.attempts == 2 and check.last_error == f"{ST} is Failed"


async def test_arm_availability_hook_tolerates_unknown_and_waits_out_unavailable() -> None:
    arm = FakeArm({ST: ["Succeeded"], WEB: ["Succeeded"]}, availability={ST: "Unknown", WEB: None})
    report = await run_health_checks(spec("arm availability=on"), output_resource_ids=[ST, WEB], arm_reader=arm)
    assert report.healthy
    assert report.checks[0].note == (
        f"{ST}: Resource Health reports Unknown (tolerated); "
        f"{WEB}: Resource Health not available for this resource type"
    )
    degraded = FakeArm({ST: ["Succeeded"]}, availability={ST: "Degraded"})
    report = await run_health_checks(spec(f"arm:{ST} availability=on", window=1), arm_reader=degraded)
    assert report.failed()[0].last_error == f"{ST} is Degraded in Resource Health"


async def test_arm_check_without_a_reader_fails_saying_so() -> None:
    report = await run_health_checks(spec("arm"), output_resource_ids=[ST])
    assert report.failed()[0].last_error == "no ARM state reader is configured for arm checks in this worker"


class SteppingClock:
    """Time that passes only when the runner waits: a 20-second convergence takes a fraction of a second. Events fire
    when the clock passes their time (a server coming up); each wait still yields briefly to real I/O."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.events: list[tuple[float, threading.Event]] = []

    def at(self, seconds: float) -> threading.Event:
        event = threading.Event()
        self.events.append((self.now + seconds, event))
        return event

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        for when, event in self.events:
            if when <= self.now:
                event.set()
        await asyncio.sleep(0.05)  # a server that just came up starts listening, in real time


async def test_a_server_that_comes_up_after_twenty_seconds_passes(servers: ServerThread) -> None:
    """A check keeps trying until the server comes up 20 s in, within a 40 s window, 1 s between attempts — on a
    clock that only moves when the runner waits, so the test takes well under a second of real time."""
    clock = SteppingClock()
    port = servers.http(start_when=clock.at(20))
    checks = spec(f"http:GET http://127.0.0.1:{port}/", window=40, retry_interval_seconds=1)
    report = await run_health_checks(checks, clock=clock)
    assert report.healthy, report.summary()
    assert report.checks[0].attempts >= 20  # one a second until the server was up
    assert 20 <= report.elapsed_seconds <= 22


async def test_a_server_that_never_comes_up_fails_when_the_window_closes(servers: ServerThread) -> None:
    clock = SteppingClock()
    port = servers.http(start_when=clock.at(3600))
    report = await run_health_checks(spec(f"http:GET http://127.0.0.1:{port}/", window=30), clock=clock)
    assert not report.healthy and report.checks[0].state is CheckState.FAILED
    assert report.elapsed_seconds <= 30 + 5  # the window, plus no more than one interval
    assert "connection refused" in (report.checks[0].last_error or "")


async def test_the_live_table_shows_each_check_with_its_state_and_error(servers: ServerThread) -> None:
    ok = servers.http()
    dead = servers.reserve_port().getsockname()[1]
    tables: list[str] = []
    report = await run_health_checks(
        spec(f"http:GET http://127.0.0.1:{ok}/ name=web", f"tcp:127.0.0.1:{dead} name=db", window=1),
        on_progress=lambda r: tables.append(format_health_table(r)),
    )
    final = format_health_table(report).splitlines()
    assert final[1].startswith("✓ web ") and f"GET http://127.0.0.1:{ok}/" in final[1]
    assert final[2].startswith("✗ db ") and "failed" in final[2] and "connection refused" in final[2]
    assert final[-1].startswith("1/2 passed")
    assert any("pending" in t for t in tables)


async def test_a_url_port_from_an_output(servers: ServerThread) -> None:
    port = servers.http()
    report = await run_health_checks(spec("http:GET http://127.0.0.1:{outputs.api}/ name=web"), outputs={"api": port})
    assert report.healthy, report.summary()
    assert report.checks[0].target == f"GET http://127.0.0.1:{port}/"


def test_the_live_table_redraws_in_place_on_a_terminal_and_only_on_change() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    table = LiveHealthTable(screen)
    pending = CheckResult(name="db", kind="tcp", target="h:1", attempts=1, last_error="connection refused")
    first = HealthProgress(started_at=0, report=HealthCheckReport(window_seconds=60, checks=[pending]))
    assert table.show(first) and not table.show(first) and not table.show(None)
    passed = pending.model_copy(update={"state": CheckState.PASSED, "attempts": 2})
    assert table.show(HealthProgress(started_at=0, report=HealthCheckReport(window_seconds=60, checks=[passed])))
    assert not table.show_report(passed_report := HealthCheckReport(window_seconds=60, checks=[passed]))
    assert not table.show_report(None) and passed_report.healthy
    drawn = screen.getvalue()
    assert drawn.count("\x1b[3F\x1b[J") == 1  # moved back over the 3-line table once, then redrew it
    assert drawn.endswith("1/1 passed, 0.0 s of the 60 s window\n")


async def test_a_certificate_for_another_address_is_not_blamed_on_the_ca(servers: ServerThread, pki: Pki) -> None:
    """The server's certificate names 127.0.0.1 and is issued by the given CA; reached as 127.0.0.2 (or as
    localhost) verification fails because of the name, which the message says, instead of "not issued by the CA"."""
    import asyncio
    import contextlib

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.2", 0, ssl=pki.server_context)
    port = server.sockets[0].getsockname()[1]
    on_loopback = servers.http(tls=pki.server_context)
    try:
        report = await run_health_checks(
            spec(
                f"http:GET https://127.0.0.2:{port}/ ca={pki.ca_file} name=by-ip",
                f"http:GET https://localhost:{on_loopback}/ ca={pki.ca_file} name=by-name",
                window=1,
            )
        )
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
    errors = {c.name: c.last_error or "" for c in report.checks}
    assert "the server's certificate does not name '127.0.0.2'" in errors["by-ip"], errors
    assert "not issued by the CA" not in errors["by-ip"]
    assert "the server's certificate does not name 'localhost'" in errors["by-name"], errors
