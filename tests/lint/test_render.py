"""How diagnostics are shown: grouped by file, `path(line,col) : Level CODE: message`, with counts."""

from __future__ import annotations

from services.lint import Diagnostic, DiagnosticLevel, render_diagnostics


def _d(file: str, line: int | None, level: DiagnosticLevel, code: str) -> Diagnostic:
    return Diagnostic(file=file, line=line, col=None if line is None else 3, level=level, code=code, message="m")


def test_grouped_by_file_sorted_by_position_with_counts() -> None:
    diagnostics = [
        _d("main.bicep", 9, DiagnosticLevel.WARNING, "no-unused-vars"),
        _d("modules/a.bicep", 2, DiagnosticLevel.ERROR, "BCP033"),
        _d("main.bicep", 4, DiagnosticLevel.ERROR, "BCP018"),
        _d("main.bicep", None, DiagnosticLevel.INFO, "Note"),
    ]
    assert render_diagnostics(diagnostics).splitlines() == [
        "main.bicep: 1 error, 1 warning, 1 info",
        "main.bicep : Info Note: m",
        "main.bicep(4,3) : Error BCP018: m",
        "main.bicep(9,3) : Warning no-unused-vars: m",
        "",
        "modules/a.bicep: 1 error, 0 warnings",
        "modules/a.bicep(2,3) : Error BCP033: m",
        "",
        "2 errors, 1 warning, 1 info in 2 files.",
    ]


def test_nothing_to_say() -> None:
    assert render_diagnostics([]) == "No diagnostics.\n"
