"""``-j REDIRECT``: DNAT to the local machine (extensions/libxt_NAT.c REDIRECT entries; kernel
net/netfilter/xt_REDIRECT.c).

Options ``--to-ports P[-P]`` (needs ``-p`` tcp/udp/sctp/dccp/icmp) and ``--random``; a
``/BASE`` shift is refused in userspace ("Shifted portmap ranges not supported with this
kernel"). Kernel: table nat, PREROUTING and OUTPUT only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .. import engine as _engine
from ..ir import Target
from .base import OUT, PRE, ExtSpec, Given, Kernel, Opt, RuleContext
from .NAT import (
    MANIP_DST, NAT_TABLES, NatFlag, NatRange, nat_setup, not_evaluable, parse_nat_options,
)
from .xtopt import ctx_error


@dataclass(frozen=True, slots=True)
class Redirect(Target):
    NAME = "REDIRECT"
    TERMINAL = True
    range: NatRange = NatRange()

    def save(self) -> str:
        return self.range.save("to-ports", skip_colon=True)

    def apply(self, pkt, ev):
        """xt_REDIRECT.c redirect_tg4() -> nf_nat_redirect.c nf_nat_redirect_ipv4(): the new
        destination is 127.0.0.1 in OUTPUT (by hook, as the kernel decides), else the first
        address (``ifa_list``) of the incoming device; none: NF_DROP. Then
        nf_nat_setup_info() for the destination with the rule's --to-ports (a port outside
        them becomes the first one, or a random one of a range: see NAT.py).
        IPv6 (nf_nat_redirect_ipv6) is not modelled: Host has no IPv6 addresses to pick."""
        if pkt.family != 4:
            raise not_evaluable("-j REDIRECT for IPv6 cannot be evaluated by nfemu yet "
                                "(no IPv6 interface addresses in Host)")
        Verdict, TargetResult = _engine.Verdict, _engine.TargetResult
        newdst = ev.host.redirect_address(None if ev.hook == OUT else pkt.iif)
        if not newdst:
            ev.record("DNAT", by="REDIRECT",
                      error=f"incoming device {pkt.iif or '(none)'} has no IPv4 address "
                            "(NF_DROP)")
            return TargetResult(Verdict.DROP, pkt)
        r = self.range
        newrange = replace(r, flags=NatFlag(int(r.flags) | int(NatFlag.MAP_IPS)),
                           min_addr=newdst, max_addr=newdst, base_port=0)
        return nat_setup(pkt, ev, newrange, MANIP_DST, "DNAT", by="REDIRECT")


def build(given: list[Given], ctx: RuleContext) -> Redirect:
    r = parse_nat_options(given, ctx, "REDIRECT", None, mandatory=False)
    if r.flags & NatFlag.PROTO_OFFSET:
        raise ctx_error(ctx, "Shifted portmap ranges not supported with this kernel")
    return Redirect(r.freeze(keep_base=False))


SPEC = ExtSpec("REDIRECT", "target", (Opt("to-ports"), Opt("random", 0)),
               build, Kernel(tables=NAT_TABLES, hooks=frozenset({PRE, OUT})))
