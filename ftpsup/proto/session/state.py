"""The protocol state of one control connection, and the policy rules that read it.

Everything a reply depends on lives here as plain data: who is logged in, where they are,
TYPE, REST, a pending RNFR, EPSV ALL, the MLST facts, PBSZ/PROT, the failure counters and the
data connection being set up. Resources (the home's directory descriptors, the passive
socket, the running transfer) are the executor's; this state only knows that they exist.
Policy arrives as the instance's configuration, which is plain data too.
"""

from __future__ import annotations

import enum

import attrs

from ftpsup.proto.session.policy import SessionPolicy

MLST_FACTS_ALL = ("type", "size", "modify", "perm", "unique", "UNIX.mode")
ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})


class DataSetup(enum.Enum):
    """How the next transfer gets its data connection (PASV/EPSV or PORT/EPRT)."""

    NONE = "none"
    PASSIVE = "passive"
    ACTIVE = "active"


@attrs.define
class SessionState:
    config: SessionPolicy
    peer_ip: str
    ipv6: bool
    # Login
    pending_user: str | None = None
    user: str | None = None
    anonymous: bool = False
    user_may_write: bool = False
    umask: int = 0o022
    login_failures: int = 0
    unknown_before_login: int = 0
    # Protocol
    cwd: str = "/"
    ascii: bool = False
    rest: int = 0
    rename_from: str | None = None
    epsv_all: bool = False
    mlst_facts: tuple[str, ...] = MLST_FACTS_ALL
    data_setup: DataSetup = DataSetup.NONE
    active_target: tuple[str, int] | None = None
    # The running transfer: its verb and path (STAT reports them), None when idle.
    transfer: tuple[str, str] | None = None
    closing: bool = False
    # TLS (RFC 4217)
    control_tls: bool = False
    pbsz_set: bool = False
    prot_private: bool = False

    @property
    def logged_in(self) -> bool:
        return self.user is not None

    @property
    def log_user(self) -> str:
        return self.user or self.pending_user or "?"

    def write_allowed(self, verb: str) -> bool:
        """May this session run the write verb `verb`? (vsftpd's anon_* rules for anonymous)."""
        cfg = self.config
        if not cfg.write_enable:
            return False
        if not self.anonymous:
            return self.user_may_write
        if verb in ("STOR", "STOU", "APPE"):
            return cfg.anon_upload_enable
        if verb == "MKD":
            return cfg.anon_mkdir_write_enable
        return cfg.anon_other_write_enable

    def take_rest(self) -> int:
        offset, self.rest = self.rest, 0
        return offset

    def forget_data_setup(self) -> None:
        self.data_setup = DataSetup.NONE
        self.active_target = None

    def data_tls_forced(self) -> bool:
        cfg = self.config
        if not cfg.ssl_enable:
            return False
        return cfg.force_anon_data_ssl if self.anonymous else cfg.force_local_data_ssl

    def logout(self) -> None:
        self.user = None
        self.pending_user = None
        self.anonymous = False
        self.user_may_write = False
        self.cwd = "/"

    @property
    def family_number(self) -> int:
        """RFC 2428's network protocol number of the control connection."""
        return 2 if self.ipv6 else 1
