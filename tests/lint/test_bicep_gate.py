"""The lint gate on Bicep templates, against the recorded stand-in and (when installed) the real compiler."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from services.lint import DiagnosticLevel, LintError, lint_template, template_bytes
from tests.support.lint_env import Compiler
from tests.support.lint_oracle import Expected, expected_diagnostics

CLEAN = ["Empty", "ModulesWithScopes_LF", "user_submitted__000__01-hello-world", "user_submitted__000__21-array-lookup"]
WARNINGS = ["VariablesTenant_LF", "Metadata_CRLF", "Unicode_LF", "AKS_LF", "DisableNextLineDiagnosticsDirective_CRLF"]
ERRORS = ["InvalidMultilineString_CRLF", "InvalidTargetScopes_LF", "InvalidMetadata_CRLF", "InvalidParameters_LF"]
QUICKSTARTS = [
    "100-blank-template",
    "quickstarts__microsoft.storage__storage-account-create",
    "quickstarts__microsoft.digitaltwins__digitaltwins-with-function-private-link",  # local modules
]


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _without_generator(template: dict) -> dict:
    """``metadata._generator`` (version, templateHash) depends on the compiler's version (CLI-FORMATS.md §3); nested
    deployments (modules) carry their own."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "_generator"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(template)


def _expected(baselines: Path, sample: str) -> Counter[Expected]:
    diag = baselines / sample / "main.diagnostics.bicep"
    if not diag.exists():
        return Counter()
    return expected_diagnostics(diag, crlf=sample.endswith("_CRLF"))


def _found(result, file: Path) -> Counter[Expected]:
    return Counter(
        Expected(d.line, d.col, d.level.value, d.code)
        for d in result.diagnostics
        if Path(d.file).resolve() == file.resolve()
    )


@pytest.mark.parametrize("sample", CLEAN)
def test_clean_sample_compiles_and_lints_clean(compiler: Compiler, baselines: Path, sample: str) -> None:
    main = baselines / sample / "main.bicep"
    result = lint_template(main)
    assert result.passed, result.render()
    assert result.diagnostics == []
    assert result.template_kind == "bicep"
    assert result.bicep_version and result.bicep_version[0].isdigit()
    recorded = json.loads((baselines / sample / "main.json").read_text(encoding="utf-8"))
    assert result.template is not None
    assert _without_generator(result.template) == _without_generator(recorded)
    assert result.template_sha256 == hashlib.sha256(template_bytes(result.template)).hexdigest()


@pytest.mark.parametrize("sample", QUICKSTARTS)
def test_quickstart_compiles_to_its_azuredeploy_json(compiler: Compiler, quickstarts: Path, sample: str) -> None:
    result = lint_template(quickstarts / sample / "main.bicep", allow_warnings=True)
    assert result.error_count == 0, result.render()
    recorded = json.loads((quickstarts / sample / "azuredeploy.json").read_text(encoding="utf-8-sig"))
    assert result.template is not None
    if compiler.is_fake:
        assert result.template == recorded
    else:  # a newer compiler emits a newer shape; the parameters it declares stay the same
        assert set(result.template.get("parameters", {})) == set(recorded.get("parameters", {}))


@pytest.mark.parametrize("sample", WARNINGS)
def test_warning_sample_gates_unless_allowed(compiler: Compiler, baselines: Path, sample: str) -> None:
    main = baselines / sample / "main.bicep"
    expected = _expected(baselines, sample)
    assert expected and all(e.level == "Warning" for e in expected)

    gated = lint_template(main)
    assert not gated.passed
    assert "--allow-warnings" in gated.gate_reason
    assert gated.error_count == 0
    assert _found(gated, main) == expected
    assert gated.template is not None  # it compiled; only the gate is closed

    allowed = lint_template(main, allow_warnings=True)
    assert allowed.passed
    assert allowed.warning_count == gated.warning_count == sum(expected.values())
    assert _found(allowed, main) == expected  # recorded either way
    assert allowed.template_sha256 == gated.template_sha256


@pytest.mark.parametrize("sample", ERRORS)
def test_error_sample_lists_every_error_with_position(compiler: Compiler, baselines: Path, sample: str) -> None:
    main = baselines / sample / "main.bicep"
    expected = _expected(baselines, sample)
    result = lint_template(main, allow_warnings=True)
    assert not result.passed
    assert result.template is None
    assert result.template_sha256 is None
    assert _found(result, main) == expected
    errors = result.errors()
    assert len(errors) == sum(n for e, n in expected.items() if e.level == "Error") > 0
    for d in errors:
        assert Path(d.file).resolve() == main.resolve()
        assert d.line is not None and d.line >= 1 and d.col is not None and d.col >= 1
        assert d.message
    rendered = result.render()
    for d in errors:
        assert f"{d.file}({d.line},{d.col}) : Error {d.code}: " in rendered
    assert rendered.endswith(f"{_n(result.error_count, 'error')}, {_n(result.warning_count, 'warning')} in 1 file.\n")


def test_text_format_of_older_compilers_gives_the_same_diagnostics(
    fake_bicep_on_path: Path, baselines: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLIs before 0.26.54 have no `lint --diagnostics-format`: the default text lines on stderr are parsed."""
    main = baselines / "InvalidMetadata_CRLF" / "main.bicep"
    sarif = lint_template(main)
    monkeypatch.setenv("BICEP_FAKE_VERSION", "0.20.4 (custom)")
    text = lint_template(main)
    assert (sarif.diagnostics_format, text.diagnostics_format) == ("sarif", "text")
    assert text.bicep_version == "0.20.4 (custom)"
    key = lambda d: (d.line, d.col, d.code, d.message)  # noqa: E731
    assert sorted(map(key, text.diagnostics)) == sorted(map(key, sarif.diagnostics))
    assert text.error_count == sarif.error_count > 0


# ------------------------------------------------------------------------------------------------ .bicepparam


@pytest.mark.parametrize("sample", ["bicepparam__Variables", "bicepparam__Expressions", "bicepparam__TypedVariables"])
def test_bicepparam_baseline_gives_its_parameters(compiler: Compiler, baselines: Path, sample: str) -> None:
    from services.bicep import build_params, find_compiler

    found = find_compiler()
    assert found is not None
    param_file = baselines / sample / "parameters.bicepparam"
    built = build_params(found, param_file)
    assert built.using == (baselines / sample / "main.bicep").resolve()
    assert built.parameters == json.loads((baselines / sample / "parameters.json").read_text(encoding="utf-8"))
    expected = expected_diagnostics(baselines / sample / "parameters.diagnostics.bicepparam", crlf=False)
    mine = Counter(
        Expected(d.line, d.col, d.level.value, d.code)
        for d in built.diagnostics
        if Path(d.file).resolve() == param_file.resolve()
    )
    assert mine == expected


def test_bicepparam_with_errors_lists_them(compiler: Compiler, baselines: Path) -> None:
    param_file = baselines / "bicepparam__Invalid_MismatchedTypes" / "parameters.bicepparam"
    result = lint_template(None, parameters_path=param_file, allow_warnings=True)
    assert not result.passed
    assert result.parameters is None
    in_params = [d for d in result.errors() if Path(d.file).resolve() == param_file.resolve()]
    expected = expected_diagnostics(param_file.with_name("parameters.diagnostics.bicepparam"), crlf=False)
    assert Counter(Expected(d.line, d.col, d.level.value, d.code) for d in in_params) == expected
    assert {d.code for d in in_params} == {"BCP033"}


def test_bicepparam_using_a_json_template_deploys_that_template(compiler: Compiler, baselines: Path) -> None:
    sample = baselines / "cli-build-params-stdout__Json"
    result = lint_template(None, parameters_path=sample / "main.bicepparam")
    assert result.passed, result.render()
    assert result.template_kind == "arm-json"
    assert Path(result.template_path).resolve() == (sample / "main.json").resolve()
    assert result.template == json.loads((sample / "main.json").read_text(encoding="utf-8"))
    recorded = json.loads(json.loads((sample / "output.json").read_text(encoding="utf-8"))["parametersJson"])
    assert result.parameters == recorded
    assert result.parameters["parameters"]["intParam"] == {"value": 123}


def test_template_not_matching_using_is_a_clear_error(compiler: Compiler, baselines: Path, tmp_path: Path) -> None:
    sample = baselines / "cli-build-params-stdout__Json"
    for name in ("main.bicepparam", "main.json"):
        shutil.copyfile(sample / name, tmp_path / name)
    other = tmp_path / "other.json"
    shutil.copyfile(sample / "main.json", other)
    with pytest.raises(LintError) as caught:
        lint_template(other, parameters_path=tmp_path / "main.bicepparam")
    message = str(caught.value)
    assert caught.value.code == "UsingMismatch"
    assert "main.bicepparam" in message and "other.json" in message and str(tmp_path / "main.json") in message
    # The matching template is accepted, given as a relative-looking or absolute path alike.
    assert lint_template(tmp_path / "main.json", parameters_path=tmp_path / "main.bicepparam").passed


# ------------------------------------------------------------------------------------------------ no compiler


def test_no_compiler_and_a_bicep_template_says_how_to_install(no_compiler: None, baselines: Path) -> None:
    import socket

    with pytest.raises(LintError) as caught:
        lint_template(baselines / "Empty" / "main.bicep")
    message = str(caught.value)
    assert caught.value.code == "BicepNotFound"
    assert f"worker '{socket.gethostname()}'" in message
    assert "az bicep install" in message and "https://aka.ms/bicep/install" in message
    assert "An ARM JSON template needs no compiler" in message
    assert "main.bicep" in message


def test_no_compiler_and_a_bicepparam_file_says_how_to_install(no_compiler: None, baselines: Path) -> None:
    with pytest.raises(LintError) as caught:
        lint_template(None, parameters_path=baselines / "bicepparam__Variables" / "parameters.bicepparam")
    assert caught.value.code == "BicepNotFound"


def test_arm_json_needs_no_compiler(no_compiler: None, quickstarts: Path) -> None:
    result = lint_template(quickstarts / "quickstarts__microsoft.storage__storage-account-create" / "azuredeploy.json")
    assert result.passed, result.render()
    assert result.template_kind == "arm-json"
    assert result.bicep_version is None
    assert result.template is not None and result.template_sha256 is not None
    assert all(d.level != DiagnosticLevel.ERROR for d in result.diagnostics)
