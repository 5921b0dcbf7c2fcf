from __future__ import annotations

import pytest

from ftpsup.proto.addresses import AddressError
from ftpsup.proto.replies import Reply, epsv_reply, pasv_reply, quote_path, reply


def test_single_line_reply_is_code_space_text_crlf() -> None:
    assert reply(226, "Transfer complete.").to_bytes() == b"226 Transfer complete.\r\n"


def test_two_line_reply_uses_dash_then_space() -> None:
    assert reply(211, "Features:", "End").to_bytes() == b"211-Features:\r\n211 End\r\n"


def test_middle_lines_get_one_leading_space() -> None:
    data = reply(211, "Features:", "MDTM", "SIZE", "End").to_bytes()
    assert data == b"211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n"


def test_middle_line_starting_with_the_code_cannot_end_the_reply() -> None:
    data = reply(213, "Status:", "213 fake end", "End").to_bytes()
    assert data.split(b"\r\n")[1] == b" 213 fake end"
    assert data.endswith(b"213 End\r\n")


@pytest.mark.parametrize("evil", ["a\r\n200 injected", "a\n200 injected", "a\r200 injected"])
def test_cr_or_lf_in_text_cannot_start_a_new_reply(evil: str) -> None:
    data = reply(550, evil).to_bytes()
    assert data.count(b"\r") == 1
    assert data.count(b"\n") == 1
    assert data.endswith(b"\r\n")


def test_cr_or_lf_in_a_middle_line_becomes_a_space() -> None:
    data = reply(211, "x", "a\nb", "y").to_bytes()
    assert data == b"211-x\r\n a b\r\n211 y\r\n"


def test_surrogate_standing_for_cr_cannot_inject_either() -> None:
    data = reply(550, "a\udc0d\udc0a200 injected").to_bytes()
    assert data.count(b"\r\n") == 1


def test_utf8_text_is_sent_as_utf8() -> None:
    assert reply(257, '"/Grüße" created').to_bytes() == '257 "/Grüße" created\r\n'.encode()


def test_non_utf8_name_goes_back_out_as_its_original_bytes() -> None:
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert reply(550, name).to_bytes() == b"550 caf\xe9\r\n"


def test_lone_surrogate_that_is_not_an_escaped_byte_does_not_crash() -> None:
    assert reply(550, "a\ud800b").to_bytes() == b"550 a?b\r\n"


@pytest.mark.parametrize("code", [99, 600, 0, -200, 1000])
def test_code_outside_100_to_599_is_refused(code: int) -> None:
    with pytest.raises(ValueError, match="reply code"):
        reply(code, "x")


@pytest.mark.parametrize("code", [100, 599])
def test_codes_at_the_edges_are_accepted(code: int) -> None:
    assert reply(code, "x").to_bytes() == f"{code} x\r\n".encode()


def test_reply_without_lines_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one line"):
        reply(200)


def test_reply_from_a_list_stores_a_tuple() -> None:
    assert Reply(200, ["a", "b"]).lines == ("a", "b")


def test_pasv_reply_splits_the_port_into_two_bytes() -> None:
    data = pasv_reply("192.168.1.5", 10081).to_bytes()
    assert data == b"227 Entering Passive Mode (192,168,1,5,39,97).\r\n"


def test_pasv_reply_gives_a_mapped_address_in_ipv4_form() -> None:
    assert b"(10,0,0,1,0,21)" in pasv_reply("::ffff:10.0.0.1", 21).to_bytes()


def test_pasv_reply_refuses_ipv6() -> None:
    with pytest.raises(AddressError) as info:
        pasv_reply("2001:db8::1", 5000)
    assert info.value.reply_code == 425


@pytest.mark.parametrize("port", [0, 65536])
def test_pasv_and_epsv_replies_refuse_impossible_ports(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        pasv_reply("1.2.3.4", port)
    with pytest.raises(ValueError, match="port"):
        epsv_reply(port)


def test_epsv_reply_has_the_rfc_2428_form() -> None:
    assert epsv_reply(6446).to_bytes() == b"229 Entering Extended Passive Mode (|||6446|)\r\n"


def test_quote_path_wraps_in_double_quotes() -> None:
    assert quote_path("/home/a") == '"/home/a"'


def test_quote_path_doubles_inner_quotes() -> None:
    assert quote_path('/a "b" c') == '"/a ""b"" c"'


def test_quote_path_leaves_other_characters_alone() -> None:
    assert quote_path("/a\nb") == '"/a\nb"'


def test_the_same_reply_again_is_the_same_immutable_object_and_bytes() -> None:
    # Sessions send the same few texts over and over: a recent one is handed out again.
    first = reply(226, "Transfer complete.")
    again = reply(226, "Transfer complete.")
    assert again is first
    assert again.to_bytes() is first.to_bytes()
    assert first.to_bytes() == b"226 Transfer complete.\r\n"
    assert reply(226, "Transfer complete!") is not first


def test_a_refused_reply_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="100..599"):
            reply(99, "too small")
        with pytest.raises(ValueError, match="at least one line"):
            reply(200)
