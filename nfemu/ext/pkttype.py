"""``-m pkttype [!] --pkt-type TYPE``: the link-layer packet type (libxt_pkttype.c; kernel
net/netfilter/xt_pkttype.c).

Types (any case): unicast (alias host), broadcast (bcast), multicast (mcast), otherhost.
iptables-save prints the first name of the type. No table, hook or protocol restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import need, single


class PacketType(enum.IntEnum):
    """skb->pkt_type (PACKET_* of linux/if_packet.h)."""

    HOST = 0
    BROADCAST = 1
    MULTICAST = 2
    OTHERHOST = 3


PACKET_LOOPBACK = 5

# supported_types[] in table order: the first name of a type is the one printed
_NAMES = (("unicast", PacketType.HOST), ("broadcast", PacketType.BROADCAST),
          ("multicast", PacketType.MULTICAST), ("otherhost", PacketType.OTHERHOST),
          ("bcast", PacketType.BROADCAST), ("mcast", PacketType.MULTICAST),
          ("host", PacketType.HOST))


@dataclass(frozen=True, slots=True)
class Pkttype(Match):
    NAME = "pkttype"
    pkttype: PacketType = PacketType.HOST
    inv: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_pkttype.c pkttype_mt(): ``skb->pkt_type``, except PACKET_LOOPBACK (5, looped
        back multicast/broadcast), which counts as MULTICAST for an IPv4 224/4 destination
        or any IPv6 packet (the kernel checks the family only), else BROADCAST; xor ``!``."""
        kind = pkt.pkttype
        if kind == PACKET_LOOPBACK:
            if pkt.family == 6 or (pkt.dst & 0xF0000000) == 0xE0000000:
                kind = PacketType.MULTICAST
            else:
                kind = PacketType.BROADCAST
        return (kind == self.pkttype) != self.inv

    def save(self) -> str:
        name = next(n for n, t in _NAMES if t is self.pkttype)
        return f"{' !' if self.inv else ''} --pkt-type {name}"


def build(given: list[Given], ctx: RuleContext) -> Pkttype:
    g = single(given).get("pkt-type")
    need(g is not None, ctx, "pkttype: option \"--pkt-type\" must be specified")
    for name, kind in _NAMES:
        if g.arg.lower() == name:
            return Pkttype(kind, g.inv)
    raise g.error(f"Bad packet type '{g.arg}'")


SPEC = ExtSpec("pkttype", "match", (Opt("pkt-type"),), build)
