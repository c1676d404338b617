"""``-j MASQUERADE``: SNAT to the output interface's address (extensions/libxt_NAT.c
MASQUERADE entries; kernel net/netfilter/xt_MASQUERADE.c).

Options ``--to-ports P[-P]`` (needs ``-p`` tcp/udp/sctp/dccp/icmp), ``--random``,
``--random-fully``; printed in that order. The IPv4 target uses
``nf_nat_ipv4_multi_range_compat``, which has no base port: a ``/BASE`` shift is accepted and
printed as ``/0``. Kernel: table nat, POSTROUTING only.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Target
from .base import POST, ExtSpec, Given, Kernel, Opt, RuleContext
from .NAT import NAT_TABLES, NatRange, parse_nat_options


@dataclass(frozen=True, slots=True)
class Masquerade(Target):
    NAME = "MASQUERADE"
    TERMINAL = True
    range: NatRange = NatRange()

    def save(self) -> str:
        return self.range.save("to-ports", skip_colon=True)


def build(given: list[Given], ctx: RuleContext) -> Masquerade:
    r = parse_nat_options(given, ctx, "MASQUERADE", None, mandatory=False)
    return Masquerade(r.freeze(keep_base=False))


SPEC = ExtSpec("MASQUERADE", "target",
               (Opt("to-ports"), Opt("random", 0), Opt("random-fully", 0)),
               build, Kernel(tables=NAT_TABLES, hooks=frozenset({POST})))
