from __future__ import annotations

import ipaddress
from typing import TypeGuard

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.limits import KeyedCounter, RefusalLog, address_key


def _unmapped_ipv6(
    a: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> TypeGuard[ipaddress.IPv6Address]:
    # ip_addresses(v=6) draws only IPv6Address; the isinstance test says so to the type checker.
    return isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is None


ipv4 = st.ip_addresses(v=4)
ipv6 = st.ip_addresses(v=6).filter(_unmapped_ipv6)
prefixes = st.integers(min_value=0, max_value=128)


# -- address_key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::FFFF:c000:0207", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1%eth0", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("fe80::1%lo", "fe80::/64"),
        ("not an address", "not an address"),
        ("", ""),
    ],
)
def test_address_key_examples(ip: str, key: str) -> None:
    assert address_key(ip) == key


def test_a_prefix_of_128_counts_each_ipv6_address() -> None:
    assert address_key("2001:db8::1", ipv6_prefix=128) == "2001:db8::1/128"
    assert address_key("2001:db8::2", ipv6_prefix=128) == "2001:db8::2/128"


def test_a_prefix_of_48_folds_a_site() -> None:
    assert address_key("2001:db8:1:2::1", ipv6_prefix=48) == address_key(
        "2001:db8:1:ffff::9", ipv6_prefix=48
    )


@given(ipv4)
def test_ipv4_is_its_own_key_and_the_mapped_form_is_the_same(
    address: ipaddress.IPv4Address,
) -> None:
    mapped = ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + address.packed)
    assert address_key(str(address)) == str(address)
    assert address_key(str(mapped)) == str(address)
    assert address_key(mapped.exploded) == str(address)


@given(ipv6, st.integers(min_value=0, max_value=2**64 - 1))
def test_every_address_of_a_64_shares_its_key(address: ipaddress.IPv6Address, host: int) -> None:
    same_64 = ipaddress.IPv6Address((int(address) >> 64 << 64) | host)
    if same_64.ipv4_mapped is not None:
        return  # ::ffff:0:0/96 lies inside ::/64, and mapped addresses count as IPv4
    assert address_key(str(address)) == address_key(str(same_64))
    assert address_key(str(same_64).upper()) == address_key(str(address))


@given(ipv6, ipv6, prefixes)
def test_two_ipv6_addresses_share_a_key_exactly_when_their_prefix_bits_match(
    a: ipaddress.IPv6Address, b: ipaddress.IPv6Address, prefix: int
) -> None:
    shift = 128 - prefix
    same_network = int(a) >> shift == int(b) >> shift
    same_key = address_key(str(a), ipv6_prefix=prefix) == address_key(str(b), ipv6_prefix=prefix)
    assert same_key == same_network


@given(ipv6, prefixes)
def test_an_ipv6_key_is_a_network_that_holds_the_address(
    address: ipaddress.IPv6Address, prefix: int
) -> None:
    network = ipaddress.IPv6Network(address_key(str(address), ipv6_prefix=prefix))
    assert network.prefixlen == prefix
    assert address in network


@given(ipv4, ipv6)
def test_ipv4_and_ipv6_keys_never_collide(
    v4: ipaddress.IPv4Address, v6: ipaddress.IPv6Address
) -> None:
    assert address_key(str(v4)) != address_key(str(v6))


@given(st.text(max_size=60))
def test_any_text_gives_a_key_and_no_exception(text: str) -> None:
    assert isinstance(address_key(text), str)


# -- KeyedCounter ------------------------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "d"])
operations = st.lists(st.tuples(st.sampled_from(["take", "release"]), keys), max_size=200)


@given(st.integers(min_value=0, max_value=5), operations)
def test_counter_matches_a_model_and_never_exceeds_its_limit(
    limit: int, ops: list[tuple[str, str]]
) -> None:
    counter = KeyedCounter(limit)
    model: dict[str, int] = {}
    for op, key in ops:
        held = model.get(key, 0)
        if op == "take":
            admitted = counter.take(key)
            assert admitted == (limit == 0 or held < limit)
            if admitted:
                model[key] = held + 1
        elif held:
            counter.release(key)
            model[key] = held - 1
        else:
            with pytest.raises(ValueError, match="holds nothing"):
                counter.release(key)
        for k in "abcd":
            assert counter.count(k) == model.get(k, 0)
            assert limit == 0 or counter.count(k) <= limit
        assert counter.total() == sum(model.values())
        # No entry is kept for a key that holds nothing.
        assert counter.keys() == sum(1 for v in model.values() if v)


def test_a_full_key_does_not_block_another_key() -> None:
    counter = KeyedCounter(2)
    assert counter.take("a")
    assert counter.take("a")
    assert not counter.take("a")
    assert counter.take("b")
    counter.release("a")
    assert counter.take("a")


# -- RefusalLog --------------------------------------------------------------------------------


def test_a_flood_of_refusals_logs_once_per_interval_with_the_count_left_out() -> None:
    log = RefusalLog(interval=60)
    assert log.should_log("a", 0.0) == 0
    assert [log.should_log("a", 0.5 + i) for i in range(10)] == [None] * 10
    assert log.should_log("b", 30.0) == 0, "another key is logged at once"
    assert log.should_log("a", 60.0) == 10
    assert log.should_log("a", 61.0) is None


@given(
    st.lists(st.tuples(keys, st.floats(min_value=0, max_value=10, allow_nan=False)), max_size=200),
    st.floats(min_value=0.5, max_value=30, allow_nan=False),
)
def test_refusal_log_model(steps: list[tuple[str, float]], interval: float) -> None:
    log = RefusalLog(interval=interval)
    now = 0.0
    logged_at: dict[str, float] = {}
    refused = {k: 0 for k in "abcd"}
    reported = {k: 0 for k in "abcd"}
    for key, gap in steps:
        now += gap
        refused[key] += 1
        result = log.should_log(key, now)
        last = logged_at.get(key)
        # At most one line per key per interval, and always one after a quiet interval.
        assert (result is None) == (last is not None and now - last < interval)
        if result is not None:
            logged_at[key] = now
            reported[key] += 1 + result
        # Only keys logged within the last interval are remembered.
        assert log.tracked() == sum(1 for t in logged_at.values() if now - t < interval)
    for k in "abcd":
        # Nothing is reported twice; what is not reported yet is still being counted.
        assert reported[k] <= refused[k]


def test_the_key_of_an_address_asked_again_is_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every connection asks for its key: the answer is remembered.
    parsed: list[str] = []
    real = ipaddress.ip_address

    def counting(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(ipaddress, "ip_address", counting)
    first = address_key("2001:db8:1:2::99", ipv6_prefix=48)
    count = len(parsed)
    assert address_key("2001:db8:1:2::99", ipv6_prefix=48) == first == "2001:db8:1::/48"
    assert count > 0
    assert len(parsed) == count
    # The prefix is part of the question.
    assert address_key("2001:db8:1:2::99", ipv6_prefix=64) == "2001:db8:1:2::/64"
