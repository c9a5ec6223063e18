"""The arrows between the parts point one way: records import no machinery; facts, checks, claims and
report formats import no transport, target, runner or lab loader; provision/ imports nothing of checker/."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MACHINERY = ("checker.transport", "checker.targets", "checker.runner", "checker.batch", "checker.lab",
             "checker.cli", "checker.labenv", "checker.multi", "provision", "paramiko", "vagrant")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_provision_imports_nothing_of_checker():
    for path in (REPO / "provision").glob("*.py"):
        assert not [m for m in imports(path) if m.split(".")[0] == "checker"], path


def test_records_facts_checks_and_reporters_import_no_machinery():
    paths = [REPO / "checker" / name for name in ("records.py", "facts.py", "checks.py", "units.py",
                                                 "exitcodes.py", "drift.py", "signing.py", "classroom.py")]
    paths += list((REPO / "checker" / "claims").glob("*.py")) + list((REPO / "checker" / "reporters").glob("*.py"))
    for path in paths:
        bad = [m for m in imports(path) if m.startswith(MACHINERY)]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_the_claims_package_only_lists_its_modules():
    tree = ast.parse((REPO / "checker" / "claims" / "__init__.py").read_text())
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert all(isinstance(n, ast.ImportFrom) for n in body)
