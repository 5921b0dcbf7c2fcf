"""ftpsup.proto.numbers: ASCII digits only, always bounded, None for anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.numbers import parse_uint


@pytest.mark.parametrize(
    ("text", "maximum", "base", "want"),
    [
        ("0", 10, 10, 0),
        ("42", 42, 10, 42),
        ("0042", 42, 10, 42),
        ("755", 0o777, 8, 0o755),
        ("0022", 0o777, 8, 0o22),
        ("9223372036854775807", 2**63 - 1, 10, 2**63 - 1),
    ],
)
def test_parse_uint_reads_ascii_digits(text: str, maximum: int, base: int, want: int) -> None:
    assert parse_uint(text, maximum, base=base) == want


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "+1",
        "-1",
        "1_000",
        "0x10",
        "\u00b2",  # superscript two: str.isdigit() is True, int() raises
        "\u0663",  # Arabic-Indic three: int() reads it as 3
        "1\u0663",
        "\uff11",  # fullwidth one
        "\u0968",  # Devanagari two
        "43",  # above the maximum
        "9" * 5000,  # int() would refuse more than 4300 digits with ValueError
    ],
)
def test_parse_uint_refuses_anything_but_bounded_ascii_digits(text: str) -> None:
    assert parse_uint(text, 42) is None


def test_parse_uint_octal_refuses_8_and_9() -> None:
    assert parse_uint("78", 0o7777, base=8) is None
    assert parse_uint("10000", 0o7777, base=8) is None


@given(st.integers(min_value=0, max_value=2**64))
def test_parse_uint_round_trips_every_value_up_to_the_maximum(value: int) -> None:
    assert parse_uint(str(value), 2**64) == value
    assert parse_uint(f"{value:o}", 2**64, base=8) == value
    assert parse_uint(str(value + 1), value) is None


@given(st.text(max_size=12))
def test_parse_uint_never_raises_and_agrees_with_an_ascii_check(text: str) -> None:
    result = parse_uint(text, 10**12)
    if text and all(c in "0123456789" for c in text):
        assert result == int(text)
    else:
        assert result is None
