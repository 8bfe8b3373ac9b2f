"""Secure parameter values without the command line: from an environment variable, from standard input, or from
a hidden prompt on a terminal (as az prompts for a missing securestring parameter). A value on the command line
(``--param pw=...``) is visible in shell history and ``ps``; these are not, and none of them is ever echoed.

``--secure-param-env NAME=VAR`` reads ``$VAR``; ``--secure-param-stdin NAME`` reads one value from standard input
(the whole input, one trailing newline removed); on a terminal, every ``securestring``/``secureObject`` parameter
that has no value and no default is asked for without echo. A parameter given this way is secret whatever its
declared type (sealed in the content store, never in history, logs or output: docs/SECURITY.md).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from client.inputs import DeploymentInputs, InputError

SECURE_TYPES = frozenset({"securestring", "secureobject"})


def add_secure_value_arguments(p: Any) -> None:
    p.add_argument(
        "--secure-param-env",
        action="append",
        default=[],
        metavar="NAME=VAR",
        help="take secure parameter NAME's value from environment variable VAR (not from the command line)",
    )
    p.add_argument(
        "--secure-param-stdin",
        metavar="NAME",
        help="read secure parameter NAME's value from standard input (e.g. `pass show db | deploy ...`)",
    )
    p.add_argument(
        "--no-prompt",
        action="store_true",
        help="never ask for a missing secure parameter on the terminal (it is then reported as missing)",
    )


def _declared(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    params = template.get("parameters")
    return {k: v for k, v in params.items() if isinstance(v, dict)} if isinstance(params, dict) else {}


def _typed(name: str, text: str, declared: dict[str, Any], source: str) -> Any:
    """A secureObject's value is JSON; every other value is taken verbatim (a password "123" stays a string)."""
    kind = str(declared.get("type", "")).lower()
    if kind in ("secureobject", "object", "array", "int", "bool"):
        try:
            return json.loads(text)
        except ValueError:
            raise InputError(
                f"{source}: parameter '{name}' is of type {declared.get('type')}, and the value given is not JSON "
                "(the value itself is not shown)."
            ) from None
    return text


def apply_secure_values(args: argparse.Namespace, inputs: DeploymentInputs, *, interactive: bool) -> list[str]:
    """Put the values from the environment, stdin and the prompt into ``inputs``; return the names so set (to be
    treated as secret). Errors name the flag and the parameter, never a value."""
    declared = _declared(inputs.template)
    given: dict[str, Any] = {}

    def known(name: str, flag: str) -> dict[str, Any]:
        if name not in declared:
            names = ", ".join(sorted(declared)) or "none"
            raise InputError(f"{flag} {name}: the template declares no parameter '{name}' (it declares: {names}).")
        if name in given:
            raise InputError(f"{flag} {name}: parameter '{name}' is given twice by the secure-value flags.")
        return declared[name]

    for item in getattr(args, "secure_param_env", None) or []:
        name, sep, var = item.partition("=")
        if not sep or not name or not var:
            raise InputError(f"--secure-param-env {item!r}: write NAME=VARIABLE, e.g. adminPassword=DB_PASSWORD.")
        spec = known(name, "--secure-param-env")
        value = os.environ.get(var)
        if not value:
            raise InputError(
                f"--secure-param-env {name}={var}: environment variable {var} is not set or empty. Export it "
                f"(e.g. `read -rs {var} && export {var}`) and run the command again."
            )
        given[name] = _typed(name, value, spec, f"--secure-param-env {name}={var}")
    stdin_name = getattr(args, "secure_param_stdin", None)
    if stdin_name:
        spec = known(stdin_name, "--secure-param-stdin")
        if sys.stdin is None or sys.stdin.isatty():
            if not interactive:
                raise InputError(f"--secure-param-stdin {stdin_name}: standard input is a terminal; pipe the value in.")
            text = getpass.getpass(f"Value for parameter '{stdin_name}' (input hidden): ", stream=sys.stderr)
        else:
            text = sys.stdin.read()
            text = text[:-1] if text.endswith("\n") else text
            text = text[:-1] if text.endswith("\r") else text
        if not text:
            raise InputError(f"--secure-param-stdin {stdin_name}: standard input was empty; give the value there.")
        given[stdin_name] = _typed(stdin_name, text, spec, f"--secure-param-stdin {stdin_name}")
    for name in given:
        if name in inputs.overrides or name in inputs.parameters:
            raise InputError(
                f"Parameter '{name}' has a value from --param or the parameters file and from a secure-value flag; "
                "give it once."
            )
    if interactive and not getattr(args, "no_prompt", False):
        for name, spec in declared.items():
            missing = name not in given and name not in inputs.parameters and "defaultValue" not in spec
            if missing and str(spec.get("type", "")).lower() in SECURE_TYPES:
                text = getpass.getpass(
                    f"Value for {spec.get('type')} parameter '{name}' (input hidden): ", stream=sys.stderr
                )
                if text:
                    given[name] = _typed(name, text, spec, "the prompt")
    for name, value in given.items():
        inputs.overrides[name] = value
        inputs.parameters[name] = {"value": value}
    return sorted(given)
