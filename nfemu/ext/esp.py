"""``-p esp -m esp [!] --espspi N[:M]``: the ESP SPI is in [N, M] (extensions/libxt_esp.c;
kernel net/netfilter/xt_esp.c).

Kernel: ``.proto = IPPROTO_ESP``, the rule must say ``-p esp`` (not negated). iptables-save
prints nothing for the full range 0:4294967295, one number when both ends are equal.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, Kernel, RuleContext
from .tcp import hotdrop
from .u32 import skb_view
from .xtopt import XtOpt, parse_uint_range, xt_collect, xt_opts

U32 = 0xFFFFFFFF
IPPROTO_ESP = 50


@dataclass(frozen=True, slots=True)
class SpiRange(Match):
    """xt_esp / ipt_ah: matches when lo <= SPI <= hi, xor inv."""

    NAME = "esp"
    OPTION = "espspi"
    #: where the SPI lies in the header, and how many header bytes the kernel reads
    SPI_OFFSET = 0
    HEADER = 8
    lo: int = 0
    hi: int = U32
    inv: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_esp.c esp_mt() (and ipt_ah.c ah_mt()): a non-first fragment never matches;
        the header (ESP: 8 bytes, SPI first; AH: 12 bytes, SPI at 4) is read at
        ``par->thoff``, a datagram too short for it is a hotdrop; then spi_match():
        ``lo <= SPI <= hi`` xor ``!``."""
        if pkt.frag:
            return False
        hdr = skb_view(pkt).l4(0, self.HEADER, f"-m {self.NAME}")
        if hdr is None:
            hotdrop(ev, f"{self.NAME}: header cut short")
            return False
        spi = int.from_bytes(hdr[self.SPI_OFFSET:self.SPI_OFFSET + 4], "big")
        return (self.lo <= spi <= self.hi) != self.inv

    def save(self) -> str:
        if self.lo == 0 and self.hi == U32:
            return ""
        value = f"{self.lo}" if self.lo == self.hi else f"{self.lo}:{self.hi}"
        return f"{' !' if self.inv else ''} --{self.OPTION} {value}"


@dataclass(frozen=True, slots=True)
class Esp(SpiRange):
    NAME = "esp"


def spi_builder(cls, ext: str, option: str):
    table = (XtOpt(option, 0, invert=True),)

    def build(given: list[Given], ctx: RuleContext):
        seen = xt_collect(ext, table, given)
        g = seen.get(0)
        if g is None:
            return cls()
        lo, hi = parse_uint_range(g, ext, U32)
        return cls(lo, hi, g.inv)
    return table, build


OPTIONS, build = spi_builder(Esp, "esp", "espspi")
SPEC = ExtSpec("esp", "match", xt_opts(OPTIONS), build, Kernel(proto=IPPROTO_ESP))
