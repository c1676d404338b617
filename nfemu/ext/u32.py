"""``-m u32 [!] --u32 TESTS``: tests on 32-bit words read at computed packet offsets
(extensions/libxt_u32.c; kernel net/netfilter/xt_u32.c).

``TESTS := LOCATION "=" VALUES ["&&" TESTS]``, ``LOCATION := NUMBER [OP NUMBER]...`` with OP one
of ``&``, ``<<``, ``>>``, ``@``, ``VALUES := N[:M] ["," VALUES]``; white space is allowed between
tokens; at most 10 tests, 10 numbers per location and 10 ranges per test. iptables-save prints
every number in hex, without spaces, in double quotes:
``--u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0=0x16030100:0x160301ff"``. No kernel restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..cnum import strtoui
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

MAXSIZE = 10                 # XT_U32_MAXSIZE
_SPACE = " \t\n\v\f\r"


class U32Op(enum.IntEnum):
    """XT_U32_* (include/uapi/linux/netfilter/xt_u32.h)."""

    AND = 0
    LEFTSH = 1
    RIGHTSH = 2
    AT = 3


_OP_TEXT = {U32Op.AND: "&", U32Op.LEFTSH: "<<", U32Op.RIGHTSH: ">>", U32Op.AT: "@"}


@dataclass(frozen=True, slots=True)
class U32Test:
    """xt_u32_test: the first number, then (operator, number) steps; the accepted ranges."""

    location: tuple[tuple[U32Op, int], ...]      # the first operator is unused (AND)
    values: tuple[tuple[int, int], ...]

    def text(self) -> str:
        out = [f"0x{self.location[0][1]:x}"]
        out += [f"{_OP_TEXT[op]}0x{n:x}" for op, n in self.location[1:]]
        out.append("=")
        out.append(",".join(f"0x{lo:x}" if lo == hi else f"0x{lo:x}:0x{hi:x}"
                            for lo, hi in self.values))
        return "".join(out)


@dataclass(frozen=True, slots=True)
class U32(Match):
    NAME = "u32"
    tests: tuple[U32Test, ...] = ()
    invert: bool = False

    def save(self) -> str:
        body = "&&".join(t.text() for t in self.tests)
        return f"{' !' if self.invert else ''} --u32 \"{body}\""


def parse_u32(g: Given) -> tuple[U32Test, ...]:
    """u32_parse(): the state machine of libxt_u32 with its messages."""
    s = g.arg
    n = len(s)
    i = 0

    def number(pos: int) -> tuple[int, int]:
        got = strtoui(s, pos)
        if got is None or got[1] == pos:
            raise g.error(f"u32: at char {pos}: not a number or out of range")
        return got

    tests: list[U32Test] = []
    loc: list[tuple[U32Op, int]] = []
    vals: list[tuple[int, int]] = []
    state = 0
    while True:
        while i < n and s[i] in _SPACE:
            i += 1
        if i >= n:
            if state == 0:
                raise g.error("u32: abrupt end of input after location specifier")
            if not vals:
                raise g.error("u32: test ended with no value specified")
            tests.append(U32Test(tuple(loc), tuple(vals)))
            if len(tests) > MAXSIZE:
                raise g.error(f"u32: at char {i}: too many \"&&\"s")
            return tuple(tests)
        c = s[i]
        if state == 0:
            if c == "=":
                if not loc:
                    raise g.error(f"u32: at char {i}: location spec missing")
                i += 1
                state = 1
                continue
            op = U32Op.AND
            if loc:
                if c == "&":
                    op = U32Op.AND
                elif c in "<>":
                    i += 1
                    if s[i:i + 1] != c:
                        raise g.error(f"u32: at char {i}: a second '{c}' was expected")
                    op = U32Op.LEFTSH if c == "<" else U32Op.RIGHTSH
                elif c == "@":
                    op = U32Op.AT
                else:
                    raise g.error(f"u32: at char {i}: operator expected")
                i += 1
            value, i = number(i)
            loc.append((op, value))
            if len(loc) > MAXSIZE:
                raise g.error(f"u32: at char {i}: too many operators")
        else:
            if c == "&":
                i += 1
                if s[i:i + 1] != "&":
                    raise g.error(f"u32: at char {i}: a second '&' was expected")
                if not vals:
                    raise g.error(f"u32: at char {i}: value spec missing")
                tests.append(U32Test(tuple(loc), tuple(vals)))
                if len(tests) > MAXSIZE:
                    raise g.error(f"u32: at char {i}: too many \"&&\"s")
                i += 1
                state = 0
                loc, vals = [], []
                continue
            if vals:
                if c != ",":
                    raise g.error(f"u32: at char {i}: expected \",\" or \"&&\"")
                i += 1
            lo, i = number(i)
            while i < n and s[i] in _SPACE:
                i += 1
            hi = lo
            if s[i:i + 1] == ":":
                i += 1
                hi, i = number(i)
            vals.append((lo, hi))
            if len(vals) > MAXSIZE:
                raise g.error(f"u32: at char {i}: too many \",\"s")


OPTIONS = (XtOpt("u32", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> U32:
    seen = xt_collect("u32", OPTIONS, given)
    xt_fcheck("u32", OPTIONS, seen, ctx)
    g = seen[0]
    return U32(parse_u32(g), g.inv)


SPEC = ExtSpec("u32", "match", xt_opts(OPTIONS), build)
