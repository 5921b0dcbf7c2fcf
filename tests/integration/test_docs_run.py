"""Run every runnable block of README.md and docs/*.md, as a reader would, in a throwaway host.

Each page that has runnable blocks (```` ```sh ```` without an example mark; see
tests/docs_blocks.py) runs once, top to bottom, as one bash script (`set -e -o pipefail`), as
root, from a copy of the checkout (instances.d/ and contrib/): a variable or a `cd` of one block
is there for the next, as in one terminal. A `<!-- file: /abs/path -->` block is written to
its path when the page reaches it.

The throwaway host is a set of Linux namespaces (unshare): its own network with only loopback,
so port 21 and 990 are free and nothing leaves the machine; its own process ids, so everything
a page started dies with it; and its own mounts: /etc, /var, /srv, /home, /opt, /run and /tmp
are overlays whose changes vanish at the end (useradd, /etc/ftpsup, /var/log/ftpsup...).
`ftpsup` on PATH is the one under test.

What the sandbox cannot do is listed below, explicitly, so drift is easy to fix:
- SUBSTITUTIONS: text of a runnable block replaced before it runs (each must still be found);
- PRELUDES: pages whose runnable blocks run first (a page that continues another);
- HOSTS: shell run before a page, making the host the page assumes (the old vsftpd's files);
- STAND_INS: what runs in place of an example block (each must still be found).

A failure names the block (page:line) and shows that block's output.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs_blocks import PAGES, ROOT, Block, blocks
from tests.integration.throwaway import passable_tmp

# Runnable text that cannot run here (a regular expression), and what runs instead.
SUBSTITUTIONS: dict[str, dict[str, str]] = {
    "README.md": {
        # ftpsup is installed already: the sandbox's `ftpsup` is the one under test.
        r"python3 -m pip install [^&;|\n]*(?:&& |\n)": "",
    },
}

# A page that continues another: that page's runnable blocks run first.
PRELUDES: dict[str, list[str]] = {
    "docs/tls.md": ["README.md"],  # "First run" follows the quick start (the demo user)
}

# The host a page assumes, made before its first block.
HOSTS: dict[str, str] = {
    # The vsftpd host being migrated: its certificate and key (the table's rsa_cert_file and
    # rsa_private_key_file), and a user's old home with a file in it.
    "docs/migrating-from-vsftpd.md": """
        install -d /etc/pki/tls/certs /etc/pki/tls/private /home/alice
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=ftp.example.com \\
          -keyout /etc/pki/tls/private/example.com.key \\
          -out /etc/pki/tls/certs/example.com_fc.pem 2>/dev/null
        chmod 0600 /etc/pki/tls/private/example.com.key
        echo 'from vsftpd' > /home/alice/old.txt
    """,
}

# Example blocks that set the scene for later runnable ones: (page, text in the block) -> the
# commands that do here what the block does on a real host.
STAND_INS: dict[tuple[str, str], str] = {
    # systemd would run the unit's ExecStartPre and ExecStart (test_docs.py checks them).
    ("docs/migrating-from-vsftpd.md", "systemctl enable --now ftpsup"): (
        "ftpsup --config-dir /etc/ftpsup check && ftpsup --config-dir /etc/ftpsup start all"
    ),
}

TOOLS = ["unshare", "mount", "ip", "bash", "openssl", "curl", "lftp", "systemd-analyze"]
PAGE_TIMEOUT = 120  # seconds, a whole page; each takes a few
STEP = "@@@ ftpsup docs test: "
CHECK = 'ftpsup_docs_rc=$?; [ "$ftpsup_docs_rc" = 0 ] || exit "$ftpsup_docs_rc"\n'
SANDBOX = r"""
set -e
ws=$1
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs /mnt
mkdir /mnt/ws /mnt/up /mnt/wk
mount --bind "$ws" /mnt/ws
# /tmp too, as an overlay rather than a fresh tmpfs: the checkout and the interpreter under
# test (CI's venvs) may live there.
for d in etc var srv home opt run tmp; do
    mkdir -p "/mnt/up/$d" "/mnt/wk/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=/mnt/up/$d,workdir=/mnt/wk/$d" "/$d"
done
export HOME=/tmp/ftpsup-docs-home PATH="/mnt/ws/bin:$PATH"
mkdir -p "$HOME"
cd /mnt/ws/checkout
exec bash /mnt/ws/page.sh </dev/null
"""


def runnable_pages() -> list[str]:
    return [page for page in PAGES if any(b.runnable for b in blocks(page))]


def _file_step(block: Block) -> str:
    assert block.file is not None
    eof = "FTPSUP_DOCS_EOF"
    assert eof not in block.text
    path = shlex.quote(block.file)
    return f"mkdir -p \"$(dirname {path})\"\ncat > {path} <<'{eof}'\n{block.text}{eof}\n"


def page_script(page: str, used: set[str]) -> str:
    """The bash script of one page (its preludes first); `used` collects the fix-ups applied."""
    parts = ["set -e -o pipefail\n", f"printf '%s\\n' '{STEP}host {page}'\n", HOSTS.get(page, "")]
    for current in [*PRELUDES.get(page, []), page]:
        for block in blocks(current):
            text: str | None = None
            if block.runnable:
                text = block.text
                for pattern, new in SUBSTITUTIONS.get(current, {}).items():
                    text, count = re.subn(pattern, new, text)
                    if count:
                        used.add(f"substitution {current}: {pattern!r}")
            elif block.file is not None and block.file.startswith("/"):
                text = _file_step(block)
            else:
                for (where, needle), stand_in in STAND_INS.items():
                    if where == current and needle in block.text:
                        used.add(f"stand-in {current}: {needle!r}")
                        text = stand_in + "\n"
            if text is not None:
                # set -e ignores a failure inside `a && b`: the block's last status is checked.
                parts.append(f"printf '\\n%s\\n' '{STEP}{block.where}'\n{text}{CHECK}")
    parts.append(f"printf '\\n%s\\n' '{STEP}end'\n")
    return "".join(parts)


def _fixups(page: str) -> set[str]:
    pages = [*PRELUDES.get(page, []), page]
    found = {f"substitution {p}: {old!r}" for p in pages for old in SUBSTITUTIONS.get(p, {})}
    return found | {f"stand-in {p}: {n!r}" for (p, n) in STAND_INS if p in pages}


def _sections(output: str) -> list[tuple[str, str]]:
    """(step, its output) in order, from the markers the script prints."""
    sections: list[tuple[str, str]] = []
    for chunk in output.split(STEP)[1:]:
        name, _, rest = chunk.partition("\n")
        sections.append((name.strip(), rest))
    return sections


def _missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _namespaces_refused() -> str:
    """Why this host cannot make the sandbox's namespaces, or "" when it can."""
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--pid", "--fork", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return "" if probe.returncode == 0 else probe.stderr.strip() or f"exit {probe.returncode}"


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root (namespaces, mounts)")
@pytest.mark.parametrize("page", runnable_pages())
def test_runnable_blocks_of_the_page_run(page: str) -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (.ci/run installs them)")
    refused = _namespaces_refused()
    if refused:
        pytest.skip(f"this host refuses namespaces (unshare: {refused})")
    used: set[str] = set()
    script = page_script(page, used)
    stale = sorted(_fixups(page) - used)
    assert not stale, f"fix-ups in {__name__} that no longer match the docs: {stale}"
    with passable_tmp("ftpsup-docs-") as ws:
        shutil.copytree(ROOT / "instances.d", ws / "checkout" / "instances.d")
        shutil.copytree(ROOT / "contrib", ws / "checkout" / "contrib")
        for stray in (ws / "checkout" / "instances.d").glob("users.toml"):
            stray.unlink()
        (ws / "bin").mkdir()
        (ws / "bin" / "ftpsup").symlink_to(Path(sys.executable).parent / "ftpsup")
        (ws / "page.sh").write_text(script)
        (ws / "sandbox.sh").write_text(SANDBOX)
        started = time.monotonic()
        try:
            result = subprocess.run(
                ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child"]
                + ["--mount-proc", "--propagation", "private"]
                + ["bash", str(ws / "sandbox.sh"), str(ws)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=PAGE_TIMEOUT,
            )
            output, code = result.stdout, result.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout
            output = out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
            code = None
    sections = _sections(output)
    if sections and sections[-1][0] == "end":
        assert code == 0, output
        print(f"{page}: {len(sections) - 2} step(s) in {time.monotonic() - started:.1f} s")
        return
    if not sections:
        pytest.fail(f"{page}: the sandbox did not start (exit {code}):\n{output}")
    step, text = sections[-1]
    why = f"timed out after {PAGE_TIMEOUT} s" if code is None else f"exit status {code}"
    pytest.fail(f"{step}: this block failed ({why}); its output:\n{text}")
