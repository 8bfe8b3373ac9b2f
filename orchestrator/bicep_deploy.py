"""Starting a deployment from Bicep: ``deploy -t main.bicep`` and ``deploy -p main.bicepparam``.

The starter does not compile: LINTING, on a worker, does (it must, so that its message can name the worker that
lacks a compiler). So the request carries the Bicep *source* in the content store (media type
``BICEP_MEDIA_TYPE``) with absolute paths the worker reads its modules and ``using`` target from, and every parameter
value goes to the content store: before compiling, nobody knows which parameters are secure, and a secure value must
never reach workflow history. LINTING returns the compiled template and the parameters, and the workflow swaps them in
(``LintReport.apply_to``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.bicep import BicepError, check_using_matches, read_using
from orchestrator.blobstore import BlobStore, put_json
from orchestrator.deployments import _store_secure
from orchestrator.inputs import InputError, load_parameters_file, load_template, parse_param_overrides
from orchestrator.lint import is_bicep, is_bicepparam
from orchestrator.models import BICEP_MEDIA_TYPE, DeploymentMode, DeployRequest


def is_bicep_deployment(template: str | None, parameters: str | None) -> bool:
    return (template is not None and is_bicep(template)) or (parameters is not None and is_bicepparam(parameters))


def _existing(path: Path, flag: str, what: str) -> Path:
    if not path.exists():
        raise InputError(
            f"The {what} '{path}' given with {flag} does not exist. Check the path (relative paths are resolved "
            f"from the current directory, {Path.cwd()})."
        )
    if not path.is_file():
        raise InputError(f"The {what} '{path}' given with {flag} is not a file.")
    return path.resolve()


def resolve_bicep_inputs(template: str | None, parameters: str | None) -> tuple[Path, Path | None]:
    """The template to deploy and the parameters file, absolute; a --template that is not the .bicepparam's
    ``using`` target is refused here, before anything starts."""
    params_path = _existing(Path(parameters), "-p/--parameters", "parameters file") if parameters else None
    template_path = _existing(Path(template), "-t/--template", "template") if template else None
    if params_path is not None and is_bicepparam(params_path):
        try:
            using = read_using(params_path)
            check_using_matches(params_path, using, template_path)
        except BicepError as exc:
            raise InputError(str(exc)) from None
        if template_path is None:
            if using is None:
                raise InputError(
                    f"The parameters file '{parameters}' is `using none`, so it names no template. Give the "
                    "template with -t/--template."
                )
            template_path = _existing(using, f"the `using` declaration of {parameters}", "template")
    if template_path is None:
        raise InputError("No template: give -t/--template (or -p with a .bicepparam file whose `using` names one).")
    return template_path, params_path


def build_bicep_deploy_request(
    *,
    store: BlobStore,
    template: str | None,
    parameters: str | None,
    overrides: list[str] | None,
    subscription_id: str,
    resource_group: str,
    location: str,
    mode: DeploymentMode = DeploymentMode.INCREMENTAL,
    allow_warnings: bool = False,
    no_confirm_deletes: bool = False,
    skip_health: bool = False,
    git_sha: str | None = None,
    initiator: str = "unknown",
    audit_dir: str | None = None,
) -> DeployRequest:
    template_path, params_path = resolve_bicep_inputs(template, parameters)
    if is_bicep(template_path):
        template_ref = store.put(template_path.read_bytes(), media_type=BICEP_MEDIA_TYPE)
    else:  # an ARM JSON template named by a .bicepparam's `using`
        template_ref = put_json(store, load_template(template_path))
    values: dict[str, Any] = {}
    if params_path is not None and not is_bicepparam(params_path):
        values.update(load_parameters_file(params_path))
    over = parse_param_overrides(overrides)
    values = merge_parameters(values, {k: {"value": v} for k, v in over.items()})
    return DeployRequest(
        subscription_id=subscription_id,
        resource_group=resource_group,
        location=location,
        template=template_ref,
        template_path=str(template_path),
        template_hash=template_ref.digest,
        parameters={},
        secure_parameters=_store_secure(store, values) if values else None,
        parameters_path=str(params_path) if params_path is not None else None,
        override_names=sorted(over),
        mode=mode,
        allow_warnings=allow_warnings,
        no_confirm_deletes=no_confirm_deletes,
        skip_health=skip_health,
        git_sha=git_sha,
        initiator=initiator,
        audit_dir=audit_dir,
    )


def merge_parameters(base: Mapping[str, Any], on_top: Mapping[str, Any]) -> dict[str, Any]:
    """ARM parameter entries of ``on_top`` replace ``base``'s, names compared case-insensitively as ARM does."""
    merged = dict(base)
    for key, entry in on_top.items():
        for existing in [k for k in merged if k.lower() == key.lower()]:
            del merged[existing]
        merged[key] = entry
    return merged
