"""``-m tos [!] --tos VALUE[/MASK] | SYMBOL`` (extensions/libxt_tos.c revision 1 with
tos_values.c and libxtables' XTTYPE_TOSMASK; kernel net/netfilter/xt_dscp.c tos_mt).

Matches when ``(tos & mask) == value``, xor ``!``. A number without a mask gets mask 0xff; a
symbolic name (Minimize-Delay, Maximize-Throughput, Maximize-Reliability, Minimize-Cost,
Normal-Service, any case) gets mask 0x3f. iptables-save prints ``--tos 0xVV/0xMM``.
No kernel restriction.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..cnum import strtoui
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

TOS_SYMBOLS = (("Minimize-Delay", 0x10), ("Maximize-Throughput", 0x08),
               ("Maximize-Reliability", 0x04), ("Minimize-Cost", 0x02),
               ("Normal-Service", 0x00))


@dataclass(frozen=True, slots=True)
class Tos(Match):
    NAME = "tos"
    value: int = 0
    mask: int = 0xFF
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_dscp.c tos_mt(): ``(tos & tos_mask) == tos_value`` xor ``!``, on the IPv4 TOS
        byte or the IPv6 traffic class (``pkt.tos``), ECN bits included."""
        return ((pkt.tos & self.mask) == self.value) != self.invert

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --tos 0x{self.value:02x}/0x{self.mask:02x}"


def parse_tosmask(g: Given, ext: str, symbol_mask: int) -> tuple[int, int]:
    """xtopt_parse_tosmask(): ``value[/mask]`` (each 0-255) or a symbolic name."""
    text = g.arg
    got = strtoui(text, 0, 0, 0xFF)
    if got is not None:
        value, end = got
        mask = 0xFF
        if text[end:end + 1] == "/":
            got = strtoui(text, end + 1, 0, 0xFF)
            if got is None:
                raise g.error(f"Illegal value: \"{text}\"")
            mask, end = got
        if end != len(text):
            raise g.error(f"Illegal value: \"{text}\"")
        return value, mask
    for name, sym in TOS_SYMBOLS:
        if name.lower() == text.lower():
            return sym, symbol_mask
    raise g.error(f"Symbolic name \"{text}\" is unknown")


OPTIONS = (XtOpt("tos", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Tos:
    seen = xt_collect("tos", OPTIONS, given)
    xt_fcheck("tos", OPTIONS, seen, ctx)
    g = seen[0]
    value, mask = parse_tosmask(g, "tos", 0x3F)
    return Tos(value, mask, g.inv)


SPEC = ExtSpec("tos", "match", xt_opts(OPTIONS), build)
