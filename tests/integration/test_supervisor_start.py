"""A supervisor of the test's own, started and stopped as an admin does: stop all leaves nothing
behind, a bad config starts nothing, and port 21 without privilege says what to do.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest

from tests.integration.supervisors import (
    HOSTS,
    TIMEOUT,
    alive,
    own_supervisor,
)

# -- starting and stopping a supervisor of one's own ---------------------------------------


def test_stop_all_leaves_no_process_socket_or_pid_file() -> None:
    with own_supervisor() as s:
        assert s.ftpsup("start", "all").returncode == 0
        data = s.status()
        pids = [data["supervisor"]["pid"], *(e["pid"] for e in data["instances"])]
        assert all(alive(pid) for pid in pids)
        result = s.ftpsup("stop", "all")
        assert result.returncode == 0, result.stdout + result.stderr
        assert [pid for pid in pids if alive(pid)] == []
        assert sorted(p.name for p in s.run_dir.iterdir()) == ["ports"]
        for host in HOSTS.values():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((host, s.port), timeout=5).close()
        assert s.ftpsup("status").returncode == 3


def test_start_with_a_bad_config_prints_every_problem_and_starts_nothing() -> None:
    with own_supervisor() as s:
        (s.etc / "ipv4.toml").write_text('listen_address = "127.0.0.1"\nlisten_port = 0\n')
        (s.etc / "ipv6.toml").write_text('listen_address = "::1"\nmax_clients = "many"\n')
        result = s.ftpsup("start", "all")
        assert result.returncode == 2
        assert "ipv4.toml: listen_port: 0 is out of range" in result.stderr
        assert "ipv6.toml: max_clients: expected an integer" in result.stderr
        assert not (s.run_dir / "supervisor.pid").exists()
        assert not (s.run_dir / "supervisor.sock").exists()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_port_21_without_privilege_says_what_to_do() -> None:
    with own_supervisor() as s:
        s.set_key("ipv4", "listen_port", 21)
        result = subprocess.run(
            ["setpriv", "--bounding-set=-net_bind_service", sys.executable, "-m", "ftpsup"]
            + ["--config-dir", str(s.etc), "start", "all"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == 2
        assert "port 21 needs root or CAP_NET_BIND_SERVICE" in result.stderr
        assert "use a port of 1024 or above" in result.stderr
        assert not (s.run_dir / "supervisor.pid").exists()
