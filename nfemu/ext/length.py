"""``-m length [!] --length N[:M]``: the IP packet length (layer 3 header and payload) is in
[N, M] (libxt_length.c; kernel net/netfilter/xt_length.c).

No table, hook or protocol restriction. Also home of the C-number helpers used by the other
extensions of this group (owner, connmark): libxtables parses with ``strtoumax`` and looks at
what follows the number, which ``util.parse_uint`` (whole string only) cannot express.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, Opt, RuleContext, need, single

_PREFIX = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX](?=[0-9a-fA-F])[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
UINTMAX = (1 << 64) - 1


def strtoumax(text: str, pos: int = 0) -> tuple[int, int] | None:
    """C ``strtoumax(text + pos, &end, 0)``: (value, index of end), or None when no digits were
    read (end would be the start). A leading ``-`` negates modulo 2**64, as C does; a value over
    2**64-1 (ERANGE) is returned as is, so callers can refuse it."""
    m = _PREFIX.match(text, pos)
    if not m:
        return None
    digits = m.group(2)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif digits[0] == "0":
        value = int(digits, 8)
    else:
        value = int(digits)
    if m.group(1) == "-" and value <= UINTMAX:
        value = (-value) & UINTMAX
    return value, m.end()


def xt_strtoul(text: str, pos: int, lo: int, hi: int) -> tuple[int, int] | None:
    """``xtables_strtoul(s, &end, &v, lo, hi)`` (end pointer given): a number at ``pos``, with
    whatever follows left to the caller. None for a minus sign, no digits or out of range."""
    rest = text[pos:].lstrip(" \t\n\v\f\r")
    if rest.startswith("-"):
        return None
    got = strtoumax(text, pos)
    if got is None or not lo <= got[0] <= hi:
        return None
    return got


def parse_uint_range(text: str, g: Given, ext: str, hi: int) -> tuple[int, int]:
    """XTTYPE_UINT*RC (xtopt_parse_mint): ``N``, ``N:M``, ``:M`` (0:M), ``N:`` (N:max), ``:``;
    one value gives N:N. The messages are libxtables'."""
    values: list[int] = []
    pos = 0
    while True:
        if len(values) == 2:
            raise g.error(f"{ext}: Too many components for option \"--{g.name}\" (max: 2)")
        if pos >= len(text) or text[pos] == ":":
            end = pos
            value = hi if len(values) == 1 else 0
        else:
            got = xt_strtoul(text, pos, 0, hi)
            if got is None:
                raise g.error(f"{ext}: bad value for option \"--{g.name}\" near "
                              f"\"{text[pos:]}\", or out of range (0-{hi}).")
            value, end = got
            if end < len(text) and text[end] != ":":
                raise g.error(f"{ext}: Argument to \"--{g.name}\" has unexpected characters "
                              f"near \"{text[end:]}\".")
        values.append(value)
        if end >= len(text):
            break
        pos = end + 1
    return values[0], values[-1]


@dataclass(frozen=True, slots=True)
class Length(Match):
    """xt_length_info: matches when min <= IP total length (IPv6: payload + 40) <= max, xor inv."""

    NAME = "length"
    min: int = 0
    max: int = 0xFFFF
    inv: bool = False

    def save(self) -> str:
        value = f"{self.min}" if self.min == self.max else f"{self.min}:{self.max}"
        return f"{' !' if self.inv else ''} --length {value}"


def build(given: list[Given], ctx: RuleContext) -> Length:
    opts = single(given)
    g = opts.get("length")
    need(g is not None, ctx, "length: option \"--length\" must be specified")
    lo, hi = parse_uint_range(g.arg, g, "length", 0xFFFF)
    return Length(lo, hi, g.inv)


SPEC = ExtSpec("length", "match", (Opt("length"),), build)
