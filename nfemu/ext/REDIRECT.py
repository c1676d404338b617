"""``-j REDIRECT``: DNAT to the local machine (extensions/libxt_NAT.c REDIRECT entries; kernel
net/netfilter/xt_REDIRECT.c).

Options ``--to-ports P[-P]`` (needs ``-p`` tcp/udp/sctp/dccp/icmp) and ``--random``; a
``/BASE`` shift is refused in userspace ("Shifted portmap ranges not supported with this
kernel"). Kernel: table nat, PREROUTING and OUTPUT only.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Target
from .base import OUT, PRE, ExtSpec, Given, Kernel, Opt, RuleContext
from .NAT import NAT_TABLES, NatFlag, NatRange, parse_nat_options
from .xtopt import ctx_error


@dataclass(frozen=True, slots=True)
class Redirect(Target):
    NAME = "REDIRECT"
    TERMINAL = True
    range: NatRange = NatRange()

    def save(self) -> str:
        return self.range.save("to-ports", skip_colon=True)


def build(given: list[Given], ctx: RuleContext) -> Redirect:
    r = parse_nat_options(given, ctx, "REDIRECT", None, mandatory=False)
    if r.flags & NatFlag.PROTO_OFFSET:
        raise ctx_error(ctx, "Shifted portmap ranges not supported with this kernel")
    return Redirect(r.freeze(keep_base=False))


SPEC = ExtSpec("REDIRECT", "target", (Opt("to-ports"), Opt("random", 0)),
               build, Kernel(tables=NAT_TABLES, hooks=frozenset({PRE, OUT})))
