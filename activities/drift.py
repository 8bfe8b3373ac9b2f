"""The drift check: what-if of the resource group's last good deployment (its template and parameters, as recorded
for rollbacks) against the live state, classified against the baseline and the allow-list (services/drift.py).

The first check after a new good deployment takes the baseline: what the what-if shows then is provider noise, not
drift (`drift enable` runs a check at once, so the baseline is taken right after enabling)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity

from contract.drift import DRIFT_CHECK_ACTIVITY, DriftCheckInput, DriftClass, DriftReport
from contract.models import DeployRequest, LastGoodDeployment, StageInput
from contract.naming import deployment_name_for
from services.codec import KeyRing
from services.content_store import BlobStore, get_json
from services.drift import BaselineStore, baseline_of, classify
from services.last_good import LastGoodStore, open_last_good

from .plan import PlanActivities


class DriftActivities:
    def __init__(self, store: BlobStore, plan: PlanActivities) -> None:
        self._store = store
        self._plan = plan

    @activity.defn(name=DRIFT_CHECK_ACTIVITY)
    async def check_drift(self, inp: DriftCheckInput) -> DriftReport:
        now = datetime.now(UTC)
        report = DriftReport(
            subscription_id=inp.subscription_id,
            resource_group=inp.resource_group,
            classification=DriftClass.NO_CHANGE,
            checked_at=now,
        )
        if inp.request is not None:
            return await self._check_given(inp, report, now)
        record = await asyncio.to_thread(LastGoodStore(self._store).load, inp.subscription_id, inp.resource_group)
        if record is None:
            report.problem = (
                "no good deployment of this resource group is recorded (a deployment that completed with its health "
                "verified): nothing to compare the live state with"
            )
            return report
        report.last_good_workflow_id, report.last_good_deployment = record.workflow_id, record.deployment_name
        if record.unrecoverable_secure_parameters:
            report.problem = (
                "the last good deployment's secure parameters "
                f"({', '.join(record.unrecoverable_secure_parameters)}) were not kept (no codec keys on the worker "
                "that recorded it), so its what-if cannot be run"
            )
            return report
        request = DeployRequest(
            subscription_id=record.subscription_id,
            resource_group=record.resource_group,
            location=record.location,
            template=record.template,
            template_path=record.template_path,
            template_hash=record.template_hash,
            parameters=dict(record.parameters),
            secure_parameters=record.secure_parameters,
            secure_parameter_names=list(record.secure_parameter_names),
            mode=record.mode,
            git_sha=record.git_sha,
            initiator="drift-check",
        )
        name = deployment_name_for(
            resource_group=record.resource_group, workflow_id="drift", run_id=activity.info().workflow_run_id or "check"
        )
        plan = await self._plan.plan_deployment(StageInput(request=request, deployment_name=name))
        full = plan.full_result
        doc = await asyncio.to_thread(get_json, self._store, full) if full is not None else {"changes": []}
        baselines = BaselineStore(self._store)
        baseline = await asyncio.to_thread(
            baselines.load, inp.subscription_id, inp.resource_group, record.deployment_name
        )
        if baseline is None:
            baseline = baseline_of(doc)
            await asyncio.to_thread(
                baselines.save, inp.subscription_id, inp.resource_group, record.deployment_name, baseline
            )
            report.baseline_captured = True
        cls, findings, by_baseline, by_allow, expired = classify(
            doc, baseline=baseline, allow_list=inp.allow_list, now=now
        )
        report.classification, report.findings = cls, findings
        report.suppressed_baseline, report.suppressed_allow_list = by_baseline, by_allow
        report.expired_entries = expired
        if report.drifted:
            report.last_good_request = await self._remediation_request(inp, record, request, report)
        return report

    async def _check_given(self, inp: DriftCheckInput, report: DriftReport, now: datetime) -> DriftReport:
        """``drift enable -t/-p``: what-if of the given template and parameters. No baseline: what differs from the
        template you name is what you asked to know (the allow-list covers provider noise)."""
        assert inp.request is not None
        request = inp.request.model_copy(update={"initiator": "drift-check"})
        report.compared_with = f"{request.template_path or 'template'} ({request.template.digest[:19]}…)"
        run_id = activity.info().workflow_run_id or "check"
        name = deployment_name_for(resource_group=request.resource_group, workflow_id="drift", run_id=run_id)
        plan = await self._plan.plan_deployment(StageInput(request=request, deployment_name=name))
        full = plan.full_result
        doc = await asyncio.to_thread(get_json, self._store, full) if full is not None else {"changes": []}
        cls, findings, _, by_allow, expired = classify(doc, baseline={}, allow_list=inp.allow_list, now=now)
        report.classification, report.findings = cls, findings
        report.suppressed_allow_list, report.expired_entries = by_allow, expired
        if report.drifted:
            report.last_good_request = inp.request  # what a remediation deploys: the template you named
        return report

    async def _remediation_request(
        self, inp: DriftCheckInput, record: LastGoodDeployment, request: DeployRequest, report: DriftReport
    ) -> DeployRequest:
        """What a remediation deploys: the last good deployment as recorded, its health checks opened as a rollback
        opens them (sealed in the record: header values and URL credentials are secrets)."""
        if not inp.remediate:
            return request
        try:
            record = await asyncio.to_thread(open_last_good, record, self._store, KeyRing.from_environment())
        except Exception as exc:  # a missing key: remediating with redacted checks would fail them; say why instead
            report.remediation_problem = (
                f"the last good deployment's health checks are sealed and could not be opened ({type(exc).__name__}"
                "): not remediated; give the worker the codec keys that sealed them"
            )
        return request.model_copy(update={"health": record.health})
