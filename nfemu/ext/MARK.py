"""``-j MARK``: set the packet mark (libxt_MARK.c revision 2, kernel net/netfilter/xt_mark.c
``mark_tg``: ``skb->mark = (skb->mark & ~mask) ^ mark``).

Every form is stored as the kernel's ``xt_mark_tginfo2`` (mark, mask), so iptables-save always
prints ``--set-xmark 0xV/0xM``:

==================  ==========================
--set-xmark v[/m]   v / m (m defaults to ~0)
--set-mark v[/m]    v / (v | m)
--and-mark x        0 / ~x
--or-mark x         x / x
--xor-mark x        x / 0
==================  ==========================

Revision 2 has no table or hook restriction in the kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from .base import ExtSpec, Given, Kernel, RuleContext
from .xtopt import (
    U32, XtOpt, ctx_error, parse_uint_opt, parse_val_mask, xt_collect, xt_fcheck, xt_opts,
)


@dataclass(frozen=True, slots=True)
class Mark(Target):
    """xt_mark_tginfo2: the new mark is ``(mark & ~mask) ^ value``."""

    NAME = "MARK"
    TERMINAL = False
    value: int = 0
    mask: int = U32

    def save(self) -> str:
        return f" --set-xmark 0x{self.value:x}/0x{self.mask:x}"

    def new_mark(self, mark: int) -> int:
        """The packet mark after this target (mark_tg)."""
        return ((mark & ~self.mask) ^ self.value) & U32

    def apply(self, pkt, ev=None):
        """xt_mark.c mark_tg(): ``skb->mark = (skb->mark & ~info->mask) ^ info->mark``;
        XT_CONTINUE. Given a plain int (the older helper form), returns the new mark. A
        change is recorded as a MARK event (``mark``: old -> new), for the trace."""
        if isinstance(pkt, int):
            return self.new_mark(pkt)
        new = self.new_mark(pkt.mark)
        if new == pkt.mark:
            return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)
        if ev is not None:
            ev.record("MARK", mark=f"{pkt.mark:#x} -> {new:#x}")
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt.replace(mark=new))


# option ids in libxt_MARK.c (O_SET_MARK, O_SET_XMARK, O_AND_MARK, O_OR_MARK, O_XOR_MARK) in
# the table order of mark_tg_opts; each excludes all the others
_OPS = frozenset(range(5))
OPTIONS = (XtOpt("set-xmark", 1, excl=_OPS), XtOpt("set-mark", 0, excl=_OPS),
           XtOpt("and-mark", 2, excl=_OPS), XtOpt("or-mark", 3, excl=_OPS),
           XtOpt("xor-mark", 4, excl=_OPS))


def build(given: list[Given], ctx: RuleContext) -> Mark:
    seen = xt_collect("MARK", OPTIONS, given)
    result: tuple[int, int] | None = None
    for g in given:
        if g.name == "set-xmark":
            result = parse_val_mask(g, "MARK")
        elif g.name == "set-mark":
            value, mask = parse_val_mask(g, "MARK")
            result = (value, value | mask)
        else:
            x = parse_uint_opt(g, "MARK")
            result = {"and-mark": (0, ~x & U32), "or-mark": (x, x),
                      "xor-mark": (x, 0)}[g.name]
    if result is None:
        raise ctx_error(ctx, "MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is "
                             "required")
    xt_fcheck("MARK", OPTIONS, seen, ctx)
    return Mark(*result)


SPEC = ExtSpec("MARK", "target", xt_opts(OPTIONS), build, Kernel())
