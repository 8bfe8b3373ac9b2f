"""The two diagnostic formats the CLI prints, read back: property tests over generated diagnostics."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from hypothesis import given
from hypothesis import strategies as st

from services.bicep import Diagnostic, DiagnosticLevel, parse_sarif, parse_text_diagnostics

_printable = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="/()\\")
_segment = st.text(_printable, min_size=1, max_size=12)
paths = st.lists(_segment, min_size=1, max_size=4).map(lambda parts: str(PurePosixPath("/", *parts, "main.bicep")))
codes = st.one_of(st.from_regex(r"BCP[0-9]{3}", fullmatch=True), st.from_regex(r"[a-z]+(-[a-z]+){0,3}", fullmatch=True))
messages = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=80).filter(
    lambda m: m.strip() == m and not m.endswith("]")
)
uris = st.one_of(st.none(), codes.map(lambda c: f"https://aka.ms/bicep/core-diagnostics#{c}"))
diagnostics = st.builds(
    Diagnostic,
    file=paths,
    line=st.integers(1, 100_000),
    col=st.integers(1, 5_000),
    level=st.sampled_from(list(DiagnosticLevel)),
    code=codes,
    message=messages,
    uri=uris,
)


def _cli_line(d: Diagnostic) -> str:
    """What DiagnosticLogger.LogDefaultDiagnostics prints (CLI-FORMATS.md §1)."""
    return f"{d.file}({d.line},{d.col}) : {d.level.value} {d.code}: {d.message}" + (f" [{d.uri}]" if d.uri else "")


@given(st.lists(diagnostics, max_size=5), st.sampled_from(["", "WARNING: ", "ERROR: "]))
def test_text_lines_read_back_exactly(found: list[Diagnostic], az_prefix: str) -> None:
    text = "\n".join(az_prefix + _cli_line(d) for d in found)
    parsed, other = parse_text_diagnostics(text + "\r\n\x1b[0m" if found else text)
    assert parsed == found
    assert all(not line.strip() or line == "\x1b[0m" for line in other)


@given(st.text(max_size=300))
def test_any_text_is_read_without_raising(text: str) -> None:
    parsed, other = parse_text_diagnostics(text)
    assert len(parsed) + len(other) <= len(text.splitlines())


@given(st.lists(diagnostics, max_size=5))
def test_sarif_reads_back_exactly(found: list[Diagnostic]) -> None:
    results = []
    for d in found:
        result: dict = {"ruleId": d.code, "message": {"text": d.message + (f" [{d.uri}]" if d.uri else "")}}
        if d.level != DiagnosticLevel.WARNING:  # SARIF's default level is omitted by the CLI's SDK
            result["level"] = {DiagnosticLevel.ERROR: "error", DiagnosticLevel.INFO: "note"}[d.level]
        result["locations"] = [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": PurePosixPath(d.file).as_uri()},
                    "region": {"startLine": d.line, "charOffset": d.col},
                }
            }
        ]
        results.append(result)
    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "bicep"}}, "results": results}]}
    assert parse_sarif(json.dumps(log, indent=2)) == found
