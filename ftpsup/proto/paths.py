"""Virtual path arithmetic: what a client names, turned into a normalised absolute path.

Rules:
- Never touches the disk. A virtual path is a `str` that is absolute and normalised: "/",
  "/a", "/a/b"; no trailing slash, no empty, "." or ".." component. Mapping it onto the
  real filesystem, and the symlink-safe jail, belong to ftpsup.server.fs.
- ".." stops at "/": the virtual root is the top of the client's world, so no argument can
  name anything above it (the way a chroot treats "/..").
- "~" and "*" are ordinary characters: no home expansion, no globbing (vsftpd's TRUST notes:
  user input never reaches glob).
- NUL, CR and LF are refused in any argument: NUL cannot be in a Unix name, and CR/LF would
  split replies and listings. RFC 959 §4.1.3 gives 553 for a name not allowed.
- A component longer than 255 bytes in UTF-8 is refused up front with 553, the NAME_MAX of
  Linux filesystems, rather than failing later with ENAMETOOLONG.
"""

from __future__ import annotations

# Linux NAME_MAX: the longest file name, in bytes.
_NAME_MAX = 255
_FORBIDDEN = ("\0", "\r", "\n")


class PathError(ValueError):
    """A path argument the server refuses, with the reply to send."""

    def __init__(self, message: str, reply_code: int = 553) -> None:
        self.reply_code = reply_code
        self.message = message
        super().__init__(f"{reply_code} {message}")


def _check_component(name: str) -> None:
    try:
        size = len(name.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        raise PathError("File name not allowed.") from None
    if size > _NAME_MAX:
        raise PathError("File name too long.")


def _walk(parts: list[str], text: str) -> None:
    for name in text.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if parts:
                parts.pop()
            continue
        _check_component(name)
        parts.append(name)


def resolve(cwd: str, arg: str) -> str:
    """Resolves a client's path argument against the current directory.

    Args:
        cwd: the session's current virtual directory.
        arg: the argument as the client sent it: absolute or relative; "" means `cwd`.

    Returns:
        The normalised absolute virtual path; ".." never climbs above "/".

    Raises:
        PathError: 553 if `arg` holds NUL, CR or LF, or a component longer than 255 bytes.
    """
    if any(char in arg for char in _FORBIDDEN):
        raise PathError("File name not allowed.")
    parts: list[str] = []
    if not arg.startswith("/"):
        _walk(parts, cwd)
    _walk(parts, arg)
    return "/" + "/".join(parts)


def components(vpath: str) -> list[str]:
    """Returns the names along a virtual path: [] for "/", ["a", "b"] for "/a/b"."""
    return [name for name in vpath.split("/") if name]


def split(vpath: str) -> tuple[str, str]:
    """Splits a virtual path into its directory and its last name.

    Returns:
        ("/a", "b") for "/a/b", ("/", "a") for "/a", and ("/", "") for "/".
    """
    head, _, tail = vpath.rpartition("/")
    return (head or "/"), tail


def join(dir_vpath: str, name: str) -> str:
    """Appends one name to a virtual directory: join("/a", "b") is "/a/b".

    An empty name gives the directory back, so join(*split(p)) == p for every virtual path.

    Raises:
        PathError: 553 if `name` is ".", "..", contains "/", NUL, CR or LF, or is too long.
    """
    if not name:
        return dir_vpath
    if name in (".", "..") or "/" in name or any(char in name for char in _FORBIDDEN):
        raise PathError("File name not allowed.")
    _check_component(name)
    if dir_vpath == "/":
        return "/" + name
    return dir_vpath + "/" + name


def is_within(vpath: str, dir_vpath: str) -> bool:
    """Tells whether `vpath` is `dir_vpath` or lies below it ("/ab" is not within "/a")."""
    if dir_vpath == "/":
        return vpath.startswith("/")
    return vpath == dir_vpath or vpath.startswith(dir_vpath + "/")
