"""``starter.py lint``: the gate on this machine, exit codes 0 / 1 / 2, text grouped by file or JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from client.cli import main


def test_warnings_close_the_gate_unless_allowed(fake_bicep_on_path: Path, baselines: Path, capsys) -> None:
    main_bicep = str(baselines / "VariablesTenant_LF" / "main.bicep")
    assert main(["lint", "-t", main_bicep]) == 1
    out, err = capsys.readouterr()
    assert f"{main_bicep}(3,5) : Warning no-unused-vars: " in out
    assert out.endswith("0 errors, 2 warnings in 1 file.\n")
    assert "lint gate closed (Bicep 0.46.1 (545b338e2c))" in err
    assert main(["lint", "-t", main_bicep, "--allow-warnings"]) == 0


def test_errors_as_json(fake_bicep_on_path: Path, baselines: Path, capsys) -> None:
    assert main(["lint", "-t", str(baselines / "InvalidTargetScopes_LF" / "main.bicep"), "-o", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is False and doc["error_count"] == 14 and doc["template"] is None
    assert {d["code"] for d in doc["diagnostics"]} == {"BCP009", "BCP018", "BCP033", "BCP112"}
    assert all(d["line"] >= 1 and d["col"] >= 1 for d in doc["diagnostics"])


def test_bicepparam_alone_lints_its_using_target(fake_bicep_on_path: Path, baselines: Path, capsys) -> None:
    assert main(["lint", "-p", str(baselines / "cli-build-params-stdout__Json" / "main.bicepparam")]) == 0
    assert capsys.readouterr().out == "No diagnostics.\n"


def test_unusable_input_is_exit_2_and_no_compiler_exit_1(
    no_compiler: None, baselines: Path, tmp_path: Path, capsys
) -> None:
    assert main(["lint", "-t", str(tmp_path / "missing.bicep")]) == 2
    assert "does not exist" in capsys.readouterr().err
    shutil.copyfile(baselines / "Empty" / "main.bicep", tmp_path / "main.bicep")
    assert main(["lint", "-t", str(tmp_path / "main.bicep")]) == 1
    assert "An ARM JSON template needs no compiler" in capsys.readouterr().err
    assert main(["lint"]) == 2
