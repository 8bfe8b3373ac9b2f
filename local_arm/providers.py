"""What resource providers add to a resource: read-only properties, list* answers and secrets they never return.

Cheap, deterministic stand-ins (derived from the resource id) so that reference(), list*() and outputs have
something real to read and a redeploy of the same template sees the same values.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from typing import Any

# Properties an RP accepts on PUT but never returns on GET (and what-if therefore cannot compare).
WRITE_ONLY_KEYS = frozenset(
    {"adminpassword", "administratorloginpassword", "password", "protectedsettings", "customdata", "secret"}
)

# Top-level keys of a stored resource that ARM owns (what-if ignores them; GET answers them).
READ_ONLY_TOP_LEVEL = frozenset({"id", "etag", "systemdata", "managedby"})


def _digest(resource_id: str, salt: str = "") -> bytes:
    return hashlib.sha256((salt + resource_id.lower()).encode()).digest()


def stable_guid(resource_id: str, salt: str = "") -> str:
    return str(uuid.UUID(bytes=_digest(resource_id, salt)[:16]))


def _short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def read_only_properties(resource_type: str, name: str, location: str | None, resource_id: str) -> dict[str, Any]:
    """Properties the provider adds under ``properties`` (beyond provisioningState)."""
    t = resource_type.lower()
    n = _short_name(name).lower()
    loc = (location or "eastus").replace(" ", "").lower()
    d = _digest(resource_id)
    if t == "microsoft.storage/storageaccounts":
        endpoints = {svc: f"https://{n}.{svc}.core.windows.net/" for svc in ("blob", "queue", "table", "file", "dfs")}
        endpoints["web"] = f"https://{n}.z13.web.core.windows.net/"
        return {
            "primaryEndpoints": endpoints,
            "primaryLocation": loc,
            "statusOfPrimary": "available",
            "creationTime": "2026-01-01T00:00:00.0000000Z",
        }
    if t == "microsoft.web/sites":
        return {
            "defaultHostName": f"{n}.azurewebsites.net",
            "hostNames": [f"{n}.azurewebsites.net"],
            "enabledHostNames": [f"{n}.azurewebsites.net", f"{n}.scm.azurewebsites.net"],
            "state": "Running",
            "outboundIpAddresses": f"20.{d[0]}.{d[1]}.{d[2]}",
            "customDomainVerificationId": d.hex().upper()[:64],
        }
    if t == "microsoft.network/publicipaddresses":
        extra: dict[str, Any] = {"ipAddress": f"20.{d[0]}.{d[1]}.{d[2] or 1}", "resourceGuid": stable_guid(resource_id)}
        return extra
    if t == "microsoft.keyvault/vaults":
        return {"vaultUri": f"https://{n}.vault.azure.net/"}
    if t in (
        "microsoft.sql/servers",
        "microsoft.dbforpostgresql/flexibleservers",
        "microsoft.dbformysql/flexibleservers",
    ):
        suffix = {
            "microsoft.sql/servers": "database.windows.net",
            "microsoft.dbforpostgresql/flexibleservers": "postgres.database.azure.com",
            "microsoft.dbformysql/flexibleservers": "mysql.database.azure.com",
        }[t]
        return {"fullyQualifiedDomainName": f"{n}.{suffix}"}
    if t == "microsoft.documentdb/databaseaccounts":
        return {"documentEndpoint": f"https://{n}.documents.azure.com:443/"}
    if t == "microsoft.containerregistry/registries":
        return {"loginServer": f"{n}.azurecr.io"}
    if t == "microsoft.insights/components":
        key = stable_guid(resource_id, "ikey")
        return {
            "InstrumentationKey": key,
            "ConnectionString": f"InstrumentationKey={key};IngestionEndpoint=https://{loc}.in.applicationinsights.azure.com/",
            "AppId": stable_guid(resource_id, "appid"),
        }
    if t == "microsoft.managedidentity/userassignedidentities":
        return {
            "principalId": stable_guid(resource_id, "principal"),
            "clientId": stable_guid(resource_id, "client"),
            "tenantId": "00000000-0000-0000-0000-000000000000",
        }
    if t == "microsoft.cache/redis":
        return {"hostName": f"{n}.redis.cache.windows.net", "port": 6379, "sslPort": 6380}
    if t == "microsoft.containerservice/managedclusters":
        return {"fqdn": f"{n}-dns-{d.hex()[:8]}.hcp.{loc}.azmk8s.io"}
    if t in ("microsoft.eventhub/namespaces", "microsoft.servicebus/namespaces"):
        return {"serviceBusEndpoint": f"https://{n}.servicebus.windows.net:443/"}
    if t == "microsoft.signalrservice/signalr":
        return {"hostName": f"{n}.service.signalr.net"}
    if t == "microsoft.cognitiveservices/accounts":
        return {"endpoint": f"https://{loc}.api.cognitive.microsoft.com/"}
    return {}


def enrich(body: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """The GET payload of a resource stored from ``body`` (everything but provisioningState)."""
    payload = {k: v for k, v in copy.deepcopy(body).items() if k.lower() not in WRITE_ONLY_KEYS}
    payload["id"] = resource_id
    name = str(payload.get("name", _short_name(resource_id)))
    rtype = str(payload.get("type", ""))
    props = payload.get("properties")
    if props is None:
        props = payload["properties"] = {}
    if isinstance(props, dict):
        _strip_write_only(props)
        for key, value in read_only_properties(rtype, name, payload.get("location"), resource_id).items():
            props.setdefault(key, value)
    identity = payload.get("identity")
    if isinstance(identity, dict) and "systemassigned" in str(identity.get("type", "")).lower():
        identity.setdefault("principalId", stable_guid(resource_id, "system-principal"))
        identity.setdefault("tenantId", "00000000-0000-0000-0000-000000000000")
    return payload


def _strip_write_only(value: Any) -> None:
    if isinstance(value, dict):
        for key in [k for k in value if k.lower() in WRITE_ONLY_KEYS]:
            del value[key]
        for v in value.values():
            _strip_write_only(v)
    elif isinstance(value, list):
        for v in value:
            _strip_write_only(v)


def list_call_answer(resource_id: str, function: str) -> Any:
    """A deterministic answer for list* actions (listKeys, listSecrets, listConnectionStrings, ...)."""
    fn = function.lower()

    def key(i: int) -> str:
        return base64.b64encode(_digest(resource_id, f"{fn}{i}") * 2).decode()

    if fn in ("listkeys", "listkey"):
        return {
            "keys": [
                {"keyName": "key1", "value": key(1), "permissions": "FULL"},
                {"keyName": "key2", "value": key(2), "permissions": "FULL"},
            ],
            "primaryKey": key(1),
            "secondaryKey": key(2),
            "primaryMasterKey": key(1),
            "secondaryMasterKey": key(2),
            "primaryConnectionString": f"Endpoint=sb://local/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key(1)}",
            "secondaryConnectionString": f"Endpoint=sb://local/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key(2)}",
        }
    if fn == "listconnectionstrings":
        return {"connectionStrings": [{"connectionString": f"AccountKey={key(1)}", "description": "Primary"}]}
    if fn == "listcredentials":
        return {"username": _short_name(resource_id), "passwords": [{"name": "password", "value": key(1)}]}
    return {"value": [{"name": "secret", "value": key(1)}], "keys": [{"keyName": "key1", "value": key(1)}]}
