"""Template expansion: parameters, variables, resources (copy loops, conditions, children, nested deployments),
dependencies, deployment order and outputs — and the ``EvaluationContext`` the expression evaluator asks.

How it works, in three passes over every template level (the top template and each nested deployment):

1. *declare*: copy loops are unrolled and each resource instance gets its identity (type, name, id, apiVersion,
   condition) — all that dependsOn, reference() and resourceId() need to find it;
2. *evaluate*: each active instance's body is evaluated; reference()/list*() calls that hit resources of the
   template are recorded as implicit dependencies, and nested deployments are expanded recursively;
3. *order*: explicit and implicit dependencies form a graph; a deterministic topological sort gives the order,
   or a cycle is reported.

With a ``ResourceDeployer`` the engine then walks the order and re-evaluates each body just before deploying it,
so reference() of an earlier resource reads what the deployer returned — as Azure does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
from collections.abc import Iterator
from typing import Any, Literal

from . import evaluator
from .errors import IssueCode, TemplateError, TemplateIssue
from .graph import topological_order
from .json_source import locate, parse_json, value_positions
from .model import SECRET_MASK, CopyInfo, ExpandedDeployment, ExpandedResource, OutputValue, ParameterValue
from .parameters import ParameterResolver, read_parameters_document
from .scope import DeploymentScope
from .state import ResourceDeployer, ResourceStateView
from .values import Deferred

MAX_RESOURCES = 800
MAX_COPY_COUNT = 800
DEPLOYMENTS_TYPE = "microsoft.resources/deployments"

# Template-only keys of a resource declaration: they shape the expansion and are not part of the resource body.
_TEMPLATE_ONLY_KEYS = frozenset(
    {"copy", "condition", "dependson", "comments", "resources", "existing", "scope", "subscriptionid", "resourcegroup"}
)

Mode = Literal["plan", "live", "outputs", "params"]
Frame = tuple[str, int, str]  # (loop name lower-cased, index, "resource" | "property" | "variable" | "output")


def _child_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}['{key}']"


def _issue(code: str, message: str, path: str = "", **details: Any) -> TemplateError:
    return TemplateError(TemplateIssue(code, message, path, details=details))


def _lookup_key(mapping: dict[str, Any], name: str) -> str | None:
    if name in mapping:
        return name
    lowered = name.lower()
    return next((k for k in mapping if isinstance(k, str) and k.lower() == lowered), None)


def _type_names_path(rtype: str, name: str) -> str:
    """'Microsoft.Network/virtualNetworks/subnets' + 'vnet/s1' → 'providers/Microsoft.Network/virtualNetworks/
    vnet/subnets/s1' (ARM's id layout: the namespace, then type and name segments interleaved)."""
    segments = rtype.split("/")
    names = name.split("/")
    parts = ["providers", segments[0]]
    for i, t in enumerate(segments[1:]):
        parts.append(t)
        parts.append(names[i] if i < len(names) else "")
    return "/".join(parts)


def _split_id_type_name(text: str) -> tuple[str, str] | None:
    """'Microsoft.Web/sites/app/config/web' (or a full id) → ('microsoft.web/sites/config', 'app/web')."""
    s = text.strip("/")
    low = s.lower()
    idx = low.rfind("providers/")
    if s.startswith("/") or low.startswith("subscriptions/") or idx > 0:
        if idx < 0:
            return None
        s = s[idx + len("providers/") :]
    segments = s.split("/")
    if len(segments) < 3 or "." not in segments[0] or len(segments) % 2 == 0:
        return None
    types = [segments[0], *segments[1::2]]
    names = segments[2::2]
    return "/".join(types).lower(), "/".join(names).lower()


class _Instance:
    """One concrete resource: a declaration, after copy loops, with its identity and (later) its body."""

    __slots__ = (
        "active",
        "api_version",
        "body",
        "copy_info",
        "copy_name",
        "decl",
        "deps",
        "existing",
        "frames",
        "id",
        "index",
        "level",
        "name",
        "name_deferred",
        "nested",
        "nested_outputs",
        "nested_parameters_raw",
        "parent",
        "path",
        "place_kind",
        "place_scope",
        "state",
        "symbolic",
        "type",
        "unexpandable",
    )

    def __init__(self, level: _Level, decl: dict[str, Any], path: str, symbolic: str | None, frames: tuple[Frame, ...]):
        self.level = level
        self.decl = decl
        self.path = path
        self.symbolic = symbolic
        self.frames = frames
        self.copy_info: CopyInfo | None = None
        self.copy_name: str | None = None
        self.parent: _Instance | None = None
        self.active = True
        self.existing = False
        self.type = ""
        self.name = ""
        self.api_version = ""
        self.id = ""
        self.index = -1
        self.place_scope = level.place_scope
        self.place_kind = level.place_kind
        self.deps: list[_Instance] = []
        self.body: dict[str, Any] | None = None
        self.nested: _Level | None = None
        self.nested_outputs: dict[str, Any] | None = None
        self.nested_parameters_raw: dict[str, Any] | None = None
        self.unexpandable: str | None = None
        self.name_deferred = False
        self.state = "new"

    @property
    def is_deployment(self) -> bool:
        return self.type.lower() == DEPLOYMENTS_TYPE

    def enclosing_deployments(self) -> Iterator[_Instance]:
        level: _Level | None = self.level
        while level is not None and level.owner is not None:
            yield level.owner
            level = level.owner.level


class _Level:
    """One template being expanded: the top template or the template of a nested deployment."""

    def __init__(
        self,
        engine: _Expander,
        template: dict[str, Any],
        *,
        eval_scope: DeploymentScope,
        place_scope: DeploymentScope,
        place_kind: str,
        path: str,
        owner: _Instance | None,
        outer_parent: _Level | None,
        frames: tuple[Frame, ...] = (),
    ) -> None:
        self.engine = engine
        self.template = template
        self.eval_scope = eval_scope
        self.place_scope = place_scope
        self.place_kind = place_kind
        self.path = path  # JSON path prefix of this template ("" at the top)
        self.owner = owner
        self.outer_parent = outer_parent  # set for outer-scope nested templates: names resolve in the parent
        self.frames = frames
        self.language2 = str(template.get("languageVersion", "")).startswith("2")
        self.resolver: ParameterResolver | None = None
        self.live_parameters: dict[str, Any] = {}
        self.live_prepared = False
        self.instances: list[_Instance] = []
        self.by_symbolic: dict[str, list[_Instance]] = {}
        self.by_copy: dict[str, list[_Instance]] = {}
        self.by_id: dict[str, list[_Instance]] = {}
        self.by_name: dict[str, list[_Instance]] = {}
        self.by_type_name: dict[tuple[str, str], list[_Instance]] = {}
        self.var_cache: dict[str, dict[str, tuple[Any, set[_Instance]]]] = {"plan": {}, "live": {}, "outputs": {}}
        self.var_resolving: set[str] = set()
        self.variable_names: dict[str, str] = {}
        self.variables = self._index_variables(template.get("variables"))
        self.functions = self._index_functions(template.get("functions"))

    def _p(self, suffix: str) -> str:
        return f"{self.path}.{suffix}" if self.path else suffix

    def _index_variables(self, raw: Any) -> dict[str, tuple[str, Any, str]]:
        """lower-cased name → (kind 'plain' | 'copy', declaration, JSON path)."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise _issue(IssueCode.INVALID_TEMPLATE, "'variables' must be an object", self._p("variables"))
        result: dict[str, tuple[str, Any, str]] = {}
        for key, value in raw.items():
            if key.lower() == "copy" and isinstance(value, list):
                for i, spec in enumerate(value):
                    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                        raise _issue(
                            IssueCode.INVALID_TEMPLATE,
                            "a variable copy loop needs a 'name', a 'count' and an 'input'",
                            self._p(f"variables.copy[{i}]"),
                        )
                    result[spec["name"].lower()] = ("copy", spec, self._p(f"variables.copy[{i}]"))
                    self.variable_names[spec["name"].lower()] = spec["name"]
            else:
                result[key.lower()] = ("plain", value, _child_path(self._p("variables"), key))
                self.variable_names[key.lower()] = key
        return result

    def _index_functions(self, raw: Any) -> dict[tuple[str, str], dict[str, Any]]:
        result: dict[tuple[str, str], dict[str, Any]] = {}
        if isinstance(raw, list):
            for ns in raw:
                if not isinstance(ns, dict):
                    continue
                namespace = str(ns.get("namespace", "")).lower()
                members = ns.get("members")
                if isinstance(members, dict):
                    for name, decl in members.items():
                        if isinstance(decl, dict):
                            result[(namespace, name.lower())] = decl
        return result

    # ----------------------------------------------------------------------------------- names in scope

    def names_level(self) -> _Level:
        """Where parameters, variables and functions come from (the parent for outer-scope nested templates)."""
        level = self
        while level.outer_parent is not None:
            level = level.outer_parent
        return level

    def lookup_chain(self) -> Iterator[_Level]:
        level: _Level | None = self
        while level is not None:
            yield level
            level = level.outer_parent

    def add(self, inst: _Instance) -> None:
        self.instances.append(inst)
        if inst.symbolic:
            self.by_symbolic.setdefault(inst.symbolic.lower(), []).append(inst)
        if inst.copy_name:
            self.by_copy.setdefault(inst.copy_name, []).append(inst)
        self.by_id.setdefault(inst.id.lower(), []).append(inst)
        self.by_name.setdefault(inst.name.lower(), []).append(inst)
        self.by_type_name.setdefault((inst.type.lower(), inst.name.lower()), []).append(inst)

    def symbolic_instances(self, text: str) -> list[_Instance] | None:
        """languageVersion 2.0: 'sym' (every instance of a loop) or 'sym[3]'."""
        key = text.lower()
        found = self.by_symbolic.get(key)
        if found is not None:
            return found
        m = re.fullmatch(r"(.+)\[(\d+)\]", key)
        if m and m.group(1) in self.by_symbolic:
            index = int(m.group(2))
            return [i for i in self.by_symbolic[m.group(1)] if i.copy_info is not None and i.copy_info.index == index]
        return None

    # ----------------------------------------------------------------------------------- values

    def parameter(self, name: str, mode: Mode) -> Any:
        level = self.names_level()
        if level.resolver is None:
            raise _issue(IssueCode.UNDECLARED_PARAMETER, f"the template has no parameter '{name}'")
        if mode == "live" and level.live_parameters:
            key = _lookup_key(level.live_parameters, name)
            if key is not None:
                return level.live_parameters[key]
        value = level.resolver.value(name)
        key = _lookup_key(level.resolver.values, name)
        if key is not None and level.resolver.values[key].source == "reference":
            return Deferred(f"[parameters('{name}')]", "a Key Vault secret, resolved by ARM at deployment")
        return _copy_json(value)

    def variable(self, name: str, ctx: _Context) -> Any:
        level = self.names_level()
        if level is not self:
            return level.variable(name, ctx)
        key = name.lower()
        mode = "plan" if ctx.mode == "params" else ctx.mode
        cache = self.var_cache[mode]
        if key in cache:
            value, deps = cache[key]
            if ctx.recorder is not None:
                ctx.recorder.update(deps)
            return _copy_json(value)  # each use gets its own copy: bodies must not share (and mutate) objects
        entry = self.variables.get(key)
        if entry is None:
            names = sorted(self.variable_names.values())
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise _issue(
                IssueCode.UNDECLARED_VARIABLE,
                f"the template has no variable '{name}' (declared: {', '.join(names) or 'none'}){hint}",
            )
        if key in self.var_resolving:
            raise _issue(
                IssueCode.INVALID_TEMPLATE,
                f"the variable '{name}' refers to itself (directly or through other variables)",
                entry[2],
            )
        self.var_resolving.add(key)
        recorder: set[_Instance] = set()
        inner = _Context(self, (), mode, recorder=recorder, in_variables=True)
        try:
            kind, decl, path = entry
            if kind == "copy":
                value = self.engine.copy_array(decl, inner, path, frame_kind="variable")
            else:
                value = self.engine.evaluate(decl, inner, path)
        finally:
            self.var_resolving.discard(key)
        cache[key] = (value, recorder)
        if ctx.recorder is not None:
            ctx.recorder.update(recorder)
        return _copy_json(value)

    def deployment_info(self) -> dict[str, Any]:
        level = self.names_level()
        template = level.template
        properties: dict[str, Any] = {
            "template": {"contentVersion": template.get("contentVersion", "1.0.0.0")},
            "mode": "Incremental",
            "provisioningState": "Accepted",
        }
        if isinstance(template.get("metadata"), dict):
            properties["template"]["metadata"] = template["metadata"]
        if level.owner is None and level.eval_scope.template_link:
            properties["templateLink"] = {"uri": level.eval_scope.template_link}
        info: dict[str, Any] = {"name": level.eval_scope.deployment_name, "properties": properties}
        if level.place_kind != "resourceGroup":
            info["location"] = level.eval_scope.location  # subscription/tenant deployments have a location
        return info


class _Context:
    """The EvaluationContext the evaluator sees: a template level, the copy loops around, and what to record."""

    __slots__ = ("allow_runtime_functions", "frames", "in_variables", "level", "mode", "recorder", "scope")

    def __init__(
        self,
        level: _Level,
        frames: tuple[Frame, ...],
        mode: Mode,
        *,
        recorder: set[_Instance] | None = None,
        allow_runtime_functions: bool = False,
        in_variables: bool = False,
    ) -> None:
        self.level = level
        self.frames = frames
        self.mode = mode
        self.recorder = recorder
        self.scope = level.eval_scope
        self.allow_runtime_functions = allow_runtime_functions
        self.in_variables = in_variables

    def with_frame(self, name: str, index: int, kind: str) -> _Context:
        return _Context(
            self.level,
            (*self.frames, (name.lower(), index, kind)),
            self.mode,
            recorder=self.recorder,
            allow_runtime_functions=self.allow_runtime_functions,
            in_variables=self.in_variables,
        )

    def _no_state_here(self, function: str) -> None:
        if self.mode == "params":
            raise _issue(IssueCode.FUNCTION_NOT_ALLOWED, f"{function}() cannot be used in a parameter's default value")
        if self.in_variables:
            raise _issue(
                IssueCode.FUNCTION_NOT_ALLOWED,
                f"{function}() cannot be used in the variables section (ARM evaluates variables before any "
                "resource exists); use it in a resource property or an output",
            )

    def parameter(self, name: str) -> Any:
        return self.level.parameter(name, self.mode)

    def variable(self, name: str) -> Any:
        if self.mode == "params":
            raise _issue(
                IssueCode.FUNCTION_NOT_ALLOWED, f"variables('{name}') cannot be used in a parameter's default value"
            )
        return self.level.variable(name, self)

    def copy_index(self, loop_name: str | None) -> int:
        if loop_name is None:
            for _name, index, kind in reversed(self.frames):
                if kind in ("resource", "output"):
                    return index
            if self.frames:
                return self.frames[-1][1]
            raise _issue(IssueCode.INVALID_TEMPLATE, "copyIndex() is used outside a copy loop")
        key = loop_name.lower()
        for name, index, _ in reversed(self.frames):
            if name == key:
                return index
        raise _issue(
            IssueCode.INVALID_TEMPLATE, f"copyIndex('{loop_name}') is used outside the copy loop '{loop_name}'"
        )

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        self._no_state_here("reference")
        return self.level.engine.reference(self, target, api_version, full)

    def list_call(self, function: str, target: str, api_version: str | None, body: Any) -> Any:
        self._no_state_here(function)
        return self.level.engine.list_call(self, function, target, api_version, body)

    def resource_info(self, symbolic_name: str) -> dict[str, Any]:
        for level in self.level.lookup_chain():
            found = level.symbolic_instances(symbolic_name)
            if found:
                inst = found[0]
                return {"id": inst.id, "name": inst.name, "type": inst.type, "apiVersion": inst.api_version}
        raise _issue(
            IssueCode.UNDECLARED_RESOURCE, f"the template has no resource with the symbolic name '{symbolic_name}'"
        )

    def user_function(self, namespace: str, name: str) -> dict[str, Any] | None:
        for level in self.level.lookup_chain():
            found = level.functions.get((namespace.lower(), name.lower()))
            if found is not None:
                return found
        return None

    def deployment(self) -> dict[str, Any]:
        return self.level.deployment_info()


class _Expander:
    def __init__(
        self,
        *,
        state: ResourceStateView | None,
        deployer: ResourceDeployer | None,
        template_source: str | None,
        parameters_source: str | None,
    ) -> None:
        self.state = state
        self.deployer = deployer
        self.template_source = template_source
        self.parameters_source = parameters_source
        self.instances: list[_Instance] = []
        self.live: dict[str, dict[str, Any]] = {}
        self.deployed: list[_Instance] = []

    # ----------------------------------------------------------------------------------- evaluation

    def evaluate(self, value: Any, ctx: _Context, path: str) -> Any:
        """evaluator.evaluate_value plus property copy loops (``"copy": [{name, count, input}]`` in objects)."""
        if isinstance(value, str):
            if value.startswith("["):
                return evaluator.evaluate_string(value, ctx, path)
            return value
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if key == "copy" and _is_property_copy(item):
                    for i, spec in enumerate(item):
                        result[spec["name"]] = self.copy_array(spec, ctx, f"{_child_path(path, 'copy')}[{i}]")
                    continue
                new_key: Any = key
                if key.startswith("["):
                    new_key = evaluator.evaluate_string(key, ctx, _child_path(path, key))
                    if isinstance(new_key, Deferred):
                        new_key = new_key.expression
                    elif not isinstance(new_key, str):
                        raise _issue(
                            IssueCode.TYPE_ERROR,
                            "a property name expression must give a string",
                            _child_path(path, key),
                        )
                result[new_key] = self.evaluate(item, ctx, _child_path(path, new_key))
            return result
        if isinstance(value, list):
            return [self.evaluate(item, ctx, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def copy_count(self, spec: dict[str, Any], ctx: _Context, path: str) -> int:
        count = self.copy_count_or_deferred(spec, ctx, path)
        if isinstance(count, Deferred):
            raise _issue(
                IssueCode.COPY_COUNT,
                "the copy count depends on values known only after deployment; ARM must know it when the "
                "deployment starts",
                f"{path}.count",
            )
        return count

    def copy_count_or_deferred(self, spec: dict[str, Any], ctx: _Context, path: str) -> int | Deferred:
        if "count" not in spec:
            raise _issue(IssueCode.INVALID_TEMPLATE, "a copy loop needs a 'count'", path)
        count = self.evaluate(spec["count"], ctx, f"{path}.count")
        if isinstance(count, Deferred):
            return count
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int):
            raise _issue(IssueCode.COPY_COUNT, f"the copy count must be an integer, got {count!r}", f"{path}.count")
        if count < 0 or count > MAX_COPY_COUNT:
            raise _issue(
                IssueCode.COPY_COUNT,
                f"the copy count is {count}; ARM allows 0 to {MAX_COPY_COUNT}",
                f"{path}.count",
                count=count,
            )
        return count

    def copy_array(self, spec: dict[str, Any], ctx: _Context, path: str, frame_kind: str = "property") -> Any:
        """A property or variable copy loop's array (a Deferred one when the count is known only later)."""
        name = spec.get("name")
        if not isinstance(name, str) or "input" not in spec:
            raise _issue(IssueCode.INVALID_TEMPLATE, "a copy loop needs a 'name', a 'count' and an 'input'", path)
        count = self.copy_count_or_deferred(spec, ctx, path)
        if isinstance(count, Deferred):
            return Deferred(f"[copy loop '{name}' over {count.expression}]", count.reason)
        return [
            self.evaluate(spec["input"], ctx.with_frame(name, i, frame_kind), f"{path}.input") for i in range(count)
        ]

    # ----------------------------------------------------------------------------------- pass 1: declare

    def declare_level(self, level: _Level) -> None:
        resources = level.template.get("resources", [])
        if level.language2 and isinstance(resources, dict):
            entries = [(_child_path(level._p("resources"), sym), sym, decl) for sym, decl in resources.items()]
        elif isinstance(resources, list):
            entries = [(f"{level._p('resources')}[{i}]", None, decl) for i, decl in enumerate(resources)]
        else:
            raise _issue(
                IssueCode.INVALID_TEMPLATE,
                "'resources' must be an array (or, with languageVersion 2.0, an object keyed by symbolic names)",
                level._p("resources"),
            )
        for path, sym, decl in entries:
            self.declare(level, decl, path, sym, level.frames, None)
        seen: dict[str, _Instance] = {}
        for inst in level.instances:
            if not inst.active or inst.existing or inst.name_deferred:
                continue  # a name known only at deployment cannot be compared yet
            first = seen.setdefault(inst.id.lower(), inst)
            if first is not inst:
                raise _issue(
                    IssueCode.INVALID_TEMPLATE,
                    f"the resource '{inst.id}' is defined more than once in the template (also at {first.path}); "
                    "ARM deploys each resource once per template",
                    inst.path,
                )
        count = len(seen) + sum(1 for i in level.instances if i.active and not i.existing and i.name_deferred)
        if count > MAX_RESOURCES:
            raise _issue(
                IssueCode.TOO_MANY_RESOURCES,
                f"the template deploys {count} resources; ARM allows at most {MAX_RESOURCES} in one template "
                "(split it into nested deployments or modules)",
                level._p("resources"),
                count=count,
            )

    def declare(
        self,
        level: _Level,
        decl: Any,
        path: str,
        symbolic: str | None,
        frames: tuple[Frame, ...],
        parent: _Instance | None,
    ) -> None:
        if not isinstance(decl, dict):
            raise _issue(IssueCode.INVALID_TEMPLATE, "a resource must be an object", path)
        copy = decl.get("copy")
        if symbolic is not None:
            level.by_symbolic.setdefault(symbolic.lower(), [])  # a loop of 0 is still a name dependsOn may use
        if isinstance(copy, dict) and isinstance(copy.get("name"), str):
            level.by_copy.setdefault(copy["name"].lower(), [])
        if copy is None:
            self.declare_one(level, decl, path, symbolic, frames, parent, None)
            return
        if not isinstance(copy, dict) or not isinstance(copy.get("name"), str):
            raise _issue(
                IssueCode.INVALID_TEMPLATE, "a resource copy loop needs a 'name' and a 'count'", f"{path}.copy"
            )
        ctx = _Context(level, frames, "plan")
        count = self.copy_count_or_deferred(copy, ctx, f"{path}.copy")
        if isinstance(count, Deferred):
            if level.owner is None:
                self.copy_count(copy, ctx, f"{path}.copy")  # raises: ARM must know it at the start
            raise _NeedsDeploymentTime(
                f"the copy count of {path} depends on values known only during the deployment ({count.expression})"
            )
        mode = str(copy.get("mode", "parallel")).lower()
        batch = copy.get("batchSize")
        if batch is not None:
            batch = self.evaluate(batch, ctx, f"{path}.copy.batchSize")
            if not isinstance(batch, int) or isinstance(batch, bool) or batch < 0:
                raise _issue(
                    IssueCode.INVALID_TEMPLATE,
                    "the copy batchSize must be a non-negative integer",
                    f"{path}.copy.batchSize",
                )
        for i in range(count):
            info = CopyInfo(copy["name"], i, count, "serial" if mode == "serial" else "parallel", batch)
            inner = (*frames, (copy["name"].lower(), i, "resource"))
            self.declare_one(level, decl, path, symbolic, inner, parent, info)

    def declare_one(
        self,
        level: _Level,
        decl: dict[str, Any],
        path: str,
        symbolic: str | None,
        frames: tuple[Frame, ...],
        parent: _Instance | None,
        copy_info: CopyInfo | None,
    ) -> None:
        inst = _Instance(level, decl, path, symbolic, frames)
        inst.copy_info = copy_info
        inst.copy_name = copy_info.name.lower() if copy_info else None
        inst.parent = parent
        inst.existing = decl.get("existing") is True
        ctx = _Context(level, frames, "plan")
        if parent is not None and not parent.active:
            inst.active = False
        elif "condition" in decl:
            condition = self.evaluate(decl["condition"], ctx, f"{path}.condition")
            if isinstance(condition, str) and condition.lower() in ("true", "false"):
                condition = condition.lower() == "true"
            if isinstance(condition, Deferred):
                condition = True  # known only at deployment; plan for the resource
            if not isinstance(condition, bool):
                raise _issue(IssueCode.TYPE_ERROR, "a resource condition must be a boolean", f"{path}.condition")
            inst.active = condition
        extension = decl.get("import", decl.get("extension"))
        for key in ("type", "name"):
            if key not in decl and not (key == "name" and extension is not None and symbolic):
                raise _issue(IssueCode.INVALID_TEMPLATE, f"the resource has no '{key}'", path)
        try:
            self.identify(inst, ctx, parent)
        except TemplateError:
            if inst.active:
                raise
            # ARM does not evaluate a skipped resource (its name may be meaningless when the condition is false)
            inst.type = str(decl["type"])
            inst.name = str(decl["name"])
            inst.id = f"{path}: {inst.type}/{inst.name}"
            inst.index = len(self.instances)
            self.instances.append(inst)
            return
        inst.index = len(self.instances)
        self.instances.append(inst)
        level.add(inst)
        children = decl.get("resources")
        if isinstance(children, list):
            for j, child in enumerate(children):
                self.declare(level, child, f"{path}.resources[{j}]", None, frames, inst)

    def identify(self, inst: _Instance, ctx: _Context, parent: _Instance | None) -> None:
        """Type, name, apiVersion and id of an instance."""
        decl, path = inst.decl, inst.path
        rtype = self.evaluate(decl["type"], ctx, f"{path}.type")
        extension = decl.get("import", decl.get("extension"))
        if extension is not None:
            # an extensibility resource (Kubernetes, Microsoft Graph, ...): not an ARM resource, no ARM id
            name = self.evaluate(decl.get("name", inst.symbolic), ctx, f"{path}.name")
            inst.type, inst.name = str(rtype), str(name)
            inst.api_version = ""
            inst.id = f"/extensions/{extension}/{inst.type}/{inst.name}"
            return
        name = self.evaluate(decl["name"], ctx, f"{path}.name")
        if not isinstance(rtype, str) or ("/" not in rtype and parent is None):
            raise _issue(
                IssueCode.INVALID_TEMPLATE,
                f"the resource type {rtype!r} is not a full type such as 'Microsoft.Storage/storageAccounts'",
                f"{path}.type",
            )
        inst.name_deferred = isinstance(name, Deferred) or (parent is not None and parent.name_deferred)
        name = str(name) if isinstance(name, Deferred) else name
        if not isinstance(name, str):
            raise _issue(IssueCode.TYPE_ERROR, f"the resource name must be a string, got {name!r}", f"{path}.name")
        # A child's type is relative to its parent's ('blobServices/containers' under a storage account) unless it
        # names its provider namespace ('Microsoft.Storage/storageAccounts/blobServices'): namespaces have a dot.
        if parent is not None and "." not in rtype.split("/", 1)[0]:
            rtype = f"{parent.type}/{rtype}"
            name = f"{parent.name}/{name}"
        inst.type = rtype
        inst.name = name
        api = decl.get("apiVersion")
        inst.api_version = str(self.evaluate(api, ctx, f"{path}.apiVersion")) if api is not None else ""
        if (
            len(rtype.split("/")) - 1 != len(name.split("/"))
            and "[" not in name
            and rtype.lower() != "microsoft.resources/resourcegroups"
        ):
            raise _issue(
                IssueCode.INVALID_TEMPLATE,
                f"the resource name '{name}' has {len(name.split('/'))} segment(s) but its type '{rtype}' needs "
                f"{len(rtype.split('/')) - 1}: a child resource's name is 'parent/child'",
                f"{path}.name",
            )
        self.place(inst, ctx)

    def place(self, inst: _Instance, ctx: _Context) -> None:
        """The instance's resource id, and for nested deployments the scope they deploy into."""
        decl, path = inst.decl, inst.path
        sub_raw, rg_raw = decl.get("subscriptionId"), decl.get("resourceGroup")
        scope, kind = inst.level.place_scope, inst.level.place_kind
        if sub_raw is not None or rg_raw is not None:
            sub = self.evaluate(sub_raw, ctx, f"{path}.subscriptionId") if sub_raw is not None else None
            rg = self.evaluate(rg_raw, ctx, f"{path}.resourceGroup") if rg_raw is not None else None
            changes: dict[str, Any] = {}
            if isinstance(sub, str) and sub:
                changes["subscription_id"] = sub
            if isinstance(rg, str) and rg:
                changes["resource_group"] = rg
                kind = "resourceGroup"
            elif sub is not None and rg_raw is None:
                kind = "subscription"
            moved = dataclasses.replace(scope, **changes)
            if kind == "resourceGroup" and moved.resource_group_id.lower() != scope.resource_group_id.lower():
                # another resource group: its location and tags are what the state says, else known only to ARM
                group = self.state.get_resource(moved.resource_group_id) if self.state is not None else None
                group = group if isinstance(group, dict) else {}
                location: Any = group.get("location") or Deferred(
                    f"[resourceGroup('{moved.resource_group}').location]",
                    f"the location of resource group {moved.resource_group}",
                )
                raw_tags = group.get("tags")
                tags: dict[str, str] = dict(raw_tags) if isinstance(raw_tags, dict) else {}
                moved = dataclasses.replace(moved, location=location, resource_group_tags=tags)
            scope = moved
        inst.place_scope, inst.place_kind = scope, kind
        tail = _type_names_path(inst.type, inst.name)
        if "scope" in decl:
            target = self.evaluate(decl["scope"], ctx, f"{path}.scope")
            base = self.resolve_scope(inst, str(target))
            inst.id = f"{base}/{tail}"
        elif inst.type.lower() == "microsoft.resources/resourcegroups":
            inst.id = f"/subscriptions/{scope.subscription_id}/resourceGroups/{inst.name}"
        elif kind == "subscription":
            inst.id = f"/subscriptions/{scope.subscription_id}/{tail}"
        elif kind == "tenant":
            inst.id = f"/{tail}"
        else:
            inst.id = f"/subscriptions/{scope.subscription_id}/resourceGroups/{scope.resource_group}/{tail}"

    def resolve_scope(self, inst: _Instance, target: str) -> str:
        """An extension resource's ``scope``: a resource id, a symbolic name (2.0) or 'Type/name' in the group."""
        if target.startswith("/"):
            return target.rstrip("/")
        for level in inst.level.lookup_chain():
            found = level.symbolic_instances(target) if level.language2 else None
            if found:
                return found[0].id
        split = _split_id_type_name(target)
        scope = inst.level.place_scope
        if split is not None and split[0].startswith("microsoft.management/"):
            return f"/providers/{target}"  # management groups live at the tenant root
        if split is not None:
            return f"/subscriptions/{scope.subscription_id}/resourceGroups/{scope.resource_group}/providers/{target}"
        raise _issue(
            IssueCode.INVALID_TEMPLATE, f"the resource scope '{target}' is not a resource id", f"{inst.path}.scope"
        )

    # ----------------------------------------------------------------------------------- pass 2: evaluate

    def evaluate_level(self, level: _Level) -> None:
        for inst in level.instances:
            if inst.active:
                self.evaluate_instance(inst)
        if level.outer_parent is None:
            # ARM validates every variable when the deployment starts, used or not
            ctx = _Context(level, (), "plan")
            for name in level.variables:
                level.variable(name, ctx)
        for inst in level.instances:
            if inst.active:
                self.resolve_depends_on(inst)

    def evaluate_instance(self, inst: _Instance) -> None:
        if inst.state != "new":
            return
        inst.state = "evaluating"
        recorder: set[_Instance] = set()
        ctx = _Context(inst.level, inst.frames, "plan", recorder=recorder)
        inst.body = self.evaluate_body(inst, ctx)
        if inst.is_deployment and not inst.existing:
            self.expand_nested(inst, ctx)
        inst.deps = [d for d in sorted(recorder, key=lambda d: d.index) if d is not inst]
        inst.state = "done"

    def evaluate_body(self, inst: _Instance, ctx: _Context) -> dict[str, Any]:
        body: dict[str, Any] = {}
        skip_properties = inst.is_deployment and not inst.existing
        for key, value in inst.decl.items():
            low = key.lower()
            if low in _TEMPLATE_ONLY_KEYS or (skip_properties and low == "properties"):
                continue
            if inst.existing and low not in ("name", "type", "apiversion"):
                continue
            body[key] = self.evaluate(value, ctx, _child_path(inst.path, key))
        body["name"] = inst.name
        body["type"] = inst.type
        if inst.api_version:
            body["apiVersion"] = inst.api_version
        return body

    def expand_nested(self, inst: _Instance, ctx: _Context) -> None:
        """A Microsoft.Resources/deployments resource with an inline template: expand it as its own level."""
        assert inst.body is not None
        props = inst.decl.get("properties")
        path = f"{inst.path}.properties"
        if not isinstance(props, dict):
            raise _issue(IssueCode.INVALID_TEMPLATE, "a deployment resource needs 'properties'", path)
        options = props.get("expressionEvaluationOptions")
        scope_option = "outer"
        if isinstance(options, dict) and isinstance(options.get("scope"), str):
            scope_option = options["scope"].lower()
        shown: dict[str, Any] = {}
        for key, value in props.items():
            if key.lower() not in ("template", "parameters"):
                shown[key] = self.evaluate(value, ctx, _child_path(path, key))
        inst.body["properties"] = shown
        template = props.get("template")
        if not isinstance(template, dict):
            link = shown.get("templateLink")
            reason = "a linked template (templateLink) is not expandable offline" if link else "it has no template"
            inst.unexpandable = reason
            shown["template"] = Deferred(f"[reference('{inst.id}', '2022-09-01', 'Full').properties.template]", reason)
            inst.nested_outputs = None
            return
        if "resources" not in template:
            raise _issue(IssueCode.INVALID_TEMPLATE, "the nested template has no 'resources'", f"{path}.template")
        place_scope = inst.place_scope
        if scope_option == "inner":
            eval_scope = dataclasses.replace(place_scope, deployment_name=inst.name, template_link=None)
            level = _Level(
                self,
                template,
                eval_scope=eval_scope,
                place_scope=place_scope,
                place_kind=inst.place_kind,
                path=f"{path}.template",
                owner=inst,
                outer_parent=None,
            )
            provided: dict[str, dict[str, Any]] = {}
            raw_params = props.get("parameters") or {}
            if isinstance(raw_params, str):
                raw_params = self.evaluate(raw_params, ctx, f"{path}.parameters")
            if not isinstance(raw_params, dict):
                raise _issue(
                    IssueCode.INVALID_TEMPLATE,
                    "the nested deployment's 'parameters' must be an object",
                    f"{path}.parameters",
                )
            inst.nested_parameters_raw = raw_params
            for name, entry in raw_params.items():
                ppath = _child_path(f"{path}.parameters", name)
                if isinstance(entry, str) or (isinstance(entry, dict) and not {"value", "reference"} & set(entry)):
                    entry = self.evaluate(entry, ctx, ppath)
                    if isinstance(entry, Deferred):
                        entry = {"value": Deferred(f"[{entry.expression[1:-1]}.value]", entry.reason)}
                        provided[name] = entry
                        continue
                if isinstance(entry, dict) and "value" in entry:
                    provided[name] = {"value": self.evaluate(entry["value"], ctx, f"{ppath}.value")}
                elif isinstance(entry, dict) and "reference" in entry:
                    provided[name] = {"reference": self.evaluate(entry["reference"], ctx, f"{ppath}.reference")}
                else:
                    raise _issue(IssueCode.INVALID_TEMPLATE, 'a nested deployment parameter needs a "value"', ppath)
            level.resolver = self.make_resolver(
                level,
                provided,
                None,
                parameters_source=self.template_source,
                provided_path_prefix=f"{path}.parameters",
            )
            values = level.resolver.resolve_all()
            secure = {name.lower() for name, pv in values.items() if pv.secure}
            shown["parameters"] = {
                name: {"reference": entry["reference"]}
                if "reference" in entry
                else {"value": SECRET_MASK if name.lower() in secure else entry["value"]}
                for name, entry in provided.items()
            }
        else:
            level = _Level(
                self,
                template,
                eval_scope=inst.level.eval_scope,
                place_scope=place_scope,
                place_kind=inst.place_kind,
                path=f"{path}.template",
                owner=inst,
                outer_parent=inst.level,
                frames=inst.frames,
            )
        inst.nested = level
        first_inner = len(self.instances)
        try:
            self.declare_level(level)
            self.evaluate_level(level)
        except _NeedsDeploymentTime as later:
            # ARM expands a nested deployment when it starts, after its dependencies: so can we, not before.
            del self.instances[first_inner:]
            inst.nested = None
            inst.unexpandable = str(later)
            shown["template"] = Deferred(
                f"[reference('{inst.id}', '2022-09-01', 'Full').properties.template]", str(later)
            )
            return
        inst.nested_outputs = self.evaluate_outputs(level, "plan")
        # ARM: an outer-scope nested template is evaluated in the parent, so what its resources reference in the
        # parent must exist before the nested deployment starts.
        if ctx.recorder is not None:
            for inner in self.instances_under(level):
                for dep in inner.deps:
                    if not self.is_under(dep, inst):
                        ctx.recorder.add(dep)

    def instances_under(self, level: _Level) -> Iterator[_Instance]:
        for inst in level.instances:
            yield inst
            if inst.nested is not None:
                yield from self.instances_under(inst.nested)

    @staticmethod
    def is_under(inst: _Instance, deployment: _Instance) -> bool:
        return any(owner is deployment for owner in inst.enclosing_deployments())

    def make_resolver(
        self,
        level: _Level,
        provided: dict[str, dict[str, Any]],
        overrides: dict[str, Any] | None,
        *,
        parameters_source: str | None,
        provided_path_prefix: str = "parameters",
    ) -> ParameterResolver:
        def evaluate_default(name: str, raw: Any, path: str) -> Any:
            ctx = _Context(level, (), "params", allow_runtime_functions=True)
            return self.evaluate(raw, ctx, path)

        return ParameterResolver(
            level.template.get("parameters") or {},
            provided,
            overrides,
            definitions=level.template.get("definitions"),
            evaluate_default=evaluate_default,
            parameters_source=parameters_source,
            template_source=self.template_source,
            path_prefix=level._p("parameters"),
            provided_path_prefix=provided_path_prefix,
        )

    # ----------------------------------------------------------------------------------- dependsOn

    def resolve_depends_on(self, inst: _Instance) -> None:
        raw = inst.decl.get("dependsOn")
        deps: dict[int, _Instance] = {d.index: d for d in inst.deps}
        if inst.parent is not None and inst.parent.active:
            deps[inst.parent.index] = inst.parent  # a nested child depends on its parent
        if raw is not None:
            if not isinstance(raw, list):
                raise _issue(IssueCode.INVALID_TEMPLATE, "'dependsOn' must be an array", f"{inst.path}.dependsOn")
            ctx = _Context(inst.level, inst.frames, "plan")
            for i, entry in enumerate(raw):
                path = f"{inst.path}.dependsOn[{i}]"
                value = self.evaluate(entry, ctx, path)
                if isinstance(value, Deferred):
                    continue
                if not isinstance(value, str):
                    raise _issue(IssueCode.INVALID_TEMPLATE, "a dependsOn entry must be a string", path)
                for dep in self.match_dependency(inst.level, value, path):
                    if dep.active and dep is not inst:
                        deps[dep.index] = dep
        inst.deps = [deps[k] for k in sorted(deps)]

    def match_dependency(self, level: _Level, text: str, path: str) -> list[_Instance]:
        """ARM's dependsOn matching: a copy loop name (every instance), a symbolic name (2.0), a resource id,
        'Namespace/type/name', or a plain resource name."""
        key = text.lower()
        for lv in level.lookup_chain():
            if lv.language2:
                found = lv.symbolic_instances(text)
                if found is not None:
                    return found
            if key in lv.by_copy:
                return lv.by_copy[key]
            if key in lv.by_id:
                return lv.by_id[key]
            split = _split_id_type_name(text)
            if split is not None and split in lv.by_type_name:
                return lv.by_type_name[split]
            if key in lv.by_name:
                return lv.by_name[key]
        raise _issue(
            IssueCode.UNDECLARED_RESOURCE,
            f"dependsOn names '{text}', which is not a resource or copy loop of this template",
            path,
        )

    # ----------------------------------------------------------------------------------- reference()

    def find_target(self, ctx: _Context, target: str) -> list[_Instance] | None:
        for level in ctx.level.lookup_chain():
            if level.language2:
                found = level.symbolic_instances(target)
                if found:
                    return found
            key = target.lower()
            if target.startswith("/"):
                if key in level.by_id:
                    return level.by_id[key]
            elif key in level.by_name:
                return level.by_name[key]
            else:
                split = _split_id_type_name(target)
                if split is not None and split in level.by_type_name:
                    return level.by_type_name[split]
        return None

    def payload(self, resource_id: str, api_version: str | None) -> dict[str, Any] | None:
        found = self.live.get(resource_id.lower())
        if found is not None:
            return found
        if self.state is not None:
            result = self.state.get_resource(resource_id, api_version)
            if isinstance(result, dict):
                return result
        return None

    def reference(self, ctx: _Context, target: str, api_version: str | None, full: bool) -> Any:
        found = self.find_target(ctx, target)
        if found is None:
            if not target.startswith("/"):
                raise _issue(
                    IssueCode.UNDECLARED_RESOURCE,
                    f"reference('{target}'): the template declares no resource named '{target}'; pass a resource "
                    "id for a resource outside the template",
                )
            payload = self.payload(target, api_version)
            if payload is None:
                return Deferred(f"[reference('{target}')]", f"the resource {target} is not in the state view")
            return _project(payload, full)
        inst = found[0]
        if not inst.active:
            raise _issue(
                IssueCode.UNDECLARED_RESOURCE,
                f"reference('{target}'): the resource '{inst.id}' is not deployed because its condition is false",
            )
        if ctx.recorder is not None and not inst.existing:
            ctx.recorder.add(inst)
        payload = self.payload(inst.id, api_version or inst.api_version)
        if payload is None and inst.is_deployment and not inst.existing and ctx.mode != "live":
            if inst.state == "new" and ctx.mode == "plan":
                self.evaluate_instance(inst)
            if inst.nested_outputs is not None:
                payload = {
                    "id": inst.id,
                    "name": inst.name,
                    "type": inst.type,
                    "properties": {"outputs": inst.nested_outputs},
                }
        if payload is None:
            what = "an existing resource missing from the state view" if inst.existing else "deployed by this template"
            return Deferred(f"[reference('{target}')]", f"{inst.id} is {what}")
        return _project(payload, full)

    def list_call(self, ctx: _Context, function: str, target: str, api_version: str | None, body: Any) -> Any:
        found = self.find_target(ctx, target)
        resource_id = target
        if found is not None:
            inst = found[0]
            if not inst.active:
                raise _issue(
                    IssueCode.UNDECLARED_RESOURCE,
                    f"{function}('{target}'): the resource '{inst.id}' is not deployed because its condition is false",
                )
            if ctx.recorder is not None and not inst.existing:
                ctx.recorder.add(inst)
            resource_id = inst.id
            if not inst.existing and self.payload(inst.id, api_version) is None:
                return Deferred(f"[{function}('{target}')]", f"{inst.id} is deployed by this template")
        elif not target.startswith("/"):
            raise _issue(
                IssueCode.UNDECLARED_RESOURCE,
                f"{function}('{target}'): the template declares no resource named '{target}'",
            )
        if self.state is None:
            return Deferred(f"[{function}('{target}')]", "list* results come from the deployed resource")
        result = self.state.list_call(resource_id, function, api_version or "", body)
        if result is None:
            return Deferred(f"[{function}('{target}')]", f"{resource_id} is not in the state view")
        return result

    # ----------------------------------------------------------------------------------- outputs

    def evaluate_outputs(self, level: _Level, mode: Mode) -> dict[str, Any]:
        """name → {"type", "value"} (the shape of a deployment's properties.outputs)."""
        raw = level.template.get("outputs") or {}
        if not isinstance(raw, dict):
            raise _issue(IssueCode.INVALID_TEMPLATE, "'outputs' must be an object", level._p("outputs"))
        result: dict[str, Any] = {}
        for name, decl in raw.items():
            path = _child_path(level._p("outputs"), name)
            if not isinstance(decl, dict):
                raise _issue(IssueCode.INVALID_TEMPLATE, "an output must be an object with 'type' and 'value'", path)
            ctx = _Context(level, level.frames, mode)
            if "condition" in decl:
                condition = self.evaluate(decl["condition"], ctx, f"{path}.condition")
                if condition is False:
                    continue
            otype = str(decl.get("type", "")).lower()
            if isinstance(decl.get("copy"), dict):
                spec = decl["copy"]
                count = self.copy_count(spec, ctx, f"{path}.copy")
                value: Any = [
                    self.evaluate(spec.get("input"), ctx.with_frame(name, i, "output"), f"{path}.copy.input")
                    for i in range(count)
                ]
            elif "value" in decl:
                value = self.evaluate(decl["value"], ctx, f"{path}.value")
            else:
                raise _issue(IssueCode.INVALID_TEMPLATE, "an output needs a 'value' (or a 'copy')", path)
            _check_output_type(otype, value, path)
            result[name] = {"type": decl.get("type", otype), "value": value}
        return result

    # ----------------------------------------------------------------------------------- pass 3: order

    def order(self, nodes: list[_Instance] | None = None) -> list[_Instance]:
        """Active instances (all, or ``nodes``), dependencies first; a cycle is a CircularDependency error."""
        if nodes is None:
            nodes = [i for i in self.instances if i.active]
        position = {inst.index: n for n, inst in enumerate(nodes)}
        edges: list[set[int]] = [set() for _ in nodes]
        for n, inst in enumerate(nodes):
            for dep in inst.deps:
                if dep.index in position:
                    edges[n].add(position[dep.index])
            for owner in inst.enclosing_deployments():
                # an inner resource starts only when its deployment could: after the deployment's dependencies;
                # the deployment completes after its inner resources
                for dep in owner.deps:
                    if dep.index in position and not self.is_under(dep, owner):
                        edges[n].add(position[dep.index])
                if owner.index in position:
                    edges[position[owner.index]].add(n)
        # copy mode serial: each batch of batchSize (default 1) instances starts after the previous batch
        loops: dict[tuple[int, str, tuple[Frame, ...]], list[_Instance]] = {}
        for inst in nodes:
            if inst.copy_info is not None and inst.copy_info.mode == "serial":
                loops.setdefault((id(inst.level), inst.path, inst.frames[:-1]), []).append(inst)
        for members in loops.values():
            members.sort(key=lambda i: i.copy_info.index if i.copy_info else 0)
            batch = max(1, members[0].copy_info.batch_size or 1) if members[0].copy_info else 1
            for j, inst in enumerate(members):
                start = (j // batch - 1) * batch
                if start >= 0:
                    for earlier in members[start : start + batch]:
                        edges[position[inst.index]].add(position[earlier.index])
        order, cycle = topological_order(len(nodes), edges)
        if cycle:
            names = [nodes[i] for i in cycle]
            shown = " -> ".join(i.id for i in names)
            raise TemplateError(
                TemplateIssue(
                    IssueCode.CIRCULAR_DEPENDENCY,
                    f"circular dependency between resources: {shown}",
                    names[0].path,
                    details={"cycle": [i.id for i in names], "paths": [i.path for i in names]},
                )
            )
        return [nodes[i] for i in order]

    # ----------------------------------------------------------------------------------- deployer mode

    def deploy(self, ordered: list[_Instance], resources: dict[int, ExpandedResource]) -> None:
        """Walk the order, evaluating each resource live (its name and id too) just before deploying it."""
        assert self.deployer is not None
        for inst in ordered:
            if inst.existing:
                continue
            self.prepare_live_level(inst.level)
            if inst.is_deployment and inst.nested is None and inst.unexpandable is not None:
                self.expand_late(inst, resources)
            resource = resources[inst.index]
            if inst.is_deployment and inst.nested is not None:
                self.relocate(inst, resource)
                outputs = self.evaluate_outputs(inst.nested, "live")
                inst.nested_outputs = outputs
                resource.body.setdefault("properties", {})["outputs"] = outputs
                payload = self.call_deployer(resource)
                payload = dict(payload) if isinstance(payload, dict) else {}
                props = dict(payload.get("properties") or {})
                props.setdefault("outputs", outputs)
                payload["properties"] = props
            else:
                if not inst.is_deployment:
                    ctx = _Context(inst.level, inst.frames, "live")
                    self.relocate(inst, resource, ctx)
                    body = self.evaluate_body(inst, ctx)
                    resource.body = body
                    resource.properties = body.get("properties")
                    location = body.get("location")
                    resource.location = location if isinstance(location, str) else None
                payload = self.call_deployer(resource)
            self.deployed.append(inst)
            self.live[inst.id.lower()] = payload if isinstance(payload, dict) else {}

    def relocate(self, inst: _Instance, resource: ExpandedResource, ctx: _Context | None = None) -> None:
        """A name that waited on deployment-time values (e.g. guid(reference(x).principalId)) is known now:
        re-evaluate the identity so the resource is deployed under its real id, as ARM does."""
        if ctx is not None and inst.name_deferred:
            with contextlib.suppress(TemplateError):  # keep the planned identity; the body reports real errors
                self.identify(inst, ctx, inst.parent)
        resource.id, resource.name, resource.type = inst.id, inst.name, inst.type
        resource.depends_on = [d.id for d in inst.deps]
        resource.deployment_path = [o.name for o in reversed(list(inst.enclosing_deployments()))]

    def expand_late(self, inst: _Instance, resources: dict[int, ExpandedResource]) -> None:
        """A nested deployment whose resources depended on deployment-time values: its dependencies are deployed
        now, so expand it (reading their state), then deploy its resources in their own order."""
        props = inst.decl.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("template"), dict):
            return  # a linked template: the deployer decides
        inst.unexpandable = None
        ctx = _Context(inst.level, inst.frames, "plan", recorder=set())
        inst.body = self.evaluate_body(inst, ctx)
        self.expand_nested(inst, ctx)
        resources[inst.index] = _to_resource(inst)
        if inst.nested is None:
            return
        inner = [i for i in self.instances_under(inst.nested) if i.active]
        for i in inner:
            resources[i.index] = _to_resource(i)
        self.deploy(self.order(inner), resources)

    def call_deployer(self, resource: ExpandedResource) -> Any:
        assert self.deployer is not None
        try:
            return self.deployer.deploy(resource)
        except BaseException as exc:
            raise _DeployerFailure(exc) from exc

    def prepare_live_level(self, level: _Level) -> None:
        """Before the first live evaluation inside a nested deployment, re-evaluate the parameters it was handed
        (and defaults computed from them) whose planned values had to wait for deployment."""
        owner = level.owner
        if owner is None or level.live_prepared or level.resolver is None:
            return
        level.live_prepared = True
        self.prepare_live_level(owner.level)
        ctx = _Context(owner.level, owner.frames, "live")
        raw = owner.nested_parameters_raw or {}
        for name, pv in level.resolver.values.items():
            if not _has_deferred(pv.value):
                continue
            if pv.source == "file":
                key = _lookup_key(raw, name)
                entry = raw.get(key) if key else None
                path = _child_path(f"{owner.path}.properties.parameters", name)
                if isinstance(entry, str) or (isinstance(entry, dict) and not {"value", "reference"} & set(entry)):
                    entry = self.evaluate(entry, ctx, path)
                if isinstance(entry, dict) and "value" in entry:
                    level.live_parameters[name] = self.evaluate(entry["value"], ctx, f"{path}.value")
            elif pv.source == "default":
                decl = level.resolver.declared.get(name)
                if isinstance(decl, dict) and "defaultValue" in decl:
                    inner = _Context(level, (), "live", allow_runtime_functions=True)
                    level.live_parameters[name] = self.evaluate(
                        decl["defaultValue"], inner, level._p(f"parameters.{name}.defaultValue")
                    )


class _NeedsDeploymentTime(Exception):
    """Inside a nested deployment: its resource set depends on values known only once it starts."""


class _DeployerFailure(Exception):
    """Carries an exception raised by the caller's deployer through the engine, to be re-raised unchanged."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


_OUTPUT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "securestring": (str,),
    "int": (int,),
    "bool": (bool,),
    "object": (dict,),
    "secureobject": (dict,),
    "array": (list,),
}


def _check_output_type(declared: str, value: Any, path: str) -> None:
    """ARM rejects an output whose value does not have its declared type (null is allowed)."""
    allowed = _OUTPUT_TYPES.get(declared)
    if allowed is None or value is None or isinstance(value, Deferred):
        return
    ok = isinstance(value, allowed) and not (declared == "int" and isinstance(value, bool))
    if not ok:
        shown = type(value).__name__.replace("str", "string").replace("dict", "object").replace("list", "array")
        raise _issue(IssueCode.TYPE_ERROR, f"the output is declared {declared} but its value is a {shown}", path)


def _scope_kind(template: dict[str, Any]) -> str:
    """From the template's $schema: resource-group templates (the usual case), subscription or tenant ones."""
    schema = str(template.get("$schema", "")).lower()
    if "subscriptiondeploymenttemplate" in schema:
        return "subscription"
    if "tenantdeploymenttemplate" in schema or "managementgroupdeploymenttemplate" in schema:
        return "tenant"
    return "resourceGroup"


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _has_deferred(value: Any) -> bool:
    if isinstance(value, Deferred):
        return True
    if isinstance(value, dict):
        return any(_has_deferred(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_deferred(v) for v in value)
    return False


def _project(payload: dict[str, Any], full: bool) -> Any:
    if full:
        return _copy_json(payload)
    props = payload.get("properties")
    return _copy_json(props) if props is not None else {}


def _is_property_copy(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(s, dict) and isinstance(s.get("name"), str) and "input" in s for s in value)
    )


def _load(document: dict[str, Any] | str, *, source: str | None, what: str) -> Any:
    if isinstance(document, str):
        return parse_json(document, source=source, what=what)
    return document


def _with_source(exc: TemplateError, source: str | None) -> TemplateError:
    if source is None:
        return exc
    return TemplateError([i if i.source is not None else dataclasses.replace(i, source=source) for i in exc.issues])


def expand_template(
    template: dict[str, Any] | str,
    *,
    parameters: dict[str, Any] | str | None = None,
    overrides: dict[str, Any] | None = None,
    scope: DeploymentScope,
    state: ResourceStateView | None = None,
    deployer: ResourceDeployer | None = None,
    template_source: str | None = None,
    parameters_source: str | None = None,
) -> ExpandedDeployment:
    """Validate the parameters, expand the template and order its resources (see the module docstring).

    Raises ``TemplateError`` — and nothing else for anything wrong with the template, its parameters or its
    expressions. With a ``deployer``, exceptions raised by ``deployer.deploy`` propagate unchanged.
    """
    try:
        doc = _load(template, source=template_source, what="template")
        params_doc = (
            _load(parameters, source=parameters_source, what="parameters file") if parameters is not None else None
        )
        if not isinstance(doc, dict):
            raise _issue(IssueCode.INVALID_TEMPLATE, "a template must be a JSON object with 'resources'")
        if "resources" not in doc:
            raise _issue(IssueCode.INVALID_TEMPLATE, "the template has no 'resources' section")
        if not isinstance(doc.get("parameters", {}), dict):
            raise _issue(IssueCode.INVALID_TEMPLATE, "'parameters' must be an object", "parameters")
        engine = _Expander(
            state=state, deployer=deployer, template_source=template_source, parameters_source=parameters_source
        )
        provided = read_parameters_document(params_doc, source=parameters_source)
        top = _Level(
            engine,
            doc,
            eval_scope=scope,
            place_scope=scope,
            place_kind=_scope_kind(doc),
            path="",
            owner=None,
            outer_parent=None,
        )
        top.resolver = engine.make_resolver(top, provided, overrides, parameters_source=parameters_source)
        values: dict[str, ParameterValue] = top.resolver.resolve_all()
        engine.declare_level(top)
        engine.evaluate_level(top)
        ordered = engine.order()
        resources: dict[int, ExpandedResource] = {}
        for inst in engine.instances:
            if inst.active:
                resources[inst.index] = _to_resource(inst)
        if deployer is not None:
            engine.deploy(ordered, resources)
        outputs_raw = engine.evaluate_outputs(top, "live" if deployer is not None else "outputs")
    except TemplateError as exc:
        located = _with_positions(exc, template, parameters, template_source, parameters_source)
        raise _with_source(located, template_source) from None
    except _DeployerFailure as failure:
        raise failure.original from None
    except RecursionError:
        raise TemplateError(
            TemplateIssue(IssueCode.INVALID_TEMPLATE, "the template nests too deeply to expand", source=template_source)
        ) from None
    except Exception as exc:  # a safety net: callers must only ever see TemplateError for a template's faults
        raise TemplateError(
            TemplateIssue(
                IssueCode.INVALID_TEMPLATE,
                f"the engine could not expand this template ({type(exc).__name__}: {exc}); please report it",
                source=template_source,
            )
        ) from exc
    outputs = {
        name: OutputValue(type=str(o["type"]), value=o["value"], deferred=_has_deferred(o["value"]))
        for name, o in outputs_raw.items()
    }
    return ExpandedDeployment(
        parameters=values,
        resources=[resources[i.index] for i in engine.instances if i.active],
        order=[i.id for i in (engine.deployed if deployer is not None else ordered) if not i.existing],
        outputs=outputs,
        skipped=[i.id for i in engine.instances if not i.active],
    )


def _with_positions(
    exc: TemplateError,
    template: Any,
    parameters: Any,
    template_source: str | None,
    parameters_source: str | None,
) -> TemplateError:
    """Add the line and column of each issue's path when the document was handed in as text."""
    texts: dict[str | None, Any] = {}
    if isinstance(template, str):
        texts[template_source] = template
    if isinstance(parameters, str) and parameters_source != template_source:
        texts[parameters_source] = parameters
    if not texts or all(i.line is not None or not i.path for i in exc.issues):
        return exc
    indexes: dict[str | None, dict[str, tuple[int, int]]] = {}
    issues = []
    for issue in exc.issues:
        source = issue.source if issue.source is not None else template_source
        if issue.line is None and issue.path and source in texts:
            if source not in indexes:
                indexes[source] = value_positions(texts[source])
            found = locate(indexes[source], issue.path)
            if found is not None:
                issue = dataclasses.replace(issue, line=found[0], column=found[1])
        issues.append(issue)
    return TemplateError(issues)


def _to_resource(inst: _Instance) -> ExpandedResource:
    body = inst.body or {"name": inst.name, "type": inst.type}
    location = body.get("location")
    return ExpandedResource(
        id=inst.id,
        type=inst.type,
        api_version=inst.api_version,
        name=inst.name,
        location=location if isinstance(location, str) else None,
        properties=body.get("properties"),
        body=body,
        depends_on=[d.id for d in inst.deps],
        existing=inst.existing,
        symbolic_name=inst.symbolic,
        copy=inst.copy_info,
        deployment_path=[o.name for o in reversed(list(inst.enclosing_deployments()))],
        source_path=inst.path,
    )
