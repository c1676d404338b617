"""``-j CLASSIFY --set-class MAJOR:MINOR``: set skb->priority for the qdisc classifier
(extensions/libxt_CLASSIFY.c, kernel net/netfilter/xt_CLASSIFY.c). Returns XT_CONTINUE.

The argument is read with ``sscanf("%x:%x")``: two hex numbers (white space, a sign and a 0x
prefix allowed before each, anything after the second ignored), each cut to an unsigned int;
the priority is ``TC_H_MAKE(major << 16, minor)``, so only the low 16 bits of each survive.
iptables-save prints ``--set-class %04x:%04x``.

Kernel: hooks OUTPUT, FORWARD and POSTROUTING only, in any table (the kernel has no table
restriction for it any more).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..cnum import ULONG_MAX
from .. import engine as _engine
from ..ir import Target
from .base import FWD, OUT, POST, ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, xt_fcheck, xt_opts, xt_parse

_SPACE = " \t\n\v\f\r"
_HEX = "0123456789abcdefABCDEF"


def scanf_hex(text: str, pos: int) -> tuple[int, int] | None:
    """glibc ``%x`` into an unsigned int at ``pos``: (value, end) or None when no number."""
    n = len(text)
    while pos < n and text[pos] in _SPACE:
        pos += 1
    neg = False
    if pos < n and text[pos] in "+-":
        neg = text[pos] == "-"
        pos += 1
    prefixed = text[pos:pos + 2] in ("0x", "0X")
    if prefixed:
        pos += 2
    j = pos
    while j < n and text[j] in _HEX:
        j += 1
    if j == pos:
        if not prefixed:
            return None
        return 0, pos  # "0x" with no digit after it reads as 0 (seen: "0x:1" is 0:1)
    value = min(int(text[pos:j], 16), ULONG_MAX)
    if neg:
        value = -value & ULONG_MAX
    return value & 0xFFFFFFFF, j


def parse_class(g: Given) -> int:
    text = g.arg
    major = scanf_hex(text, 0)
    if major is not None and text[major[1]:major[1] + 1] == ":":
        minor = scanf_hex(text, major[1] + 1)
        if minor is not None:
            return ((major[0] << 16) & 0xFFFF0000) | (minor[0] & 0xFFFF)
    raise g.error(f"Bad class value \"{text}\"")


@dataclass(frozen=True, slots=True)
class Classify(Target):
    """xt_classify_target_info: the new skb->priority (major << 16 | minor)."""

    NAME = "CLASSIFY"
    TERMINAL = False
    priority: int = 0

    def save(self) -> str:
        return f" --set-class {self.priority >> 16:04x}:{self.priority & 0xFFFF:04x}"

    def apply(self, pkt, ev):
        """xt_CLASSIFY.c classify_tg(): ``skb->priority = info->priority``; XT_CONTINUE. The
        Packet has no priority field, so the new priority is recorded as a CLASSIFY event."""
        ev.record("CLASSIFY",
                  priority=f"{self.priority >> 16:x}:{self.priority & 0xFFFF:x}")
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)


OPTIONS = (XtOpt("set-class", 0, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Classify:
    seen: dict[int, Given] = {}
    priority = 0
    for g in given:
        xt_parse("CLASSIFY", OPTIONS, g, seen)
        priority = parse_class(g)
    xt_fcheck("CLASSIFY", OPTIONS, seen, ctx)
    return Classify(priority)


SPEC = ExtSpec("CLASSIFY", "target", xt_opts(OPTIONS), build,
               Kernel(hooks=frozenset({OUT, FWD, POST})))
