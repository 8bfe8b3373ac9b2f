"""The layout's import rules (docs/ARCHITECTURE.md), enforced by walking every module's AST.

Each room may import only the rooms its rule names; a violation fails with the file, the line, the import and the
rule it breaks, so the next engineer knows where the code belongs instead of where it happened to compile.
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Our own top-level names; everything else is the standard library or a third-party package.
OURS = {
    "contract",
    "services",
    "client",
    "api",
    "workflows",
    "activities",
    "arm_engine",
    "local_arm",
    "worker",
    "starter",
    "tests",
    "bench",
    "harness",
    "azure_types",
}
STDLIB = set(sys.stdlib_module_names)
# Everything tests and benchmarks drive: the product, its emulator and the worker's assembly.
PRODUCT = frozenset(
    {
        "contract",
        "services",
        "client",
        "api",
        "workflows",
        "activities",
        "arm_engine",
        "azure_types",
        "local_arm",
        "worker",
    }
)


@dataclass(frozen=True)
class Rule:
    room: str
    allowed_ours: frozenset[str]
    third_party: frozenset[str] | None  # None: any third-party package; otherwise only these
    why: str


RULES = [
    Rule(
        "contract",
        frozenset({"contract"}),
        frozenset({"pydantic", "temporalio"}),
        "the contract crosses process boundaries: standard library, pydantic and temporalio only",
    ),
    Rule(
        "workflows",
        frozenset({"workflows", "contract"}),
        frozenset({"temporalio"}),
        "workflow code is deterministic orchestration: the contract and temporalio only",
    ),
    Rule(
        "activities",
        frozenset({"activities", "contract", "services", "arm_engine"}),
        None,
        "activities use the contract and the worker's services, never the client side, workflows or the local ARM",
    ),
    Rule(
        "services",
        frozenset({"services", "contract", "arm_engine", "azure_types"}),
        None,
        "the worker's services know nothing of the CLI, the activities, the workflows or the local ARM",
    ),
    Rule(
        "client",
        frozenset({"client", "contract", "services", "arm_engine"}),
        None,
        "the client side talks to workflows through the contract; only the embedded default may start the local ARM",
    ),
    Rule(
        "api",
        frozenset({"api", "client", "contract", "services"}),
        None,
        "the team service starts and follows deployments like the CLI does (the contract, the client's helpers, the "
        "worker-independent services); it never imports activities, workflows, worker.py or the local ARM",
    ),
    Rule(
        "arm_engine",
        frozenset({"arm_engine"}),
        None,
        "the template engine is pure and imports nothing of ours",
    ),
    Rule(
        "local_arm",
        frozenset({"local_arm", "arm_engine", "azure_types"}),
        None,
        "the local ARM is a separate wing reached over HTTPS: it imports the engine and Azure's type schemas only",
    ),
    Rule(
        "azure_types",
        frozenset({"azure_types"}),
        None,
        "Azure's resource type schemas are data with a reader: they import nothing of ours",
    ),
    Rule(
        "starter.py",
        frozenset({"client"}),
        None,
        "starter.py is the thin entry point of the client",
    ),
    Rule(
        "worker.py",
        frozenset({"contract", "services", "activities", "workflows", "starter"}),
        None,
        "worker.py assembles the worker from the workflow, the activities and the services",
    ),
    Rule(
        "bench",
        PRODUCT | {"bench", "harness"},
        None,
        "benchmarks measure the product; they import no tests (shared drivers live in harness/)",
    ),
    Rule(
        "harness",
        PRODUCT | {"harness"},
        None,
        "the test and benchmark harness drives the product; it imports no tests or benchmarks",
    ),
]
# Single modules allowed one import their room otherwise forbids, with the reason.
EXCEPTIONS = {
    ("client/embedded.py", "local_arm"): "the embedded default runs the local ARM for `dev`, `demo` and `local-arm`",
    ("client/embedded.py", "api"): "the embedded default runs the team service for `dev` and `demo --keep-running`",
    ("client/cli/api.py", "api"): "`starter.py api` runs the team service",
}


def _room(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.name


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module in OURS:  # `from client import cli` names a module of that package
                found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _python_files() -> list[Path]:
    skip = {".venv", "build", ".git", "node_modules"}
    return sorted(p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts))


def violations() -> list[str]:
    rules = {rule.room: rule for rule in RULES}
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        room = _room(path)
        tree = ast.parse(path.read_text(), filename=rel)
        if room == "tests":
            found.extend(_test_violations(rel, tree))
            continue
        rule = rules.get(room)
        if rule is None:
            continue
        for line, module in _imports(tree):
            top = module.split(".")[0]
            if top in OURS:
                if top in rule.allowed_ours or (rel, top) in EXCEPTIONS:
                    continue
                found.append(f"{rel}:{line}: imports {module}; rule for {room}: {rule.why}")
            elif (
                top not in STDLIB
                and top != "__future__"
                and rule.third_party is not None
                and top not in rule.third_party
            ):
                found.append(f"{rel}:{line}: imports {module}; rule for {room}: {rule.why}")
    return found


def _test_violations(rel: str, tree: ast.AST) -> list[str]:
    """Tests share helpers through tests.support only: no test module imports another, nor another folder's
    conftest (pytest gives every folder its own fixtures)."""
    found = []
    for line, module in _imports(tree):
        if module.split(".")[0] not in {"tests"}:
            continue
        if module == "tests.support" or module.startswith("tests.support."):
            continue
        found.append(f"{rel}:{line}: imports {module}; rule for tests: shared helpers live in tests/support")
    return found


def test_every_import_follows_the_layout_rules() -> None:
    problems = violations()
    assert not problems, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(problems)


def test_nothing_imports_worker_py() -> None:
    """worker.py assembles and runs the worker; the product never imports it (tests, the harness and benchmarks may)."""
    found = []
    for path in _python_files():
        room = _room(path)
        if room in {"tests", "bench", "harness", "worker.py"}:
            continue
        for line, module in _imports(ast.parse(path.read_text())):
            if module == "worker":
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert not found, f"worker.py is imported by {found}"


@pytest.mark.parametrize(
    ("room", "source", "expected"),
    [
        ("contract", "import services.codec\n", "imports services.codec; rule for contract"),
        ("workflows", "from activities.plan import PlanActivities\n", "imports activities.plan; rule for workflows"),
        ("services", "def f():\n    from client.cli import main\n", "imports client.cli; rule for services"),
        ("contract", "import azure.core\n", "imports azure.core; rule for contract"),
    ],
)
def test_a_new_violation_is_named(tmp_path: Path, room: str, source: str, expected: str, monkeypatch) -> None:
    """The checker itself: a planted import breaks the rule and the message names file, import and rule."""
    planted = ROOT / room / "_planted_violation_for_test.py"
    planted.write_text(source)
    try:
        problems = violations()
    finally:
        planted.unlink()
    assert any(p.startswith(f"{room}/_planted_violation_for_test.py:") and expected in p for p in problems), problems
