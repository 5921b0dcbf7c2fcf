"""Read instance files and _shared.toml into InstanceConfig, collecting every problem.

A config directory holds one TOML file per instance (the instance name is the file stem) and an
optional `_shared.toml` whose keys are defaults for every instance; an instance file overrides
them. Which files are instances (`instance_paths`): every `<name>.toml` except `users.toml`, the
configured user store, and names starting with `_` or `.`.

Theory of operation: each file is read into a Layer (the valid values it sets, and its
problems); `load_file` lays an instance file over its _shared.toml, builds the InstanceConfig
and checks the settings that involve several keys. Judging several instances together and
against this host is config.check's.

Rules:
1. Every problem is collected, never only the first: `load_instance` raises one ConfigError
   listing them all.
2. Every problem names the file the offending key came from (the instance file or _shared.toml).
3. Unknown keys are problems, never ignored: a misspelt key must not silently leave a default;
   a vsftpd option ftpsup does not take says why, and a near miss says "did you mean".
4. This module only reads files. No sockets, no DNS lookups, no directories created.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import cast

import attrs

from ftpsup.config.schema import (
    KEY_KINDS,
    NAME_PATTERN,
    OCTAL_KEYS,
    ROOT_ACCOUNT,
    SHARED_FILE,
    SHARED_ONLY,
    InstanceConfig,
    Invalid,
    coerce,
    show,
)
from ftpsup.errors import ConfigError, ConfigProblem

_NAME_RE = re.compile(NAME_PATTERN)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL}\.)*{_LABEL}\.?", re.IGNORECASE)

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

_build = cast("Callable[..., InstanceConfig]", InstanceConfig)


@attrs.frozen
class Layer:
    """The valid values one file sets, and the problems found in it."""

    file: str
    values: dict[str, object]
    problems: list[ConfigProblem]
    readable: bool


@attrs.frozen
class Loaded:
    """An instance file read together with its _shared.toml."""

    config: InstanceConfig | None
    file: str
    origin: dict[str, str]
    bad_keys: frozenset[str]
    problems: list[ConfigProblem]


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
        raise Invalid(f'{raw} is decimal, not octal; did you mean "0{raw}"?')
    raise Invalid(f'TOML reads this as {raw} (decimal), not octal; write it as "022" or 0o022')


def _read_toml_text(path: Path) -> tuple[dict[str, object], str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise Invalid("no such file") from None
    except IsADirectoryError:
        raise Invalid("is a directory, not a file") from None
    except OSError as exc:
        raise Invalid(f"cannot read: {(exc.strerror or str(exc)).lower()}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise Invalid(f"not valid utf-8 (byte {exc.start})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        hint = _toml_hint(text, message)
        raise Invalid(f"invalid toml: {message[:1].lower()}{message[1:]}{hint}") from None


def _read_layer(path: Path, *, shared: bool) -> Layer:
    file = str(path)
    try:
        data, text = _read_toml_text(path)
    except Invalid as exc:
        return Layer(file, {}, [ConfigProblem(file, None, str(exc))], readable=False)
    base = path.parent.absolute()
    values: dict[str, object] = {}
    problems: list[ConfigProblem] = []
    for key, raw in data.items():
        try:
            if key not in KEY_KINDS:
                raise Invalid(_unknown(key))
            value = coerce(key, raw, base)
            if key in OCTAL_KEYS:
                _octal_literal(key, raw, text)
            if key in SHARED_ONLY and not shared:
                raise Invalid(f"only allowed in {SHARED_FILE}, as one setting for all instances")
            values[key] = value
        except Invalid as exc:
            problems.append(ConfigProblem(file, key, str(exc)))
    return Layer(file, values, problems, readable=True)


def read_shared(config_dir: Path) -> Layer | None:
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
            return None if ok else f"{show(c.pasv_address)} is not a valid host name"
        return (
            f"{show(c.pasv_address)} is not a numeric ip address;"
            " set pasv_addr_resolve = true to use a host name"
        )
    if version == 6:
        # A 227 reply carries only an IPv4 address (RFC 959); EPSV carries none (RFC 2428).
        return f"{show(c.pasv_address)} is an ipv6 address; PASV replies carry only ipv4"
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
        add("nopriv_user", "nopriv_user", ROOT_ACCOUNT)
    if not bad & {"pasv_enable", "port_enable"} and not (c.pasv_enable or c.port_enable):
        blamed = "pasv_enable" if "pasv_enable" in origin else "port_enable"
        add(blamed, blamed, "pasv_enable and port_enable are both false: no data connections")
    return out


def load_file(path: Path, shared: Layer | None) -> Loaded:
    own = _read_layer(path, shared=False)
    layers = [shared, own] if shared is not None else [own]
    problems = [problem for layer in layers for problem in layer.problems]
    if not own.readable:
        return Loaded(None, own.file, {}, frozenset(), problems)
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
    return Loaded(config, own.file, origin, frozenset(bad), problems)


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
    loaded = load_file(file, read_shared(file.parent))
    if loaded.problems or loaded.config is None:
        raise ConfigError(loaded.problems)
    return loaded.config
