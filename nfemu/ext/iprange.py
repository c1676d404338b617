"""``-m iprange [!] --src-range A[-B] [!] --dst-range A[-B]``: the source / destination
address lies in the inclusive range [A, B] (libxt_iprange.c revision 1, kernel
net/netfilter/xt_iprange.c iprange_mt4/iprange_mt6).

A single address means A-A. A reversed range (A > B) loads (iptables only warns "is reversed
and will never match") and never matches. No table, hook or protocol restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Family, Match
from ..util import int_to_ipv4, int_to_ipv6, ipv4_to_int, ipv6_to_int
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import need, single


class IprangeFlag(enum.IntFlag):
    """xt_iprange_mtinfo.flags (IPRANGE_*)."""

    SRC = 1 << 0
    DST = 1 << 1
    SRC_INV = 1 << 4
    DST_INV = 1 << 5


@dataclass(frozen=True, slots=True)
class Iprange(Match):
    NAME = "iprange"
    flags: IprangeFlag = IprangeFlag(0)
    src_min: int = 0
    src_max: int = 0
    dst_min: int = 0
    dst_max: int = 0
    family: Family = Family.IPV4

    @property
    def src(self) -> tuple[int, int] | None:
        return (self.src_min, self.src_max) if self.flags & IprangeFlag.SRC else None

    @property
    def dst(self) -> tuple[int, int] | None:
        return (self.dst_min, self.dst_max) if self.flags & IprangeFlag.DST else None

    def match(self, pkt, ev) -> bool:
        """xt_iprange.c iprange_mt4 / iprange_mt6: the address outside [min, max]
        (inclusive; a reversed range never matches), xor the side's ``!``."""
        flags = self.flags
        if flags & IprangeFlag.SRC:
            outside = pkt.src < self.src_min or pkt.src > self.src_max
            if outside != bool(flags & IprangeFlag.SRC_INV):
                return False
        if flags & IprangeFlag.DST:
            outside = pkt.dst < self.dst_min or pkt.dst > self.dst_max
            if outside != bool(flags & IprangeFlag.DST_INV):
                return False
        return True

    def save(self) -> str:
        text = int_to_ipv4 if self.family is Family.IPV4 else int_to_ipv6
        out = []
        if self.flags & IprangeFlag.SRC:
            inv = " !" if self.flags & IprangeFlag.SRC_INV else ""
            out.append(f"{inv} --src-range {text(self.src_min)}-{text(self.src_max)}")
        if self.flags & IprangeFlag.DST:
            inv = " !" if self.flags & IprangeFlag.DST_INV else ""
            out.append(f"{inv} --dst-range {text(self.dst_min)}-{text(self.dst_max)}")
        return "".join(out)


def _parse_range(g: Given, family: Family) -> tuple[int, int]:
    """iprange_parse_range(): split at the first '-'; each side a numeric address."""
    lo_text, dash, hi_text = g.arg.partition("-")
    if not dash:
        hi_text = lo_text
    out = []
    for spec in (lo_text, hi_text):
        value = ipv4_to_int(spec) if family is Family.IPV4 else ipv6_to_int(spec)
        if value is None:
            raise g.error(f"iprange: Bad value for \"--{g.name}\" option: \"{spec}\"")
        out.append(value)
    return out[0], out[1]


def build(given: list[Given], ctx: RuleContext) -> Iprange:
    opts = single(given)
    flags = IprangeFlag(0)
    fields: dict = {}
    for g in opts.values():  # in the order given, as iptables parses them
        lo, hi = _parse_range(g, ctx.family)
        side = "src" if g.name == "src-range" else "dst"
        fields[f"{side}_min"], fields[f"{side}_max"] = lo, hi
        flags |= IprangeFlag.SRC if side == "src" else IprangeFlag.DST
        if g.inv:
            flags |= IprangeFlag.SRC_INV if side == "src" else IprangeFlag.DST_INV
    need(bool(flags), ctx, "iprange match: You must specify `--src-range' or `--dst-range'")
    return Iprange(flags=flags, family=ctx.family, **fields)


SPEC = ExtSpec("iprange", "match", (Opt("src-range"), Opt("dst-range")), build)
