"""Load and validate instance configuration: instances.d/<name>.toml plus _shared.toml.

A config directory holds one TOML file per instance (the instance name is the file stem) and an
optional `_shared.toml` whose keys are defaults for every instance; an instance file overrides
them. Which files are instances (`instance_paths`): every `<name>.toml` except `users.toml`, the
configured user store, and names starting with `_` or `.`.

Rules:
1. Every problem is collected, never only the first: `load_instance` raises one ConfigError
   listing them all and `check_paths` returns them all.
2. Every problem names the file the offending key came from (the instance file or _shared.toml).
3. Unknown keys are problems, never ignored: a misspelt key must not silently leave a default.
4. Key names and meanings follow vsftpd.conf wherever vsftpd has the option; values are TOML
   types (true/false, not YES/NO).
5. Relative paths are resolved against the directory of the file that holds them.
6. This module only reads: files, file permissions, account names and this process's
   privileges. No sockets, no DNS lookups, no directories created.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import pwd
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import cast

import attrs

from ftpsup.errors import ConfigError, ConfigProblem
from ftpsup.proto.numbers import parse_uint

SHARED_FILE = "_shared.toml"
NAME_PATTERN = "[a-z0-9][a-z0-9_-]*"

_NAME_RE = re.compile(NAME_PATTERN)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL}\.)*{_LABEL}\.?", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_INT_MAX = 2**31 - 1  # keeps every count and timeout inside what C-level APIs accept


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
    listen_port: int = 21
    max_clients: int = 2000
    max_per_ip: int = 50
    # How many leading bits of an IPv6 address are one client for the per-address limits.
    per_ip_ipv6_prefix: int = 64
    max_command_length: int = 4096
    # Passive data connections
    pasv_enable: bool = True
    pasv_min_port: int = 10080
    pasv_max_port: int = 10100
    pasv_address: str = ""
    pasv_addr_resolve: bool = False
    pasv_promiscuous: bool = False
    accept_timeout: int = 60
    max_pasv_per_ip: int = 10
    # Active data connections
    port_enable: bool = True
    connect_from_port_20: bool = False
    ftp_data_port: int = 20
    port_promiscuous: bool = False
    connect_timeout: int = 60
    # Timeouts
    data_connection_timeout: int = 300
    idle_session_timeout: int = 300
    login_timeout: int = 60
    # Access
    local_enable: bool = True
    write_enable: bool = False
    local_umask: int = 0o077
    file_open_mode: int = 0o666
    chmod_enable: bool = True
    anonymous_enable: bool = False
    anon_root: Path | None = None
    anon_upload_enable: bool = False
    anon_mkdir_write_enable: bool = False
    anon_other_write_enable: bool = False
    anon_umask: int = 0o077
    no_anon_password: bool = False
    chroot_local_user: bool = True
    delay_failed_login: int = 1
    max_login_fails: int = 3
    hide_ids: bool = False
    use_localtime: bool = False
    ftpd_banner: str = ""
    dirmessage_enable: bool = False
    message_file: str = ".message"
    # Process: the account an instance started by root drops to once it has loaded.
    nopriv_user: str = "ftpsup"
    # Shared-only (before the logs, whose defaults derive from log_dir)
    # No vsftpd equivalent: the explicit, logged opt-in to instances running as root.
    run_as_root: bool = False
    user_db_file: Path = attrs.field()
    state_dir: Path = Path("/run/ftpsup")
    log_dir: Path = Path("/var/log/ftpsup")
    # Shared-only: the supervisor's restart policy (supervisord's names and meanings).
    startsecs: int = 1
    startretries: int = 3
    stopwaitsecs: int = 30
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
    tls_handshake_timeout: int = 30
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
_SHARED_ONLY = frozenset(
    {
        "user_db_file",
        "state_dir",
        "log_dir",
        "startsecs",
        "startretries",
        "stopwaitsecs",
        "run_as_root",
    }
)
_OCTAL_KEYS = frozenset({"local_umask", "anon_umask", "file_open_mode"})
# Integer keys not listed here accept 0.._INT_MAX.
_RANGES: dict[str, tuple[int, int]] = {
    **dict.fromkeys(("listen_port", "ftp_data_port"), (1, 65535)),
    **dict.fromkeys(("pasv_min_port", "pasv_max_port"), (1024, 65535)),
    "max_command_length": (512, 65536),
    **dict.fromkeys(("accept_timeout", "connect_timeout", "max_login_fails"), (1, _INT_MAX)),
    **dict.fromkeys(("data_connection_timeout", "idle_session_timeout"), (1, _INT_MAX)),
    "tls_handshake_timeout": (1, 3600),
    "login_timeout": (1, 3600),
    # Below /32 one key would stand for a whole regional registry's block.
    "per_ip_ipv6_prefix": (32, 128),
    "startsecs": (0, 3600),
    "startretries": (0, 1000),
    "stopwaitsecs": (0, 86400),
}
# ssl_reuse_scope: whose TLS sessions a data connection may resume (server/tls_sessions.py).
SSL_REUSE_SCOPES = ("user", "connection")
# Account names as useradd(8) accepts them.
_ACCOUNT_RE = re.compile(r"[a-z_][a-z0-9_-]{0,30}\$?")
# Linux: CAP_NET_BIND_SERVICE, bit 10 of the capability sets in /proc/self/status.
_CAP_NET_BIND_SERVICE = 10


def _kinds() -> dict[str, str]:
    by_type: dict[object, str] = {bool: "bool", int: "int", str: "str"}
    kinds: dict[str, str] = {}
    for field in attrs.fields(InstanceConfig):
        if field.name not in _IDENTITY:
            kind = by_type.get(field.type, "path")
            kinds[field.name] = "octal" if field.name in _OCTAL_KEYS else kind
    return kinds


# Every configuration key -> "bool" | "int" | "octal" | "str" | "path".
KEY_KINDS: dict[str, str] = _kinds()

_USERS = "users and their homes are defined in the user store (user_db_file)"
_USERLIST = "only users in the user store (user_db_file) can log in"
_CHROOT = "ftpsup confines every user to their home, with no exceptions"
_PROCESS = "vsftpd process-model option; ftpsup has no equivalent"
# vsftpd options an admin may carry over -> why ftpsup does not take them.
_NOT_USED: dict[str, str] = {
    "listen": "not needed: every <name>.toml is a standalone instance",
    "listen_ipv6": 'not needed: listen_address = "::" makes an ipv6 instance',
    "listen_address6": 'use listen_address; "::" or another ipv6 address makes an ipv6 instance',
    "background": "the supervisor runs the instances in the background",
    "pam_service_name": "ftpsup checks passwords against its user store, not pam",
    "tcp_wrappers": "tcp wrappers are not supported; filter with the firewall",
    "allow_writeable_chroot": "not needed: a home the user can write to is allowed",
    "ftp_username": "anonymous users see anon_root",
    "syslog_enable": "logs go to vsftpd_log_file and xferlog_file",
    "dual_log_enable": "logs go to vsftpd_log_file and xferlog_file",
    "anon_max_rate": "transfer rate limits are not supported",
    "ssl_tlsv12": "vsftpd 3.0.5 spelling; ftpsup uses ssl_tlsv1_2 (as vsftpd's manual does)",
    "ssl_tlsv13": "vsftpd 3.0.5 spelling; ftpsup uses ssl_tlsv1_3 (as vsftpd's manual does)",
    "ssl_tlsv11": "TLS 1.1 is insecure and not supported; ftpsup offers TLS 1.2 and 1.3",
    "dsa_cert_file": "DSA certificates are not supported; use rsa_cert_file (RSA or ECDSA)",
    "dsa_private_key_file": "DSA keys are not supported; use rsa_private_key_file",
    "debug_ssl": "TLS errors are always logged",
    "ssl_sni_hostname": "not supported",
    "local_max_rate": "transfer rate limits are not supported",
    **dict.fromkeys(("userlist_enable", "userlist_file", "userlist_deny"), _USERLIST),
    **dict.fromkeys(("chroot_list_enable", "chroot_list_file", "passwd_chroot_enable"), _CHROOT),
    **dict.fromkeys(("guest_enable", "guest_username", "virtual_use_local_privs"), _USERS),
    **dict.fromkeys(("local_root", "user_sub_token", "user_config_dir", "check_shell"), _USERS),
    **dict.fromkeys(("one_process_model", "run_as_launching_user", "session_support"), _PROCESS),
    **dict.fromkeys(("seccomp_sandbox", "isolate", "isolate_network"), _PROCESS),
    **dict.fromkeys(("secure_chroot_dir", "setproctitle_enable"), _PROCESS),
}
# vsftpd's TLS keys: ssl_*, *_ssl*, the certificate and key files, client-certificate checks.
_TLS_KEY_RE = re.compile(
    r"ssl_.*|.*_ssl(_.*)?|.*_(certs?|private_key)_file|(require|validate)_cert"
)

_ROOT_ACCOUNT = (
    "root is not an unprivileged account; to run the instances as root on purpose, "
    "set run_as_root = true"
)

_build = cast("Callable[..., InstanceConfig]", InstanceConfig)


class _Invalid(Exception):
    """A value or file that cannot be used; the message is the problem text."""


@attrs.frozen
class _Layer:
    """The valid values one file sets, and the problems found in it."""

    file: str
    values: dict[str, object]
    problems: list[ConfigProblem]
    readable: bool


@attrs.frozen
class _Loaded:
    """An instance file read together with its _shared.toml."""

    config: InstanceConfig | None
    file: str
    origin: dict[str, str]
    bad_keys: frozenset[str]
    problems: list[ConfigProblem]


def _show(value: object) -> str:
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
    if hi != _INT_MAX:
        raise _Invalid(f"{value} is out of range {lo}..{hi}")
    if value < lo:
        raise _Invalid(f"{value} is below the minimum of {lo}")
    raise _Invalid(f"{value} is above the maximum of {hi}")


def _octal(raw: object) -> int:
    # vsftpd.conf writes umasks as "022"; TOML has no leading-zero integers, hence the string.
    if isinstance(raw, str):
        parsed = parse_uint(raw, _INT_MAX, base=8)
        if parsed is None:
            raise _Invalid(f"{_show(raw)} is not an octal number")
        value = parsed
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise _Invalid(f'expected an octal number such as 0o022 or "022", not {_show(raw)}')
    if not 0 <= value <= 0o777:
        raise _Invalid(f"{value:o} (octal) is out of range 000..777")
    return value


def _coerce(key: str, raw: object, base: Path) -> object:
    kind = KEY_KINDS[key]
    if kind == "bool":
        if not isinstance(raw, bool):
            raise _Invalid(f"use true or false, not {_show(raw)}")
        if key == "chroot_local_user" and not raw:
            raise _Invalid("ftpsup always confines users to their home; set true or remove it")
        return raw
    if kind == "octal":
        return _octal(raw)
    if kind == "int":
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _Invalid(f"expected an integer, not {_show(raw)}")
        return _in_range(raw, *_RANGES.get(key, (0, _INT_MAX)))
    if not isinstance(raw, str):
        raise _Invalid(f"expected a string, not {_show(raw)}")
    if _CONTROL_RE.search(raw):
        raise _Invalid("contains a control character")
    if kind == "path":
        if not raw:
            raise _Invalid("must not be empty")
        # Lexical only: "../var" from instances.d reads as a sibling, and symlinks stay as set.
        return Path(os.path.normpath(base / raw))
    if key == "listen_address":
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            raise _Invalid(f"{_show(raw)} is not a numeric ipv4 or ipv6 address") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # An ipv6 socket on a mapped address accepts nothing (Linux refuses the bind).
            mapped = str(address.ipv4_mapped)
            raise _Invalid(f'{_show(raw)} is an ipv4-mapped ipv6 address; use "{mapped}"')
    if key == "ssl_reuse_scope" and raw not in SSL_REUSE_SCOPES:
        raise _Invalid(f'{_show(raw)} is not "user" or "connection"')
    if key == "message_file" and ("/" in raw or raw in ("", ".", "..")):
        raise _Invalid(f"{_show(raw)} must be a file name, not a path")
    if key == "nopriv_user" and not raw:
        raise _Invalid("must name an account; to run the instances as root, set run_as_root = true")
    if key == "nopriv_user" and not _ACCOUNT_RE.fullmatch(raw):
        raise _Invalid(f"{_show(raw)} is not an account name")
    return raw


def _unknown(key: str) -> str:
    if key in _NOT_USED:
        return _NOT_USED[key]
    if _TLS_KEY_RE.fullmatch(key):
        return "unknown TLS key; see the TLS keys in docs/configuration.md"
    close = difflib.get_close_matches(key, KEY_KINDS, n=1, cutoff=0.75)
    return f'unknown key; did you mean "{close[0]}"?' if close else "unknown key"


def _toml_hint(text: str, message: str) -> str:
    # vsftpd.conf habits (YES/NO, 022) are the likeliest syntax errors; point at the fix.
    found = re.search(r"at line ([0-9]+)", message)
    lines = text.splitlines()
    if found is None or int(found.group(1)) > len(lines):
        return ""
    line = lines[int(found.group(1)) - 1]
    if re.fullmatch(r"\s*\w+\s*=\s*(?i:yes|no)\s*(#.*)?", line):
        return "; use true or false"
    if re.fullmatch(r"\s*\w+\s*=\s*0[0-9]+\s*(#.*)?", line):
        return '; write octal as 0o022 or "022"'
    return ""


def _octal_literal(key: str, raw: object, text: str) -> None:
    """Refuse an octal key written as a decimal TOML integer: `local_umask = 22` is not 022.

    TOML reads both 0o022 and 18 as the integer 18, so the source text tells them apart.
    """
    if not isinstance(raw, int) or isinstance(raw, bool) or 0 <= raw <= 7:
        return  # not an integer, or one whose decimal and octal readings agree
    quoted = rf"(?:{key}|\"{key}\"|'{key}')"
    found = re.search(rf"^[ \t]*{quoted}[ \t]*=[ \t]*([0-9A-Za-z_+-]+)", text, re.MULTILINE)
    if found is not None and found.group(1).startswith("0o"):
        return
    if raw > 0 and set(str(raw)) <= set("01234567"):
        raise _Invalid(f'{raw} is decimal, not octal; did you mean "0{raw}"?')
    raise _Invalid(f'TOML reads this as {raw} (decimal), not octal; write it as "022" or 0o022')


def _read_toml_text(path: Path) -> tuple[dict[str, object], str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Invalid("no such file") from None
    except IsADirectoryError:
        raise _Invalid("is a directory, not a file") from None
    except OSError as exc:
        raise _Invalid(f"cannot read: {(exc.strerror or str(exc)).lower()}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise _Invalid(f"not valid utf-8 (byte {exc.start})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        hint = _toml_hint(text, message)
        raise _Invalid(f"invalid toml: {message[:1].lower()}{message[1:]}{hint}") from None


def _read_layer(path: Path, *, shared: bool) -> _Layer:
    file = str(path)
    try:
        data, text = _read_toml_text(path)
    except _Invalid as exc:
        return _Layer(file, {}, [ConfigProblem(file, None, str(exc))], readable=False)
    base = path.parent.absolute()
    values: dict[str, object] = {}
    problems: list[ConfigProblem] = []
    for key, raw in data.items():
        try:
            if key not in KEY_KINDS:
                raise _Invalid(_unknown(key))
            value = _coerce(key, raw, base)
            if key in _OCTAL_KEYS:
                _octal_literal(key, raw, text)
            if key in _SHARED_ONLY and not shared:
                raise _Invalid(f"only allowed in {SHARED_FILE}, as one setting for all instances")
            values[key] = value
        except _Invalid as exc:
            problems.append(ConfigProblem(file, key, str(exc)))
    return _Layer(file, values, problems, readable=True)


def _read_shared(config_dir: Path) -> _Layer | None:
    path = config_dir / SHARED_FILE
    if not (path.exists() or path.is_symlink()):
        return None
    return _read_layer(path, shared=True)


def _pasv_address_problem(c: InstanceConfig) -> str | None:
    try:
        version = ipaddress.ip_address(c.pasv_address).version
    except ValueError:
        if c.pasv_addr_resolve:
            ok = _HOST_RE.fullmatch(c.pasv_address)
            return None if ok else f"{_show(c.pasv_address)} is not a valid host name"
        return (
            f"{_show(c.pasv_address)} is not a numeric ip address;"
            " set pasv_addr_resolve = true to use a host name"
        )
    if version == 6:
        # A 227 reply carries only an IPv4 address (RFC 959); EPSV carries none (RFC 2428).
        return f"{_show(c.pasv_address)} is an ipv6 address; PASV replies carry only ipv4"
    return None


_OLD_PROTOCOLS = {
    "ssl_sslv2": "SSLv2",
    "ssl_sslv3": "SSLv3",
    "ssl_tlsv1": "TLS 1.0",
    "ssl_tlsv1_1": "TLS 1.1",
}


def _cross_check(
    c: InstanceConfig, own: str, origin: dict[str, str], bad: frozenset[str]
) -> list[ConfigProblem]:
    """Problems that involve several keys; keys that already have a problem are skipped."""
    out: list[ConfigProblem] = []

    def add(key: str, blamed: str, problem: str) -> None:
        out.append(ConfigProblem(origin.get(blamed, own), key, problem))

    lo, hi = c.pasv_min_port, c.pasv_max_port
    if not bad & {"pasv_min_port", "pasv_max_port"} and lo > hi:
        if "pasv_min_port" in origin or "pasv_max_port" not in origin:
            add("pasv_min_port", "pasv_min_port", f"{lo} is greater than pasv_max_port ({hi})")
        else:
            add("pasv_max_port", "pasv_max_port", f"{hi} is less than pasv_min_port ({lo})")
    if not bad & {"pasv_address", "pasv_addr_resolve"}:
        if c.pasv_address:
            problem = _pasv_address_problem(c)
            if problem:
                add("pasv_address", "pasv_address", problem)
        elif c.pasv_addr_resolve:
            add("pasv_addr_resolve", "pasv_addr_resolve", "true needs a host name in pasv_address")
    if not bad & {"anonymous_enable", "anon_root"} and c.anonymous_enable and c.anon_root is None:
        add("anon_root", "anonymous_enable", "required when anonymous_enable is true")
    for key, name in _OLD_PROTOCOLS.items():
        if key not in bad and getattr(c, key):
            add(key, key, f"{name} is insecure and not supported; ftpsup offers TLS 1.2 and 1.3")
    if not bad & {"ssl_tlsv1_2", "ssl_tlsv1_3"} and not (c.ssl_tlsv1_2 or c.ssl_tlsv1_3):
        add("ssl_tlsv1_3", "ssl_tlsv1_3", "ssl_tlsv1_2 and ssl_tlsv1_3 are both false: no TLS")
    if not bad & {"implicit_ssl", "ssl_enable"} and c.implicit_ssl and not c.ssl_enable:
        add("implicit_ssl", "implicit_ssl", "needs ssl_enable = true")
    if (c.require_cert or c.validate_cert) and c.ca_certs_file is None:
        blamed = "require_cert" if c.require_cert else "validate_cert"
        add("ca_certs_file", blamed, f"required when {blamed} is true")
    if not bad & {"nopriv_user", "run_as_root"} and c.nopriv_user == "root" and not c.run_as_root:
        add("nopriv_user", "nopriv_user", _ROOT_ACCOUNT)
    if not bad & {"pasv_enable", "port_enable"} and not (c.pasv_enable or c.port_enable):
        blamed = "pasv_enable" if "pasv_enable" in origin else "port_enable"
        add(blamed, blamed, "pasv_enable and port_enable are both false: no data connections")
    return out


def _load(path: Path, shared: _Layer | None) -> _Loaded:
    own = _read_layer(path, shared=False)
    layers = [shared, own] if shared is not None else [own]
    problems = [problem for layer in layers for problem in layer.problems]
    if not own.readable:
        return _Loaded(None, own.file, {}, frozenset(), problems)
    name = path.stem
    if path.suffix != ".toml":
        problems.append(ConfigProblem(own.file, None, "instance files must be named <name>.toml"))
    elif not _NAME_RE.fullmatch(name):
        problem = f'instance name "{name}" must match {NAME_PATTERN}'
        problems.append(ConfigProblem(own.file, None, problem))
    origin = {key: layer.file for layer in layers for key in layer.values}
    values = {key: value for layer in layers for key, value in layer.values.items()}
    source = path.absolute()
    config = _build(name=name, source=source, config_dir=source.parent, **values)
    bad: set[str] = set()  # keys whose winning setting is invalid
    for layer in layers:
        bad = (
            bad | {problem.key for problem in layer.problems if problem.key}
        ) - layer.values.keys()
    problems += _cross_check(config, own.file, origin, frozenset(bad))
    return _Loaded(config, own.file, origin, frozenset(bad), problems)


def _listen_clashes(loaded: Iterable[_Loaded]) -> list[ConfigProblem]:
    """Instances of one directory that would bind the same address and port."""
    seen: list[InstanceConfig] = []
    problems: list[ConfigProblem] = []
    usable = [
        (item.config, item)
        for item in loaded
        if item.config is not None and not item.bad_keys & {"listen_address", "listen_port"}
    ]
    for config, item in sorted(usable, key=lambda pair: (str(pair[0].source), pair[0].name)):
        address = ipaddress.ip_address(config.listen_address)
        for other in seen:
            other_address = ipaddress.ip_address(other.listen_address)
            if (
                other.config_dir != config.config_dir
                or other.listen_port != config.listen_port
                or other_address.version != address.version
            ):
                continue
            where = f"{config.listen_address} port {config.listen_port}"
            if other_address == address:
                problem = f'{where} is also used by instance "{other.name}"'
            elif address.is_unspecified or other_address.is_unspecified:
                # Linux refuses a wildcard and a specific bind on one port, even with SO_REUSEADDR.
                problem = f'{where} overlaps instance "{other.name}" on {other.listen_address}'
            else:
                continue
            file = item.origin.get("listen_address", item.file)
            problems.append(ConfigProblem(file, "listen_address", problem))
            break
        seen.append(config)
    return problems


def _range_clashes(loaded: Iterable[_Loaded]) -> list[ConfigProblem]:
    """Instances of one directory whose passive ranges overlap without being the same range.

    One range is one firewall rule; two overlapping but different ranges are almost always a
    typo, and the shared allocator would hand the common ports to both.
    """
    problems: list[ConfigProblem] = []
    keys = {"pasv_min_port", "pasv_max_port"}
    usable = sorted(
        (item for item in loaded if item.config is not None and not item.bad_keys & keys),
        key=lambda item: str(item.file),
    )
    for i, item in enumerate(usable):
        c = item.config
        assert c is not None
        for other in usable[:i]:
            o = other.config
            assert o is not None
            same_dir = o.config_dir == c.config_dir
            overlap = c.pasv_min_port <= o.pasv_max_port and o.pasv_min_port <= c.pasv_max_port
            if (
                same_dir
                and overlap
                and (c.pasv_min_port, c.pasv_max_port)
                != (
                    o.pasv_min_port,
                    o.pasv_max_port,
                )
            ):
                problem = (
                    f"{c.pasv_min_port}-{c.pasv_max_port} overlaps the passive range "
                    f'{o.pasv_min_port}-{o.pasv_max_port} of instance "{o.name}"; '
                    f"set one range in {SHARED_FILE}"
                )
                problems.append(
                    ConfigProblem(
                        item.origin.get("pasv_min_port", item.file), "pasv_min_port", problem
                    )
                )
                break
            if same_dir and c.nopriv_user != o.nopriv_user and c.state_dir == o.state_dir:
                problem = (
                    f'differs from instance "{o.name}" ({_show(o.nopriv_user)}): the passive '
                    f"port lease files in state_dir belong to one account; set it in {SHARED_FILE}"
                )
                file = item.origin.get("nopriv_user", item.file)
                problems.append(ConfigProblem(file, "nopriv_user", problem))
                break
    return problems


def _can_bind_below_1024(port: int) -> bool:
    # Root without CAP_NET_BIND_SERVICE (a container, systemd's CapabilityBoundingSet) cannot
    # bind either, so the capability is what counts, not the uid.
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if port >= int(f.read().strip()):
                return True
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_BIND_SERVICE & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def _writable(path: Path) -> bool:
    """Whether this process could write `path`, or create it in its nearest existing parent."""
    probe = path
    while True:
        try:
            st = probe.stat()
            break
        except FileNotFoundError:
            if probe.parent == probe:
                return False
            probe = probe.parent
        except OSError:
            return False  # a directory on the way we may not search: another account's
    if probe == path and not stat.S_ISDIR(st.st_mode):
        return os.access(path, os.W_OK)
    return os.access(probe, os.W_OK | os.X_OK)


def missing_account_problem(name: str) -> str:
    """The problem with a nopriv_user that does not exist, and its fix."""
    return (
        f'no account "{name}" on this host: create it with `ftpsup setup` (a system account '
        f"with no login), or set run_as_root = true to run the instances as root"
    )


def _host_problems(loaded: Iterable[_Loaded]) -> list[ConfigProblem]:
    """What this host and this process's privileges make impossible (`ftpsup check`, `start`)."""
    problems: list[ConfigProblem] = []
    for item in loaded:
        c = item.config
        if c is None:
            continue

        def add(key: str, problem: str, item: _Loaded = item, blame: str = "") -> None:
            if key not in item.bad_keys:
                file = item.origin.get(key, blame or item.file)
                problems.append(ConfigProblem(file, key, problem))

        if c.listen_port < 1024 and not _can_bind_below_1024(c.listen_port):
            add(
                "listen_port",
                f"port {c.listen_port} needs root or CAP_NET_BIND_SERVICE, which this process "
                f"(uid {os.geteuid()}) lacks: start ftpsup as root, or use a port of 1024 or above",
            )
        # Only root drops to nopriv_user: for anyone else the default account need not exist.
        dropping = os.geteuid() == 0 or "nopriv_user" in item.origin
        if dropping and not c.run_as_root and c.nopriv_user != "root":
            try:
                if pwd.getpwnam(c.nopriv_user).pw_uid == 0:
                    add("nopriv_user", f"{_show(c.nopriv_user)} has uid 0; {_ROOT_ACCOUNT}")
            except KeyError:
                # A default account is one problem, where one setting for all belongs.
                shared = Path(item.file).parent / SHARED_FILE
                blame = str(shared) if shared.exists() else ""
                add("nopriv_user", missing_account_problem(c.nopriv_user), blame=blame)
        paths = [
            ("user_db_file", c.user_db_file),
            ("state_dir", c.state_dir),
            ("vsftpd_log_file", c.vsftpd_log_file),
        ]
        if c.xferlog_enable:
            paths.append(("xferlog_file", c.xferlog_file))
        for key, path in paths:
            if not _writable(path):
                add(key, f"{path} cannot be written by uid {os.geteuid()}")
    return problems


# Never an instance file, even when the store is configured elsewhere (a leftover default).
USER_DB_NAME = "users.toml"


def not_instance_reason(path: Path) -> str | None:
    """Why a `*.toml` of a config directory is not an instance file, or None when it is one."""
    if path.name.startswith("."):
        return "names starting with . are hidden files"
    if path.name.startswith("_"):
        return f"names starting with _ are not instances (only {SHARED_FILE} is read)"
    if path.name == USER_DB_NAME:
        return f"{USER_DB_NAME} is the user store's name, never an instance"
    if path.absolute() == user_db_path(path.parent):
        return "it is the user store (user_db_file)"
    if path.is_dir():
        return "it is a directory"
    return None


def instance_paths(config_dir: str | Path) -> list[Path]:
    """List the instance files of a config directory.

    Args:
        config_dir: The directory, e.g. ``instances.d``.

    Returns:
        Every ``*.toml`` in it for which `not_instance_reason` has no reason (not users.toml,
        not the configured user store, not starting with ``_`` or ``.``), sorted; an empty
        list when the directory does not exist.
    """
    found = Path(config_dir).glob("*.toml")
    return sorted(p for p in found if not_instance_reason(p) is None)


def user_db_path(config_dir: str | Path) -> Path:
    """The user store a config directory's _shared.toml names (default users.toml beside it).

    Read leniently: a broken _shared.toml is reported by check_paths, not here.
    """
    return _shared_path(config_dir, "user_db_file", "users.toml")


def state_dir_path(config_dir: str | Path) -> Path:
    """The state_dir a config directory's _shared.toml names (where the supervisor's socket is).

    Read leniently, like user_db_path, so `ftpsup status` and `stop` reach a running
    supervisor even while a file is being edited.
    """
    return _shared_path(
        config_dir, "state_dir", str(attrs.fields(InstanceConfig).state_dir.default)
    )


def shared_setting(config_dir: str | Path, key: str) -> object:
    """The value _shared.toml sets for `key`, else its default; read leniently, unchecked."""
    default = attrs.fields_dict(InstanceConfig)[key].default
    try:
        with (Path(config_dir).absolute() / SHARED_FILE).open("rb") as f:
            return tomllib.load(f).get(key, default)
    except (OSError, tomllib.TOMLDecodeError):
        return default


def _shared_path(config_dir: str | Path, key: str, default: str) -> Path:
    directory = Path(config_dir).absolute()
    value: object = default
    try:
        with (directory / SHARED_FILE).open("rb") as f:
            value = tomllib.load(f).get(key, value)
    except (OSError, tomllib.TOMLDecodeError):
        pass
    path = Path(str(value))
    return path if path.is_absolute() else Path(os.path.normpath(directory / path))


def load_instance(path: str | Path) -> InstanceConfig:
    """Load one instance file, with the ``_shared.toml`` beside it as defaults.

    Args:
        path: The instance file, ``<config_dir>/<name>.toml``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: Listing every problem found in the instance file and in _shared.toml.
    """
    file = Path(path)
    loaded = _load(file, _read_shared(file.parent))
    if loaded.problems or loaded.config is None:
        raise ConfigError(loaded.problems)
    return loaded.config


def check_paths(paths: Sequence[str | Path]) -> list[ConfigProblem]:
    """Check instance files and config directories, as ``ftpsup check`` does.

    Args:
        paths: Instance files, or config directories (every instance file in one is checked,
            and its _shared.toml). The _shared.toml beside an instance file is always read.

    Returns:
        Every problem in every file, each reported once and grouped by file; clashes between
        instances of one directory (same address and port, overlapping passive ranges that
        differ, different nopriv_user); and what this host forbids (a port below 1024 without
        the privilege, a path that cannot be written, an unknown nopriv_user). An empty list
        means all is well.
    """
    problems: list[ConfigProblem] = []
    shared_by_dir: dict[Path, _Layer | None] = {}
    loaded: dict[Path, _Loaded] = {}

    def shared_for(config_dir: Path) -> _Layer | None:
        key = config_dir.absolute()
        if key not in shared_by_dir:
            shared_by_dir[key] = _read_shared(config_dir)
        return shared_by_dir[key]

    for given in paths:
        path = Path(given)
        files = [path]
        if path.is_dir():
            files = instance_paths(path)
            shared = shared_for(path)
            problems += shared.problems if shared else []
            if not files:
                problems.append(ConfigProblem(str(path), None, "no instance files in directory"))
        elif path.name == SHARED_FILE:
            shared = shared_for(path.parent)
            problems += (
                shared.problems if shared else [ConfigProblem(str(path), None, "no such file")]
            )
            files = []
        for file in files:
            if file.absolute() not in loaded:
                loaded[file.absolute()] = item = _load(file, shared_for(file.parent))
                problems += item.problems
    problems += _listen_clashes(loaded.values())
    problems += _range_clashes(loaded.values())
    problems += _host_problems(loaded.values())
    # Grouped by file (stable, so each file's problems keep their order) for the admin's editor.
    return sorted(dict.fromkeys(problems), key=lambda problem: problem.file)
