"""The fenced code blocks of README.md and docs/*.md, and what each one is marked as.

The convention the docs test enforces (docs/development.md, "Code blocks in the docs"):

- A ```` ```sh ```` block is **runnable**: tests/integration/test_docs_run.py runs it, in page
  order, in a throwaway root sandbox (its own network, /etc, /var, /run...; see there).
- `<!-- example: REASON -->` on the line before a ```` ```sh ```` fence makes it an **example**:
  shown, never run. The reason is required (a firewall, a package from the internet, systemd).
- `<!-- file: PATH -->` on the line before a fence says the block *is* the file PATH. A path in
  the repository (`contrib/logrotate.d/ftpsup`) must match that file byte for byte; an absolute
  path (`/etc/ftpsup/_shared.toml`) is written there when the page runs, as the reader would.
- Other blocks (no info string, `console`, `text`, `toml`, `ini`...) are output, transcripts or
  file contents, and are never run. Every `ftpsup` command line in any block (a `$ ftpsup ...`
  line in a transcript) must still parse with ftpsup's own argument parser.

Only this module reads Markdown; it knows nothing about ftpsup.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<info>[^`\s]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(?P<kind>example|file):\s*(?P<value>.*?)\s*-->\s*$")
_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}


@attrs.frozen
class Block:
    """One fenced block: where it is, its info string, its text, and its marker if any."""

    page: str
    line: int  # 1-based line of the opening fence
    info: str
    text: str
    example: str | None = None  # the reason, for `<!-- example: ... -->`
    file: str | None = None  # the path, for `<!-- file: ... -->`

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.info == "sh" and self.example is None and self.file is None


def blocks(page: str) -> list[Block]:
    """Every fenced block of `page` (relative to the repository root), in order."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        mark = _MARK.match(lines[i - 1]) if i > 0 else None
        found.append(
            Block(
                page,
                i + 1,
                opening["info"],
                "".join(line + "\n" for line in body),
                example=mark["value"] if mark and mark["kind"] == "example" else None,
                file=mark["value"] if mark and mark["kind"] == "file" else None,
            )
        )
        i = j + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


def marks_without_block(page: str) -> list[int]:
    """Lines of `<!-- example/file: -->` marks not directly followed by a fence (a typo)."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    return [
        n + 1
        for n, line in enumerate(lines)
        if _MARK.match(line) and not (n + 1 < len(lines) and _FENCE.match(lines[n + 1]))
    ]


def command_lines(block: Block) -> list[str]:
    """The shell command lines of a block: all of a sh block, `$ ...` lines of any other.

    A line ending in a backslash is joined with the next; comments are left to shlex.
    """
    out: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        if block.info != "sh":
            if not raw.startswith("$ "):
                continue
            raw = raw[2:]
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        out.append(pending + raw)
        pending = ""
    return [line for line in out if line.strip() and not line.lstrip().startswith("#")]


def ftpsup_invocations(line: str) -> list[list[str]]:
    """The argument lists given to ftpsup on one shell line (`ftpsup`, `.../ftpsup`,
    `python3 -m ftpsup`), each without the program name. Other commands are skipped."""
    line = re.sub(r"(^|\s)\d*[<>]+&\d+", " ", line)  # 2>&1
    line = re.sub(r"(^|\s)\d+(?=[<>])", " ", line)  # 2>/dev/null: the 2
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote: not a command line
        return []
    commands: list[list[str]] = [[]]
    redirected = False
    for word in words:
        if word in _OPERATORS:
            commands.append([])
        elif set(word) <= set("&|;<>()"):
            redirected = True  # `> FILE`, `2>&1`: the next word is a file, not a command
        elif redirected:
            redirected = False
        else:
            commands[-1].append(word)
    found: list[list[str]] = []
    for words in commands:
        # Skip wrappers such as `runuser -u ftpsup --`, `sudo`, `env A=B`.
        while words and (words[0] in {"sudo", "env", "exec", "time"} or "=" in words[0]):
            words = words[1:]
        if words[:1] == ["runuser"] and "--" in words:
            words = words[words.index("--") + 1 :]
        if words and (words[0] == "ftpsup" or words[0].endswith("/ftpsup")):
            found.append(words[1:])
        elif words[1:3] == ["-m", "ftpsup"] and re.fullmatch(r"python[\d.]*", Path(words[0]).name):
            found.append(words[3:])
    return found


def inline_commands(page: str) -> list[tuple[int, str]]:
    """`ftpsup ...` code spans in the prose of `page` (outside fenced blocks), with their line.

    Synopses (`start all\\|NAME...`, `[--json]`) are left out: they are not command lines.
    """
    found: list[tuple[int, str]] = []
    fence: str | None = None
    for n, line in enumerate((ROOT / page).read_text(encoding="utf-8").splitlines(), 1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening["fence"]
            continue
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", line):
            if re.match(r"(ftpsup|python3? -m ftpsup) ", span) and not re.search(
                r"\||\[|\.\.\.", span
            ):
                found.append((n, span))
    return found


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: str) -> set[str]:
    """The anchors of the headings of `page` (outside fenced blocks)."""
    found: set[str] = set()
    fence: str | None = None
    for line in (ROOT / page).read_text(encoding="utf-8").splitlines():
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening["fence"]
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None and re.match(r"#{1,6} ", line):
            found.add(_anchor(line.lstrip("#")))
    return found


def links(page: str) -> list[tuple[int, str]]:
    """Relative Markdown links `[text](target)` of `page`, with their line."""
    found: list[tuple[int, str]] = []
    for n, line in enumerate((ROOT / page).read_text(encoding="utf-8").splitlines(), 1):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if not re.match(r"[a-z]+:", target):
                found.append((n, target))
    return found


def table_keys(page: str, heading: str) -> dict[str, int]:
    """First-column `key`s of the Markdown tables under `heading` (up to the next heading of
    the same level), with their line numbers."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    level = heading.split(" ", 1)[0]
    keys: dict[str, int] = {}
    inside = False
    for n, line in enumerate(lines, 1):
        if line.startswith("#"):
            this_level = line.split(" ", 1)[0]
            if line.strip() == heading:
                inside = True
                continue
            if inside and len(this_level) <= len(level):
                break
        cell = re.match(r"^\|\s*`([a-z0-9_]+)`\s*\|", line)
        if inside and cell:
            keys[cell[1]] = n
    return keys
