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

from client.inputs import (
    MAX_TEMPLATE_FILE_BYTES,
    InputError,
    check_parameter_values,
    load_parameters_file,
    load_template,
    parse_param_overrides,
    read_input_file,
)
from contract.models import BICEP_MEDIA_TYPE, DeploymentMode, DeployRequest
from services.bicep import BicepError, check_using_matches, merge_parameters, read_using
from services.content_store import BlobStore, put_json
from services.lint import is_bicep, is_bicepparam
from services.secrets import store_secure


def is_bicep_deployment(template: str | None, parameters: str | None) -> bool:
    return (template is not None and is_bicep(template)) or (parameters is not None and is_bicepparam(parameters))


def _existing(path: Path, flag: str, what: str) -> Path:
    """A regular, readable file within the input size limit (``read_input_file`` refuses anything else, naming
    it, before a byte is stored)."""
    read_input_file(path, what=what, flag=flag, max_bytes=MAX_TEMPLATE_FILE_BYTES)
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
    entries: Mapping[str, Any] | None = None,
) -> DeployRequest:
    """``entries``: parameter entries given as data rather than a file (the HTTP API's), applied after the
    parameters file and before the overrides."""
    template_path, params_path = resolve_bicep_inputs(template, parameters)
    values: dict[str, Any] = {}
    if params_path is not None and not is_bicepparam(params_path):
        values.update(load_parameters_file(params_path))
    values = merge_parameters(values, dict(entries or {}))
    over = parse_param_overrides(overrides)
    values = merge_parameters(values, {k: {"value": v} for k, v in over.items()})
    check_parameter_values(values)  # before anything is stored
    if is_bicep(template_path):
        source = read_input_file(
            template_path, what="template", flag="-t/--template", max_bytes=MAX_TEMPLATE_FILE_BYTES
        )
        template_ref = store.put(source, media_type=BICEP_MEDIA_TYPE)
    else:  # an ARM JSON template named by a .bicepparam's `using`
        template_ref = put_json(store, load_template(template_path))
    return DeployRequest(
        subscription_id=subscription_id,
        resource_group=resource_group,
        location=location,
        template=template_ref,
        template_path=str(template_path),
        template_hash=template_ref.digest,
        parameters={},
        secure_parameters=store_secure(store, values) if values else None,
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
