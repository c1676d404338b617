"""``-j DSCP``: set the DSCP bits (the upper six of the TOS / traffic class byte; extensions/
libxt_DSCP.c, kernel net/netfilter/xt_DSCP.c ``dscp_tg``/``dscp_tg6``). Returns XT_CONTINUE.

``--set-dscp N`` (0-63) or ``--set-dscp-class NAME`` (the first DiffServ class whose name
begins the argument, any case: ``EFX`` is EF), one of them; iptables-save prints
``--set-dscp 0xNN``. Kernel: table mangle only.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from .base import ExtSpec, Given, Kernel, RuleContext
from .dscp import XT_DSCP_MAX, class_to_dscp
from .xtopt import XtOpt, ctx_error, parse_uint_opt, xt_fcheck, xt_opts, xt_parse

# O_SET_DSCP, O_SET_DSCP_CLASS
OPTIONS = (XtOpt("set-dscp", 0, excl=frozenset({1})),
           XtOpt("set-dscp-class", 1, excl=frozenset({0})))


@dataclass(frozen=True, slots=True)
class DscpTarget(Target):
    """xt_DSCP_info: the DSCP to write (TOS = (TOS & 0x03) | dscp << 2)."""

    NAME = "DSCP"
    TERMINAL = False
    dscp: int = 0

    def save(self) -> str:
        return f" --set-dscp 0x{self.dscp:02x}"

    def apply(self, pkt, ev):
        """xt_DSCP.c dscp_tg()/dscp_tg6(): when the DSCP differs, ``tos = (tos & 0x03) |
        dscp << 2`` (ECN bits kept); XT_CONTINUE."""
        if (pkt.tos >> 2) != self.dscp:
            pkt = pkt.replace(tos=(pkt.tos & 0x03) | (self.dscp << 2))
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)


def build(given: list[Given], ctx: RuleContext) -> DscpTarget:
    seen: dict[int, Given] = {}
    dscp = None
    for g in given:
        e = xt_parse("DSCP", OPTIONS, g, seen)
        dscp = parse_uint_opt(g, "DSCP", 0, XT_DSCP_MAX) if e.id == 0 else class_to_dscp(g)
    xt_fcheck("DSCP", OPTIONS, seen, ctx)
    if dscp is None:
        raise ctx_error(ctx, "DSCP target: Parameter --set-dscp is required")
    return DscpTarget(dscp)


SPEC = ExtSpec("DSCP", "target", xt_opts(OPTIONS), build, Kernel(tables=frozenset({"mangle"})))
