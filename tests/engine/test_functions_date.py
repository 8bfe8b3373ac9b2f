"""Date functions: ISO-8601 durations, .NET date formats, epoch conversions, utcNow only where ARM allows it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.scope import DeploymentScope
from tests.support.expressions import SimpleContext, ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'P3Y')]", "2023-04-07T14:53:14Z"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', '-P9D')]", "2020-03-29T14:53:14Z"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT1H')]", "2020-04-07T15:53:14Z"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT1H30M15S')]", "2020-04-07T16:23:29Z"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'P1W')]", "2020-04-14T14:53:14Z"),
        ("[dateTimeAdd('2020-01-31T00:00:00Z', 'P1M')]", "2020-02-29T00:00:00Z"),
        ("[dateTimeAdd('2020-12-31T23:59:59Z', 'PT1S')]", "2021-01-01T00:00:00Z"),
        ("[dateTimeAdd('2020-04-07 14:53:14Z', 'P1D')]", "2020-04-08 14:53:14Z"),
        ("[dateTimeAdd('20200407T145314Z', 'P1D')]", "20200408T145314Z"),
        ("[dateTimeAdd('2020-04-07', 'P1D')]", "2020-04-08"),
        ("[dateTimeAdd('2020-04-07T14:53:14.5Z', 'PT1S')]", "2020-04-07T14:53:15.5Z"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'P1D', 'yyyy-MM-dd')]", "2020-04-08"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT0S', 'd')]", "04/07/2020"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT0S', 'u')]", "2020-04-07 14:53:14Z"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT0S', 'o')]", "2020-04-07T14:53:14.0000000Z"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT0S', 'M d')]", "4 7"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT0S', 'ddd, dd MMM yyyy hh:mm tt')]", "Tue, 07 Apr 2020 02:53 PM"),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'PT0S', 'yyyyMMdd''T''HHmm')]", "20200407T1453"),
        ("[dateTimeFromEpoch(1680224438)]", "2023-03-31T01:00:38Z"),
        ("[dateTimeFromEpoch(0)]", "1970-01-01T00:00:00Z"),
        ("[dateTimeToEpoch('2023-03-31T01:00:38Z')]", 1680224438),
        ("[dateTimeToEpoch('1970-01-01T01:00:00+01:00')]", 0),
        ("[dateTimeToEpoch(dateTimeAdd('2023-03-31T01:00:38Z', 'P1D'))]", 1680224438 + 86400),
    ],
)
def test_dates(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[dateTimeAdd('not a date', 'P1D')]", IssueCode.INVALID_VALUE),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', '1 day')]", IssueCode.INVALID_VALUE),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'P')]", IssueCode.INVALID_VALUE),
        ("[dateTimeAdd('9999-12-31T00:00:00Z', 'P1Y')]", IssueCode.INVALID_VALUE),
        ("[dateTimeAdd('2020-04-07T14:53:14Z', 'P1D', 'Q')]", IssueCode.INVALID_VALUE),
        ("[dateTimeFromEpoch('0')]", IssueCode.TYPE_ERROR),
        ("[dateTimeFromEpoch(9223372036854775807)]", IssueCode.INVALID_VALUE),
        ("[dateTimeToEpoch(5)]", IssueCode.TYPE_ERROR),
        ("[utcNow()]", IssueCode.FUNCTION_NOT_ALLOWED),
        ("[utcNow('u')]", IssueCode.FUNCTION_NOT_ALLOWED),
    ],
)
def test_date_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code


def test_utc_now_formats_in_parameter_defaults() -> None:
    ctx = SimpleContext(allow_runtime_functions=True)
    before = datetime.now(UTC).replace(microsecond=0)
    default = ev("[utcNow()]", ctx)
    assert re.fullmatch(r"\d{8}T\d{6}Z", default)
    assert datetime.strptime(default, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) >= before
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", ev("[utcNow('d')]", ctx))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z", ev("[utcNow('u')]", ctx))
    assert re.fullmatch(r"\d{1,2} \d{1,2}", ev("[utcNow('M d')]", ctx))
    # the documented pattern: a parameter default feeding dateTimeAdd
    later = ev("[dateTimeAdd(utcNow('u'), 'PT1H')]", ctx)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z", later)


def test_utc_now_formats_the_deployments_moment_when_the_scope_has_one() -> None:
    moment = datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    ctx = SimpleContext(allow_runtime_functions=True, scope=DeploymentScope(deployment_time=moment))
    assert ev("[utcNow()]", ctx) == "20310203T040506Z"
    assert ev("[utcNow('yyyy-MM-ddTHH:mm:ss.fffZ')]", ctx) == "2031-02-03T04:05:06.789Z"
    assert ev("[dateTimeAdd(utcNow('u'), 'P1D')]", ctx) == "2031-02-04 04:05:06Z"
