"""Declarations are read from the health file and the flags, and a bad one is refused before deploying."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.health.declare import HealthDeclarationError, find_health_file, load_health_spec, parse_health_check_flag
from contract.health import ArmCheck, HttpCheck, TcpCheck
from contract.health_targets import declared_outputs
from tests.support.health_servers import Pki

TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "resources": [],
    "outputs": {
        "webUrl": {"type": "string", "value": "[reference('web').defaultHostName]"},
        "db": {"type": "object", "value": {}},
        "dbPort": {"type": "int", "value": 5432},
    },
}
DECLARED = declared_outputs(TEMPLATE)


def write(path: Path, content: object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def refused(**kwargs: object) -> str:
    kwargs.setdefault("template_path", None)
    kwargs.setdefault("declared_outputs", DECLARED)
    with pytest.raises(HealthDeclarationError) as info:
        load_health_spec(**kwargs)  # type: ignore[arg-type]
    return str(info.value)


# --------------------------------------------------------------------------------------------------- flags


def test_flag_forms() -> None:
    web = parse_health_check_flag(
        "http:GET https://{outputs.webUrl}/health expect=200-299 contains=ok 'header=X-Env: prod' timeout=3s "
        "interval=500ms name=web"
    )
    assert isinstance(web, HttpCheck)
    assert (web.method, web.url, web.expect_status, web.body_contains) == (
        "GET",
        "https://{outputs.webUrl}/health",
        "200-299",
        "ok",
    )
    assert web.headers == {"X-Env": "prod"} and web.verify_tls
    assert (web.timeout_seconds, web.retry_interval_seconds, web.name) == (3.0, 0.5, "web")

    port_from_output = parse_health_check_flag("http:GET https://{outputs.webUrl}:{outputs.dbPort}/health")
    assert isinstance(port_from_output, HttpCheck)

    implicit_get = parse_health_check_flag("http:https://example.com/ tls=off")
    assert isinstance(implicit_get, HttpCheck)
    assert implicit_get.method == "GET" and not implicit_get.verify_tls

    db = parse_health_check_flag("tcp:{outputs.db.host}:{outputs.dbPort}")
    assert isinstance(db, TcpCheck) and (db.host, db.port) == ("{outputs.db.host}", "{outputs.dbPort}")
    v6 = parse_health_check_flag("tcp:[::1]:5432")
    assert isinstance(v6, TcpCheck) and (v6.host, v6.port) == ("::1", 5432)

    arm = parse_health_check_flag("arm")
    assert isinstance(arm, ArmCheck) and arm.resources == [] and not arm.availability
    x = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/x"
    y = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/x/slots/y"
    arm2 = parse_health_check_flag(f"arm:{x},{y} availability=on")
    assert isinstance(arm2, ArmCheck) and arm2.resources == [x, y]
    assert arm2.availability


@pytest.mark.parametrize(
    "resource",
    [
        "not-a-resource-id",
        "/subscriptions/s/x",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/../../../../admin/faults",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/x?api-version=1",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/%2e%2e",
    ],
)
def test_arm_resources_must_be_resource_ids(resource: str) -> None:
    with pytest.raises(HealthDeclarationError, match="is not an ARM resource id"):
        parse_health_check_flag(f"arm:{resource}")


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("ftp:host:21", "--health-check 'ftp:host:21' has the kind 'ftp'; known kinds: arm, tcp, http"),
        ("tcp:db:70000", "--health-check 'tcp:db:70000': port: the port 70000 is out of range; give a port from 1"),
        ("tcp:db:0", "the port 0 is out of range"),
        ("tcp:db:http", "the port 'http' is not a number"),
        ("tcp:db", "--health-check 'tcp:db' has no HOST:PORT after 'tcp:'"),
        ("tcp:https://db:5432", "looks like a URL"),
        ("http:GET example.com/health", "the URL 'example.com/health' is malformed: its scheme is none"),
        ("http:GET https:///health", "the URL 'https:///health' is malformed: it has no host"),
        ("http:GET https://example.com:99999/", "its port is not a number from 1 to 65535"),
        ("http:GET https://exa mple.com/", "has 'mple.com/', which is not an option of a http check"),
        ("http:GET https://example.com/ expect=600", "expected status '600' has '600', outside 100-599"),
        ("http:GET https://example.com/ expect=ok", "expected status 'ok' is not a status list"),
        ("http:GET https://example.com/ colour=blue", "has 'colour=blue', which is not an option of a http check"),
        ("http:GET https://example.com/ tls=maybe", "write tls=on or tls=off"),
        ("http:GET https://example.com/ header=NoColon", "write header=NAME:VALUE"),
        ("http:GET https://example.com/ timeout=soon", "timeout_seconds: 'soon' is not a duration"),
        ("http:GET https://{output.webUrl}/", "only {outputs.NAME} (or {outputs.NAME.field}) is supported"),
        ("http:GET https://{outputs.webUrl/", "has an unmatched '{'"),
        ("http:GET http://example.com/ ca=/nonexistent/ca.pem", "The CA file '/nonexistent/ca.pem' given with"),
        ("tcp:db:5432 'unclosed", "No closing quotation"),
        ("http:HEAD https://example.com/ contains=ok", "body_contains needs a body, and a HEAD answer has none"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(flag: str, expected: str) -> None:
    message = refused(flags=[flag])
    assert expected in message
    assert message.startswith(f"--health-check '{flag}'") or message.startswith("--health-check")


def test_whitespace_in_a_url_is_caught() -> None:
    assert "contains whitespace" in refused(flags=["http:GET 'https://exa mple.com/'"])


def test_an_output_the_template_does_not_declare_is_refused_with_a_suggestion() -> None:
    message = refused(flags=["http:GET https://{outputs.webURI}/health"])
    assert message == (
        "--health-check 'http:GET https://{outputs.webURI}/health': 'https://{outputs.webURI}/health' uses the "
        "output 'webURI', which the template does not declare. Did you mean 'webUrl'?"
    )
    assert "It declares: db, dbPort, webUrl." in refused(flags=["tcp:{outputs.zzz}:1"])
    assert "It declares no outputs" in refused(flags=["tcp:{outputs.zzz}:1"], declared_outputs=[])


def test_output_names_compare_ignoring_case_and_fields_need_an_object_output() -> None:
    spec = load_health_spec(
        template_path=None, flags=["tcp:{outputs.DB.host}:{outputs.dbport}"], declared_outputs=DECLARED
    )
    assert len(spec.checks) == 1
    assert "declared as string, which has no fields" in refused(flags=["http:GET https://{outputs.webUrl.host}/"])


def test_a_ca_file_with_tls_off_is_contradictory(pki: Pki) -> None:
    assert "ca_file is given but verify_tls is false" in refused(
        flags=[f"http:GET https://h/ ca={pki.ca_file} tls=off"]
    )


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    junk = write(tmp_path / "ca.pem", "not a certificate")
    assert "holds no PEM certificate" in refused(flags=[f"http:GET https://h/ ca={junk}"])


def test_query_tokens_are_redacted_from_declaration_errors() -> None:
    message = refused(flags=["http:GET https://{outputs.nope}/x?sig=TOPSECRET expect=200"])
    assert "TOPSECRET" not in message and "?<redacted>" in message


# --------------------------------------------------------------------------------------------------- the file


def test_health_file_next_to_the_template_is_found_and_merged_with_flags(tmp_path: Path, pki: Pki) -> None:
    template = write(tmp_path / "main.json", TEMPLATE)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(pki.ca_file.read_bytes())
    write(
        tmp_path / "main.health.json",
        {
            "window_seconds": "2m",
            "retry_interval_seconds": 3,
            "checks": [
                {"kind": "arm", "name": "resources"},
                {
                    "kind": "http",
                    "name": "web",
                    "url": "https://{outputs.webUrl}/health",
                    "expect_status": [200, "300-399"],
                    "headers": {"Accept": "application/json"},
                    "ca_file": "certs/ca.pem",
                },
                {"kind": "tcp", "host": "{outputs.db.host}", "port": "{outputs.dbPort}"},
            ],
        },
    )
    assert find_health_file(template) == tmp_path / "main.health.json"
    spec = load_health_spec(
        template_path=template, flags=["tcp:cache.internal:6379"], declared_outputs=DECLARED, timeout="4s"
    )
    assert (spec.window_seconds, spec.retry_interval_seconds, spec.timeout_seconds) == (120.0, 3.0, 4.0)
    assert [c.name for c in spec.checks] == [
        "resources",
        "web",
        "tcp {outputs.db.host}:{outputs.dbPort}",
        "tcp cache.internal:6379",
    ]
    web = spec.checks[1]
    assert isinstance(web, HttpCheck)
    assert web.expect_status == "200,300-399"
    assert web.ca_pem == pki.ca_file.read_text()  # read now: the worker need not see the file
    assert load_health_spec(template_path=template, declared_outputs=DECLARED, window=30).window_seconds == 30


def test_no_health_file_and_no_flags_means_no_checks(tmp_path: Path) -> None:
    template = write(tmp_path / "main.json", TEMPLATE)
    assert find_health_file(template) is None
    assert load_health_spec(template_path=template, declared_outputs=DECLARED).checks == []


def test_yaml_health_file(tmp_path: Path) -> None:
    template = write(tmp_path / "app.json", TEMPLATE)
    write(
        tmp_path / "app.health.yaml",
        "checks:\n"
        "  - kind: http\n"
        "    url: https://{outputs.webUrl}/health\n"
        "    body_contains: healthy\n"
        "  - kind: tcp\n"
        "    host: db.internal\n"
        "    port: 5432\n",
    )
    spec = load_health_spec(template_path=template, declared_outputs=DECLARED)
    assert [c.kind for c in spec.checks] == ["http", "tcp"]


def test_two_health_files_are_ambiguous(tmp_path: Path) -> None:
    template = write(tmp_path / "app.json", TEMPLATE)
    write(tmp_path / "app.health.json", {"checks": []})
    write(tmp_path / "app.health.yml", "checks: []\n")
    assert "keep one health file" in refused(template_path=template)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"checks": [', "is not valid JSON: Expecting value at line 1, column 13"),
        ("[1]", 'check #1 is a number; each check is an object with a "kind"'),
        ('{"checks": {}}', 'has "checks" as an object; make it a list'),
        ('{"checks": [], "windw": 5}', "has the key 'windw', which is not a health setting"),
        ('{"checks": [{"kind": "htp", "url": "x"}]}', "check #1 has the kind 'htp'; known kinds: arm, tcp, http"),
        ('{"checks": [{"url": "https://x/"}]}', 'check #1 has no "kind"'),
        ('{"checks": [{"kind": "tcp", "host": "db"}]}', "check #1: 'port' is required."),
        (
            '{"checks": [{"kind": "tcp", "name": "db", "host": "db", "port": 65536}]}',
            "check #1 ('db'): port: the port 65536 is out of range",
        ),
        (
            '{"checks": [{"kind": "http", "url": "https://x/", "verifyTls": false}]}',
            "check #1: 'verifyTls' is not a setting of this check kind",
        ),
        (
            '{"checks": [{"kind": "http", "url": "https://{outputs.nope}/"}]}',
            "check #1: 'https://{outputs.nope}/' uses the output 'nope', which the template does not declare",
        ),
        ('{"checks": [], "window_seconds": 0}', "window_seconds: '0' is shorter than the minimum of 1 s"),
        (
            '{"checks": [{"kind": "tcp", "name": "a", "host": "h", "port": 1}, '
            '{"kind": "tcp", "name": "a", "host": "h", "port": 2}]}',
            "check #2 ('a') is named 'a', like The health file",
        ),
    ],
)
def test_bad_health_files_are_refused_naming_the_file_and_check(tmp_path: Path, content: str, expected: str) -> None:
    path = write(tmp_path / "t.health.json", content)
    message = refused(health_file=path)
    assert str(path) in message
    assert expected in message


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.health.yaml", "checks:\n  - kind: tcp\n   host: x\n")
    assert "is not valid YAML" in refused(health_file=path) and "line 3" in refused(health_file=path)


def test_a_missing_health_file_given_explicitly(tmp_path: Path) -> None:
    assert "does not exist" in refused(health_file=tmp_path / "nope.health.json")


def test_bad_command_line_timing() -> None:
    assert refused(window="ten minutes").startswith("--health-window 'ten minutes' is not a duration")
    assert refused(timeout=0) == (
        "--health-timeout '0' is shorter than the minimum of 0.1 s; see docs/HEALTH.md (Timing) for the bounds."
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"retry_interval": "1ms"}, "--health-interval '1ms' is shorter than the minimum of 0.2 s"),
        ({"window": "0.0001ms"}, "--health-window '0.0001ms' is shorter than the minimum of 1 s"),
        ({"window": "24h"}, "--health-window '24h' is longer than the maximum of 1 h"),
        ({"timeout": "10m"}, "--health-timeout '10m' is longer than the maximum of 5 min"),
        ({"flags": ["tcp:db:5432 interval=1ms"]}, "retry_interval_seconds: '1ms' is shorter than the minimum of 0.2 s"),
    ],
)
def test_timing_has_a_floor_and_a_ceiling(setting: dict[str, object], expected: str) -> None:
    assert expected in refused(**setting)  # type: ignore[arg-type]


def test_a_file_window_out_of_bounds_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.health.json", '{"window_seconds": "0.0001ms", "checks": []}')
    assert "window_seconds: '0.0001ms' is shorter than the minimum of 1 s" in refused(health_file=path)


def test_secure_outputs_cannot_feed_a_check() -> None:
    message = refused(flags=["http:GET https://h/?key={outputs.apiKey}"], declared_outputs={"apiKey": "securestring"})
    assert "declared securestring: secure outputs are masked" in message
