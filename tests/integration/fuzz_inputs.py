"""Hostile inputs for the session fuzzer: command lines, arguments, names, raw bytes.

Theory of operation: everything here is pure and draws only from the `random.Random` it is
given, so one seed always yields the same inputs. Arguments are bytes, not text, because the
interesting ones are not valid UTF-8 or hold NUL, CR, LF or Telnet IAC bytes.

Rules:
- Verbs that change the filesystem (STOR, APPE, DELE, RMD, MKD, RNFR, RNTO, MFMT, SITE CHMOD)
  only ever name paths whose last component starts with NAME_PREFIX. If the jail ever let a
  path escape the user's home, the damage is a stray file with that prefix, which the test
  looks for, and never a system file.
- Read-only verbs may name anything, traversals to /etc included.
"""

from __future__ import annotations

import random

# Every file or directory the fuzzer may create, rename or delete starts with this.
NAME_PREFIX = "fz"
# Symbolic links the test puts in the home: to a directory outside it (nothing may be written
# through it), to /etc, up out of the home, and to itself. Only read-only verbs name them.
OUT_LINK = "out-link"
LINK_NAMES = (OUT_LINK, "etc-link", "up-link", "loop")


def modifiable(known: list[str]) -> list[str]:
    """The known names a verb that changes things may name: none through a symbolic link."""
    return [n for n in known if n.split("/", 1)[0] not in LINK_NAMES]


UNICODE_DIGITS = ["²", "٣", "１２", "𝟗", "⁴", "Ⅻ", "߂", "໓"]
NUMBERS = [
    "0", "1", "7", "-1", "-0", "+5", "007", "0x10", "1e9", " 3 ", "1_000", "9" * 40,
    "4294967296", "18446744073709551616", "-9223372036854775809", "NaN", "inf", "3.5",
]  # fmt: skip
PATH_BITS = [
    "..", "../../..", "../../../etc/passwd", "/../../..", "~", "~root", "*", "?", "[a-", "-la",
    "-R", "%s%n%x%p", "{}", "$(id)", "`id`", ".", "/", "//", "\\", "C:\\", ";", "a b", " ",
    "\t", "/etc", "/proc/self/environ", "..\\..", "%2e%2e", ".../...", "\u202e", "é", "日本",
]  # fmt: skip
RAW_BITS = [
    b"\x00", b"\r", b"\xff", b"\xff\xff", b"\xff\xf4\xff\xf2", b"\xff\xfb", b"\xc3\x28",
    b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\x1b[2J", b"\x7f", b"\xe2\x80\xa8",
]  # fmt: skip

FILE_VERBS = ["RETR", "SIZE", "MDTM", "MLST", "STAT", "CWD", "XCWD", "LIST", "NLST", "MLSD"]
WRITE_VERBS = ["STOR", "APPE", "DELE", "RMD", "MKD", "XMKD", "XRMD", "RNFR", "RNTO", "STOU"]
NUMBER_VERBS = ["REST", "ALLO", "PBSZ", "SITE IDLE", "SITE UMASK"]
WORD_VERBS: dict[str, list[str]] = {
    "TYPE": ["A", "I", "L 8", "A N", "E", "L ²", "a", "I I", "A T", "L 7"],
    "MODE": ["S", "B", "C", "Z", "s"],
    "STRU": ["F", "R", "P", "f"],
    "PROT": ["P", "C", "S", "E", "p", "PP"],
    "AUTH": ["SSL", "TLS-C", "TLS-P", "GSSAPI", "tls", "TLS TLS"],
    "OPTS": ["UTF8 ON", "UTF8 OFF", "UTF8", "MLST type;size;", "MLST ;;;", "MLST", "MODE Z"],
    "EPSV": ["1", "2", "ALL", "3", "all", "²"],
    "HELP": ["SITE", "USER", "XCWD", "FOO"],
    "SITE": ["HELP", "CHMOD", "UMASK", "IDLE", "EXEC id", "ZONE", "SYMLINK a b"],
}
BARE_VERBS = [
    "PWD", "XPWD", "CDUP", "XCUP", "PASV", "EPSV", "FEAT", "SYST", "NOOP", "HELP", "STAT",
    "ABOR", "REIN", "CCC", "LIST", "NLST", "MLSD", "MLST", "PASS",
]  # fmt: skip
UNKNOWN_VERBS = ["HOST", "LANG", "CLNT", "XSHA1", "MODEZ", "GET", "SMNT", "ACCT", "U", "FOO"]


def encode_name(name: str) -> bytes:
    """A file name as it goes on the wire (names that are not UTF-8 keep their bytes)."""
    return name.encode("utf-8", "surrogateescape")


def token(rng: random.Random) -> bytes:
    """One short hostile piece of an argument."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(UNICODE_DIGITS).encode()
    if kind == 1:
        return rng.choice(NUMBERS).encode()
    if kind == 2:
        return rng.choice(PATH_BITS).encode()
    if kind == 3:
        return rng.choice(RAW_BITS)
    if kind == 4:
        return bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(1, 12)))
    return rng.randbytes(rng.randrange(1, 8)).replace(b"\n", b"")


def hostile(rng: random.Random) -> bytes:
    """A hostile argument: empty, huge, a few tokens glued, or a very long run."""
    kind = rng.randrange(10)
    if kind == 0:
        return b""
    if kind == 1:
        # Half of these fit in a command line (4096 bytes) and pass NAME_MAX or PATH_MAX.
        return rng.choice([b"A", b"/", b"\xff", "é".encode(), b"../"]) * rng.randrange(100, 5000)
    return b"".join(token(rng) for _ in range(rng.randrange(1, 4)))


def number(rng: random.Random) -> bytes:
    """A value for a verb that takes a number."""
    if rng.random() < 0.7:
        return rng.choice(NUMBERS + UNICODE_DIGITS).encode()
    return hostile(rng)


def fuzz_name(rng: random.Random) -> str:
    """A name the fuzzer may create or destroy (see NAME_PREFIX), sometimes with odd bytes."""
    tail = rng.choice(
        ["", "x", " ", "é", "\r", "\x00", "\x7f", "*", "?", "%n", "²", " a b", "L" * 300]
    )
    return f"{NAME_PREFIX}{rng.randrange(50)}{tail}"


def write_path(rng: random.Random) -> bytes:
    """A path for a verb that writes: hostile directories, then a fuzz name."""
    prefix = rng.choice(["", "", "", "../", "../../../", "/", "~/", "./", "/../", "//", "a/../"])
    directory = rng.choice(
        ["", "", f"{NAME_PREFIX}dir/", f"{NAME_PREFIX}dir/{NAME_PREFIX}0/", f"{OUT_LINK}/"]
    )
    name = encode_name(fuzz_name(rng))
    if rng.random() < 0.1:
        name += rng.choice(RAW_BITS).replace(b"\xff", b"")
    return prefix.encode() + directory.encode() + name


def read_path(rng: random.Random, known: list[str]) -> bytes:
    """A path for a verb that only reads: a known name, a fuzz name, or anything hostile."""
    kind = rng.randrange(4)
    if kind == 0 and known:
        return encode_name(rng.choice(known))
    if kind == 1:
        return write_path(rng)
    return hostile(rng)


def port_arg(rng: random.Random, own_port: int) -> bytes:
    """A PORT argument: loopback with the driver's own port, a reserved port, or junk fields."""
    fields = ["127", "0", "0", "1", str(own_port >> 8), str(own_port & 0xFF)]
    if rng.random() < 0.2:
        fields[4], fields[5] = "0", str(rng.randrange(1, 256))  # below 1024: must be refused
    for _ in range(rng.randrange(3)):
        fields[rng.randrange(len(fields))] = token(rng).decode("utf-8", "replace")
    if rng.random() < 0.2:
        del fields[rng.randrange(len(fields)) :]
    return ",".join(fields).encode()


def eprt_arg(rng: random.Random, v6: bool, own_port: int) -> bytes:
    """An EPRT argument on loopback, with hostile delimiters, protocols, addresses, ports."""
    parts = ["2" if v6 else "1", "::1" if v6 else "127.0.0.1", str(own_port)]
    if rng.random() < 0.2:
        parts[2] = str(rng.randrange(1, 1024))
    for _ in range(rng.randrange(3)):
        parts[rng.randrange(3)] = rng.choice(
            ["", "3", "0", "::ffff:127.0.0.1", "127.1", "0x7f.1", "1.2.3.4", "::", "fe80::1%lo"]
            + NUMBERS
            + UNICODE_DIGITS
        )
    delimiter = rng.choice("||||!#$")
    text = delimiter + delimiter.join(parts) + delimiter
    return text[: rng.randrange(len(text) + 1)].encode() if rng.random() < 0.1 else text.encode()


def mfmt_arg(rng: random.Random, known: list[str]) -> bytes:
    stamp = rng.choice(
        ["20240101000000", "99999999999999", "20231301000000", "19000101000000", "²0230101000000",
         "20240101000000.123", "20240230250000", "0", "", "-20240101000000", "1" * 30]
    )  # fmt: skip
    known = modifiable(known)
    target = encode_name(rng.choice(known)) if known and rng.random() < 0.5 else write_path(rng)
    return stamp.encode() + rng.choice([b" ", b"", b"  "]) + target


def chmod_arg(rng: random.Random, known: list[str]) -> bytes:
    mode = rng.choice(["644", "0755", "777", "7777", "8", "-1", "u+x", "²", "", "0o7", "1" * 20])
    known = modifiable(known)
    target = encode_name(rng.choice(known)) if known and rng.random() < 0.5 else write_path(rng)
    return b"CHMOD " + mode.encode() + b" " + target


def command(rng: random.Random, *, v6: bool, own_port: int, known: list[str]) -> bytes:
    """One command line without its line end: a real verb with a hostile argument, mostly."""
    kind = rng.randrange(12)
    if kind == 0:
        verb = rng.choice(FILE_VERBS)
        line = verb.encode() + b" " + read_path(rng, known)
    elif kind == 1:
        verb = rng.choice(WRITE_VERBS)
        line = verb.encode() + b" " + write_path(rng)
    elif kind == 2:
        line = rng.choice(NUMBER_VERBS).encode() + b" " + number(rng)
    elif kind == 3:
        verb, words = rng.choice(sorted(WORD_VERBS.items()))
        arg = rng.choice(words).encode() if rng.random() < 0.6 else hostile(rng)
        line = verb.encode() + b" " + arg
    elif kind == 4:
        line = b"PORT " + port_arg(rng, own_port)
    elif kind == 5:
        line = b"EPRT " + eprt_arg(rng, v6, own_port)
    elif kind == 6:
        line = b"MFMT " + mfmt_arg(rng, known)
    elif kind == 7:
        line = b"SITE " + chmod_arg(rng, known)
    elif kind == 8:
        verb = rng.choice(BARE_VERBS)
        line = verb.encode() + (b"" if rng.random() < 0.5 else b" " + hostile(rng))
    elif kind == 9:
        line = rng.choice(UNKNOWN_VERBS).encode() + b" " + hostile(rng)
    elif kind == 10:
        line = b"USER " + rng.choice([b"alice", b"anonymous", b"root", b"ftp", hostile(rng)])
    else:
        line = rng.choice([b"SIZE ", b"MDTM ", b"RETR ", b"DELE "]) + rng.choice([b"", b" ", b"\t"])
    return _mangle_verb(rng, line)


def _mangle_verb(rng: random.Random, line: bytes) -> bytes:
    """Sometimes change the verb's case, put spaces in front, or a Telnet IP before it."""
    roll = rng.random()
    if roll < 0.1:
        verb, sep, rest = line.partition(b" ")
        return verb.lower() + sep + rest
    if roll < 0.15:
        return b"   " + line
    if roll < 0.2:
        return b"\xff\xf4\xff\xf2" + line
    if roll < 0.25:
        return line + b" " * rng.randrange(1, 5)
    return line


def raw_bytes(rng: random.Random) -> bytes:
    """Bytes that are not a command: random, long without a line end, IAC floods, HTTP."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 4096))
    if kind == 1:
        return b"A" * rng.randrange(4000, 70000)
    if kind == 2:
        return b"\xff" * rng.randrange(1, 9000)
    if kind == 3:
        return b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    if kind == 4:
        return b"\r\n" * rng.randrange(1, 50) + b"\n\r\r\n\x00\r\n"
    return b"\x16\x03\x01\x02\x00\x01" + rng.randbytes(rng.randrange(0, 600))


def upload_payload(rng: random.Random) -> bytes:
    """Upload data: empty, small, or up to 256 KiB, with CR and LF in it for TYPE A."""
    size = rng.choice([0, 1, 100, 4096, rng.randrange(1, 1 << 18)])
    return (b"a\r\nb\nc\r\x00" + rng.randbytes(size))[:size]


def home_names() -> list[str]:
    """Names the test puts in the home before the run, to feed listings and transfers."""
    return [
        "plain.txt",
        "with space.txt",
        "-rf",
        "日本語.txt",
        "line\nfeed",
        "carriage\rreturn",
        "crlf\r\n226 fake reply",
        "percent%s%n",
        "tab\there",
        "\udcff\udcfe-not-utf8",
        "x" * 200,
        "star*",
        'quote"name',
    ]
