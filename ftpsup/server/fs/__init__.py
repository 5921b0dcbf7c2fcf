"""JailedFs: one user's home directory as a jail, enforced by the kernel at every open.

Theory of operation: a JailedFs opens one directory fd on the home when it is made and resolves
every path a client names from that fd, so the kernel, not a check on a string, keeps each open
inside the home; every check is made on the fd that was opened, never on a path. The class is
one base and three parts, each a module with one job:

    jail.py      Jail: the home fd and the settings; virtual paths (Rule 2) resolved from the
                 home fd (Rule 1), parent-and-name access (Rule 3), errors that name virtual
                 paths only (Rule 4)
    openat2.py   the openat2(2) call with RESOLVE_IN_ROOT, through ctypes
    files.py     FileAccess: the fds of RETR, STOR, APPE, REST+STOR and STOU; regular files
                 only (Rule 5); modes of new and written files (Rule 8)
    tree.py      TreeChanges: mkdir, rmdir, unlink, rename, chmod, set_mtime (Rules 3, 6, 8)
    facts.py     Lookups: stat, listdir, is_dir, free_bytes, as proto.facts.FileFacts

Rule 7, threads. Every method blocks on the disk and runs in a worker thread, never on the
event loop: the executor hands it to server/workers.run_sync under the instance's fs
limiter, and the listing builders (listings.py) call it from inside such a thread.

Worker threads may touch:
- the JailedFs, from several threads at once: after __init__ it holds only state that never
  changes (the home fd, umask, file mode, hide_ids, the openat2 choice), and each call opens,
  uses and closes its own fds;
- the fds a method returns, from the one thread that holds them: the caller owns each fd and
  closes it (transfer/copying.py copies through it in its own worker thread);
- the values it returns (FileFacts is frozen) and the owner and group name caches (an
  lru_cache is thread-safe).

Worker threads must not touch:
- trio objects: the nursery, streams and sockets, Events, memory channels, CapacityLimiters,
  cancel scopes, trio's clock. trio is not thread-safe; a thread that needs the loop goes
  through trio.from_thread.
- the Session: only the connection's task touches it. The listing builders read the
  protocol state (proto.session.SessionState: MLST fact choice, write rights) from the
  thread, through a ListingView: safe because the command that started the thread waits for
  it, and no other command runs meanwhile.
- JailedFs.close: only the connection's task calls it, and only when no thread is using the
  object; closed early, the home's fd number could be reused by another open, and a call
  would resolve from the wrong directory. The session ensures this: a call waits for its
  thread even when cancelled (workers.run_sync cannot be abandoned), logout runs in a
  command (REIN, after the transfer) or after the connection's last one, and SITE UMASK
  waits for a running transfer before it closes the JailedFs it replaces.
"""

from __future__ import annotations

from ftpsup.server.fs.facts import Lookups
from ftpsup.server.fs.files import UNIQUE_TRIES, FileAccess
from ftpsup.server.fs.tree import TreeChanges

__all__ = ["UNIQUE_TRIES", "JailedFs"]


class JailedFs(FileAccess, TreeChanges, Lookups):
    """One user's home as a jail. Every method blocks (disk I/O): call them from a worker thread.

    Args:
        root: the home directory; it becomes "/" for this user.
        umask: applied to new files and directories, whatever the process umask is.
        file_mode: mode of a new file before the umask (vsftpd's file_open_mode).
        hide_ids: report "ftp" as owner and group (vsftpd's hide_ids).
        use_openat2: True to require openat2, False for the O_NOFOLLOW walk, None to detect.

    Raises:
        OSError: the home cannot be opened, or use_openat2=True and openat2 is unavailable.
    """

    __slots__ = ()
