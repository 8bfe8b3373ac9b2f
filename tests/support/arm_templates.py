"""Small templates for the local ARM tests and benchmark."""

from __future__ import annotations

import copy
from typing import Any

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def web_app_template() -> dict[str, Any]:
    """Storage account + plan + site; outputs read provider-added properties through reference()."""
    return copy.deepcopy(
        {
            "$schema": SCHEMA,
            "contentVersion": "1.0.0.0",
            "parameters": {
                "storageName": {"type": "string", "defaultValue": "[concat('st', uniqueString(resourceGroup().id))]"},
                "tlsVersion": {"type": "string", "defaultValue": "TLS1_2"},
            },
            "resources": [
                {
                    "type": "Microsoft.Storage/storageAccounts",
                    "apiVersion": "2023-01-01",
                    "name": "[parameters('storageName')]",
                    "location": "[resourceGroup().location]",
                    "sku": {"name": "Standard_LRS"},
                    "kind": "StorageV2",
                    "properties": {"minimumTlsVersion": "[parameters('tlsVersion')]", "supportsHttpsTrafficOnly": True},
                },
                {
                    "type": "Microsoft.Web/serverfarms",
                    "apiVersion": "2022-03-01",
                    "name": "plan",
                    "location": "[resourceGroup().location]",
                    "sku": {"name": "B1"},
                },
                {
                    "type": "Microsoft.Web/sites",
                    "apiVersion": "2022-03-01",
                    "name": "app",
                    "location": "[resourceGroup().location]",
                    "dependsOn": ["plan", "[parameters('storageName')]"],
                    "properties": {
                        "serverFarmId": "[resourceId('Microsoft.Web/serverfarms', 'plan')]",
                        "siteConfig": {
                            "appSettings": [
                                {
                                    "name": "BLOB",
                                    "value": "[reference(parameters('storageName')).primaryEndpoints.blob]",
                                }
                            ]
                        },
                    },
                },
            ],
            "outputs": {
                "blob": {"type": "string", "value": "[reference(parameters('storageName')).primaryEndpoints.blob]"},
                "host": {"type": "string", "value": "[reference('app').defaultHostName]"},
            },
        }
    )


def identities_template(count: int, *, prefix: str = "id") -> dict[str, Any]:
    """``count`` user-assigned identities (a copy loop) with tags; outputs their principal ids."""
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "count": {"type": "int", "defaultValue": count},
            "env": {"type": "string", "defaultValue": "dev"},
        },
        "resources": [
            {
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "apiVersion": "2023-01-31",
                "name": f"[format('{prefix}{{0}}', copyIndex())]",
                "location": "[resourceGroup().location]",
                "tags": {"env": "[parameters('env')]"},
                "copy": {"name": "ids", "count": "[parameters('count')]"},
            }
        ],
        "outputs": {
            "principals": {
                "type": "array",
                "copy": {
                    "count": "[parameters('count')]",
                    "input": f"[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', "
                    f"format('{prefix}{{0}}', copyIndex()))).principalId]",
                },
            }
        },
    }


def body(template: dict[str, Any], parameters: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    properties = {"mode": "Incremental", "template": template, "parameters": parameters or {}}
    properties.update(props)
    return {"properties": properties}


def values(**params: Any) -> dict[str, Any]:
    return {k: {"value": v} for k, v in params.items()}


# utcNow() down to the microsecond: two evaluations never agree by chance.
STAMP = "[utcNow('yyyy-MM-ddTHH:mm:ss.ffffffZ')]"


def _identity(name: str, tags: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "apiVersion": "2023-01-31",
        "name": name,
        "location": "[resourceGroup().location]",
        "tags": tags,
    }


def _inner_deployment(name: str, resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A nested deployment with inner scope whose template defaults its own ``stamp`` parameter to utcNow()."""
    return {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": name,
        **extra,
        "properties": {
            "mode": "Incremental",
            "expressionEvaluationOptions": {"scope": "inner"},
            "template": {
                "$schema": SCHEMA,
                "contentVersion": "1.0.0.0",
                "parameters": {"stamp": {"type": "string", "defaultValue": STAMP}},
                "resources": resources,
                "outputs": {"stamp": {"type": "string", "value": "[parameters('stamp')]"}},
            },
        },
    }


def stamped_template(*, rewritten: bool = False) -> dict[str, Any]:
    """Identities tagged with the deployment's utcNow(): ``outer`` from the template's own default, ``inner`` from a
    nested template's. ``rewritten``: two nested deployments also write ``twice`` one after the other with
    different tags, so a redeploy really changes it (and back) whatever the time."""
    resources = [
        _identity("outer", {"stamp": "[parameters('stamp')]"}),
        _inner_deployment("nested", [_identity("inner", {"stamp": "[parameters('stamp')]"})]),
    ]
    if rewritten:
        resources += [
            _inner_deployment("first", [_identity("twice", {"pass": "first", "stamp": "[parameters('stamp')]"})]),
            _inner_deployment(
                "second",
                [_identity("twice", {"pass": "second", "stamp": "[parameters('stamp')]"})],
                dependsOn=["first"],
            ),
        ]
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {"stamp": {"type": "string", "defaultValue": STAMP}},
        "resources": resources,
        "outputs": {
            "stamp": {"type": "string", "value": "[parameters('stamp')]"},
            "inner": {"type": "string", "value": "[reference('nested').outputs.stamp.value]"},
        },
    }
