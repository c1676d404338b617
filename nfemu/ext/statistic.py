"""``-m statistic --mode random [!] --probability P`` / ``--mode nth [!] --every N --packet P``
(extensions/libxt_statistic.c; kernel net/netfilter/xt_statistic.c statistic_mt).

Random: iptables stores u32 = lround(P * 2**31); the kernel matches when
``(get_random_u32() & 0x7FFFFFFF) < u32``, so the exact probability is u32 / 2**31, and
iptables-save prints ``%.11f`` of it (1/3 -> 715827883 -> 0.33333333349). Nth: stores every-1
and packet (the kernel counter starts at every - packet). iptables 1.8.9
refuses ``--every`` without ``--packet`` (and the reverse) and prints ``--packet`` always."""
from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from fractions import Fraction

from ..cnum import strtoui_all
from ..errors import ParseError
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, xt_fcheck, xt_opts, xt_parse


class Mode(enum.IntEnum):
    RANDOM = 0
    NTH = 1


_CHANCE: dict[int, Fraction] = {}  # u32 threshold -> its exact probability


@dataclass(frozen=True, slots=True)
class Statistic(Match):
    NAME = "statistic"
    mode: Mode = Mode.RANDOM
    invert: bool = False
    probability: int = 0     # random: u32 threshold, P = probability / 2**31
    every: int = 0           # nth: N - 1, as the kernel stores it
    packet: int = 0          # nth: initial counter value

    def match(self, pkt, ev) -> bool:
        """xt_statistic.c statistic_mt(). ``ret`` starts as ``!`` and flips when
        random: ``(get_random_u32() & 0x7FFFFFFF) < probability``, asked as
        ``ev.choose(Fraction(probability, 2**31))``;
        nth: the rule's counter (``ev.state.nth[ev.state_key]``, first set to every - packet
        as statistic_mt_check does with iptables' ``u.nth.count``) advances
        ``nval = (oval == every) ? 0 : oval + 1`` on every packet reaching the match, and
        the packet is the nth one when ``nval == 0``."""
        if self.mode is Mode.RANDOM:
            chance = _CHANCE.get(self.probability)
            if chance is None:
                chance = _CHANCE[self.probability] = Fraction(self.probability, 1 << 31)
            hit = ev.choose(chance)
        else:
            key = ev.state_key
            counters = ev.state.nth
            oval = counters.get(key)
            if oval is None:
                oval = self.every - self.packet
            nval = 0 if oval == self.every else oval + 1
            counters[key] = nval
            hit = nval == 0
        return hit != self.invert

    def save(self) -> str:
        inv = " !" if self.invert else ""
        if self.mode is Mode.RANDOM:
            return f" --mode random{inv} --probability {self.probability / 0x80000000:.11f}"
        return f" --mode nth{inv} --every {self.every + 1} --packet {self.packet}"


OPTIONS = (
    XtOpt("mode", 0, mand=True),
    XtOpt("probability", 1, invert=True, excl=frozenset({2, 3})),
    XtOpt("every", 2, invert=True, excl=frozenset({1}), also=frozenset({3})),
    XtOpt("packet", 3, excl=frozenset({1}), also=frozenset({2})),
)

_DEC = re.compile(r"[ \t\n\v\f\r]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_HEX = re.compile(r"[ \t\n\v\f\r]*[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                  r"([pP][+-]?[0-9]+)?")
_SPECIAL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(inf|infinity|nan|nan\([0-9A-Za-z_]*\))",
                      re.IGNORECASE)


def strtod_all(text: str) -> float | None:
    """C strtod(3) when the whole string must be consumed; None if it is not a number."""
    if _DEC.fullmatch(text):
        try:
            return float(text.strip(" \t\n\v\f\r"))
        except OverflowError:
            return math.inf
    if _HEX.fullmatch(text):
        body = text.strip(" \t\n\v\f\r")
        try:
            return float.fromhex(body)
        except OverflowError:
            return -math.inf if body.startswith("-") else math.inf
    m = _SPECIAL.fullmatch(text)
    if m:
        value = math.nan if m.group(2).lower().startswith("nan") else math.inf
        return -value if m.group(1) == "-" else value
    return None


def probability_to_u32(p: float) -> int:
    """lround(0x80000000 * p) stored in a u32 (x86-64: lround(NaN) is LONG_MIN -> 0)."""
    if math.isnan(p):
        return 0
    x = p * 2147483648.0
    return int(math.floor(x + 0.5)) & 0xFFFFFFFF


def build(given: list[Given], ctx: RuleContext) -> Statistic:
    seen: dict[int, Given] = {}
    f: dict = {}
    for g in given:
        xt_parse("statistic", OPTIONS, g, seen)
        if g.inv:
            f["invert"] = True
        if g.name == "mode":
            if g.arg not in ("random", "nth"):
                raise g.error(f"Bad mode \"{g.arg}\"")
            f["mode"] = Mode.RANDOM if g.arg == "random" else Mode.NTH
        elif g.name == "probability":
            p = strtod_all(g.arg)
            if p is None or p < 0 or p > 1:
                raise g.error("statistic: bad value for option \"--probability\", or out of "
                              "range (0-1).")
            f["probability"] = probability_to_u32(p)
        else:
            lo = 1 if g.name == "every" else 0
            n = strtoui_all(g.arg, lo, 0xFFFFFFFF)
            if n is None:
                raise g.error(f"statistic: bad value for option \"--{g.name}\", or out of "
                              f"range ({lo}-4294967295).")
            f[g.name] = n - 1 if g.name == "every" else n
    value = Statistic(**f)
    # statistic_check() runs before libxtables' generic checks
    if value.mode is Mode.RANDOM and 1 not in seen:
        raise ParseError("--probability must be specified when using random mode", ctx.loc)
    if value.mode is Mode.NTH and 2 not in seen and 3 not in seen:
        raise ParseError("--every and --packet must be specified when using nth mode", ctx.loc)
    if value.packet > value.every:
        raise ParseError("the --packet p must be 0 <= p <= n-1", ctx.loc)
    xt_fcheck("statistic", OPTIONS, seen, ctx)
    return value


SPEC = ExtSpec("statistic", "match", xt_opts(OPTIONS), build)
