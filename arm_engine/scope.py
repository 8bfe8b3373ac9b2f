"""Where a deployment lands: the facts resourceGroup(), subscription(), tenant(), deployment() and environment()
answer from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

AZURE_CLOUD_ENVIRONMENT: dict[str, Any] = {
    "name": "AzureCloud",
    "gallery": "https://gallery.azure.com/",
    "graph": "https://graph.windows.net/",
    "portal": "https://portal.azure.com",
    "graphAudience": "https://graph.windows.net/",
    "activeDirectoryDataLake": "https://datalake.azure.net/",
    "batch": "https://batch.core.windows.net/",
    "media": "https://rest.media.azure.net",
    "sqlManagement": "https://management.core.windows.net:8443/",
    "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/arm-compute/quickstart-templates/aliases.json",
    "resourceManager": "https://management.azure.com/",
    "authentication": {
        "loginEndpoint": "https://login.microsoftonline.com/",
        "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
        "tenant": "common",
        "identityProvider": "AAD",
    },
    "suffixes": {
        "acrLoginServer": ".azurecr.io",
        "azureDatalakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
        "azureDatalakeStoreFileSystem": "azuredatalakestore.net",
        "azureFrontDoorEndpointSuffix": "azurefd.net",
        "keyvaultDns": ".vault.azure.net",
        "sqlServerHostname": ".database.windows.net",
        "storage": "core.windows.net",
    },
}


@dataclass(frozen=True)
class DeploymentScope:
    """A resource-group deployment's scope. Defaults make a plausible public-cloud scope for offline use."""

    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "rg"
    location: str = "eastus"
    tenant_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group_tags: dict[str, str] = field(default_factory=dict)
    deployment_name: str = "deployment"
    subscription_display_name: str = "Local subscription"
    environment: dict[str, Any] = field(default_factory=lambda: dict(AZURE_CLOUD_ENVIRONMENT))
    # The template link's uri when deployed from a link (deployment().properties.templateLink), else None.
    template_link: str | None = None
    # The deployment's moment, which utcNow() formats: ARM evaluates it once per deployment (its preflight and its
    # run see the same value; a rollback redeploy reuses the earlier deployment's). None: the wall clock at each call.
    deployment_time: datetime | None = None
    # A secret drawn once per deployment from which newGuid() derives its values (the same in the deployment's
    # preflight, run and rollback; unguessable, as ARM's are random). None: a random GUID at each call.
    new_guid_seed: str | None = None

    @property
    def subscription_resource_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}"

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
