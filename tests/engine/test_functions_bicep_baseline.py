"""Real-engine ground truth: shared/corpus/bicep-baselines holds `bicep build-params` outputs, which the real ARM
expression engine evaluated. Each Bicep input is hand-translated to the ARM expression Bicep emits for it, and
the expected value is read from the recorded parameters.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.expressions import SimpleContext, ev

L = "lambdaVariables"

# myObject.<key> -> the ARM expression for the Bicep input in parameters.bicepparam
MY_OBJECT = {
    "array": "[array(createArray())]",
    "base64ToString": "[base64ToString(base64('abc'))]",
    "base64ToJson": '[base64ToJson(base64(\'{"hi": "there"}\')).hi]',
    "bool": "[bool(true())]",
    "concat": "[concat(createArray('abc'), createArray('def'))]",
    "contains": "[contains('foo/bar', '/')]",
    "dataUriToString": "[dataUriToString(dataUri('abc'))]",
    "dateTimeAdd": "[dateTimeAdd(dateTimeFromEpoch(1680224438), 'P1D')]",
    "dateTimeToEpoch": "[dateTimeToEpoch(dateTimeFromEpoch(1680224438))]",
    "empty": "[empty(createArray())]",
    "endsWith": "[endsWith('foo', 'o')]",
    "filter": f"[filter(createArray(1, 2), lambda('i', less({L}('i'), 2)))]",
    "first": "[first(createArray(124, 25))]",
    "flatten": "[flatten(createArray(createArray('abc'), createArray('def')))]",
    "format": "[format('->{0}<-', 123)]",
    "guid": "[guid('asdf')]",
    "indexOf": "[indexOf('abc', 'b')]",
    "int": "[int(123)]",
    "intersection": "[intersection(createArray(1, 2, 3), createArray(2, 3, 4))]",
    "items": "[items(createObject('foo', 'abc', 'bar', 123))]",
    "join": "[join(createArray('abc', 'def', 'ghi'), '/')]",
    "last": "[last(createArray(1, 2))]",
    "lastIndexOf": "[lastIndexOf('abcba', 'b')]",
    "length": "[length(createArray(0, 1, 2))]",
    "map": f"[map(range(0, 3), lambda('i', format('Hi {{0}}!', {L}('i'))))]",
    "max": "[max(1, 2, 3)]",
    "min": "[min(1, 2, 3)]",
    "padLeft": "[padLeft(13, 5)]",
    "range": "[range(0, 3)]",
    "reduce": f"[reduce(createArray('a', 'b', 'c'), '', lambda('a', 'b', format('{{0}}-{{1}}', {L}('a'), {L}('b'))))]",
    "replace": "[replace('abc', 'b', '/')]",
    "skip": "[skip(createArray(1, 2, 3), 1)]",
    "sort": f"[sort(createArray('c', 'd', 'a'), lambda('a', 'b', less({L}('a'), {L}('b'))))]",
    "split": "[split('a/b/c', '/')]",
    "startsWith": "[startsWith('abc', 'a')]",
    "string": "[string('asdf')]",
    "substring": "[substring('asdfasf', 3)]",
    "take": "[take(createArray(1, 2, 3), 2)]",
    "toLower": "[toLower('AiKInIniIN')]",
    "toObject": f"[toObject(createArray('a', 'b', 'c'), lambda('x', {L}('x')), "
    f"lambda('x', format('Hi {{0}}!', {L}('x'))))]",
    "toUpper": "[toUpper('AiKInIniIN')]",
    "trim": "[trim('  adf asdf  ')]",
    "union": "[union(createObject('abc', 'def'), createObject('def', 'ghi'))]",
    "uniqueString": "[uniqueString('asd', 'asdf', 'asdf')]",
    "uri": "[uri('https://github.com', 'Azure/bicep')]",
    "uriComponent": "[uriComponent('UB*8h 0+=_)9h9n')]",
    "uriComponentToString": "[uriComponentToString('%20%25%20')]",
}

MY_ARRAY = [
    "[if(true(), 'a', 'b')]",
    "[not(true())]",
    "[add(123, 456)]",
    "[sub(456, 123)]",
    "[mul(2, 3)]",
    "[div(10, 2)]",
    "[less(1, 2)]",
    "[greater(1, 2)]",
    "[greaterOrEquals(1, 2)]",
    "[lessOrEquals(1, 2)]",
]


def _recorded(shared: Path, sample: str) -> dict[str, Any]:
    path = shared / "corpus" / "bicep-baselines" / sample / "parameters.json"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout of shared/")
    parameters: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))["parameters"]
    return parameters


@pytest.mark.parametrize("key", sorted(MY_OBJECT))
def test_expressions_sample_my_object(shared: Path, key: str) -> None:
    expected = _recorded(shared, "bicepparam__Expressions")["myObject"]["value"][key]
    assert ev(MY_OBJECT[key]) == expected


def test_translation_covers_every_runtime_function_of_the_sample(shared: Path) -> None:
    recorded = _recorded(shared, "bicepparam__Expressions")["myObject"]["value"]
    compile_time_only = {"any", "loadFileAsBase64", "loadJsonContent", "loadTextContent"}
    assert set(recorded) - compile_time_only == set(MY_OBJECT)


def test_expressions_sample_operators(shared: Path) -> None:
    recorded = _recorded(shared, "bicepparam__Expressions")
    assert [ev(e) for e in MY_ARRAY] == recorded["myArray"]["value"]
    assert ev("[int(if(true(), 123, 456))]") == recorded["myInt"]["value"]


def test_expressions_sample_key_vault_reference_id(shared: Path) -> None:
    recorded = _recorded(shared, "bicepparam__Expressions")
    expected = recorded["kvSecret"]["reference"]["keyVault"]["id"]
    assert ev("[resourceId('subId', 'rgName', 'Microsoft.KeyVault/vaults', 'kvName')]") == expected


def test_variables_sample(shared: Path) -> None:
    recorded = _recorded(shared, "bicepparam__Variables")
    ctx = SimpleContext(
        variables={"blah": "blah", "abc": "abc", "def": {"abc": "[toUpper(variables('abc'))]"}, "list": "FOO,BAR,BAZ"}
    )
    assert ev("[variables('blah')]", ctx) == recorded["foo"]["value"]
    assert ev("[createObject('def', variables('def'), 'ghi', 'ghi')]", ctx) == recorded["fooObj"]["value"]
    bar = f"[join(map(range(0, 3), lambda('i', split(variables('list'), ',')[sub(2, {L}('i'))])), ',')]"
    assert ev(bar, ctx) == recorded["bar"]["value"]


# Azure/bicep v0.46.1 src/Bicep.Core.UnitTests/TypeSystem/FunctionResolverTests.cs, GetLiteralTransformations:
# Bicep folds calls with literal arguments through the real engine (ExpressionBuiltInFunctions), so these rows
# are engine outputs (source B1 of shared/arm-contract/unique-functions.md). Rewritten as ARM expressions.
ENGINE_FOLDED = [
    ("[base64(' Fizz ')]", "IEZpenog"),
    ("[base64ToString('IEZpenog')]", " Fizz "),
    ("[dataUri(' Fizz ')]", "data:text/plain;charset=utf-8;base64,IEZpenog"),
    ("[dataUriToString('data:text/plain;charset=utf-8;base64,IEZpenog')]", " Fizz "),
    ("[first('Fizz')]", "F"),
    ("[last('Fizz')]", "z"),
    ("[toLower(' Fizz ')]", " fizz "),
    ("[toUpper(' Fizz ')]", " FIZZ "),
    ("[trim(' Fizz ')]", "Fizz"),
    ("[uriComponent(' Fizz ')]", "%20Fizz%20"),
    ("[uriComponentToString('%20Fizz%20')]", " Fizz "),
    ("[uniqueString('snap', 'crackle', 'pop')]", "byghxckddilkc"),
    ("[guid('foo', 'bar', 'baz')]", "2ed86837-7c7c-5eaa-9864-dd077fd19b0d"),
    ("[replace('foot', 't', 'd')]", "food"),
    ("[format('{0}/{1}/{2}/{3}', 1, 2, 3, true())]", "1/2/3/True"),
    ("[padLeft('00', 5, ' ')]", "   00"),
    ("[length('table')]", 5),
    ("[length(createArray(1, 2, 3, 4, 5))]", 5),
    ("[uri('https://github.com/another/repo', '/Azure/bicep')]", "https://github.com/Azure/bicep"),
    ("[substring('foot', 0, 3)]", "foo"),
    ("[take('foot', 3)]", "foo"),
    ("[skip('foot', 3)]", "t"),
    ("[empty('non-empty string')]", False),
    ("[contains('foot', 'foo')]", True),
    ("[indexOf('food', 'o')]", 1),
    ("[lastIndexOf('food', 'o')]", 2),
    ("[startsWith('food', 'foo')]", True),
    ("[endsWith('foot', 't')]", True),
    ("[min(10, 4, 1, 6)]", 1),
    ("[max(10, 4, 1, 6)]", 10),
    ("[split('fizz,buzz,pop', ',')]", ["fizz", "buzz", "pop"]),
    ("[take(createArray('fizz', 'buzz', 'pop'), 2)]", ["fizz", "buzz"]),
    ("[contains(createArray('fizz', 'buzz', 'pop'), 'fizz')]", True),
    ("[intersection(createArray('fizz', 'buzz', 'pop'), createArray('snap', 'crackle', 'pop'))]", ["pop"]),
    ("[union(createArray('fizz', 'buzz'), createArray('pop'))]", ["fizz", "buzz", "pop"]),
    ("[first(createArray('fizz', 'buzz', 'pop'))]", "fizz"),
    ("[first(createArray())]", None),
    ("[last(createArray('fizz', 'buzz', 'pop'))]", "pop"),
    ("[last(createArray())]", None),
    ("[indexOf(createArray('fizz', 'buzz', 'pop', 'fizz'), 'fizz')]", 0),
    ("[lastIndexOf(createArray('fizz', 'buzz', 'pop', 'fizz'), 'fizz')]", 3),
    ("[min(createArray(10, 4, 1, 6))]", 1),
    ("[max(createArray(10, 4, 1, 6))]", 10),
    ("[join(createArray('foo', 'bar', 'baz'), '/')]", "foo/bar/baz"),
    ("[join(createArray('abc', 123, true()), '/')]", "abc/123/True"),
]


@pytest.mark.parametrize(("text", "expected"), ENGINE_FOLDED)
def test_engine_folded_literals(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)
