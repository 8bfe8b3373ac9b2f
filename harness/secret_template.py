"""A template whose securestring parameter's value reaches a resource (a tag), so ARM's what-if and deployment
would echo it: what the scrubbing and the codec have to keep out of everything we record."""

from __future__ import annotations

import secrets
import string
from typing import Any


def random_token() -> str:
    """A random 32-character token: searched byte for byte in every artefact."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def secret_template(account: str) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "adminPassword": {"type": "securestring"},
            "ownerTag": {"type": "string", "defaultValue": "nobody"},  # secret only when --secret-param marks it
        },
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": account,
                "location": "[resourceGroup().location]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "tags": {"pw": "[parameters('adminPassword')]", "owner": "[parameters('ownerTag')]"},
                "properties": {},
            }
        ],
        "outputs": {"accountName": {"type": "string", "value": account}},
    }
