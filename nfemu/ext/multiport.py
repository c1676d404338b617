"""``-p PROTO -m multiport [!] --sports|--dports|--ports P[,P|A:B...]`` (extensions/libxt_multiport.c,
revision 1; kernel net/netfilter/xt_multiport.c multiport_mt / multiport_mt_check).

Up to 15 slots (XT_MULTI_PORTS), a range ``A:B`` taking two (``pflags``); a range needs A < B.
iptables itself refuses the option unless the rule already said ``-p`` tcp, udp, udplite,
sctp or dccp, not inverted (check_proto() in libxt_multiport.c); the kernel's checkentry
repeats that test. iptables-save prints ``[!] --sports|--dports|--ports`` with numbers."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .mark import XtOpt, xt_collect, xt_fcheck, xt_opts
from .ports import parse_port

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

    def save(self) -> str:
        opt = {Side.SOURCE: "--sports", Side.DESTINATION: "--dports", Side.EITHER: "--ports"}
        parts = [f"{lo}" if lo == hi and not _is_range(lo, hi) else f"{lo}:{hi}"
                 for lo, hi in self.ports]
        return f"{' !' if self.invert else ''} {opt[self.side]} {','.join(parts)}"


def _is_range(lo: int, hi: int) -> bool:
    return lo != hi


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


def parse_ports(text: str, g: Given) -> tuple[tuple[int, int], ...]:
    """parse_multi_ports_v1(): comma-separated ports and ranges, at most 15 slots."""
    out: list[tuple[int, int]] = []
    slots = 0
    items = text.split(",")
    for n, item in enumerate(items):
        if slots >= XT_MULTI_PORTS:
            raise g.error("too many ports specified")
        first, colon, rest = item.partition(":")
        if colon and slots == XT_MULTI_PORTS - 1:
            raise g.error("too many ports specified")
        lo = parse_port(first, g)
        if colon:
            hi = parse_port(rest, g)
            if lo >= hi:
                raise g.error("invalid portrange specified")
            out.append((lo, hi))
            slots += 2
        else:
            out.append((lo, lo))
            slots += 1
    return tuple(out)


def build(given: list[Given], ctx: RuleContext) -> Multiport:
    seen: dict = {}
    value = None
    for g in given:
        seen_one = xt_collect("multiport", OPTIONS, [g]) if not seen else None
        if seen_one is None:
            # a second option: iptables' once-only check runs before the value is parsed
            from .mark import xt_parse
            xt_parse("multiport", OPTIONS, g, seen)
        else:
            seen.update(seen_one)
        check_proto(g, ctx)
        side = Side(next(e.id for e in OPTIONS if e.name == g.name))
        value = Multiport(side, parse_ports(g.arg, g), g.inv)
    if not seen:
        raise ctx_error(ctx, "multiport expection an option")
    xt_fcheck("multiport", OPTIONS, seen, ctx)
    return value


def ctx_error(ctx: RuleContext, message: str):
    from ..errors import ParseError
    return ParseError(message, ctx.loc)


SPEC = ExtSpec("multiport", "match", xt_opts(OPTIONS), build)


def check(value: Multiport, table: str, hooks, rule) -> list[str]:
    """multiport_mt_check(): the rule's protocol must be one with ports, not inverted."""
    if rule.proto in PROTOS and not rule.proto_inv:
        return []
    return ["-m multiport needs -p tcp, udp, udplite, sctp or dccp in the rule"]


SPEC = ExtSpec("multiport", "match", xt_opts(OPTIONS), build, check=check)
