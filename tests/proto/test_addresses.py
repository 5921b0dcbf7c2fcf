from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.addresses import (
    AddressError,
    format_pasv_host,
    is_unspecified,
    normalize_ip,
    parse_eprt_arg,
    parse_epsv_arg,
    parse_port_arg,
    resolve_active_target,
)


def test_parse_port_arg_gives_dotted_host_and_port() -> None:
    assert parse_port_arg("132,235,1,2,24,131") == ("132.235.1.2", 6275)


def test_parse_port_arg_ignores_surrounding_spaces_and_leading_zeros() -> None:
    assert parse_port_arg(" 010,0,0,001,0,21 ") == ("10.0.0.1", 21)


@pytest.mark.parametrize(
    "arg",
    [
        "",
        "1,2,3,4,5",
        "1,2,3,4,5,6,7",
        "256,2,3,4,5,6",
        "1,2,3,4,256,6",
        "1,2,3,4,0,0",
        "1,2,3,4,-1,6",
        "a,b,c,d,e,f",
        "1, 2,3,4,5,6",
        "1,2,3,4,5,6,",
        "1,2,3,4,1000,6",
        "١,2,3,4,5,6",
        "1.2.3.4,5,6",
    ],
)
def test_parse_port_arg_refuses_malformed_input_with_501(arg: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_port_arg(arg)
    assert info.value.reply_code == 501


@given(address=st.ip_addresses(v=4), port=st.integers(1, 65535))
def test_port_arg_round_trips(address: ipaddress.IPv4Address, port: int) -> None:
    arg = f"{str(address).replace('.', ',')},{port >> 8},{port & 0xFF}"
    assert parse_port_arg(arg) == (str(address), port)


port_like = st.from_regex(r"[0-9]{0,4}(,[0-9]{0,4}){0,6}", fullmatch=True)


@given(arg=st.one_of(st.text(max_size=40), port_like))
def test_parse_port_arg_either_parses_or_raises_501(arg: str) -> None:
    result: tuple[str, int] | AddressError
    try:
        result = parse_port_arg(arg)
    except AddressError as error:
        result = error
    if isinstance(result, AddressError):
        assert result.reply_code == 501
    else:
        host, port = result
        assert isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
        assert 1 <= port <= 65535


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("|1|132.235.1.2|6275|", (1, "132.235.1.2", 6275)),
        ("|2|1080::8:800:200C:417A|5282|", (2, "1080::8:800:200c:417a", 5282)),
        ("|2|::1|5282|", (2, "::1", 5282)),
        ("|2|::|40000|", (2, "::", 40000)),
        ("!1!10.0.0.1!21!", (1, "10.0.0.1", 21)),
        (" |1|10.0.0.1|21| ", (1, "10.0.0.1", 21)),
    ],
)
def test_parse_eprt_arg_takes_any_printable_delimiter_and_both_families(
    arg: str, expected: tuple[int, str, int]
) -> None:
    assert parse_eprt_arg(arg) == expected


def test_parse_eprt_arg_keeps_a_v4_mapped_address_in_family_2() -> None:
    family, host, port = parse_eprt_arg("~2~::ffff:1.2.3.4~2000~")
    assert (family, port) == (2, 2000)
    assert ipaddress.ip_address(host) == ipaddress.ip_address("::ffff:1.2.3.4")


@pytest.mark.parametrize("family", ["3", "0", "99"])
def test_parse_eprt_arg_unknown_family_replies_522(family: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_eprt_arg(f"|{family}|10.0.0.1|21|")
    assert info.value.reply_code == 522
    assert info.value.message == "Network protocol not supported, use (1,2)"


@pytest.mark.parametrize(
    "arg",
    [
        "",
        "|",
        "|1|10.0.0.1|21",
        "1|10.0.0.1|21|",
        "|1|::1|21|",
        "|2|10.0.0.1|21|",
        "|1|10.0.0.256|21|",
        "|1|010.0.0.1|21|",
        "|1||21|",
        "|1|10.0.0.1|0|",
        "|1|10.0.0.1|65536|",
        "|1|10.0.0.1|x|",
        "|x|10.0.0.1|21|",
        "|1|10.0.0.1|21|x|",
        " 1 10.0.0.1 21 ",
        "\x7f1\x7f10.0.0.1\x7f21\x7f",
        "|2|host.example|21|",
    ],
)
def test_parse_eprt_arg_refuses_malformed_or_mismatched_input_with_501(arg: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_eprt_arg(arg)
    assert info.value.reply_code == 501


@given(
    address=st.ip_addresses(),
    port=st.integers(1, 65535),
    delimiter=st.characters(min_codepoint=33, max_codepoint=126).filter(
        lambda c: c not in "0123456789.:abcdefABCDEF"
    ),
)
def test_eprt_arg_round_trips(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, delimiter: str
) -> None:
    family = 1 if address.version == 4 else 2
    arg = delimiter + delimiter.join([str(family), str(address), str(port)]) + delimiter
    assert parse_eprt_arg(arg) == (family, str(address), port)


@pytest.mark.parametrize(
    ("arg", "expected"), [("", None), ("ALL", "ALL"), ("all", "ALL"), ("1", 1), ("2", 2)]
)
def test_parse_epsv_arg_takes_nothing_all_or_a_family(arg: str, expected: str | int | None) -> None:
    assert parse_epsv_arg(arg) == expected


def test_parse_epsv_arg_unknown_family_replies_522() -> None:
    with pytest.raises(AddressError) as info:
        parse_epsv_arg("3")
    assert info.value.reply_code == 522


@pytest.mark.parametrize("arg", ["x", "ALLX", "1 2", "-1"])
def test_parse_epsv_arg_junk_replies_501(arg: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_epsv_arg(arg)
    assert info.value.reply_code == 501


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("::FFFF:1.2.3.4", "1.2.3.4"),
        ("fe80::1%eth0", "fe80::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_normalize_ip_unmaps_drops_zone_and_compresses(ip: str, expected: str) -> None:
    assert normalize_ip(ip) == expected


def test_normalize_ip_refuses_a_host_name() -> None:
    with pytest.raises(AddressError):
        normalize_ip("localhost")


@pytest.mark.parametrize(
    ("ip", "expected"),
    [("0.0.0.0", True), ("::", True), ("::ffff:0.0.0.0", True), ("::1", False), ("1.2.3.4", False)],
)
def test_is_unspecified_recognises_every_form_of_any_address(ip: str, expected: bool) -> None:
    assert is_unspecified(ip) is expected


def test_format_pasv_host_uses_commas_and_unmaps() -> None:
    assert format_pasv_host("192.168.0.10") == "192,168,0,10"
    assert format_pasv_host("::ffff:192.168.0.10") == "192,168,0,10"


def test_format_pasv_host_refuses_ipv6_with_425() -> None:
    with pytest.raises(AddressError) as info:
        format_pasv_host("::1")
    assert info.value.reply_code == 425


def test_active_target_may_be_the_client_itself() -> None:
    assert resolve_active_target("10.0.0.5", "10.0.0.5", 40000, promiscuous=False) == "10.0.0.5"


def test_active_target_unspecified_ipv6_means_the_client() -> None:
    assert resolve_active_target("2001:db8::5", "::", 40000, promiscuous=False) == "2001:db8::5"


def test_active_target_unspecified_ipv4_means_the_client() -> None:
    assert resolve_active_target("10.0.0.5", "0.0.0.0", 40000, promiscuous=False) == "10.0.0.5"


def test_active_target_matches_a_v4_mapped_client() -> None:
    target = resolve_active_target("::ffff:10.0.0.5", "10.0.0.5", 40000, promiscuous=False)
    assert target == "10.0.0.5"


def test_port_bounce_to_a_third_host_is_refused_with_vsftpd_wording() -> None:
    with pytest.raises(AddressError) as info:
        resolve_active_target("10.0.0.5", "10.0.0.6", 40000, promiscuous=False)
    assert (info.value.reply_code, info.value.message) == (500, "Illegal PORT command.")


def test_eprt_bounce_names_eprt_in_the_reply() -> None:
    with pytest.raises(AddressError) as info:
        resolve_active_target("::1", "::2", 40000, promiscuous=False, verb="EPRT")
    assert info.value.message == "Illegal EPRT command."


@pytest.mark.parametrize("port", [1, 21, 25, 1023])
def test_privileged_port_on_the_client_is_refused(port: int) -> None:
    with pytest.raises(AddressError) as info:
        resolve_active_target("10.0.0.5", "10.0.0.5", port, promiscuous=False)
    assert info.value.reply_code == 500


def test_port_1024_on_the_client_is_allowed() -> None:
    assert resolve_active_target("10.0.0.5", "10.0.0.5", 1024, promiscuous=False) == "10.0.0.5"


def test_promiscuous_allows_a_third_host_and_a_low_port() -> None:
    assert resolve_active_target("10.0.0.5", "10.0.0.6", 21, promiscuous=True) == "10.0.0.6"


def test_an_address_normalised_again_is_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every data connection normalises the client's address: the answer is remembered.
    parsed: list[str] = []
    real = ipaddress.ip_address

    def counting(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(ipaddress, "ip_address", counting)
    first = [normalize_ip("::ffff:198.51.100.77"), format_pasv_host("198.51.100.78")]
    count = len(parsed)
    again = [normalize_ip("::ffff:198.51.100.77"), format_pasv_host("198.51.100.78")]
    assert again == first == ["198.51.100.77", "198,51,100,78"]
    assert count > 0
    assert len(parsed) == count


def test_a_refused_address_is_refused_every_time() -> None:
    # Only answers are remembered, never a refusal: each call raises again.
    for _ in range(2):
        with pytest.raises(AddressError):
            normalize_ip("not-an-address")
        with pytest.raises(AddressError):
            format_pasv_host("2001:db8::1")
