"""The shared ARM request budget (services/arm_budget.py) on the real async Azure SDK against the local ARM with
ARM's token buckets switched on (small capacities, ARM's refill rates): the same burst of resource group writes
meets 429s without the budget and none with it; a 429 pauses the subscription for every client of the worker; the
jitter is deterministic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError

from local_arm.testing import FAST, LocalArm, running_local_arm
from services.arm_budget import ArmBudget, deterministic_jitter
from services.config import ArmClients, ArmConfig


@pytest.fixture
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-budget"), **FAST)


def config(local_arm: LocalArm, reserve: int | None) -> ArmConfig:
    from pathlib import Path

    return ArmConfig(endpoint=local_arm.endpoint, ca_file=Path(local_arm.ca_file), credential="local",
                     polling_interval=0.02, request_reserve=reserve)  # fmt: skip


async def burst(local_arm: LocalArm, reserve: int | None, subs: list[str], n: int) -> tuple[int, int]:
    """(succeeded, throttled) of ``n`` concurrent resource group PUTs per subscription through one worker's clients."""
    clients = ArmClients(config(local_arm, reserve))
    ok = throttled = 0

    async def put(sub: str, i: int) -> None:
        nonlocal ok, throttled
        try:
            await clients.resources(sub).resource_groups.create_or_update(f"rg-b-{i}", {"location": "westeurope"})
            ok += 1
        except HttpResponseError as exc:
            assert exc.status_code == 429, exc
            throttled += 1

    try:
        await asyncio.gather(*(put(sub, i) for sub in subs for i in range(n)))
    finally:
        await clients.close()
    return ok, throttled


@pytest.mark.asyncio(loop_scope="session")
async def test_the_budget_keeps_a_burst_under_arms_buckets(local_arm: LocalArm) -> None:
    subs = ["00000000-0000-0000-0000-000000000401", "00000000-0000-0000-0000-000000000402"]
    local_arm.admin.set_rate_limits(writes=(15, 10.0), reads=(50, 25.0))
    without = await burst(local_arm, None, subs, 40)
    await asyncio.sleep(2)  # the buckets refill (15 at 10/s)
    local_arm.admin.set_rate_limits(writes=(15, 10.0), reads=(50, 25.0))
    with_budget = await burst(local_arm, 3, [s.replace("40", "41") for s in subs], 40)
    assert without[1] > 0, without  # the burst overruns ARM's buckets
    assert with_budget == (80, 0), with_budget  # followed the headers: nothing refused, everything done


def test_a_429_pauses_the_subscription_for_every_client_until_retry_after() -> None:
    now = [100.0]
    budget = ArmBudget(reserve=0, clock=lambda: now[0])
    budget.observe("sub-a", "PUT", 429, {"Retry-After": "7", "x-ms-ratelimit-remaining-subscription-writes": "0"})
    assert budget.delay("sub-a", "writes") == pytest.approx(7.0)
    assert budget.delay("SUB-A", "writes") > 0  # subscriptions compare case-insensitively
    assert budget.delay("sub-b", "writes") == 0 and budget.delay("sub-a", "reads") == 0
    now[0] += 7.0
    assert budget.delay("sub-a", "writes") == pytest.approx(0.0, abs=1e-9)


def test_jitter_is_deterministic_and_spread() -> None:
    a = deterministic_jitter("PUT", "/subscriptions/s/resourcegroups/rg-1")
    assert a == deterministic_jitter("put", "/subscriptions/s/resourcegroups/rg-1")
    spread = {round(deterministic_jitter("PUT", f"/subscriptions/s/resourcegroups/rg-{i}"), 3) for i in range(50)}
    assert len(spread) > 40 and all(0 <= j <= 0.5 for j in spread)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_long_pause_fails_the_request_as_throttled_with_the_wait_for_the_workflow_timer() -> None:
    from contract.models import FailureClass
    from services.arm_budget import BudgetPaused
    from services.classification import classify_failure

    budget = ArmBudget(reserve=0)
    budget.observe("sub-a", "PUT", 429, {"Retry-After": "45"})
    with pytest.raises(BudgetPaused) as caught:
        await budget.acquire("sub-a", "PUT", "/subscriptions/sub-a/resourcegroups/rg")
    c = classify_failure(caught.value)
    assert (c.failure_class, c.code) == (FailureClass.ENVIRONMENTAL, "TooManyRequests")
    assert c.retry_after_seconds is not None and 40 <= c.retry_after_seconds <= 45


def test_the_reserve_comes_from_the_environment_and_a_bad_value_is_refused() -> None:
    from services.config import ConfigError, arm_config_from_env

    base = {"ORCHESTRATOR_ARM_ENDPOINT": "https://127.0.0.1:8443"}
    assert arm_config_from_env(base).request_reserve == 20
    assert arm_config_from_env({**base, "ORCHESTRATOR_ARM_RESERVE": "50"}).request_reserve == 50
    assert arm_config_from_env({**base, "ORCHESTRATOR_ARM_RESERVE": "off"}).request_reserve is None
    for bad in ("lots", "-1", "5000"):
        with pytest.raises(ConfigError, match="ORCHESTRATOR_ARM_RESERVE"):
            arm_config_from_env({**base, "ORCHESTRATOR_ARM_RESERVE": bad})
