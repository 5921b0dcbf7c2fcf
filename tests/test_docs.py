"""The docs match the code: commands parse, keys exist, shipped files are what the docs show.

Checks without I/O beyond reading files (the unit check runs systemd-analyze when present).
The runnable blocks themselves are run by tests/integration/test_docs_run.py. Each failure
names the page and line to fix.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import attrs
import pytest

from ftpsup.cli.main import build_parser
from ftpsup.config.schema import InstanceConfig
from tests.docs_blocks import (
    PAGES,
    ROOT,
    Block,
    all_blocks,
    anchors,
    command_lines,
    ftpsup_invocations,
    inline_commands,
    links,
    marks_without_block,
    table_keys,
)

BLOCKS = all_blocks()
# Attributes of InstanceConfig that are not configuration keys.
NOT_KEYS = {"name", "source", "config_dir"}
CONFIG_KEYS = {f.name for f in attrs.fields(InstanceConfig)} - NOT_KEYS
UNIT = ROOT / "contrib" / "ftpsup.service"
# Where contrib/ftpsup.service expects ftpsup; docs/supervisor.md's install command replaces it.
UNIT_FTPSUP = "/usr/local/bin/ftpsup"


def _parse_problem(argv: list[str]) -> str | None:
    """None when ftpsup's parser takes `argv`, else its complaint."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return err.getvalue().strip().splitlines()[-1]
    return None


def test_every_mark_is_on_a_block_and_every_example_has_a_reason() -> None:
    stray = [f"{page}:{n}" for page in PAGES for n in marks_without_block(page)]
    assert not stray, f"<!-- example/file: --> not directly before a ``` fence: {stray}"
    no_reason = [b.where for b in BLOCKS if b.example is not None and not b.example]
    assert not no_reason, f"<!-- example: --> needs a reason: {no_reason}"


def test_the_docs_have_runnable_blocks() -> None:
    # The run test must have something to run: a lost marker convention would make it vacuous.
    runnable = {b.page for b in BLOCKS if b.runnable}
    assert {"README.md", "docs/migrating-from-vsftpd.md", "docs/tls.md"} <= runnable


def test_every_ftpsup_command_in_the_docs_parses() -> None:
    bad: list[str] = []
    seen = 0
    for block in BLOCKS:
        for line in command_lines(block):
            for argv in ftpsup_invocations(line):
                seen += 1
                problem = _parse_problem(argv)
                if problem is not None:
                    bad.append(f"{block.where}: ftpsup {' '.join(argv)}: {problem}")
    assert seen > 20, "found too few ftpsup command lines: is the extraction broken?"
    assert not bad, "\n".join(bad)


def test_every_ftpsup_command_in_the_prose_names_real_commands_and_options() -> None:
    # Prose names commands without their arguments (`ftpsup user add`): a missing argument is
    # fine there, an unknown command or option is not.
    bad: list[str] = []
    spans = [(page, n, span) for page in PAGES for n, span in inline_commands(page)]
    for page, n, span in spans:
        for argv in ftpsup_invocations(span):
            problem = _parse_problem(argv)
            if problem is not None and "arguments are required" not in problem:
                bad.append(f"{page}:{n}: `{span}`: {problem}")
    assert len(spans) > 50, "found too few `ftpsup ...` spans: is the extraction broken?"
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ftpsup start all", [["start", "all"]]),
        ("a && ftpsup cert --force | tee x", [["cert", "--force"]]),
        ("runuser -u ftpsup -- ftpsup serve f.toml &", [["serve", "f.toml"]]),
        ("python3 -m ftpsup check  # comment", [["check"]]),
        ("/opt/ftpsup/bin/ftpsup --version", [["--version"]]),
        ("curl ftp://x/ftpsup", []),
        ("sed x > /etc/logrotate.d/ftpsup", []),
        ("ftpsup cert --days 365 2>/dev/null", [["cert", "--days", "365"]]),
        ("ftpsup reopen-logs >/dev/null 2>&1 || true", [["reopen-logs"]]),
    ],
)
def test_ftpsup_invocations_are_found(line: str, expected: list[list[str]]) -> None:
    assert ftpsup_invocations(line) == expected


def test_the_parser_check_catches_a_wrong_command() -> None:
    assert _parse_problem(["start", "all"]) is None
    assert _parse_problem(["--version"]) is None
    assert _parse_problem(["strat", "all"]) is not None
    assert _parse_problem(["status", "--jsn"]) is not None


def test_every_relative_link_and_anchor_in_the_docs_exists() -> None:
    bad: list[str] = []
    for page in PAGES:
        for n, target in links(page):
            path, _, anchor = target.partition("#")
            file = (ROOT / page).parent / path if path else ROOT / page
            if not file.exists():
                bad.append(f"{page}:{n}: {target}: no such file")
            elif anchor and anchor not in anchors(str(file.resolve().relative_to(ROOT))):
                bad.append(f"{page}:{n}: {target}: no such heading")
    assert not bad, "\n".join(bad)


def test_configuration_md_documents_exactly_the_config_keys() -> None:
    documented = table_keys("docs/configuration.md", "## Keys")
    missing = sorted(CONFIG_KEYS - documented.keys())
    unknown = sorted(
        f"docs/configuration.md:{n}: {k}" for k, n in documented.items() if k not in CONFIG_KEYS
    )
    assert not missing, f"keys of InstanceConfig not in docs/configuration.md's tables: {missing}"
    assert not unknown, f"documented keys ftpsup does not have: {unknown}"


def _toml_blocks() -> list[Block]:
    return [b for b in BLOCKS if b.info == "toml"]


@pytest.mark.parametrize("block", _toml_blocks(), ids=lambda b: b.where)
def test_toml_blocks_load_and_name_real_keys(block: Block) -> None:
    text = "\n".join(line.strip() for line in block.text.splitlines())  # indented in lists
    data = tomllib.loads(text)
    unknown = sorted(set(data) - CONFIG_KEYS)
    assert not unknown, f"{block.where}: not configuration keys: {unknown}"


def _repo_file_blocks() -> list[Block]:
    return [b for b in BLOCKS if b.file is not None and not b.file.startswith("/")]


def test_the_docs_show_the_shipped_logrotate_file() -> None:
    shown = [b.file for b in _repo_file_blocks()]
    assert "contrib/logrotate.d/ftpsup" in shown


@pytest.mark.parametrize("block", _repo_file_blocks(), ids=lambda b: b.where)
def test_a_file_block_is_the_file(block: Block) -> None:
    assert block.file is not None
    shipped = (ROOT / block.file).read_text(encoding="utf-8")
    assert block.text == shipped, f"{block.where} differs from {block.file}"


def test_the_unit_runs_ftpsup_from_the_documented_path() -> None:
    text = UNIT.read_text(encoding="utf-8")
    execs = [line for line in text.splitlines() if line.startswith("Exec")]
    assert execs, "no Exec lines"
    assert all(line.split("=", 1)[1].startswith(UNIT_FTPSUP + " ") for line in execs), execs
    supervisor_md = (ROOT / "docs" / "supervisor.md").read_text(encoding="utf-8")
    assert UNIT_FTPSUP in supervisor_md, "docs/supervisor.md must say where the unit looks"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_installed_unit_verifies(tmp_path: Path) -> None:
    # As installed: the ExecStart path replaced by where ftpsup is (docs/supervisor.md).
    ftpsup = Path(sys.executable).parent / "ftpsup"
    assert ftpsup.exists(), ftpsup
    unit = tmp_path / "ftpsup.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(UNIT_FTPSUP, str(ftpsup)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip()


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="needs logrotate")
def test_the_logrotate_file_parses(tmp_path: Path) -> None:
    result = subprocess.run(
        ["logrotate", "--debug", "--state", str(tmp_path / "state")]
        + [str(ROOT / "contrib" / "logrotate.d" / "ftpsup")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
