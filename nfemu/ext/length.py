"""``-m length [!] --length N[:M]``: the IP packet length (layer 3 header and payload) is in
[N, M] (libxt_length.c; kernel net/netfilter/xt_length.c).

No table, hook or protocol restriction.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import need, parse_uint_range, single


@dataclass(frozen=True, slots=True)
class Length(Match):
    """xt_length_info: matches when min <= IP total length (IPv6: payload + 40) <= max, xor inv."""

    NAME = "length"
    min: int = 0
    max: int = 0xFFFF
    inv: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_length.c length_mt / length_mt6: IPv4 ``tot_len``, IPv6 ``payload_len + 40``
        (both ``pkt.length``) in [min, max], xor ``!``."""
        return (self.min <= pkt.length <= self.max) != self.inv

    def save(self) -> str:
        value = f"{self.min}" if self.min == self.max else f"{self.min}:{self.max}"
        return f"{' !' if self.inv else ''} --length {value}"


def build(given: list[Given], ctx: RuleContext) -> Length:
    opts = single(given)
    g = opts.get("length")
    need(g is not None, ctx, "length: option \"--length\" must be specified")
    lo, hi = parse_uint_range(g, "length", 0xFFFF)
    return Length(lo, hi, g.inv)


SPEC = ExtSpec("length", "match", (Opt("length"),), build)
