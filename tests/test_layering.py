"""The dependency rule of docs/development.md, checked on the source: who may import whom.

Every layer of ftpsup (a package, ftpsup/<name>/, or a top-level module, ftpsup/<name>.py) has
one row in MAY_IMPORT: the other layers it may import. A layer may always import itself, and
anyone may import the root package (`from ftpsup import __version__`). Both spellings count:
`from ftpsup.server.fs import JailedFs` and `from ftpsup import server` import the server
layer. A new layer fails the test until it has its row.

proto/ is pure besides: no I/O module of the standard library either (FORBIDDEN_IN_PROTO).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ftpsup"

# The middle layer that the supervisor and the instances share: plain modules, no process.
_SHARED = {"errors", "ports", "address_slots", "listeners", "jsonlines", "logs", "log_files"}

MAY_IMPORT: dict[str, set[str]] = {
    # Pure, sans-I/O FTP: bytes and strings in, values out.
    "proto": set(),
    # Top-level modules, each one job.
    "errors": set(),
    "ports": set(),
    "address_slots": set(),
    "jsonlines": set(),
    "logs": set(),
    "listeners": {"errors"},
    "log_files": {"logs"},
    # Configuration. config/check.py is the one judge of a config dir: it reads the user
    # store and the certificates, so config reaches into users and tls (and they into the
    # schema: a cycle between packages, never between modules).
    "config": {"proto", "errors", "users", "tls"},
    "tls": {"config", "errors"},
    "users": {"config", "errors"},
    # One instance's I/O, on trio. Never the supervisor, never the command line.
    "server": {"proto", "config", "tls", "users", *_SHARED},
    # The privileged parent: never the FTP code it runs (server), never TLS.
    "supervisor": {"proto", "config", "users", *_SHARED},
    # The command line may import anything; nothing but __main__ imports it.
    "cli": {"proto", "config", "tls", "users", "server", "supervisor", *_SHARED},
    "__main__": {"cli"},
}

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
}

ROOT = "__init__"  # the root package itself: __version__


def layer_of(root: Path, path: Path) -> str:
    """The layer a source file belongs to: its package, or its own name at the top."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name `path` imports; `from ftpsup import x` gives ftpsup.x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("." * node.level + (node.module or ""))
            elif node.module == "ftpsup":
                names.update(f"ftpsup.{alias.name}" for alias in node.names)
            elif node.module:
                names.add(node.module)
    return names


def imported_layers(root: Path, path: Path) -> set[str]:
    """The ftpsup layers `path` imports (ROOT for the root package's own names)."""
    layers = set()
    for module in imported_modules(path):
        parts = module.split(".")
        if parts[0] != "ftpsup" or len(parts) == 1:
            continue
        name = parts[1]
        is_layer = (root / f"{name}.py").exists() or (root / name / "__init__.py").exists()
        layers.add(name if is_layer and name != ROOT else ROOT)
    return layers


def violations(root: Path) -> list[str]:
    """Every import in the package at `root` that the rules forbid, as `file: reason`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root)
        layer = layer_of(root, path)
        if layer == ROOT:
            continue
        if layer not in MAY_IMPORT:
            found.append(f"{where}: layer {layer!r} has no row in MAY_IMPORT")
            continue
        modules = imported_modules(path)
        found += [f"{where}: relative import {m}" for m in sorted(modules) if m.startswith(".")]
        allowed = MAY_IMPORT[layer] | {layer, ROOT}
        found += [
            f"{where}: {layer} may not import {other}"
            for other in sorted(imported_layers(root, path) - allowed)
        ]
        if layer == "proto":
            io = {m for m in modules if m.split(".")[0] in FORBIDDEN_IN_PROTO}
            found += [f"{where}: proto may not import {m} (I/O)" for m in sorted(io)]
    return found


def test_every_import_in_ftpsup_keeps_the_layering() -> None:
    assert violations(PACKAGE) == []


def test_the_table_names_only_layers_that_exist() -> None:
    layers = {layer_of(PACKAGE, p) for p in PACKAGE.rglob("*.py")} - {ROOT}
    named = set(MAY_IMPORT) | {other for row in MAY_IMPORT.values() for other in row}
    assert named - layers == set()


def test_nothing_imports_cli_but_main() -> None:
    importers = sorted(layer for layer, row in MAY_IMPORT.items() if "cli" in row)
    assert importers == ["__main__"]


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("proto/bad.py", "from ftpsup import server\n", "proto may not import server"),
        ("proto/bad.py", "import ftpsup.server.fs\n", "proto may not import server"),
        ("proto/bad.py", "import socket\n", "proto may not import socket (I/O)"),
        ("proto/bad.py", "from os import path\n", "proto may not import os (I/O)"),
        ("supervisor/bad.py", "def f():\n    from ftpsup import server\n", "may not import server"),
        ("users/bad.py", "from ftpsup.cli import main\n", "users may not import cli"),
        ("server/bad.py", "from . import fs\n", "relative import ."),
        ("newlayer.py", "", "layer 'newlayer' has no row in MAY_IMPORT"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, name: str, text: str, expected: str) -> None:
    root = tmp_path / "ftpsup"
    for package in ("proto", "server", "supervisor", "users", "cli"):
        _write(root, f"{package}/__init__.py", "")
    _write(root, "__init__.py", '__version__ = "0"\n')
    _write(root, "proto/good.py", "import re\nfrom ftpsup import __version__\n")
    _write(root, "server/fs.py", "from ftpsup.proto.good import re\n")
    assert violations(root) == []
    _write(root, name, text)
    found = violations(root)
    assert len(found) == 1
    assert found[0].startswith(f"{name}: ")
    assert found[0].endswith(expected)
