"""``-m quota [!] --quota BYTES``: matches until BYTES bytes have passed, then stops
(``!`` the reverse) (extensions/libxt_quota.c; kernel net/netfilter/xt_quota.c).

The quota is a u64 (decimal, hex or octal as C strtoull reads it). No kernel restriction.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..cnum import strtoui
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

U64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Quota(Match):
    """xt_quota_info: the byte budget and XT_QUOTA_INVERT."""

    NAME = "quota"
    quota: int = 0
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_quota.c quota_mt(): the rule keeps its own remaining budget (``priv->quota``,
        here ``ev.state.quota[ev.state_key]``, starting at --quota when the rule is loaded).
        A packet of ``skb->len`` bytes (the IP total length) that fits (``quota >= len``)
        is taken from it and the result is "match" (no match with ``!``); the first packet
        that does not fit empties the budget, so that no packet, however small, matches
        again. Every packet that reaches the match counts, whatever the rule's other matches
        decided before it (they come first in the rule) and whatever its target does."""
        quotas = ev.state.quota
        key = ev.state_key
        left = quotas.get(key)
        if left is None:
            left = self.quota
        if left >= pkt.length:
            quotas[key] = left - pkt.length
            return not self.invert
        quotas[key] = 0
        return self.invert

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --quota {self.quota}"


OPTIONS = (XtOpt("quota", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Quota:
    seen = xt_collect("quota", OPTIONS, given)
    xt_fcheck("quota", OPTIONS, seen, ctx)
    g = seen[0]
    got = strtoui(g.arg, 0, 0, U64)
    if got is None or got[1] != len(g.arg):
        raise g.error(f"quota: bad value for option \"--quota\", or out of range (0-{U64}).")
    return Quota(got[0], g.inv)


SPEC = ExtSpec("quota", "match", xt_opts(OPTIONS), build)
