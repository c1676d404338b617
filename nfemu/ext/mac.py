"""``-m mac [!] --mac-source XX:XX:XX:XX:XX:XX``: the Ethernet source address (libxt_mac.c;
kernel net/netfilter/xt_mac.c).

The address is kept as a 48-bit int; iptables-save prints it in lower case with two digits per
byte. Each byte is read like C's strtoul(part, &end, 16) of at most two characters (so ``a``,
`` a``, ``+a`` and even ``-1`` (0xff) are accepted, as iptables does).

Kernel: only in rules reached from PREROUTING, INPUT or FORWARD (xt_mac.hooks); any table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..ir import Match
from .base import FWD, IN, PRE, ExtSpec, Given, Kernel, Opt, RuleContext
from .xtopt import need, single

_HEX = re.compile(r"[ \t\n\v\f\r]*([+-]?)(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)")


@dataclass(frozen=True, slots=True)
class Mac(Match):
    NAME = "mac"
    addr: int = 0
    inv: bool = False

    def text(self) -> str:
        return ":".join(f"{b:02x}" for b in self.addr.to_bytes(6, "big"))

    def match(self, pkt, ev) -> bool:
        """xt_mac.c mac_mt(): a packet without an Ethernet header (``pkt.in_mac`` None:
        locally generated, or no link layer) never matches, even with ``!``; else the frame's
        source address equal, xor ``!``."""
        if pkt.in_mac is None:
            return False
        return (pkt.in_mac == self.addr) != self.inv

    def save(self) -> str:
        return f"{' !' if self.inv else ''} --mac-source {self.text()}"


def _byte(part: str) -> int | None:
    """strtoul(part, &end, 16) that must use the whole part and at most 2 characters."""
    if part == "":
        return 0  # strtoul reads nothing: end == start, 0 characters
    m = _HEX.match(part)
    if not m or m.end() != len(part) or len(part) > 2:
        return None
    value = int(m.group(2), 16)
    if m.group(1) == "-":
        value = -value
    return value & 0xFF


def parse_mac(text: str) -> int | None:
    parts = text.split(":")
    if len(parts) != 6:
        return None
    value = 0
    for part in parts:
        byte = _byte(part)
        if byte is None:
            return None
        value = (value << 8) | byte
    return value


def build(given: list[Given], ctx: RuleContext) -> Mac:
    g = single(given).get("mac-source")
    need(g is not None, ctx, "mac: option \"--mac-source\" must be specified")
    addr = parse_mac(g.arg)
    if addr is None:
        raise g.error("Invalid MAC address specified.")
    return Mac(addr, g.inv)


SPEC = ExtSpec("mac", "match", (Opt("mac-source"),), build,
               Kernel(hooks=frozenset({PRE, IN, FWD})))
