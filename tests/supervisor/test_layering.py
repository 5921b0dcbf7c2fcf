"""The supervisor is the privileged parent: it never imports the FTP code it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_layering import PACKAGE, imported_modules

ALLOWED = (
    "ftpsup.users",
    "ftpsup.config",
    "ftpsup.ports",
    "ftpsup.logs",
    "ftpsup.log_files",
    "ftpsup.errors",
    "ftpsup.tls.certs",
    "ftpsup.tls.contexts",
    "ftpsup.listeners",
    "ftpsup.supervisor",
    # A pure parser with no imports of its own: the one way ftpsup reads a number.
    "ftpsup.proto.numbers",
)


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "supervisor").glob("*.py")), ids=lambda p: p.name
)
def test_supervisor_module_imports_only_the_shared_middle_layer(path: Path) -> None:
    ours = {m for m in imported_modules(path) if m.startswith("ftpsup.")}
    bad = sorted(m for m in ours if not m.startswith(ALLOWED))
    assert bad == [], f"{path.name} imports {bad}"
