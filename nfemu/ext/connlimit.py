"""``-m connlimit``: the number of conntrack connections from (or to) the packet's address
group (extensions/libxt_connlimit.c revision 1; kernel net/netfilter/xt_connlimit.c).

Options: ``[!] --connlimit-upto N`` (matches with at most N connections), ``[!]
--connlimit-above N`` (more than N; ``!`` swaps the two), ``--connlimit-mask PLEN`` (a prefix
length or a contiguous network mask; anything else is all ones, the default), ``--connlimit-saddr`` (default) /
``--connlimit-daddr``. iptables-save always prints the limit, the mask as a prefix length
(count_bits: the length up to the highest zero bit) and the address selector.
No kernel restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Family, Match
from .base import ExtSpec, Given, RuleContext
from .xthost import parse_plen, plen_mask
from .xtopt import XtOpt, parse_uint_opt, xt_fcheck, xt_opts, xt_parse


class ConnlimitFlag(enum.IntFlag):
    """XT_CONNLIMIT_* (include/uapi/linux/netfilter/xt_connlimit.h)."""

    INVERT = 1 << 0
    DADDR = 1 << 1


@dataclass(frozen=True, slots=True)
class Connlimit(Match):
    """xt_connlimit_info: matches when (count > limit) xor INVERT."""

    NAME = "connlimit"
    limit: int = 0
    mask: int = 0xFFFFFFFF
    flags: ConnlimitFlag = ConnlimitFlag(0)
    family: Family = Family.IPV4

    def save(self) -> str:
        width = self.family.width
        inverse = ~self.mask & ((1 << width) - 1)
        bits = width - inverse.bit_length()
        which = "upto" if self.flags & ConnlimitFlag.INVERT else "above"
        addr = "daddr" if self.flags & ConnlimitFlag.DADDR else "saddr"
        return f" --connlimit-{which} {self.limit} --connlimit-mask {bits} --connlimit-{addr}"


O_UPTO, O_ABOVE, O_MASK, O_SADDR, O_DADDR = range(5)
OPTIONS = (
    XtOpt("connlimit-upto", O_UPTO, invert=True, excl=frozenset({O_ABOVE})),
    XtOpt("connlimit-above", O_ABOVE, invert=True, excl=frozenset({O_UPTO})),
    XtOpt("connlimit-mask", O_MASK),
    XtOpt("connlimit-saddr", O_SADDR, 0, excl=frozenset({O_DADDR})),
    XtOpt("connlimit-daddr", O_DADDR, 0, excl=frozenset({O_SADDR})),
)


def build(given: list[Given], ctx: RuleContext) -> Connlimit:
    seen: dict[int, Given] = {}
    width = ctx.family.width
    limit = 0
    mask = (1 << width) - 1
    flags = ConnlimitFlag(0)
    for g in given:
        e = xt_parse("connlimit", OPTIONS, g, seen)
        if e.id in (O_UPTO, O_ABOVE):
            limit = parse_uint_opt(g, "connlimit")
            if (e.id == O_UPTO) != g.inv:
                flags |= ConnlimitFlag.INVERT
        elif e.id == O_MASK:
            mask = plen_mask(parse_plen(g.arg, ctx.family, g, "connlimit"), width)
        elif e.id == O_SADDR:
            flags &= ~ConnlimitFlag.DADDR
        else:
            flags |= ConnlimitFlag.DADDR
    xt_fcheck("connlimit", OPTIONS, seen, ctx)
    if O_UPTO not in seen and O_ABOVE not in seen:
        raise ParseError("You must specify \"--connlimit-above\" or \"--connlimit-upto\".",
                         ctx.loc)
    return Connlimit(limit, mask, flags, ctx.family)


SPEC = ExtSpec("connlimit", "match", xt_opts(OPTIONS), build)
