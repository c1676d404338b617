"""``-j AUDIT --type accept|drop|reject``: write an audit record for the packet
(extensions/libxt_AUDIT.c, kernel net/netfilter/xt_AUDIT.c). Returns XT_CONTINUE.

--type is mandatory and matched case-insensitively against the whole word; iptables-save prints
it in lower case. No table or hook restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Target
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
