"""Tests for ftpsup.address_slots: a per-address cap shared across threads and processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.address_slots import AddressSlot, AddressSlots, slot_file_stem
from ftpsup.proto.limits import address_key

REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT = 30.0
KEY = "192.0.2.7"

# A child process: takes `count` slots of a key, says how many it got, holds them until its
# stdin closes or it is killed.
CHILD_SCRIPT = """
import sys
from pathlib import Path
from ftpsup import address_slots
from ftpsup.address_slots import AddressSlots
slots = AddressSlots(Path(sys.argv[1]))
held = [slots.take(sys.argv[2], int(sys.argv[3])) for _ in range(int(sys.argv[4]))]
print(sum(slot is not None for slot in held), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def lease_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ports"
    path.mkdir()
    return path


def take_all(slots: AddressSlots, key: str, limit: int) -> list[AddressSlot]:
    taken: list[AddressSlot] = []
    for _ in range(limit + 3):
        slot = slots.take(key, limit)
        if slot is None:
            break
        taken.append(slot)
    return taken


def child(lease_dir: Path, key: str, limit: int, count: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, str(lease_dir), key, str(limit), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    return process


def read_count(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    result: list[str] = []
    stdout = process.stdout
    reader = threading.Thread(target=lambda: result.append(stdout.readline()))
    reader.start()
    reader.join(CHILD_TIMEOUT)
    assert result, "the child did not answer"
    return int(result[0])


def test_a_key_gets_exactly_its_limit(lease_dir: Path) -> None:
    slots = AddressSlots(lease_dir)
    taken = take_all(slots, KEY, 3)
    assert len(taken) == 3
    assert slots.refused == 1
    assert slots.held_by(KEY, 3) == 3


def test_another_key_is_not_held_back(lease_dir: Path) -> None:
    slots = AddressSlots(lease_dir)
    assert len(take_all(slots, KEY, 2)) == 2
    assert len(take_all(slots, "192.0.2.8", 2)) == 2
    assert len(take_all(slots, "2001:db8::/64", 2)) == 2


def test_a_release_frees_one_slot_and_its_file(lease_dir: Path) -> None:
    slots = AddressSlots(lease_dir)
    first, second = take_all(slots, KEY, 2)
    first.release()
    first.release()  # twice is harmless
    assert not first.held
    again = slots.take(KEY, 2)
    assert again is not None
    assert slots.take(KEY, 2) is None
    second.release()
    again.release()
    assert os.listdir(lease_dir) == [], "released slots leave no files"


def test_two_processes_share_the_limit_and_a_killed_one_frees_its_slots(lease_dir: Path) -> None:
    slots = AddressSlots(lease_dir)
    holder = child(lease_dir, KEY, 4, 3)
    try:
        assert read_count(holder) == 3
        mine = take_all(slots, KEY, 4)
        assert len(mine) == 1, "the child holds three of the four"
        holder.kill()
        holder.wait(CHILD_TIMEOUT)
        # The kernel dropped the child's locks: its three slots are free (its files remain).
        more = take_all(slots, KEY, 4)
        assert len(more) == 3
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(CHILD_TIMEOUT)
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.stdout is not None
        holder.stdout.close()


def test_racing_takes_and_releases_never_hand_one_slot_to_two_holders(lease_dir: Path) -> None:
    # Releases unlink the file under the lock; a taker that locked the unlinked file must
    # notice and look again, or two holders would share the one slot of limit 1.
    slots = AddressSlots(lease_dir)
    holders = 0
    worst = 0
    count_lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal holders, worst
        try:
            for _ in range(400):
                slot = slots.take(KEY, 1)
                if slot is None:
                    continue
                with count_lock:
                    holders += 1
                    worst = max(worst, holders)
                with count_lock:
                    holders -= 1
                slot.release()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert worst == 1
    assert os.listdir(lease_dir) == []


def test_a_slot_released_between_a_takers_open_and_lock_has_one_holder_only(
    lease_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interleaving the racing test can only hope to hit, made to happen: the holder
    # unlinks and unlocks its file after a taker opened it and before the taker locks it.
    slots = AddressSlots(lease_dir)
    holder = slots.take(KEY, 1)
    assert holder is not None
    real_open = os.open

    def open_then_holder_releases(path: str, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)
        if holder.held:
            holder.release()
        return fd

    # address_slots calls os.open through the os module itself, so patch it there.
    monkeypatch.setattr(os, "open", open_then_holder_releases)
    taker = slots.take(KEY, 1)
    monkeypatch.undo()
    assert taker is not None, "the slot is free once the holder let go"
    assert slots.take(KEY, 1) is None, "the taker's slot is the file at the path"
    taker.release()
    assert os.listdir(lease_dir) == []


def test_a_lease_directory_removed_while_running_is_made_again(lease_dir: Path) -> None:
    slots = AddressSlots(lease_dir)
    lease_dir.rmdir()
    slot = slots.take(KEY, 1)
    assert slot is not None
    assert slots.take(KEY, 1) is None
    slot.release()


def test_a_limit_below_one_is_a_programming_error(lease_dir: Path) -> None:
    with pytest.raises(ValueError, match="limit"):
        AddressSlots(lease_dir).take(KEY, 0)


def test_a_symlink_in_place_of_a_slot_file_is_not_followed(lease_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    (lease_dir / f"client-{slot_file_stem(KEY)}.0.lock").symlink_to(target)
    with pytest.raises(OSError, match="symbolic links|Too many levels"):
        AddressSlots(lease_dir).take(KEY, 1)
    assert target.read_text() == "keep"


@given(st.ip_addresses())
def test_slot_file_stems_of_address_keys_are_plain_file_names(address: object) -> None:
    stem = slot_file_stem(address_key(str(address)))
    assert "/" not in stem
    assert stem not in ("", ".", "..")


@given(st.ip_addresses(), st.ip_addresses(), st.integers(32, 128))
def test_different_address_keys_get_different_stems(a: object, b: object, prefix: int) -> None:
    key_a = address_key(str(a), ipv6_prefix=prefix)
    key_b = address_key(str(b), ipv6_prefix=prefix)
    assert (slot_file_stem(key_a) == slot_file_stem(key_b)) == (key_a == key_b)


def test_a_key_that_is_no_address_gets_a_hashed_stem() -> None:
    stem = slot_file_stem("../../etc/passwd")
    assert stem.startswith("h")
    assert len(stem) == 33
