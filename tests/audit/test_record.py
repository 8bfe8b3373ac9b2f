"""The audit record built from saved histories (tests/workflow/histories/, recorded from real runs), the JSON and
SQLite writers, and the list filters' query — no server needed."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from client.cli._common import CommandError
from client.cli.status import list_query, parse_when
from client.exit_codes import ExitCode
from contract import search_attributes
from contract.models import BlobRef, DeployRequest
from services.audit.history import record_from_history, resource_type_of, run_id_of
from services.audit.record import AuditRecord
from services.audit.store import json_path, read_sqlite_record, record_text, write_record
from services.temporal_client import data_converter

HISTORIES = Path(__file__).resolve().parents[1] / "workflow" / "histories"


async def record_of(name: str) -> AuditRecord:
    history = WorkflowHistory.from_json(name, json.loads((HISTORIES / f"{name}.json").read_text()))
    return await record_from_history(history, data_converter(), run_id=run_id_of(history))


async def test_approved_deployment_with_a_throttled_deploy() -> None:
    record = await record_of("approve_then_retry")
    assert record.result.success and record.result.outcome == "SUCCEEDED" and record.result.timestamp
    assert record.state == "COMPLETED" and record.run_id
    assert record.initiator == "tester@example.com" and record.worker_identity == "18277@vm"
    [approval] = record.approvals
    assert (approval.decision, approval.by, approval.reason) == ("APPROVED", "ana", "recorded for replay")
    assert approval.destructive_set == [
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.storage/storageaccounts/old"
    ]
    assert approval.plan_counts == {"Create": 2, "Delete": 1}  # the plan shown when the approval came
    assert approval.signal_identity == "18277@vm" and approval.signal_received_at is not None
    [retry] = record.retries
    assert (retry.stage, retry.activity, retry.attempt) == ("DEPLOYING", "deploy", 1)
    assert (retry.failure_class, retry.code, retry.retry_after_seconds) == ("ENVIRONMENTAL", "TooManyRequests", 7.0)
    assert retry.retried and retry.backoff_seconds == 7.0  # the durable timer honoured Retry-After
    kinds = [e.event_type for e in record.events]
    assert kinds[0] == "deployment_started" and kinds[-1] == "deployment_completed"
    assert kinds.index("signal_received") < kinds.index("confirmation_recorded") < kinds.index("activity_failed")
    assert kinds.index("activity_failed") < kinds.index("retry_scheduled")
    assert [e.history_event_id for e in record.events] == sorted(e.history_event_id for e in record.events)
    assert [(r.resource_id, r.health_status) for r in record.resources] == [("/r/1", "Healthy")]


async def test_failures_are_recorded_with_their_class() -> None:
    logic = await record_of("logic_failure")
    assert not logic.result.success and logic.result.outcome == "LOGIC_FAILURE"
    assert "InvalidTemplate" in logic.result.message and logic.result.failure is not None
    [retry] = logic.retries
    assert retry.failure_class == "LOGIC" and not retry.retried and retry.backoff_seconds is None

    rejected = await record_of("rejected")
    assert rejected.result.outcome == "REJECTED" and [a.decision for a in rejected.approvals] == ["REJECTED"]
    assert rejected.approvals[0].by == "bo"

    timed_out = await record_of("not_confirmed")
    assert [(a.decision, a.by) for a in timed_out.approvals] == [("TIMED_OUT", "timeout")]
    assert timed_out.approvals[0].signal_identity is None  # nobody signalled


async def test_the_record_is_the_same_for_the_same_history() -> None:
    assert record_text(await record_of("approve_then_retry")) == record_text(await record_of("approve_then_retry"))


async def test_json_and_sqlite_writers(tmp_path: Path) -> None:
    record = await record_of("approve_then_retry")
    written = write_record(record, tmp_path)
    assert written == [json_path(tmp_path, record.deployment_id, record.run_id), tmp_path / "audit.db"]
    assert json.loads(written[0].read_text()) == record.document()
    write_record(record, tmp_path)  # a rebuild replaces the rows, it does not add to them
    with sqlite3.connect(tmp_path / "audit.db") as db:
        assert db.execute("SELECT count(*) FROM deployments").fetchone() == (1,)
        (events,) = db.execute("SELECT count(*) FROM deployment_events").fetchone()
        rows = db.execute("SELECT resource_id, resource_type, health_status FROM deployment_resources").fetchall()
    assert events == len(record.events)
    # the deployed resource, and the one the plan deleted (listed, with its type, since the audit lists deletions)
    assert rows == [
        ("/r/1", "unknown", "Healthy"),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/old",
            "Microsoft.Storage/storageAccounts",
            "Deleted",
        ),
    ]
    assert read_sqlite_record(tmp_path / "audit.db", record.deployment_id, record.run_id) == record
    assert write_record(record, tmp_path / "none", fmt="none") == [] and not (tmp_path / "none").exists()
    only_json = write_record(record, tmp_path / "j", fmt="json")
    assert [p.suffix for p in only_json] == [".json"]


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app", "Microsoft.Web/sites"),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app/slots/stage",
            "Microsoft.Web/sites/slots",
        ),
        ("/subscriptions/s/resourceGroups/rg", "Microsoft.Resources/resourceGroups"),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a",
            "Microsoft.Network/virtualNetworks/subnets",
        ),
    ],
)
def test_resource_type_of(resource_id: str, expected: str) -> None:
    assert resource_type_of(resource_id) == expected


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"running": False, "git_sha": None, "state": None, "since": None, "until": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_list_query_uses_the_search_attributes() -> None:
    query = list_query(_args(git_sha="a" * 40, state="FAILED", running=True))
    assert query == (
        f"WorkflowType = 'DeploymentWorkflow' AND ExecutionStatus = 'Running' AND GitSha = '{'a' * 40}' "
        "AND DeploymentState = 'FAILED'"
    )
    assert "StartTime >= '2026-11-28T10:00:00Z'" in list_query(_args(since="2026-11-28T10:00:00Z"))
    assert "StartTime < '2026-11-28T00:00:00Z'" in list_query(_args(until="2026-11-28"))


def test_list_filters_refuse_bad_values() -> None:
    with pytest.raises(CommandError) as bad_sha:
        list_query(_args(git_sha="x' OR 1=1 --"))
    assert bad_sha.value.code == ExitCode.USAGE and "--git-sha" in str(bad_sha.value)
    with pytest.raises(CommandError) as bad_time:
        list_query(_args(since="yesterday"))
    assert "--since 'yesterday'" in str(bad_time.value) and "30m" in str(bad_time.value)
    with pytest.raises(CommandError):
        list_query(_args(since="2026-11-28", until="2026-11-27"))


def test_relative_times() -> None:
    now = parse_when("2026-11-28T12:00:00Z", "--since")
    assert parse_when("90m", "--since", now=now).isoformat() == "2026-11-28T10:30:00+00:00"
    assert parse_when("7d", "--since", now=now).isoformat() == "2026-11-21T12:00:00+00:00"


def test_start_search_attributes() -> None:
    request = DeployRequest(
        subscription_id="sub",
        resource_group="rg",
        location="eastus",
        template=BlobRef(digest="sha256:" + "0" * 64, size=1),
        template_path="/src/main.bicep",
        git_sha="abc123",
        initiator="ana",
    )
    values = {p.key.name: p.value for p in search_attributes.start_search_attributes(request)}
    assert values == {
        "GitSha": "abc123",
        "ResourceGroup": "rg",
        "Subscription": "sub",
        "TemplateFile": "/src/main.bicep",
        "DeploymentState": "INITIALIZED",
        "Initiator": "ana",
    }
    no_git = request.model_copy(update={"git_sha": None})
    assert "GitSha" not in {p.key.name for p in search_attributes.start_search_attributes(no_git)}


def test_missing_attribute_errors_are_recognised() -> None:
    # the messages a dev server without the attributes answers (start, list)
    assert search_attributes.is_missing_attribute_error(
        "Namespace default has no mapping defined for search attribute GitSha"
    )
    assert search_attributes.is_missing_attribute_error("invalid query: invalid search attribute: GitSha")
    assert not search_attributes.is_missing_attribute_error("namespace not found")
    message = search_attributes.missing_attributes_message("prod")
    assert "temporal operator search-attribute create --namespace prod" in message
    assert "docs/OPERATIONS.md" in message
