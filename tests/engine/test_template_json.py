"""Reading template JSON as ARM does: comments, a BOM, bytes; and errors with line and column."""

from __future__ import annotations

import pytest

from arm_engine import IssueCode, TemplateError, parse_json
from arm_engine.json_source import locate, value_positions


def test_comments_outside_strings_only() -> None:
    text = '{\n  // line comment\n  "a": "http://x/*not a comment*/", /* block\n comment */ "b": [1, 2]\n}'
    assert parse_json(text) == {"a": "http://x/*not a comment*/", "b": [1, 2]}


def test_bom_and_bytes() -> None:
    assert parse_json('\ufeff{"a": 1}') == {"a": 1}
    assert parse_json('\ufeff{"a": "é"}'.encode()) == {"a": "é"}


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [('{\n  "a": 1,\n}', 3, 1), ('{"a": [1 2]}', 1, 10), ("", 1, 1)],
)
def test_syntax_errors_have_positions(text: str, line: int, column: int) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_json(text, source="t.json")
    issue = caught.value.first
    assert (issue.code, issue.source, issue.line, issue.column) == (IssueCode.INVALID_JSON, "t.json", line, column)


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', b"\xff\xfe{}"])
def test_not_json(text: str | bytes) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_json(text)
    assert caught.value.first.code == IssueCode.INVALID_JSON


def test_positions_of_paths() -> None:
    text = '{\n "resources": [\n  {"name": "a", "properties": {"odd-key": [0, {"x": 1}]}}\n ]\n}'
    positions = value_positions(text)
    assert positions["resources[0].name"] == (3, 12)
    assert positions["resources[0].properties['odd-key'][1].x"] == (3, 53)
    assert locate(positions, "resources[0].properties['odd-key'][1].x.deeper[2]") == (3, 53)
    assert value_positions("{broken") == {"": (1, 1)}
