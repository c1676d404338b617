"""``-p icmp [-m icmp] [!] --icmp-type {any|NAME|TYPE[/CODE]}`` (extensions/libipt_icmp.c with
the name table of extensions/libxt_icmp.h; kernel net/netfilter/xt_tcpudp.c icmp_match /
icmp_checkentry).

The kernel requires ``-p icmp`` not inverted (xt_match.proto = IPPROTO_ICMP, IPv4 only).
Type 255 is "any type"; a type alone matches codes 0-255. iptables-save prints numbers, never
names: ``--icmp-type 8``, ``--icmp-type 3/3``, ``--icmp-type any``."""
from __future__ import annotations

from dataclasses import dataclass

from ..cnum import strtoui
from ..ir import Family, Match
from .base import ExtSpec, Given, Kernel, RuleContext
from .tcp import hotdrop, l4_avail
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

ICMP = 1

# name, type, code_min, code_max: libxt_icmp.h icmp_codes[] (order matters for prefix matching)
ICMP_NAMES: tuple[tuple[str, int, int, int], ...] = (
    ("any", 0xFF, 0, 0xFF),
    ("echo-reply", 0, 0, 0xFF),
    ("pong", 0, 0, 0xFF),
    ("destination-unreachable", 3, 0, 0xFF),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xFF),
    ("redirect", 5, 0, 0xFF),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 0xFF),
    ("ping", 8, 0, 0xFF),
    ("router-advertisement", 9, 0, 0xFF),
    ("router-solicitation", 10, 0, 0xFF),
    ("time-exceeded", 11, 0, 0xFF),
    ("ttl-exceeded", 11, 0, 0xFF),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 0xFF),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xFF),
    ("timestamp-reply", 14, 0, 0xFF),
    ("address-mask-request", 17, 0, 0xFF),
    ("address-mask-reply", 18, 0, 0xFF),
)


def parse_icmp_type(text: str, g: Given, names=ICMP_NAMES, what: str = "ICMP"
                    ) -> tuple[int, int, int]:
    """A name (any unambiguous case-insensitive prefix of one), or ``TYPE[/CODE]`` where each
    is a C number 0-255 or a range ``A:B`` (a type range must be one type; a code range is
    kept as given). Returns (type, code_min, code_max)."""
    found = None
    for entry in names:
        if entry[0][:len(text)].lower() == text.lower() and len(text) <= len(entry[0]):
            if found is not None:
                raise g.error(f"Ambiguous {what} type `{text}': `{found[0]}' or `{entry[0]}'?")
            found = entry
    if found is not None:
        return found[1], found[2], found[3]
    got = _parse_range(text, 0)
    if got is None:
        raise g.error(f"Unknown {what} type `{text}'")
    (type_lo, type_hi), end = got
    if type_lo != type_hi:
        raise g.error(f"{what} type range not supported")
    code = (0, 0xFF)
    if text[end:end + 1] == "/":
        got = _parse_range(text, end + 1)
        if got is None:
            raise g.error(f"Unknown {what} code `{text}'")
        code, end = got
    if end != len(text):
        raise g.error(f"unknown character {text[end]}")
    return type_lo, code[0], code[1]


def _parse_range(text: str, start: int) -> tuple[tuple[int, int], int] | None:
    got = strtoui(text, start, 0, 0xFF)
    if got is None:
        return None
    lo, end = got
    hi = lo
    if text[end:end + 1] == ":":
        got = strtoui(text, end + 1, 0, 0xFF)
        if got is None:
            return None
        hi, end = got
    return (lo, hi), end


@dataclass(frozen=True, slots=True)
class Icmp(Match):
    NAME = "icmp"
    type: int = 0xFF          # 0xFF: any type
    code_min: int = 0
    code_max: int = 0xFF
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_tcpudp.c icmp_match() / icmp_type_code_match(): type 0xFF matches every type
        (``any``), else type equal and code in [code_min, code_max], xor ``!``. Non-first
        fragments never match; an ICMP header under 8 bytes is a hotdrop."""
        if pkt.frag:
            return False
        if pkt.proto != ICMP or l4_avail(pkt) < 8:
            hotdrop(ev, "icmp: header cut short")
            return False
        hit = self.type == 0xFF or (pkt.icmp_type == self.type
                                    and self.code_min <= pkt.icmp_code <= self.code_max)
        return hit != self.invert

    def save(self) -> str:
        inv = " !" if self.invert else ""
        if self.type == 0xFF:
            return f"{inv} --icmp-type any"
        return f"{inv} --icmp-type {save_type(self.type, self.code_min, self.code_max)}"


def save_type(icmp_type: int, code_min: int, code_max: int) -> str:
    """TYPE, or TYPE/CODE_MIN when the codes are not all (a code range prints its start)."""
    if (code_min, code_max) == (0, 0xFF):
        return f"{icmp_type}"
    return f"{icmp_type}/{code_min}"


OPTIONS = (XtOpt("icmp-type", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Icmp:
    seen = xt_collect("icmp", OPTIONS, given)
    xt_fcheck("icmp", OPTIONS, seen, ctx)
    g = seen[0]
    return Icmp(*parse_icmp_type(g.arg, g), g.inv)


SPEC = ExtSpec("icmp", "match", xt_opts(OPTIONS), build, Kernel(proto=ICMP),
               families=frozenset({Family.IPV4}))
