"""``-m mark [!] --mark value[/mask]`` (extensions/libxt_mark.c, kernel net/netfilter/xt_mark.c
mark_mt): matches when ``(skb->mark & mask) == value``, xor ``!``."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, parse_val_mask, xt_collect, xt_fcheck, xt_opts


@dataclass(frozen=True, slots=True)
class Mark(Match):
    NAME = "mark"
    mark: int = 0
    mask: int = 0xFFFFFFFF
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_mark.c mark_mt(): ``((skb->mark & mask) == mark) ^ invert``. iptables-nft 1.8.9
        stores it natively (meta mark, bitwise mask, cmp eq/neq): the same test."""
        return ((pkt.mark & self.mask) == self.mark) != self.invert

    def save(self) -> str:
        inv = " !" if self.invert else ""
        if self.mask == 0xFFFFFFFF:
            return f"{inv} --mark {self.mark:#x}"
        return f"{inv} --mark {self.mark:#x}/{self.mask:#x}"


OPTIONS = (XtOpt("mark", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Mark:
    seen = xt_collect("mark", OPTIONS, given)
    xt_fcheck("mark", OPTIONS, seen, ctx)
    g = seen[0]
    value, mask = parse_val_mask(g, "mark")
    return Mark(value, mask, g.inv)


SPEC = ExtSpec("mark", "match", xt_opts(OPTIONS), build)
