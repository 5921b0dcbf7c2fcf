from __future__ import annotations

import calendar
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.facts import FileFacts, FileKind
from ftpsup.proto.listing import (
    ALL_WRITES,
    NO_WRITES,
    WriteRights,
    format_time_val,
    list_line,
    mlsx_line,
    mode_string,
    parse_time_val,
)

DAY = 24 * 60 * 60
# 2026-11-27 08:21:00 UTC
NOV_27 = calendar.timegm((2026, 11, 27, 8, 21, 0, 0, 0, 0))


def facts(**changes: object) -> FileFacts:
    values: dict[str, object] = {
        "name": "name",
        "kind": FileKind.DIR,
        "size": 4096,
        "mtime": NOV_27,
        "mode": 0o755,
        "nlink": 2,
    }
    values.update(changes)
    return FileFacts(**values)  # type: ignore[arg-type]


def test_list_line_matches_vsftpd_columns_exactly() -> None:
    line = list_line(facts(), now=NOV_27 + 3600)
    assert line == "drwxr-xr-x    2 ftp      ftp          4096 Nov 27 08:21 name"


def test_list_line_for_a_file_in_an_older_year_shows_the_year() -> None:
    mtime = calendar.timegm((2024, 3, 5, 10, 0, 0, 0, 0, 0))
    f = facts(kind=FileKind.FILE, size=12, mode=0o644, nlink=1, name="a.txt", mtime=mtime)
    line = list_line(f, now=NOV_27)
    assert line == "-rw-r--r--    1 ftp      ftp            12 Mar 05  2024 a.txt"


def test_list_line_pads_owner_and_group_and_keeps_long_names_whole() -> None:
    f = facts(owner="administrator", group="g", nlink=12345, size=123456789)
    line = list_line(f, now=NOV_27)
    assert line.startswith("drwxr-xr-x 12345 administrator g        123456789 Nov 27 ")


def test_list_line_shows_time_within_the_last_six_months() -> None:
    assert "Nov 27 08:21" in list_line(facts(), now=NOV_27 + 181 * DAY)


def test_list_line_shows_year_after_six_months() -> None:
    assert "Nov 27  2026" in list_line(facts(), now=NOV_27 + 183 * DAY)


def test_list_line_tolerates_an_hour_of_future_for_clock_skew() -> None:
    assert "08:21" in list_line(facts(), now=NOV_27 - 3000)


def test_list_line_shows_year_for_a_date_far_in_the_future() -> None:
    assert "Nov 27  2026" in list_line(facts(), now=NOV_27 - 2 * DAY)


def test_list_line_uses_english_month_names() -> None:
    months = [
        list_line(facts(mtime=calendar.timegm((2026, m, 1, 0, 0, 0, 0, 0, 0))), now=NOV_27)
        for m in range(1, 13)
    ]
    assert [line.split()[5] for line in months] == [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    ]  # fmt: skip


def test_list_line_shifts_by_the_utc_offset_with_use_localtime() -> None:
    line = list_line(facts(), now=NOV_27, use_localtime=True, utc_offset=2 * 3600)
    assert "Nov 27 10:21" in line


def test_list_line_ignores_the_offset_without_use_localtime() -> None:
    assert "08:21" in list_line(facts(), now=NOV_27, utc_offset=2 * 3600)


def test_list_line_for_a_link_shows_its_target() -> None:
    f = facts(kind=FileKind.LINK, mode=0o777, nlink=1, size=7, name="l", link_target="/a/b")
    line = list_line(f, now=NOV_27)
    assert line.startswith("lrwxrwxrwx ")
    assert line.endswith(" l -> /a/b")


def test_list_line_cannot_split_an_entry_with_a_newline_in_its_name() -> None:
    line = list_line(facts(name="a\r\nb"), now=NOV_27)
    assert "\n" not in line
    assert "\r" not in line
    assert line.endswith(" a??b")


def test_list_line_survives_an_absurd_mtime() -> None:
    assert list_line(facts(mtime=1e18), now=NOV_27).endswith("Dec 31  9999 name")


@pytest.mark.parametrize(
    ("kind", "mode", "expected"),
    [
        (FileKind.DIR, 0o755, "drwxr-xr-x"),
        (FileKind.FILE, 0o644, "-rw-r--r--"),
        (FileKind.LINK, 0o777, "lrwxrwxrwx"),
        (FileKind.FILE, 0o000, "----------"),
        (FileKind.FILE, 0o4755, "-rwsr-xr-x"),
        (FileKind.FILE, 0o4644, "-rwSr--r--"),
        (FileKind.FILE, 0o2755, "-rwxr-sr-x"),
        (FileKind.FILE, 0o2745, "-rwxr-Sr-x"),
        (FileKind.DIR, 0o1777, "drwxrwxrwt"),
        (FileKind.DIR, 0o1776, "drwxrwxrwT"),
        (FileKind.FILE, 0o170644, "-rw-r--r--"),
    ],
)
def test_mode_string_shows_type_permissions_and_special_bits(
    kind: FileKind, mode: int, expected: str
) -> None:
    assert mode_string(kind, mode) == expected


def test_mlsx_line_for_a_writable_file_lists_its_facts_then_the_name() -> None:
    f = facts(kind=FileKind.FILE, size=12, mode=0o644, unique="803g1a2", name="a b.txt")
    assert mlsx_line(f, rights=ALL_WRITES) == (
        "type=file;size=12;modify=20261127082100;perm=adfrw;unique=803g1a2;UNIX.mode=0644; a b.txt"
    )


def test_mlsx_line_for_a_read_only_file_has_perm_r() -> None:
    assert ";perm=r;" in mlsx_line(facts(kind=FileKind.FILE), rights=NO_WRITES)


def test_mlsx_line_for_a_directory_has_no_size() -> None:
    line = mlsx_line(facts(), rights=ALL_WRITES)
    assert line == "type=dir;modify=20261127082100;perm=cdeflmp;UNIX.mode=0755; name"


def test_mlsx_line_for_a_read_only_directory_has_perm_el() -> None:
    assert ";perm=el;" in mlsx_line(facts(), rights=NO_WRITES)


def test_mlsx_line_for_a_dangling_link_says_symlink() -> None:
    line = mlsx_line(facts(kind=FileKind.LINK, link_target="gone"), rights=ALL_WRITES)
    assert line.startswith("type=OS.unix=symlink;modify=")
    assert ";perm=df;" in line


def test_mlsx_line_describes_a_link_to_a_file_as_the_file() -> None:
    # What MLST (which follows the link) says too; lftp's mirror skips any other type.
    link = facts(
        kind=FileKind.LINK, target_kind=FileKind.FILE, size=12, mode=0o644, link_target="f"
    )
    line = mlsx_line(link, rights=NO_WRITES)
    assert line == "type=file;size=12;modify=20261127082100;perm=r;UNIX.mode=0644; name"


def test_mlsx_line_describes_a_link_to_a_directory_as_the_directory() -> None:
    link = facts(kind=FileKind.LINK, target_kind=FileKind.DIR, link_target="d")
    assert mlsx_line(link, rights=NO_WRITES).startswith("type=dir;modify=")


def test_mlsx_line_describes_a_link_to_a_fifo_as_special() -> None:
    link = facts(kind=FileKind.LINK, target_kind=FileKind.OTHER, link_target="fifo")
    line = mlsx_line(link, rights=ALL_WRITES)
    assert line.startswith("type=OS.unix=special;")
    assert "size=" not in line


@pytest.mark.parametrize(
    ("rights", "file_perm", "dir_perm"),
    [
        # anon_upload_enable alone: STOR, STOU and APPE.
        (WriteRights(store=True, append=True), "arw", "cel"),
        # anon_mkdir_write_enable alone.
        (WriteRights(make_dir=True), "r", "elm"),
        # anon_other_write_enable alone: delete, rename, remove, purge; no upload.
        (WriteRights(delete=True, remove_dir=True, rename=True), "dfr", "deflp"),
        # Each letter on its own.
        (WriteRights(append=True), "ar", "el"),
        (WriteRights(remove_dir=True), "r", "del"),
        (NO_WRITES, "r", "el"),
        (ALL_WRITES, "adfrw", "cdeflmp"),
    ],
)
def test_mlsx_perm_letters_are_exactly_the_verbs_allowed(
    rights: WriteRights, file_perm: str, dir_perm: str
) -> None:
    assert f";perm={file_perm};" in mlsx_line(facts(kind=FileKind.FILE), rights=rights)
    assert f";perm={dir_perm};" in mlsx_line(facts(), rights=rights)


def test_mlsx_perm_of_a_dangling_link_is_delete_and_rename_as_allowed() -> None:
    link = facts(kind=FileKind.LINK, link_target="gone")
    assert ";perm=;" in mlsx_line(link, rights=WriteRights(store=True, make_dir=True))
    assert ";perm=f;" in mlsx_line(link, rights=WriteRights(rename=True))


def test_mlsx_line_for_a_special_file_is_not_offered_as_a_file() -> None:
    line = mlsx_line(facts(kind=FileKind.OTHER), rights=ALL_WRITES)
    assert line.startswith("type=OS.unix=special;")
    assert "size=" not in line


def test_mlsx_line_uses_facts_name_for_mlst() -> None:
    assert mlsx_line(facts(), rights=ALL_WRITES, facts_name="/pub/name").endswith("; /pub/name")


def test_mlsx_line_keeps_only_permission_bits_in_unix_mode() -> None:
    assert "UNIX.mode=4755;" in mlsx_line(facts(mode=0o104755), rights=ALL_WRITES)


def test_format_time_val_is_utc_with_fractions_dropped() -> None:
    assert format_time_val(NOV_27 + 0.999) == "20261127082100"


def test_format_time_val_before_the_epoch() -> None:
    assert format_time_val(-1.5) == "19691231235958"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20261127082100", NOV_27),
        ("20261127082100.5", NOV_27 + 0.5),
        ("19700101000000", 0.0),
        ("20240229120000", calendar.timegm((2024, 2, 29, 12, 0, 0, 0, 0, 0))),
    ],
)
def test_parse_time_val_reads_utc_with_an_optional_fraction(text: str, expected: float) -> None:
    assert parse_time_val(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026112708210",
        "202611270821000",
        "2026-11-27 08:21",
        "20261327082100",
        "20261100082100",
        "20230229120000",
        "20261127242100",
        "20261127086000",
        "20261127082160",
        "20261127082100.",
        " 20261127082100",
        "٢٠٢٦١١٢٧٠٨٢١٠٠",
    ],
)
def test_parse_time_val_refuses_junk_and_impossible_dates(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the contract
        parse_time_val(text)


timestamps = st.integers(
    min_value=calendar.timegm((1, 1, 1, 0, 0, 0, 0, 0, 0)),
    max_value=calendar.timegm((9999, 12, 31, 23, 59, 59, 0, 0, 0)),
)


@given(ts=timestamps, fraction=st.floats(0, 0.999))
def test_time_val_round_trip_drops_only_the_fraction(ts: int, fraction: float) -> None:
    text = format_time_val(ts + fraction)
    assert len(text) == 14
    assert parse_time_val(text) == math.floor(ts + fraction)


@given(ts=timestamps)
def test_time_val_text_round_trips(ts: int) -> None:
    text = format_time_val(ts)
    assert format_time_val(parse_time_val(text)) == text


@given(mtime=timestamps, now=timestamps)
def test_list_line_date_column_always_has_twelve_characters(mtime: int, now: int) -> None:
    line = list_line(facts(mtime=mtime), now=now)
    date = line[len("drwxr-xr-x    2 ftp      ftp          4096 ") :][:12]
    assert date[:3].isalpha()
    assert line[len("drwxr-xr-x    2 ftp      ftp          4096 ") + 12 :] == " name"
