"""Data-connection verbs: PORT PASV EPRT EPSV TYPE STRU MODE REST ABOR, and the transfers
RETR STOR STOU APPE LIST NLST MLSD (RFC 959, RFC 2428, RFC 3659).

Rules:
- A transfer is checked (path, TLS policy, a data connection set up, the file opened) and
  answered at once when it cannot start; only then does 150 go out and the executor run it
  (StartTransfer). Its end comes back as FtpSession.transfer_ended, which gives the final
  reply: 226 only when every byte moved.
- PASV and PORT carry IPv4 addresses only (RFC 2428); after EPSV ALL only EPSV sets up a data
  connection (RFC 2428 §4).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ftpsup.proto import addresses, paths
from ftpsup.proto.numbers import parse_uint
from ftpsup.proto.replies import epsv_reply, pasv_reply
from ftpsup.proto.session.actions import (
    AbortTransfer,
    ClosePassive,
    Direction,
    DiscardTransfer,
    FsError,
    NotADirectory,
    OpenPassive,
    PassiveOpened,
    PassiveRefusal,
    PassiveRefused,
    PrepareTransfer,
    StartTransfer,
    TransferReady,
)
from ftpsup.proto.session.errors import os_error_reply
from ftpsup.proto.session.state import DataSetup
from ftpsup.proto.session.types import Steps
from ftpsup.proto.session.verbs_info import resolved, split_list_arg
from ftpsup.proto.session.verbs_tls import data_tls_refusal

if TYPE_CHECKING:
    from ftpsup.proto.session.machine import FtpSession

# The largest file offset Linux takes (off_t): REST beyond it could never be honoured.
MAX_OFFSET = 2**63 - 1

PASSIVE_REFUSALS = {
    # No number in the text: a 425 must never look like it names a port.
    PassiveRefusal.OVER_ADDRESS_LIMIT: "Too many passive ports held from your address; "
    "try again later.",
    PassiveRefusal.EXHAUSTED: "No passive port available; try again later.",
    PassiveRefusal.SYSTEM: "Cannot open a passive data connection now; try again later.",
}


def _refuse_v4_verb_on_v6(m: FtpSession, verb: str) -> bool:
    # RFC 2428 §2/§3: PORT and PASV carry IPv4 addresses only; an IPv6 client uses EPRT/EPSV.
    if m.state.ipv6:
        m.reply(522, f"{verb} is IPv4 only; use {'EPSV' if verb == 'PASV' else 'EPRT'} (2).")
        return True
    if m.state.epsv_all:
        # RFC 2428 §4: after EPSV ALL every other data-connection setup command is refused.
        m.reply(503, f"{verb} not allowed after EPSV ALL.")
        return True
    return False


def _enter_passive(m: FtpSession, extended: bool) -> Steps | None:
    if not m.config.pasv_enable:
        m.reply(502, "Passive mode is disabled on this server.")
        return None
    return _open_passive(m, extended)


def _open_passive(m: FtpSession, extended: bool) -> Steps:
    st = m.state
    st.forget_data_setup()
    outcome = yield OpenPassive()
    if isinstance(outcome, PassiveRefused):
        m.reply(425, PASSIVE_REFUSALS[outcome.reason])
        return
    assert isinstance(outcome, PassiveOpened)
    st.data_setup = DataSetup.PASSIVE
    m.send(epsv_reply(outcome.port) if extended else pasv_reply(outcome.host, outcome.port))


def passive(m: FtpSession, arg: str) -> Steps | None:
    if _refuse_v4_verb_on_v6(m, "PASV"):
        return None
    return _enter_passive(m, extended=False)


def extended_passive(m: FtpSession, arg: str) -> Steps | None:
    st = m.state
    try:
        request = addresses.parse_epsv_arg(arg)
    except addresses.AddressError as exc:
        m.reply(exc.reply_code, exc.message)
        return None
    if request == "ALL":
        st.epsv_all = True
        m.reply(200, "EPSV ALL ok.")
        return None
    if isinstance(request, int) and request != st.family_number:
        m.reply(522, f"Network protocol not supported, use ({st.family_number})")
        return None
    return _enter_passive(m, extended=True)


def _set_active(m: FtpSession, target_ip: str, port: int, verb: str) -> None:
    st = m.state
    try:
        host = addresses.resolve_active_target(
            st.peer_ip, target_ip, port, promiscuous=m.config.port_promiscuous, verb=verb
        )
    except addresses.AddressError as exc:
        m.log(
            "warning",
            "%s to %s:%d refused for %s: %s",
            verb,
            target_ip,
            port,
            st.peer_ip,
            exc.message,
        )
        m.reply(exc.reply_code, exc.message)
        return
    if st.data_setup is DataSetup.PASSIVE:
        m.act(ClosePassive())
    st.data_setup = DataSetup.ACTIVE
    st.active_target = (host, port)
    m.reply(
        200, f"{verb} command successful. Consider using {'PASV' if verb == 'PORT' else 'EPSV'}."
    )


def port(m: FtpSession, arg: str) -> None:
    if _refuse_v4_verb_on_v6(m, "PORT"):
        return
    if not m.config.port_enable:
        m.reply(502, "Active mode is disabled on this server; use PASV.")
        return
    try:
        host, number = addresses.parse_port_arg(arg)
    except addresses.AddressError as exc:
        m.reply(exc.reply_code, exc.message)
        return
    _set_active(m, host, number, "PORT")


def extended_port(m: FtpSession, arg: str) -> None:
    st = m.state
    if st.epsv_all:
        m.reply(503, "EPRT not allowed after EPSV ALL.")
        return
    if not m.config.port_enable:
        m.reply(502, "Active mode is disabled on this server; use EPSV.")
        return
    try:
        family, host, number = addresses.parse_eprt_arg(arg)
    except addresses.AddressError as exc:
        m.reply(exc.reply_code, exc.message)
        return
    if family != st.family_number:
        m.reply(522, f"Network protocol not supported, use ({st.family_number})")
        return
    _set_active(m, host, number, "EPRT")


def representation_type(m: FtpSession, arg: str) -> None:
    words = arg.upper().split()
    if words in (["A"], ["A", "N"]):
        m.state.ascii = True
        m.reply(200, "Switching to ASCII mode.")
    elif words in (["I"], ["L", "8"], ["L8"]):
        m.state.ascii = False
        m.reply(200, "Switching to Binary mode.")
    else:
        m.reply(504, "Unsupported TYPE; use A or I.")


def structure(m: FtpSession, arg: str) -> None:
    if arg.strip().upper() == "F":
        m.reply(200, "Structure set to F.")
    else:
        m.reply(504, "Only file structure (F) is supported.")


def transfer_mode(m: FtpSession, arg: str) -> None:
    if arg.strip().upper() == "S":
        m.reply(200, "Mode set to S.")
    else:
        m.reply(504, "Only stream mode (S) is supported.")


def restart(m: FtpSession, arg: str) -> None:
    offset = parse_uint(arg.strip(), MAX_OFFSET)
    if offset is None:
        m.reply(501, "REST requires a non-negative byte offset.")
        return
    m.state.rest = offset
    m.reply(350, f"Restart position accepted ({offset}).")


def abort(m: FtpSession, arg: str) -> Steps | None:
    st = m.state
    if st.transfer is None:
        if st.data_setup is DataSetup.PASSIVE:
            m.act(ClosePassive())
        st.forget_data_setup()
        m.reply(225, "No transfer to ABOR.")
        return None
    return _abort(m)


def _abort(m: FtpSession) -> Steps:
    # RFC 959 §4.1.3: the transfer's own reply is 426, then ABOR itself is answered 226.
    yield AbortTransfer()
    m.reply(226, "ABOR successful.")


# -- transfers ----------------------------------------------------------------------------


def _may_start(m: FtpSession) -> bool:
    refusal = data_tls_refusal(m.state)
    if refusal is not None:
        m.send(refusal)
        return False
    if m.state.data_setup is DataSetup.NONE:
        m.reply(425, "Use PORT or PASV first.")
        return False
    return True


def _transfer(
    m: FtpSession, verb: str, direction: Direction, arg: str, *, offset: int = 0, flags: str = ""
) -> Steps | None:
    vpath = resolved(m, arg)
    if vpath is None or not _may_start(m):
        return None
    return _run(m, PrepareTransfer(verb, direction, vpath, offset, flags))


def _run(m: FtpSession, prepare: PrepareTransfer) -> Steps:
    st = m.state
    outcome = yield prepare
    if isinstance(outcome, NotADirectory):
        m.reply(501, f"{prepare.verb} needs a directory.")
        return
    if isinstance(outcome, FsError):
        if (
            prepare.offset
            and outcome.errno == errno.EINVAL
            and prepare.direction is Direction.STORE
        ):
            # RFC 3659 §5.5: a restart marker past the end of the file is 554, as for RETR.
            m.reply(554, f"Restart offset {prepare.offset} is beyond the end of the file.")
        else:
            m.send(os_error_reply(outcome.errno))
        return
    assert isinstance(outcome, TransferReady)
    if prepare.direction is Direction.RETRIEVE and prepare.offset > outcome.size:
        m.act(DiscardTransfer())
        m.reply(
            554,
            f"Restart offset {prepare.offset} is beyond the end of the file ({outcome.size}).",
        )
        return
    m.reply(150, _opening(st.ascii, prepare, outcome))
    st.transfer = (prepare.verb, outcome.path)
    m.act(
        StartTransfer(
            prepare.verb,
            outcome.path,
            ascii=st.ascii,
            private=st.prot_private,
            # Set with ACTIVE only, and forgotten with it (SessionState.forget_data_setup).
            active_target=st.active_target,
        )
    )


def _opening(ascii_mode: bool, prepare: PrepareTransfer, ready: TransferReady) -> str:
    if prepare.direction is Direction.RETRIEVE:
        mode = "ASCII" if ascii_mode else "BINARY"
        name = paths.split(ready.path)[1]
        return f"Opening {mode} mode data connection for {name} ({ready.size} bytes)."
    if prepare.direction is Direction.UNIQUE:
        # RFC 1123 §4.1.2.9: the 150 reply names the file as "FILE: name".
        return f"FILE: {paths.split(ready.path)[1]}"
    if prepare.direction is Direction.LISTING:
        return "Here comes the directory listing."
    return "Ok to send data."


def retrieve(m: FtpSession, arg: str) -> Steps | None:
    offset = m.state.take_rest()
    return _transfer(m, "RETR", Direction.RETRIEVE, arg, offset=offset)


def store(m: FtpSession, arg: str) -> Steps | None:
    offset = m.state.take_rest()
    return _transfer(m, "STOR", Direction.STORE, arg, offset=offset)


def append(m: FtpSession, arg: str) -> Steps | None:
    m.state.take_rest()
    return _transfer(m, "APPE", Direction.APPEND, arg)


def store_unique(m: FtpSession, arg: str) -> Steps | None:
    m.state.take_rest()
    return _transfer(m, "STOU", Direction.UNIQUE, arg.strip() or "ftpsup")


def _listing(m: FtpSession, verb: str, arg: str) -> Steps | None:
    m.state.take_rest()
    flags, target = split_list_arg(arg) if verb != "MLSD" else ("", arg)
    return _transfer(m, verb, Direction.LISTING, target, flags=flags)


def list_(m: FtpSession, arg: str) -> Steps | None:
    return _listing(m, "LIST", arg)


def name_list(m: FtpSession, arg: str) -> Steps | None:
    return _listing(m, "NLST", arg)


def machine_list_dir(m: FtpSession, arg: str) -> Steps | None:
    return _listing(m, "MLSD", arg)
