"""String functions, with the documented examples of the ARM reference and .NET composite format specifiers."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.scope import DeploymentScope
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext, ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # format(): .NET composite formatting
        (
            "[format('{0}, {1}. Formatted number: {2:N0}', 'Hello', 'User', 8175133)]",
            "Hello, User. Formatted number: 8,175,133",
        ),
        ("[format('{0:D3}', 7)]", "007"),
        ("[format('{0:D3}', -5)]", "-005"),
        ("[format('{0:d}', 42)]", "42"),
        ("[format('{0:X}', 255)]", "FF"),
        ("[format('{0:x4}', 255)]", "00ff"),
        ("[format('{0:N}', 2500000)]", "2,500,000.00"),
        ("[format('{0:N2}', json('1234.5'))]", "1,234.50"),
        ("[format('{0:F1}', 3)]", "3.0"),
        ("[format('{0:F0}', json('2.5'))]", "3"),
        ("[format('{0:E2}', 1234)]", "1.23E+003"),
        ("[format('{0:P1}', json('0.256'))]", "25.6 %"),
        ("[format('{0:000}', 7)]", "007"),
        ("[format('{0:00}', 12345)]", "12345"),
        ("[format('{0:#,##0}', 1234567)]", "1,234,567"),
        ("[format('{0:0.00}', json('3.14159'))]", "3.14"),
        ("[format('{0:#.##}', json('567.891'))]", "567.89"),
        ("[format('vm-{0:00}', 3)]", "vm-03"),
        ("[format('{0,5}|{1,-5}|', 'ab', 'cd')]", "   ab|cd   |"),
        ("[format('{0,4:D2}', 7)]", "  07"),
        ("[format('{{{0}}}', 1)]", "{1}"),
        ("[format('{{literal}}')]", "{literal}"),
        ("[format('{0}-{0}', 'x')]", "x-x"),
        ("[format('{0}', true())]", "True"),
        ("[format('{0}', null())]", ""),
        ("[format('{0:D3}', 'text')]", "text"),
        ("[format('->{0}<-', 123)]", "->123<-"),
        # string()
        ("[string(createObject('valueA', 10, 'valueB', 'Example Text'))]", '{"valueA":10,"valueB":"Example Text"}'),
        ("[string(createArray('a', 'b', 'c'))]", '["a","b","c"]'),
        ("[string(5)]", "5"),
        ("[string(true())]", "True"),
        ("[string(false())]", "False"),
        ("[string(null())]", ""),
        ("[string(json('1.5'))]", "1.5"),
        ("[string(json('2.0'))]", "2"),
        ("[string(json('1e15'))]", "1E+15"),
        ("[string(json('123456789012345.5'))]", "123456789012345.5"),
        ("[string(json('0.00001'))]", "1E-05"),
        ("[string(json('0.0001'))]", "0.0001"),
        ("[string(json('-2.5e-7'))]", "-2.5E-07"),
        ("[string(createObject('a', 'ü\"'))]", '{"a":"ü\\""}'),
        ("[string(createArray())]", "[]"),
        # base64 and data URIs
        ("[base64('one, two, three')]", "b25lLCB0d28sIHRocmVl"),
        ("[base64ToString('b25lLCB0d28sIHRocmVl')]", "one, two, three"),
        ("[base64ToJson(base64('{''one'': ''a'', ''two'': ''b''}'))]", {"one": "a", "two": "b"}),
        ("[base64ToString(base64('ünïcødé'))]", "ünïcødé"),
        ("[dataUri('Hello')]", "data:text/plain;charset=utf-8;base64,SGVsbG8="),
        ("[dataUriToString('data:;base64,SGVsbG8sIFdvcmxkIQ==')]", "Hello, World!"),
        ("[dataUriToString('data:text/plain,a%20b')]", "a b"),
        # search
        ("[indexOf('test', 't')]", 0),
        ("[lastIndexOf('test', 't')]", 3),
        ("[indexOf('abcdef', 'CD')]", 2),
        ("[lastIndexOf('abcdef', 'AB')]", 0),
        ("[indexOf('abcdef', 'z')]", -1),
        ("[startsWith('abcdef', 'ab')]", True),
        ("[startsWith('abcdef', 'A')]", True),
        ("[startsWith('abcdef', 'e')]", False),
        ("[endsWith('abcdef', 'ef')]", True),
        ("[endsWith('abcdef', 'F')]", True),
        ("[endsWith('abcdef', 'e')]", False),
        # transformations
        ("[padLeft('123', 10, '0')]", "0000000123"),
        ("[padLeft('toolong', 3, '0')]", "toolong"),
        ("[padLeft(7, 3, '0')]", "007"),
        ("[replace('123-123-1234', '-', '')]", "1231231234"),
        ("[replace('123-123-1234', '1234', 'xxxx')]", "123-123-xxxx"),
        ("[replace('aAa', 'a', 'b')]", "bAb"),
        ("[split('one,two,three', ',')]", ["one", "two", "three"]),
        ("[split('one;two,three', createArray(',', ';'))]", ["one", "two", "three"]),
        ("[split('', ',')]", [""]),
        ("[split('a,,b', ',')]", ["a", "", "b"]),
        ("[substring('one two three', 4, 3)]", "two"),
        ("[substring('abc', 3)]", ""),
        ("[substring('abc', 1, 0)]", ""),
        ("[trim('    one two three   ')]", "one two three"),
        ("[toLower('One Two Three')]", "one two three"),
        ("[toUpper('One Two Three')]", "ONE TWO THREE"),
        ("[join(createArray('a', 'b', 'c'), ', ')]", "a, b, c"),
        ("[join(createArray(1, 2), '')]", "12"),
        ("[join(createArray(), ',')]", ""),
        # URIs
        ("[uri('http://contoso.org/firstpath', 'myscript.sh')]", "http://contoso.org/myscript.sh"),
        ("[uri('http://contoso.org/firstpath/', 'myscript.sh')]", "http://contoso.org/firstpath/myscript.sh"),
        (
            "[uri('http://contoso.org/firstpath/azuredeploy.json', 'myscript.sh')]",
            "http://contoso.org/firstpath/myscript.sh",
        ),
        (
            "[uri('http://contoso.org/firstpath/azuredeploy.json/', 'myscript.sh')]",
            "http://contoso.org/firstpath/azuredeploy.json/myscript.sh",
        ),
        (
            "[uri('http://contoso.com/resources/', 'nested/azuredeploy.json')]",
            "http://contoso.com/resources/nested/azuredeploy.json",
        ),
        (
            "[uriComponent('http://contoso.com/resources/nested/azuredeploy.json')]",
            "http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json",
        ),
        (
            "[uriComponentToString('http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json')]",
            "http://contoso.com/resources/nested/azuredeploy.json",
        ),
        ("[parseUri('https://contoso.com:8080/a/b?x=1').port]", 8080),
        ("[buildUri(createObject('scheme', 'https', 'host', 'contoso.com', 'path', 'a'))]", "https://contoso.com/a"),
        # deterministic identifiers
        ("[guid('asdf')]", "228d27cc-6fdb-5934-b7ac-1efccebade04"),
        ("[uniqueString('asd', 'asdf', 'asdf')]", "iizpqit7ih3cc"),
    ],
)
def test_string_functions(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[format('{1}', 'a')]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[format('{0', 'a')]", IssueCode.INVALID_VALUE),
        ("[format('a}b')]", IssueCode.INVALID_VALUE),
        ("[format('{x}', 'a')]", IssueCode.INVALID_VALUE),
        ("[format('{0,1000000}', 'a')]", IssueCode.INVALID_VALUE),
        ("[format('{0:D999999999}', 1)]", IssueCode.INVALID_VALUE),
        ("[format(1)]", IssueCode.TYPE_ERROR),
        ("[format()]", IssueCode.WRONG_ARITY),
        ("[substring('1234567890', 0, 11)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[substring('abc', 4)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[substring('abc', -1)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[substring('abc', 0, -1)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[base64ToString('***')]", IssueCode.INVALID_VALUE),
        ("[base64ToJson(base64('not json'))]", IssueCode.INVALID_VALUE),
        ("[dataUriToString('hello')]", IssueCode.INVALID_VALUE),
        ("[toLower(1)]", IssueCode.TYPE_ERROR),
        ("[replace('abc', '', 'x')]", IssueCode.INVALID_VALUE),
        ("[padLeft('a', 3, 'xy')]", IssueCode.INVALID_VALUE),
        ("[padLeft(createArray(), 3)]", IssueCode.TYPE_ERROR),
        ("[split(1, ',')]", IssueCode.TYPE_ERROR),
        ("[join(createArray(createArray()), ',')]", IssueCode.TYPE_ERROR),
        ("[uniqueString(1)]", IssueCode.TYPE_ERROR),
        ("[uniqueString()]", IssueCode.WRONG_ARITY),
        ("[guid(null())]", IssueCode.TYPE_ERROR),
        ("[uri('not-absolute', 'x')]", IssueCode.INVALID_VALUE),
        ("[startsWith('a', 1)]", IssueCode.TYPE_ERROR),
    ],
)
def test_string_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code


def test_new_guid_only_where_runtime_functions_are_allowed() -> None:
    with pytest.raises(TemplateError) as info:
        ev("[newGuid()]")
    assert info.value.first.code == IssueCode.FUNCTION_NOT_ALLOWED
    ctx = SimpleContext(allow_runtime_functions=True)
    first, second = ev("[newGuid()]", ctx), ev("[newGuid()]", ctx)
    assert uuid.UUID(first).version == 4 and first != second


def test_new_guid_derives_from_the_deployments_seed_when_it_has_one() -> None:
    """One deployment's expansions agree (the same seed, path and rank); another seed gives other GUIDs."""

    def guids(seed: str, name: str = "d") -> list[str]:
        ctx = SimpleContext(
            allow_runtime_functions=True, scope=DeploymentScope(new_guid_seed=seed, deployment_name=name)
        )
        # two parameters' defaults: their own paths; the calls of one expression: their own ranks
        a = ev("[newGuid()]", ctx, "parameters.a.defaultValue")
        return [a, *ev("[concat(newGuid(), ' ', newGuid())]", ctx, "parameters.b.defaultValue").split()]

    first = guids("seed-1")
    assert guids("seed-1") == first
    assert len(set(first)) == 3 and all(uuid.UUID(g).version == 4 for g in first)
    assert set(guids("seed-2")).isdisjoint(first)
    assert set(guids("seed-1", name="nested")).isdisjoint(first)  # each nested deployment its own


def test_guid_shape() -> None:
    value = ev("[guid(resourceGroup().id, deployment().name)]")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)


def test_string_of_deferred_is_deferred() -> None:
    assert isinstance(ev("[string(reference('x'))]"), Deferred)
    assert isinstance(ev("[format('{0}-{1}', 'a', reference('x').name)]"), Deferred)
    assert isinstance(ev("[toLower(listKeys('x', '2020-01-01').keys[0].value)]"), Deferred)
