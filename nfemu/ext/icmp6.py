"""``-p ipv6-icmp [-m icmp6] [!] --icmpv6-type {NAME|TYPE[/CODE]}`` for ip6tables
(extensions/libip6t_icmp6.c with the icmpv6_codes[] table of extensions/libxt_icmp.h; kernel
net/ipv6/netfilter/ip6_tables.c icmp6_match / icmp6_checkentry).

The kernel requires ``-p ipv6-icmp`` (58) not inverted. There is no ``any`` here: type 255 is
an ordinary type. iptables-save prints numbers: ``--icmpv6-type 128``, ``--icmpv6-type 1/4``."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Family, Match
from .base import ExtSpec, Given, Kernel, RuleContext
from .icmp import parse_icmp_type, save_type
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

IPPROTO_ICMPV6 = 58

ICMPV6_NAMES: tuple[tuple[str, int, int, int], ...] = (
    ("destination-unreachable", 1, 0, 0xFF),
    ("no-route", 1, 0, 0),
    ("communication-prohibited", 1, 1, 1),
    ("beyond-scope", 1, 2, 2),
    ("address-unreachable", 1, 3, 3),
    ("port-unreachable", 1, 4, 4),
    ("failed-policy", 1, 5, 5),
    ("reject-route", 1, 6, 6),
    ("packet-too-big", 2, 0, 0xFF),
    ("time-exceeded", 3, 0, 0xFF),
    ("ttl-exceeded", 3, 0, 0xFF),
    ("ttl-zero-during-transit", 3, 0, 0),
    ("ttl-zero-during-reassembly", 3, 1, 1),
    ("parameter-problem", 4, 0, 0xFF),
    ("bad-header", 4, 0, 0),
    ("unknown-header-type", 4, 1, 1),
    ("unknown-option", 4, 2, 2),
    ("echo-request", 128, 0, 0xFF),
    ("ping", 128, 0, 0xFF),
    ("echo-reply", 129, 0, 0xFF),
    ("pong", 129, 0, 0xFF),
    ("router-solicitation", 133, 0, 0xFF),
    ("router-advertisement", 134, 0, 0xFF),
    ("neighbour-solicitation", 135, 0, 0xFF),
    ("neighbor-solicitation", 135, 0, 0xFF),
    ("neighbour-advertisement", 136, 0, 0xFF),
    ("neighbor-advertisement", 136, 0, 0xFF),
    ("redirect", 137, 0, 0xFF),
)


@dataclass(frozen=True, slots=True)
class Icmp6(Match):
    NAME = "icmp6"
    type: int = 0
    code_min: int = 0
    code_max: int = 0xFF
    invert: bool = False

    def save(self) -> str:
        inv = " !" if self.invert else ""
        return f"{inv} --icmpv6-type {save_type(self.type, self.code_min, self.code_max)}"


OPTIONS = (XtOpt("icmpv6-type", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Icmp6:
    seen = xt_collect("icmp6", OPTIONS, given)
    xt_fcheck("icmp6", OPTIONS, seen, ctx)
    g = seen[0]
    return Icmp6(*parse_icmp_type(g.arg, g, ICMPV6_NAMES, "ICMPv6"), g.inv)


SPEC = ExtSpec("icmp6", "match", xt_opts(OPTIONS), build, Kernel(proto=IPPROTO_ICMPV6),
               families=frozenset({Family.IPV6}))
