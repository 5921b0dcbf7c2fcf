"""ftpsup.jsonlines: the framing every channel between ftpsup's processes uses (no I/O)."""

from __future__ import annotations

from ftpsup import jsonlines
from ftpsup.jsonlines import LineReader


def test_encode_is_one_line_that_decodes_back() -> None:
    message = {"event": "ready", "pid": 7, "text": "two\nlines"}
    line = jsonlines.encode(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert jsonlines.decode(line[:-1]) == message


def test_decode_refuses_what_is_not_an_object() -> None:
    for line in (b"", b"[1, 2]", b"42", b"{", b"\xff\xfe", b"[" * 100_000):
        assert jsonlines.decode(line) is None, line[:20]


def test_lines_come_out_whole_however_the_bytes_are_cut() -> None:
    data = b'{"a": 1}\n{"b": 2}\n{"c": 3}\n'
    for cut in range(1, len(data)):
        reader = LineReader(64)
        lines = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert lines == [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}'], cut
        assert reader.rest() == b""


def test_rest_is_the_unfinished_last_line() -> None:
    reader = LineReader(64)
    assert reader.feed(b"done\nhalf") == [b"done"]
    assert reader.rest() == b"half"
    assert reader.rest() == b""


def test_an_endless_line_is_dropped_and_never_held() -> None:
    reader = LineReader(100)
    for _ in range(1000):
        assert reader.feed(b"x" * 64) == []
        assert reader.pending_size() <= 100
    assert reader.overflowed == 1
    # The dropped line ends at its "\n"; the next line is read as usual.
    assert reader.feed(b'xxx\n{"ok": true}\n') == [b'{"ok": true}']
    assert reader.overflowed == 1


def test_an_over_long_line_after_good_ones_keeps_the_good_ones() -> None:
    reader = LineReader(10)
    assert reader.feed(b"one\ntwo\n" + b"y" * 50) == [b"one", b"two"]
    assert reader.overflowed == 1
    assert reader.feed(b"y\nthree\n") == [b"three"]


def test_split_long_hands_an_endless_line_on_in_bounded_pieces() -> None:
    reader = LineReader(100, split_long=True)
    pieces: list[bytes] = []
    for _ in range(100):
        pieces += reader.feed(b"z" * 64)
        assert reader.pending_size() <= 100
    pieces.append(reader.rest())
    assert b"".join(pieces) == b"z" * 6400
    assert max(len(p) for p in pieces) == 100
    assert reader.overflowed == 0


def test_a_line_of_exactly_max_line_bytes_is_kept() -> None:
    reader = LineReader(8)
    assert reader.feed(b"12345678") == []
    assert reader.feed(b"\n") == [b"12345678"]
    assert reader.overflowed == 0
