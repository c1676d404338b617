"""``-m dscp [!] --dscp N | [!] --dscp-class CLASS`` (extensions/libxt_dscp.c with
dscp_helper.c; kernel net/netfilter/xt_dscp.c dscp_mt / dscp_mt_check).

Matches when the 6-bit DSCP field equals ``dscp``, xor ``!``. A class name (BE, EF, AFxy, CSx)
is looked up by case-insensitive prefix: the first class name that the argument starts with
wins (``CS10`` is CS1). iptables-save prints ``--dscp 0xNN``. The kernel refuses a value over
0x3f, which iptables already refuses.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, parse_uint_opt, xt_collect, xt_fcheck, xt_opts

XT_DSCP_MAX = 0x3F
DS_CLASSES = (
    ("CS0", 0x00), ("CS1", 0x08), ("CS2", 0x10), ("CS3", 0x18), ("CS4", 0x20), ("CS5", 0x28),
    ("CS6", 0x30), ("CS7", 0x38), ("BE", 0x00), ("AF11", 0x0a), ("AF12", 0x0c),
    ("AF13", 0x0e), ("AF21", 0x12), ("AF22", 0x14), ("AF23", 0x16), ("AF31", 0x1a),
    ("AF32", 0x1c), ("AF33", 0x1e), ("AF41", 0x22), ("AF42", 0x24), ("AF43", 0x26),
    ("EF", 0x2e))


def class_to_dscp(g: Given) -> int:
    """class_to_dscp(): the first class whose name prefixes the argument (any case)."""
    for name, value in DS_CLASSES:
        if g.arg[:len(name)].lower() == name.lower():
            return value
    raise g.error(f"Invalid DSCP value `{g.arg}'")


@dataclass(frozen=True, slots=True)
class Dscp(Match):
    NAME = "dscp"
    dscp: int = 0
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_dscp.c dscp_mt() / dscp_mt6(): the DS field (IPv4 TOS byte, IPv6 traffic
        class: ``pkt.tos``) shifted right by XT_DSCP_SHIFT (2) equals ``dscp``, xor ``!``."""
        return ((pkt.tos >> 2) == self.dscp) != self.invert

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --dscp 0x{self.dscp:02x}"


OPTIONS = (XtOpt("dscp", 0, invert=True, excl=frozenset({1})),
           XtOpt("dscp-class", 1, invert=True, excl=frozenset({0})))


def build(given: list[Given], ctx: RuleContext) -> Dscp:
    seen = xt_collect("dscp", OPTIONS, given)
    value = 0
    invert = False
    for g in given:
        value = parse_uint_opt(g, "dscp", 0, XT_DSCP_MAX) if g.name == "dscp" \
            else class_to_dscp(g)
        invert = invert or g.inv
    xt_fcheck("dscp", OPTIONS, seen, ctx)
    if not seen:
        raise ParseError("DSCP match: Parameter --dscp is required", ctx.loc)
    return Dscp(value, invert)


SPEC = ExtSpec("dscp", "match", xt_opts(OPTIONS), build)
