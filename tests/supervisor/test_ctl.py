"""Tests for ftpsup.supervisor.ctl: the control socket's requests, permissions and round trip."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import trio

from ftpsup.supervisor import ctl, ctl_serve


@pytest.mark.parametrize(
    "line",
    [b"", b"[]", b'{"command": "format-disk"}', b'{"command": "stop", "names": "ipv4"}', b"{"],
)
def test_bad_requests_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        ctl.parse_request(line)


def test_a_request_names_its_instances() -> None:
    line = b'{"command": "restart", "names": ["ipv6"]}'
    assert ctl.parse_request(line) == ctl.Request("restart", ("ipv6",))


def test_response_survives_the_wire() -> None:
    response = ctl.Response(False, ("ipv6: FATAL",), {"pid": 3})
    assert ctl.Response.from_line(response.to_line()) == response


def test_control_socket_is_owner_only_and_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.sock"
    path.write_text("stale")
    sock = ctl.bind_control_socket(path)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        sock.close()


def test_nothing_listening_is_not_running(tmp_path: Path) -> None:
    assert not ctl.is_running(tmp_path / "supervisor.sock")
    with pytest.raises(ctl.NotRunning):
        ctl.request(tmp_path / "supervisor.sock", ctl.Request("status"), timeout=5)


async def test_a_client_request_reaches_the_handler_and_gets_its_answer(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.sock"
    seen: list[ctl.Request] = []
    after: list[ctl.Request] = []

    async def handle(request: ctl.Request) -> ctl.Response:
        seen.append(request)
        return ctl.Response(True, (f"did {request.command}",), {"n": len(request.names)})

    sock = ctl.bind_control_socket(path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ctl_serve.serve_control, sock, handle, after.append)
        request = ctl.Request("stop", ("ipv4", "ipv6"))
        response = await trio.to_thread.run_sync(lambda: ctl.request(path, request, timeout=10))
        assert await trio.to_thread.run_sync(ctl.is_running, path)
        nursery.cancel_scope.cancel()
    assert response == ctl.Response(True, ("did stop",), {"n": 2})
    assert seen[0] == request
    assert after[0] == request
