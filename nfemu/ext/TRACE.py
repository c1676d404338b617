"""``-j TRACE``: mark the packet for rule tracing (extensions/libxt_TRACE.c, kernel
net/netfilter/xt_TRACE.c). No options. Returns XT_CONTINUE.

The xtables target is limited to table raw, but iptables-nft 1.8.9 does not use it: it
translates TRACE into the native ``meta nftrace set 1`` and reads that back as ``-j TRACE``, so
under nf_tables it loads in every table and chain (seen in filter, mangle, raw on 6.18).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from .base import ExtSpec, Given, Kernel, RuleContext


@dataclass(frozen=True, slots=True)
class Trace(Target):
    """Sets skb->nf_trace."""

    NAME = "TRACE"
    TERMINAL = False

    def apply(self, pkt, ev):
        """xt_TRACE.c trace_tg() (under iptables-nft: ``meta nftrace set 1``): sets
        skb->nf_trace, which the Packet does not carry; recorded as a TRACE event.
        XT_CONTINUE."""
        ev.record("TRACE")
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)


def build(given: list[Given], ctx: RuleContext) -> Trace:
    return Trace()


SPEC = ExtSpec("TRACE", "target", (), build, Kernel())
