"""Chat sinks: Slack incoming webhooks (text + Block Kit) and Microsoft Teams workflow webhooks (a message with one
Adaptive Card). Their URLs are bearer secrets: read from an environment variable or a file, never logged."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.notifications import NotificationEvent

from .delivery import Delivered, approval_link, detail_lines, link_line, post

SLACK_HEADER_MAX = 150  # Slack's limit for a header block's text


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: NotificationEvent, public_url: str | None) -> dict[str, Any]:
    link = approval_link(public_url, event.deployment_id)
    headline = event.headline()
    details = "\n".join(_slack_escape(line) for line in detail_lines(event))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:SLACK_HEADER_MAX]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": details}},
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the approval page"}, "url": link}
                ],
            }
        )
    else:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link_line(event, None)}]})
    # ``text`` is what notifications and clients without blocks show.
    return {"text": f"{headline}. {link_line(event, link)}", "blocks": blocks}


def _teams_text(text: str) -> str:
    """Teams renders Markdown in a TextBlock, links included: ``[Approve](https://elsewhere)`` in a claimed
    initiator would show as a link on a card approvers trust. A space between ``]`` and ``(`` leaves it text."""
    return text.replace("](", "] (")


def teams_message(event: NotificationEvent, public_url: str | None) -> dict[str, Any]:
    """The payload a Teams workflow ("When a Teams webhook request is received", then "Post card in a chat or
    channel") takes: a message whose attachment is an Adaptive Card."""
    link = approval_link(public_url, event.deployment_id)
    lines = [_teams_text(line) for line in detail_lines(event)]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "text": _teams_text(event.headline()),
            "wrap": True,
        },
        *({"type": "TextBlock", "text": line, "wrap": True, "spacing": "Small"} for line in lines),
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the approval page", "url": link}]
    else:
        body.append({"type": "TextBlock", "text": link_line(event, None), "wrap": True, "isSubtle": True})
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


@dataclass
class SlackSink:
    name: str
    url: str = field(repr=False)
    ca_file: Path | None = None

    async def send(self, event: NotificationEvent, *, public_url: str | None, timeout: float) -> Delivered:
        body = json.dumps(slack_message(event, public_url)).encode()
        return await post(
            self.name, self.url, body, {"Content-Type": "application/json"}, timeout=timeout, ca_file=self.ca_file
        )


@dataclass
class TeamsSink:
    name: str
    url: str = field(repr=False)
    ca_file: Path | None = None

    async def send(self, event: NotificationEvent, *, public_url: str | None, timeout: float) -> Delivered:
        body = json.dumps(teams_message(event, public_url)).encode()
        return await post(
            self.name, self.url, body, {"Content-Type": "application/json"}, timeout=timeout, ca_file=self.ca_file
        )
