"""Per-address limits: which peer addresses count as one client, and counters per client.

A public server caps what one client may hold at once (sessions, TLS handshakes in progress,
passive ports). "One client" is an address key, not a raw address:

Rules:
- IPv4: the address itself.
- IPv4-mapped IPv6 (::ffff:a.b.c.d): the IPv4 address, so a client reaching an IPv6 socket
  over mapped addresses is counted with its IPv4 self.
- IPv6: the network of the first `ipv6_prefix` bits (64 by default), written "net/len".
  One host is normally given a whole /64 (RFC 6177), so counting single IPv6 addresses
  would let it open a connection from each of 2**64 addresses.
- Anything that is not an IP address (it does not happen for TCP peers) is its own key, as
  given: never an exception from a peer address.
- A counter keeps no entry for a key whose count is 0, so its size follows the clients
  present, not every client ever seen.
- The keys of recent addresses are remembered (KEY_CACHE entries): every connection asks.

No I/O and no clock: the time, where a rule needs one, is passed in.
"""

from __future__ import annotations

import ipaddress

import attrs

from ftpsup.proto.memo import remembered

DEFAULT_IPV6_PREFIX = 64
KEY_CACHE = 4096


@remembered(KEY_CACHE)
def address_key(ip: str, *, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The key under which a peer address is counted.

    Args:
        ip: a peer address as the socket reports it; an IPv6 zone ("%eth0") is ignored.
        ipv6_prefix: how many leading bits of an IPv6 address name one client (0..128).

    Returns:
        "a.b.c.d" for IPv4 and IPv4-mapped addresses, "net::/len" for IPv6, and the text
        itself for anything that is not an address.
    """
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


@attrs.define
class KeyedCounter:
    """How many of something each address key holds, with an optional cap per key.

    `limit` 0 means no cap: `take` then always succeeds (the counts are still kept, for
    statistics and so a later cap applies to what is held).
    """

    limit: int
    _counts: dict[str, int] = attrs.field(factory=dict, init=False)

    def take(self, key: str) -> bool:
        """Count one more for `key`, unless it already holds `limit`; True when counted."""
        held = self._counts.get(key, 0)
        if self.limit and held >= self.limit:
            return False
        self._counts[key] = held + 1
        return True

    def release(self, key: str) -> None:
        """Count one less for `key`.

        Raises:
            ValueError: `key` holds nothing (a release without its take: a bug).
        """
        held = self._counts.get(key, 0)
        if held <= 0:
            raise ValueError(f"release of {key!r}, which holds nothing")
        if held == 1:
            del self._counts[key]
        else:
            self._counts[key] = held - 1

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)

    def keys(self) -> int:
        """How many keys hold something."""
        return len(self._counts)

    def total(self) -> int:
        return sum(self._counts.values())


@attrs.define
class RefusalLog:
    """Decides which refusals to log, so a flood from one client writes a line a minute.

    The first refusal of a key is logged; later ones within `interval` seconds are only
    counted, and the next logged line says how many were left out. Entries older than
    `interval` are dropped on every call, so the table holds only the clients logged within
    the last interval.
    """

    interval: float
    # key -> (time of the last logged line, refusals left out since); insertion order is
    # the order of the last logged line, oldest first.
    _last: dict[str, tuple[float, int]] = attrs.field(factory=dict, init=False)

    def should_log(self, key: str, now: float) -> int | None:
        """Whether to log this refusal of `key` at time `now`.

        Returns:
            None: do not log. Otherwise log; the number is how many refusals of this key
            were left out since its last logged line (a key that went quiet for a whole
            interval may have been forgotten, and then reports 0).
        """
        entry = self._last.get(key)
        self._forget_expired(now)
        if entry is not None and now - entry[0] < self.interval:
            # Updated in place, so the order stays that of the logged lines.
            self._last[key] = (entry[0], entry[1] + 1)
            return None
        self._last.pop(key, None)
        self._last[key] = (now, 0)
        return entry[1] if entry is not None else 0

    def _forget_expired(self, now: float) -> None:
        while self._last:
            oldest = next(iter(self._last))
            # The same comparison as should_log's: no rounding gap between the two.
            if now - self._last[oldest][0] < self.interval:
                return
            del self._last[oldest]

    def tracked(self) -> int:
        return len(self._last)
