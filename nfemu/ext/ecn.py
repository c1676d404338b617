"""``-m ecn [!] --ecn-tcp-cwr [!] --ecn-tcp-ece [!] --ecn-ip-ect N``: ECN bits of the TCP
header and the ECN codepoint (0-3) of the IP header (extensions/libxt_ecn.c; kernel
net/netfilter/xt_ecn.c ecn_mt_check4/6).

iptables-save prints ece, cwr, then ip-ect. Kernel: the TCP bits need ``-p tcp`` (not negated).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Match
from ..protocols import TCP
from .base import ExtSpec, Given, RuleContext
from .u32 import skb_view
from .xtopt import XtOpt, parse_uint_opt, xt_collect, xt_fcheck, xt_opts


class EcnOp(enum.IntFlag):
    """XT_ECN_OP_MATCH_* (include/uapi/linux/netfilter/xt_ecn.h)."""

    IP = 0x01
    ECE = 0x10
    CWR = 0x20


@dataclass(frozen=True, slots=True)
class Ecn(Match):
    """xt_ecn_info: the tests (operation), their inversions, the IP ECN codepoint."""

    NAME = "ecn"
    operation: EcnOp = EcnOp(0)
    invert: EcnOp = EcnOp(0)
    ip_ect: int = 0

    def match(self, pkt, ev) -> bool:
        """xt_ecn.c ecn_mt4() / ecn_mt6(): with ``--ecn-ip-ect``, the ECN field (the low two
        bits of the IPv4 TOS or IPv6 traffic class, ``pkt.tos & 3``) must equal ip_ect, xor
        its ``!``; then match_tcp() reads the TCP header at ``par->thoff`` (no fragment
        check; a header under 20 bytes fails the match, without hotdrop) and each of
        ``--ecn-tcp-ece``/``--ecn-tcp-cwr`` asks its flag set (clear with ``!``)."""
        op, inv = self.operation, self.invert
        if op & EcnOp.IP and ((pkt.tos & 3) == self.ip_ect) == bool(inv & EcnOp.IP):
            return False
        if op & (EcnOp.ECE | EcnOp.CWR):
            th = skb_view(pkt).l4(0, 20, "-m ecn")
            if th is None:
                return False
            flags = th[13]
            for bit, flag in ((EcnOp.ECE, 0x40), (EcnOp.CWR, 0x80)):
                if op & bit and bool(flags & flag) == bool(inv & bit):
                    return False
        return True

    def save(self) -> str:
        out = []
        for bit, text in ((EcnOp.ECE, " --ecn-tcp-ece"), (EcnOp.CWR, " --ecn-tcp-cwr"),
                          (EcnOp.IP, f" --ecn-ip-ect {self.ip_ect}")):
            if self.operation & bit:
                out.append((" !" if self.invert & bit else "") + text)
        return "".join(out)


OPTIONS = (XtOpt("ecn-tcp-cwr", 0, 0, invert=True), XtOpt("ecn-tcp-ece", 1, 0, invert=True),
           XtOpt("ecn-ip-ect", 2, invert=True))
_BITS = (EcnOp.CWR, EcnOp.ECE, EcnOp.IP)


def build(given: list[Given], ctx: RuleContext) -> Ecn:
    seen = xt_collect("ecn", OPTIONS, given)
    op = inv = EcnOp(0)
    ect = 0
    for i, g in seen.items():
        op |= _BITS[i]
        if g.inv:
            inv |= _BITS[i]
        if i == 2:
            ect = parse_uint_opt(g, "ecn", 0, 3)
    xt_fcheck("ecn", OPTIONS, seen, ctx)
    if not seen:
        raise ParseError("ECN match: some option required", ctx.loc)
    return Ecn(op, inv, ect)


def check(value: Ecn, table: str, hooks, rule) -> list[str]:
    if value.operation & (EcnOp.ECE | EcnOp.CWR) and (rule.proto != TCP or rule.proto_inv):
        return ["-m ecn: --ecn-tcp-ece/--ecn-tcp-cwr need -p tcp in the rule"]
    return []


SPEC = ExtSpec("ecn", "match", xt_opts(OPTIONS), build, check=check)
