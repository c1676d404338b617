"""``-j MASQUERADE``: SNAT to the output interface's address (extensions/libxt_NAT.c
MASQUERADE entries; kernel net/netfilter/xt_MASQUERADE.c).

Options ``--to-ports P[-P]`` (needs ``-p`` tcp/udp/sctp/dccp/icmp), ``--random``,
``--random-fully``; printed in that order. The IPv4 target uses
``nf_nat_ipv4_multi_range_compat``, which has no base port: a ``/BASE`` shift is accepted and
printed as ``/0``. Kernel: table nat, POSTROUTING only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .. import engine as _engine
from ..ir import Target
from .base import POST, ExtSpec, Given, Kernel, Opt, RuleContext
from .NAT import (
    MANIP_SRC, NAT_TABLES, NatFlag, NatRange, nat_setup, not_evaluable, parse_nat_options,
)


@dataclass(frozen=True, slots=True)
class Masquerade(Target):
    NAME = "MASQUERADE"
    TERMINAL = True
    range: NatRange = NatRange()

    def save(self) -> str:
        return self.range.save("to-ports", skip_colon=True)

    def apply(self, pkt, ev):
        """xt_MASQUERADE.c masquerade_tg() -> nf_nat_masquerade.c nf_nat_masquerade_ipv4():

        * the connection's original source is 0.0.0.0: NF_ACCEPT without a binding (the nat
          hook then makes a null binding);
        * the new source is inet_select_addr(out, rt_nexthop(rt, daddr), RT_SCOPE_UNIVERSE)
          (``Host.masquerade_source``; the next hop is the route's gateway, else the
          destination); none: NF_DROP ("... ate my IP address");
        * then nf_nat_setup_info() for the source with that single address and the rule's
          ports and flags (see NAT.py). The kernel copies no base port into the range (it is
          left uninitialised on the stack); nfemu uses 0.

        IPv6 (nf_nat_masquerade_ipv6, ipv6_dev_get_saddr) is not modelled: Host has no IPv6
        source selection."""
        if pkt.family != 4:
            raise not_evaluable("-j MASQUERADE for IPv6 cannot be evaluated by nfemu yet "
                                "(no IPv6 source address selection in Host)")
        Verdict, TargetResult = _engine.Verdict, _engine.TargetResult
        ct = ev.ct
        orig_src = ct.orig_src if ct is not None and not ct.untracked else pkt.src
        if orig_src == 0:
            ev.record("SNAT", by="MASQUERADE", unchanged=True,
                      note="original source 0.0.0.0: not masqueraded")
            return TargetResult(Verdict.ACCEPT, pkt)
        route = ev.host.route_lookup(pkt.dst)
        nexthop = (route.nexthop if route.ok else None) or pkt.dst
        newsrc = ev.host.masquerade_source(pkt.oif, nexthop)
        if not newsrc:
            ev.record("SNAT", by="MASQUERADE",
                      error=f"{pkt.oif or '(no device)'} ate my IP address: no address to "
                            "masquerade to (NF_DROP)")
            return TargetResult(Verdict.DROP, pkt)
        r = self.range
        newrange = replace(r, flags=NatFlag(int(r.flags) | int(NatFlag.MAP_IPS)),
                           min_addr=newsrc, max_addr=newsrc, base_port=0)
        return nat_setup(pkt, ev, newrange, MANIP_SRC, "SNAT", by="MASQUERADE")


def build(given: list[Given], ctx: RuleContext) -> Masquerade:
    r = parse_nat_options(given, ctx, "MASQUERADE", None, mandatory=False)
    return Masquerade(r.freeze(keep_base=False))


SPEC = ExtSpec("MASQUERADE", "target",
               (Opt("to-ports"), Opt("random", 0), Opt("random-fully", 0)),
               build, Kernel(tables=NAT_TABLES, hooks=frozenset({POST})))
