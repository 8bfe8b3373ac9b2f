"""The rollout file (YAML or JSON, docs/FLEET.md): read, validate, and turn into a ``RolloutRequest``.

Every mistake is refused before anything starts, as one ``InputError`` naming the file, the field (``rings[1].
targets[3].subscription``), what is wrong and what to do (exit code 2). Paths inside the file are relative to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from client.deployments import build_deploy_request
from client.health.declare import HealthDeclarationError, load_health_spec
from client.inputs import (
    InputError,
    check_parameter_values,
    load_parameters_file,
    load_template,
    validate_location,
    validate_resource_group_name,
    validate_subscription_id,
)
from contract.health import HealthSpec, parse_duration
from contract.health_targets import declared_outputs
from contract.models import DeploymentMode
from contract.rollout import (
    MAX_OVERRIDES_BYTES,
    MAX_RINGS,
    MAX_TARGETS,
    OnFailure,
    OnHalt,
    RolloutRequest,
    RolloutRing,
    RolloutTarget,
)
from services.content_store import BlobStore
from services.input_files import read_input_file
from services.secrets import secure_parameter_names

MAX_ROLLOUT_FILE_BYTES = 4 * 1024 * 1024
MAX_BAKE_SECONDS = 30 * 24 * 3600  # a month
MAX_PARALLEL = 100
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DOCS = "docs/FLEET.md describes the rollout file"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TargetEntry(_Strict):
    subscription: str
    resource_group: str
    location: str | None = None  # default: the file's `location`
    parameters: dict[str, Any] = Field(default_factory=dict)
    health: str | None = None  # a health file for this target (replaces the file's `health`)


class RingEntry(_Strict):
    name: str
    targets: list[TargetEntry] = Field(min_length=1)
    max_parallel: int = Field(default=1, ge=1, le=MAX_PARALLEL)
    bake: float = 0.0
    approval: bool = False
    on_failure: OnFailure = OnFailure.HALT
    on_halt: OnHalt = OnHalt.FINISH
    health_gates: str | None = None  # a health file whose checks must hold through the bake
    gate_interval: float = 300.0

    @field_validator("bake", "gate_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if not 0 <= seconds <= MAX_BAKE_SECONDS:
            raise ValueError(f"'{value}' is outside 0 s .. 30 days")
        return seconds


class RolloutFile(_Strict):
    name: str
    template: str
    parameters: str | None = None
    mode: Literal["Incremental", "Complete"] = "Incremental"
    location: str | None = None
    health: str | None = None  # a health file for every target
    rings: list[RingEntry] = Field(min_length=1, max_length=MAX_RINGS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"'{value[:80]}' is not a rollout name: use 1-63 lower-case letters, digits and dashes (it names the "
                "rollout workflow, rollout-<name>)"
            )
        return value


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def _pydantic_message(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:5]:
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a field of the rollout file (misspelt?)"
        elif err["type"] == "missing":
            msg = "is required"
        lines.append(f"{_where(tuple(err['loc']))}: {msg}")
    more = len(exc.errors()) - len(lines)
    return "; ".join(lines) + (f" (and {more} more)" if more > 0 else "")


def read_rollout_file(path: str | Path) -> tuple[RolloutFile, Path]:
    """The parsed, schema-checked file and the folder its relative paths start from."""
    p = Path(path)
    raw = read_input_file(p, what="rollout file", flag="FILE", max_bytes=MAX_ROLLOUT_FILE_BYTES)
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        detail = str(exc).splitlines()[0][:200]
        raise InputError(f"The rollout file {p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {detail}. "
                         f"{DOCS}.") from None  # fmt: skip
    if not isinstance(doc, dict):
        raise InputError(f"The rollout file {p} must hold a mapping with name, template and rings; {DOCS}.")
    try:
        return RolloutFile.model_validate(doc), p.resolve().parent
    except ValidationError as exc:
        raise InputError(f"The rollout file {p} is not valid: {_pydantic_message(exc)}. {DOCS}.") from None


_FLAG = re.compile(r" given with (?:-[a-z]/)?--[a-z-]+")
_CWD_HINT = re.compile(r" \(relative paths are resolved from the current directory, [^)]*\)")


def _no_flags(message: str) -> str:
    """A message of the single-deployment readers without the command-line flag it names (here the value came from
    the rollout file, whose relative paths start at the file's folder)."""
    return _CWD_HINT.sub(" (relative paths start at the rollout file's folder)", _FLAG.sub("", message))


def _relative(base: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else base / candidate


def _health(base: Path, value: str, *, field: str, outputs: Any, file: Path) -> HealthSpec:
    try:
        return load_health_spec(template_path=None, health_file=_relative(base, value), declared_outputs=outputs)
    except HealthDeclarationError as exc:
        raise InputError(f"The rollout file {file}: {field}: {exc}") from None


@dataclass
class CheckedRollout:
    """A rollout file with every field checked, before anything is stored or started."""

    spec: RolloutFile
    file: Path
    template_path: Path
    template: dict[str, Any]
    parameters: dict[str, Any]
    parameters_path: Path | None
    health: HealthSpec
    rings: list[RolloutRing]


def check_rollout_file(path: str | Path) -> CheckedRollout:
    """Read and check everything the file names (template, parameters, health files, every target): the whole
    refusal happens here, before the CLI connects or writes anything."""
    spec, base = read_rollout_file(path)
    file = Path(path)
    template_path = _relative(base, spec.template)
    try:
        template = load_template(template_path)
    except InputError as exc:
        raise InputError(f"The rollout file {file}: template: {_no_flags(str(exc))}") from None
    if not isinstance(template.get("resources"), list | dict):
        raise InputError(f"The rollout file {file}: template: {template_path} is not an ARM template with resources.")
    try:
        parameters = load_parameters_file(_relative(base, spec.parameters)) if spec.parameters else {}
    except InputError as exc:
        raise InputError(f"The rollout file {file}: parameters: {_no_flags(str(exc))}") from None
    check_parameter_values(parameters, where=f"the parameters of rollout {spec.name}")
    declared = {k.lower() for k in (template.get("parameters") or {})}
    secure = secure_parameter_names(template)
    outputs = declared_outputs(template)
    shared_health = (
        _health(base, spec.health, field="health", outputs=outputs, file=file) if spec.health else HealthSpec()
    )
    seen: dict[str, str] = {}
    rings: list[RolloutRing] = []
    count = 0
    ring_names: set[str] = set()
    for r, ring in enumerate(spec.rings):
        if ring.name in ring_names:
            raise InputError(f"The rollout file {file}: rings[{r}].name: '{ring.name}' names two rings; rename one.")
        ring_names.add(ring.name)
        targets: list[RolloutTarget] = []
        for t, entry in enumerate(ring.targets):
            where = f"rings[{r}].targets[{t}]"
            try:
                sub = validate_subscription_id(entry.subscription, flag=f"{where}.subscription").lower()
                rg = validate_resource_group_name(entry.resource_group)
                location = entry.location or spec.location
                if location is None:
                    raise InputError("no location: give the target a location, or the file one for every target")
                location = validate_location(location)
            except InputError as exc:
                raise InputError(f"The rollout file {file}: {where}: {_no_flags(str(exc))}") from None
            key = f"{sub}/{rg.lower()}"
            if key in seen:
                raise InputError(
                    f"The rollout file {file}: {where}: resource group {rg} in subscription {sub} is already a "
                    f"target at {seen[key]}; each resource group may appear once in a rollout."
                )
            seen[key] = where
            for name in entry.parameters:
                if name.lower() not in declared:
                    raise InputError(
                        f"The rollout file {file}: {where}.parameters.{name}: the template declares no parameter "
                        f"'{name}' (it declares: {', '.join(sorted(template.get('parameters') or {})) or 'none'})."
                    )
                if name.lower() in secure:
                    raise InputError(
                        f"The rollout file {file}: {where}.parameters.{name}: a secure parameter's value cannot be "
                        "given in the rollout file (it would be stored in plain text); put it in the parameters "
                        "file as a Key Vault reference."
                    )
            if len(json.dumps(entry.parameters, default=str)) > MAX_OVERRIDES_BYTES:
                raise InputError(
                    f"The rollout file {file}: {where}.parameters: more than {MAX_OVERRIDES_BYTES} bytes of "
                    "overrides; move shared values into the parameters file."
                )
            health = (
                _health(base, entry.health, field=f"{where}.health", outputs=outputs, file=file)
                if entry.health
                else None
            )
            targets.append(
                RolloutTarget(subscription_id=sub, resource_group=rg, location=location,
                              parameters=dict(entry.parameters), health=health)
            )  # fmt: skip
            count += 1
        gates = (
            _health(base, ring.health_gates, field=f"rings[{r}].health_gates", outputs={}, file=file)
            if ring.health_gates
            else None
        )
        if gates is not None and not gates.checks:
            raise InputError(f"The rollout file {file}: rings[{r}].health_gates: the health file declares no checks.")
        rings.append(
            RolloutRing(
                name=ring.name,
                targets=targets,
                max_parallel=ring.max_parallel,
                bake_seconds=ring.bake,
                gates=gates,
                gate_interval_seconds=max(ring.gate_interval, 1.0),
                requires_approval=ring.approval,
                on_failure=ring.on_failure,
                on_halt=ring.on_halt,
            )
        )
    if count > MAX_TARGETS:
        raise InputError(
            f"The rollout file {file} has {count} targets; at most {MAX_TARGETS} fit one rollout. Split it."
        )
    return CheckedRollout(
        spec=spec,
        file=file,
        template_path=template_path,
        template=template,
        parameters=parameters,
        parameters_path=_relative(base, spec.parameters) if spec.parameters else None,
        health=shared_health,
        rings=rings,
    )


def build_rollout_request(
    checked: CheckedRollout | str | Path,
    *,
    store: BlobStore,
    initiator: str,
    git_sha: str | None = None,
    preview_only: bool = False,
) -> RolloutRequest:
    """Put the template in the content store once; the request carries one entry per target (a few hundred
    bytes), never a whole deployment request per target."""
    c = checked if isinstance(checked, CheckedRollout) else check_rollout_file(checked)
    first = c.rings[0].targets[0]
    base_request = build_deploy_request(
        store=store,
        template=c.template,
        subscription_id=first.subscription_id,
        resource_group=first.resource_group,
        location=first.location,
        parameters=c.parameters,
        template_path=str(c.template_path),
        parameters_path=str(c.parameters_path) if c.parameters_path else None,
        mode=DeploymentMode(c.spec.mode),
        git_sha=git_sha,
        initiator=initiator,
    ).model_copy(update={"health": c.health})
    return RolloutRequest(
        name=c.spec.name,
        base=base_request,
        rings=c.rings,
        initiator=initiator,
        rollout_file=str(c.file),
        preview_only=preview_only,
    )


# ------------------------------------------------------------------------------------ a document over the API

FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_DOCUMENT_FILES = 100
_PATH_FIELDS = ("template", "parameters", "health")


def _named_files(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every (field, value) of a rollout document that names a file: the template, parameters and health files, each
    ring's health gates and each target's health file."""
    named = [(f, document.get(f)) for f in _PATH_FIELDS if document.get(f) is not None]
    rings = document.get("rings")
    for r, ring in enumerate(rings if isinstance(rings, list) else []):
        if not isinstance(ring, dict):
            continue
        if ring.get("health_gates") is not None:
            named.append((f"rings[{r}].health_gates", ring["health_gates"]))
        targets = ring.get("targets")
        for t, target in enumerate(targets if isinstance(targets, list) else []):
            if isinstance(target, dict) and target.get("health") is not None:
                named.append((f"rings[{r}].targets[{t}].health", target["health"]))
    return named


def check_rollout_document(document: Any, files: dict[str, Any], folder: Path) -> CheckedRollout:
    """A rollout document (the rollout file's fields, as JSON) whose template, parameters and health files are given
    inline in ``files`` (name → JSON document) rather than as paths — what the team API takes. Each name the document
    uses must be one of ``files`` (never a path: nothing else on the service's disk is read); they are written to
    ``folder`` (empty, the caller's) and checked exactly as ``check_rollout_file`` checks a file. Messages say "the
    rollout document" and name the files by their names."""
    if not isinstance(document, dict):
        raise InputError("The rollout document must be a JSON object with name, template and rings; " + DOCS + ".")
    if len(files) > MAX_DOCUMENT_FILES:
        raise InputError(f"files holds {len(files)} documents; at most {MAX_DOCUMENT_FILES}.")
    for name in files:
        if not FILE_NAME.fullmatch(name):
            raise InputError(
                f"files: {name[:80]!r} is not a file name: use 1-100 letters, digits, '.', '_' or '-', starting with "
                "a letter or digit (no folders)."
            )
    for field, value in _named_files(document):
        if isinstance(value, str) and value not in files:
            given = ", ".join(sorted(files)[:10]) or "none"
            raise InputError(
                f"The rollout document: {field}: names {value[:100]!r}, which is not in files (given: {given}); add "
                "the document under that name."
            )
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content), encoding="utf-8")
    path = folder / ".rollout.json"  # a name no entry of files can take (they start with a letter or digit)
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        checked = check_rollout_file(path)
    except InputError as exc:
        message = str(exc).replace(f"The rollout file {path}", "The rollout document")
        raise InputError(message.replace(f"{folder.resolve()}/", "").replace(f"{folder}/", "")) from None
    checked.file = Path("rollout document")
    checked.template_path = Path(checked.spec.template)
    checked.parameters_path = Path(checked.spec.parameters) if checked.spec.parameters else None
    return checked
