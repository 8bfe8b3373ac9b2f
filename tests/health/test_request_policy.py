"""The worker's request policy for health checks (services/health/policy.py), on a real Temporal dev server with
the health check activity in a worker, against listeners on 127.0.0.1: a refused target is never contacted (its
listener records no connection, and no socket of this process connects to it — seen through a ``socket.connect``
audit hook, not a mock), and the decision with the address is in the report that history and the audit keep.

Link-local and metadata addresses cannot be listened on without changing the machine's interfaces, so for them the
audit hook is the witness: the worker process never calls connect() towards them."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.health_checks import HealthCheckActivities, HealthCheckInput
from client.health.declare import load_health_spec
from contract.health import CheckState, HealthCheckReport
from services.health.policy import RequestPolicy
from services.temporal_client import data_converter
from tests.support.health_servers import HttpBehaviour, ServerThread
from tests.support.health_stage_workflow import HealthStageWorkflow
from tests.support.temporal import temporal_cli

pytestmark = pytest.mark.asyncio(loop_scope="module")

_CONNECTS: list[str] | None = None  # while a test watches: every address this process connect()s to


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _CONNECTS is not None and event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address:
            _CONNECTS.append(str(address[0]))


sys.addaudithook(_audit)


@pytest.fixture
def connects() -> Iterator[list[str]]:
    global _CONNECTS
    _CONNECTS = []
    try:
        yield _CONNECTS
    finally:
        _CONNECTS = None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=data_converter(),
        ip="127.0.0.1",
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def run_stage(client: Client, policy: RequestPolicy, *flags: str) -> HealthCheckReport:
    """The health check activity in a worker with ``policy``, on the dev server, as VERIFYING_HEALTH runs it."""
    spec = load_health_spec(template_path=None, flags=list(flags), window="2s", timeout="1s", retry_interval="0.2s")
    queue = f"policy-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[HealthStageWorkflow],
        activities=[HealthCheckActivities(heartbeat_every=0.2, policy=policy).run_health_checks],
    ):
        inp = HealthCheckInput(spec=spec, deployment_name="dep", subscription_id="sub")
        return await client.execute_workflow(
            HealthStageWorkflow.run, inp, id=f"policy-{uuid.uuid4()}", task_queue=queue
        )


async def test_the_strict_default_refuses_loopback_private_and_metadata_without_contacting_them(
    temporal: WorkflowEnvironment, servers: ServerThread, connects: list[str]
) -> None:
    web = servers.http()
    db = servers.tcp()
    report = await run_stage(
        temporal.client,
        RequestPolicy(),  # the default of a worker without ORCHESTRATOR_HEALTH_* settings
        f"http:GET http://127.0.0.1:{web}/ name=loopback",
        f"http:GET http://localhost:{web}/ name=by-name",
        f"tcp:[::ffff:127.0.0.1]:{db} name=mapped",
        f"tcp:10.0.0.5:{db} name=private",
        "http:GET http://169.254.169.254/metadata/instance?api-version=2021-02-01 name=imds 'header=Metadata: true'",
        "http:GET http://[fe80::1]/ name=link-local",
        "tcp:168.63.129.16:80 name=wireserver",
    )
    checks = {c.name: c for c in report.checks}
    assert servers.connections == [], "a refused target was contacted"
    assert not any(a in ("169.254.169.254", "fe80::1", "168.63.129.16", "10.0.0.5") for a in connects), connects
    assert all(c.state is CheckState.FAILED and c.declaration_error for c in checks.values()), report.summary()
    assert all(c.attempts == 1 for c in checks.values())  # refused once, never retried
    assert all((c.request_policy or "").startswith("refused: ") for c in checks.values())
    assert "loopback address" in (checks["loopback"].last_error or "")
    assert "ORCHESTRATOR_HEALTH_ALLOW_PRIVATE=1" in (checks["loopback"].last_error or "")
    assert "localhost resolves to 127.0.0.1" in (checks["by-name"].last_error or "")
    assert "private address" in (checks["private"].last_error or "")
    assert "link-local" in (checks["imds"].last_error or "") and "Metadata" not in str(checks["imds"])
    assert "link-local" in (checks["link-local"].last_error or "")
    assert "host agent" in (checks["wireserver"].last_error or "")


async def test_metadata_and_link_local_stay_refused_when_private_addresses_are_allowed(
    temporal: WorkflowEnvironment, servers: ServerThread, connects: list[str]
) -> None:
    web = servers.http()
    report = await run_stage(
        temporal.client,
        RequestPolicy(allow_private=True, allowed_hosts=("169.254.0.0/16", "127.0.0.0/8")),  # even listed: never
        f"http:GET http://127.0.0.1:{web}/ name=local",
        "http:GET http://169.254.169.254/metadata/identity/oauth2/token name=imds",
        "tcp:[::ffff:169.254.169.254]:80 name=mapped-imds",
        "tcp:[64:ff9b::a9fe:a9fe]:80 name=nat64-imds",
        "http:GET http://2852039166/metadata/instance name=decimal-imds",  # 169.254.169.254 as one number
        "http:GET http://0xA9FEA9FE/metadata/instance name=hex-imds",
    )
    checks = {c.name: c for c in report.checks}
    assert checks["local"].state is CheckState.PASSED, report.summary()
    assert checks["local"].request_policy == (f"allowed: 127.0.0.1:{web}, loopback address in an allow-listed network")
    for name in ("imds", "mapped-imds", "nat64-imds", "decimal-imds", "hex-imds"):
        assert checks[name].state is CheckState.FAILED and checks[name].declaration_error, checks[name]
        assert "link-local" in (checks[name].last_error or "")
    assert servers.connections == [web]
    assert not [a for a in connects if "169.254" in a or a.startswith("64:ff9b") or "a9fe" in a], connects


async def test_only_get_and_head_unless_the_operator_allows_more(
    temporal: WorkflowEnvironment, servers: ServerThread
) -> None:
    web = servers.http()
    loopback = RequestPolicy(allow_private=True)
    refused = await run_stage(
        temporal.client,
        loopback,
        f"http:DELETE http://127.0.0.1:{web}/admin/faults name=delete",
        f"http:POST http://127.0.0.1:{web}/ name=post",
    )
    assert servers.connections == [] and servers.requests == []
    for check in refused.checks:
        assert check.state is CheckState.FAILED and check.declaration_error
        assert "is not allowed by this worker's request policy (allowed: GET, HEAD)" in (check.last_error or "")
        assert "ORCHESTRATOR_HEALTH_METHODS" in (check.last_error or "")
    allowed = await run_stage(
        temporal.client,
        RequestPolicy(allow_private=True, methods=frozenset({"GET", "HEAD", "POST"})),
        f"http:POST http://127.0.0.1:{web}/ name=post",
    )
    assert allowed.healthy, allowed.summary()
    assert servers.requests[0].startswith(b"POST / HTTP/1.1")


async def test_the_allow_list_admits_only_listed_hosts_and_networks(
    temporal: WorkflowEnvironment, servers: ServerThread
) -> None:
    web = servers.http()
    report = await run_stage(
        temporal.client,
        RequestPolicy(allowed_hosts=("127.0.0.1/32", "*.example.test")),
        f"http:GET http://127.0.0.1:{web}/ name=listed-network",
        f"tcp:10.1.2.3:{web} name=unlisted",
    )
    checks = {c.name: c for c in report.checks}
    assert checks["listed-network"].state is CheckState.PASSED, report.summary()
    assert "loopback address in an allow-listed network" in (checks["listed-network"].request_policy or "")
    assert checks["unlisted"].declaration_error
    assert "not in this worker's allow-list" in (checks["unlisted"].last_error or "")
    assert servers.connections == [web]
    # Host-name patterns only: a name that matches none is refused before it is even resolved, private or not.
    names_only = await run_stage(
        temporal.client,
        RequestPolicy(allow_private=True, allowed_hosts=("*.example.test",)),
        f"http:GET http://localhost:{web}/ name=unlisted-name",
    )
    [check] = names_only.checks
    assert check.declaration_error and "not in this worker's allow-list" in (check.last_error or "")
    assert servers.connections == [web]


async def test_redirects_are_not_followed(
    temporal: WorkflowEnvironment, servers: ServerThread, connects: list[str]
) -> None:
    redirect = servers.http(HttpBehaviour(status=302, body=b"", headers={"Location": "http://169.254.169.254/"}))
    report = await run_stage(
        temporal.client, RequestPolicy(allow_private=True), f"http:GET http://127.0.0.1:{redirect}/ name=hop"
    )
    [check] = report.checks
    assert check.state is CheckState.FAILED and "answered 302" in (check.last_error or "")
    assert not check.declaration_error  # the target answered; the answer is not healthy
    assert "169.254.169.254" not in connects
