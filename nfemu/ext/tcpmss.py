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
from .tcp import hotdrop
from .u32 import skb_view
from .xtopt import XtOpt, parse_uint_range, xt_collect, xt_fcheck, xt_opts


@dataclass(frozen=True, slots=True)
class Tcpmss(Match):
    """xt_tcpmss_match_info: matches when mss_min <= MSS <= mss_max, xor invert."""

    NAME = "tcpmss"
    mss_min: int = 0
    mss_max: int = 0
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_tcpmss.c tcpmss_mt(): reads the TCP header at ``par->thoff`` (no fragment
        check: the rule's ``-p tcp`` lets a non-first fragment through, whose data is read as
        a header) and walks its options: the first MSS option (kind 2, length byte 4, four
        bytes left) decides, ``mss_min <= MSS <= mss_max`` xor ``!``; other kinds advance by
        one (EOL, NOP) or by their length byte (a 0 length by one); no MSS option gives
        ``!``. A header under 20 bytes, a data offset under 5 or options cut short by the end
        of the datagram are a hotdrop."""
        view = skb_view(pkt)
        th = view.l4(0, 20, "-m tcpmss")
        if th is None:
            hotdrop(ev, "tcpmss: TCP header cut short")
            return False
        doff = (th[12] >> 4) * 4
        if doff < 20:
            hotdrop(ev, "tcpmss: TCP data offset under 5")
            return False
        optlen = doff - 20
        if not optlen:
            return self.invert
        op = view.l4(20, optlen, "-m tcpmss")
        if op is None:
            hotdrop(ev, "tcpmss: TCP options cut short")
            return False
        i = 0
        while i < optlen:
            if op[i] == 2 and optlen - i >= 4 and op[i + 1] == 4:
                mss = op[i + 2] << 8 | op[i + 3]
                return (self.mss_min <= mss <= self.mss_max) != self.invert
            if op[i] < 2:
                i += 1
            else:
                # op[i + 1] past the options is the byte after them: whatever it is, the
                # walk then ends
                i += (op[i + 1] if i + 1 < optlen else 1) or 1
        return self.invert

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
