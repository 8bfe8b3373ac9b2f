"""Reading what a user hands the CLI: template and parameters files, ``--param`` overrides, names and locations.

Everything here runs before any workflow starts, so a mistake costs the user one paragraph on stderr and exit
code 2 — never a workflow left running, never a traceback. Every error is an ``InputError`` whose message names the
input, what is wrong with it and what to do.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arm_engine.json_source import blank_comments, duplicate_property
from services.input_files import (  # noqa: F401  (the CLI's input errors and limits are these)
    ARM_REQUEST_BYTES,
    MAX_PARAMETER_VALUES_BYTES,
    MAX_PARAMETERS_FILE_BYTES,
    MAX_SMALL_FILE_BYTES,
    MAX_TEMPLATE_FILE_BYTES,
    InputError,
    read_input_file,
)


def check_parameter_values(entries: dict[str, Any], *, where: str = "the parameters") -> None:
    """Refuse parameter values too large to travel (the workflow's request, ARM's request), naming the largest."""
    sizes = {name: len(json.dumps(entry, ensure_ascii=False, default=str)) for name, entry in entries.items()}
    total = sum(sizes.values())
    if total <= MAX_PARAMETER_VALUES_BYTES:
        return
    name, size = max(sizes.items(), key=lambda item: item[1])
    raise InputError(
        f"Parameter '{name}' is {size:,} bytes of JSON ({where} total {total:,}); all parameter values together may "
        f"be at most {MAX_PARAMETER_VALUES_BYTES:,} bytes (1 MB). Pass large content another way (a storage "
        "account, a Key Vault reference, or a file the template downloads); nothing was started."
    )


def check_audit_dir(audit_dir: str | None) -> None:
    """``--audit-dir``: created if missing, and proven writable (a probe file) before a deployment starts, so no
    deployment ends without the record the user asked for."""
    if not audit_dir:
        return
    folder = Path(audit_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"--audit-dir '{audit_dir}' is a file, not a folder. Give a folder for the audit record; nothing was "
            "started."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"--audit-dir '{audit_dir}' is not writable ({exc.strerror or exc}). Give a folder you can write to; "
            "nothing was started."
        ) from None


_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def validate_subscription_id(value: str, *, flag: str = "--subscription") -> str:
    """A subscription id is a GUID; one rule for every command that takes one (deploy, expand)."""
    sub = value.strip()
    if not _GUID.fullmatch(sub):
        raise InputError(
            f"The subscription '{value}' given with {flag} is not a subscription id; it must be a GUID like "
            "00000000-0000-0000-0000-000000000000 (`az account show --query id -o tsv`)."
        )
    return sub


_GIT_SHA = re.compile(r"[0-9a-fA-F]{4,64}")


def validate_git_sha(value: str, *, flag: str = "--git-sha") -> str:
    """A commit id as git prints it: 4 to 64 hex digits (an abbreviation, SHA-1 or SHA-256). Lower-cased."""
    if not _GIT_SHA.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + f"… ({len(value)} characters)"
        raise InputError(
            f"{flag} {shown!r} is not a commit id: give 4 to 64 hexadecimal digits, as `git rev-parse HEAD` prints."
        )
    return value.lower()


def read_json_file(path: str | Path, *, what: str, flag: str, max_bytes: int = MAX_TEMPLATE_FILE_BYTES) -> Any:
    """Load a JSON document the user named with ``flag`` (comments allowed, as ARM allows them)."""
    raw = read_input_file(path, what=what, flag=flag, max_bytes=max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"The {what} '{path}' given with {flag} is not UTF-8 text (bad byte at offset {exc.start}). "
            "Save it as UTF-8 JSON."
        ) from None
    duplicate = duplicate_property(text)
    if duplicate is not None:
        name, line, column = duplicate
        raise InputError(
            f"The {what} '{path}' given with {flag} names the property '{name}' twice in one object (line {line}, "
            f"column {column}). ARM rejects duplicate property names; keep one."
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return json.loads(blank_comments(text))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"The {what} '{path}' given with {flag} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}. Fix the JSON there (a trailing comma or a missing quote is the usual cause)."
        ) from None


def load_template(path: str | Path) -> dict[str, Any]:
    """The ARM JSON template named by -t/--template."""
    if Path(path).suffix.lower() == ".bicep":
        raise InputError(
            f"The template '{path}' given with -t/--template is a Bicep file; this version deploys ARM JSON. "
            f"Compile it first (`az bicep build --file {path}`) and pass the .json file."
        )
    doc = read_json_file(path, what="template", flag="-t/--template")
    compact = len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if isinstance(doc, dict) and compact > ARM_REQUEST_BYTES:
        raise InputError(
            f"The template '{path}' given with -t/--template is {compact:,} bytes as compact JSON, over ARM's limit "
            f"of {ARM_REQUEST_BYTES:,} bytes (4 MB) for a deployment request. Split it into modules deployed "
            "separately, or move large values out of it; nothing was started."
        )
    if not isinstance(doc, dict):
        raise InputError(
            f"The template '{path}' given with -t/--template is JSON but not an ARM template: its top level is "
            f"{_json_kind(doc)}, not an object with '$schema', 'contentVersion' and 'resources'."
        )
    if "resources" not in doc:
        raise InputError(
            f"The template '{path}' given with -t/--template has no 'resources' section, so it is not an ARM "
            "template. Pass the compiled ARM JSON template (with '$schema', 'contentVersion' and 'resources')."
        )
    return doc


def load_parameters_file(path: str | Path) -> dict[str, Any]:
    """The parameters file named by -p/--parameters, as ``{name: {"value": ...} | {"reference": ...}}``.

    Accepts the ARM deployment parameters file format (``{"$schema", "contentVersion", "parameters": {...}}``) and,
    like az, the bare ``parameters`` object.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".bicepparam":
        raise InputError(
            f"The parameters file '{path}' given with -p/--parameters is a .bicepparam file; this version reads "
            f"JSON parameters files only. Convert it (`az bicep build-params --file {path}`) and pass the .json file."
        )
    doc = read_json_file(path, what="parameters file", flag="-p/--parameters", max_bytes=MAX_PARAMETERS_FILE_BYTES)
    if not isinstance(doc, dict):
        raise InputError(
            f"The parameters file '{path}' given with -p/--parameters is {_json_kind(doc)}; it must be a JSON "
            'object like {"parameters": {"name": {"value": ...}}}.'
        )
    if "parameters" in doc:
        params = doc["parameters"]
    else:
        params = {k: v for k, v in doc.items() if not k.startswith("$") and k != "contentVersion"}
    if not isinstance(params, dict):
        raise InputError(
            f"The parameters file '{path}' given with -p/--parameters has a 'parameters' member that is "
            f'{_json_kind(params)}; it must be an object mapping each parameter name to {{"value": ...}}.'
        )
    for name, entry in params.items():
        if not isinstance(entry, dict) or not ({"value", "reference"} & entry.keys()):
            raise InputError(
                f"The parameters file '{path}' given with -p/--parameters sets parameter '{name}' without a "
                f'"value" (or a Key Vault "reference"). Write it as "{name}": {{"value": ...}}.'
            )
    return dict(params)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "an object"


# --------------------------------------------------------------------------------------------------- --param


def parse_param_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → (KEY, VALUE), where VALUE is JSON when it parses as JSON, else the literal string."""
    if "=" not in text:
        raise InputError(
            f"--param '{text}' has no '='. Write --param NAME=VALUE (for example --param sku=Standard_LRS or "
            '--param \'tags={"env":"dev"}\'); the value is read as JSON when it parses, else as a string.'
        )
    key, _, value = text.partition("=")
    key = key.strip()
    if not key:
        raise InputError(f"--param '{text}' has nothing before the '='. Write --param NAME=VALUE.")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key, parsed


def parse_param_overrides(items: list[str] | None, *, warn: Any = None) -> dict[str, Any]:
    """``--param`` values by name. ARM names are case-insensitive: a name given twice (in any case) keeps the last
    value, and ``warn`` (default: stderr) is told, naming the parameter — never its values, which may be secret."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, value = parse_param_override(item)
        for existing in [k for k in result if k.lower() == key.lower()]:
            (warn or _warn)(
                f"warning: --param {key} is given more than once; the last value is used (earlier ones ignored)."
            )
            del result[existing]
        result[key] = value
    return result


def _warn(message: str) -> None:
    import sys

    sys.stderr.write(message + "\n")


# --------------------------------------------------------------------------------------------------- names


# Resource group names: 1-90 characters of Unicode letters and digits, '_', '-', '.', '(' and ')'; not ending in
# '.' (ARM's rule, https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
_RG_EXTRA = frozenset("_-.()")


def validate_resource_group_name(name: str) -> str:
    if not name:
        raise InputError("The resource group name given with -g/--resource-group is empty. Name a resource group.")
    if len(name) > 90:
        raise InputError(
            f"The resource group name '{name[:40]}…' given with -g/--resource-group is {len(name)} characters "
            "long; ARM allows at most 90. Choose a shorter name."
        )
    bad = sorted({c for c in name if not (c in _RG_EXTRA or unicodedata.category(c)[0] in ("L", "N"))})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise InputError(
            f"The resource group name '{name}' given with -g/--resource-group contains {shown}; ARM allows only "
            "letters, digits, '_', '-', '.', '(' and ')'. Choose a name without those characters."
        )
    if name.endswith("."):
        raise InputError(
            f"The resource group name '{name}' given with -g/--resource-group ends with '.', which ARM does not "
            "allow. Drop the trailing period."
        )
    return name


# Azure public-cloud region names (`az account list-locations --query [].name`), plus the logical ones.
_AZURE_LOCATION_NAMES = """
    eastus eastus2 southcentralus westus2 westus3 australiaeast southeastasia northeurope swedencentral uksouth
    westeurope centralus southafricanorth centralindia eastasia japaneast koreacentral canadacentral francecentral
    germanywestcentral italynorth norwayeast polandcentral spaincentral switzerlandnorth mexicocentral uaenorth
    brazilsouth israelcentral qatarcentral centralusstage eastusstage eastus2stage northcentralusstage
    southcentralusstage westusstage westus2stage asia asiapacific australia brazil canada europe france germany
    global india israel italy japan korea newzealand norway poland qatar singapore southafrica sweden switzerland
    uae uk unitedstates unitedstateseuap eastasiastage southeastasiastage brazilus eastusstg northcentralus westus
    japanwest jioindiawest centraluseuap eastus2euap westcentralus southafricawest australiacentral
    australiacentral2 australiasoutheast japaneast koreasouth southindia westindia canadaeast francesouth
    germanynorth norwaywest switzerlandwest ukwest uaecentral brazilsoutheast newzealandnorth indonesiacentral
    malaysiawest chilecentral austriaeast belgiumcentral denmarkeast jioindiacentral swedensouth taiwannorth
    taiwannorthwest
"""
AZURE_LOCATIONS: frozenset[str] = frozenset(_AZURE_LOCATION_NAMES.split())


def normalize_location(location: str) -> str:
    """'East US' → 'eastus', as ARM does."""
    return re.sub(r"\s+", "", location).lower()


def validate_location(location: str, *, known: frozenset[str] = AZURE_LOCATIONS) -> str:
    """Return ARM's normal form of ``location`` or raise naming the closest known region."""
    if not location.strip():
        raise InputError("The location given with -l/--location is empty. Name an Azure region, e.g. eastus.")
    normal = normalize_location(location)
    if not re.fullmatch(r"[a-z0-9]+", normal):
        raise InputError(
            f"The location '{location}' given with -l/--location is not a region name: region names are letters "
            "and digits (e.g. eastus, westeurope; `az account list-locations -o table` lists them)."
        )
    if normal not in known:
        close = difflib.get_close_matches(normal, sorted(known), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise InputError(
            f"The location '{location}' given with -l/--location is not an Azure region.{hint} "
            "`az account list-locations -o table` lists the regions."
        )
    return normal


# --------------------------------------------------------------------------------------------------- bundle


@dataclass
class DeploymentInputs:
    """Everything `deploy` read from disk and the command line, checked."""

    template_path: Path
    template: dict[str, Any]
    parameters_path: Path | None
    parameters: dict[str, Any]  # name → {"value": ...} | {"reference": ...}, file merged with overrides
    overrides: dict[str, Any] = field(default_factory=dict)

    def parameter_values(self) -> dict[str, Any]:
        """name → value, for parameters given as values (Key Vault references are resolved by ARM)."""
        return {k: v["value"] for k, v in self.parameters.items() if "value" in v}


def read_deployment_inputs(*, template: str, parameters: str | None, overrides: list[str] | None) -> DeploymentInputs:
    doc = load_template(template)
    params = load_parameters_file(parameters) if parameters else {}
    over = parse_param_overrides(overrides)
    merged = dict(params)
    for key, value in over.items():
        for existing in [k for k in merged if k.lower() == key.lower()]:
            del merged[existing]
        merged[key] = {"value": value}
    check_parameter_values(merged)
    return DeploymentInputs(
        template_path=Path(template),
        template=doc,
        parameters_path=Path(parameters) if parameters else None,
        parameters=merged,
        overrides=over,
    )
