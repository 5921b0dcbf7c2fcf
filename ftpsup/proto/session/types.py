"""The shapes shared by the machine and the verbs: what a handler returns, what comes out."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, TypeAlias

from ftpsup.proto.replies import Reply
from ftpsup.proto.session.actions import Action, Outcome

if TYPE_CHECKING:
    from ftpsup.proto.session.machine import FtpSession

# What the executor gets: replies to send and actions to carry out, in order.
Item: TypeAlias = Reply | Action
# A verb that needs I/O: yields the action it waits on, receives that action's outcome.
Steps: TypeAlias = Generator[Action, Outcome, None]
# A verb's handler: None when it answered at once, else the Steps still to run.
Handler: TypeAlias = "Callable[[FtpSession, str], Steps | None]"
