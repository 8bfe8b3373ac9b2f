"""The ARM REST contract: routing and the handlers behind each operation (see shared/arm-contract/CONTRACT.md)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from arm_engine import TemplateError

from . import engine, resource_health
from .config import LocalArmConfig
from .deployments import (
    DEPLOYMENTS_TYPE,
    Moment,
    Runner,
    deployment_id,
    iso_duration,
    now_iso,
    operation_id,
    operation_view,
    parameters_echo,
    resource_group_id,
    resource_view,
    run_id,
    template_hash,
)
from .errors import (
    ArmError,
    deployment_not_found,
    error_object,
    invalid_request_content,
    not_found_resource,
    not_found_resource_group,
)
from .faults import LRO_KINDS, FaultBook
from .http import Request, Response, RouteInfo
from .providers import enrich
from .store import RUNNING_STATES, Store

# api-versions of Microsoft.Resources the local ARM answers (the pinned SDKs send the first two).
SUPPORTED_API_VERSIONS = (
    "2026-06-01",
    "2025-04-01",
    "2025-03-01",
    "2024-11-01",
    "2024-07-01",
    "2024-03-01",
    "2023-07-01",
    "2022-09-01",
    "2021-04-01",
    "2021-01-01",
    "2020-10-01",
    "2020-06-01",
    "2019-10-01",
    "2019-08-01",
    "2019-07-01",
    "2019-05-10",
)
_API_VERSION_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}(-[A-Za-z]+)?$")
_RG_NAME = re.compile(r"^[-\w._()]{1,90}$")
_DEPLOYMENT_NAME = re.compile(r"^[-\w._()]{1,64}$")
MAX_REQUEST_BYTES = 4 * 1024 * 1024
PAGE_SIZE = 100

# Public Azure regions (normalised: lower case, no spaces).
_REGIONS = (
    "eastus eastus2 westus westus2 westus3 centralus northcentralus southcentralus westcentralus canadacentral "
    "canadaeast brazilsouth brazilsoutheast northeurope westeurope uksouth ukwest francecentral francesouth "
    "germanywestcentral germanynorth switzerlandnorth switzerlandwest norwayeast norwaywest swedencentral "
    "polandcentral italynorth spaincentral israelcentral qatarcentral uaenorth uaecentral southafricanorth "
    "southafricawest centralindia southindia westindia eastasia southeastasia japaneast japanwest koreacentral "
    "koreasouth australiaeast australiasoutheast australiacentral australiacentral2 mexicocentral newzealandnorth "
    "indonesiacentral malaysiawest chilecentral eastus2euap centraluseuap global"
)
LOCATIONS = frozenset(_REGIONS.split(" "))


CORRELATION_HEADER = "x-ms-correlation-request-id"


def normalize_location(value: str) -> str:
    return value.replace(" ", "").lower()


class ArmService:
    """Everything behind the HTTP layer. ``base_url`` is the server's own https://127.0.0.1:PORT."""

    def __init__(self, store: Store, config: LocalArmConfig, faults: FaultBook, base_url: Callable[[], str]) -> None:
        self.store = store
        self.config = config
        self.faults = faults
        self.base_url = base_url
        self.runner = Runner(
            store,
            faults,
            provisioning_seconds=lambda: self.config.provisioning_seconds,
            clock_offset=lambda: self.config.clock_offset,
        )
        self._lock = threading.Lock()

    # -- routing -----------------------------------------------------------------------------------------------
    def route(self, req: Request, info: RouteInfo) -> Response:
        segs = [s for s in req.path.split("/") if s]
        low = [s.lower() for s in segs]
        n = len(segs)
        if n < 2 or low[0] != "subscriptions":
            raise ArmError(404, "NotFound", f"The local ARM does not serve '{req.path}'.")
        sub = segs[1]
        info.subscription = sub
        if n == 2:
            info.operation = "Subscriptions_Get"
            self._check_api(req, resource_manager=True)
            return Response(200, self._subscription(sub))
        if low[2] == "operationresults" and n == 4:
            info.operation = "OperationResults_Get"
            return self._operation_result(req, segs[3])
        if low[2] == "providers" and n in (3, 4):
            info.operation = "Providers_Get" if n == 4 else "Providers_List"
            self._check_api(req, resource_manager=True)
            if n == 4:
                return Response(200, self._provider(sub, segs[3]))
            namespaces = sorted({r["type"].split("/")[0] for r in self.store.list_resources(sub)}, key=str.lower)
            return self._page(req, [self._provider(sub, ns) for ns in namespaces])
        if low[2] == "resources" and n == 3:
            info.operation = "Resources_List"
            self._check_api(req, resource_manager=True)
            return self._list_resources(req, sub, None)
        if low[2] != "resourcegroups":
            raise ArmError(
                404, "NotFound", f"The local ARM serves resource-group scope only; '{req.path}' is not supported."
            )
        if n == 3:
            info.operation = "ResourceGroups_List"
            self._check_api(req, resource_manager=True)
            return self._list_groups(req, sub)
        rg = segs[3]
        if n == 4:
            return self._resource_group(req, info, sub, rg)
        rest, lrest = segs[4:], low[4:]
        if lrest == ["resources"]:
            info.operation = "Resources_ListByResourceGroup"
            self._check_api(req, resource_manager=True)
            self._group_or_404(sub, rg)
            return self._list_resources(req, sub, rg)
        if lrest[:1] == ["deployments"] and len(rest) >= 3 and lrest[2] == "operations":
            info.deployment = rest[1]
            return self._deployment_operations(req, info, sub, rg, rest[1], rest[3] if len(rest) > 3 else None)
        if lrest[:3] == ["providers", "microsoft.resources", "deployments"]:
            return self._deployments(req, info, sub, rg, rest[3:])
        if lrest[:1] == ["providers"] and resource_health.is_availability_path(lrest):
            return self._availability_status(req, info, sub, rg)
        if lrest[:1] == ["providers"] and len(rest) >= 4:
            return self._generic_resource(req, info, sub, rg)
        raise ArmError(404, "NotFound", f"The local ARM does not serve '{req.path}'.")

    def _check_api(self, req: Request, *, resource_manager: bool) -> str:
        version = req.api_version()
        if not version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if resource_manager and version not in SUPPORTED_API_VERSIONS:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are "
                f"'{','.join(SUPPORTED_API_VERSIONS)}'.",
            )
        if not resource_manager and not _API_VERSION_SHAPE.match(version):
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. Use a date-shaped version such as '2023-01-01'.",
            )
        return version

    def _url(self, path: str, api_version: str) -> str:
        return f"{self.base_url()}{quote(path, safe='/()-_.~')}?api-version={api_version}"

    def _lro_headers(self, header: str, url: str) -> dict[str, str]:
        return {header: url, **self._poll_delay_headers()}

    def _poll_delay_headers(self) -> dict[str, str]:
        """``Retry-After`` in whole seconds, as ARM sends it; below a second also ``retry-after-ms`` with the real
        delay. Clients differ in which they read: the JavaScript poller reads only ``Retry-After`` (without it, it
        waits its 2 s default), azure-core (Python) reads ``Retry-After`` first and deserializes it as an integer.
        So a sub-second delay is announced as ``Retry-After: 1`` (ARM's smallest) — never ``0``, on which azure-core
        waits its polling_interval instead (30 s by default) — unless ``retry_after_ms_only`` (fast Python tests)."""
        seconds = self.config.retry_after
        if seconds >= 1:
            return {"Retry-After": str(round(seconds))}
        millis = {"retry-after-ms": str(max(10, round(seconds * 1000)))}
        return millis if self.config.retry_after_ms_only else {"Retry-After": "1", **millis}

    # -- subscription ------------------------------------------------------------------------------------------
    def _subscription(self, sub: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{sub}",
            "subscriptionId": sub,
            "tenantId": "00000000-0000-0000-0000-000000000000",
            "displayName": "Local subscription",
            "state": "Enabled",
        }

    def _provider(self, sub: str, namespace: str) -> dict[str, Any]:
        """Every namespace is registered; its resource types are those deployed here, with the api-versions used
        (newest first) — enough for clients that look up an api-version to read a resource."""
        types: dict[str, dict[str, set[str]]] = {}
        for record in self.store.list_resources(sub):
            ns, _, rtype = record["type"].partition("/")
            if ns.lower() != namespace.lower() or not rtype:
                continue
            entry = types.setdefault(rtype, {"versions": set(), "locations": set()})
            if record.get("api_version"):
                entry["versions"].add(record["api_version"])
            location = (record.get("body") or {}).get("location")
            if isinstance(location, str):
                entry["locations"].add(location)
        return {
            "id": f"/subscriptions/{sub}/providers/{namespace}",
            "namespace": namespace,
            "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {
                    "resourceType": rtype,
                    "locations": sorted(entry["locations"]),
                    "apiVersions": sorted(entry["versions"], reverse=True),
                }
                for rtype, entry in sorted(types.items())
            ],
        }

    # -- resource groups ---------------------------------------------------------------------------------------
    def _group_view(self, sub: str, record: dict[str, Any]) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": resource_group_id(sub, record["name"]),
            "name": record["name"],
            "type": "Microsoft.Resources/resourceGroups",
            "location": record["location"],
            "properties": {"provisioningState": record.get("state", "Succeeded")},
        }
        if record.get("tags"):
            view["tags"] = record["tags"]
        if record.get("managedBy"):
            view["managedBy"] = record["managedBy"]
        return view

    def _group_or_404(self, sub: str, rg: str) -> dict[str, Any]:
        group = self.store.get_group(sub, rg)
        if group is None:
            raise not_found_resource_group(rg)
        return group

    def _resource_group(self, req: Request, info: RouteInfo, sub: str, rg: str) -> Response:
        method = req.method
        info.operation = {
            "PUT": "ResourceGroups_CreateOrUpdate",
            "GET": "ResourceGroups_Get",
            "HEAD": "ResourceGroups_CheckExistence",
            "DELETE": "ResourceGroups_Delete",
            "PATCH": "ResourceGroups_Update",
        }.get(method, "ResourceGroups_Unknown")
        version = self._check_api(req, resource_manager=True)
        if method == "HEAD":
            return Response(204 if self.store.get_group(sub, rg) else 404)
        if method == "GET":
            return Response(200, self._group_view(sub, self._group_or_404(sub, rg)))
        if method in ("PUT", "PATCH"):
            if not _RG_NAME.match(rg) or rg.endswith("."):
                raise ArmError(
                    400,
                    "InvalidResourceGroupName",
                    f"The resource group name '{rg}' is invalid. It must be 1-90 characters of letters, digits, "
                    "'-', '_', '.', '(' or ')' and must not end with a period.",
                )
            body = req.json_object()
            existing = self.store.get_group(sub, rg)
            if method == "PATCH":
                if existing is None:
                    raise not_found_resource_group(rg)
                if "tags" in body:
                    existing["tags"] = body["tags"] or {}
                self.store.put_group(sub, existing)
                return Response(200, self._group_view(sub, existing))
            location = body.get("location")
            if not isinstance(location, str) or not location.strip():
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            loc = normalize_location(location)
            if loc not in LOCATIONS:
                raise ArmError(
                    400,
                    "LocationNotAvailableForResourceGroup",
                    f"The provided location '{location}' is not available for resource group. List of available "
                    f"regions is '{','.join(sorted(LOCATIONS))}'.",
                )
            if existing is not None and normalize_location(existing["location"]) != loc:
                raise ArmError(
                    409,
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{location}'. The Resource group already exists in location "
                    f"'{existing['location']}'.",
                )
            tags = body.get("tags") or {}
            if not isinstance(tags, dict):
                raise invalid_request_content("'tags' must be an object of strings")
            record = {
                "name": existing["name"] if existing else rg,
                "location": loc,
                "tags": tags,
                "managedBy": body.get("managedBy"),
                "state": "Succeeded",
            }
            created = self.store.put_group(sub, record)
            return Response(201 if created else 200, self._group_view(sub, record))
        if method == "DELETE":
            self._group_or_404(sub, rg)
            for d in self.store.list_deployments(sub, rg):
                if d["state"] in RUNNING_STATES:
                    self.runner.cancel(d)
            self.store.delete_group(sub, rg)
            op = self._new_async("ResourceGroups_Delete", req=req, done_status=200, info=info)
            return self._accepted(sub, op, version)
        raise _method_not_allowed(method, req.path)

    def _list_groups(self, req: Request, sub: str) -> Response:
        groups = [self._group_view(sub, g) for g in self.store.list_groups(sub)]
        return self._page(req, groups)

    # -- generic resources -------------------------------------------------------------------------------------
    def _list_resources(self, req: Request, sub: str, rg: str | None) -> Response:
        items = []
        for record in self.store.list_resources(sub, rg):
            view = resource_view(record)
            entry: dict[str, Any] = {
                k: view[k] for k in ("id", "name", "type", "location", "tags", "kind", "sku", "identity") if k in view
            }
            items.append(entry)
        return self._page(req, items)

    def _generic_resource(self, req: Request, info: RouteInfo, sub: str, rg: str) -> Response:
        self._check_api(req, resource_manager=False)
        resource_id = req.path.rstrip("/")
        parts = resource_id.strip("/").split("/")
        # /subscriptions/s/resourceGroups/rg/providers/NS/type/name[/type/name...][/providers/NS/type/name...]
        rtype, rname = _type_and_name(parts[4:])
        if req.method == "GET":
            info.operation = "Resources_GetById"
            group = self._group_or_404(sub, rg)
            record = self.store.get_resource(resource_id)
            if record is None:
                raise not_found_resource(rtype, rname, group["name"])
            view = resource_view(record)
            rule = self.faults.match(
                ("resource_state",), method="GET", path=req.path, resource_type=rtype, resource_name=rname
            )
            if rule is not None and rule.state:  # a health fault: Updating / Failed after the deployment
                props = view.get("properties")
                view["properties"] = {**(props if isinstance(props, dict) else {}), "provisioningState": rule.state}
            return Response(200, view)
        if req.method == "HEAD":
            info.operation = "Resources_CheckExistenceById"
            return Response(204 if self.store.get_resource(resource_id) else 404)
        if req.method == "DELETE":
            info.operation = "Resources_DeleteById"
            self._group_or_404(sub, rg)
            deleted = self.store.delete_resource(resource_id)
            return Response(200 if deleted else 204)
        if req.method == "PUT":
            info.operation = "Resources_CreateOrUpdateById"
            group = self._group_or_404(sub, rg)
            body = req.json_object()
            full_id = _canonical_id(sub, group["name"], parts)
            existing = self.store.get_resource(full_id)
            body = {**body, "name": rname, "type": rtype}
            body.setdefault("location", group["location"])
            record = {
                "id": full_id,
                "type": rtype,
                "name": rname,
                "api_version": req.api_version(),
                "body": body,
                "payload": enrich(body, full_id, api_version=req.api_version()),
                "ready_at": 0.0,
                "pending_state": "Creating",
                "deployment": None,
            }
            self.store.put_resource(sub, group["name"], record)
            return Response(200 if existing else 201, resource_view(record))
        raise _method_not_allowed(req.method, req.path)

    def _availability_status(self, req: Request, info: RouteInfo, sub: str, rg: str) -> Response:
        info.operation = resource_health.OPERATION
        if req.method != "GET":
            raise _method_not_allowed(req.method, req.path)
        self._check_api(req, resource_manager=False)
        parts = req.path.rstrip("/").strip("/").split("/")[:-4]  # the resource's own id
        resource_id = "/" + "/".join(parts)
        rtype, rname = _type_and_name(parts[4:])
        group = self._group_or_404(sub, rg)
        record = self.store.get_resource(resource_id)
        if record is None:
            raise not_found_resource(rtype, rname, group["name"])
        state = resource_health.fault_state(self.faults, rtype, rname, path=req.path)
        if state is None and rtype.lower() not in resource_health.SUPPORTED_TYPES:
            raise ArmError(
                422,
                "UnsupportedResourceType",
                f"Resource Health does not support the resource type '{rtype}'.",
            )
        return Response(200, resource_health.availability_status(record, state or "Available"))

    # -- deployments -------------------------------------------------------------------------------------------
    def _deployments(self, req: Request, info: RouteInfo, sub: str, rg: str, rest: list[str]) -> Response:
        version = self._check_api(req, resource_manager=True)
        if not rest:
            info.operation = "Deployments_ListByResourceGroup"
            if req.method != "GET":
                raise _method_not_allowed(req.method, req.path)
            self._group_or_404(sub, rg)
            records = list(reversed(self.store.list_deployments(sub, rg)))
            wanted = _state_filter(req)
            if wanted is not None:
                records = [d for d in records if d["state"].lower() == wanted]
            return self._page(req, [self._deployment_view(d) for d in records])
        name = rest[0]
        info.deployment = name
        if not _DEPLOYMENT_NAME.match(name):
            raise ArmError(
                400,
                "InvalidDeploymentName",
                f"The deployment name '{name}' is invalid. It must be 1-64 characters of letters, digits, '-', '_', "
                "'.', '(' or ')'.",
            )
        action = rest[1].lower() if len(rest) > 1 else ""
        if action == "":
            return self._deployment(req, info, sub, rg, name, version)
        if action == "operationstatuses" and len(rest) == 3:
            info.operation = "Deployments_OperationStatus"
            return self._deployment_status(sub, rg, name, rest[2])
        if action == "operations":
            return self._deployment_operations(req, info, sub, rg, name, rest[2] if len(rest) > 2 else None)
        if req.method != "POST" or len(rest) != 2:
            raise _method_not_allowed(req.method, req.path)
        if action == "cancel":
            info.operation = "Deployments_Cancel"
            return self._cancel(sub, rg, name)
        if action == "validate":
            info.operation = "Deployments_Validate"
            return self._validate(req, info, sub, rg, name, version)
        if action == "whatif":
            info.operation = "Deployments_WhatIf"
            return self._what_if(req, info, sub, rg, name, version)
        if action == "exporttemplate":
            info.operation = "Deployments_ExportTemplate"
            self._group_or_404(sub, rg)
            record = self.store.get_deployment(sub, rg, name)
            if record is None:
                raise deployment_not_found(name)
            return Response(200, {"template": record.get("template") or {}})
        raise ArmError(404, "NotFound", f"Unknown deployment action '{rest[1]}'.")

    def _deployment(self, req: Request, info: RouteInfo, sub: str, rg: str, name: str, version: str) -> Response:
        method = req.method
        if method == "HEAD":
            info.operation = "Deployments_CheckExistence"
            return Response(204 if self.store.get_deployment(sub, rg, name) else 404)
        if method == "GET":
            info.operation = "Deployments_Get"
            self._group_or_404(sub, rg)
            record = self.store.get_deployment(sub, rg, name)
            if record is None:
                raise deployment_not_found(name)
            return Response(200, self._deployment_view(record))
        if method == "DELETE":
            info.operation = "Deployments_Delete"
            self._group_or_404(sub, rg)
            record = self.store.get_deployment(sub, rg, name)
            if record is None:
                return Response(204)
            if record["state"] in RUNNING_STATES:
                raise ArmError(
                    409,
                    "DeploymentActive",
                    f"Unable to delete deployment '{name}': the deployment is still active. Cancel it first.",
                )
            self.store.delete_deployment(sub, rg, name)
            op = self._new_async("Deployments_Delete", req=req, done_status=204, info=info, deployment=name)
            return self._accepted(sub, op, version)
        if method == "PUT":
            info.operation = "Deployments_CreateOrUpdate"
            return self._create_deployment(req, sub, rg, name, version)
        raise _method_not_allowed(method, req.path)

    def _parse_deployment_body(self, req: Request) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
        body = req.json_object()
        props = body.get("properties")
        if not isinstance(props, dict):
            raise invalid_request_content("Required property 'properties' not found in JSON")
        mode = props.get("mode")
        if not isinstance(mode, str) or mode.lower() not in ("incremental", "complete"):
            raise invalid_request_content(
                f"Required property 'mode' must be 'Incremental' or 'Complete', got {json.dumps(mode)}"
            )
        mode = "Complete" if mode.lower() == "complete" else "Incremental"
        if "templateLink" in props or "parametersLink" in props:
            raise ArmError(
                400,
                "InvalidContentLink",
                "The local ARM cannot fetch templateLink/parametersLink URIs (it has no network). Send the template "
                "and parameters inline in 'properties.template' and 'properties.parameters'.",
            )
        template = props.get("template")
        if not isinstance(template, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: 'Required property 'template' not "
                "found in JSON (or it is not an object)'.",
            )
        parameters = props.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise invalid_request_content("'properties.parameters' must be an object")
        return body, template, parameters, mode

    def _preflight(
        self,
        sub: str,
        rg: str,
        name: str,
        template: dict[str, Any],
        parameters: dict[str, Any],
        moment: Moment,
    ) -> Any:
        """Expand without deploying: InvalidTemplate for template errors, injected preflight failures. ``moment`` is
        the operation's utcNow() and newGuid() (the same for a deployment's preflight and its run)."""
        group = self._group_or_404(sub, rg)
        scope = moment.scope(
            subscription_id=sub,
            resource_group=group["name"],
            location=group["location"],
            resource_group_tags=dict(group.get("tags") or {}),
            deployment_name=name,
        )
        try:
            expanded = engine.expand(template, parameters, scope=scope, state=self.runner.view)
        except TemplateError as exc:
            raise engine.invalid_template(exc) from exc
        for res in expanded.resources:
            if res.existing:
                continue
            problem = _provider_preflight(res)
            if problem is not None:
                raise _invalid_deployment(name, problem)
            rule = self.faults.match(
                ("preflight_failure",),
                deployment=name,
                resource_type=res.type,
                resource_name=res.name,
                method="POST",
                path=res.id,
            )
            if rule is not None:
                raise _invalid_deployment(
                    name,
                    error_object(
                        rule.error_code(),
                        rule.error_message(target=res.id, location=str(res.location or group["location"])),
                        target=res.id,
                    ),
                )
        return expanded

    def _create_deployment(self, req: Request, sub: str, rg: str, name: str, version: str) -> Response:
        body, template, parameters, mode = self._parse_deployment_body(req)
        moment = self.runner.clock()
        expanded = self._preflight(sub, rg, name, template, parameters, moment)
        now = time.time()
        record = {
            "id": deployment_id(sub, self._group_or_404(sub, rg)["name"], name),
            "name": name,
            "sub": sub,
            "rg": self._group_or_404(sub, rg)["name"],
            "state": "Accepted",
            "run_id": run_id(),
            "op_id": operation_id() + operation_id(),
            "mode": mode,
            "template": template,
            "parameters": parameters,
            "parameters_echo": parameters_echo(template, expanded, parameters),
            "request": {k: v for k, v in body.items() if k != "properties"}
            | {"properties": {k: v for k, v in body["properties"].items() if k not in ("template", "parameters")}},
            "started": now,
            **moment.fields(),
            "finished": None,
            "correlation_id": req.headers.get(CORRELATION_HEADER) or str(uuid.uuid4()),
            "template_hash": template_hash(template),
            "providers": _providers(expanded),
            "dependencies": _dependencies(expanded),
        }
        running = self.store.start_deployment(sub, record["rg"], record)
        if running is not None:
            raise ArmError(
                409,
                "DeploymentActive",
                f"Unable to edit or replace deployment '{name}': previous deployment from "
                f"'{now_iso(running['started'])}' is still active (expiration time is "
                f"'{now_iso(running['started'] + 14 * 86400)}'). Please see https://aka.ms/arm-deploy-resources for "
                "usage details.",
            )
        self._trim_history(sub, record["rg"], keep=name)
        self.store.put_async(
            record["op_id"],
            {"kind": "deployment", "sub": sub, "rg": record["rg"], "name": name, "status": "Running", "done": False},
        )
        self.runner.submit(record)
        status_url = self._url(
            f"/subscriptions/{sub}/resourcegroups/{record['rg']}/providers/{DEPLOYMENTS_TYPE}/{name}"
            f"/operationStatuses/{record['op_id']}",
            version,
        )
        headers = self._lro_headers("Azure-AsyncOperation", status_url)
        headers[CORRELATION_HEADER] = record["correlation_id"]
        return Response(201, self._deployment_view(record), headers)

    def _trim_history(self, sub: str, rg: str, *, keep: str) -> None:
        """ARM keeps at most 800 deployments per resource group and deletes the oldest finished ones itself."""
        history = self.store.list_deployments(sub, rg)  # oldest first
        excess = len(history) - self.config.history_limit
        for old in history:
            if excess <= 0:
                break
            if old["state"] not in RUNNING_STATES and old["name"].lower() != keep.lower():
                self.store.delete_deployment(sub, rg, old["name"])
                excess -= 1

    def _deployment_status(self, sub: str, rg: str, name: str, op_id: str) -> Response:
        op = self.store.get_async(op_id)
        if op is None or op.get("kind") != "deployment":
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        record = self.store.get_deployment(sub, rg, name)
        headers = self._poll_delay_headers()
        correlation = (record or {}).get("correlation_id")
        if correlation and record is not None and record.get("op_id") == op_id:
            headers[CORRELATION_HEADER] = correlation  # one operation, one correlation id, as ARM
        if op.get("done") or record is None or record.get("op_id") != op_id:
            status = op.get("status", "Succeeded") if op.get("done") else "Canceled"
            body: dict[str, Any] = {"status": status}
            if op.get("error"):
                body["error"] = op["error"]
            final = {k: v for k, v in headers.items() if k == CORRELATION_HEADER}
            return Response(200, body, headers if status not in ("Succeeded", "Failed", "Canceled") else final)
        return Response(200, {"status": "Running"}, headers)

    def _cancel(self, sub: str, rg: str, name: str) -> Response:
        self._group_or_404(sub, rg)
        record = self.store.get_deployment(sub, rg, name)
        if record is None:
            raise deployment_not_found(name)
        if record["state"] not in RUNNING_STATES:
            raise ArmError(
                409,
                "DeploymentCannotBeCancelled",
                f"The deployment '{name}' cannot be cancelled because it has provisioning state "
                f"'{record['state']}' or it has already expired (expiration time is "
                f"'{now_iso(record['started'] + 14 * 86400)}').",
            )
        record["state"] = "Canceled"
        record["finished"] = time.time()
        self.store.put_deployment(sub, record["rg"], record)
        op = self.store.get_async(record["op_id"]) or {}
        op.update(
            {
                "status": "Canceled",
                "done": True,
                "error": error_object("DeploymentCanceled", f"The deployment '{name}' was canceled."),
            }
        )
        self.store.put_async(record["op_id"], op)
        self.runner.cancel(record)
        return Response(204)

    def _validate(self, req: Request, info: RouteInfo, sub: str, rg: str, name: str, version: str) -> Response:
        _, template, parameters, mode = self._parse_deployment_body(req)
        group = self._group_or_404(sub, rg)
        try:
            expanded = self._preflight(sub, rg, name, template, parameters, self.runner.clock())
        except ArmError as err:
            if not self.config.async_validate:
                raise
            op = self._new_async("Deployments_Validate", req=req, done_status=400, info=info, result=err.body())
            return self._accepted(sub, op, version)
        now = time.time()
        result = {
            "id": deployment_id(sub, group["name"], name),
            "name": name,
            "type": DEPLOYMENTS_TYPE,
            "properties": {
                "templateHash": template_hash(template),
                "parameters": parameters_echo(template, expanded, parameters),
                "mode": mode,
                "provisioningState": "Succeeded",
                "timestamp": now_iso(now),
                "duration": iso_duration(0.0),
                "correlationId": str(uuid.uuid4()),
                "providers": _providers(expanded),
                "dependencies": _dependencies(expanded),
                "validatedResources": [
                    {"id": r.id} for r in expanded.resources if not r.existing and r.type != DEPLOYMENTS_TYPE
                ],
            },
        }
        if self.config.async_validate:
            op = self._new_async("Deployments_Validate", req=req, done_status=200, info=info, result=result)
            return self._accepted(sub, op, version)
        return Response(200, result)

    def _what_if(self, req: Request, info: RouteInfo, sub: str, rg: str, name: str, version: str) -> Response:
        request, template, parameters, mode = self._parse_deployment_body(req)
        group = self._group_or_404(sub, rg)
        settings = request["properties"].get("whatIfSettings") or {}
        ids_only = isinstance(settings, dict) and str(settings.get("resultFormat", "")).lower() == "resourceidonly"
        try:
            moment = self.runner.clock()
            self._preflight(sub, rg, name, template, parameters, moment)
            result = self.runner.what_if(
                sub, group["name"], name, template, parameters, mode, moment=moment, ids_only=ids_only
            )
        except ArmError as err:
            result = {"status": "Failed", "error": err.error_object()}
        except TemplateError as exc:
            result = {"status": "Failed", "error": engine.invalid_template_object(exc)}
        op = self._new_async("Deployments_WhatIf", req=req, done_status=200, info=info, result=result, deployment=name)
        return self._accepted(sub, op, version)

    def _deployment_operations(
        self, req: Request, info: RouteInfo, sub: str, rg: str, name: str, op_id: str | None
    ) -> Response:
        info.operation = "DeploymentOperations_Get" if op_id else "DeploymentOperations_List"
        self._check_api(req, resource_manager=True)
        group = self._group_or_404(sub, rg)
        record = self.store.get_deployment(sub, rg, name)
        if record is None:
            raise deployment_not_found(name)
        base = deployment_id(sub, group["name"], record["name"])
        ops = [
            {"id": f"{base}/operations/{o['operationId']}", **operation_view(o)}
            for o in self.store.list_operations(sub, rg, name)
        ]
        if op_id is not None:
            for o in ops:
                if o["operationId"].lower() == op_id.lower():
                    return Response(200, o)
            raise ArmError(404, "DeploymentOperationNotFound", f"Deployment operation '{op_id}' could not be found.")
        return self._page(req, ops)

    def _deployment_view(self, record: dict[str, Any]) -> dict[str, Any]:
        end = record.get("finished") or time.time()
        props: dict[str, Any] = {
            "templateHash": record.get("template_hash", "0"),
            "parameters": record.get("parameters_echo", {}),
            "mode": record.get("mode", "Incremental"),
            "provisioningState": record["state"],
            "timestamp": now_iso(record.get("finished") or record["started"]),
            "duration": iso_duration(end - record["started"]),
            "correlationId": record.get("correlation_id"),
            "providers": record.get("providers", []),
            "dependencies": record.get("dependencies", []),
        }
        if record.get("outputs") is not None and record["state"] == "Succeeded":
            # Secure outputs keep their type but not their value, as ARM answers them (list* results end up there).
            props["outputs"] = {
                k: {kk: vv for kk, vv in v.items() if kk != "value"}
                if isinstance(v, dict) and str(v.get("type", "")).lower() in ("securestring", "secureobject")
                else v
                for k, v in record["outputs"].items()
            }
        if record.get("output_resources") and record["state"] == "Succeeded":
            props["outputResources"] = record["output_resources"]
        if record.get("error"):
            props["error"] = record["error"]
        request_props = (record.get("request") or {}).get("properties") or {}
        on_error = record.get("on_error") or request_props.get("onErrorDeployment")
        if on_error:
            props["onErrorDeployment"] = on_error
        for key in ("debugSetting", "validationLevel"):
            if key in request_props:
                props[key] = request_props[key]
        view: dict[str, Any] = {
            "id": record["id"],
            "name": record["name"],
            "type": DEPLOYMENTS_TYPE,
            "properties": props,
        }
        request = record.get("request") or {}
        for key in ("location", "tags"):
            if request.get(key):
                view[key] = request[key]
        return view

    # -- location-polled operations ----------------------------------------------------------------------------
    def _new_async(
        self,
        kind: str,
        *,
        done_status: int,
        info: RouteInfo,
        result: Any = None,
        deployment: str = "",
        req: Request,
    ) -> str:
        op_id = (
            base64.urlsafe_b64encode(
                json.dumps({"jobId": f"{kind}-{uuid.uuid4().hex}", "jobLocation": "local"}).encode()
            )
            .decode()
            .rstrip("=")
        )
        ready_at: float | None = time.time()
        rule = self.faults.match(
            LRO_KINDS, operation=kind, deployment=deployment or info.deployment, method="POST", path=kind
        )
        if rule is not None:
            ready_at = None if rule.kind == "stuck_lro" else time.time() + rule.delay
        self.store.put_async(
            op_id,
            {
                "kind": kind,
                "done_status": done_status,
                "result": result,
                "ready_at": ready_at,
                # one operation, one correlation id: the client's, else one of ours, echoed on every poll
                "correlation_id": req.headers.get(CORRELATION_HEADER) or str(uuid.uuid4()),
            },
        )
        return op_id

    def _accepted(self, sub: str, op_id: str, version: str) -> Response:
        """202 with the operation's monitor (``Location``), poll delay and correlation id."""
        headers = self._lro_headers("Location", self._op_url(sub, op_id, version))
        op = self.store.get_async(op_id) or {}
        if op.get("correlation_id"):
            headers[CORRELATION_HEADER] = op["correlation_id"]
        return Response(202, None, headers)

    def _op_url(self, sub: str, op_id: str, version: str) -> str:
        return self._url(f"/subscriptions/{sub}/operationresults/{op_id}", version)

    def _operation_result(self, req: Request, op_id: str) -> Response:
        op = self.store.get_async(op_id)
        if op is None or "done_status" not in op:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        ready_at = op.get("ready_at")
        correlation = {CORRELATION_HEADER: op["correlation_id"]} if op.get("correlation_id") else {}
        if ready_at is None or time.time() < ready_at:
            version = req.api_version() or SUPPORTED_API_VERSIONS[0]
            url = self._url(req.path, version)
            return Response(202, None, self._lro_headers("Location", url) | correlation)
        return Response(int(op["done_status"]), op.get("result"), correlation)

    # -- paging ------------------------------------------------------------------------------------------------
    def _page(self, req: Request, items: list[dict[str, Any]]) -> Response:
        query = {k.lower(): v for k, v in req.query.items()}
        try:
            skip = int(query.get("$skiptoken", "0"))
            top = int(query["$top"]) if "$top" in query else None
        except ValueError as exc:
            raise ArmError(400, "InvalidQueryParameterValue", f"Invalid paging parameter: {exc}") from exc
        if top is not None:
            items = items[:top]
        page = items[skip : skip + PAGE_SIZE]
        body: dict[str, Any] = {"value": page}
        if skip + PAGE_SIZE < len(items):
            version = req.api_version() or SUPPORTED_API_VERSIONS[0]
            next_url = self._url(req.path, version) + f"&$skiptoken={skip + PAGE_SIZE}"
            if top is not None:
                next_url += f"&$top={top}"
            body["nextLink"] = next_url
        return Response(200, body)


_STORAGE_NAME = re.compile(r"^[a-z0-9]{3,24}$")


def _provider_preflight(res: Any) -> dict[str, Any] | None:
    """The few provider validations that are cheap to reproduce (ARM's preflight asks each RP)."""
    storage = res.type.lower() == "microsoft.storage/storageaccounts" and isinstance(res.name, str)
    if storage and not _STORAGE_NAME.match(res.name) and "[" not in res.name:
        return error_object(
            "AccountNameInvalid",
            f"{res.name} is not a valid storage account name. Storage account name must be between 3 and 24 "
            "characters in length and use numbers and lower-case letters only.",
            target=res.name,
        )
    return None


def _invalid_deployment(name: str, inner: dict[str, Any]) -> ArmError:
    tracking = str(uuid.uuid4())
    return ArmError(
        400,
        "InvalidTemplateDeployment",
        f"The template deployment '{name}' is not valid according to the validation procedure. The tracking id is "
        f"'{tracking}'. See inner errors for details.",
        details=[
            error_object(
                "PreflightValidationCheckFailed",
                "Preflight validation failed. Please refer to the details for the specific errors.",
                details=[inner],
            )
        ],
    )


_STATE_FILTER = re.compile(r"^\s*provisioningState\s+eq\s+'([A-Za-z]+)'\s*$", re.IGNORECASE)


def _state_filter(req: Request) -> str | None:
    """``$filter=provisioningState eq 'Failed'``, the one filter ARM supports on the deployment list."""
    text = next((v for k, v in req.query.items() if k.lower() == "$filter"), None)
    if text is None:
        return None
    match = _STATE_FILTER.match(text)
    if match is None:
        raise ArmError(
            400,
            "InvalidFilterInQueryString",
            f"The filter '{text}' is not supported. Use \"provisioningState eq '<state>'\".",
        )
    return match.group(1).lower()


def _method_not_allowed(method: str, path: str) -> ArmError:
    return ArmError(405, "MethodNotAllowed", f"The HTTP method '{method}' is not supported for '{path}'.")


def _type_and_name(parts: list[str]) -> tuple[str, str]:
    """Full type and name from the segments after the resource group (``providers/NS/t1/n1/t2/n2...``)."""
    # Extension resources: take the last provider segment.
    idx = max(i for i, p in enumerate(parts) if p.lower() == "providers")
    tail = parts[idx + 1 :]
    namespace, pairs = tail[0], tail[1:]
    types = pairs[0::2]
    names = pairs[1::2]
    return "/".join([namespace, *types]), "/".join(names)


def _canonical_id(sub: str, rg: str, parts: list[str]) -> str:
    return "/".join(["", "subscriptions", sub, "resourceGroups", rg, *parts[4:]])


def _providers(expanded: Any) -> list[dict[str, Any]]:
    by_ns: dict[str, dict[str, set[str]]] = {}
    for r in expanded.resources:
        if r.existing:
            continue
        ns, _, rest = r.type.partition("/")
        loc = normalize_location(str(r.location)) if r.location else None
        locations = by_ns.setdefault(ns, {}).setdefault(rest, set())
        if loc:
            locations.add(loc)
    return [
        {
            "namespace": ns,
            "resourceTypes": [{"resourceType": t, "locations": sorted(locs)} for t, locs in types.items()],
        }
        for ns, types in by_ns.items()
    ]


def _dependencies(expanded: Any) -> list[dict[str, Any]]:
    out = []
    for r in expanded.resources:
        if not r.depends_on or r.existing:
            continue
        deps = []
        for dep in r.depends_on:
            target = expanded.resource(dep)
            deps.append(
                {
                    "id": dep,
                    "resourceType": target.type if target else "",
                    "resourceName": target.name if target else dep.rsplit("/", 1)[-1],
                }
            )
        out.append({"id": r.id, "resourceType": r.type, "resourceName": r.name, "dependsOn": deps})
    return out


_RG_OPS = {
    "PUT": "ResourceGroups_CreateOrUpdate",
    "GET": "ResourceGroups_Get",
    "HEAD": "ResourceGroups_CheckExistence",
    "DELETE": "ResourceGroups_Delete",
    "PATCH": "ResourceGroups_Update",
}
_DEPLOYMENT_OPS = {
    "PUT": "Deployments_CreateOrUpdate",
    "GET": "Deployments_Get",
    "HEAD": "Deployments_CheckExistence",
    "DELETE": "Deployments_Delete",
}
_DEPLOYMENT_ACTIONS = {
    "cancel": "Deployments_Cancel",
    "validate": "Deployments_Validate",
    "whatif": "Deployments_WhatIf",
    "exporttemplate": "Deployments_ExportTemplate",
    "operationstatuses": "Deployments_OperationStatus",
}
_RESOURCE_OPS = {
    "GET": "Resources_GetById",
    "HEAD": "Resources_CheckExistenceById",
    "DELETE": "Resources_DeleteById",
    "PUT": "Resources_CreateOrUpdateById",
}


def classify(method: str, path: str) -> tuple[str, str, str]:
    """(operation id, subscription, deployment name) of a request, without handling it — for faults/counters."""
    segs = [s for s in path.split("/") if s]
    low = [s.lower() for s in segs]
    n = len(segs)
    if n < 2 or low[0] != "subscriptions":
        return "Unknown", "", ""
    sub = segs[1]
    if n == 2:
        return "Subscriptions_Get", sub, ""
    if low[2] == "operationresults":
        return "OperationResults_Get", sub, ""
    if low[2] == "providers" and n in (3, 4):
        return ("Providers_Get" if n == 4 else "Providers_List"), sub, ""
    if low[2] == "resources":
        return "Resources_List", sub, ""
    if low[2] != "resourcegroups":
        return "Unknown", sub, ""
    if n == 3:
        return "ResourceGroups_List", sub, ""
    if n == 4:
        return _RG_OPS.get(method, "Unknown"), sub, ""
    rest = low[4:]
    if rest == ["resources"]:
        return "Resources_ListByResourceGroup", sub, ""
    if rest[:1] == ["deployments"] and len(rest) >= 3 and rest[2] == "operations":
        return ("DeploymentOperations_Get" if len(rest) > 3 else "DeploymentOperations_List"), sub, segs[5]
    if rest[:3] == ["providers", "microsoft.resources", "deployments"]:
        if len(rest) == 3:
            return "Deployments_ListByResourceGroup", sub, ""
        name = segs[7]
        if len(rest) == 4:
            return _DEPLOYMENT_OPS.get(method, "Unknown"), sub, name
        if rest[4] == "operations":
            return ("DeploymentOperations_Get" if len(rest) > 5 else "DeploymentOperations_List"), sub, name
        return _DEPLOYMENT_ACTIONS.get(rest[4], "Unknown"), sub, name
    if rest[:1] == ["providers"] and resource_health.is_availability_path(rest):
        return resource_health.OPERATION, sub, ""
    if rest[:1] == ["providers"]:
        return _RESOURCE_OPS.get(method, "Unknown"), sub, ""
    return "Unknown", sub, ""
