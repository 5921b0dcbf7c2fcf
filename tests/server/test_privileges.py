"""The pure parts of ftpsup.server.privileges: /proc parsing, the expected identity, preload.

The drop itself is tested for real, as root, in tests/integration/test_privileges.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ftpsup.server import privileges
from ftpsup.users.accounts import Account

STATUS = """\
Name:\tpython3
Umask:\t0022
State:\tS (sleeping)
Uid:\t998\t998\t998\t998
Gid:\t997\t997\t997\t997
Groups:\t
CapInh:\t0000000000000000
CapPrm:\t0000000000000400
CapEff:\t0000000000000400
CapBnd:\t000001fffeffffff
CapAmb:\t0000000000000000
NoNewPrivs:\t1
"""
ACCOUNT = Account("ftpsup", 998, 997)
BIND = 1 << privileges.CAP_NET_BIND_SERVICE


def test_read_credentials_parses_ids_groups_and_capability_masks(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(STATUS.replace("Groups:\t", "Groups:\t0 27"))
    creds = privileges.read_credentials(status)
    assert creds == privileges.Credentials(
        uids=(998,) * 4,
        gids=(997,) * 4,
        groups=(0, 27),
        cap_inh=0,
        cap_prm=BIND,
        cap_eff=BIND,
        cap_amb=0,
        no_new_privs=1,
    )


def test_the_expected_identity_has_no_problem(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(STATUS)
    creds = privileges.read_credentials(status)
    assert privileges.credential_problems(creds, ACCOUNT, BIND) == []


def test_every_leftover_privilege_is_a_problem(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(
        STATUS.replace("Uid:\t998\t998\t998\t998", "Uid:\t998\t998\t0\t998")
        .replace("Groups:\t", "Groups:\t0")
        .replace("CapAmb:\t0000000000000000", "CapAmb:\t0000000000000400")
        .replace("NoNewPrivs:\t1", "NoNewPrivs:\t0")
    )
    creds = privileges.read_credentials(status)
    # Without connect_from_port_20 even CAP_NET_BIND_SERVICE is too much.
    assert privileges.credential_problems(creds, ACCOUNT, 0) == [
        "Uid is (998, 998, 0, 998), not (998, 998, 998, 998)",
        "Groups is (0,), not ()",
        "CapAmb is 1024, not 0",
        "CapPrm is 1024, not 0",
        "CapEff is 1024, not 0",
        "NoNewPrivs is 0, not 1",
    ]


def test_only_a_privileged_data_port_keeps_cap_net_bind_service() -> None:
    assert not privileges.needs_bind_service(False, 20)
    assert privileges.needs_bind_service(True, 20) == (_unprivileged_port_start() > 20)
    assert not privileges.needs_bind_service(True, 65535)


def _unprivileged_port_start() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())


def test_preload_imports_every_module_the_server_uses_before_the_drop() -> None:
    # After the drop the package directory may be unreadable: a module first imported then
    # would fail. Run as `ftpsup serve` does, then list what was never imported.
    ftpsup = Path(privileges.__file__).parent.parent
    # Every module of the packages a session reaches (server with its subpackages, tls,
    # users; a package's __init__.py stands for the package), and every top-level module:
    # the command line's packages alone are never needed after the drop.
    expected = sorted(
        ".".join(("ftpsup", *p.relative_to(ftpsup).with_suffix("").parts)).removesuffix(".__init__")
        for package in ("server", "tls", "users")
        for p in (ftpsup / package).rglob("*.py")
    )
    expected += sorted(f"ftpsup.{p.stem}" for p in ftpsup.glob("[!_]*.py"))
    # What the stdlib imports on first use: getaddrinfo's idna codec, strptime.
    expected += ["encodings.idna", "stringprep", "unicodedata", "_strptime"]
    code = (
        "import sys\n"
        "import ftpsup.cli.main, ftpsup.server.instance, ftpsup.listeners\n"
        "from ftpsup.server import privileges\n"
        "privileges.preload()\n"
        f"print(' '.join(m for m in {expected!r} if m not in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == []
