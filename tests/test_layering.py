"""The dependency rule of docs/development.md, checked on the source: proto/ stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ftpsup"
FORBIDDEN_IN_PROTO = {
    "trio",
    "socket",
    "ssl",
    "OpenSSL",
    "os",
    "time",
    "logging",
    "threading",
    "select",
    "subprocess",
    "ftpsup.server",
    "ftpsup.supervisor",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN_IN_PROTO)


@pytest.mark.parametrize("path", sorted((PACKAGE / "proto").glob("*.py")), ids=lambda p: p.name)
def test_proto_module_imports_no_io(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if _forbidden(m))
    assert bad == [], f"{path.name} imports {bad}"


def test_nothing_imports_cli() -> None:
    importers = [
        p.name
        for p in PACKAGE.rglob("*.py")
        if p.parent.name != "cli"
        and p.name != "__main__.py"
        and any(m.startswith("ftpsup.cli") for m in imported_modules(p))
    ]
    assert importers == []


def test_pure_layer_does_not_import_server() -> None:
    pure = [
        "users/accounts.py",
        "config/schema.py",
        "config/load.py",
        "config/cross.py",
        "config/check.py",
        "users/store.py",
        "users/hashing.py",
        "users/directory.py",
        "ports.py",
        "logs.py",
        "errors.py",
        "cli/user.py",
        "tls/certs.py",
        "tls/contexts.py",
        "users/login_cache.py",
        "listeners.py",
        "address_slots.py",
    ]
    for name in pure:
        bad = sorted(m for m in imported_modules(PACKAGE / name) if m.startswith("ftpsup.server"))
        assert bad == [], f"{name} imports {bad}"
