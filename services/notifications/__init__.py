"""Notifications to webhooks (CloudEvents, HMAC-signed), Slack, Microsoft Teams and e-mail: the worker's
configuration (``config``), one module per kind of sink, and what they share (``delivery``). docs/NOTIFICATIONS.md."""
