from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.lines import _TOKENS_PER_MATCH, LineBuffer, LineTooLong

IAC = b"\xff"
WILL, WONT, DO, DONT = b"\xfb", b"\xfc", b"\xfd", b"\xfe"
IP, DM, AYT = b"\xf4", b"\xf2", b"\xf6"


def drain(buffer: LineBuffer) -> list[bytes | LineTooLong]:
    out: list[bytes | LineTooLong] = []
    for _ in range(100_000):
        item = buffer.next_line()
        if item is None:
            return out
        out.append(item)
    raise AssertionError("next_line never returned None")


def decode(data: bytes, max_length: int = 4096) -> list[bytes | LineTooLong]:
    buffer = LineBuffer(max_length)
    buffer.feed(data)
    return drain(buffer)


def decode_in_pieces(pieces: list[bytes], max_length: int = 4096) -> list[bytes | LineTooLong]:
    buffer = LineBuffer(max_length)
    out: list[bytes | LineTooLong] = []
    for piece in pieces:
        buffer.feed(piece)
        out.extend(drain(buffer))
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def test_empty_buffer_needs_more_data() -> None:
    assert LineBuffer().next_line() is None


def test_crlf_line_comes_out_without_its_line_end() -> None:
    assert decode(b"USER alice\r\n") == [b"USER alice"]


def test_bare_lf_also_ends_a_line() -> None:
    assert decode(b"NOOP\n") == [b"NOOP"]


def test_unfinished_line_waits_for_its_lf() -> None:
    buffer = LineBuffer()
    buffer.feed(b"RETR a\r")
    assert buffer.next_line() is None
    buffer.feed(b"\n")
    assert buffer.next_line() == b"RETR a"


def test_cr_inside_a_line_is_kept_for_the_parser_to_refuse() -> None:
    assert decode(b"RETR a\rb\r\n") == [b"RETR a\rb"]


def test_empty_line_is_returned_as_empty_bytes() -> None:
    assert decode(b"\r\n") == [b""]


def test_pipelined_lines_come_out_in_order() -> None:
    assert decode(b"USER a\r\nPASS b\r\nPWD\r\n") == [b"USER a", b"PASS b", b"PWD"]


def test_iac_iac_is_one_ff_byte() -> None:
    assert decode(b"RETR a" + IAC + IAC + b"b\r\n") == [b"RETR a\xffb"]


@pytest.mark.parametrize("verb", [WILL, WONT, DO, DONT])
def test_option_negotiation_is_removed_with_its_option_byte(verb: bytes) -> None:
    assert decode(b"NO" + IAC + verb + b"\x01OP\r\n") == [b"NOOP"]


@pytest.mark.parametrize("command", [IP, DM, AYT, b"\xf5", b"\xf0"])
def test_other_telnet_commands_are_removed(command: bytes) -> None:
    assert decode(b"NO" + IAC + command + b"OP\r\n") == [b"NOOP"]


def test_abort_sequence_with_synch_gives_abor() -> None:
    assert decode(IAC + IP + IAC + DM + b"ABOR\r\n") == [b"ABOR"]


def test_abort_sequence_with_dm_in_band_without_iac_gives_abor() -> None:
    assert decode(IAC + IP + DM + b"ABOR\r\n") == [b"ABOR"]


def test_abort_sequence_that_lost_its_urgent_dm_gives_abor() -> None:
    assert decode(IAC + IP + IAC + b"ABOR\r\n") == [b"ABOR"]


def test_dm_byte_inside_a_line_is_data() -> None:
    assert decode(b"RETR \xf2x\r\n") == [b"RETR \xf2x"]


def test_iac_before_lf_does_not_swallow_the_line_end() -> None:
    assert decode(b"NOOP" + IAC + b"\nPWD\n") == [b"NOOP", b"PWD"]


@pytest.mark.parametrize(
    "pieces",
    [
        [b"A" + IAC, IAC + b"B\r\n"],
        [b"A" + IAC, WILL, b"\x18B\r\n"],
        [b"A" + IAC + WILL, b"\x18B\r\n"],
        [b"A" + IAC, IP, b"B\r\n"],
        [b"A", IAC, IAC, b"B", b"\r", b"\n"],
    ],
)
def test_telnet_sequence_split_across_feeds_decodes_as_one(pieces: list[bytes]) -> None:
    assert decode_in_pieces(pieces) == decode(b"".join(pieces))
    assert len(decode(b"".join(pieces))) == 1


def test_line_at_the_limit_is_accepted() -> None:
    assert decode(b"x" * 10 + b"\r\n", max_length=10) == [b"x" * 10]


def test_line_at_the_limit_is_accepted_when_its_cr_and_lf_arrive_apart() -> None:
    assert decode_in_pieces([b"x" * 10 + b"\r", b"\n"], max_length=10) == [b"x" * 10]


def test_line_one_byte_over_the_limit_gives_line_too_long() -> None:
    assert decode(b"x" * 11 + b"\r\n", max_length=10) == [LineTooLong(10)]


def test_long_line_gives_one_error_and_the_next_line_comes_normally() -> None:
    assert decode(b"y" * 50 + b"\r\nPWD\r\n", max_length=10) == [LineTooLong(10), b"PWD"]


def test_long_line_is_reported_before_its_lf_arrives() -> None:
    buffer = LineBuffer(max_length=10)
    buffer.feed(b"z" * 20)
    assert buffer.next_line() == LineTooLong(10)
    buffer.feed(b"z" * 20)
    assert buffer.next_line() is None
    buffer.feed(b"\r\nQUIT\r\n")
    assert buffer.next_line() == b"QUIT"


def test_ten_megabyte_line_in_chunks_keeps_memory_bounded() -> None:
    buffer = LineBuffer(max_length=4096)
    chunk = b"A" * 65536
    tracemalloc.start()
    try:
        for _ in range(160):  # 10 MiB in all
            buffer.feed(chunk)
        buffer.feed(b"\r\nNOOP\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024
    assert drain(buffer) == [LineTooLong(4096), b"NOOP"]


def test_ten_megabytes_of_iac_bytes_keep_memory_bounded() -> None:
    buffer = LineBuffer(max_length=4096)
    chunk = (IAC + IAC) * 16384 + IAC + WILL + b"\x01" + IAC
    tracemalloc.start()
    try:
        for _ in range(320):  # about 10 MiB in all
            buffer.feed(chunk)
        buffer.feed(IAC + b"\r\nNOOP\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024
    assert drain(buffer) == [LineTooLong(4096), b"NOOP"]


def test_line_padded_with_telnet_negotiation_counts_as_too_long() -> None:
    padding = (IAC + DO + b"\x01") * 20
    assert decode(b"NOOP" + padding + b"\r\nPWD\r\n", max_length=10) == [LineTooLong(10), b"PWD"]


def test_line_of_escaped_ff_bytes_at_the_limit_is_accepted() -> None:
    assert decode((IAC + IAC) * 10 + b"\r\n", max_length=10) == [b"\xff" * 10]


def test_negotiation_whose_option_byte_is_lf_does_not_end_the_line() -> None:
    assert decode(b"NO" + IAC + DO + b"\nOP\r\n") == [b"NOOP"]


def test_max_length_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_length"):
        LineBuffer(0)


plain_line = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\xff", b""))


@given(lines=st.lists(plain_line, max_size=8), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_crlf_lines_survive_any_chunking(lines: list[bytes], cuts: list[int]) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    expected = [line[1:] if line[:1] == b"\xf2" else line for line in lines]
    assert decode_in_pieces(split_at(data, cuts)) == expected


@given(
    content=st.binary(min_size=1, max_size=40).filter(
        lambda b: b"\n" not in b and b"\r" not in b and b[0] != 0xF2
    ),
    noise=st.lists(
        st.sampled_from([IAC + WILL + b"\x01", IAC + DONT + b"\n", IAC + IP, IAC + AYT]),
        max_size=4,
    ),
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_escaped_data_with_telnet_noise_decodes_to_the_original(
    content: bytes, noise: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(noise) + content.replace(b"\xff", IAC + IAC) + b"\r\n"
    assert decode_in_pieces(split_at(wire, cuts)) == [content]


@given(
    data=st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=10),
    max_length=st.integers(1, 50),
)
def test_any_input_decodes_the_same_whatever_the_chunking(
    data: bytes, cuts: list[int], max_length: int
) -> None:
    whole = decode(data, max_length)
    assert decode_in_pieces(split_at(data, cuts), max_length) == whole
    for item in whole:
        assert isinstance(item, LineTooLong) or len(item) <= max_length


def reference_lines(data: bytes) -> list[bytes]:
    """Byte-at-a-time model of the decoding rules, for lines well under the limit."""
    lines: list[bytes] = []
    line = bytearray()
    index = 0
    while index < len(data):
        byte = data[index]
        index += 1
        if byte == 0xFF:
            if index >= len(data):
                break
            second = data[index]
            if second == 0xFF:
                line.append(0xFF)
                index += 1
            elif 0xFB <= second <= 0xFE:
                index += 2
            elif second >= 0xF0:
                index += 1
            continue
        if byte == 0x0A:
            if line.endswith(b"\r"):
                del line[-1]
            lines.append(bytes(line[1:] if line[:1] == b"\xf2" else line))
            line.clear()
            continue
        line.append(byte)
    return lines


telnet_heavy = st.lists(
    st.one_of(
        st.binary(max_size=6),
        st.sampled_from([IAC, IAC + IAC, IAC + WILL, IAC + DO + b"\n", IAC + IP, b"\n", b"\r\n"]),
    ),
    max_size=30,
).map(b"".join)


@given(data=telnet_heavy, cuts=st.lists(st.integers(0, 300), max_size=10))
def test_decoding_matches_a_byte_at_a_time_model(data: bytes, cuts: list[int]) -> None:
    assert decode_in_pieces(split_at(data, cuts), max_length=1000) == reference_lines(data)


# Every kind of Telnet sequence among data, over two lines (with an option byte that is IAC).
ALL_SEQUENCES = b"".join(
    [
        b"NO",
        IAC + WILL + b"\x01",
        IAC + IAC,
        IAC + DO + b"\n",
        IAC + IP,
        b"OP",
        IAC + DONT + IAC,
        IAC + WONT + b"\xf2",
        IAC + b"\r\n",
        b"PWD",
        IAC + AYT,
        IAC + b"\n",
    ]
)


def test_every_two_cuts_through_telnet_sequences_decode_as_one_read() -> None:
    expected = reference_lines(ALL_SEQUENCES)
    assert expected == [b"NO\xffOP", b"PWD"]
    assert decode(ALL_SEQUENCES) == expected
    for first in range(len(ALL_SEQUENCES) + 1):
        for second in range(first, len(ALL_SEQUENCES) + 1):
            pieces = split_at(ALL_SEQUENCES, [first, second])
            assert decode_in_pieces(pieces) == expected, pieces


@pytest.mark.parametrize("verb", [WILL, WONT, DO, DONT])
@pytest.mark.parametrize("before", [b"A", IAC + IAC, IAC + IP, IAC + DO + b"\x03"])
def test_negotiation_cut_right_after_its_verb_loses_nothing(verb: bytes, before: bytes) -> None:
    # The option byte arrives in the next read; the IAC must not leak into the line.
    pieces = [before + IAC + verb, b"\x01B\r\n"]
    assert decode_in_pieces(pieces) == reference_lines(b"".join(pieces))


@pytest.mark.parametrize(
    "tokens",
    [
        *range(_TOKENS_PER_MATCH - 2, _TOKENS_PER_MATCH + 3),
        *range(2 * _TOKENS_PER_MATCH - 1, 2 * _TOKENS_PER_MATCH + 2),
    ],
)
@pytest.mark.parametrize(
    "tail", [IAC + WILL + b"\x01", IAC + b"\n", IAC + IAC, IAC + IP, IAC + DO + b"\n", b"x"]
)
def test_long_runs_of_telnet_sequences_decode_at_any_cut(tokens: int, tail: bytes) -> None:
    # The decoder takes a bounded number of tokens per step; sequences on either side of that
    # bound, and cut anywhere near it, must decode as in one read.
    head = b"A" + (IAC + IAC) * (tokens - 1)
    data = head + tail + b"Z\r\n"
    expected = reference_lines(data)
    assert decode(data, max_length=1000) == expected
    for cut in range(len(head) - 4, len(data) + 1):
        assert decode_in_pieces(split_at(data, [cut]), max_length=1000) == expected


# Whole commands, one per read, near the limit: the shape that takes feed's short path.
@given(
    lines=st.lists(
        st.binary(max_size=14).filter(lambda b: b"\n" not in b and b"\xff" not in b)
        | st.sampled_from([b"\xf2ABOR", b"X\r", b"", b"\r", b"0123456789"]),
        min_size=1,
        max_size=6,
    ),
    ending=st.sampled_from([b"\n", b"\r\n"]),
)
def test_whole_commands_read_at_once_decode_as_byte_by_byte(
    lines: list[bytes], ending: bytes
) -> None:
    pieces = [line + ending for line in lines]
    by_byte = [bytes([b]) for piece in pieces for b in piece]
    assert decode_in_pieces(pieces, max_length=10) == decode_in_pieces(by_byte, max_length=10)
