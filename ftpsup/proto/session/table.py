"""The command table: every verb ftpsup runs, what it needs before it may run, and its handler.

One row per verb, so a verb cannot have a handler without its pre-checks (login, argument,
write permission; proto.commands.precheck), its HELP syntax or its rule for running during a
transfer, nor the other way round.
"""

from __future__ import annotations

import attrs

from ftpsup.proto.commands import Arg, CommandSpec
from ftpsup.proto.session import verbs_data as data
from ftpsup.proto.session import verbs_files as files
from ftpsup.proto.session import verbs_info as info
from ftpsup.proto.session import verbs_login as login
from ftpsup.proto.session import verbs_tls as tls
from ftpsup.proto.session.types import Handler


@attrs.frozen
class Verb:
    spec: CommandSpec
    handler: Handler


def _verb(
    verb: str,
    login: bool,
    arg: Arg,
    handler: Handler,
    syntax: str = "",
    *,
    writes: bool = False,
    during_transfer: bool = False,
) -> Verb:
    return Verb(CommandSpec(verb, login, arg, writes, syntax or verb, during_transfer), handler)


_N, _R, _O = Arg.NONE, Arg.REQUIRED, Arg.OPTIONAL

VERBS: dict[str, Verb] = {
    v.spec.verb: v
    for v in (
        # Access control (RFC 959 §4.1.1)
        _verb("USER", False, _R, login.user, "USER <sp> username"),
        _verb("PASS", False, _O, login.password, "PASS [<sp> password]"),
        _verb("ACCT", False, _R, login.account, "ACCT <sp> account"),
        _verb("CWD", True, _R, files.change_dir, "CWD <sp> pathname"),
        _verb("CDUP", True, _N, files.change_to_parent),
        _verb("REIN", False, _N, login.reinitialize),
        _verb("QUIT", False, _N, login.quit_, during_transfer=True),
        # Transfer parameters (§4.1.2, RFC 2428)
        _verb("PORT", True, _R, data.port, "PORT <sp> h1,h2,h3,h4,p1,p2"),
        _verb("PASV", True, _N, data.passive),
        _verb("EPRT", True, _R, data.extended_port, "EPRT <sp> |proto|addr|port|"),
        _verb("EPSV", True, _O, data.extended_passive, "EPSV [<sp> proto | ALL]"),
        _verb("TYPE", True, _R, data.representation_type, "TYPE <sp> A | I | L 8"),
        _verb("STRU", True, _R, data.structure, "STRU <sp> F"),
        _verb("MODE", True, _R, data.transfer_mode, "MODE <sp> S"),
        # Service commands (§4.1.3, RFC 3659)
        _verb("RETR", True, _R, data.retrieve, "RETR <sp> pathname"),
        _verb("STOR", True, _R, data.store, "STOR <sp> pathname", writes=True),
        _verb("STOU", True, _O, data.store_unique, "STOU [<sp> pathname]", writes=True),
        _verb("APPE", True, _R, data.append, "APPE <sp> pathname", writes=True),
        _verb("ALLO", True, _R, files.allocate, "ALLO <sp> size"),
        _verb("REST", True, _R, data.restart, "REST <sp> offset"),
        _verb("RNFR", True, _R, files.rename_from, "RNFR <sp> pathname", writes=True),
        _verb("RNTO", True, _R, files.rename_to, "RNTO <sp> pathname", writes=True),
        _verb("ABOR", True, _N, data.abort, during_transfer=True),
        _verb("DELE", True, _R, files.delete, "DELE <sp> pathname", writes=True),
        _verb("RMD", True, _R, files.remove_dir, "RMD <sp> pathname", writes=True),
        _verb("MKD", True, _R, files.make_dir, "MKD <sp> pathname", writes=True),
        _verb("PWD", True, _N, files.print_dir),
        _verb("LIST", True, _O, data.list_, "LIST [<sp> pathname]"),
        _verb("NLST", True, _O, data.name_list, "NLST [<sp> pathname]"),
        _verb("SITE", True, _R, files.site, "SITE <sp> CHMOD | UMASK | HELP"),
        _verb("SYST", False, _N, info.system),
        _verb("STAT", False, _O, info.status, "STAT [<sp> pathname]", during_transfer=True),
        _verb("HELP", False, _O, info.help_, "HELP [<sp> command]"),
        _verb("NOOP", False, _N, info.noop, during_transfer=True),
        # RFC 2389
        _verb("FEAT", False, _N, info.features),
        _verb("OPTS", False, _R, info.options, "OPTS <sp> UTF8 ON | MLST facts"),
        # RFC 3659
        _verb("SIZE", True, _R, files.size, "SIZE <sp> pathname"),
        _verb("MDTM", True, _R, files.modification_time, "MDTM <sp> pathname"),
        _verb("MLST", True, _O, info.machine_listing, "MLST [<sp> pathname]"),
        _verb("MLSD", True, _O, data.machine_list_dir, "MLSD [<sp> pathname]"),
        # RFC 2228 / RFC 4217 (FTPS)
        _verb("AUTH", False, _R, tls.auth, "AUTH <sp> TLS"),
        _verb("PBSZ", False, _R, tls.pbsz, "PBSZ <sp> 0"),
        _verb("PROT", False, _R, tls.prot, "PROT <sp> P | C"),
        _verb("CCC", False, _N, tls.clear_command_channel),
        # draft-somers-ftp-mfxx
        _verb(
            "MFMT",
            True,
            _R,
            files.set_modification_time,
            "MFMT <sp> YYYYMMDDHHMMSS <sp> pathname",
            writes=True,
        ),
    )
}

SPECS: dict[str, CommandSpec] = {verb: v.spec for verb, v in VERBS.items()}
