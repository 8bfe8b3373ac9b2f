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

from .schema_values import fill_read_only

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
    """Properties the provider adds under ``properties`` (beyond provisioningState) where a value written for the
    service is more faithful than the schema-driven one (``schema_values.fill_read_only``, which fills the rest):
    real DNS suffixes and URL shapes, values that must agree with each other, and values the service fills in
    though the schema marks them writable. Plain GUIDs (Log Analytics ``customerId``, a VM's ``vmId``, a Front Door
    profile's ``frontDoorId``) come from the schema."""
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
            "possibleOutboundIpAddresses": f"20.{d[0]}.{d[1]}.{d[2]},20.{d[0]}.{d[1]}.{d[3]}",
            "customDomainVerificationId": d.hex().upper()[:64],
        }
    if t == "microsoft.network/publicipaddresses":
        extra: dict[str, Any] = {"ipAddress": f"20.{d[0]}.{d[1]}.{d[2] or 1}", "resourceGuid": stable_guid(resource_id)}
        return extra
    if t == "microsoft.keyvault/vaults/secrets":
        vault, _, secret = name.partition("/")
        uri = f"https://{vault.lower()}.vault.azure.net/secrets/{secret}"
        return {"secretUri": uri, "secretUriWithVersion": f"{uri}/{d.hex()[:32]}"}
    if t == "microsoft.keyvault/vaults/keys":
        vault, _, key = name.partition("/")
        uri = f"https://{vault.lower()}.vault.azure.net/keys/{key}"
        return {"keyUri": uri, "keyUriWithVersion": f"{uri}/{d.hex()[:32]}"}
    if t == "microsoft.machinelearningservices/workspaces":
        return {
            "workspaceId": stable_guid(resource_id, "workspace"),
            "discoveryUrl": f"https://{loc}.api.azureml.ms/discovery",
            "mlFlowTrackingUri": f"azureml://{loc}.api.azureml.ms/mlflow/v1.0{resource_id}",
        }
    if t == "microsoft.cdn/profiles/endpoints":
        return {"hostName": f"{n}.azureedge.net"}
    if t == "microsoft.cdn/profiles/afdendpoints":
        return {"hostName": f"{n}-{d.hex()[:16]}.z01.azurefd.net"}
    if t == "microsoft.apimanagement/service":
        return {
            # API Management always reports its default gateway host name (certificate built in), though the
            # schema marks hostnameConfigurations writable.
            "hostnameConfigurations": [
                {
                    "type": "Proxy",
                    "hostName": f"{n}.azure-api.net",
                    "negotiateClientCertificate": False,
                    "defaultSslBinding": True,
                    "certificateSource": "BuiltIn",
                }
            ],
            "gatewayUrl": f"https://{n}.azure-api.net",
            "portalUrl": f"https://{n}.portal.azure-api.net",
            "publicIPAddresses": [f"20.{d[0]}.{d[1]}.{d[2] or 1}"],
            "privateIPAddresses": ["10.0.0.4"],
        }
    if t == "microsoft.databricks/workspaces":
        return {
            "workspaceId": stable_guid(resource_id, "workspace"),
            "workspaceUrl": f"adb-{int.from_bytes(d[:6], 'big')}.{d[6] % 20}.azuredatabricks.net",
            "storageAccountIdentity": {
                "principalId": stable_guid(resource_id, "storage-identity"),
                "tenantId": "00000000-0000-0000-0000-000000000000",
                "type": "SystemAssigned",
            },
            "managedDiskIdentity": {
                "principalId": stable_guid(resource_id, "disk-identity"),
                "tenantId": "00000000-0000-0000-0000-000000000000",
                "type": "SystemAssigned",
            },
        }
    if t == "microsoft.desktopvirtualization/hostpools":
        return {"registrationInfo": {"token": base64.b64encode(_digest(resource_id, "token")).decode()}}
    if t == "microsoft.devices/iothubs":
        return {
            "hostName": f"{n}.azure-devices.net",
            "eventHubEndpoints": {
                "events": {"endpoint": f"sb://ihsu-{d.hex()[:8]}.servicebus.windows.net/", "path": n}
            },
        }
    if t == "microsoft.digitaltwins/digitaltwinsinstances":
        return {"hostName": f"{n}.api.{loc}.digitaltwins.azure.net"}
    if t == "microsoft.healthdataaiservices/deidservices":
        return {"serviceUrl": f"https://{n}.api.deid.azure.com"}
    if t == "microsoft.web/sites/slots":
        site, _, slot = name.partition("/")
        host = f"{site.lower()}-{slot.lower()}.azurewebsites.net"
        return {"defaultHostName": host, "hostNames": [host], "state": "Running"}
    if t == "microsoft.app/containerapps":
        return {
            "latestRevisionFqdn": f"{n}--{d.hex()[:7]}.{d.hex()[7:15]}.{loc}.azurecontainerapps.io",
            "configuration": {"ingress": {"fqdn": f"{n}.{d.hex()[7:15]}.{loc}.azurecontainerapps.io"}},
            "outboundIpAddresses": [f"20.{d[0]}.{d[1]}.{d[2] or 1}"],
        }
    if t == "microsoft.app/managedenvironments":
        return {"defaultDomain": f"{d.hex()[7:15]}.{loc}.azurecontainerapps.io", "staticIp": f"20.{d[0]}.{d[1]}.{d[3]}"}
    if t == "microsoft.servicefabric/clusters":
        return {
            "clusterEndpoint": f"https://{loc}.servicefabric.azure.com/runtime/clusters/{stable_guid(resource_id)}",
            "clusterId": stable_guid(resource_id),
        }
    if t == "microsoft.web/staticsites":
        return {"defaultHostname": f"{n.replace('_', '-')}-{d.hex()[:6]}.azurestaticapps.net"}
    if t == "microsoft.network/bastionhosts":
        return {"dnsName": f"bst-{stable_guid(resource_id)}.bastion.azure.com"}
    if t == "microsoft.network/dnszones":
        return {"nameServers": [f"ns{i}-0{d[i] % 9 + 1}.azure-dns.com." for i in range(1, 5)]}
    if t == "microsoft.network/privateendpoints":
        rg_prefix = resource_id.split("/providers/")[0]
        return {
            "networkInterfaces": [
                {"id": f"{rg_prefix}/providers/Microsoft.Network/networkInterfaces/{n}.nic.{stable_guid(resource_id)}"}
            ],
        }
    if t == "microsoft.batch/batchaccounts":
        return {"accountEndpoint": f"{n}.{loc}.batch.azure.com"}
    if t == "microsoft.eventgrid/topics" or t == "microsoft.eventgrid/domains":
        return {"endpoint": f"https://{n}.{loc}-1.eventgrid.azure.net/api/events"}
    if t == "microsoft.signalrservice/webpubsub":
        return {"hostName": f"{n}.webpubsub.azure.com"}
    if t == "microsoft.communication/communicationservices":
        return {"hostName": f"{n}.communication.azure.com"}
    if t == "microsoft.logic/workflows":
        return {"accessEndpoint": f"https://prod-00.{loc}.logic.azure.com:443/workflows/{d.hex()[:32]}"}
    if t == "microsoft.kusto/clusters":
        return {
            "uri": f"https://{n}.{loc}.kusto.windows.net",
            "dataIngestionUri": f"https://ingest-{n}.{loc}.kusto.windows.net",
        }
    if t == "microsoft.synapse/workspaces":
        return {
            "connectivityEndpoints": {
                "web": f"https://web.azuresynapse.net?workspace={resource_id}",
                "dev": f"https://{n}.dev.azuresynapse.net",
                "sqlOnDemand": f"{n}-ondemand.sql.azuresynapse.net",
                "sql": f"{n}.sql.azuresynapse.net",
            }
        }
    if t == "microsoft.appconfiguration/configurationstores":
        return {"endpoint": f"https://{n}.azconfig.io"}
    if t == "microsoft.search/searchservices":
        return {"endpoint": f"https://{n}.search.windows.net"}
    if t == "microsoft.web/hostingenvironments":
        return {"dnsSuffix": f"{n}.appserviceenvironment.net"}
    if t in ("microsoft.dbformysql/servers", "microsoft.dbforpostgresql/servers", "microsoft.dbformariadb/servers"):
        kind = t.split("/")[0].removeprefix("microsoft.dbfor")
        return {"fullyQualifiedDomainName": f"{n}.{kind}.database.azure.com"}
    if t == "microsoft.resources/deploymentscripts":
        return {"outputs": {}}
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
        rg = resource_id.split("/")[4] if resource_id.count("/") > 4 else "rg"
        node_rg = f"MC_{rg}_{n}_{loc}"
        sub = resource_id.split("/")[2] if resource_id.count("/") > 2 else ""
        return {
            "fqdn": f"{n}-dns-{d.hex()[:8]}.hcp.{loc}.azmk8s.io",
            "privateFQDN": f"{n}-dns-{d.hex()[:8]}.privatelink.{loc}.azmk8s.io",
            "oidcIssuerProfile": {"issuerURL": f"https://{loc}.oic.prod-aks.azure.com/{stable_guid(resource_id)}/"},
            "nodeResourceGroup": node_rg,
            "identityProfile": {
                "kubeletidentity": {
                    "resourceId": f"/subscriptions/{sub}/resourceGroups/{node_rg}/providers/"
                    f"Microsoft.ManagedIdentity/userAssignedIdentities/{n}-agentpool",
                    "clientId": stable_guid(resource_id, "kubelet-client"),
                    "objectId": stable_guid(resource_id, "kubelet-object"),
                }
            },
        }
    if t in ("microsoft.eventhub/namespaces", "microsoft.servicebus/namespaces"):
        return {"serviceBusEndpoint": f"https://{n}.servicebus.windows.net:443/"}
    if t == "microsoft.signalrservice/signalr":
        return {"hostName": f"{n}.service.signalr.net"}
    if t == "microsoft.cognitiveservices/accounts":
        endpoint = f"https://{n}.cognitiveservices.azure.com/"
        return {
            "endpoint": endpoint,
            "endpoints": {
                "OpenAI Language Model Instance API": f"https://{n}.openai.azure.com/",
                "AI Foundry API": f"https://{n}.services.ai.azure.com/",
                "Cognitive Services": endpoint,
            },
        }
    return {}


def enrich(body: dict[str, Any], resource_id: str, *, api_version: str | None = None) -> dict[str, Any]:
    """The GET payload of a resource stored from ``body`` (everything but provisioningState).

    The hand-written values above come first: they carry each service's real DNS suffix and shapes, and values the
    schema does not flag read-only though the service fills them in (private endpoints' ``customDnsConfigs``,
    ids of inline subnets). Then every other read-only property the type's schema declares
    (``schema_values.fill_read_only``)."""
    payload = {k: v for k, v in copy.deepcopy(body).items() if k.lower() not in WRITE_ONLY_KEYS}
    payload["id"] = resource_id
    name = str(payload.get("name", _short_name(resource_id)))
    rtype = str(payload.get("type", ""))
    props = payload.get("properties")
    if props is None:
        props = payload["properties"] = {}
    if isinstance(props, dict):
        _strip_write_only(props)
        _merge_defaults(props, read_only_properties(rtype, name, payload.get("location"), resource_id))
    if isinstance(props, dict):
        _nested_read_only(rtype.lower(), resource_id, props, payload.get("location"))
    identity = payload.get("identity")
    if isinstance(identity, dict) and "systemassigned" in str(identity.get("type", "")).lower():
        identity.setdefault("principalId", stable_guid(resource_id, "system-principal"))
        identity.setdefault("tenantId", "00000000-0000-0000-0000-000000000000")
    if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), dict):
        # Each assigned identity reports the identity resource's own ids (what the identity's GET answers).
        for identity_id, entry in identity["userAssignedIdentities"].items():
            if isinstance(entry, dict):
                entry.setdefault("principalId", stable_guid(identity_id, "principal"))
                entry.setdefault("clientId", stable_guid(identity_id, "client"))
    if isinstance(props, dict):
        fill_read_only(payload, rtype, api_version, resource_id)
    return payload


def _merge_defaults(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Add provider values the template did not set, descending into objects the template did set."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge_defaults(target[key], value)


def _nested_read_only(rtype: str, resource_id: str, props: dict[str, Any], location: Any) -> None:
    """Read-only values inside template-set objects and arrays (ids of inline children, addresses)."""
    loc = str(location or "eastus").replace(" ", "").lower()
    if rtype == "microsoft.network/publicipaddresses":
        dns = props.get("dnsSettings")
        if isinstance(dns, dict) and isinstance(dns.get("domainNameLabel"), str):
            dns.setdefault("fqdn", f"{dns['domainNameLabel']}.{loc}.cloudapp.azure.com")
    if rtype == "microsoft.network/privateendpoints" and not props.get("customDnsConfigs"):
        # One DNS record per connected target and group, as the service reports them when no private DNS zone
        # group registers them (the schema marks customDnsConfigs writable, so the schema-driven fill skips it).
        configs = []
        connections = (props.get("privateLinkServiceConnections") or []) + (
            props.get("manualPrivateLinkServiceConnections") or []
        )
        for i, conn in enumerate(c for c in connections if isinstance(c, dict)):
            link: dict[str, Any] = conn["properties"] if isinstance(conn.get("properties"), dict) else {}
            target = str(link.get("privateLinkServiceId") or "target").rstrip("/").rsplit("/", 1)[-1].lower()
            groups = [g for g in link.get("groupIds") or [] if isinstance(g, str)] or ["default"]
            for group in groups:
                configs.append(
                    {"fqdn": f"{target}.privatelink.{group.lower()}.azure.net", "ipAddresses": [f"10.0.0.{4 + i}"]}
                )
        props["customDnsConfigs"] = configs
    if rtype == "microsoft.containerinstance/containergroups":
        ip = props.get("ipAddress")
        if isinstance(ip, dict):
            d = _digest(resource_id, "aci")
            ip.setdefault("ip", f"20.{d[0]}.{d[1]}.{d[2] or 1}")
            if isinstance(ip.get("dnsNameLabel"), str):
                ip.setdefault("fqdn", f"{ip['dnsNameLabel']}.{loc}.azurecontainer.io")
    private_group = props.get("subnetIds") or props.get("networkProfile")
    if rtype == "microsoft.containerinstance/containergroups" and "ipAddress" not in props and private_group:
        props["ipAddress"] = {"ip": "10.0.0.4", "type": "Private"}
    if rtype == "microsoft.containerservice/managedclusters":
        addons = props.get("addonProfiles")
        if isinstance(addons, dict):
            for addon, spec in addons.items():
                if isinstance(spec, dict) and spec.get("enabled"):
                    spec.setdefault(
                        "identity",
                        {
                            "clientId": stable_guid(resource_id, f"{addon}-client"),
                            "objectId": stable_guid(resource_id, f"{addon}-object"),
                            "resourceId": f"{resource_id}/addonIdentities/{addon}",
                        },
                    )
    if rtype == "microsoft.network/loadbalancers":
        for key in ("backendAddressPools", "probes", "loadBalancingRules", "inboundNatRules"):
            for item in props.get(key) or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    item.setdefault("id", f"{resource_id}/{key}/{item['name']}")
    child_arrays = {
        "microsoft.network/virtualnetworks": ("subnets", "subnets", False),
        "microsoft.network/loadbalancers": ("frontendIPConfigurations", "frontendIPConfigurations", True),
        "microsoft.network/azurefirewalls": ("ipConfigurations", "azureFirewallIpConfigurations", True),
        "microsoft.network/networkinterfaces": ("ipConfigurations", "ipConfigurations", True),
        "microsoft.network/applicationgateways": ("frontendIPConfigurations", "frontendIPConfigurations", True),
        "microsoft.network/routetables": ("routes", "routes", False),
        "microsoft.network/networksecuritygroups": ("securityRules", "securityRules", False),
    }
    spec = child_arrays.get(rtype)
    if spec is None:
        return
    key, child_type, private_ip = spec
    items = props.get(key)
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("name"), str):
            item.setdefault("id", f"{resource_id}/{child_type}/{item['name']}")
        inner = item.get("properties")
        if (
            private_ip
            and isinstance(inner, dict)
            and (rtype.endswith("azurefirewalls") or "publicIPAddress" not in inner)
        ):
            inner.setdefault("privateIPAddress", inner.get("privateIPAddress") or f"10.0.{i}.4")


def strip_write_only(value: Any) -> Any:
    """A copy without the properties RPs never return (passwords, protected settings)."""
    result = copy.deepcopy(value)
    _strip_write_only(result)
    return result


def _strip_write_only(value: Any) -> None:
    if isinstance(value, dict):
        for key in [k for k in value if k.lower() in WRITE_ONLY_KEYS]:
            del value[key]
        for v in value.values():
            _strip_write_only(v)
    elif isinstance(value, list):
        for v in value:
            _strip_write_only(v)


def resource_type_of(resource_id: str) -> str:
    """``NS/t1/t2`` from ``/subscriptions/.../providers/NS/t1/n1/t2/n2`` (the last provider segment, so extension
    resources give their own type); "" when the id names no provider resource."""
    parts = resource_id.strip("/").split("/")
    idx = max((i for i, p in enumerate(parts) if p.lower() == "providers"), default=-1)
    tail = parts[idx + 1 :] if idx >= 0 else []
    if len(tail) < 3:
        return ""
    return "/".join([tail[0], *tail[1::2]])


def list_call_answer(resource_id: str, function: str) -> Any:
    """A deterministic answer for list* actions the schema does not know (listKeys, listSecrets, ...)."""
    fn = function.lower()

    def key(i: int) -> str:
        return base64.b64encode(_digest(resource_id, f"{fn}{i}") * 2).decode()

    if fn in ("listkeys", "listkey"):
        return {
            "key1": key(1),
            "key2": key(2),
            "primarySharedKey": key(1),
            "secondarySharedKey": key(2),
            "primaryAccessKey": key(1),
            "value": [
                {
                    "keyName": "iothubowner",
                    "name": "iothubowner",
                    "primaryKey": key(1),
                    "secondaryKey": key(2),
                    "value": key(1),
                    "rights": "RegistryWrite, ServiceConnect, DeviceConnect",
                },
            ],
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
    if fn == "listauthkeys":
        return {"authKey1": "IR@" + key(1), "authKey2": "IR@" + key(2)}
    if fn == "listconnectionstrings":
        return {"connectionStrings": [{"connectionString": f"AccountKey={key(1)}", "description": "Primary"}]}
    if fn == "listcredentials":
        return {"username": _short_name(resource_id), "passwords": [{"name": "password", "value": key(1)}]}
    # Any other list* action: the shapes the common ones share.
    return {
        "value": [{"name": "secret", "value": key(1)}],
        "keys": [{"keyName": "key1", "value": key(1)}, {"keyName": "key2", "value": key(2)}],
        "primaryKey": key(1),
        "secondaryKey": key(2),
        "primaryConnectionString": f"Endpoint=local;Key={key(1)}",
        "secondaryConnectionString": f"Endpoint=local;Key={key(2)}",
    }
