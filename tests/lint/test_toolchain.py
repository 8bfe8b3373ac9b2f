"""Finding the compiler (bicep on PATH, az bicep, BICEP_PATH) and reading its output through each."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from services.bicep import find_compiler
from services.lint import LintError, lint_template
from tests.support.lint_env import FAKES_DIR


def _bin_with(tmp_path: Path, *names: str) -> str:
    """A PATH of one folder holding links to the chosen test doubles, plus this interpreter's folder."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(FAKES_DIR / name)
    return os.pathsep.join([str(folder), os.path.dirname(sys.executable)])


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, shared: Path) -> None:
    monkeypatch.delenv("BICEP_PATH", raising=False)
    monkeypatch.delenv("BICEP_FAKE_VERSION", raising=False)


def test_standalone_bicep_is_preferred_to_az(clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "bicep", "az"))
    found = find_compiler()
    assert found is not None and found.source == "path" and found.argv == (str(tmp_path / "bin" / "bicep"),)
    assert found.version == "0.46.1 (545b338e2c)"


def test_az_bicep_is_used_when_there_is_no_standalone_bicep(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, baselines: Path
) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "az"))
    found = find_compiler()
    assert found is not None and found.source == "az" and found.argv[1:] == ("bicep",)

    warnings = lint_template(baselines / "Unicode_LF" / "main.bicep", allow_warnings=True)
    assert warnings.passed and warnings.warning_count == 6
    assert warnings.compiler is not None and warnings.compiler.endswith("az bicep")
    assert warnings.template is not None  # az's extra trailing newline does not matter

    errors = lint_template(baselines / "InvalidMetadata_CRLF" / "main.bicep")
    assert errors.error_count == 15 and errors.warning_count == 1


def test_az_with_an_old_bicep_falls_back_to_text_behind_az_prefixes(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, baselines: Path
) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path, "az"))
    monkeypatch.setenv("BICEP_FAKE_VERSION", "0.20.4")
    result = lint_template(baselines / "InvalidMultilineString_CRLF" / "main.bicep")
    assert result.diagnostics_format == "text"
    assert [(d.level.value, d.code, d.line, d.col) for d in result.diagnostics] == [
        ("Warning", "no-unused-vars", 1, 5),
        ("Error", "BCP140", 1, 35),
    ]


def test_bicep_path_is_the_last_resort(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, baselines: Path
) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path))
    assert find_compiler() is None
    monkeypatch.setenv("BICEP_PATH", str(FAKES_DIR / "bicep"))
    found = find_compiler()
    assert found is not None and found.source == "config"
    assert lint_template(baselines / "Empty" / "main.bicep").passed


def test_a_bicep_path_that_is_not_bicep_is_named_in_the_error(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, baselines: Path
) -> None:
    monkeypatch.setenv("PATH", _bin_with(tmp_path))
    monkeypatch.setenv("BICEP_PATH", "/bin/false")
    with pytest.raises(LintError) as caught:
        lint_template(baselines / "Empty" / "main.bicep")
    assert "BICEP_PATH=/bin/false (not a working bicep)" in str(caught.value)
