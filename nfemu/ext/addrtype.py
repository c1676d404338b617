"""``-m addrtype [[!] --src-type TYPES] [[!] --dst-type TYPES] [--limit-iface-in|--limit-iface-out]``
(extensions/libxt_addrtype.c revision 1; kernel net/netfilter/xt_addrtype.c addrtype_mt_v1 /
addrtype_mt_checkentry_v1).

TYPES is a comma list of route types (any case-insensitive prefix of a name, the first in
table order winning); iptables-save prints the set in bit order. The kernel refuses
--limit-iface-in in rules reached from OUTPUT/POSTROUTING, --limit-iface-out from
PREROUTING/INPUT (in built-in chains only, under iptables-nft), and for IPv6 the types BLACKHOLE, PROHIBIT, THROW, NAT, XRESOLVE and
BROADCAST."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import BUILTIN_CHAINS, Family, Match
from .base import IN, OUT, POST, PRE, ExtSpec, Given, RuleContext
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts


class AddrType(enum.IntFlag):
    """XT_ADDRTYPE_*: 1 << RTN_* (linux/rtnetlink.h route types)."""
    UNSPEC = 1 << 0
    UNICAST = 1 << 1
    LOCAL = 1 << 2
    BROADCAST = 1 << 3
    ANYCAST = 1 << 4
    MULTICAST = 1 << 5
    BLACKHOLE = 1 << 6
    UNREACHABLE = 1 << 7
    PROHIBIT = 1 << 8
    THROW = 1 << 9
    NAT = 1 << 10
    XRESOLVE = 1 << 11


NONE = AddrType(0)


def types_text(types: AddrType) -> str:
    return ",".join(t.name for t in AddrType if types & t)


@dataclass(frozen=True, slots=True)
class Addrtype(Match):
    NAME = "addrtype"
    source: AddrType = NONE
    source_inv: bool = False
    dest: AddrType = NONE
    dest_inv: bool = False
    limit_iface_in: bool = False
    limit_iface_out: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_addrtype.c addrtype_mt_v1(): with --limit-iface-in the type is looked up on
        the input device (``pkt.iif``), with --limit-iface-out on the output device
        (``pkt.oif``); a missing device ("") is NULL, an unrestricted lookup. IPv4:
        ``1 << inet_dev_addr_type()`` (Host.addr_type) against the set, xor ``!``; the
        destination is tested only when the source test passed.
        IPv6 (addrtype_mt6/match_type6): MULTICAST, UNICAST and UNSPEC come from the address
        itself; LOCAL, ANYCAST, BLACKHOLE, UNREACHABLE need an IPv6 route lookup, which
        Host does not model: those raise NotEvaluable."""
        dev = None
        if self.limit_iface_in:
            dev = pkt.iif or None
        elif self.limit_iface_out:
            dev = pkt.oif or None
        if pkt.family == 6:
            type_of = _type6
        else:
            def type_of(addr: int, mask: AddrType) -> bool:
                return bool(mask & AddrType[ev.host.addr_type(addr, dev).name])
        if self.source and type_of(pkt.src, self.source) == self.source_inv:
            return False
        if self.dest and type_of(pkt.dst, self.dest) == self.dest_inv:
            return False
        return True

    def save(self) -> str:
        out = []
        if self.source:
            out.append(f"{' !' if self.source_inv else ''} --src-type {types_text(self.source)}")
        if self.dest:
            out.append(f"{' !' if self.dest_inv else ''} --dst-type {types_text(self.dest)}")
        if self.limit_iface_in:
            out.append(" --limit-iface-in")
        if self.limit_iface_out:
            out.append(" --limit-iface-out")
        return "".join(out)


OPTIONS = (
    XtOpt("src-type", 0, invert=True),
    XtOpt("dst-type", 1, invert=True),
    XtOpt("limit-iface-in", 2, nargs=0, excl=frozenset({3})),
    XtOpt("limit-iface-out", 3, nargs=0),
)


def _parse_one(word: str) -> AddrType | None:
    """parse_type(): the first name the word is a case-insensitive prefix of."""
    if not word:
        return None
    for t in AddrType:
        if t.name[:len(word)].lower() == word.lower() and len(word) <= len(t.name):
            return t
    return None


def parse_types(text: str, g: Given) -> AddrType:
    result = NONE
    rest = text
    while "," in rest:
        word, _, after = rest.partition(",")
        t = _parse_one(word)
        if t is None:
            raise g.error(f"addrtype: bad type `{rest}'")
        result |= t
        rest = after
    t = _parse_one(rest)
    if t is None:
        raise g.error(f"addrtype: bad type \"{rest}\"")
    return result | t


def build(given: list[Given], ctx: RuleContext) -> Addrtype:
    seen = xt_collect("addrtype", OPTIONS, given)
    fields: dict = {}
    if 0 in seen:
        fields.update(source=parse_types(seen[0].arg, seen[0]), source_inv=seen[0].inv)
    if 1 in seen:
        fields.update(dest=parse_types(seen[1].arg, seen[1]), dest_inv=seen[1].inv)
    if 0 not in seen and 1 not in seen:
        raise ParseError("addrtype: you must specify --src-type or --dst-type", ctx.loc)
    xt_fcheck("addrtype", OPTIONS, seen, ctx)
    fields.update(limit_iface_in=2 in seen, limit_iface_out=3 in seen)
    return Addrtype(**fields)


_V6_REFUSED = (AddrType.BLACKHOLE | AddrType.PROHIBIT | AddrType.THROW | AddrType.NAT
               | AddrType.XRESOLVE | AddrType.BROADCAST)


def check(value: Addrtype, table: str, hooks, rule) -> list[str]:
    """addrtype_mt_checkentry_v1(). Its hook test reads par->hook_mask, which nft_compat
    (iptables-nft) fills only for a base chain: a rule in a user chain passes whatever
    built-in chains jump to it (measured on kernel 6.18)."""
    out = []
    if rule.chain not in BUILTIN_CHAINS.get(table, ()):
        hooks = frozenset()
    if value.limit_iface_in and hooks & {OUT, POST}:
        out.append("-m addrtype --limit-iface-in is not allowed in a rule reached from "
                   "OUTPUT or POSTROUTING")
    if value.limit_iface_out and hooks & {PRE, IN}:
        out.append("-m addrtype --limit-iface-out is not allowed in a rule reached from "
                   "PREROUTING or INPUT")
    if rule.family is Family.IPV6 and (value.source | value.dest) & _V6_REFUSED:
        bad = types_text((value.source | value.dest) & _V6_REFUSED)
        out.append(f"-m addrtype: ip6tables cannot match the address type(s) {bad}")
    return out


SPEC = ExtSpec("addrtype", "match", xt_opts(OPTIONS), build, check=check)


_ROUTE6 = AddrType.LOCAL | AddrType.ANYCAST | AddrType.BLACKHOLE | AddrType.UNREACHABLE


def _type6(addr: int, mask: AddrType) -> bool:
    """match_type6() without match_lookup_rt6()."""
    multicast = addr >> 120 == 0xFF
    if mask & AddrType.MULTICAST and not multicast:
        return False
    # ipv6_addr_type(): IPV6_ADDR_UNICAST for everything but multicast and ::
    if mask & AddrType.UNICAST and (multicast or addr == 0):
        return False
    if mask & AddrType.UNSPEC and addr != 0:
        return False
    if mask & _ROUTE6:
        from ..interp import NotEvaluable
        raise NotEvaluable("-m addrtype LOCAL/ANYCAST/BLACKHOLE/UNREACHABLE for IPv6 needs an "
                           "IPv6 route lookup, which nfemu's Host does not model yet")
    return True
