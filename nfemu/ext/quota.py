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
