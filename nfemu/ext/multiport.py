"""``-p PROTO -m multiport [!] --sports|--dports|--ports P[,P|A:B...]`` (extensions/libxt_multiport.c,
revision 1; kernel net/netfilter/xt_multiport.c multiport_mt / multiport_mt_check).

Up to 15 slots (XT_MULTI_PORTS), a range ``A:B`` taking two (``pflags``); a range needs A < B.
iptables itself refuses the option unless the rule already said ``-p`` tcp, udp, udplite,
sctp or dccp, not inverted (check_proto() in libxt_multiport.c); the kernel's checkentry
repeats that test. iptables-save prints ``[!] --sports|--dports|--ports`` with numbers."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Match
from ..protocols import protocol_name
from .base import ExtSpec, Given, RuleContext
from .ports import parse_port
from .tcp import hotdrop, th_ports
from .xtopt import XtOpt, xt_fcheck, xt_opts, xt_parse

XT_MULTI_PORTS = 15
PROTOS = {6: "tcp", 17: "udp", 136: "udplite", 132: "sctp", 33: "dccp"}


class Side(enum.IntEnum):
    """xt_multiport_flags."""
    SOURCE = 0
    DESTINATION = 1
    EITHER = 2


@dataclass(frozen=True, slots=True)
class Multiport(Match):
    NAME = "multiport"
    side: Side = Side.DESTINATION
    #: (lo, hi) per entry; a single port is (p, p) and uses one slot, a range two
    ports: tuple[tuple[int, int], ...] = ()
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_multiport.c multiport_mt() / ports_match_v1(): the two 16-bit words at the start
        of the transport header (whatever the protocol); a non-first fragment never matches;
        a header too short to hold them is a hotdrop. The first listed port or range that
        matches decides (``true ^ invert``); none: ``invert``."""
        if pkt.frag:
            return False
        ports = th_ports(pkt)
        if ports is None:
            hotdrop(ev, "multiport: header cut short")
            return False
        src, dst = ports
        side = self.side
        for lo, hi in self.ports:
            if side is Side.SOURCE:
                hit = lo <= src <= hi
            elif side is Side.DESTINATION:
                hit = lo <= dst <= hi
            else:
                hit = lo <= src <= hi or lo <= dst <= hi
            if hit:
                return not self.invert
        return self.invert

    def save(self) -> str:
        opt = {Side.SOURCE: "--sports", Side.DESTINATION: "--dports", Side.EITHER: "--ports"}
        parts = [f"{lo}" if lo == hi else f"{lo}:{hi}" for lo, hi in self.ports]
        return f"{' !' if self.invert else ''} {opt[self.side]} {','.join(parts)}"


OPTIONS = (
    XtOpt("source-ports", 0, invert=True, excl=frozenset({0, 1, 2})),
    XtOpt("sports", 0, invert=True, excl=frozenset({0, 1, 2})),
    XtOpt("destination-ports", 1, invert=True, excl=frozenset({0, 1, 2})),
    XtOpt("dports", 1, invert=True, excl=frozenset({0, 1, 2})),
    XtOpt("ports", 2, invert=True, excl=frozenset({0, 1, 2})),
)


def check_proto(g: Given, ctx: RuleContext) -> None:
    """check_proto(): the -p given before this option decides."""
    if ctx.proto_inv:
        raise g.error("multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP")
    if ctx.proto in PROTOS:
        return
    if not ctx.proto:
        raise g.error("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or "
                      "`-p dccp'")
    raise g.error("multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP")


def parse_ports(text: str, g: Given, proto: str = "tcp") -> tuple[tuple[int, int], ...]:
    """parse_multi_ports_v1(): comma-separated ports and ranges, at most 15 slots."""
    out: list[tuple[int, int]] = []
    slots = 0
    items = text.split(",")
    for item in items:
        if slots >= XT_MULTI_PORTS:
            raise g.error("too many ports specified")
        first, colon, rest = item.partition(":")
        if colon and slots == XT_MULTI_PORTS - 1:
            raise g.error("too many ports specified")
        lo = parse_port(first, g, proto)
        if colon:
            hi = parse_port(rest, g, proto)
            if lo >= hi:
                raise g.error("invalid portrange specified")
            out.append((lo, hi))
            slots += 2
        else:
            out.append((lo, lo))
            slots += 1
    return tuple(out)


def build(given: list[Given], ctx: RuleContext) -> Multiport:
    seen: dict[int, Given] = {}
    value = None
    for g in given:
        entry = xt_parse("multiport", OPTIONS, g, seen)
        check_proto(g, ctx)
        value = Multiport(Side(entry.id), parse_ports(g.arg, g, protocol_name(ctx.proto)), g.inv)
    if value is None:
        raise ParseError("multiport expection an option", ctx.loc)  # sic, iptables 1.8.9
    xt_fcheck("multiport", OPTIONS, seen, ctx)
    return value


def check(value: Multiport, table: str, hooks, rule) -> list[str]:
    """multiport_mt_check(): the rule's protocol must be one with ports, not inverted."""
    if rule.proto in PROTOS and not rule.proto_inv:
        return []
    return ["-m multiport needs -p tcp, udp, udplite, sctp or dccp in the rule"]


SPEC = ExtSpec("multiport", "match", xt_opts(OPTIONS), build, check=check)
