"""``-j TOS``: change the IPv4 TOS / IPv6 traffic class byte (extensions/libxt_TOS.c revision
1, kernel net/netfilter/xt_DSCP.c ``tos_tg``/``tos_tg6``: ``tos = (tos & ~mask) ^ value``).
Returns XT_CONTINUE.

Every form is stored as (value, mask), so iptables-save prints ``--set-tos 0xVV/0xMM``:

====================  =====================
--set-tos v[/m]       v / m (m defaults to 0xff)
--set-tos SYMBOL      symbol / 0x3f (keeps the precedence bits)
--and-tos x           0 / ~x
--or-tos x            x / x
--xor-tos x           x / 0
====================  =====================

The four options exclude each other. Kernel: table mangle only (any of its chains).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from .base import ExtSpec, Given, Kernel, RuleContext
from .tos import parse_tosmask
from .xtopt import XtOpt, ctx_error, parse_uint_opt, xt_fcheck, xt_opts, xt_parse

_ANY = frozenset({0, 1, 2, 3})
# O_SET_TOS, O_AND_TOS, O_OR_TOS, O_XOR_TOS
OPTIONS = (XtOpt("set-tos", 0, excl=_ANY), XtOpt("and-tos", 1, excl=_ANY),
           XtOpt("or-tos", 2, excl=_ANY), XtOpt("xor-tos", 3, excl=_ANY))
SYMBOL_MASK = 0x3F  # tos_tg_opts[].max for --set-tos SYMBOL


@dataclass(frozen=True, slots=True)
class TosTarget(Target):
    """xt_tos_target_info: the new TOS is ``(tos & ~mask) ^ value``."""

    NAME = "TOS"
    TERMINAL = False
    value: int = 0
    mask: int = 0xFF

    def save(self) -> str:
        return f" --set-tos 0x{self.value:02x}/0x{self.mask:02x}"

    def new_tos(self, tos: int) -> int:
        return ((tos & ~self.mask) ^ self.value) & 0xFF

    def apply(self, pkt, ev=None):
        """xt_DSCP.c tos_tg()/tos_tg6(): ``tos = (tos & ~mask) ^ value`` on the IPv4 TOS byte
        or the IPv6 traffic class; XT_CONTINUE. Given a plain int (the older helper form),
        returns the new TOS."""
        if isinstance(pkt, int):
            return self.new_tos(pkt)
        tos = self.new_tos(pkt.tos)
        if tos != pkt.tos:
            pkt = pkt.replace(tos=tos)
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)


def build(given: list[Given], ctx: RuleContext) -> TosTarget:
    seen: dict[int, Given] = {}
    result = None
    for g in given:
        e = xt_parse("TOS", OPTIONS, g, seen)
        if e.id == 0:
            result = parse_tosmask(g, "TOS", SYMBOL_MASK)
        else:
            x = parse_uint_opt(g, "TOS", 0, 0xFF)
            result = {1: (0, ~x & 0xFF), 2: (x, x), 3: (x, 0)}[e.id]
    xt_fcheck("TOS", OPTIONS, seen, ctx)
    if result is None:
        raise ctx_error(ctx, "TOS: An action is required")
    return TosTarget(*result)


SPEC = ExtSpec("TOS", "target", xt_opts(OPTIONS), build, Kernel(tables=frozenset({"mangle"})))
