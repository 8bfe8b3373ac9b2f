"""Each sink against a real local receiver: the webhook's CloudEvent and its HMAC signature checked as a receiver
would, Slack's and Teams' payloads as their webhooks take them (the real services cannot be reached from here: a
local HTTP receiver stands in and the payload's shape is checked), e-mail through an SMTP server that requires
STARTTLS and a login. Failures: what is retried and what is not, and no secret in any message."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from contract.notifications import NotificationEvent, NotificationFailure, NotificationKind, event_id
from services.notifications.config import Notifier, load_notifications
from services.notifications.delivery import DeliveryError
from tests.support.notification_receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_KEY,
    HttpReceiver,
    http_receiver,
    smtp_server,
    verify_signature,
)

PUBLIC = "https://deploy.example.test/team"
SLACK_URL_SECRET = "T000/B000/slack-secret-path"


def approval_event(**kw: object) -> NotificationEvent:
    values: dict[str, object] = {
        "id": event_id("deploy-sub-rg-a", "run-1", NotificationKind.APPROVAL_NEEDED, 1),
        "kind": NotificationKind.APPROVAL_NEEDED,
        "time": datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC),
        "deployment_id": "deploy-sub-rg-a",
        "run_id": "run-1",
        "deployment_name": "rg-a-1234",
        "subscription_id": "00000000-0000-0000-0000-000000000001",
        "resource_group": "rg-a",
        "stage": "AWAITING_CONFIRMATION",
        "initiator": "dana",
        "git_sha": "abc1234",
        "plan_counts": {"Create": 1, "Delete": 2},
        "deletions": 2,
        "round": 1,
        "plan_hash": "sha256:00ff",
        "required_approvals": 1,
        "deadline": datetime.datetime(2026, 12, 6, 13, 0, tzinfo=datetime.UTC),
    }
    values.update(kw)
    return NotificationEvent.model_validate(values)


def notifier_for(tmp_path: Path, text: str, env: dict[str, str], public_url: str | None = PUBLIC) -> Notifier:
    path = tmp_path / "notifications.yaml"
    path.write_text(text)
    return load_notifications(path, env, public_url=public_url)


async def test_webhook_sends_one_signed_cloud_event(tmp_path):
    with http_receiver() as receiver:
        notifier = notifier_for(
            tmp_path,
            f"sinks:\n  - {{name: hook, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n",
            {"HOOK_KEY": WEBHOOK_KEY},
        )
        event = approval_event()
        delivered = await notifier.send(event, "hook")
    assert delivered.detail == "HTTP 200"
    [got] = receiver.requests
    assert verify_signature(got), "the receiver-side HMAC check of docs/NOTIFICATIONS.md must pass"
    assert not verify_signature(got, key="some-other-key-0123456789")
    assert got.headers["content-type"].startswith("application/cloudevents+json")
    assert got.headers["x-orchestrator-event-id"] == event.id
    body = got.json()
    assert body["specversion"] == "1.0" and body["id"] == event.id
    assert body["type"] == "io.bicep-orchestrator.deployment.approval_needed"
    assert body["source"] == "/bicep-orchestrator/deployments/deploy-sub-rg-a" and body["subject"] == "rg-a"
    assert body["datacontenttype"] == "application/json" and body["time"].startswith("2026-12-06T12:00:00")
    data = body["data"]
    assert data["link"] == f"{PUBLIC}/ui/deployments/deploy-sub-rg-a"
    assert data["deletions"] == 2 and data["plan_counts"] == {"Create": 1, "Delete": 2} and data["round"] == 1
    assert WEBHOOK_KEY not in got.body.decode()


async def test_a_retry_sends_the_same_bytes_so_the_same_signature(tmp_path):
    with http_receiver(HttpReceiver(statuses=[503])) as receiver:
        notifier = notifier_for(
            tmp_path,
            f"sinks:\n  - {{name: hook, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n",
            {"HOOK_KEY": WEBHOOK_KEY},
        )
        with pytest.raises(DeliveryError) as failed:
            await notifier.send(approval_event(), "hook")
        await notifier.send(approval_event(), "hook")
    assert failed.value.retryable and "HTTP 503" in str(failed.value)
    first, second = receiver.requests
    assert (
        first.body == second.body
        and first.headers["x-orchestrator-signature"] == second.headers["x-orchestrator-signature"]
    )


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (502, True), (429, True), (408, True), (400, False), (404, False)]
)
async def test_http_answers_decide_the_retry(tmp_path, status, retryable):
    with http_receiver(HttpReceiver(statuses=[status])) as receiver:
        notifier = notifier_for(
            tmp_path, "sinks:\n  - {name: chat, type: slack, url_env: SLACK_URL}\n",
            {"SLACK_URL": receiver.url + "/" + SLACK_URL_SECRET},
        )  # fmt: skip
        with pytest.raises(DeliveryError) as failed:
            await notifier.send(approval_event(), "chat")
    assert failed.value.retryable is retryable
    assert SLACK_URL_SECRET not in str(failed.value) and "127.0.0.1" not in str(failed.value)


async def test_a_redirect_is_not_followed(tmp_path):
    with http_receiver(HttpReceiver(statuses=[307])) as receiver:
        notifier = notifier_for(
            tmp_path,
            f"sinks:\n  - {{name: hook, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n",
            {"HOOK_KEY": WEBHOOK_KEY},
        )
        with pytest.raises(DeliveryError) as failed:
            await notifier.send(approval_event(), "hook")
    assert not failed.value.retryable and "redirect" in str(failed.value)
    assert len(receiver.requests) == 1


async def test_no_receiver_is_a_retryable_failure(tmp_path):
    with http_receiver() as receiver:
        url = receiver.url
    notifier = notifier_for(
        tmp_path, f"sinks:\n  - {{name: hook, type: webhook, url: '{url}', secret_env: K}}\n", {"K": WEBHOOK_KEY}
    )
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(approval_event(), "hook")
    assert failed.value.retryable and "no answer" in str(failed.value)


async def test_slack_message_links_the_approval_page(tmp_path):
    with http_receiver() as receiver:
        notifier = notifier_for(
            tmp_path, "sinks:\n  - {name: chat, type: slack, url_env: SLACK_URL}\n", {"SLACK_URL": receiver.url}
        )
        await notifier.send(approval_event(resource_group="rg-<a>&b"), "chat")
    body = receiver.requests[0].json()
    assert receiver.requests[0].headers["content-type"] == "application/json"
    assert body["text"].startswith("Approval needed: 2 deletion(s) in rg-<a>&b")
    header, section, actions = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert section["text"]["type"] == "mrkdwn" and "rg-&lt;a&gt;&amp;b" in section["text"]["text"]
    assert "Started by dana at commit abc1234" in section["text"]["text"]
    [button] = actions["elements"]
    assert button["type"] == "button" and button["url"] == f"{PUBLIC}/ui/deployments/deploy-sub-rg-a"


async def test_a_drift_message_says_what_drifted_and_what_was_done_without_values(tmp_path):
    drift = approval_event(
        id=event_id("drift-sub-rg-a-check-1", "run-9", NotificationKind.DRIFT),
        kind=NotificationKind.DRIFT,
        stage="DRIFT_CHECK",
        plan_counts={"Modify": 2, "Create": 1},
        deletions=0,
        round=None,
        plan_hash=None,
        required_approvals=None,
        deadline=None,
        drift_class="destructive drift",
        drift_check_id="drift-sub-rg-a-check-1",
        remediation_id="deploy-sub-rg-a",
    )
    with http_receiver() as receiver:
        notifier = notifier_for(  # no events list: drift is among the default kinds
            tmp_path, "sinks:\n  - {name: chat, type: slack, url_env: SLACK_URL}\n", {"SLACK_URL": receiver.url}
        )
        assert notifier.routing.sinks_for(drift) == ["chat"]
        await notifier.send(drift, "chat")
    body = receiver.requests[0].json()
    assert body["text"].startswith("Destructive drift: rg-a (00000000-0000-0000-0000-000000000001)")
    text = body["blocks"][1]["text"]["text"]
    assert "Drift check drift-sub-rg-a-check-1: destructive drift" in text
    assert "1 gone (deleted out of band), 2 changed" in text
    assert "Remediation: deployment deploy-sub-rg-a started by dana" in text


async def test_teams_message_is_an_adaptive_card_with_the_link(tmp_path):
    with http_receiver() as receiver:
        notifier = (
            notifier_for(tmp_path, "sinks:\n  - {name: teams, type: teams, url_file: teams.url}\n", {})
            if (tmp_path / "teams.url").write_text(receiver.url + "\n")
            else None
        )
        assert notifier is not None
        event = approval_event(
            kind=NotificationKind.FAILED,
            stage="FAILED",
            outcome="LOGIC_FAILURE",
            failure=NotificationFailure(stage="DEPLOYING", failure_class="LOGIC", code="InvalidTemplate"),
        )
        await notifier.send(event, "teams")
    body = receiver.requests[0].json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    texts = [block["text"] for block in card["body"]]
    assert texts[0] == "Deployment failed (InvalidTemplate): rg-a (00000000-0000-0000-0000-000000000001)"
    assert "Failed in DEPLOYING: LOGIC InvalidTemplate" in texts
    [action] = card["actions"]
    assert action == {"type": "Action.OpenUrl", "title": "Open the approval page",
                      "url": f"{PUBLIC}/ui/deployments/deploy-sub-rg-a"}  # fmt: skip


async def test_without_a_public_url_the_message_says_so(tmp_path):
    with http_receiver() as receiver:
        notifier = notifier_for(
            tmp_path,
            "sinks:\n  - {name: chat, type: slack, url_env: U}\n",
            {"U": receiver.url},
            public_url=None,
        )
        await notifier.send(approval_event(), "chat")
    body = receiver.requests[0].json()
    assert "ORCHESTRATOR_PUBLIC_URL is not set" in body["text"]
    assert not any(b["type"] == "actions" for b in body["blocks"])
    assert "http" not in body["text"].split("ORCHESTRATOR_PUBLIC_URL")[0]


def email_config(server, *, password_env: str = "SMTP_PASSWORD") -> str:
    return (
        "sinks:\n"
        f"  - name: mail\n    type: email\n    host: 127.0.0.1\n    port: {server.port}\n"
        f"    from: deployments@example.test\n    to: [approvers@example.test]\n    username: {SMTP_USER}\n"
        f"    password_env: {password_env}\n    ca_file: {server.ca_file}\n"
    )


async def test_email_over_starttls_with_the_page_link(tmp_path):
    with smtp_server(tmp_path) as server:
        notifier = notifier_for(tmp_path, email_config(server), {"SMTP_PASSWORD": SMTP_PASSWORD})
        event = approval_event()
        delivered = await notifier.send(event, "mail")
        [message] = server.mailbox.wait_for(1, 10)
    assert server.mailbox.tls == [True], "the message must have been sent after STARTTLS"
    assert delivered.detail == "accepted for 1 of 1 recipient(s)"
    assert message["Subject"] == "Approval needed: 2 deletion(s) in rg-a (00000000-0000-0000-0000-000000000001)"
    assert message["Message-ID"] == f"<{event.id}@example.test>"
    assert server.mailbox.envelopes == [("deployments@example.test", ["approvers@example.test"])]
    text = message.get_payload(decode=True).decode()
    assert f"Approval page: {PUBLIC}/ui/deployments/deploy-sub-rg-a" in text
    assert SMTP_PASSWORD not in text


async def test_email_with_a_wrong_password_is_not_retried_and_not_shown(tmp_path):
    with smtp_server(tmp_path) as server:
        notifier = notifier_for(tmp_path, email_config(server), {"SMTP_PASSWORD": "wrong-password-123"})
        with pytest.raises(DeliveryError) as failed:
            await notifier.send(approval_event(), "mail")
    assert not failed.value.retryable and "refused the login" in str(failed.value)
    assert "wrong-password-123" not in str(failed.value)
    assert server.mailbox.messages == []


async def test_email_is_never_sent_without_starttls(tmp_path):
    with smtp_server(tmp_path, starttls=False) as server:
        notifier = notifier_for(tmp_path, email_config(server), {"SMTP_PASSWORD": SMTP_PASSWORD})
        with pytest.raises(DeliveryError) as failed:
            await notifier.send(approval_event(), "mail")
    assert not failed.value.retryable and "does not offer STARTTLS" in str(failed.value)
    assert server.mailbox.messages == []


async def test_email_refuses_an_untrusted_certificate(tmp_path):
    with smtp_server(tmp_path) as server:
        text = email_config(server).replace(str(server.ca_file), str(tmp_path / "other-ca.pem"))
        notifier = notifier_for(tmp_path, text, {"SMTP_PASSWORD": SMTP_PASSWORD})
        with pytest.raises(DeliveryError) as failed:
            await notifier.send(approval_event(), "mail")
    assert not failed.value.retryable and "not trusted" in str(failed.value)
    assert server.mailbox.messages == []


async def test_a_claimed_initiator_cannot_put_a_link_on_a_chat_message(tmp_path):
    lure = "[Approve here](https://evil.example/approve) <https://evil.example|Approve>"
    with http_receiver() as receiver:
        notifier = notifier_for(
            tmp_path,
            "sinks:\n  - {name: chat, type: slack, url_env: U}\n  - {name: teams, type: teams, url_env: U}\n",
            {"U": receiver.url},
        )
        await notifier.send(approval_event(initiator=lure), "chat")
        await notifier.send(approval_event(initiator=lure), "teams")
    slack, teams = (r.json() for r in receiver.requests)
    section = slack["blocks"][1]["text"]["text"]
    assert "Started by [Approve here](https://evil.example/approve) &lt;https://evil.example|Approve&gt;" in section
    texts = [b["text"] for b in teams["attachments"][0]["content"]["body"]]
    lured = "Started by [Approve here] (https://evil.example/approve) <https://evil.example|Approve>"
    assert any(t.startswith(lured) for t in texts), texts
    assert not any("](" in t for t in texts)


async def test_the_documented_receiver_check_accepts_our_signature_and_refuses_a_changed_body(tmp_path):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "NOTIFICATIONS.md").read_text()
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "docs/NOTIFICATIONS.md", "exec"), namespace)
    verify = namespace["verify"]
    with http_receiver() as receiver:
        notifier = notifier_for(
            tmp_path,
            f"sinks:\n  - {{name: hook, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n",
            {"HOOK_KEY": WEBHOOK_KEY},
        )
        await notifier.send(approval_event(), "hook")
    [got] = receiver.requests
    header = got.headers["x-orchestrator-signature"]
    assert verify(got.body, header, WEBHOOK_KEY.encode()) is True  # type: ignore[operator]
    assert verify(got.body.replace(b'"deletions":2', b'"deletions":0'), header, WEBHOOK_KEY.encode()) is False  # type: ignore[operator]
