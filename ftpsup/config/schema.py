"""The configuration keys of an instance: InstanceConfig, and what each key accepts.

Theory of operation: InstanceConfig's attributes are the configuration keys, with their
defaults. What a key accepts is its type (KEY_KINDS: bool, int, octal, str or path), its field
metadata (a range for an integer, else 0..INT_MAX; octal; only in _shared.toml), and for a few
strings a rule of its own; `coerce` turns one raw TOML value into the attribute's value or
raises Invalid with the problem text. The checks are not attrs validators: those would run on
every construction and stop at the first problem, while the loader collects every problem of
every file. Reading files and layering them is config.load's, and judging a whole
configuration is config.check's.

Rules:
1. Key names and meanings follow vsftpd.conf wherever vsftpd has the option; values are TOML
   types (true/false, not YES/NO).
2. Relative paths are resolved against the directory of the file that holds them (`base`).
3. Constructing an InstanceConfig directly (as tests do) checks nothing; only the loader does.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path

import attrs

from ftpsup.proto.numbers import parse_uint

SHARED_FILE = "_shared.toml"
NAME_PATTERN = "[a-z0-9][a-z0-9_-]*"

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
INT_MAX = 2**31 - 1  # keeps every count and timeout inside what C-level APIs accept

# Field metadata the loader reads: "range" (lo, hi) for an integer key (without one: 0..INT_MAX),
# "octal" for a mode or umask, "shared" for a key only _shared.toml may set (one for all).
_SHARED = {"shared": True}
_OCTAL = {"octal": True}


def _range(lo: int, hi: int) -> dict[str, tuple[int, int]]:
    return {"range": (lo, hi)}


@attrs.frozen(kw_only=True)
class InstanceConfig:
    """The settings of one instance; attribute names are the configuration keys.

    Only the loader validates values: constructing one directly (as tests do) checks nothing.
    """

    name: str
    source: Path
    config_dir: Path
    # Listening
    listen_address: str = "0.0.0.0"
    listen_port: int = attrs.field(default=21, metadata=_range(1, 65535))
    max_clients: int = 2000
    max_per_ip: int = 50
    # How many leading bits of an IPv6 address are one client for the per-address limits; below
    # /32 one key would stand for a whole regional registry's block.
    per_ip_ipv6_prefix: int = attrs.field(default=64, metadata=_range(32, 128))
    max_command_length: int = attrs.field(default=4096, metadata=_range(512, 65536))
    # Passive data connections
    pasv_enable: bool = True
    pasv_min_port: int = attrs.field(default=10080, metadata=_range(1024, 65535))
    pasv_max_port: int = attrs.field(default=10100, metadata=_range(1024, 65535))
    pasv_address: str = ""
    pasv_addr_resolve: bool = False
    pasv_promiscuous: bool = False
    accept_timeout: int = attrs.field(default=60, metadata=_range(1, INT_MAX))
    max_pasv_per_ip: int = 10
    # Active data connections
    port_enable: bool = True
    connect_from_port_20: bool = False
    ftp_data_port: int = attrs.field(default=20, metadata=_range(1, 65535))
    port_promiscuous: bool = False
    connect_timeout: int = attrs.field(default=60, metadata=_range(1, INT_MAX))
    # Timeouts
    data_connection_timeout: int = attrs.field(default=300, metadata=_range(1, INT_MAX))
    idle_session_timeout: int = attrs.field(default=300, metadata=_range(1, INT_MAX))
    login_timeout: int = attrs.field(default=60, metadata=_range(1, 3600))
    # Access
    local_enable: bool = True
    write_enable: bool = False
    local_umask: int = attrs.field(default=0o077, metadata=_OCTAL)
    file_open_mode: int = attrs.field(default=0o666, metadata=_OCTAL)
    chmod_enable: bool = True
    anonymous_enable: bool = False
    anon_root: Path | None = None
    anon_upload_enable: bool = False
    anon_mkdir_write_enable: bool = False
    anon_other_write_enable: bool = False
    anon_umask: int = attrs.field(default=0o077, metadata=_OCTAL)
    no_anon_password: bool = False
    chroot_local_user: bool = True
    delay_failed_login: int = 1
    max_login_fails: int = attrs.field(default=3, metadata=_range(1, INT_MAX))
    hide_ids: bool = False
    use_localtime: bool = False
    ftpd_banner: str = ""
    dirmessage_enable: bool = False
    message_file: str = ".message"
    # Process: the account an instance started by root drops to once it has loaded.
    nopriv_user: str = "ftpsup"
    # Shared-only (before the logs, whose defaults derive from log_dir)
    # No vsftpd equivalent: the explicit, logged opt-in to instances running as root.
    run_as_root: bool = attrs.field(default=False, metadata=_SHARED)
    user_db_file: Path = attrs.field(metadata=_SHARED)
    state_dir: Path = attrs.field(default=Path("/run/ftpsup"), metadata=_SHARED)
    log_dir: Path = attrs.field(default=Path("/var/log/ftpsup"), metadata=_SHARED)
    # Shared-only: the supervisor's restart policy (supervisord's names and meanings).
    startsecs: int = attrs.field(default=1, metadata={**_range(0, 3600), **_SHARED})
    startretries: int = attrs.field(default=3, metadata={**_range(0, 1000), **_SHARED})
    stopwaitsecs: int = attrs.field(default=30, metadata={**_range(0, 86400), **_SHARED})
    # Logs
    vsftpd_log_file: Path = attrs.field()
    xferlog_enable: bool = False
    xferlog_file: Path = attrs.field()
    xferlog_std_format: bool = False
    log_ftp_protocol: bool = False
    # TLS (FTPS: RFC 4217 explicit, and implicit)
    ssl_enable: bool = False
    implicit_ssl: bool = False
    allow_anon_ssl: bool = False
    force_local_logins_ssl: bool = True
    force_local_data_ssl: bool = True
    force_anon_logins_ssl: bool = False
    force_anon_data_ssl: bool = False
    ssl_tlsv1_2: bool = True
    ssl_tlsv1_3: bool = True
    # Accepted so a migrated vsftpd.conf loads; true is refused (insecure protocol versions).
    ssl_sslv2: bool = False
    ssl_sslv3: bool = False
    ssl_tlsv1: bool = False
    ssl_tlsv1_1: bool = False
    ssl_ciphers: str = "HIGH"
    rsa_cert_file: Path = attrs.field()
    rsa_private_key_file: Path = attrs.field()
    ca_certs_file: Path | None = None
    ssl_request_cert: bool = False
    require_cert: bool = False
    validate_cert: bool = False
    require_ssl_reuse: bool = True
    ssl_reuse_scope: str = "user"
    strict_ssl_read_eof: bool = True
    strict_ssl_write_shutdown: bool = False
    tls_handshake_timeout: int = attrs.field(default=30, metadata=_range(1, 3600))
    max_tls_handshakes_per_ip: int = 8

    @user_db_file.default
    def _default_user_db_file(self) -> Path:
        return self.config_dir / "users.toml"

    @vsftpd_log_file.default
    def _default_vsftpd_log_file(self) -> Path:
        return self.log_dir / self.name / "ftpsup.log"

    @xferlog_file.default
    def _default_xferlog_file(self) -> Path:
        return self.log_dir / self.name / "xferlog"

    @rsa_cert_file.default
    def _default_rsa_cert_file(self) -> Path:
        return self.config_dir / "tls" / "ftpsup-cert.pem"

    @rsa_private_key_file.default
    def _default_rsa_private_key_file(self) -> Path:
        return self.config_dir / "tls" / "ftpsup-key.pem"

    @property
    def is_ipv6(self) -> bool:
        """Whether the instance listens on an IPv6 address."""
        return ipaddress.ip_address(self.listen_address).version == 6


attrs.resolve_types(InstanceConfig)

_IDENTITY = frozenset({"name", "source", "config_dir"})
SHARED_ONLY = frozenset(f.name for f in attrs.fields(InstanceConfig) if f.metadata.get("shared"))
OCTAL_KEYS = frozenset(f.name for f in attrs.fields(InstanceConfig) if f.metadata.get("octal"))
# Integer keys not listed here accept 0..INT_MAX.
RANGES: dict[str, tuple[int, int]] = {
    f.name: f.metadata["range"] for f in attrs.fields(InstanceConfig) if "range" in f.metadata
}
# ssl_reuse_scope: whose TLS sessions a data connection may resume (server/tls_sessions.py).
SSL_REUSE_SCOPES = ("user", "connection")
# Account names as useradd(8) accepts them.
_ACCOUNT_RE = re.compile(r"[a-z_][a-z0-9_-]{0,30}\$?")


def _kinds() -> dict[str, str]:
    by_type: dict[object, str] = {bool: "bool", int: "int", str: "str"}
    kinds: dict[str, str] = {}
    for field in attrs.fields(InstanceConfig):
        if field.name not in _IDENTITY:
            kind = by_type.get(field.type, "path")
            kinds[field.name] = "octal" if field.name in OCTAL_KEYS else kind
    return kinds


# Every configuration key -> "bool" | "int" | "octal" | "str" | "path".
KEY_KINDS: dict[str, str] = _kinds()

ROOT_ACCOUNT = (
    "root is not an unprivileged account; to run the instances as root on purpose, "
    "set run_as_root = true"
)


class Invalid(Exception):
    """A value or file that cannot be used; the message is the problem text."""


def show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:40] + "...", ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    return "an array" if isinstance(value, list) else "a date or time"


def _in_range(value: int, lo: int, hi: int) -> int:
    if lo <= value <= hi:
        return value
    if hi != INT_MAX:
        raise Invalid(f"{value} is out of range {lo}..{hi}")
    if value < lo:
        raise Invalid(f"{value} is below the minimum of {lo}")
    raise Invalid(f"{value} is above the maximum of {hi}")


def _octal(raw: object) -> int:
    # vsftpd.conf writes umasks as "022"; TOML has no leading-zero integers, hence the string.
    if isinstance(raw, str):
        parsed = parse_uint(raw, INT_MAX, base=8)
        if parsed is None:
            raise Invalid(f"{show(raw)} is not an octal number")
        value = parsed
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise Invalid(f'expected an octal number such as 0o022 or "022", not {show(raw)}')
    if not 0 <= value <= 0o777:
        raise Invalid(f"{value:o} (octal) is out of range 000..777")
    return value


def coerce(key: str, raw: object, base: Path) -> object:
    kind = KEY_KINDS[key]
    if kind == "bool":
        if not isinstance(raw, bool):
            raise Invalid(f"use true or false, not {show(raw)}")
        if key == "chroot_local_user" and not raw:
            raise Invalid("ftpsup always confines users to their home; set true or remove it")
        return raw
    if kind == "octal":
        return _octal(raw)
    if kind == "int":
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise Invalid(f"expected an integer, not {show(raw)}")
        return _in_range(raw, *RANGES.get(key, (0, INT_MAX)))
    if not isinstance(raw, str):
        raise Invalid(f"expected a string, not {show(raw)}")
    if _CONTROL_RE.search(raw):
        raise Invalid("contains a control character")
    if kind == "path":
        if not raw:
            raise Invalid("must not be empty")
        # Lexical only: "../var" from instances.d reads as a sibling, and symlinks stay as set.
        return Path(os.path.normpath(base / raw))
    if key == "listen_address":
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            raise Invalid(f"{show(raw)} is not a numeric ipv4 or ipv6 address") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # An ipv6 socket on a mapped address accepts nothing (Linux refuses the bind).
            mapped = str(address.ipv4_mapped)
            raise Invalid(f'{show(raw)} is an ipv4-mapped ipv6 address; use "{mapped}"')
    if key == "ssl_reuse_scope" and raw not in SSL_REUSE_SCOPES:
        raise Invalid(f'{show(raw)} is not "user" or "connection"')
    if key == "message_file" and ("/" in raw or raw in ("", ".", "..")):
        raise Invalid(f"{show(raw)} must be a file name, not a path")
    if key == "nopriv_user" and not raw:
        raise Invalid("must name an account; to run the instances as root, set run_as_root = true")
    if key == "nopriv_user" and not _ACCOUNT_RE.fullmatch(raw):
        raise Invalid(f"{show(raw)} is not an account name")
    return raw
