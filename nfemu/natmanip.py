"""NAT applied from a connection's binding (stateful nodes, issue 4).

The nat chains decide a connection's binding once per manip type (nfemu/ext/NAT.py, the
chain walk in nfemu/pipeline.py); every packet of the connection, the first included, is
then rewritten from the conntrack entry's tuples at each nat hook. This module mirrors
net/netfilter/nf_nat_core.c nf_nat_packet() / nf_nat_manip_pkt(), nf_nat_proto.c
nf_nat_ipv4_manip_pkt() and nf_nat_icmp_reply_translation(), and the null binding
(nf_nat_alloc_null_binding) a nat hook makes when its chains decided nothing.
"""
from __future__ import annotations

from .conntrack import IPS_DST_NAT, IPS_SRC_NAT, CtTuple, Entry
from .ext.NAT import MANIP_SRC, NatFlag, NatRange, nat_setup
from .packet import ICMP, SCTP, TCP, UDP, Packet

_PORTS = frozenset({TCP, UDP, SCTP})
# icmp_manip_pkt(): the ICMP types whose echo id a manip rewrites
_ICMP_ID_TYPES = frozenset({0, 8, 13, 14, 15, 16, 17, 18})
_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT


def _statusbit(manip: str, reply: bool) -> int:
    """The status bit that says this manip applies in this direction (nf_nat_packet)."""
    bit = IPS_SRC_NAT if manip == MANIP_SRC else IPS_DST_NAT
    return bit ^ _NAT_MASK if reply else bit


#: _statusbit() by (manip is MANIP_SRC, reply)
_STATUSBIT = {(src, reply): _statusbit(MANIP_SRC if src else "dst", reply)
              for src in (False, True) for reply in (False, True)}


def manip_packet(pkt: Packet, target: CtTuple, manip: str) -> Packet:
    """nf_nat_ipv4_manip_pkt(): set the manip's side of PKT from TARGET (address, and the
    port or ICMP echo id when the packet has a transport header)."""
    changes = {}
    if manip == MANIP_SRC:
        if pkt.src != target.src:
            changes["src"] = target.src
    elif pkt.dst != target.dst:
        changes["dst"] = target.dst
    if not pkt.frag:
        proto = pkt.proto
        if proto in _PORTS and target.proto == proto:
            if manip == MANIP_SRC:
                if pkt.sport != target.sport:
                    changes["sport"] = target.sport
            elif pkt.dport != target.dport:
                changes["dport"] = target.dport
        elif (proto == ICMP and target.proto == ICMP and pkt.icmp_type in _ICMP_ID_TYPES
              and pkt.icmp_rest >> 16 != target.sport):
            changes["icmp_rest"] = (target.sport << 16) | (pkt.icmp_rest & 0xFFFF)
    return pkt.replace(**changes) if changes else pkt


def nat_packet(pkt: Packet, ct: Entry, manip: str) -> Packet:
    """nf_nat_packet(): rewrite PKT from the binding when the connection has this manip in
    the packet's direction: the target tuple is the inverse of the other direction's
    tuple (an original packet takes the reply tuple's view, a reply the original's)."""
    reply = ct.reply
    if not ct.status & _STATUSBIT[manip == MANIP_SRC, bool(reply)]:
        return pkt
    proto = ct.proto
    if proto == ICMP:
        other = ct.orig_tuple if reply else ct.repl_tuple
        target = other.inverted()
        if target is None:
            return pkt
        return manip_packet(pkt, target, manip)
    # the other direction's tuple inverted, without building it: manip_packet's target is
    # (dst, src, dport, sport) of that tuple; only addresses and ports are read
    if manip == MANIP_SRC:
        addr, port = (ct.orig_dst, ct.orig_dport) if reply else (ct.repl_dst, ct.repl_dport)
        changes = {} if pkt.src == addr else {"src": addr}
        if not pkt.frag and pkt.proto == proto and proto in _PORTS and pkt.sport != port:
            changes["sport"] = port
    else:
        addr, port = (ct.orig_src, ct.orig_sport) if reply else (ct.repl_src, ct.repl_sport)
        changes = {} if pkt.dst == addr else {"dst": addr}
        if not pkt.frag and pkt.proto == proto and proto in _PORTS and pkt.dport != port:
            changes["dport"] = port
    return pkt.replace(**changes) if changes else pkt


def icmp_reply_translation(pkt: Packet, ct: Entry, manip: str) -> Packet:
    """nf_nat_icmp_reply_translation() for an ICMP error RELATED to CT: the quoted datagram
    gets the opposite manip from the other direction's tuple (so it reads as the packet the
    peer sent), then the outer header gets this hook's manip from that tuple's inverse
    (addresses only: the error's own id field is not an echo id). Non-ICMP RELATED packets
    (helpers) are not modelled."""
    if not ct.status & _statusbit(manip, ct.reply):
        return pkt
    other = ct.orig_tuple if ct.reply else ct.repl_tuple
    inner = pkt.inner
    changes = {}
    if inner is not None:
        new_inner = manip_packet(inner, other, "dst" if manip == MANIP_SRC else MANIP_SRC)
        if new_inner is not inner:
            changes["inner"] = new_inner
    target = CtTuple(ICMP, other.dst, other.src, 0, 0)
    if manip == MANIP_SRC:
        if pkt.src != target.src:
            changes["src"] = target.src
    elif pkt.dst != target.dst:
        changes["dst"] = target.dst
    return pkt.replace(**changes) if changes else pkt


def null_binding(pkt: Packet, ev, manip: str):
    """nf_nat_alloc_null_binding(): a nat hook whose chains decided nothing binds the
    connection to its current address (the reply tuple's, so earlier manips stay) with
    no port range: get_unique_tuple() keeps the tuple unless a confirmed connection
    already uses it, in which case a source port is remapped as for SNAT (a destination
    port never is). Returns the TargetResult of the setup."""
    ct = ev.ct
    addr = ct.repl_dst if manip == MANIP_SRC else ct.repl_src
    r = NatRange(flags=NatFlag.MAP_IPS, min_addr=addr, max_addr=addr)
    return nat_setup(pkt, ev, r, manip, "SNAT" if manip == MANIP_SRC else "DNAT",
                     by="null binding", quiet_unchanged=True)

