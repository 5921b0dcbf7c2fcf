"""TLS settings of an instance turned into a server context, and the checks behind them.

Rules: no I/O beyond reading the certificate and key files; used by the instance (per
connection), by `ftpsup check`, and by the supervisor before it applies a reload.

End of file without close_notify: whether a context treats it as an error is set here from
`strict_ssl_read_eof`, never left to the interpreter. CPython 3.10.0 to 3.11.2 (bpo-43794),
which includes Debian 12's python3, turns `OP_IGNORE_UNEXPECTED_EOF` on in every new
`SSLContext`, so a cut upload read as a clean close_notify; 3.11.3 turned it off again
(gh-95495). Strict contexts clear the option and lenient ones set it, on every interpreter.
"""

from __future__ import annotations

import ssl

from ftpsup.config.schema import InstanceConfig
from ftpsup.tls.certs import check_pair

# Tickets a control connection's handshake issues, for its data connections to resume from:
# one, so the session the control connection records is the only one its client holds.
CONTROL_TICKETS = 1
# Absent when the ssl module is built against OpenSSL 1.1.1, where end of file without
# close_notify is always an error (SSLEOFError): then there is nothing to clear.
IGNORE_UNEXPECTED_EOF: int = getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)


class TlsSetupError(Exception):
    """The instance's TLS settings or files cannot make a context (bad file, bad cipher list)."""


def set_read_eof_rule(ctx: ssl.SSLContext, *, strict: bool) -> None:
    """Make end of file without close_notify an error (`strict`) or a clean close on `ctx`."""
    if strict:
        ctx.options &= ~IGNORE_UNEXPECTED_EOF
    else:
        ctx.options |= IGNORE_UNEXPECTED_EOF


def make_context(config: InstanceConfig) -> ssl.SSLContext:
    """A server-side context from the instance's TLS keys. Blocking: reads the key files.

    Raises:
        TlsSetupError: with a message naming the key at fault.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [
        v
        for v, enabled in (
            (ssl.TLSVersion.TLSv1_2, config.ssl_tlsv1_2),
            (ssl.TLSVersion.TLSv1_3, config.ssl_tlsv1_3),
        )
        if enabled
    ]
    if not versions:
        raise TlsSetupError("ssl_tlsv1_2, ssl_tlsv1_3: at least one TLS version must be enabled")
    ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    try:
        ctx.set_ciphers(config.ssl_ciphers)
    except ssl.SSLError as exc:
        raise TlsSetupError(f"ssl_ciphers: {config.ssl_ciphers!r} selects no cipher") from exc
    key_file = config.rsa_private_key_file or config.rsa_cert_file
    try:
        ctx.load_cert_chain(str(config.rsa_cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"rsa_cert_file, rsa_private_key_file: cannot load {config.rsa_cert_file} "
            f"with key {key_file}: {exc}"
        ) from exc
    if config.validate_cert or config.require_cert:
        try:
            ctx.load_verify_locations(cafile=str(config.ca_certs_file))
        except (OSError, ssl.SSLError, TypeError) as exc:
            raise TlsSetupError(
                f"ca_certs_file: cannot load {config.ca_certs_file}: {exc}"
            ) from exc
        ctx.verify_mode = ssl.CERT_REQUIRED if config.require_cert else ssl.CERT_OPTIONAL
    ctx.num_tickets = CONTROL_TICKETS
    # Sessions stay on the server, so a resumed session carries the id OpenSSL chose when it
    # issued it (server/tls_sessions.py): with stateless TLS 1.2 tickets it would carry an id
    # the client chose, which cannot tell whose session it is.
    ctx.options |= ssl.OP_NO_TICKET
    # Compression enables CRIME-style attacks; renegotiation is never needed by FTPS clients.
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    set_read_eof_rule(ctx, strict=config.strict_ssl_read_eof)
    # RFC 4217 names no ALPN protocol that FTP clients send; accept "ftp" when offered.
    ctx.set_alpn_protocols(["ftp"])
    return ctx


def tls_problems(config: InstanceConfig, *, warn_days: int = 0) -> list[str]:
    """What stops this instance from serving TLS, as "key: problem" strings (blocking).

    Args:
        config: The instance.
        warn_days: Also report a certificate that expires within this many days (`ftpsup
            check` asks for 14). Start-up leaves it at 0: a certificate that still works must
            never keep an instance from starting or restarting.
    """
    if not config.ssl_enable:
        return []
    cert, key = config.rsa_cert_file, config.rsa_private_key_file
    problems = check_pair(cert, key, warn_days=0)
    if not problems:
        try:
            make_context(config)
        except TlsSetupError as exc:
            problems.append(str(exc))
        if warn_days:
            problems += check_pair(cert, key, warn_days=warn_days)
    return problems
