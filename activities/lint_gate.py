"""LINTING on the worker: the lint gate (``services.lint``) applied to a deployment request.

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

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from arm_engine import DeploymentScope, TemplateError, expand_template
from contract.models import BICEP_MEDIA_TYPE, Classification, DeployRequest, FailureClass, LintReport
from services.bicep import merge_parameters
from services.content_store import BlobStore, canonical_json, get_json, put_json
from services.lint import LintError, LintResult, is_bicepparam, lint_template
from services.secrets import redact, secure_parameter_names, store_secure

from .errors import application_error
from .parameters import deployment_parameters, secret_values


def _logic(code: str, message: str) -> Exception:
    return application_error(Classification(failure_class=FailureClass.LOGIC, code=code, message=message))


def _gate_message(result: LintResult) -> str:
    return f"lint gate closed — {result.gate_reason}.\n{result.render()}"


def is_bicep_request(request: DeployRequest) -> bool:
    return request.template.media_type == BICEP_MEDIA_TYPE or is_bicepparam(request.parameters_path or "")


def lint_gate(store: BlobStore, request: DeployRequest, *, deployment_name: str = "deployment") -> LintReport:
    # Diagnostics may quote a value (BCP033 does; so may the engine): parameter values the request carries in the
    # content store never reach history through a lint message. For a Bicep request that is every value given.
    secrets = secret_values(store, request)
    try:
        if is_bicep_request(request):
            return _lint_bicep(store, request, deployment_name)
        return _lint_arm_json(store, request)
    except LintError as exc:
        if exc.code == "BicepTimeout":  # environmental: retried on the worker's schedule
            raise application_error(
                Classification(
                    failure_class=FailureClass.ENVIRONMENTAL, code=exc.code, message=redact(str(exc), secrets)
                )
            ) from None
        raise _logic(exc.code, redact(str(exc), secrets)) from None
    except ApplicationError as exc:
        if not secrets:
            raise
        detail = exc.details[0] if exc.details and isinstance(exc.details[0], Classification) else None
        if detail is None:
            raise
        raise application_error(detail.model_copy(update={"message": redact(detail.message, secrets)})) from None
    except TemplateError as exc:
        raise TemplateError([dataclasses.replace(i, message=redact(i.message, secrets)) for i in exc.issues]) from None


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
    # Raises TemplateError (LOGIC, its own code) for a missing, unknown or mistyped parameter or a dependency cycle;
    # values of the parameters the compiled template declares secure are masked in it (lint_gate masks the rest).
    secure = secure_parameter_names(result.template)
    hidden = sorted(
        {str(e["value"]) for n, e in from_file.items() if n.lower() in secure and "value" in e}, key=len, reverse=True
    )
    try:
        _expand(result.template, parameters, scope, str(template_path))
    except TemplateError as exc:
        raise TemplateError([dataclasses.replace(i, message=redact(i.message, hidden)) for i in exc.issues]) from None
    compiled = put_json(store, result.template)
    return _report(
        result,
        compiled_template=compiled,
        compiled_template_hash=compiled.digest,
        parameters=store_secure(store, parameters),  # sealed when the codec's keys are configured
        parameter_names=sorted(parameters),
        secure_parameter_names=sorted(name for name in parameters if name.lower() in secure),
    )


def _expand(template: dict[str, Any], parameters: dict[str, Any], scope: DeploymentScope, source: str) -> None:
    expand_template(template, parameters={"parameters": parameters}, scope=scope, template_source=source)
