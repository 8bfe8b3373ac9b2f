"""Deterministic names: the workflow id for a resource group and the ARM deployment name for a workflow run.

Pure functions (no clock, no randomness), so the workflow may call them and a retried or resumed activity derives
the same name again — the ARM deployment name is the idempotency key of the deploy step.
"""

from __future__ import annotations

import hashlib
import re

ARM_DEPLOYMENT_NAME_MAX = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_.()-]+")


def workflow_id_for(subscription_id: str, resource_group: str) -> str:
    """One workflow id per (subscription, resource group): Temporal refuses a second running workflow with it.

    Resource group names are case-insensitive in ARM, so the id is lower-cased.
    """
    return f"deploy-{subscription_id.lower()}-{resource_group.lower()}"


def deployment_name_for(*, resource_group: str, workflow_id: str, run_id: str) -> str:
    """The ARM deployment name of one workflow run: readable prefix + a digest of the run (≤ 64 characters).

    The run id makes each deployment of a resource group a new ARM deployment (ARM keeps their history); the
    digest keeps it unique when the readable part is truncated.
    """
    digest = hashlib.sha256(f"{workflow_id}/{run_id}".encode()).hexdigest()[:16]
    readable = _UNSAFE.sub("-", resource_group.lower()).strip("-.") or "rg"
    room = ARM_DEPLOYMENT_NAME_MAX - len("orch--") - len(digest)
    return f"orch-{readable[:room]}-{digest}"
