"""``starter.py expand``: expand an ARM template offline and show what a deployment would contain.

Prints the validated parameters (secure values masked), the expanded resources, the deployment order and the
outputs it can evaluate without Azure. Nothing is deployed and nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from arm_engine import DeploymentScope, ExpandedDeployment, TemplateError, expand_template
from arm_engine.values import Deferred
from client.cli import UsageError
from client.exit_codes import ExitCode
from client.inputs import (
    MAX_PARAMETERS_FILE_BYTES,
    MAX_TEMPLATE_FILE_BYTES,
    InputError,
    load_parameters_file,
    load_template,
    parse_param_overrides,
    read_input_file,
    validate_location,
    validate_resource_group_name,
    validate_subscription_id,
)
from services.secrets import MASK, secret_strings

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "expand",
        help="expand an ARM template offline: parameters, resources, deployment order, outputs",
        description=(
            "Validate the parameters and expand the template exactly as ARM would, without Azure. Values that "
            "exist only after deployment (reference(), list*()) are shown as deferred."
        ),
    )
    parser.add_argument("-t", "--template", required=True, help="the ARM JSON template (compile Bicep first)")
    parser.add_argument("-p", "--parameters", help="a deployment parameters JSON file")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set one parameter; VALUE is read as JSON when it parses, else as a string (repeatable; wins over -p)",
    )
    parser.add_argument("-g", "--resource-group", required=True, help="the resource group deployed into")
    parser.add_argument("-l", "--location", default="eastus", help="the resource group's location (default eastus)")
    parser.add_argument("--subscription", default=DEFAULT_SUBSCRIPTION, help="the subscription id")
    parser.add_argument("--deployment-name", default=None, help="the deployment name (default: the template's name)")
    parser.add_argument("--output", "-o", choices=["text", "json"], default="text", help="text (default) or json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        template = load_template(args.template)
        parameters = load_parameters_file(args.parameters) if args.parameters else None
        overrides = parse_param_overrides(args.param)
        resource_group = validate_resource_group_name(args.resource_group)
        location = validate_location(args.location)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    try:  # the rule deploy applies
        subscription = validate_subscription_id(str(args.subscription))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    deployment_name = args.deployment_name or _default_deployment_name(args.template)
    scope = DeploymentScope(
        subscription_id=subscription,
        resource_group=resource_group,
        location=location,
        deployment_name=deployment_name,
    )
    # The engine reads the texts again (already checked above) so that its errors carry line numbers.
    try:
        template_text = read_input_file(
            args.template, what="template", flag="-t/--template", max_bytes=MAX_TEMPLATE_FILE_BYTES
        ).decode("utf-8-sig")
        parameters_text = (
            read_input_file(
                args.parameters, what="parameters file", flag="-p/--parameters", max_bytes=MAX_PARAMETERS_FILE_BYTES
            ).decode("utf-8-sig")
            if args.parameters
            else None
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    del template, parameters
    try:
        result = expand_template(
            template_text,
            parameters=parameters_text,
            overrides=overrides,
            scope=scope,
            template_source=args.template,
            parameters_source=args.parameters,
        )
    except TemplateError as exc:
        _print_errors(exc, args.output)
        return ExitCode.LOGIC_FAILURE
    report = expansion_report(result)
    if args.output == "json":
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report))
    return ExitCode.OK


def _default_deployment_name(template_path: str) -> str:
    return Path(template_path).stem or "deployment"


def _print_errors(exc: TemplateError, output: str) -> None:
    if output == "json":
        sys.stdout.write(json.dumps(exc.to_dict(), indent=2, default=str) + "\n")
        return
    count = len(exc.issues)
    sys.stderr.write(f"error: the template cannot be deployed ({count} problem{'s' if count != 1 else ''}):\n")
    for issue in exc.issues:
        sys.stderr.write(f"  - {issue}\n")


# ------------------------------------------------------------------------------------------------- rendering


def _secret_strings(result: ExpandedDeployment) -> set[str]:
    """Every string the secure parameter values hold (any length: a short one is masked where it is a whole value)."""
    given = (p.value for p in result.parameters.values() if p.secure and p.source != "reference")
    return set(secret_strings(given, min_length=1))


def _plain(value: Any, secrets: set[str]) -> Any:
    """JSON-ready, with deferred values spelled out and secure parameter values masked wherever they landed."""
    if isinstance(value, Deferred):
        return {"deferred": value.expression, "reason": value.reason}
    if isinstance(value, str):
        if value in secrets:
            return MASK
        for secret in secrets:
            if len(secret) >= 4 and secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _plain(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, secrets) for v in value]
    return value


def expansion_report(result: ExpandedDeployment) -> dict[str, Any]:
    secrets = _secret_strings(result)
    parameters = {
        name: {"type": p.type, "source": p.source, "value": _plain(p.display_value(), set())}
        for name, p in result.parameters.items()
    }
    resources = []
    for r in result.resources:
        entry: dict[str, Any] = {
            "id": r.id,
            "type": r.type,
            "apiVersion": r.api_version,
            "name": r.name,
            "location": r.location,
        }
        for key in ("sku", "kind", "tags", "identity", "zones", "plan"):
            if key in r.body:
                entry[key] = _plain(r.body[key], secrets)
        entry["properties"] = _plain(r.properties, secrets)
        entry["dependsOn"] = list(r.depends_on)
        if r.existing:
            entry["existing"] = True
        if r.copy is not None:
            entry["copy"] = {"name": r.copy.name, "index": r.copy.index, "count": r.copy.count, "mode": r.copy.mode}
            if r.copy.batch_size is not None:
                entry["copy"]["batchSize"] = r.copy.batch_size
        if r.deployment_path:
            entry["deploymentPath"] = list(r.deployment_path)
        resources.append(entry)
    outputs = {
        name: {
            "type": o.type,
            # ARM never returns secure outputs' values; neither do we
            "value": MASK if o.type.lower() in ("securestring", "secureobject") else _plain(o.value, secrets),
            "deferred": o.deferred,
        }
        for name, o in result.outputs.items()
    }
    return {
        "parameters": parameters,
        "resources": resources,
        "order": list(result.order),
        "outputs": outputs,
        "skipped": list(result.skipped),
    }


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, dict) and set(value) == {"deferred", "reason"}:
        text = f"(deferred) {value['deferred']}"
    else:
        text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _deferred_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"deferred", "reason"}:
            return f"(deferred) {value['deferred']}"
        return {k: _deferred_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deferred_as_text(v) for v in value]
    return value


def render_text(report: dict[str, Any]) -> str:
    lines: list[str] = []
    lines.append(f"Parameters ({len(report['parameters'])}):")
    for name, p in report["parameters"].items():
        lines.append(f"  {name} ({p['type']}, {p['source']}) = {_short(p['value'])}")
    lines.append("")
    lines.append(f"Resources ({len(report['resources'])}):")
    for r in report["resources"]:
        suffix = " [existing]" if r.get("existing") else ""
        lines.append(f"  {r['type']} '{r['name']}'{suffix}")
        lines.append(f"    id:         {r['id']}")
        lines.append(f"    apiVersion: {r['apiVersion']}")
        if r.get("location"):
            lines.append(f"    location:   {r['location']}")
        # Every other field the JSON report has for the resource, in the same order (text and JSON tell the same).
        for key in ("sku", "kind", "tags", "identity", "zones", "plan"):
            if key in r:
                lines.append(f"    {key + ':':<11} {_short(_deferred_as_text(r[key]), 200)}")
        if r.get("copy"):
            c = r["copy"]
            batch = f", batch size {c['batchSize']}" if "batchSize" in c else ""
            lines.append(f"    copy:       {c['name']} [{c['index']} of {c['count']}, {c['mode']}{batch}]")
        if r.get("deploymentPath"):
            lines.append(f"    in nested deployment: {' / '.join(r['deploymentPath'])}")
        for dep in r["dependsOn"]:
            lines.append(f"    depends on: {dep}")
        if r.get("properties") is not None:
            props = json.dumps(_deferred_as_text(r["properties"]), indent=2).splitlines()
            shown = props[:30] + (["…"] if len(props) > 30 else [])
            lines.append("    properties: " + shown[0])
            lines.extend("      " + line for line in shown[1:])
    lines.append("")
    lines.append("Deployment order:")
    for i, rid in enumerate(report["order"], 1):
        lines.append(f"  {i:>3}. {rid}")
    if report["skipped"]:
        lines.append("")
        lines.append("Skipped (condition false):")
        lines.extend(f"  {rid}" for rid in report["skipped"])
    lines.append("")
    lines.append(f"Outputs ({len(report['outputs'])}):")
    for name, o in report["outputs"].items():
        lines.append(f"  {name} ({o['type']}) = {_short(o['value'])}")
    return "\n".join(lines) + "\n"
