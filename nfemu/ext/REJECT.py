"""``-j REJECT``: drop the packet and answer with an ICMP error or a TCP reset
(extensions/libipt_REJECT.c and libip6t_REJECT.c; kernel net/ipv4/netfilter/ipt_REJECT.c and
net/ipv6/netfilter/ip6t_REJECT.c).

``--reject-with`` takes a type's name or alias, case-insensitively and as any prefix of either
(``strncasecmp(name, arg, strlen(arg))``), the first match in the table's (enum) order winning:
``icmp`` is icmp-net-unreachable, ``p`` icmp-proto-unreachable, and the empty string the first
type. iptables-save prints the canonical name and always prints the option (default
icmp-port-unreachable / icmp6-port-unreachable).

The kernel allows REJECT only in table filter, hooks INPUT/FORWARD/OUTPUT, and tcp-reset only
in a rule that says ``-p tcp`` without ``!``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..host import RouteType
from ..ir import Family, Target
from ..util import int_to_ipv4, int_to_ipv6
from ..protocols import TCP
from .base import FWD, IN, OUT, ExtSpec, Given, Kernel, Opt, RuleContext
from .xtopt import check_once


class RejectWith(enum.IntEnum):
    """enum ipt_reject_with (IPv4)."""

    ICMP_NET_UNREACHABLE = 0
    ICMP_HOST_UNREACHABLE = 1
    ICMP_PROT_UNREACHABLE = 2
    ICMP_PORT_UNREACHABLE = 3
    ICMP_ECHOREPLY = 4
    ICMP_NET_PROHIBITED = 5
    ICMP_HOST_PROHIBITED = 6
    TCP_RESET = 7
    ICMP_ADMIN_PROHIBITED = 8


class Reject6With(enum.IntEnum):
    """enum ip6t_reject_with (IPv6)."""

    ICMP6_NO_ROUTE = 0
    ICMP6_ADM_PROHIBITED = 1
    ICMP6_NOT_NEIGHBOUR = 2
    ICMP6_ADDR_UNREACH = 3
    ICMP6_PORT_UNREACH = 4
    ICMP6_ECHOREPLY = 5
    TCP_RESET = 6
    ICMP6_POLICY_FAIL = 7
    ICMP6_REJECT_ROUTE = 8


# (value, name, alias) in the order of the userspace tables (indexed by the enum; holes for the
# types iptables no longer offers)
_NAMES4 = (
    (RejectWith.ICMP_NET_UNREACHABLE, "icmp-net-unreachable", "net-unreach"),
    (RejectWith.ICMP_HOST_UNREACHABLE, "icmp-host-unreachable", "host-unreach"),
    (RejectWith.ICMP_PROT_UNREACHABLE, "icmp-proto-unreachable", "proto-unreach"),
    (RejectWith.ICMP_PORT_UNREACHABLE, "icmp-port-unreachable", "port-unreach"),
    (RejectWith.ICMP_NET_PROHIBITED, "icmp-net-prohibited", "net-prohib"),
    (RejectWith.ICMP_HOST_PROHIBITED, "icmp-host-prohibited", "host-prohib"),
    (RejectWith.TCP_RESET, "tcp-reset", "tcp-rst"),
    (RejectWith.ICMP_ADMIN_PROHIBITED, "icmp-admin-prohibited", "admin-prohib"),
)
_NAMES6 = (
    (Reject6With.ICMP6_NO_ROUTE, "icmp6-no-route", "no-route"),
    (Reject6With.ICMP6_ADM_PROHIBITED, "icmp6-adm-prohibited", "adm-prohibited"),
    (Reject6With.ICMP6_ADDR_UNREACH, "icmp6-addr-unreachable", "addr-unreach"),
    (Reject6With.ICMP6_PORT_UNREACH, "icmp6-port-unreachable", "port-unreach"),
    (Reject6With.TCP_RESET, "tcp-reset", "tcp-reset"),
    (Reject6With.ICMP6_POLICY_FAIL, "icmp6-policy-fail", "policy-fail"),
    (Reject6With.ICMP6_REJECT_ROUTE, "icmp6-reject-route", "reject-route"),
)


@dataclass(frozen=True, slots=True)
class Reject(Target):
    """ipt_reject_info / ip6t_reject_info: what to answer with. The verdict is DROP."""

    NAME = "REJECT"
    TERMINAL = True
    reject_with: int = RejectWith.ICMP_PORT_UNREACHABLE
    family: Family = Family.IPV4

    @property
    def tcp_reset(self) -> bool:
        tcp = RejectWith.TCP_RESET if self.family is Family.IPV4 else Reject6With.TCP_RESET
        return self.reject_with == tcp

    def save(self) -> str:
        table = _NAMES4 if self.family is Family.IPV4 else _NAMES6
        for value, name, _alias in table:
            if value == self.reject_with:
                return f" --reject-with {name}"
        return ""  # pragma: no cover - build never stores another value

    def apply(self, pkt, ev):
        """ipt_REJECT.c reject_tg() / ip6t_REJECT.c reject_tg6(): NF_DROP, after sending an
        ICMP error (nf_send_unreach -> icmp_send) or a TCP reset (nf_send_reset). Recorded as
        a REJECT event: ``with`` (the type) and ``reply`` (what is sent back, or why nothing
        is; see reject_reply). Checksums are taken as valid (nf_ip_checksum would refuse to
        answer a corrupt segment) and ICMP rate limiting as not reached (one packet)."""
        name = next((n for v, n, _a in (_NAMES4 if self.family is Family.IPV4 else _NAMES6)
                     if v == self.reject_with), str(int(self.reject_with)))
        ev.record("REJECT", **{"with": name, "reply": reject_reply(self, pkt, ev)})
        return _engine.TargetResult(_engine.Verdict.DROP, pkt)


# ICMP codes each type sends (ipt_REJECT.c reject_tg, ip6t_REJECT.c reject_tg6)
_ICMP4 = {
    RejectWith.ICMP_NET_UNREACHABLE: (0, "net-unreachable"),
    RejectWith.ICMP_HOST_UNREACHABLE: (1, "host-unreachable"),
    RejectWith.ICMP_PROT_UNREACHABLE: (2, "protocol-unreachable"),
    RejectWith.ICMP_PORT_UNREACHABLE: (3, "port-unreachable"),
    RejectWith.ICMP_NET_PROHIBITED: (9, "net-prohibited"),
    RejectWith.ICMP_HOST_PROHIBITED: (10, "host-prohibited"),
    RejectWith.ICMP_ADMIN_PROHIBITED: (13, "admin-prohibited"),
}
_ICMP6 = {
    Reject6With.ICMP6_NO_ROUTE: (0, "no-route"),
    Reject6With.ICMP6_ADM_PROHIBITED: (1, "adm-prohibited"),
    Reject6With.ICMP6_NOT_NEIGHBOUR: (2, "beyond-scope"),
    Reject6With.ICMP6_ADDR_UNREACH: (3, "addr-unreachable"),
    Reject6With.ICMP6_PORT_UNREACH: (4, "port-unreachable"),
    Reject6With.ICMP6_POLICY_FAIL: (5, "policy-fail"),
    Reject6With.ICMP6_REJECT_ROUTE: (6, "reject-route"),
}
# icmp_pointers[].error (net/ipv4/icmp.c): the ICMP error types; NR_ICMP_TYPES is 18
_ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
NR_ICMP_TYPES = 18


def _v6_multicast(addr: int) -> bool:
    return addr >> 120 == 0xFF


def _bcast_or_mcast(pkt, ev) -> bool:
    """rt->rt_flags & (RTCF_BROADCAST | RTCF_MULTICAST) of the packet's route."""
    if pkt.family == 6:
        return _v6_multicast(pkt.dst)
    return ev.host.addr_type(pkt.dst) in (RouteType.BROADCAST, RouteType.MULTICAST)


def _addr(addr: int, family: int) -> str:
    return int_to_ipv4(addr) if family == 4 else int_to_ipv6(addr)


def _tcp_reset(pkt, ev) -> str:
    """nf_send_reset()/nf_send_reset6() (nf_reject_ip_tcphdr_get, nf_reject_ip_tcphdr_put)."""
    if pkt.proto != TCP or pkt.frag != 0:
        return "none: not the first fragment of a TCP segment"
    if pkt.tcp_flags & 0x04:
        return "none: no RST for a RST"
    if _bcast_or_mcast(pkt, ev):
        return "none: the packet was sent to a broadcast or multicast address"
    to = _addr(pkt.src, pkt.family)
    frm = _addr(pkt.dst, pkt.family)
    if pkt.tcp_flags & 0x10:                           # ACK: seq = the ACK it carried
        seq, ack, flags = pkt.tcp_ack, 0, "R"
    else:
        data = pkt.length - pkt.header_len - 20 - len(pkt.tcp_options)
        seq = 0
        ack = (pkt.tcp_seq + bool(pkt.tcp_flags & 0x02) + bool(pkt.tcp_flags & 0x01)
               + data) & 0xFFFFFFFF
        flags = "R."
    return (f"TCP RST [{flags}] {frm}:{pkt.dport} > {to}:{pkt.sport} seq {seq}"
            + (f" ack {ack}" if flags == "R." else ""))


def reject_reply(value: Reject, pkt, ev) -> str:
    """What REJECT sends back, or why it sends nothing (the packet is dropped either way):

    * tcp-reset: nothing for a non-first fragment, a RST, or a packet to a broadcast or
      multicast address; otherwise a RST from the packet's destination: with the packet's
      ACK number as its sequence when ACK was set, else sequence 0 and ACK flag with the
      acknowledgement seq + SYN + FIN + data length.
    * ICMP (icmp_send, nf_send_unreach): nothing for a non-first fragment, a frame not for
      this host (pkt_type != PACKET_HOST), a packet to a broadcast or multicast address, or an
      ICMP error (types 3, 4, 5, 11, 12 and unknown types above 18: "an ICMP error about an
      ICMP error"); otherwise destination-unreachable with the type's code, from the packet's
      destination when it is a local address, else from the address the route back picks.
    * ICMPv6 (icmp6_send): nothing for a multicast destination or a frame not for this host,
      an unspecified or multicast source, an ICMPv6 error (type < 128) or a redirect (137).
      (IPv6 fragments are not special-cased: icmp6_send has no such rule.)"""
    if value.tcp_reset:
        return _tcp_reset(pkt, ev)
    v4 = pkt.family == 4
    table = _ICMP4 if v4 else _ICMP6
    if value.reject_with not in table:
        return "none"                                   # echo-reply: "Doesn't happen"
    code, text = table[value.reject_with]
    if v4:
        if pkt.frag != 0:
            return "none: not the first fragment"
        if pkt.pkttype != 0:
            return "none: the frame was not addressed to this host (pkt_type)"
        if _bcast_or_mcast(pkt, ev):
            return "none: the packet was sent to a broadcast or multicast address"
        if pkt.proto == 1 and (pkt.icmp_type > NR_ICMP_TYPES
                               or pkt.icmp_type in _ICMP_ERROR_TYPES):
            return "none: never an ICMP error about an ICMP error"
        frm = pkt.dst if ev.host.is_local(pkt.dst) else ev.host.select_source(pkt.src)
        return (f"ICMP destination-unreachable (type 3 code {code}, {text}) "
                f"{int_to_ipv4(frm) if frm else '(routing picks the source)'} > "
                f"{int_to_ipv4(pkt.src)}")
    if _v6_multicast(pkt.dst) or pkt.pkttype != 0:
        return "none: the packet was sent to a multicast address or another host"
    if pkt.src == 0 or _v6_multicast(pkt.src):
        return "none: the source is unspecified or multicast"
    if pkt.proto == 58 and (pkt.icmp_type < 128 or pkt.icmp_type == 137):
        return "none: never an ICMPv6 error about an ICMPv6 error or a redirect"
    return (f"ICMPv6 destination-unreachable (type 1 code {code}, {text}) "
            f"> {int_to_ipv6(pkt.src)}")


def _lookup(arg: str, family: Family) -> int | None:
    n = len(arg)
    lower = arg.lower()
    table = _NAMES4 if family is Family.IPV4 else _NAMES6
    for value, name, alias in table:
        if name[:n] == lower and len(name) >= n or alias[:n] == lower and len(alias) >= n:
            return value
    return None


def build(given: list[Given], ctx: RuleContext) -> Reject:
    check_once(given, "REJECT")
    if ctx.family is Family.IPV4:
        value: int = RejectWith.ICMP_PORT_UNREACHABLE
    else:
        value = Reject6With.ICMP6_PORT_UNREACH
    for g in given:
        found = _lookup(g.arg, ctx.family)
        if found is None:
            if ctx.family is Family.IPV4 and any(
                    word[:len(g.arg)] == g.arg.lower() for word in ("echo-reply", "echoreply")):
                raise g.error(f"--reject-with echo-reply no longer supported; unknown reject "
                              f"type \"{g.arg}\"")
            raise g.error(f"unknown reject type \"{g.arg}\"")
        value = found
    return Reject(value, ctx.family)


def check(value: Reject, table: str, hooks, rule) -> list[str]:
    """ipt_REJECT/ip6t_REJECT reject_tg_check: a TCP reset needs ``-p tcp`` (not negated)."""
    if value.tcp_reset and (rule.proto != TCP or rule.proto_inv):
        return ["-j REJECT --reject-with tcp-reset needs -p tcp in the rule (kernel: "
                "\"TCP_RESET invalid for non-tcp\")"]
    return []


SPEC = ExtSpec("REJECT", "target", (Opt("reject-with"),), build,
               Kernel(tables=frozenset({"filter"}), hooks=frozenset({IN, FWD, OUT})),
               check=check)
