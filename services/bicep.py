"""The Bicep toolchain: find the compiler, ask it for the compiled template, its diagnostics and .bicepparam values.

We never reimplement Bicep. Everything here runs the CLI the user installed — a standalone ``bicep`` on PATH, else
``az bicep``, else the path in ``BICEP_PATH`` — and reads what it prints, in the formats described in
docs/LINT.md: SARIF from ``bicep lint --diagnostics-format sarif`` where the version has it (0.26.54 and later),
else the default text lines ``path(line,col) : Level CODE: message [uri]`` on stderr. ``bicepconfig.json`` is the
compiler's business: it reads it, we do not.

Every failure is a ``BicepError`` whose message names the input, what went wrong and what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel

BICEP_PATH_ENV = "BICEP_PATH"
INSTALL_HINT = (
    "Install Bicep on that worker: `az bicep install` (then `az bicep` is used), or the standalone CLI from "
    "https://aka.ms/bicep/install put on PATH, or set BICEP_PATH to the bicep executable"
)
# `bicep lint --diagnostics-format` exists at v0.26.54 and not at v0.20.4 (docs/LINT.md); older CLIs get text parsing.
SARIF_LINT_SINCE = (0, 26, 54)
DEFAULT_TIMEOUT_SECONDS = 300.0
TIMEOUT_ENV = "ORCHESTRATOR_BICEP_TIMEOUT_SECONDS"


def compiler_timeout() -> float:
    """Seconds one compiler run may take: ``$ORCHESTRATOR_BICEP_TIMEOUT_SECONDS``, else 300 (restoring registry
    modules can be slow)."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, "") or DEFAULT_TIMEOUT_SECONDS)
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS
    return value if value > 0 else DEFAULT_TIMEOUT_SECONDS


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# `<path>(<line>,<col>) : <Level> <Code>: <Message>[ [<uri>]]`; az re-emits stderr behind "WARNING: "/"ERROR: ".
_TEXT_DIAGNOSTIC = re.compile(
    r"^(?:(?:WARNING|ERROR): )?(?P<path>.+?)\((?P<line>\d+),(?P<col>\d+)\) : (?P<level>Error|Warning|Info) "
    r"(?P<code>[^\s:]+): (?P<message>.*?)(?: \[(?P<uri>[a-z]+://[^\]\s]+)\])?$"
)
_VERSION = re.compile(r"Bicep CLI version (?P<version>(?P<num>\d+\.\d+\.\d+)\S*(?: \([^)]*\))?)")
_USING = re.compile(r"^\s*using\s+(?:'(?P<target>[^']*)'|(?P<none>none)\b)", re.MULTILINE)


class DiagnosticLevel(StrEnum):
    ERROR = "Error"
    WARNING = "Warning"
    INFO = "Info"


class Diagnostic(BaseModel):
    """One finding, from the compiler or from our own ARM JSON checks; ``line``/``col`` are 1-based (UTF-16 columns
    for Bicep, as the compiler counts them) and None when the finding is about the whole file."""

    file: str
    line: int | None = None
    col: int | None = None
    level: DiagnosticLevel
    code: str
    message: str
    uri: str | None = None

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}({self.line},{self.col or 1})"
        return f"{where} : {self.level.value} {self.code}: {self.message}"


class BicepError(Exception):
    """The toolchain could not do what was asked; ``str(exc)`` is the message for the user."""


class BicepNotFoundError(BicepError):
    """No compiler on this machine (the message names the host)."""


class BicepTimeoutError(BicepError):
    """The compiler did not finish in time (often a module registry out of reach): worth a retry."""


class BicepUsingMismatchError(BicepError):
    """A .bicepparam file's ``using`` names another template than the one given with --template."""


@dataclass(frozen=True)
class BicepCompiler:
    """A compiler found on this machine. ``argv`` is what precedes the subcommand (``bicep`` or ``az bicep``)."""

    argv: tuple[str, ...]
    source: Literal["path", "az", "config"]
    version: str  # as printed: "0.46.1 (545b338e2c)"

    @property
    def via_az(self) -> bool:
        return self.source == "az"

    @property
    def version_tuple(self) -> tuple[int, ...]:
        m = re.match(r"(\d+)\.(\d+)\.(\d+)", self.version)
        return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)

    @property
    def supports_sarif_lint(self) -> bool:
        # Through az, a failing command's stdout (where `lint` writes SARIF) is dropped and only stderr is raised
        # (docs/LINT.md), so az gets the text format, which survives behind az's "WARNING: "/"ERROR: " prefixes.
        return not self.via_az and self.version_tuple >= SARIF_LINT_SINCE

    def describe(self) -> str:
        return f"Bicep CLI {self.version} ({' '.join(self.argv)})"

    def command(self, subcommand: str, file: Path, *options: str) -> list[str]:
        if self.via_az:
            return [*self.argv, subcommand, "--file", str(file), *options]
        return [*self.argv, subcommand, str(file), *options]


# ------------------------------------------------------------------------------------------------- finding it


def _probe_version(argv: list[str], *, env: dict[str, str] | None) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _VERSION.search(_ANSI.sub("", proc.stdout + "\n" + proc.stderr))
    return m.group("version") if proc.returncode == 0 and m else None


def find_compiler(*, bicep_path: str | None = None, env: dict[str, str] | None = None) -> BicepCompiler | None:
    """The first usable compiler: ``bicep`` on PATH, else ``az bicep``, else ``bicep_path``/``$BICEP_PATH``."""
    environ = dict(os.environ if env is None else env)
    search_path = environ.get("PATH", "")
    standalone = shutil.which("bicep", path=search_path)
    if standalone:
        version = _probe_version([standalone, "--version"], env=environ)
        if version:
            return BicepCompiler(argv=(standalone,), source="path", version=version)
    az = shutil.which("az", path=search_path)
    if az:
        # Quiet az's release check; it would otherwise reach GitHub on every call.
        az_env = {**environ, "AZURE_BICEP_CHECK_VERSION": "false"}
        version = _probe_version([az, "bicep", "version"], env=az_env)
        if version:
            return BicepCompiler(argv=(az, "bicep"), source="az", version=version)
    configured = bicep_path or environ.get(BICEP_PATH_ENV)
    if configured:
        version = _probe_version([configured, "--version"], env=environ)
        if version:
            return BicepCompiler(argv=(configured,), source="config", version=version)
    return None


def require_compiler(
    template: str | Path, *, bicep_path: str | None = None, env: dict[str, str] | None = None
) -> BicepCompiler:
    found = find_compiler(bicep_path=bicep_path, env=env)
    if found is not None:
        return found
    configured = bicep_path or (os.environ if env is None else env).get(BICEP_PATH_ENV)
    tried = "`bicep` on PATH, `az bicep`"
    tried += f", and BICEP_PATH={configured} (not a working bicep)" if configured else ", and BICEP_PATH (unset)"
    raise BicepNotFoundError(
        f"The template '{template}' is a Bicep file, but worker '{socket.gethostname()}' has no Bicep compiler "
        f"(looked for {tried}). {INSTALL_HINT}. An ARM JSON template needs no compiler: deploy the compiled "
        "template (`bicep build` writes it) with -t/--template instead."
    )


# ----------------------------------------------------------------------------------------------- running it


@dataclass
class _Run:
    returncode: int
    stdout: str
    stderr: str


def _run(compiler: BicepCompiler, cmd: list[str], *, timeout: float, cwd: Path | None = None) -> _Run:
    env = dict(os.environ)
    if compiler.via_az:
        env["AZURE_BICEP_CHECK_VERSION"] = "false"
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BicepTimeoutError(
            f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s. A module registry may be unreachable "
            "(restoring `br:` modules needs the network); try again, or raise the timeout."
        ) from None
    except OSError as exc:
        raise BicepError(f"could not run `{' '.join(cmd)}`: {exc.strerror or exc}") from None
    decode = lambda b: _ANSI.sub("", b.decode("utf-8", errors="replace"))  # noqa: E731
    return _Run(proc.returncode, decode(proc.stdout), decode(proc.stderr))


def parse_text_diagnostics(text: str) -> tuple[list[Diagnostic], list[str]]:
    """Diagnostic lines of the default format, and the other non-empty lines (usage errors, banners)."""
    found: list[Diagnostic] = []
    other: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        m = _TEXT_DIAGNOSTIC.match(line)
        if m is None:
            if line.strip():
                other.append(line)
            continue
        found.append(
            Diagnostic(
                file=m["path"],
                line=int(m["line"]),
                col=int(m["col"]),
                level=DiagnosticLevel(m["level"]),
                code=m["code"],
                message=m["message"],
                uri=m["uri"],
            )
        )
    return found, other


_SARIF_LEVELS = {"error": DiagnosticLevel.ERROR, "warning": DiagnosticLevel.WARNING, "note": DiagnosticLevel.INFO}
_URI_SUFFIX = re.compile(r"^(?P<message>.*?) \[(?P<uri>[a-z]+://[^\]\s]+)\]$", re.DOTALL)


def _uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    path = unquote(parsed.path)
    if re.match(r"^/[A-Za-z]:/", path):  # file:///C:/x → C:/x
        path = path[1:]
    return path


def parse_sarif(text: str) -> list[Diagnostic]:
    """Results of a SARIF 2.1.0 log as written by ``bicep lint --diagnostics-format sarif``."""
    log = json.loads(text)
    found: list[Diagnostic] = []
    for run in log.get("runs") or []:
        for result in run.get("results") or []:
            message = str((result.get("message") or {}).get("text", ""))
            uri = None
            m = _URI_SUFFIX.match(message)
            if m:
                message, uri = m["message"], m["uri"]
            location = ((result.get("locations") or [{}])[0] or {}).get("physicalLocation") or {}
            region = location.get("region") or {}
            found.append(
                Diagnostic(
                    file=_uri_to_path(str((location.get("artifactLocation") or {}).get("uri", ""))),
                    line=region.get("startLine"),
                    col=region.get("charOffset", region.get("startColumn")),
                    # SARIF's default level is "warning"; the SDK the CLI uses omits it.
                    level=_SARIF_LEVELS.get(str(result.get("level", "warning")), DiagnosticLevel.WARNING),
                    code=str(result.get("ruleId", "")),
                    message=message,
                    uri=uri,
                )
            )
    return found


def _failure_diagnostic(file: Path, cmd: list[str], run: _Run, other: list[str]) -> Diagnostic:
    """A failed run that printed no diagnostic line: surface what it did print, as one error."""
    said = " ".join(other).strip() or run.stdout.strip() or "(no output)"
    return Diagnostic(
        file=str(file),
        level=DiagnosticLevel.ERROR,
        code="BicepCliFailed",
        message=f"`{' '.join(cmd)}` exited with code {run.returncode}: {said}",
    )


class BicepBuild(BaseModel):
    """What compiling one template gave: the ARM JSON text (None when it did not compile) and every diagnostic of
    every file in the compilation."""

    template_text: str | None
    diagnostics: list[Diagnostic]
    diagnostics_format: Literal["sarif", "text"]


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for d in diagnostics:
        key = (os.path.normcase(os.path.abspath(d.file)), d.line, d.col, d.level, d.code, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def lint_diagnostics(compiler: BicepCompiler, file: Path, *, timeout: float) -> list[Diagnostic] | None:
    """``bicep lint --diagnostics-format sarif`` (every file in the compilation), or None when that is unavailable."""
    if not compiler.supports_sarif_lint:
        return None
    cmd = compiler.command("lint", file, "--diagnostics-format", "sarif")
    run = _run(compiler, cmd, timeout=timeout)
    try:
        found = parse_sarif(run.stdout)
    except (json.JSONDecodeError, AttributeError, TypeError):
        text_found, other = parse_text_diagnostics(run.stderr)
        if text_found:
            return text_found
        if run.returncode != 0:
            return [_failure_diagnostic(file, cmd, run, other)]
        return None
    if run.returncode != 0 and not any(d.level == DiagnosticLevel.ERROR for d in found):
        _, other = parse_text_diagnostics(run.stderr)
        found.append(_failure_diagnostic(file, cmd, run, other))
    return found


def build_template(compiler: BicepCompiler, file: Path, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> BicepBuild:
    """Compile ``file`` to ARM JSON and collect its diagnostics (modules' included)."""
    linted = lint_diagnostics(compiler, file, timeout=timeout)
    if linted is not None and any(d.level == DiagnosticLevel.ERROR for d in linted):
        return BicepBuild(template_text=None, diagnostics=_dedupe(linted), diagnostics_format="sarif")
    cmd = compiler.command("build", file, "--stdout")
    run = _run(compiler, cmd, timeout=timeout)
    text_found, other = parse_text_diagnostics(run.stderr)
    diagnostics = list(linted) if linted is not None else text_found
    if linted is not None:
        # build can still fail where lint did not (e.g. emit limits); keep what it says about that.
        diagnostics += [d for d in text_found if d.level == DiagnosticLevel.ERROR]
    if run.returncode != 0:
        if not any(d.level == DiagnosticLevel.ERROR for d in diagnostics):
            diagnostics.append(_failure_diagnostic(file, cmd, run, other))
        template_text = None
    else:
        template_text = run.stdout
    return BicepBuild(
        template_text=template_text,
        diagnostics=_dedupe(diagnostics),
        diagnostics_format="sarif" if linted is not None else "text",
    )


# ----------------------------------------------------------------------------------------------- .bicepparam


class BicepParams(BaseModel):
    """What ``bicep build-params`` gave for a .bicepparam file."""

    parameters: dict[str, Any] | None  # the deploymentParameters document; None when it did not build
    using: Path | None  # the template the `using` declaration points to (absolute), None for `using none`
    diagnostics: list[Diagnostic]


def read_using(param_file: Path) -> Path | None:
    """The template named by the file's ``using`` declaration, resolved against the file's folder."""
    try:
        text = param_file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BicepError(
            f"The parameters file '{param_file}' cannot be read ({exc.strerror or exc}). Check the path."
        ) from None
    except UnicodeDecodeError:
        raise BicepError(f"The parameters file '{param_file}' is not UTF-8 text. Save it as UTF-8.") from None
    m = _USING.search(_strip_bicep_comments(text))
    if m is None:
        raise BicepError(
            f"The parameters file '{param_file}' has no `using` declaration, so it does not say which template it "
            "is for. Add `using './main.bicep'` (or the template's path) as its first statement."
        )
    if m["none"]:
        return None
    target = m["target"]
    if re.match(r"^(br|ts)[:/]", target):
        raise BicepError(
            f"The parameters file '{param_file}' is `using '{target}'`, a registry module or template spec; this "
            "orchestrator deploys local templates. Point `using` at a local .bicep or .json file."
        )
    return (param_file.parent / target).resolve()


def _strip_bicep_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def check_using_matches(param_file: Path, using: Path | None, template: Path | None) -> None:
    """A --template given next to a .bicepparam must be the file its ``using`` names."""
    if template is None or using is None:
        return
    given = template.resolve()
    same = given == using or (given.exists() and using.exists() and os.path.samefile(given, using))
    if not same:
        raise BicepUsingMismatchError(
            f"The parameters file '{param_file}' is for the template '{using}' (its `using` declaration), but "
            f"-t/--template names '{template}'. Pass the template the parameters were written for, or leave out "
            "-t/--template and the `using` target is deployed."
        )


def build_params(
    compiler: BicepCompiler,
    param_file: Path,
    *,
    template: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> BicepParams:
    """Build a .bicepparam file to ARM parameters with ``bicep build-params``.

    The parameters are written with ``--outfile`` (the file is exactly the deploymentParameters document); the
    template the ``using`` points to is compiled and linted on its own by ``build_template`` so its diagnostics are
    collected the same way as for any Bicep template.
    """
    using = read_using(param_file)
    check_using_matches(param_file, using, template)
    with tempfile.TemporaryDirectory(prefix="bicep-params-") as tmp:
        out = Path(tmp) / "parameters.json"
        cmd = compiler.command("build-params", param_file, "--outfile", str(out))
        run = _run(compiler, cmd, timeout=timeout)
        diagnostics, other = parse_text_diagnostics(run.stderr)
        if run.returncode != 0 or not out.is_file():
            if not any(d.level == DiagnosticLevel.ERROR for d in diagnostics):
                diagnostics.append(_failure_diagnostic(param_file, cmd, run, other))
            return BicepParams(parameters=None, using=using, diagnostics=diagnostics)
        try:
            document = json.loads(out.read_bytes().decode("utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BicepError(f"`{' '.join(cmd)}` wrote a parameters file that is not JSON ({exc}).") from None
    return BicepParams(parameters=document, using=using, diagnostics=diagnostics)


def merge_parameters(base: Mapping[str, Any], on_top: Mapping[str, Any]) -> dict[str, Any]:
    """ARM parameter entries of ``on_top`` replace ``base``'s, names compared case-insensitively as ARM does."""
    merged = dict(base)
    for key, entry in on_top.items():
        for existing in [k for k in merged if k.lower() == key.lower()]:
            del merged[existing]
        merged[key] = entry
    return merged
