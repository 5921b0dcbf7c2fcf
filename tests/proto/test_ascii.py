from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.ascii import FromNetwork, ToNetwork


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def to_network(pieces: list[bytes]) -> bytes:
    converter = ToNetwork()
    return b"".join(converter.convert(piece) for piece in pieces)


def from_network(pieces: list[bytes]) -> bytes:
    converter = FromNetwork()
    return b"".join(converter.convert(piece) for piece in pieces) + converter.flush()


@pytest.mark.parametrize(
    ("local", "wire"),
    [
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\r\nb", b"a\r\nb"),
        (b"\n\n", b"\r\n\r\n"),
        (b"a\rb", b"a\rb"),
        (b"a\r\r\n", b"a\r\r\n"),
        (b"", b""),
        (b"\xff\x00\n", b"\xff\x00\r\n"),
    ],
)
def test_to_network_turns_bare_lf_into_crlf_only(local: bytes, wire: bytes) -> None:
    assert to_network([local]) == wire


def test_to_network_does_not_double_a_crlf_split_across_chunks() -> None:
    assert to_network([b"a\r", b"\nb"]) == b"a\r\nb"


def test_to_network_state_survives_an_empty_chunk() -> None:
    assert to_network([b"a\r", b"", b"\n"]) == b"a\r\n"


@pytest.mark.parametrize(
    ("wire", "local"),
    [
        (b"a\r\nb\r\n", b"a\nb\n"),
        (b"a\rb", b"a\rb"),
        (b"a\nb", b"a\nb"),
        (b"a\r\r\n", b"a\r\n"),
        (b"a\r", b"a\r"),
        (b"\r\r", b"\r\r"),
    ],
)
def test_from_network_turns_crlf_into_lf_and_keeps_lone_cr(wire: bytes, local: bytes) -> None:
    assert from_network([wire]) == local


def test_from_network_holds_a_final_cr_until_the_next_chunk() -> None:
    converter = FromNetwork()
    assert converter.convert(b"a\r") == b"a"
    assert converter.convert(b"\nb") == b"\nb"
    assert converter.flush() == b""


def test_from_network_flush_releases_a_lone_final_cr_once() -> None:
    converter = FromNetwork()
    converter.convert(b"a\r")
    assert converter.flush() == b"\r"
    assert converter.flush() == b""


def reference_to_network(data: bytes) -> bytes:
    out = bytearray()
    for index, byte in enumerate(data):
        if byte == 0x0A and (index == 0 or data[index - 1] != 0x0D):
            out += b"\r"
        out.append(byte)
    return bytes(out)


def reference_from_network(data: bytes) -> bytes:
    out = bytearray()
    for index, byte in enumerate(data):
        if byte == 0x0D and data[index + 1 : index + 2] == b"\n":
            continue
        out.append(byte)
    return bytes(out)


line_bytes = st.lists(st.sampled_from([b"\r", b"\n", b"a", b"\xff"]), max_size=60).map(b"".join)
cuts = st.lists(st.integers(0, 60), max_size=10)


@given(data=line_bytes, cuts=cuts)
def test_to_network_is_independent_of_chunk_boundaries(data: bytes, cuts: list[int]) -> None:
    assert to_network(split_at(data, cuts)) == reference_to_network(data)


@given(data=line_bytes, cuts=cuts)
def test_from_network_is_independent_of_chunk_boundaries(data: bytes, cuts: list[int]) -> None:
    assert from_network(split_at(data, cuts)) == reference_from_network(data)


@given(data=st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"")), cuts=cuts)
def test_cr_free_text_survives_a_round_trip(data: bytes, cuts: list[int]) -> None:
    wire = to_network(split_at(data, cuts))
    assert from_network(split_at(wire, cuts)) == data
