"""``-m rpfilter [--loose] [--validmark] [--accept-local] [--invert]``: reverse path filter
(extensions/libxt_rpfilter.c; kernel net/ipv4/netfilter/ipt_rpfilter.c and
net/ipv6/netfilter/ip6t_rpfilter.c).

The match looks the source address up as a destination (with the incoming interface unless
``--loose``, with the packet mark when ``--validmark``) and matches when the route leads back
out of the interface the packet came in on; ``--accept-local`` also passes local sources,
``--invert`` turns the result round. No option takes ``!``.

Kernel (rpfilter_check): only in the raw and mangle tables, only reachable from PREROUTING.
iptables-save prints the flags in the fixed order loose, validmark, accept-local, invert.

Evaluation (:meth:`Rpfilter.match`) asks the host model's FIB (IPv4 only).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..host import RouteType
from ..ir import Match
from .base import PRE, ExtSpec, Given, Kernel, RuleContext
from .u32 import not_evaluable
from .xtopt import collect_flags, flag_table, save_flags, xt_opts

PACKET_LOOPBACK = 5        # skb->pkt_type of a packet looped back (linux/if_packet.h)


class RpfFlag(enum.IntFlag):
    """XT_RPFILTER_* (include/uapi/linux/netfilter/xt_rpfilter.h)."""

    LOOSE = 1 << 0
    VALID_MARK = 1 << 1
    ACCEPT_LOCAL = 1 << 2
    INVERT = 1 << 3


_NAMES = (("loose", RpfFlag.LOOSE), ("validmark", RpfFlag.VALID_MARK),
          ("accept-local", RpfFlag.ACCEPT_LOCAL), ("invert", RpfFlag.INVERT))


@dataclass(frozen=True, slots=True)
class Rpfilter(Match):
    NAME = "rpfilter"
    flags: RpfFlag = RpfFlag(0)

    def match(self, pkt, ev) -> bool:
        """ipt_rpfilter.c rpfilter_mt(), each step xor ``--invert``:

        - packets looped back (``skb->pkt_type == PACKET_LOOPBACK``) or received on a loopback
          device match;
        - a source 0.0.0.0 with destination 255.255.255.255 or 224.0.0.0/24 (DHCP, IGMP)
          matches;
        - otherwise rpfilter_lookup_reverse(): fib_lookup() of the *source* address (as a
          destination, from the loopback ifindex, no output device; with ``--validmark``
          the packet mark, and the destination as source unless it is multicast, broadcast
          or 0.0.0.0/8: these only matter to policy rules); the lookup must succeed with a
          unicast route (or a local one with ``--accept-local``), and its nexthop must use
          the input device, unless ``--loose``.

        The host model answers fib_lookup() with the default rules only (no ``ip rule``,
        so the mark and the flow's source change nothing) and keeps the first nexthop of a
        multipath route (the kernel accepts any nexthop on the input device). IPv6
        (ip6t_rpfilter) is not evaluated."""
        invert = bool(self.flags & RpfFlag.INVERT)
        where = f"({ev.table} {ev.chain} rule {ev.rule})"
        if pkt.family != 4:
            raise not_evaluable(f"-m rpfilter for IPv6 needs IPv6 route lookups, which nfemu's "
                                f"host model does not answer {where}")
        host = ev.host
        dev = pkt.iif
        if not dev:
            raise not_evaluable(f"-m rpfilter needs the input device, and the packet has none "
                                f"{where}")
        if host.has_interface(dev):
            loopback = host.interface(dev).is_loopback
        elif dev == "lo":
            loopback = True
        else:
            raise not_evaluable(f"-m rpfilter: device {dev} is not in the host model {where}")
        if pkt.pkttype == PACKET_LOOPBACK or loopback:
            return not invert
        if pkt.src >> 24 == 0 and (pkt.dst == 0xFFFFFFFF
                                   or pkt.dst & 0xFFFFFF00 == 0xE0000000):
            return not invert
        err, route = host._fib_lookup(pkt.src)
        if err or route is None:
            return invert
        if route.type is not RouteType.UNICAST and not (
                route.type is RouteType.LOCAL and self.flags & RpfFlag.ACCEPT_LOCAL):
            return invert
        ok = route.dev == dev or bool(self.flags & RpfFlag.LOOSE)
        return ok != invert

    def save(self) -> str:
        return save_flags(_NAMES, self.flags)


OPTIONS = flag_table(_NAMES)


def build(given: list[Given], ctx: RuleContext) -> Rpfilter:
    return Rpfilter(collect_flags("rpfilter", OPTIONS, _NAMES, given, RpfFlag(0)))


SPEC = ExtSpec("rpfilter", "match", xt_opts(OPTIONS), build,
               Kernel(tables=frozenset({"raw", "mangle"}), hooks=frozenset({PRE})))
