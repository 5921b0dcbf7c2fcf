"""`ftpsup cert`: a self-signed certificate and key for the TLS instances (config.check.load).

Rules: messages go to stderr; exit status 0 on success, 1 on any problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftpsup.tls.validity import MAX_DAYS, MIN_DAYS


def cmd_cert(args: argparse.Namespace, config_dir: Path) -> int:
    """Write a self-signed certificate and key wherever a TLS instance expects one."""
    # Here, not at the top: every other command would load cryptography for nothing.
    from ftpsup.config.check import load
    from ftpsup.tls.certs import host_names, write_self_signed
    from ftpsup.users.accounts import grant_read, grant_search, shared_account

    configs = [c for c in load([config_dir]) if c.ssl_enable or args.all]
    if not configs:
        print(f"ftpsup: no instance in {config_dir} has ssl_enable = true", file=sys.stderr)
        return 1
    pairs = dict.fromkeys((c.rsa_cert_file, c.rsa_private_key_file) for c in configs)
    names = args.name or host_names()
    account = shared_account(config_dir)
    for cert_file, key_file in pairs:
        if (cert_file.exists() or key_file.exists()) and not args.force:
            print(f"ftpsup: {cert_file} exists; kept (use --force to replace)", file=sys.stderr)
            continue
        write_self_signed(cert_file, key_file, names, days=args.days)
        if account is not None:
            # Read by the instances after they drop root, for every new TLS session.
            for path in (cert_file, key_file):
                grant_read(path, account)
                # Opened before the drop and searched after it (ftpsup/server/anchors.py).
                grant_search(path.parent, account)
        print(f"ftpsup: wrote {cert_file} and {key_file} for {', '.join(names)}", file=sys.stderr)
    return 0


def validity_days(text: str) -> int:
    """`--days`: ASCII digits, MIN_DAYS..MAX_DAYS (argparse reports the error and exits 2)."""
    days = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None
    if days is None or not MIN_DAYS <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of days in {MIN_DAYS}..{MAX_DAYS}"
        )
    return days


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cert = commands.add_parser(
        "cert", help="write a self-signed certificate and key for the TLS instances"
    )
    cert.add_argument("--force", action="store_true", help="replace existing files")
    cert.add_argument(
        "--days",
        type=validity_days,
        default=825,
        help=f"validity in days, {MIN_DAYS}..{MAX_DAYS} (825)",
    )
    cert.add_argument(
        "--name", action="append", help="a host name or address (default: this host's)"
    )
    cert.add_argument("--all", action="store_true", help="also for instances without TLS")
