"""Addresses of data connections: PORT/EPRT/EPSV arguments, PASV values, the bounce policy.

Rules:
- Parsing is strict: only ASCII digits where numbers go, every byte and port in range, and
  an address of the family the client named (RFC 959 §4.1.2, RFC 2428 §2 and §3).
- Every error is an AddressError carrying the reply code the session sends back.
- Addresses are compared in normalised form: an IPv4-mapped IPv6 address stands for its IPv4
  address, a zone ("%eth0") is dropped, IPv6 is compressed and lowercase. A client on an IPv6
  socket that reaches us over v4-mapped addresses is therefore the same client as in IPv4.
- Bounce protection (vsftpd's port_promiscuous=NO): an active data connection may go only to
  the client's own address and to an unprivileged port, so a client cannot make the server
  connect to a third host or to a service port ("FTP bounce", RFC 2577 §3).
- The peer and local addresses of a session are normalised several times per transfer
  (PASV reply, data-connection check); the answers for recent addresses are remembered
  (ADDRESS_CACHE entries), since parsing an address costs far more than looking it up.
"""

from __future__ import annotations

import ipaddress

from ftpsup.proto.memo import remembered
from ftpsup.proto.numbers import parse_uint

# Addresses whose normal form is remembered: the clients of a busy server, many times over.
ADDRESS_CACHE = 4096

# Ports below this are reserved for services; vsftpd refuses them as PORT targets.
_RESERVED_PORTS = 1024
# Up to five digits for an RFC 2428 family number: an unknown one is unsupported (522).
_MAX_FAMILY = 99999
_UNSUPPORTED_FAMILY = "Network protocol not supported, use (1,2)"


class AddressError(ValueError):
    """A data-connection address the server refuses, with the reply to send."""

    def __init__(self, reply_code: int, message: str) -> None:
        self.reply_code = reply_code
        self.message = message
        super().__init__(f"{reply_code} {message}")


def _number(text: str, maximum: int, *, width: int) -> int | None:
    # At most `width` characters, leading zeros included: "0001" is not a PORT byte.
    return parse_uint(text, maximum) if len(text) <= width else None


def parse_port_arg(arg: str) -> tuple[str, int]:
    """Parses the argument of PORT (RFC 959 §4.1.2: "h1,h2,h3,h4,p1,p2").

    Args:
        arg: the text after the verb; surrounding spaces are ignored.

    Returns:
        The IPv4 address in dotted form and the port.

    Raises:
        AddressError: 501 if the argument is malformed, a number exceeds 255, or the port is 0.
    """
    fields = arg.strip().split(",")
    numbers = [n for f in fields if (n := _number(f, 255, width=3)) is not None]
    if len(fields) != 6 or len(numbers) != 6:
        raise AddressError(501, "Illegal PORT command.")
    port = numbers[4] * 256 + numbers[5]
    if port == 0:
        raise AddressError(501, "Illegal PORT command.")
    return ".".join(str(number) for number in numbers[:4]), port


def parse_eprt_arg(arg: str) -> tuple[int, str, int]:
    """Parses the argument of EPRT (RFC 2428 §2: "<d><af><d><address><d><port><d>").

    Args:
        arg: the text after the verb, e.g. "|1|132.235.1.2|6275|" or "|2|::1|5282|".

    Returns:
        The address family (1 for IPv4, 2 for IPv6), the address in canonical form, the port.

    Raises:
        AddressError: 522 for a family other than 1 or 2 (RFC 2428 §2 names this reply);
            501 for anything malformed, an address not of the named family, or port 0.
    """
    text = arg.strip()
    if len(text) < 2 or not 33 <= ord(text[0]) <= 126:
        raise AddressError(501, "Bad EPRT command.")
    # RFC 2428 §2: the delimiter is any printable ASCII character, given by the first one.
    parts = text.split(text[0])
    if len(parts) != 5 or parts[0] or parts[4]:
        raise AddressError(501, "Bad EPRT command.")
    family_text, host_text, port_text = parts[1], parts[2], parts[3]
    family = _number(family_text, _MAX_FAMILY, width=5)
    if family is None:
        raise AddressError(501, "Bad EPRT command.")
    if family not in (1, 2):
        raise AddressError(522, _UNSUPPORTED_FAMILY)
    host: ipaddress.IPv4Address | ipaddress.IPv6Address
    try:
        host = ipaddress.IPv4Address(host_text) if family == 1 else ipaddress.IPv6Address(host_text)
    except ValueError:
        raise AddressError(501, "Bad EPRT command.") from None
    port = _number(port_text, 65535, width=5)
    if port is None or port == 0:
        raise AddressError(501, "Bad EPRT command.")
    return family, str(host), port


def parse_epsv_arg(arg: str) -> str | int | None:
    """Parses the optional argument of EPSV (RFC 2428 §3).

    Args:
        arg: the text after the verb.

    Returns:
        None for no argument, "ALL" for "EPSV ALL" (any case), else the family number 1 or 2.

    Raises:
        AddressError: 522 for another family number, 501 for anything else.
    """
    text = arg.strip()
    if not text:
        return None
    if text.upper() == "ALL":
        return "ALL"
    family = _number(text, _MAX_FAMILY, width=5)
    if family is None:
        raise AddressError(501, "Bad EPSV command.")
    if family not in (1, 2):
        raise AddressError(522, _UNSUPPORTED_FAMILY)
    return family


@remembered(ADDRESS_CACHE)
def normalize_ip(ip: str) -> str:
    """Returns the canonical text of an address, for comparing and for display.

    "::ffff:1.2.3.4" gives "1.2.3.4", "fe80::1%eth0" gives "fe80::1", and IPv6 comes out
    compressed and lowercase.

    Raises:
        AddressError: 501 if `ip` is not an IP address.
    """
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        raise AddressError(501, f"Not an IP address: {ip!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_unspecified(ip: str) -> bool:
    """Tells whether `ip` is 0.0.0.0 or :: (also as "::ffff:0.0.0.0").

    Raises:
        AddressError: 501 if `ip` is not an IP address.
    """
    return ipaddress.ip_address(normalize_ip(ip)).is_unspecified


@remembered(ADDRESS_CACHE)
def format_pasv_host(ip: str) -> str:
    """Formats the server's address for a 227 reply: "1.2.3.4" gives "1,2,3,4".

    An IPv4-mapped IPv6 address gives its IPv4 form, since a client reached over such an
    address speaks IPv4.

    Raises:
        AddressError: 425 if the address is IPv6, which PASV cannot express (RFC 2428 §1: use
            EPSV); 501 if `ip` is not an IP address.
    """
    address = ipaddress.ip_address(normalize_ip(ip))
    if not isinstance(address, ipaddress.IPv4Address):
        raise AddressError(425, "PASV cannot give an IPv6 address; use EPSV.")
    return str(address).replace(".", ",")


def resolve_active_target(
    client_ip: str,
    target_ip: str,
    target_port: int,
    *,
    promiscuous: bool,
    verb: str = "PORT",
) -> str:
    """Decides where an active (PORT/EPRT) data connection goes, and applies the bounce policy.

    The unspecified address (0.0.0.0, or "::" as lftp sends in "EPRT |2|::|port|") means the
    client's own address.

    Args:
        client_ip: the peer address of the control connection.
        target_ip: the address the client asked for.
        target_port: the port the client asked for.
        promiscuous: vsftpd's port_promiscuous; True turns the bounce checks off.
        verb: the command, for the wording of the reply.

    Returns:
        The normalised address to connect to.

    Raises:
        AddressError: 500 "Illegal PORT command." (vsftpd's code and wording, so admins
            see the message they know) when, unless promiscuous, the target is not the
            client's own address or its port is below 1024.
    """
    client = normalize_ip(client_ip)
    target = normalize_ip(target_ip)
    if is_unspecified(target):
        target = client
    if not promiscuous and (target != client or target_port < _RESERVED_PORTS):
        raise AddressError(500, f"Illegal {verb} command.")
    return target
