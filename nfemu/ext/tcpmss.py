"""``-p tcp -m tcpmss [!] --mss N[:M]``: the MSS option of a TCP SYN is in [N, M]
(extensions/libxt_tcpmss.c; kernel net/netfilter/xt_tcpmss.c).

Kernel: ``.proto = IPPROTO_TCP``: the rule must say ``-p tcp``, not negated. iptables-save
prints ``N`` when both ends are equal, else ``N:M`` (a reversed range is refused).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..protocols import TCP
from .base import ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, parse_uint_range, xt_collect, xt_fcheck, xt_opts


@dataclass(frozen=True, slots=True)
class Tcpmss(Match):
    """xt_tcpmss_match_info: matches when mss_min <= MSS <= mss_max, xor invert."""

    NAME = "tcpmss"
    mss_min: int = 0
    mss_max: int = 0
    invert: bool = False

    def save(self) -> str:
        value = f"{self.mss_min}" if self.mss_min == self.mss_max else \
            f"{self.mss_min}:{self.mss_max}"
        return f"{' !' if self.invert else ''} --mss {value}"


OPTIONS = (XtOpt("mss", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Tcpmss:
    seen = xt_collect("tcpmss", OPTIONS, given)
    xt_fcheck("tcpmss", OPTIONS, seen, ctx)
    g = seen[0]
    lo, hi = parse_uint_range(g, "tcpmss", 0xFFFF)
    if lo > hi:
        raise g.error("tcpmss: invalid range given")
    return Tcpmss(lo, hi, g.inv)


SPEC = ExtSpec("tcpmss", "match", xt_opts(OPTIONS), build, Kernel(proto=TCP))
