"""Deployment execution: the background runs behind the PUT's long-running operation, and what-if.

A run is restart-safe: the deployment row is written (Accepted) before the PUT is answered, each resource PUT is
an idempotent upsert, and a server that starts and finds Accepted/Running rows runs them again from the start.
Nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arm_engine import DeploymentScope, ExpandedDeployment, ExpandedResource, TemplateError

from . import engine
from .errors import DEPLOYMENT_FAILED_MESSAGE, error_object
from .faults import LRO_KINDS, FaultBook
from .providers import enrich, list_call_answer, resource_type_of, strip_write_only
from .schema_values import list_answer, readable, without_unseen
from .store import Store
from .whatif import materialize, property_delta

log = logging.getLogger("local_arm")

DEPLOYMENTS_TYPE = "Microsoft.Resources/deployments"
_PARAM_TYPES = {
    "string": "String",
    "securestring": "SecureString",
    "int": "Int",
    "bool": "Bool",
    "object": "Object",
    "secureobject": "SecureObject",
    "array": "Array",
}


def now_iso(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Moment:
    """What one deployment's (or validation's, or what-if's) runtime functions see, fixed for all its expansions:
    utcNow()'s time and newGuid()'s secret seed."""

    time: dt.datetime
    guid_seed: str

    def fields(self) -> dict[str, str]:
        """Kept with the deployment record: a resume or a rollback of it evaluates the same values."""
        return {"deployment_time": self.time.isoformat(), "new_guid_seed": self.guid_seed}

    @classmethod
    def of(cls, record: dict[str, Any]) -> Moment | None:
        """A stored deployment's (None for records from before they were kept: the wall clock and random GUIDs)."""
        when, seed = record.get("deployment_time"), record.get("new_guid_seed")
        if isinstance(when, str) and isinstance(seed, str):
            return cls(dt.datetime.fromisoformat(when), seed)
        return None

    def scope(self, **fields: Any) -> DeploymentScope:
        return DeploymentScope(deployment_time=self.time, new_guid_seed=self.guid_seed, **fields)


def iso_duration(seconds: float) -> str:
    return f"PT{max(seconds, 0.0):.7f}S"


def template_hash(template: Any) -> str:
    import json

    raw = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return str(int.from_bytes(hashlib.sha256(raw).digest()[:8], "big"))


def operation_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def run_id() -> str:
    # ARM's deployment job ids look like 08585830391982662229.
    return "0858" + str(uuid.uuid4().int)[:16]


def resource_group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def deployment_id(sub: str, rg: str, name: str) -> str:
    return f"{resource_group_id(sub, rg)}/providers/{DEPLOYMENTS_TYPE}/{name}"


def parse_resource_id(resource_id: str) -> tuple[str, str] | None:
    """(subscription, resource group) of a resource-group-scoped id, else None."""
    parts = resource_id.strip("/").split("/")
    if len(parts) >= 4 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups":
        return parts[1], parts[3]
    return None


def operation_view(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A deployment operation as listed: Running until its resource's simulated provisioning ends."""
    view = copy.deepcopy(record)
    ready_at = view.pop("ready_at", None)
    if ready_at is not None and (now or time.time()) < ready_at:
        view["properties"]["provisioningState"] = "Running"
        view["properties"].pop("statusCode", None)
    return view


def resource_view(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A stored resource as GET answers it, provisioningState computed from the simulated timeline."""
    payload = copy.deepcopy(record["payload"])
    state = record.get("failed_state") or (
        "Succeeded" if (now or time.time()) >= record.get("ready_at", 0) else record.get("pending_state", "Creating")
    )
    props = payload.get("properties")
    if isinstance(props, dict):
        props["provisioningState"] = state
    return payload


class DeploymentFailure(Exception):
    """A resource failed to provision: the deployment ends Failed with DeploymentFailed wrapping ``inner``."""

    def __init__(self, inner: dict[str, Any]) -> None:
        super().__init__(inner.get("message", ""))
        self.inner = inner


class DeploymentCanceled(Exception):
    pass


class ServerStopping(Exception):
    pass


class StateView:
    """The engine's ResourceStateView over the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_resource(self, resource_id: str, api_version: str | None = None) -> dict[str, Any] | None:
        record = self.store.get_resource(resource_id)
        if record is None:
            return None
        view = resource_view(record)
        view.setdefault("apiVersion", record.get("api_version"))
        return view

    def list_call(self, resource_id: str, function: str, api_version: str, body: Any) -> Any:
        record = self.store.get_resource(resource_id)
        rtype = record["type"] if record is not None else resource_type_of(resource_id)
        version = api_version or (record or {}).get("api_version") or ""
        shaped = list_answer(rtype, version, function, resource_id) if rtype else None
        return shaped if shaped is not None else list_call_answer(resource_id, function)


class PlanView(StateView):
    """What-if's view: list*() results stay unevaluated (shown as the expression, never compared), so that no key
    or connection string enters a plan — plans are kept in the orchestrator's history and shown to users."""

    def list_call(self, resource_id: str, function: str, api_version: str, body: Any) -> Any:
        return None


class Runner:
    """Executes deployments on background threads and answers what-if."""

    def __init__(
        self,
        store: Store,
        faults: FaultBook,
        *,
        provisioning_seconds: Callable[[], float],
        clock_offset: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.store = store
        self.faults = faults
        self.provisioning_seconds = provisioning_seconds
        self.clock_offset = clock_offset
        self.view = StateView(store)
        self.plan_view = PlanView(store)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: dict[tuple[str, str, str], threading.Thread] = {}
        self._cancel: dict[tuple[str, str, str], threading.Event] = {}

    def clock(self) -> Moment:
        """The moment a new deployment, validation or what-if sees: now plus the configured offset (utcNow()), and a
        fresh secret seed (newGuid())."""
        return Moment(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset()), secrets.token_hex(16))

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def resume_unfinished(self) -> int:
        records = self.store.unfinished_deployments()
        for record in records:
            if not record.get("nested"):
                self.submit(record)
        return len(records)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)

    def submit(self, record: dict[str, Any]) -> None:
        key = _key(record)
        cancel = threading.Event()
        thread = threading.Thread(target=self._run, args=(record, cancel), name=f"deploy-{record['name']}", daemon=True)
        with self._lock:
            self._threads[key] = thread
            self._cancel[key] = cancel
        thread.start()

    def cancel(self, record: dict[str, Any]) -> bool:
        with self._lock:
            event = self._cancel.get(_key(record))
        if event is None:
            return False
        event.set()
        return True

    # -- one run -----------------------------------------------------------------------------------------------
    def _run(self, record: dict[str, Any], cancel: threading.Event) -> None:
        key = _key(record)
        try:
            self._run_guarded(record, cancel)
        except ServerStopping:
            log.info("deployment %s interrupted by shutdown; it resumes on restart", record["name"])
        except Exception:  # a bug in the emulator: fail the deployment visibly rather than leave it Running
            log.exception("deployment %s crashed", record["name"])
            self._finish(record, "Failed", error=error_object("InternalServerError", "The local ARM failed."))
        finally:
            with self._lock:
                if self._threads.get(key) is threading.current_thread():
                    del self._threads[key]
                    self._cancel.pop(key, None)

    def _run_guarded(self, record: dict[str, Any], cancel: threading.Event) -> None:
        sub, rg, name = record["sub"], record["rg"], record["name"]
        current = self.store.get_deployment(sub, rg, name)
        if current is None or current.get("run_id") != record["run_id"]:
            return
        record = current
        record["state"] = "Running"
        self.store.put_deployment(sub, rg, record)

        rule = self.faults.match(
            LRO_KINDS, method="PUT", operation="Deployments_CreateOrUpdate", deployment=name, path=record["id"]
        )
        try:
            if rule is not None:  # a slow or stuck LRO: still cancellable while it hangs
                self.wait(None if rule.kind == "stuck_lro" else rule.delay, cancel)
            expanded = self.execute(
                sub,
                rg,
                name,
                record["template"],
                record.get("parameters") or {},
                record["mode"],
                cancel,
                record["run_id"],
                moment=Moment.of(record),
            )
        except DeploymentCanceled:
            self._finish(record, "Canceled")
            return
        except TemplateError as exc:
            self._finish(record, "Failed", error=engine.invalid_template_object(exc))
            return
        except DeploymentFailure as failure:
            error = error_object("DeploymentFailed", DEPLOYMENT_FAILED_MESSAGE, details=[failure.inner])
            self._rollback(record, cancel)
            self._finish(record, "Failed", error=error)
            return
        record["outputs"] = {
            k: {"type": _PARAM_TYPES.get(v.type.lower(), v.type), "value": materialize(v.value)}
            for k, v in expanded.outputs.items()
        }
        record["output_resources"] = [
            {"id": r.id} for r in expanded.resources if not r.existing and r.type.lower() != DEPLOYMENTS_TYPE.lower()
        ]
        self._finish(record, "Succeeded")

    def _finish(self, record: dict[str, Any], state: str, *, error: dict[str, Any] | None = None) -> None:
        sub, rg, name = record["sub"], record["rg"], record["name"]
        current = self.store.get_deployment(sub, rg, name)
        if current is None or current.get("run_id") != record["run_id"]:
            return  # deleted or superseded meanwhile
        if current["state"] == "Canceled":
            state = "Canceled"
        current.update({k: record[k] for k in ("outputs", "output_resources", "on_error") if k in record})
        current["state"] = state
        current["finished"] = time.time()
        if error is not None:
            current["error"] = error
        self.store.put_deployment(sub, rg, current)
        op = {
            "status": state,
            "done": True,
        }
        if state == "Failed":
            op["error"] = error
        elif state == "Canceled":
            op["error"] = error_object("DeploymentCanceled", f"The deployment '{name}' was canceled.")
        existing = self.store.get_async(record["op_id"]) or {}
        existing.update(op)
        self.store.put_async(record["op_id"], existing)
        if state != "Succeeded":
            return
        self.store.put_operation(
            sub,
            rg,
            name,
            record["run_id"],
            {
                "operationId": record["run_id"],
                "properties": {
                    "provisioningOperation": "EvaluateDeploymentOutput",
                    "provisioningState": state,
                    "timestamp": now_iso(),
                    "duration": iso_duration(time.time() - record["started"]),
                    "statusCode": "OK",
                },
            },
        )

    def _rollback(self, record: dict[str, Any], cancel: threading.Event) -> None:
        """onErrorDeployment: redeploy the last successful (or a named) deployment of the resource group."""
        spec = (record.get("request", {}).get("properties") or {}).get("onErrorDeployment")
        if not isinstance(spec, dict):
            return
        sub, rg = record["sub"], record["rg"]
        if str(spec.get("type", "")).lower() == "specificdeployment":
            target = self.store.get_deployment(sub, rg, str(spec.get("deploymentName", "")))
        else:
            history = [
                d
                for d in self.store.list_deployments(sub, rg)
                if d["state"] == "Succeeded" and d["name"].lower() != record["name"].lower() and not d.get("nested")
            ]
            history.sort(key=lambda d: d.get("finished") or 0)
            target = history[-1] if history else None
        on_error: dict[str, Any] = {"type": spec.get("type", "LastSuccessful")}
        if target is None:
            on_error["provisioningState"] = "Failed"
        else:
            on_error["deploymentName"] = target["name"]
            try:
                self.execute(
                    sub,
                    rg,
                    target["name"],
                    target["template"],
                    target.get("parameters") or {},
                    target["mode"],
                    cancel,
                    record["run_id"] + "-rollback",
                    # ARM redeploys the earlier deployment as it ran: its utcNow()/newGuid() defaults are reused.
                    moment=Moment.of(target),
                )
                on_error["provisioningState"] = "Succeeded"
            except (DeploymentFailure, TemplateError, DeploymentCanceled):
                on_error["provisioningState"] = "Failed"
        record["on_error"] = on_error

    def execute(
        self,
        sub: str,
        rg: str,
        name: str,
        template: dict[str, Any],
        parameters: dict[str, Any],
        mode: str,
        cancel: threading.Event,
        run: str,
        *,
        moment: Moment | None,
    ) -> ExpandedDeployment:
        group = self.store.get_group(sub, rg) or {"name": rg, "location": "eastus"}
        scope = (moment or self.clock()).scope(
            subscription_id=sub,
            resource_group=group["name"],
            location=group["location"],
            resource_group_tags=dict(group.get("tags") or {}),
            deployment_name=name,
        )
        deployer = _Deployer(self, sub, group["name"], name, cancel, run)
        expanded = engine.expand(template, parameters, scope=scope, state=self.view, deployer=deployer)
        if deployer.ready:
            self.wait(max(deployer.ready.values()) - time.time(), cancel)
        if mode.lower() == "complete":
            keep = {r.id.lower() for r in expanded.resources}
            for stored in self.store.list_resources(sub, group["name"]):
                if stored["id"].lower() not in keep and not _is_under(stored["id"], keep):
                    self.store.delete_resource(stored["id"])
        return expanded

    def wait(self, seconds: float | None, cancel: threading.Event) -> None:
        """Sleep ``seconds`` (None: forever), raising DeploymentCanceled or ServerStopping as soon as either happens."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if self._stop.is_set():
                raise ServerStopping
            if cancel.is_set():
                raise DeploymentCanceled
            remaining = 0.2 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return
            cancel.wait(min(remaining, 0.2))

    # -- what-if -----------------------------------------------------------------------------------------------
    def what_if(
        self,
        sub: str,
        rg: str,
        name: str,
        template: dict[str, Any],
        parameters: dict[str, Any],
        mode: str,
        *,
        moment: Moment,
        ids_only: bool = False,
    ) -> dict[str, Any]:
        group = self.store.get_group(sub, rg) or {"name": rg, "location": "eastus"}
        scope = moment.scope(
            subscription_id=sub,
            resource_group=group["name"],
            location=group["location"],
            resource_group_tags=dict(group.get("tags") or {}),
            deployment_name=name,
        )
        expanded = engine.expand(template, parameters, scope=scope, state=self.plan_view)
        changes: list[dict[str, Any]] = []
        declared: set[str] = set()
        for res in expanded.resources:
            declared.add(res.id.lower())
            if res.existing or res.type.lower() == DEPLOYMENTS_TYPE.lower():
                continue
            after = _what_if_payload(res)
            stored = self.store.get_resource(res.id)
            if stored is None:
                changes.append({"resourceId": res.id, "changeType": "Create", "after": after})
                continue
            before = resource_view(stored)
            before.setdefault("apiVersion", stored.get("api_version"))
            if not readable(res.type, res.api_version):
                # What-if reads the live resource with a GET; a type whose API has none cannot be compared.
                changes.append(
                    {
                        "resourceId": res.id,
                        "changeType": "Unsupported",
                        "unsupportedReason": f"The resource type '{res.type}' cannot be read (its API has no GET "
                        f"at {res.api_version}), so what-if cannot compare it with the template.",
                        "after": after,
                    }
                )
                continue
            # As ARM's what-if: read-only and write-only properties (per the type's schema) are not compared.
            delta = property_delta(
                without_unseen(stored["body"], stored["type"], stored.get("api_version")),
                without_unseen(res.body, res.type, res.api_version),
            )
            change: dict[str, Any] = {
                "resourceId": res.id,
                "changeType": "Modify" if delta else "NoChange",
                "before": before,
                "after": after,
            }
            if delta:
                change["delta"] = delta
            changes.append(change)
        complete = mode.lower() == "complete"
        for stored in self.store.list_resources(sub, group["name"]):
            if stored["id"].lower() in declared or _is_under(stored["id"], declared):
                continue
            before = resource_view(stored)
            if complete:
                changes.append({"resourceId": stored["id"], "changeType": "Delete", "before": before})
            else:
                changes.append({"resourceId": stored["id"], "changeType": "Ignore", "before": before})
        if ids_only:
            # whatIfSettings.resultFormat = ResourceIdOnly: no payloads, and, as ARM, no property comparison — a
            # declared resource that exists is "Deploy" (redeployed; its properties may or may not change).
            changes = [
                {
                    "resourceId": c["resourceId"],
                    "changeType": "Deploy" if c["changeType"] in ("Modify", "NoChange") else c["changeType"],
                }
                for c in changes
            ]
        return {"status": "Succeeded", "properties": {"changes": changes}}


class _Deployer:
    """The engine's ResourceDeployer: stores each resource, simulating its provisioning time."""

    def __init__(self, runner: Runner, sub: str, rg: str, deployment: str, cancel: threading.Event, run: str) -> None:
        self.runner = runner
        self.run_id = run
        self.store = runner.store
        self.sub = sub
        self.rg = rg
        self.deployment = deployment
        self.cancel = cancel
        self.nested: dict[str, list[ExpandedResource]] = {}
        self.ready: dict[str, float] = {}  # resource id (lower) -> when its provisioning ends

    def deploy(self, resource: ExpandedResource) -> dict[str, Any]:
        self.runner.wait(0, self.cancel)
        owner = resource.deployment_path[-1] if resource.deployment_path else self.deployment
        if resource.deployment_path:
            self.nested.setdefault(resource.deployment_path[-1], []).append(resource)
        if resource.type.lower() == DEPLOYMENTS_TYPE.lower():
            return self._nested_deployment(resource)
        started = time.time()
        # Deterministic per run and resource: a run resumed after a restart rewrites its operations, never adds.
        op_id = hashlib.sha256(f"{self.run_id}|{resource.id.lower()}".encode()).hexdigest()[:16].upper()
        target = {"id": resource.id, "resourceType": resource.type, "resourceName": resource.name}
        target_scope = parse_resource_id(resource.id)
        if target_scope is not None and self.store.get_group(*target_scope) is None:
            # A nested deployment into a resource group that does not exist.
            inner = error_object(
                "ResourceGroupNotFound", f"Resource group '{target_scope[1]}' could not be found.", target=resource.id
            )
            self._operation(owner, op_id, "Failed", started, target, status_code="NotFound", error=inner)
            raise DeploymentFailure(inner)
        existing = self.store.get_resource(resource.id)

        rule = self.runner.faults.match(
            ("provision_failure",),
            deployment=owner,
            resource_type=resource.type,
            resource_name=resource.name,
            method="PUT",
            path=resource.id,
        )
        if rule is not None:
            code = rule.error_code()
            inner = error_object(
                code,
                rule.error_message(target=resource.id, location=str(resource.location or "")),
                target=resource.id,
            )
            if code in ("AllocationFailed", "InternalServerError"):
                inner = error_object(
                    "ResourceDeploymentFailure",
                    "The resource write operation failed to complete successfully, because it reached terminal "
                    "provisioning state 'Failed'.",
                    target=resource.id,
                    details=[error_object(code, inner["message"])],
                )
            if existing is None:
                self._store(resource, "Creating", failed=True)
            self._operation(owner, op_id, "Failed", started, target, status_code=_status_code(code), error=inner)
            raise DeploymentFailure(inner)

        pending = "Updating" if existing is not None else "Creating"
        delay = max(0.0, self.runner.provisioning_seconds())
        # Independent resources provision in parallel, as in ARM: a resource starts when its dependencies are
        # ready. Its state is computed from ``ready_at`` when read; the run waits for the last one at the end.
        start_at = max([started] + [self.ready.get(d.lower(), started) for d in resource.depends_on])
        ready_at = start_at + delay
        self.ready[resource.id.lower()] = ready_at
        record = self._store(resource, pending, ready_at=ready_at)
        self._operation(
            owner, op_id, "Succeeded", started, target, status_code="OK" if existing else "Created", ready_at=ready_at
        )
        view = resource_view(record, now=ready_at)
        view.setdefault("apiVersion", resource.api_version)
        return view

    def _store(
        self, resource: ExpandedResource, pending: str, *, ready_at: float = 0.0, failed: bool = False
    ) -> dict[str, Any]:
        body = materialize(resource.body)
        body.setdefault("name", resource.name)
        body.setdefault("type", resource.type)
        payload = enrich(
            {k: v for k, v in body.items() if k != "apiVersion"}, resource.id, api_version=resource.api_version
        )
        scope = parse_resource_id(resource.id) or (self.sub, self.rg)
        record = {
            "id": resource.id,
            "type": resource.type,
            "name": resource.name,
            "api_version": resource.api_version,
            "body": body,
            "payload": payload,
            "ready_at": ready_at,
            "pending_state": pending,
            "deployment": self.deployment,
        }
        if failed:
            record["failed_state"] = "Failed"
        self.store.put_resource(scope[0], scope[1], record)
        return record

    def _operation(
        self,
        owner: str,
        op_id: str,
        state: str,
        started: float,
        target: dict[str, Any],
        *,
        status_code: str | None = None,
        error: dict[str, Any] | None = None,
        ready_at: float | None = None,
    ) -> None:
        end = time.time() if ready_at is None else ready_at
        props: dict[str, Any] = {
            "provisioningOperation": "Create",
            "provisioningState": state,
            "timestamp": now_iso(end),
            "duration": iso_duration(end - started),
            "serviceRequestId": str(uuid.uuid4()),
            "targetResource": target,
        }
        if status_code:
            props["statusCode"] = status_code
        if error is not None:
            props["statusMessage"] = {"status": "Failed", "error": error}
        record: dict[str, Any] = {"operationId": op_id, "properties": props}
        if ready_at is not None:
            record["ready_at"] = ready_at  # Running until then (see operation_view)
        self.store.put_operation(self.sub, self.rg, owner, op_id, record)

    def _nested_deployment(self, resource: ExpandedResource) -> dict[str, Any]:
        """Nested deployments are deployments too: a Succeeded record each, as ARM keeps them."""
        sub, rg = parse_resource_id(resource.id) or (self.sub, self.rg)
        props = resource.body.get("properties") if isinstance(resource.body.get("properties"), dict) else {}
        raw_outputs = materialize((props or {}).get("outputs") or {})
        outputs = {
            k: {"type": _PARAM_TYPES.get(str(v.get("type", "")).lower(), v.get("type")), "value": v.get("value")}
            for k, v in raw_outputs.items()
            if isinstance(v, dict)
        }
        inner = self.nested.get(resource.name, [])
        now = max([time.time()] + [self.ready.get(r.id.lower(), 0.0) for r in inner])
        self.ready[resource.id.lower()] = now
        mode = str((props or {}).get("mode") or "Incremental")
        record = {
            "id": deployment_id(sub, rg, resource.name),
            "name": resource.name,
            "sub": sub,
            "rg": rg,
            "state": "Succeeded",
            "nested": True,
            "parent": self.deployment,
            "run_id": run_id(),
            "op_id": "",
            "mode": mode,
            "template": {},
            "parameters": {},
            "request": {"properties": {"mode": mode}},
            "started": now,
            "finished": now,
            "correlation_id": str(uuid.uuid4()),
            "output_resources": [{"id": r.id} for r in inner if not r.existing],
            "outputs": outputs,
        }
        self.store.put_deployment(sub, rg, record)
        self._operation(
            self.deployment,
            hashlib.sha256(f"{self.run_id}|{resource.id.lower()}".encode()).hexdigest()[:16].upper(),
            "Succeeded",
            now,
            {"id": resource.id, "resourceType": resource.type, "resourceName": resource.name},
            status_code="OK",
        )
        return {
            "id": resource.id,
            "name": resource.name,
            "type": resource.type,
            "properties": {"provisioningState": "Succeeded", "outputs": outputs, "mode": mode},
        }


def _what_if_payload(res: ExpandedResource) -> dict[str, Any]:
    body = strip_write_only(materialize(res.body))
    payload: dict[str, Any] = {"id": res.id, "name": res.name, "type": res.type, "apiVersion": res.api_version}
    payload.update({k: v for k, v in body.items() if k not in ("name", "type", "apiVersion")})
    return payload


def _is_under(resource_id: str, declared: set[str]) -> bool:
    """A child or extension resource of a declared resource (created with it, not separately)."""
    rid = resource_id.lower()
    return any(rid.startswith(d + "/") for d in declared)


def _status_code(code: str) -> str:
    return {"Conflict": "Conflict", "QuotaExceeded": "BadRequest", "SkuNotAvailable": "BadRequest"}.get(
        code, "InternalServerError" if code == "InternalServerError" else "BadRequest"
    )


def _key(record: dict[str, Any]) -> tuple[str, str, str]:
    return (record["sub"].lower(), record["rg"].lower(), record["name"].lower())


def parameters_echo(
    template: dict[str, Any], expanded: ExpandedDeployment | None, given: dict[str, Any]
) -> dict[str, Any]:
    """The deployment's ``properties.parameters`` as ARM echoes them: typed, secure values left out."""
    out: dict[str, Any] = {}
    if expanded is not None:
        for name, pv in expanded.parameters.items():
            entry: dict[str, Any] = {"type": _PARAM_TYPES.get(pv.type.lower(), pv.type)}
            if not pv.secure:
                entry["value"] = materialize(pv.value)
            out[name] = entry
        return out
    declared = template.get("parameters") or {}
    for name, spec in given.items():
        decl = declared.get(name) or {}
        ptype = str(decl.get("type", "string")).lower()
        entry = {"type": _PARAM_TYPES.get(ptype, ptype)}
        if ptype not in ("securestring", "secureobject") and isinstance(spec, dict) and "value" in spec:
            entry["value"] = spec["value"]
        out[name] = entry
    return out
