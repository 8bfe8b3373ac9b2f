"""The worker's notification file: what it routes where, and every mistake refused at worker start with the file,
the field and the fix — never a traceback, never a secret in the message."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import NotifyActivities
from contract.models import WorkerSettings
from contract.notifications import (
    NotificationEvent,
    NotificationKind,
    NotifyInput,
    event_id,
    notification_workflow_id,
)
from harness.localarm import REPO
from services.config import ConfigError, worker_config_from_env
from services.notifications.config import NotificationConfigError, load_notifications

KEY = "k" * 32
SLACK_URL = "https://hooks.slack.example/services/T0/B0/very-secret-token"


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "notifications.yaml"
    path.write_text(text)
    return load_notifications(path, {"KEY": KEY, "SLACK": SLACK_URL, **(env or {})})


def event(kind=NotificationKind.COMPLETED, sub="00000000-0000-0000-0000-000000000001", rg="rg-prod-web"):
    return NotificationEvent(
        id="e", kind=kind, time=datetime.datetime.now(datetime.UTC), deployment_id="d", run_id="r",
        deployment_name="n", subscription_id=sub, resource_group=rg, stage="COMPLETED",
    )  # fmt: skip


def test_routing_by_kind_subscription_and_resource_group_pattern(tmp_path):
    notifier = load(
        tmp_path,
        "sinks:\n"
        "  - {name: all, type: webhook, url: 'https://h.example/x', secret_env: KEY}\n"
        "  - {name: prod-failures, type: slack, url_env: SLACK, events: [failed, rolled_back],\n"
        "     resource_groups: ['RG-PROD-*'], subscriptions: ['00000000-*']}\n",
    )
    routing = notifier.routing
    assert routing.sinks_for(event()) == ["all"]
    assert routing.sinks_for(event(NotificationKind.FAILED)) == ["all", "prod-failures"]  # case-insensitive
    assert routing.sinks_for(event(NotificationKind.FAILED, rg="rg-test-web")) == ["all"]
    assert routing.sinks_for(event(NotificationKind.FAILED, sub="11111111-0000-0000-0000-000000000001")) == ["all"]
    # What history carries (the settings): names, kinds and patterns; no URL, no key.
    recorded = WorkerSettings(notifications=routing).model_dump_json()
    assert KEY not in recorded and SLACK_URL not in recorded and "h.example" not in recorded
    assert SLACK_URL not in repr(notifier) and KEY not in repr(notifier)


def test_json_is_read_too_and_secrets_come_from_files(tmp_path):
    (tmp_path / "hook.key").write_text(KEY + "\n")
    notifier = load(
        tmp_path, '{"sinks": [{"name": "h", "type": "webhook", "url": "https://h.example", "secret_file": "hook.key"}]}'
    )
    assert list(notifier.sinks) == ["h"]
    assert notifier.sinks["h"].key == KEY.encode()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ("sinks: [", "not valid YAML or JSON at line", "fix its syntax"),
        ("sinks: []\n", "sinks: missing or empty", "list at least one sink"),
        ("sinks:\n  - {name: a, type: pager}\n", "sinks[0] (a).type: 'pager' is not a sink type", "use one of"),
        ("sinks:\n  - {name: 'a b', type: slack}\n", "sinks[0].name: 'a b' is not a sink name", "use letters"),
        ("sinks:\n  - {name: s, type: slack, url: 'https://x.example/secret-part'}\n", "sinks[0] (s).url",
         "environment variable (url_env) or a file (url_file)"),
        ("sinks:\n  - {name: s, type: slack, url_env: NOPE}\n", "the variable NOPE is unset or empty", "set it"),
        ("sinks:\n  - {name: h, type: webhook, url: 'http://h.example/x', secret_env: KEY}\n",
         "sinks[0] (h).url: a http URL", "use https://"),
        ("sinks:\n  - {name: h, type: webhook, url: 'https://h.example', secret_env: SHORT}\n",
         "sinks[0] (h).secret: the key is shorter than 16 bytes", "openssl rand"),
        ("sinks:\n  - {name: h, type: webhook, url: 'https://h.example', secret_env: KEY, secret_file: k}\n",
         "give exactly one of secret_env or secret_file", "name the environment variable"),
        ("sinks:\n  - {name: h, type: webhook, url: 'https://h.example', secret_env: KEY, events: [deployed]}\n",
         "sinks[0] (h).events: 'deployed' is not an event kind", "approval_needed"),
        ("sinks:\n  - {name: h, type: webhook, url: 'https://h.example', secret_env: KEY, colour: red}\n",
         "sinks[0] (h).colour: unknown field for a webhook sink", "takes"),
        ("sinks:\n  - {name: m, type: email, host: smtp.example, from: a@example, to: [b@example],"
         " username: u, password: hunter2}\n", "sinks[0] (m).password: a password is never written", "password_env"),
        ("sinks:\n  - {name: m, type: email, host: smtp.example, from: a@example, to: []}\n",
         "sinks[0] (m).to: no recipient", "list at least one"),
        ("sinks:\n  - {name: h, type: webhook, url: 'https://h.example', secret_env: KEY}\n"
         "  - {name: h, type: slack, url_env: SLACK}\n", "sinks[1].name: 'h' is used twice", "its own name"),
        ("delivery: {initial_interval_seconds: -1}\nsinks:\n  - {name: s, type: slack, url_env: SLACK}\n",
         "delivery.initial_interval_seconds: -1 is not a positive number", "give one"),
    ],
)  # fmt: skip
def test_mistakes_name_the_file_the_field_and_the_fix(tmp_path, text, field, fix):
    with pytest.raises(NotificationConfigError) as refused:
        load(tmp_path, text, {"SHORT": "too-short"})
    message = str(refused.value)
    assert str(tmp_path / "notifications.yaml") in message and "ORCHESTRATOR_NOTIFICATIONS" in message
    assert field in message and fix in message
    assert "secret-part" not in message and "hunter2" not in message and KEY not in message


def test_the_public_url_must_be_a_base_url(tmp_path):
    (tmp_path / "n.yaml").write_text("sinks:\n  - {name: s, type: slack, url_env: SLACK}\n")
    env = {"ORCHESTRATOR_NOTIFICATIONS": str(tmp_path / "n.yaml"), "SLACK": SLACK_URL}
    config = worker_config_from_env({**env, "ORCHESTRATOR_PUBLIC_URL": "https://team.example/"})
    assert config.notifier is not None and config.notifier.public_url == "https://team.example"
    assert config.settings.notifications == config.notifier.routing
    with pytest.raises(
        ConfigError, match=re.escape("ORCHESTRATOR_PUBLIC_URL='team.example' is not the team service's base URL")
    ):
        worker_config_from_env({**env, "ORCHESTRATOR_PUBLIC_URL": "team.example"})
    assert worker_config_from_env({}).settings.notifications is None


def test_the_worker_refuses_to_start_with_a_bad_file_exit_2(tmp_path):
    path = tmp_path / "notifications.yaml"
    path.write_text("sinks:\n  - {name: chat, type: teams, url_env: TEAMS_URL}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEAMS_"))}
    env["ORCHESTRATOR_NOTIFICATIONS"] = str(path)
    proc = subprocess.run(
        [sys.executable, str(REPO / "worker.py"), "--address", "127.0.0.1:1"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"worker.py: the notification file {path} (ORCHESTRATOR_NOTIFICATIONS): sinks[0] (chat).url_env: the " \
           "variable TEAMS_URL is unset or empty; set it to the teams webhook URL" in proc.stderr  # fmt: skip


def test_event_ids_differ_per_run_kind_and_round_and_repeat_otherwise():
    a = event_id("deploy-s-rg", "run-1", NotificationKind.APPROVAL_NEEDED, 1)
    assert a == event_id("deploy-s-rg", "run-1", NotificationKind.APPROVAL_NEEDED, 1)
    others = {
        event_id("deploy-s-rg", "run-2", NotificationKind.APPROVAL_NEEDED, 1),  # the next deployment of the group
        event_id("deploy-s-rg", "run-1", NotificationKind.APPROVAL_NEEDED, 2),
        event_id("deploy-s-rg", "run-1", NotificationKind.COMPLETED),
        event_id("deploy-s-rg2", "run-1", NotificationKind.APPROVAL_NEEDED, 1),
    }
    assert a not in others and len(others) == 4
    assert notification_workflow_id(event().model_copy(update={"id": a})) == f"notify-{a}"


async def test_a_worker_without_the_sink_fails_the_attempt_so_another_worker_may_take_it(tmp_path):
    notifier = load(tmp_path, "sinks:\n  - {name: other, type: slack, url_env: SLACK}\n")
    env = ActivityEnvironment()
    for activities, why in [
        (NotifyActivities(None), "has no notification file (ORCHESTRATOR_NOTIFICATIONS) for sink audit"),
        (NotifyActivities(notifier), "sink audit is not in this worker's notification file"),
    ]:
        with pytest.raises(ApplicationError) as failed:
            await env.run(activities.notify, NotifyInput(event=event(), sink="audit"))
        assert not failed.value.non_retryable and why in str(failed.value)
