"""``-m ttl [!] --ttl-eq N | --ttl-lt N | --ttl-gt N`` (IPv4 only; extensions/libipt_ttl.c,
kernel net/netfilter/xt_hl.c ttl_mt).

``--ttl`` is an alias of ``--ttl-eq``; only these take ``!`` (mode "not equal", saved as
``! --ttl-eq``). The three options exclude each other. No kernel restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Family, Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, parse_uint_opt, xt_collect, xt_fcheck, xt_opts


class TtlMode(enum.IntEnum):
    """IPT_TTL_* (include/uapi/linux/netfilter_ipv4/ipt_ttl.h)."""

    EQ = 0
    NE = 1
    LT = 2
    GT = 3


_SAVE = {TtlMode.EQ: " --ttl-eq", TtlMode.NE: " ! --ttl-eq", TtlMode.LT: " --ttl-lt",
         TtlMode.GT: " --ttl-gt"}


@dataclass(frozen=True, slots=True)
class Ttl(Match):
    NAME = "ttl"
    mode: TtlMode = TtlMode.EQ
    ttl: int = 0

    def match(self, pkt, ev) -> bool:
        """xt_hl.c ttl_mt(): ``iphdr->ttl`` compared with the value: equal, not equal
        (``! --ttl-eq``), less than (``--ttl-lt``), greater than (``--ttl-gt``), on the
        packet as it is at the hook (the kernel's ip_forward() decrements the TTL before the
        FORWARD hook: FORWARD and POSTROUTING see the decremented value)."""
        ttl, mode = pkt.ttl, self.mode
        if mode is TtlMode.EQ:
            return ttl == self.ttl
        if mode is TtlMode.NE:
            return ttl != self.ttl
        if mode is TtlMode.LT:
            return ttl < self.ttl
        return ttl > self.ttl

    def save(self) -> str:
        return f"{_SAVE[self.mode]} {self.ttl}"


_ALL = frozenset({0, 1, 2})
# ids as in libipt_ttl.c: O_TTL_EQ 0, O_TTL_LT 1, O_TTL_GT 2
OPTIONS = (XtOpt("ttl-lt", 1, excl=_ALL), XtOpt("ttl-gt", 2, excl=_ALL),
           XtOpt("ttl-eq", 0, invert=True, excl=_ALL), XtOpt("ttl", 0, invert=True, excl=_ALL))


def build(given: list[Given], ctx: RuleContext) -> Ttl:
    seen = xt_collect("ttl", OPTIONS, given)
    mode = TtlMode.EQ
    value = 0
    for g in given:
        value = parse_uint_opt(g, "ttl", 0, 0xFF)
        if g.name in ("ttl-eq", "ttl"):
            mode = TtlMode.NE if g.inv else TtlMode.EQ
        else:
            mode = TtlMode.LT if g.name == "ttl-lt" else TtlMode.GT
    xt_fcheck("ttl", OPTIONS, seen, ctx)
    if not seen:
        raise ParseError("TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt",
                         ctx.loc)
    return Ttl(mode, value)


SPEC = ExtSpec("ttl", "match", xt_opts(OPTIONS), build, families=frozenset({Family.IPV4}))
