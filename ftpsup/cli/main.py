"""The `ftpsup` command line: start/stop/restart/reload/status, serve, check, setup, cert, user.

Rules: a configuration problem is printed as `file: key: problem`, one per line, and the exit
status is non-zero with nothing bound. Nothing imports this module.

Each command imports what it needs when it runs: `ftpsup status` or `--version` loads neither
trio nor cryptography (a test checks), and starts in half the time (docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ftpsup import __version__
from ftpsup.cli import cert, user
from ftpsup.errors import ConfigError, SupervisorUnreachable

if TYPE_CHECKING:
    from ftpsup.config.schema import InstanceConfig

SYSTEM_CONFIG_DIR = Path("/etc/ftpsup")
EXIT_FAILED = 1
EXIT_CONFIG = 2


def default_config_dir() -> Path:
    """/etc/ftpsup when it exists, else instances.d in the current directory (a checkout)."""
    if SYSTEM_CONFIG_DIR.is_dir():
        return SYSTEM_CONFIG_DIR
    return Path("instances.d").absolute()


def _print_problems(error: ConfigError) -> None:
    for problem in error.problems:
        print(f"ftpsup: {problem}", file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    import trio

    from ftpsup.config.load import load_instance
    from ftpsup.listeners import ListenError, adopt_listener, bind_listener
    from ftpsup.server import anchors, privileges
    from ftpsup.server.instance import preflight, serve_instance
    from ftpsup.users import accounts

    try:
        config = load_instance(args.file)
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_CONFIG
    try:
        account = accounts.instance_account(config)
    except accounts.AccountError as exc:
        print(f"ftpsup: {config.source}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    prepared = accounts.prepare_paths(config, account) if account is not None else []
    pasv_host, more = preflight(config)
    problems = [str(problem) for problem in prepared] + more
    for problem in problems:
        print(f"ftpsup: {config.source}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    try:
        if args.listen_fd is not None:
            sock = adopt_listener(args.listen_fd)
        else:
            sock = bind_listener(config.listen_address, config.listen_port)
    except ListenError as exc:
        print(f"ftpsup: {config.source}: {exc}", file=sys.stderr)
        return 1
    store_dir_fd = None
    if account is not None:
        try:
            # What lies behind a directory the account cannot pass (a checkout in /root).
            anchored = anchors.anchor(config, account)
        except OSError as exc:
            print(f"ftpsup: {config.source}: nopriv_user: {exc}", file=sys.stderr)
            return 1
        config, store_dir_fd = anchored.config, anchored.store_dir_fd
        # Before any thread exists: capabilities and no_new_privs belong to each thread.
        privileges.preload()
        os.chdir("/")  # every configured path is absolute; keep no directory of the admin's
        keep = privileges.needs_bind_service(config.connect_from_port_20, config.ftp_data_port)
        try:
            privileges.drop(account, keep_bind_service=keep)
        except privileges.PrivilegeError as exc:
            print(f"ftpsup: {config.source}: nopriv_user: {exc}", file=sys.stderr)
            return 1
    serve = functools.partial(
        serve_instance,
        config,
        sock,
        pasv_host=pasv_host,
        status_fd=args.status_fd,
        account=account,
        store_dir_fd=store_dir_fd,
    )
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve)
    return 0


def _config_dir(args: argparse.Namespace) -> Path:
    return Path(args.config_dir or default_config_dir()).absolute()


def _preflight(config: InstanceConfig) -> list[str]:
    from ftpsup.server.instance import preflight

    return preflight(config, create=False)[1]


def cmd_start(args: argparse.Namespace) -> int:
    from ftpsup.supervisor import launch

    return launch.start(
        _config_dir(args),
        args.names,
        foreground=args.foreground,
        notify_fd=args.notify_fd,
        preflight=_preflight,
    )


def cmd_stop(args: argparse.Namespace) -> int:
    from ftpsup.supervisor import client

    return client.stop(_config_dir(args), args.names)


def cmd_restart(args: argparse.Namespace) -> int:
    from ftpsup.supervisor import client

    return client.simple(_config_dir(args), "restart", args.names)


def cmd_reload(args: argparse.Namespace) -> int:
    from ftpsup.supervisor import client

    return client.simple(_config_dir(args), "reload", [])


def cmd_reopen_logs(args: argparse.Namespace) -> int:
    from ftpsup.supervisor import client

    return client.simple(_config_dir(args), "reopen-logs", [])


def cmd_status(args: argparse.Namespace) -> int:
    from ftpsup.supervisor import client

    return client.status(_config_dir(args), as_json=args.json)


def cmd_check(args: argparse.Namespace) -> int:
    from ftpsup.config.check import check

    targets = args.paths or [args.config_dir or default_config_dir()]
    checked = check(targets)
    for problem in checked.problems:
        print(problem, file=sys.stderr)
    errors, warnings = len(checked.errors), len(checked.warnings)
    if errors:
        also = f", {warnings} warning(s)" if warnings else ""
        print(f"{errors} problem(s) found{also}", file=sys.stderr)
        return 1
    if warnings:
        print(f"{warnings} warning(s)", file=sys.stderr)
    print("ok")
    return 0


def cmd_cert(args: argparse.Namespace) -> int:
    return cert.cmd_cert(args, Path(args.config_dir or default_config_dir()))


def cmd_user(args: argparse.Namespace) -> int:
    from ftpsup.config.load import user_db_path
    from ftpsup.users import accounts

    config_dir = args.config_dir or default_config_dir()
    args.default_user_db = user_db_path(Path(config_dir))
    args.instance_account = accounts.shared_account(Path(config_dir))
    return user.run(args)


def cmd_setup(args: argparse.Namespace) -> int:
    from ftpsup.cli import setup

    return setup.run(_config_dir(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftpsup", description="FTP/FTPS server for IPv4 and IPv6 with a supervisor."
    )
    parser.add_argument("--version", action="version", version=f"ftpsup {__version__}")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help=f"configuration directory ({SYSTEM_CONFIG_DIR} if it exists, else ./instances.d)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def add_names(command: argparse.ArgumentParser) -> None:
        command.add_argument("names", nargs="+", metavar="all|NAME", help="instance names, or all")

    start = commands.add_parser("start", help="start the supervisor and instances (background)")
    add_names(start)
    start.add_argument(
        "--foreground", action="store_true", help="stay in the foreground (systemd, containers)"
    )
    start.add_argument("--notify-fd", type=int, default=None, help=argparse.SUPPRESS)
    start.set_defaults(func=cmd_start)

    stop = commands.add_parser("stop", help="drain and stop instances; all ends the supervisor")
    add_names(stop)
    stop.set_defaults(func=cmd_stop)

    restart = commands.add_parser("restart", help="replace instances' processes gracefully")
    add_names(restart)
    restart.set_defaults(func=cmd_restart)

    reload = commands.add_parser("reload", help="re-read every file and apply it, or refuse it")
    reload.set_defaults(func=cmd_reload)

    status = commands.add_parser("status", help="state, sessions and leases of every instance")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_status)

    reopen = commands.add_parser("reopen-logs", help="reopen every log file (logrotate)")
    reopen.set_defaults(func=cmd_reopen_logs)

    serve = commands.add_parser("serve", help="run one instance in the foreground")
    serve.add_argument("file", type=Path, help="the instance's TOML file")
    serve.add_argument(
        "--listen-fd", type=int, default=None, help="serve this inherited listening socket"
    )
    serve.add_argument("--status-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser("check", help="validate configuration files; report every problem")
    check.add_argument("paths", nargs="*", type=Path, help="instance files or config directories")
    check.set_defaults(func=cmd_check)

    setup = commands.add_parser(
        "setup", help="as root: create the instances' account (nopriv_user), share the store"
    )
    setup.set_defaults(func=cmd_setup)

    cert.add_parser(commands)
    commands.choices["cert"].set_defaults(func=cmd_cert)

    user.add_parser(commands)
    commands.choices["user"].set_defaults(func=cmd_user)
    return parser


def _accept_config_dir_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let every command take --config-dir after its name too: `ftpsup check --config-dir X`.

    SUPPRESS as the default: a command that was not given it keeps the value given before the
    command's name (or None).
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, command in action.choices.items():
            if name == "serve":
                continue  # serves one file, whatever directory it is in
            if any(isinstance(a, argparse._SubParsersAction) for a in command._actions):
                _accept_config_dir_anywhere(command)
            else:
                command.add_argument(
                    "--config-dir",
                    type=Path,
                    default=argparse.SUPPRESS,
                    help="configuration directory (also taken before the command)",
                )


def _config_dir_problem(args: argparse.Namespace) -> str | None:
    """Why the configuration directory this command needs is not there, or None."""
    if args.command == "serve" or (args.command == "check" and args.paths):
        return None
    if args.config_dir is not None:
        if Path(args.config_dir).is_dir():
            return None
        what = "not a directory" if Path(args.config_dir).exists() else "no such directory"
        return f"--config-dir {args.config_dir}: {what}"
    if args.command == "user" and args.user_db is not None:
        return None
    found = default_config_dir()
    if found.is_dir():
        return None
    return (
        f"no configuration directory: neither {SYSTEM_CONFIG_DIR} nor {found} exists; "
        f"name one with --config-dir"
    )


def main(argv: list[str] | None = None) -> int:
    """Run one command. Results go to stdout; every error and problem goes to stderr."""
    parser = build_parser()
    _accept_config_dir_anywhere(parser)
    args = parser.parse_args(argv)
    problem = _config_dir_problem(args)
    if problem is not None:
        print(f"ftpsup: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        result: int = args.func(args)
    except SupervisorUnreachable as exc:
        print(f"ftpsup: {exc}", file=sys.stderr)
        return exc.exit_status
    except OSError as exc:
        # The environment, not a bug: a file of another account (a root run before this one),
        # a full disk. One line naming the file, never a traceback.
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"ftpsup: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    os._exit(main())
