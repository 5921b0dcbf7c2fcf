"""Errors that cross module boundaries.

Rules: a ConfigError always names the file, and the key when there is one, so an admin can go
straight to the line at fault. Protocol errors carry the FTP reply code they turn into.
"""

from __future__ import annotations

import attrs


class FtpsupError(Exception):
    """Base of every error ftpsup raises on purpose."""


class SupervisorUnreachable(FtpsupError):
    """The supervisor is there but cannot be asked; the message says why and what to do.

    `ftpsup` exits with `exit_status` (4, supervisor/client.py) after printing the message.
    """

    exit_status = 4


@attrs.frozen
class ConfigProblem:
    """One thing wrong in one configuration file.

    A warning (`warning` true) is worth the admin's attention but stops nothing; every other
    problem stops `check`, `start` and `reload`.
    """

    file: str
    key: str | None
    problem: str
    warning: bool = attrs.field(default=False, kw_only=True)

    def __str__(self) -> str:
        text = f"warning: {self.problem}" if self.warning else self.problem
        if self.key:
            return f"{self.file}: {self.key}: {text}"
        return f"{self.file}: {text}"


@attrs.frozen
class SettingProblem:
    """One thing wrong with an instance's settings, before the file that sets them is known.

    `keys` are the keys at fault, the first one blamed (config.check.blame finds the file that
    sets it); empty when no one key is. Printed as the "key: problem" line an admin reads.
    """

    keys: tuple[str, ...]
    problem: str

    def __str__(self) -> str:
        return f"{', '.join(self.keys)}: {self.problem}" if self.keys else self.problem


class ConfigError(FtpsupError):
    """A configuration that must not be used; carries every problem found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UserStoreError(FtpsupError):
    """The user store cannot be read or written, or a user operation is impossible."""


class ProtocolError(FtpsupError):
    """A client error that maps onto one FTP reply."""

    def __init__(self, reply_code: int, message: str) -> None:
        self.reply_code = reply_code
        self.message = message
        super().__init__(f"{reply_code} {message}")
