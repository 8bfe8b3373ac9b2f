"""ARM JSON resources checked against Azure's type schemas (services/schema_lint.py, data from azure_types/).

- every deliberate mistake (28) in tests/lint/data/schema_mistakes.json is found, with its JSON path and line;
- the 161 public corpus templates give no finding except the ones below, each a real mistake or a type the
  published schemas do not have (docs/LINT.md lists the evidence);
- the findings are warnings: they close the gate unless --allow-warnings (through ``starter.py lint``);
- a process that lints nothing reads no schema.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from client.cli import main
from services.lint import DiagnosticLevel, lint_template

MISTAKES = Path(__file__).resolve().parent / "data" / "schema_mistakes.json"
REPO = Path(__file__).resolve().parents[2]

# (code, JSON path, text on the expected line — or the line itself where the finding is about a whole object): the
# line is found from the text, so the test reads as a list of the mistakes and still pins the exact line.
EXPECTED: list[tuple[str, str, str | int]] = [
    ("UnknownProperty", "resources[0].locaton", '"locaton"'),
    ("RequiredPropertyMissing", "resources[0]", 9),  # location (misspelt above), reported at the resource
    ("ReadOnlyPropertySet", "resources[0].sku.tier", '"tier": "Standard"'),
    ("ValueNotAllowed", "resources[0].sku.name", '"Standard_LRSS"'),  # an open enum's near miss
    ("WrongValueKind", "resources[0].tags.env", '"env": 5'),
    ("UnknownProperty", "resources[0].properties.supportsHttpsTrafficOnlyy", "supportsHttpsTrafficOnlyy"),
    ("ValueNotAllowed", "resources[0].properties.accessTier", '"Hott"'),
    ("WrongValueKind", "resources[0].properties.allowBlobPublicAccess", '"allowBlobPublicAccess": "no"'),
    ("WrongValueKind", "resources[0].properties.minimumTlsVersion", '"minimumTlsVersion": 12'),
    ("ReadOnlyPropertySet", "resources[0].properties.primaryEndpoints", '"primaryEndpoints"'),
    ("UnknownProperty", "resources[0].properties.networkAcls.bypas", '"bypas"'),
    ("WrongValueKind", "resources[0].properties.encryption.services", '"services": "all"'),
    ("ValueNotAllowed", "resources[0].resources[0].properties.publicAccess", '"Everything"'),
    ("UnknownApiVersion", "resources[1].apiVersion", '"2023-05-02"'),
    ("UnknownResourceType", "resources[2].type", "storageAcounts"),
    ("RequiredPropertyMissing", "resources[3]", 50),  # sku
    ("WrongValueKind", "resources[4].properties.idleTimeoutInMinutes", '"four"'),
    ("ValueNotAllowed", "resources[4].properties.publicIPAllocationMethod", '"Dynamc"'),
    ("WrongValueKind", "resources[5].properties.addressSpace.addressPrefixes", '"addressPrefixes": "10.0.0.0/16"'),
    ("UnknownProperty", "resources[5].properties.copy[0].input.properties.adressPrefix", '"adressPrefix"'),
    (
        "WrongValueKind",
        "resources[5].resources[0].properties.privateEndpointNetworkPolicies",
        '"privateEndpointNetworkPolicies": true',
    ),
    ("WrongValueKind", "resources[6].properties.securityRules[0].properties.priority", '"priority": "100"'),
    ("ValueNotAllowed", "resources[7].kind", '"AzureBash"'),
    ("RequiredPropertyMissing", "resources[8].properties.template.resources[0].properties", '"family": "A"'),
    ("ValueNotAllowed", "resources[8].properties.template.resources[0].properties.sku.name", '"gold"'),
    ("WrongValueKind", "resources[8].properties.template.resources[0].properties.enableSoftDelete", '"yes"'),
    ("ReadOnlyPropertySet", "resources[8].properties.template.resources[1].properties.defaultHostName", "example.com"),
    ("UnknownProperty", "resources[8].properties.template.resources[1].properties.siteConfig.alwaysOnn", "alwaysOnn"),
]

KNOWN_FINDINGS: dict[str, set[tuple[str, str]]] = {
    "quickstarts__microsoft.azurepurview__azure-purview-deployment": {
        ("ReadOnlyPropertySet", "resources[0].sku"),
    },
    "quickstarts__microsoft.dataprotection__backup-create-storage-account-enable-protection": {
        ("ReadOnlyPropertySet", "resources[2].sku.tier"),
        ("UnknownProperty", "resources[5].properties.policyInfo.name"),
        ("UnknownProperty", "resources[5].properties.policyInfo.policyParameters.backupDatasourceParametersList"),
    },
    "quickstarts__microsoft.documentdb__cosmosdb-cassandra": {
        ("UnknownProperty", "resources[2].properties.resource.options"),
    },
    "quickstarts__microsoft.documentdb__cosmosdb-gremlin": {
        ("UnknownProperty", "resources[2].properties.resource.options"),
    },
    "quickstarts__microsoft.logic__logic-app-as2-send-receive": {
        ("UnknownApiVersion", "resources[16].apiVersion"),
        ("UnknownApiVersion", "resources[17].apiVersion"),
    },
    "quickstarts__microsoft.media__media-services-create": {
        ("UnknownResourceType", "resources[0].type"),
    },
    "quickstarts__microsoft.mobilenetwork__mobilenetwork-create-full-5gc-deployment": {
        ("UnknownResourceType", "resources[0].type"),
        ("UnknownResourceType", "resources[10].type"),
        ("UnknownResourceType", "resources[1].type"),
        ("UnknownResourceType", "resources[2].type"),
        ("UnknownResourceType", "resources[3].type"),
        ("UnknownResourceType", "resources[4].type"),
        ("UnknownResourceType", "resources[5].type"),
        ("UnknownResourceType", "resources[6].type"),
        ("UnknownResourceType", "resources[7].type"),
        ("UnknownResourceType", "resources[8].type"),
        ("UnknownResourceType", "resources[9].type"),
    },
    "quickstarts__microsoft.mobilenetwork__mobilenetwork-create-new-site": {
        ("UnknownResourceType", "resources[0].type"),
        ("UnknownResourceType", "resources[1].type"),
        ("UnknownResourceType", "resources[2].type"),
        ("UnknownResourceType", "resources[3].type"),
    },
    "quickstarts__microsoft.mobilenetwork__mobilenetwork-create-new-slice": {
        ("UnknownResourceType", "resources[0].type"),
    },
    "quickstarts__microsoft.mobilenetwork__mobilenetwork-provision-proxy-sims": {
        ("UnknownResourceType", "resources[0].type"),
        ("UnknownResourceType", "resources[1].type"),
    },
    "quickstarts__microsoft.network__azure-firewall-dns-proxy": {
        ("WrongValueKind", "resources[23].tags.AzSecPackAutoConfigReady"),
        ("WrongValueKind", "resources[30].tags.AzSecPackAutoConfigReady"),
        ("WrongValueKind", "resources[37].tags.AzSecPackAutoConfigReady"),
    },
    "quickstarts__microsoft.web__web-app-asp-app-on-asev3-create": {
        ("ReadOnlyPropertySet", "resources[2].properties.dedicatedHostCount"),
        ("UnknownProperty", "resources[2].properties.zoneRedundant"),
    },
    "quickstarts__microsoft.web__webapp-multi-region-front-door": {
        ("UnknownProperty", "resources[3].properties.siteConfig.scmIpSecurityRestrictionsDefaultAction"),
        ("UnknownProperty", "resources[9].properties.siteConfig.scmIpSecurityRestrictionsDefaultAction"),
    },
}


def _path(message: str) -> str:
    found = re.search(r"\(at ([^)]*)\)$", message)
    assert found, message
    return found.group(1)


def _line_of(text: str, needle: str) -> int:
    lines = text.splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    assert hits, needle
    return hits[0]


def test_every_deliberate_mistake_is_found_at_its_path_and_line(no_compiler: None) -> None:
    text = MISTAKES.read_text(encoding="utf-8")
    result = lint_template(MISTAKES)
    found = {(d.code, _path(d.message)): d for d in result.diagnostics}
    assert len(EXPECTED) >= 20
    for code, path, needle in EXPECTED:
        assert (code, path) in found, f"{code} at {path} not reported; got {sorted(found)}"
        d = found[(code, path)]
        assert d.level == DiagnosticLevel.WARNING
        line = needle if isinstance(needle, int) else _line_of(text, needle)
        assert d.line == line, d.render()
        assert d.col is not None and d.col >= 1
    # nothing else: no finding that is not one of the mistakes
    assert sorted(found) == sorted((c, p) for c, p, _ in EXPECTED)
    assert not result.passed and "--allow-warnings" in result.gate_reason


def test_messages_name_the_nearest_known_names_and_versions(no_compiler: None) -> None:
    by_path = {_path(d.message): d.message for d in lint_template(MISTAKES).diagnostics}
    assert "did you mean 'supportsHttpsTrafficOnly'?" in by_path["resources[0].properties.supportsHttpsTrafficOnlyy"]
    assert "nearest known: 2023-05-01" in by_path["resources[1].apiVersion"]
    assert "nearest known: Microsoft.Storage/storageAccounts" in by_path["resources[2].type"]
    assert "Hot, Cool, Premium, Cold" in by_path["resources[0].properties.accessTier"]
    assert "requires 'sku'" in by_path["resources[3]"]
    assert "did you mean 'Standard_LRS'?" in by_path["resources[0].sku.name"]
    assert "did you mean 'Dynamic'?" in by_path["resources[4].properties.publicIPAllocationMethod"]


def test_expressions_and_existing_resources_are_not_judged(no_compiler: None, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        '{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",'
        ' "contentVersion": "1.0.0.0",'
        ' "parameters": {"p": {"type": "object", "defaultValue": {"name": "Standard_LRS", "tier": "Hot"}}},'
        ' "resources": ['
        ' {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-05-01", "name": "a",'
        '  "location": "[resourceGroup().location]", "sku": "[parameters(\'p\')]", "kind": "StorageV2",'
        '  "properties": {"accessTier": "[parameters(\'p\').tier]", "allowBlobPublicAccess": "[equals(1, 1)]"}},'
        ' {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-05-01", "name": "b", "existing": true}'
        "]}",
        encoding="utf-8",
    )
    assert lint_template(path).diagnostics == []


def test_public_corpus_has_no_findings_beyond_the_reviewed_ones(no_compiler: None, quickstarts: Path) -> None:
    unexpected: dict[str, list[str]] = {}
    seen: dict[str, set[tuple[str, str]]] = {}
    for template in sorted(quickstarts.glob("*/azuredeploy.json")):
        folder = template.parent.name
        findings = {(d.code, _path(d.message)) for d in lint_template(template).diagnostics}
        seen[folder] = findings
        extra = findings - KNOWN_FINDINGS.get(folder, set())
        if extra:
            unexpected[folder] = sorted(f"{c} at {p}" for c, p in extra)
    assert not unexpected, unexpected
    gone = {f: sorted(v - seen.get(f, set())) for f, v in KNOWN_FINDINGS.items() if v - seen.get(f, set())}
    assert not gone, f"listed findings no longer reported (update KNOWN_FINDINGS and docs/LINT.md): {gone}"


def test_starter_lint_halts_on_schema_warnings_unless_allowed(no_compiler: None, capsys: pytest.CaptureFixture) -> None:
    assert main(["lint", "-t", str(MISTAKES)]) == 1
    out = capsys.readouterr().out
    assert f"{MISTAKES}(19,23) : Warning ValueNotAllowed: 'Hott' is not one of Hot, Cool, Premium, Cold" in out
    assert out.endswith(f"0 errors, {len(EXPECTED)} warnings in 1 file.\n")
    assert main(["lint", "-t", str(MISTAKES), "--allow-warnings"]) == 0


def test_the_schema_is_read_only_when_needed() -> None:
    code = (
        "import sys, services.lint, client.cli, worker\n"
        "assert 'azure_types' not in sys.modules, 'the CLI and the worker import it without need'\n"
        "import local_arm.server, azure_types\n"
        "assert azure_types._shards == {} and azure_types._archive_names.cache_info().currsize == 0, 'data read'\n"
        "azure_types.lookup('Microsoft.Storage/storageAccounts', '2023-05-01')\n"
        "assert list(azure_types._shards) == ['microsoft.storage'], list(azure_types._shards)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
