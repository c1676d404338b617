"""``-j CHECKSUM --checksum-fill``: compute a checksum left partial (CHECKSUM_PARTIAL) in the
packet (extensions/libxt_CHECKSUM.c, kernel net/netfilter/xt_CHECKSUM.c). Returns XT_CONTINUE.

The option is mandatory; iptables-save prints it. Kernel: table mangle only (it also warns,
without refusing, when the rule is not ``-p udp``).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from .base import ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, xt_fcheck, xt_opts, xt_parse


class ChecksumOp(enum.IntFlag):
    """XT_CHECKSUM_OP_* (include/uapi/linux/netfilter/xt_CHECKSUM.h)."""

    FILL = 0x01


@dataclass(frozen=True, slots=True)
class Checksum(Target):
    """xt_CHECKSUM_info: the operation (only FILL exists)."""

    NAME = "CHECKSUM"
    TERMINAL = False
    operation: ChecksumOp = ChecksumOp.FILL

    def save(self) -> str:
        return " --checksum-fill" if self.operation & ChecksumOp.FILL else ""

    def apply(self, pkt, ev):
        """xt_CHECKSUM.c checksum_tg(): completes a CHECKSUM_PARTIAL checksum; a Packet's
        checksums are always complete (recomputed when written), so nothing changes.
        XT_CONTINUE."""
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)


OPTIONS = (XtOpt("checksum-fill", 0, nargs=0, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Checksum:
    seen: dict[int, Given] = {}
    for g in given:
        xt_parse("CHECKSUM", OPTIONS, g, seen)
    xt_fcheck("CHECKSUM", OPTIONS, seen, ctx)
    return Checksum(ChecksumOp.FILL)


SPEC = ExtSpec("CHECKSUM", "target", xt_opts(OPTIONS), build,
               Kernel(tables=frozenset({"mangle"})))
