"""Expanding the public quickstart corpus the way its upstream CI pipeline deploys it: each azuredeploy.json with
its azuredeploy.parameters.json, GEN-* placeholders replaced by plausible, deterministic values, one fixed scope.

Shared by the corpus tests and bench/bench_engine.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arm_engine import DeploymentScope, ExpandedDeployment, TemplateError, expand_template

CORPUS_SCOPE = DeploymentScope(
    subscription_id="11111111-2222-3333-4444-555555555555",
    resource_group="rg-corpus",
    location="westus2",
    tenant_id="66666666-7777-8888-9999-000000000000",
    deployment_name="corpus-deployment",
)

UPSTREAM = "https://raw.githubusercontent.com/Azure/azure-quickstart-templates/26cedeae220682a35bdc56036d69ab3c3713f5a2"

# A well-formed (test-only) RSA public key: templates put it into linuxConfiguration.ssh.publicKeys.
SSH_PUBLIC_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7vbqajDhA+17t3ViPJ3ClLQ2GJm7wJ+F7pv0B3g5DqEpv4oMtKj7lEwQ2z2vW0XgJ"
    "P9s0hSx9Ck3f0n+vG2wY0l3Bf2WgSxr9v1pKc7bTn0cD2F1xZ0m5d3pQeE4r8h6Uu7bT0Vn2f9sQa1wLk3Xo5Zr8Jp6Yc4Nd2Mb0"
    "Hq1Tg7Ea9Ks3Rf5Wb8Lz2Xc6Vd4Fe1Gh3Ij5Kl7Mn9Op0Qr2St4Uv6Wx8Yz0Ab1Cd3Ef5Gh7Ij9Kl0Mn2Op4Qr6St8Uv0Wx2Yz4A"
    "b6Cd8Ef0Gh2Ij4Kl6Mn8Op1Qr3St5Uv7Wx9Yz corpus@test"
)


def _digest(folder: str, what: str) -> str:
    return hashlib.sha256(f"{folder}:{what}".encode()).hexdigest()


def unique_name(folder: str, length: int) -> str:
    """Lower-case letters and digits starting with a letter (valid for storage accounts, key vaults, DNS)."""
    digest = _digest(folder, f"unique-{length}")
    return ("c" + "".join(ch for ch in digest if ch.isalnum()))[:length]


def placeholder_value(folder: str, placeholder: str, parameter: str = "") -> str:
    """A plausible value for one GEN-*/GET-PREREQ-* placeholder, the same on every run. Unique names differ per
    parameter (two resources named by two GEN-UNIQUE parameters must not collide)."""
    m = re.fullmatch(r"GEN-UNIQUE(?:-(\d+))?", placeholder)
    if m:
        return unique_name(f"{folder}/{parameter}", int(m.group(1) or 18))
    if placeholder.startswith("GET-PREREQ-"):
        return prereq_value(folder, placeholder[len("GET-PREREQ-") :])
    values = {
        "GEN-PASSWORD": "Pw1!" + _digest(folder, "password")[:16] + "Zq",
        "GEN-SSH-PUB-KEY": SSH_PUBLIC_KEY,
        "GEN-GUID": str(uuid.UUID(_digest(folder, "guid")[:32])),
        "GEN-AZUREAD-OBJECTID": str(uuid.UUID(_digest(folder, "objectid")[:32])),
        "GEN-AZUREAD-AKS-TENANTID": CORPUS_SCOPE.tenant_id,
        "GEN-VNET-NAME": "vnet-existing",
        "GEN-VNET-RESOURCEGROUP-NAME": "rg-network",
        "GEN-VNET-SUBNET1-NAME": "subnet-1",
        "GEN-VNET-SUBNET2-NAME": "subnet-2",
        "GEN-KEYVAULT-RESOURCE-ID": f"/subscriptions/{CORPUS_SCOPE.subscription_id}/resourceGroups/rg-vault/"
        "providers/Microsoft.KeyVault/vaults/kv-existing",
        "GEN-SF-CERT-THUMBPRINT": _digest(folder, "thumbprint")[:40].upper(),
        "GEN-SF-CERT-URL": "https://kv-existing.vault.azure.net/secrets/sfcert/0123456789abcdef0123456789abcdef",
        "GEN-STATIC-WEBSITE-HOST-NAME": "www.contoso.com",
        "GEN-USER-ASSIGNED-IDENTITY-NAME": "uai-existing",
        "GEN-USER-ASSIGNED-IDENTITY-RESOURCEGROUP-NAME": "rg-identity",
    }
    if placeholder in values:
        return values[placeholder]
    return unique_name(folder, 12)  # an unknown placeholder: a plausible name


def prereq_value(folder: str, what: str) -> str:
    """GET-PREREQ-x: upstream CI deploys a prerequisite template first and passes its outputs; make up
    values of the right shape."""
    low = what.lower()
    sub, rg = CORPUS_SCOPE.subscription_id, "rg-prereq"
    if "location" in low:
        return CORPUS_SCOPE.location
    if low.endswith("objectid"):
        return str(uuid.UUID(_digest(folder, what)[:32]))
    if low.endswith("id"):
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Resources/prereqs/{low}"
    if low.endswith(("uri", "url")):
        return f"https://prereq-{_digest(folder, what)[:8]}.vault.azure.net/"
    if "version" in low:
        return _digest(folder, what)[:32]
    if "zone" in low:
        return "1"
    if "resourcegroup" in low:
        return rg
    return "prereq" + _digest(folder, what)[:10]


_PLACEHOLDER = re.compile(r"GE[NT]-[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*")


def substitute(value: Any, folder: str, parameter: str = "") -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: placeholder_value(folder, m.group(0), parameter), value)
    if isinstance(value, dict):
        return {k: substitute(v, folder, parameter or k) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, folder, parameter) for v in value]
    return value


@dataclass
class Sample:
    folder: str
    path: Path
    source_path: str

    @property
    def template_path(self) -> Path:
        return self.path / "azuredeploy.json"

    @property
    def parameters_path(self) -> Path:
        return self.path / "azuredeploy.parameters.json"


def corpus_samples(shared: Path) -> list[Sample]:
    root = shared / "corpus" / "quickstarts"
    lines = (root / "INDEX.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines if line.strip()]
    return [Sample(row[0], root / row[0], row[1]) for row in rows]


def sample_scope(sample: Sample) -> DeploymentScope:
    """The fixed scope, deployed from the sample's upstream URL as the upstream pipeline does (templates read
    deployment().properties.templateLink to find their artifacts)."""
    return dataclasses.replace(CORPUS_SCOPE, template_link=f"{UPSTREAM}/{sample.source_path}/azuredeploy.json")


def expand_sample(sample: Sample) -> ExpandedDeployment:
    template_text = sample.template_path.read_text(encoding="utf-8-sig")
    parameters: Any = None
    if sample.parameters_path.exists():
        doc = json.loads(sample.parameters_path.read_text(encoding="utf-8-sig"))
        entries = doc.get("parameters", {})
        doc["parameters"] = {name: substitute(entry, sample.folder, name) for name, entry in entries.items()}
        parameters = doc
    return expand_template(
        template_text,
        parameters=parameters,
        scope=sample_scope(sample),
        template_source=str(sample.template_path.name),
        parameters_source=str(sample.parameters_path.name),
    )


def expand_corpus(shared: Path) -> tuple[dict[str, ExpandedDeployment], dict[str, TemplateError]]:
    ok: dict[str, ExpandedDeployment] = {}
    failed: dict[str, TemplateError] = {}
    for sample in corpus_samples(shared):
        try:
            ok[sample.folder] = expand_sample(sample)
        except TemplateError as exc:
            failed[sample.folder] = exc
    return ok, failed


def shared_dir(given: str | None = None) -> Path | None:
    """The shared material (the public template corpus, the ARM contract): ``given``, else
    ``$ORCHESTRATOR_SHARED_DIR``, else ``../shared`` beside the checkout; None when absent (a user's fresh clone)."""
    repo = Path(__file__).resolve().parent.parent
    for candidate in (given, os.environ.get("ORCHESTRATOR_SHARED_DIR"), str(repo.parent / "shared")):
        if candidate and (Path(candidate) / "corpus" / "quickstarts").is_dir():
            return Path(candidate).resolve()  # symlinked checkouts: compare the paths tools print
    return None
