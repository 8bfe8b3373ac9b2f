"""The health check activity on a real Temporal dev server: the declarations and the report cross the pydantic
converter, and the live state of every check is readable from the pending activity's heartbeat (what a CLI table
draws) while the checks are still converging."""

from __future__ import annotations

import asyncio
import io
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.health_checks import HealthCheckActivities, HealthCheckInput
from client.health.declare import load_health_spec
from client.health.live import LiveHealthTable, live_health_progress
from client.health.table import format_health_table
from contract.health import CheckState, HealthCheckReport, HealthProgress
from services.temporal_client import data_converter
from tests.support.health_servers import LOOPBACK_POLICY, ServerThread
from tests.support.health_stage_workflow import HealthStageWorkflow
from tests.support.temporal import temporal_cli


async def test_health_stage_on_a_real_temporal_server(servers: ServerThread) -> None:
    web = servers.http()
    late = servers.tcp(start_after=2.5)
    dead = servers.reserve_port().getsockname()[1]
    spec = load_health_spec(
        template_path=None,
        flags=[
            "http:GET http://{outputs.webHost}/health name=web",
            f"tcp:127.0.0.1:{late} name=late-db",
            f"tcp:127.0.0.1:{dead} name=never",
        ],
        declared_outputs=["webHost"],
        window="4s",
        timeout="1s",
        retry_interval="0.3s",
    )
    inp = HealthCheckInput(
        spec=spec,
        deployment_name="dep",
        subscription_id="sub",
        outputs={"webHost": {"type": "String", "value": f"127.0.0.1:{web}"}},
    )
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=data_converter(),
        ip="127.0.0.1",
        dev_server_log_level="error",
    )
    try:
        queue = f"health-{uuid.uuid4()}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[HealthStageWorkflow],
            activities=[HealthCheckActivities(heartbeat_every=0.2, policy=LOOPBACK_POLICY).run_health_checks],
        ):
            handle = await env.client.start_workflow(
                HealthStageWorkflow.run, inp, id=f"health-{uuid.uuid4()}", task_queue=queue
            )
            live: HealthProgress | None = None
            drawn = io.StringIO()
            table = LiveHealthTable(drawn)
            for _ in range(40):
                await asyncio.sleep(0.25)
                live = await live_health_progress(handle, env.client.data_converter) or live
                table.show(live)
                if live and any(c.state is CheckState.PENDING and c.attempts > 0 for c in live.report.checks):
                    break
            report = await handle.result()
            assert await live_health_progress(handle, env.client.data_converter) is None  # no longer running
    finally:
        await env.shutdown()

    assert isinstance(report, HealthCheckReport)
    states = {c.name: c.state for c in report.checks}
    assert states == {"web": CheckState.PASSED, "late-db": CheckState.PASSED, "never": CheckState.FAILED}
    assert "never" in report.summary() and "connection refused" in report.summary()
    assert live is not None, "no heartbeat with the checks' state was visible while they ran"
    assert format_health_table(live.report) in drawn.getvalue()
    assert "pending" in drawn.getvalue() and "never" in drawn.getvalue()
