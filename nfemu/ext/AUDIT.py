"""``-j AUDIT --type accept|drop|reject``: write an audit record for the packet
(extensions/libxt_AUDIT.c, kernel net/netfilter/xt_AUDIT.c). Returns XT_CONTINUE.

--type is mandatory and matched case-insensitively against the whole word; iptables-save prints
it in lower case. No table or hook restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from ..util import int_to_ipv4, int_to_ipv6
from .base import ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, xt_fcheck, xt_opts, xt_parse


class AuditType(enum.IntEnum):
    """XT_AUDIT_TYPE_* (include/uapi/linux/netfilter/xt_AUDIT.h)."""

    ACCEPT = 0
    DROP = 1
    REJECT = 2


@dataclass(frozen=True, slots=True)
class Audit(Target):
    """xt_audit_info: the action type recorded."""

    NAME = "AUDIT"
    TERMINAL = False
    type: AuditType = AuditType.ACCEPT

    def save(self) -> str:
        return f" --type {self.type.name.lower()}"

    def apply(self, pkt, ev):
        """xt_AUDIT.c audit_tg(): an AUDIT_NETFILTER_PKT record ``mark=%#x saddr=.. daddr=..
        proto=..`` (when auditing is enabled), recorded as an AUDIT event; XT_CONTINUE. The
        --type value is no longer part of the record in current kernels; it is kept in the
        event."""
        mark = f"{pkt.mark:#x}" if pkt.mark else "0"
        if pkt.family == 4:
            addrs = f"saddr={int_to_ipv4(pkt.src)} daddr={int_to_ipv4(pkt.dst)}"
        else:
            addrs = f"saddr={int_to_ipv6(pkt.src)} daddr={int_to_ipv6(pkt.dst)}"
        ev.record("AUDIT", type=self.type.name.lower(),
                  record=f"mark={mark} {addrs} proto={pkt.proto}")
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)


OPTIONS = (XtOpt("type", 0, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Audit:
    seen: dict[int, Given] = {}
    kind = AuditType.ACCEPT
    for g in given:
        xt_parse("AUDIT", OPTIONS, g, seen)
        try:
            kind = AuditType[g.arg.upper()] if g.arg.isascii() else None
        except KeyError:
            kind = None
        if kind is None:
            raise g.error(f"Bad action type value \"{g.arg}\"")
    xt_fcheck("AUDIT", OPTIONS, seen, ctx)
    return Audit(kind)


SPEC = ExtSpec("AUDIT", "target", xt_opts(OPTIONS), build, Kernel())
