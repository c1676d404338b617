"""``-j TTL``: set, decrement or increment the IPv4 TTL (extensions/libipt_TTL.c, kernel
net/netfilter/xt_HL.c ``ttl_tg``). IPv4 only (IPv6 has ``-j HL``). Returns XT_CONTINUE.

One of --ttl-set 0-255, --ttl-dec 1-255, --ttl-inc 1-255; iptables-save prints it as given.
Kernel: table mangle only (any of its chains); it refuses a step of 0, which userspace already
does.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Family, Target
from .base import ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, ctx_error, parse_uint_opt, xt_fcheck, xt_opts, xt_parse


class TtlMode(enum.IntEnum):
    """IPT_TTL_SET, IPT_TTL_INC, IPT_TTL_DEC (include/uapi/linux/netfilter_ipv4/ipt_TTL.h)."""

    SET = 0
    INC = 1
    DEC = 2


_ANY = frozenset({0, 1, 2})
# O_TTL_SET, O_TTL_INC, O_TTL_DEC in libipt_TTL.c's option table order (set, dec, inc)
OPTIONS = (XtOpt("ttl-set", 0, excl=_ANY), XtOpt("ttl-dec", 1, excl=_ANY),
           XtOpt("ttl-inc", 2, excl=_ANY))
_MODE = {0: TtlMode.SET, 1: TtlMode.DEC, 2: TtlMode.INC}
_SAVE = {TtlMode.SET: "--ttl-set", TtlMode.DEC: "--ttl-dec", TtlMode.INC: "--ttl-inc"}


@dataclass(frozen=True, slots=True)
class TtlTarget(Target):
    """ipt_TTL_info: mode and value."""

    NAME = "TTL"
    TERMINAL = False
    mode: TtlMode = TtlMode.SET
    ttl: int = 0

    def save(self) -> str:
        return f" {_SAVE[self.mode]} {self.ttl}"

    def apply(self, pkt, ev=None):
        """xt_HL.c ttl_tg(): set, or add/subtract saturating at 255/0; XT_CONTINUE (IPv4
        only: the target is registered for NFPROTO_IPV4). Given a plain int (the older helper
        form), returns the new TTL."""
        if isinstance(pkt, int):
            return self.new_ttl(pkt)
        ttl = self.new_ttl(pkt.ttl)
        if ttl != pkt.ttl:
            pkt = pkt.replace(ttl=ttl)
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)

    def new_ttl(self, ttl: int) -> int:
        """The new TTL (ttl_tg: inc saturates at 255, dec stops at 0)."""
        if self.mode is TtlMode.SET:
            return self.ttl
        if self.mode is TtlMode.INC:
            return min(ttl + self.ttl, 255)
        return max(ttl - self.ttl, 0)


def build(given: list[Given], ctx: RuleContext) -> TtlTarget:
    seen: dict[int, Given] = {}
    result = None
    for g in given:
        e = xt_parse("TTL", OPTIONS, g, seen)
        lo = 0 if e.id == 0 else 1
        result = TtlTarget(_MODE[e.id], parse_uint_opt(g, "TTL", lo, 0xFF))
    xt_fcheck("TTL", OPTIONS, seen, ctx)
    if result is None:
        raise ctx_error(ctx, "TTL: You must specify an action")
    return result


SPEC = ExtSpec("TTL", "target", xt_opts(OPTIONS), build, Kernel(tables=frozenset({"mangle"})),
               families=frozenset({Family.IPV4}))
