"""``-m u32 [!] --u32 TESTS``: tests on 32-bit words read at computed packet offsets
(extensions/libxt_u32.c; kernel net/netfilter/xt_u32.c).

``TESTS := LOCATION "=" VALUES ["&&" TESTS]``, ``LOCATION := NUMBER [OP NUMBER]...`` with OP one
of ``&``, ``<<``, ``>>``, ``@``, ``VALUES := N[:M] ["," VALUES]``; white space is allowed between
tokens; at most 10 tests, 10 numbers per location and 10 ranges per test. iptables-save prints
every number in hex, without spaces, in double quotes:
``--u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0=0x16030100:0x160301ff"``.

Kernel check (u32_mt_checkentry): since "netfilter: xt_u32: reject invalid shift counts"
(2026; Linux 6.18.40 and the matching stable releases) a ``<<`` or ``>>`` by more than 31 is
refused (EINVAL); older kernels load it and shift by the count modulo 32 (x86, arm64).

This module also holds what the byte-reading matches share (u32, string, tcpmss, ecn, ah,
esp, hashlimit): the packet's bytes as the kernel's skb holds them from the network header
(:func:`skb_view`), reads at an offset that tell "beyond the datagram" (the kernel's
``skb_header_pointer`` fails) from "not in nfemu's copy" (a capture cut short: NotEvaluable),
and :func:`not_evaluable`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..cnum import strtoui
from ..errors import NfemuError
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

    def match(self, pkt, ev) -> bool:
        """xt_u32.c u32_mt() / u32_match_it(): every test must hold (the ``&&``s), xor ``!``.

        A test reads the big-endian 32-bit word at its first number (an offset from the IP
        header; ``skb->len`` is the IP total length), then applies its operators in order in
        u32 arithmetic: ``&`` masks, ``<<``/``>>`` shift (counts above 31 are refused at load
        by current kernels; older ones shift by the count modulo 32, as the shift
        instructions of x86 and arm64 do with ``val <<= number``), ``@`` moves the base ``at`` forward by the current value and
        reads the word at ``at + number``. A read that would not lie inside the packet
        (``skb->len < 4``, ``pos > skb->len - 4``, or the unsigned overflow checks of ``@``)
        makes u32_match_it() false, like a value outside the ranges (so with ``!`` the rule
        matches). Otherwise the word must lie in one of the test's ranges."""
        view = skb_view(pkt)
        size = view.length
        ok = True
        for test in self.tests:
            loc = test.location
            at = 0
            pos = loc[0][1]
            if size < 4 or pos > size - 4:
                ok = False
                break
            val = view.word(pos, "-m u32")
            for op, number in loc[1:]:
                if op is U32Op.AND:
                    val &= number
                elif op is U32Op.LEFTSH:
                    val = (val << (number & 31)) & 0xFFFFFFFF
                elif op is U32Op.RIGHTSH:
                    val >>= number & 31
                else:                                   # XT_U32_AT
                    if at + val > 0xFFFFFFFF:           # at + val < at (u32 wrap)
                        ok = False
                        break
                    at += val
                    pos = number
                    if at + 4 > 0xFFFFFFFF or size < at + 4 or pos > size - at - 4:
                        ok = False
                        break
                    val = view.word(at + pos, "-m u32")
            if not ok:
                break
            if not any(lo <= val <= hi for lo, hi in test.values):
                ok = False
                break
        return ok != self.invert

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


def check(value: U32, table: str, hooks, rule) -> list[str]:
    """u32_mt_checkentry(): shift counts above 31 are refused (Linux 6.18.40+ and the stable
    releases with the fix; the other size checks cannot fail for what iptables builds)."""
    for test in value.tests:
        for op, number in test.location[1:]:
            if op in (U32Op.LEFTSH, U32Op.RIGHTSH) and number > 31:
                message = (f"-m u32: the kernel refuses a shift by {number} (more than 31; "
                           "Invalid argument)")
                return [message]
    return []


SPEC = ExtSpec("u32", "match", xt_opts(OPTIONS), build, check=check)


# ---- reading the packet's bytes as the skb holds them -------------------------------------

def not_evaluable(message: str) -> NfemuError:
    """A :class:`nfemu.interp.NotEvaluable` (imported late: interp imports the engine, which
    imports the extensions)."""
    from ..interp import NotEvaluable
    return NotEvaluable(message)


class SkbView:
    """The datagram from its IP header, as ``skb->data`` at the netfilter hooks: ``length``
    is ``skb->len`` (the IP total length, what the kernel's reads are bounded by), ``data``
    the bytes nfemu has (all of them, or the part a capture kept). Checksums are the
    recomputed ones (:meth:`Packet.to_bytes`)."""

    __slots__ = ("data", "header_len", "length")

    def __init__(self, pkt):
        self.data = pkt.to_bytes()
        self.length = pkt.length
        self.header_len = pkt.header_len

    def read(self, offset: int, size: int, who: str) -> bytes | None:
        """``skb_header_pointer(skb, offset, size)``: the bytes, or None when they are not
        inside the datagram; NotEvaluable when they are, but nfemu's copy of the packet is
        cut short before them."""
        if offset < 0 or offset + size > self.length:
            return None
        if offset + size > len(self.data):
            raise not_evaluable(
                f"{who} reads bytes {offset}-{offset + size - 1} of a {self.length}-byte "
                f"datagram of which nfemu has only the first {len(self.data)}")
        return self.data[offset:offset + size]

    def word(self, offset: int, who: str) -> int:
        """The big-endian u32 at ``offset`` (the caller checked it lies in the datagram)."""
        got = self.read(offset, 4, who)
        assert got is not None
        return int.from_bytes(got, "big")

    def l4(self, offset: int, size: int, who: str) -> bytes | None:
        """:meth:`read` at ``par->thoff + offset`` (thoff: the end of the IP header(s), also
        for non-first fragments, whose "transport header" is fragment data)."""
        return self.read(self.header_len + offset, size, who)


def skb_view(pkt) -> SkbView:
    return SkbView(pkt)
