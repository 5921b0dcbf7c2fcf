"""config.check.check: the one judge of a configuration directory (no process, no socket)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ftpsup.config.check import blame, check, from_lines
from ftpsup.config.load import load_instance
from ftpsup.errors import ConfigProblem, SettingProblem
from ftpsup.users import accounts
from ftpsup.users.hashing import hash_password
from ftpsup.users.store import save_users


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A config directory whose state and logs stay in tmp_path, with an empty user store."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "_shared.toml").write_text(
        f'state_dir = "{tmp_path / "run"}"\nlog_dir = "{tmp_path / "log"}"\nrun_as_root = true\n'
    )
    (etc / "users.toml").write_text("[users]\n")
    return etc


def add_shared(etc: Path, text: str) -> Path:
    shared = etc / "_shared.toml"
    shared.write_text(shared.read_text() + text)
    return shared


def instance(etc: Path, name: str, text: str = "") -> Path:
    path = etc / f"{name}.toml"
    path.write_text(f'listen_address = "127.0.0.1"\nlisten_port = {2100 + len(name)}\n{text}')
    return path


def test_a_clean_directory_has_no_problem_and_loads_every_instance(etc: Path) -> None:
    instance(etc, "a")
    checked = check([etc])
    assert checked.problems == []
    assert [c.name for c in checked.configs] == ["a"]


def test_a_certificate_set_in_shared_toml_is_one_problem_against_it(etc: Path) -> None:
    shared = add_shared(
        etc, 'ssl_enable = true\nrsa_cert_file = "c.pem"\nrsa_private_key_file = "k.pem"\n'
    )
    instance(etc, "a")
    instance(etc, "bb")
    instance(etc, "ccc")

    checked = check([etc])

    assert [(p.file, p.key) for p in checked.errors] == [
        (str(shared), "rsa_cert_file"),
        (str(shared), "rsa_private_key_file"),
    ]


@pytest.mark.parametrize(
    ("content", "where", "key", "says"),
    [
        (None, "shared", "user_db_file", "does not exist"),
        ("", "shared", "user_db_file", "is a directory, not a file"),
        ("[users\n", "store", None, "not valid TOML"),
        ("", "store", None, "no [users] table"),
        (
            '[users.al]\npassword = "$6$aa$bbbbbbbb"\nhome = "/srv/al"\n',
            "store",
            None,
            "users.al: password is not a usable hash ($6$ is a crypt(3) hash, not scrypt",
        ),
    ],
    ids=["missing", "directory", "broken_toml", "empty_file", "sha512_crypt"],
)
def test_an_unusable_user_store_is_an_error(
    etc: Path, content: str | None, where: str, key: str | None, says: str
) -> None:
    store = etc / "users.toml"
    store.unlink()
    if content == "" and where == "shared":
        store.mkdir()
    elif content is not None:
        store.write_text(content)
    instance(etc, "a")

    [problem] = check([etc]).problems

    assert problem.file == str(etc / "_shared.toml" if where == "shared" else store)
    assert problem.key == key
    assert says in problem.problem
    assert not problem.warning


def test_a_user_store_given_to_check_is_checked_as_a_store(etc: Path) -> None:
    # `ftpsup check users.toml` read it as an instance: "users: unknown key".
    store = etc / "users.toml"
    assert check([store]).problems == []
    store.write_text('[users.al]\npassword = "$6$aa$bbbbbbbb"\nhome = "/srv/al"\n')
    [problem] = check([store]).problems
    assert (problem.file, problem.key) == (str(store), None)
    assert problem.problem.startswith("users.al: password is not a usable hash ($6$ is")


def test_a_valid_store_and_an_anonymous_only_instance_pass(etc: Path) -> None:
    save_users(etc / "users.toml", {})
    (etc / "users.toml").unlink()
    (etc / "pub").mkdir()
    instance(etc, "a", 'local_enable = false\nanonymous_enable = true\nanon_root = "pub"\n')
    assert check([etc]).problems == []


def test_a_store_with_a_scrypt_user_passes(etc: Path) -> None:
    (etc / "users.toml").write_text(
        f'[users.al]\npassword = "{hash_password("secret", ln=4)}"\nhome = "/srv/al"\n'
    )
    instance(etc, "a")
    assert check([etc]).problems == []


def test_files_that_are_not_instances_are_named_as_skipped(etc: Path, tmp_path: Path) -> None:
    store = tmp_path / "store.toml"
    (etc / "users.toml").rename(store)
    add_shared(etc, f'user_db_file = "{store}"\n')
    (etc / "users.toml").write_text("[users]\n")
    (etc / "_old.toml").write_text("listen_port = 21\n")
    (etc / ".swap.toml").write_text("")
    instance(etc, "a")

    checked = check([etc])

    assert checked.errors == []
    assert [(p.file, p.problem) for p in checked.warnings] == [
        (
            str(etc / "_old.toml"),
            "skipped, not an instance: names starting with _ are not instances "
            "(only _shared.toml is read)",
        ),
        (
            str(etc / "users.toml"),
            "skipped, not an instance: users.toml is the user store's name, never an instance",
        ),
    ]


def test_require_ssl_reuse_false_is_a_warning_against_the_file_that_sets_it(etc: Path) -> None:
    path = instance(etc, "a", "ssl_enable = true\nrequire_ssl_reuse = false\n")
    problems = check([etc]).problems
    [warning] = [p for p in problems if p.warning]
    assert (warning.file, warning.key) == (str(path), "require_ssl_reuse")
    assert "data connection stealing" in warning.problem
    assert str(warning).startswith(f"{path}: require_ssl_reuse: warning: ")


def test_require_ssl_reuse_false_without_tls_says_nothing(etc: Path) -> None:
    instance(etc, "a", "require_ssl_reuse = false\n")
    assert check([etc]).problems == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root drops to nopriv_user")
def test_as_root_a_store_nopriv_user_cannot_read_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same reach check `start` runs after preparing the directories (accounts.py).
    account = accounts.Account("nobodyhere", 64998, 64998)
    monkeypatch.setattr(accounts, "instance_account", lambda config: account)
    base = Path(tempfile.mkdtemp(prefix="ftpsup-check-"))
    base.chmod(0o755)  # pytest's tmp_path is root's (0700): no account could pass it
    try:
        _store_the_account_cannot_read(base)
    finally:
        shutil.rmtree(base)


def _store_the_account_cannot_read(base: Path) -> None:
    etc = base / "etc"
    etc.mkdir(mode=0o755)
    (etc / "_shared.toml").write_text(f'state_dir = "{base / "run"}"\nlog_dir = "{base / "log"}"\n')
    (etc / "users.toml").write_text("[users]\n")
    (etc / "users.toml").chmod(0o600)
    instance(etc, "a")
    instance(etc, "bb")

    problems = [p for p in check([etc]).errors if p.key == "user_db_file"]

    assert problems == [
        ConfigProblem(
            str(etc / "_shared.toml"),
            "user_db_file",
            f"nopriv_user nobodyhere cannot read {etc / 'users.toml'} (no access to "
            f"{etc / 'users.toml'}): run `ftpsup setup`, or see docs/supervisor.md",
        )
    ]


def test_a_relative_directory_names_every_file_as_given(
    etc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Certificate and store problems named the absolute path, the others the relative one.
    add_shared(etc, 'ssl_enable = true\nrsa_cert_file = "c.pem"\n')
    (etc / "users.toml").unlink()
    instance(etc, "a", "idle_sesion_timeout = 5\n")
    instance(etc, "bb")
    monkeypatch.chdir(etc.parent)

    problems = check([Path("etc")]).problems

    assert sorted({p.file for p in problems}) == ["etc/_shared.toml", "etc/a.toml"]


def test_a_setting_problem_is_blamed_on_the_file_that_sets_its_first_key(etc: Path) -> None:
    shared = add_shared(etc, "ssl_tlsv1_2 = true\n")
    own = instance(etc, "a", "ssl_tlsv1_3 = true\n")
    config = load_instance(own)
    found = [
        SettingProblem(("ssl_tlsv1_2", "ssl_tlsv1_3"), "at least one TLS version must be enabled"),
        SettingProblem(("ssl_tlsv1_3",), "x"),
        SettingProblem((), "no key at fault"),
    ]

    problems = blame(config, found, warning=True)

    assert problems == [
        ConfigProblem(
            str(shared),
            "ssl_tlsv1_2, ssl_tlsv1_3",
            "at least one TLS version must be enabled",
            warning=True,
        ),
        ConfigProblem(str(own.absolute()), "ssl_tlsv1_3", "x", warning=True),
        ConfigProblem(str(own.absolute()), None, "no key at fault", warning=True),
    ]
    # Sources that still print "key: problem" lines come to the same problems.
    assert from_lines(config, [str(p) for p in found], warning=True) == problems
