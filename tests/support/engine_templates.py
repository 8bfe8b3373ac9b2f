"""Small helpers for the template tests: a fixed scope, a template builder, a dict-backed state view."""

from __future__ import annotations

from typing import Any

from arm_engine import DeploymentScope, ExpandedDeployment, ExpandedResource, TemplateError, expand_template

SUB = "11111111-1111-1111-1111-111111111111"
RG = "rg-test"
SCOPE = DeploymentScope(subscription_id=SUB, resource_group=RG, location="westeurope", deployment_name="dep")
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"


def rid(rtype: str, *names: str, group: str = RG, sub: str = SUB) -> str:
    """A resource-group resource id built by hand (the expected values do not go through the engine)."""
    segments = rtype.split("/")
    parts = [segments[0]]
    for t, n in zip(segments[1:], names, strict=True):
        parts += [t, n]
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/" + "/".join(parts)


def template(resources: Any = None, **sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": resources if resources is not None else [],
    }
    doc.update(sections)
    return doc


def expand(doc: dict[str, Any] | str, **kwargs: Any) -> ExpandedDeployment:
    kwargs.setdefault("scope", SCOPE)
    return expand_template(doc, **kwargs)


def expand_error(doc: dict[str, Any] | str, **kwargs: Any) -> TemplateError:
    try:
        expand(doc, **kwargs)
    except TemplateError as exc:
        return exc
    raise AssertionError("expected a TemplateError")


def names(result: ExpandedDeployment) -> list[str]:
    return [r.name for r in result.resources]


class DictState:
    """A ResourceStateView over a dict of id → GET payload."""

    def __init__(self, resources: dict[str, dict[str, Any]] | None = None) -> None:
        self.resources = {k.lower(): v for k, v in (resources or {}).items()}
        self.list_calls: list[tuple[str, str]] = []

    def get_resource(self, resource_id: str, api_version: str | None = None) -> dict[str, Any] | None:
        return self.resources.get(resource_id.lower())

    def list_call(self, resource_id: str, function: str, api_version: str, body: Any) -> Any:
        self.list_calls.append((resource_id, function))
        if resource_id.lower() not in self.resources:
            return None
        return {"keys": [{"keyName": "key1", "value": f"secret-of-{resource_id.rsplit('/', 1)[-1]}"}]}


class RecordingDeployer:
    """A ResourceDeployer that records what it was asked to deploy and answers with a GET-like payload."""

    def __init__(self, state: DictState) -> None:
        self.state = state
        self.deployed: list[ExpandedResource] = []

    def deploy(self, resource: ExpandedResource) -> dict[str, Any]:
        self.deployed.append(resource)
        props = dict(resource.properties or {}) if isinstance(resource.properties, dict) else {}
        props["provisioningState"] = "Succeeded"
        props["deployedOrder"] = len(self.deployed)
        payload = {"id": resource.id, "name": resource.name, "type": resource.type, "properties": props}
        self.state.resources[resource.id.lower()] = payload
        return payload
