"""OpenTelemetry names the workflow writes and dashboards, alerts and docs/SECURITY.md read: one span per stage
attempt, named ``Stage:<STAGE>``, with these attributes (names, ids and codes only, never a parameter value)."""

from __future__ import annotations

STAGE_SPAN_PREFIX = "Stage:"

ATTR_STAGE = "deployment.stage"
ATTR_RESOURCE_GROUP = "deployment.resource_group"
ATTR_SUBSCRIPTION = "deployment.subscription_id"
ATTR_DEPLOYMENT_NAME = "deployment.name"
ATTR_ATTEMPT = "deployment.attempt"
ATTR_OUTCOME = "deployment.stage_outcome"  # succeeded | failed
ATTR_CLASSIFICATION = "deployment.classification"  # LOGIC | ENVIRONMENTAL (failed attempts only)
ATTR_ERROR_CODE = "deployment.error_code"
ATTR_DURATION = "deployment.duration_seconds"
ATTR_DECISION = "deployment.decision"  # AWAITING_CONFIRMATION: approved | rejected | timed out
ATTR_REFUSED_DECISIONS = "deployment.refused_decisions"  # decisions the approval policy refused
