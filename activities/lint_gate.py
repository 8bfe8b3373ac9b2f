"""LINTING on the worker: the lint gate (``orchestrator.lint``) applied to a deployment request.

* ARM JSON: our static checks (JSON syntax with line numbers, template shape, expression syntax). The engine's
  parameter and dependency checks already ran at VALIDATING_PARAMETERS.
* Bicep (``-t main.bicep`` and/or ``-p main.bicepparam``): the worker's Bicep CLI compiles the files at the request's
  absolute paths and reports every diagnostic of every file; the compiled template and the parameters go to the
  content store, and the engine then validates the parameters against the compiled template (the checks
  VALIDATING_PARAMETERS could not run on Bicep source).

Errors — and warnings unless ``allow_warnings`` — raise a non-retryable ``LOGIC.LinterError`` listing every
diagnostic as ``path(line,col) : Level CODE: message``; a missing compiler is ``LOGIC.BicepNotFound`` naming this
worker. Warnings that pass are in the returned ``LintReport`` (history), so the audit keeps them either way.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from arm_engine import DeploymentScope, expand_template
from orchestrator.bicep_deploy import merge_parameters
from orchestrator.blobstore import BlobStore, canonical_json, get_json, put_json
from orchestrator.deployments import secure_parameter_names
from orchestrator.lint import LintError, LintResult, is_bicepparam, lint_template
from orchestrator.models import BICEP_MEDIA_TYPE, Classification, DeployRequest, FailureClass, LintReport

from .errors import application_error
from .parameters import deployment_parameters


def _logic(code: str, message: str) -> Exception:
    return application_error(Classification(failure_class=FailureClass.LOGIC, code=code, message=message))


def _gate_message(result: LintResult) -> str:
    return f"lint gate closed — {result.gate_reason}.\n{result.render()}"


def is_bicep_request(request: DeployRequest) -> bool:
    return request.template.media_type == BICEP_MEDIA_TYPE or is_bicepparam(request.parameters_path or "")


def lint_gate(store: BlobStore, request: DeployRequest, *, deployment_name: str = "deployment") -> LintReport:
    try:
        if is_bicep_request(request):
            return _lint_bicep(store, request, deployment_name)
        return _lint_arm_json(store, request)
    except LintError as exc:
        if exc.code == "BicepTimeout":  # environmental: retried on the worker's schedule
            raise application_error(
                Classification(failure_class=FailureClass.ENVIRONMENTAL, code=exc.code, message=str(exc))
            ) from None
        raise _logic(exc.code, str(exc)) from None


def _report(result: LintResult, **extra: Any) -> LintReport:
    return LintReport(
        linter=f"bicep {result.bicep_version}" if result.template_kind == "bicep" else "arm-engine static checks",
        warnings=[d.render() for d in result.warnings()],
        template_kind=result.template_kind,
        error_count=result.error_count,
        warning_count=result.warning_count,
        info_count=result.info_count,
        bicep_version=result.bicep_version,
        **extra,
    )


def _lint_arm_json(store: BlobStore, request: DeployRequest) -> LintReport:
    """Lint the user's file when this worker sees the same document (line numbers then point into it), else the
    stored copy, pretty-printed."""
    stored = get_json(store, request.template)
    path = Path(request.template_path) if request.template_path else None
    if path is not None and path.is_absolute() and path.is_file():
        try:
            same = canonical_json(json.loads(path.read_bytes().decode("utf-8-sig"))) == canonical_json(stored)
        except (ValueError, UnicodeDecodeError):
            same = False
        if same:
            result = lint_template(path, allow_warnings=request.allow_warnings)
            if not result.passed:
                raise _logic("LinterError", _gate_message(result))
            return _report(result)
    with tempfile.TemporaryDirectory(prefix="lint-") as tmp:
        copy = Path(tmp) / (path.name if path is not None else "template.json")
        copy.write_text(json.dumps(stored, indent=2, ensure_ascii=False), encoding="utf-8")
        result = lint_template(copy, allow_warnings=request.allow_warnings)
    # Name what the user knows, and say the positions are in the stored copy (canonical JSON, indented).
    shown = f"{request.template_path or 'template'} (stored copy {request.template.digest[:19]}…)"
    for d in result.diagnostics:
        if d.file == str(copy):
            d.file = shown
    if not result.passed:
        raise _logic("LinterError", _gate_message(result))
    return _report(result)


def _lint_bicep(store: BlobStore, request: DeployRequest, deployment_name: str) -> LintReport:
    if not request.template_path:
        raise _logic("InvalidTemplate", "a Bicep deployment request carries no template path for the worker to read")
    template_path = Path(request.template_path)
    if request.template.media_type == BICEP_MEDIA_TYPE:
        try:
            current = "sha256:" + hashlib.sha256(template_path.read_bytes()).hexdigest()
        except OSError as exc:
            raise _logic(
                "TemplateNotFound",
                f"this worker cannot read the Bicep template {template_path} ({exc.strerror or exc}); Bicep is "
                "compiled on the worker, so the template and its modules must be at the same path there.",
            ) from None
        if current != request.template.digest:
            raise _logic(
                "TemplateChanged",
                f"the Bicep template {template_path} changed after the deployment was requested (its sha256 is not "
                f"{request.template.digest}); start the deployment again.",
            )
    param_file = request.parameters_path if is_bicepparam(request.parameters_path or "") else None
    result = lint_template(
        template_path, parameters_path=param_file, allow_warnings=request.allow_warnings, check_parameters=False
    )
    if not result.passed or result.template is None:
        raise _logic("LinterError", _gate_message(result))

    given = deployment_parameters(store, request)  # a .json parameters file and --param overrides
    from_file = (result.parameters or {}).get("parameters") or {}
    parameters = merge_parameters(from_file, given)
    scope = DeploymentScope(
        subscription_id=request.subscription_id,
        resource_group=request.resource_group,
        location=request.location,
        deployment_name=deployment_name,
    )
    # Raises TemplateError (LOGIC, its own code) for a missing, unknown or mistyped parameter or a dependency cycle.
    expand_template(
        result.template, parameters={"parameters": parameters}, scope=scope, template_source=str(template_path)
    )
    compiled = put_json(store, result.template)
    return _report(
        result,
        compiled_template=compiled,
        compiled_template_hash=compiled.digest,
        parameters=put_json(store, parameters),
        parameter_names=sorted(parameters),
        secure_parameter_names=sorted(
            name for name in parameters if name.lower() in secure_parameter_names(result.template)
        ),
    )
