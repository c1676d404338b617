"""``-j CONNMARK``: set, save or restore the connection mark (libxt_CONNMARK.c revision 2,
kernel net/netfilter/xt_connmark.c ``connmark_tg_shift``).

Revision 2 (``xt_connmark_tginfo2``) is what iptables-nft uses on a current kernel:

* SET: ``ctmark = (ctmark & ~ctmask) ^ ctmark_value``; iptables-save prints
  ``--set-xmark 0xV/0xM`` whichever of --set-mark/--set-xmark/--and/--or/--xor-mark wrote it.
* SAVE: ``ctmark = (ctmark & ~ctmask) ^ (skb->mark & nfmask)`` (with the optional shift),
  printed ``--save-mark --nfmask 0xN --ctmask 0xC``.
* RESTORE: ``skb->mark = (skb->mark & ~nfmask) ^ (ctmark & ctmask)``, printed
  ``--restore-mark --nfmask 0xN --ctmask 0xC``.

``--mask m`` sets both masks; ``--left-shift-mark``/``--right-shift-mark`` (0-32) print after
the operation when not zero. No table or hook restriction in the kernel.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from .base import ExtSpec, Given, Kernel, RuleContext
from .xtopt import (
    U32, XtOpt, ctx_error, parse_uint_opt, parse_val_mask, xt_collect, xt_fcheck, xt_opts,
)


class ConnmarkMode(enum.IntEnum):
    SET = 0       # XT_CONNMARK_SET
    SAVE = 1      # XT_CONNMARK_SAVE
    RESTORE = 2   # XT_CONNMARK_RESTORE


class ShiftDir(enum.IntEnum):
    LEFT = 0
    RIGHT = 1


@dataclass(frozen=True, slots=True)
class Connmark(Target):
    NAME = "CONNMARK"
    TERMINAL = False
    mode: ConnmarkMode = ConnmarkMode.SET
    ctmark: int = 0
    ctmask: int = U32
    nfmask: int = U32
    shift_dir: ShiftDir = ShiftDir.LEFT
    shift_bits: int = 0

    def save(self) -> str:
        if self.mode is ConnmarkMode.SET:
            out = f" --set-xmark 0x{self.ctmark:x}/0x{self.ctmask:x}"
        else:
            op = "--save-mark" if self.mode is ConnmarkMode.SAVE else "--restore-mark"
            out = f" {op} --nfmask 0x{self.nfmask:x} --ctmask 0x{self.ctmask:x}"
        if self.shift_bits:
            out += f" --{'left' if self.shift_dir is ShiftDir.LEFT else 'right'}-shift-mark " \
                   f"{self.shift_bits}"
        return out

    def _shift(self, value: int) -> int:
        # u32 shift by a variable count: x86 SHL/SHR use the count modulo 32, so a shift by
        # 32 (the largest value userspace accepts) leaves the value as it is
        bits = self.shift_bits & 31
        if self.shift_dir is ShiftDir.RIGHT:
            return value >> bits
        return (value << bits) & U32

    def apply(self, pkt, ev):
        """xt_connmark.c connmark_tg_shift() (revision 2): without a conntrack entry
        (``ev.ct`` None or untracked: nf_ct_get() is NULL) nothing happens. SET:
        ``ctmark = shift((ctmark & ~ctmask) ^ ctmark_value)``; SAVE:
        ``ctmark = (ctmark & ~ctmask) ^ shift(mark & nfmask)``; RESTORE:
        ``mark = (mark & ~nfmask) ^ shift(ctmark & ctmask)``. XT_CONTINUE."""
        ct = ev.ct
        if ct is not None and not ct.untracked:
            if self.mode is ConnmarkMode.SET:
                ct.mark = self._shift((ct.mark & ~self.ctmask & U32) ^ self.ctmark)
            elif self.mode is ConnmarkMode.SAVE:
                ct.mark = (ct.mark & ~self.ctmask & U32) ^ self._shift(pkt.mark & self.nfmask)
            else:
                mark = (pkt.mark & ~self.nfmask & U32) ^ self._shift(ct.mark & self.ctmask)
                if mark != pkt.mark:
                    pkt = pkt.replace(mark=mark)
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)


# connmark_tg_opts_v2 in table order, with the option ids of libxt_CONNMARK.c (O_SET_MARK = 0,
# O_SAVE_MARK, O_RESTORE_MARK, O_AND_MARK, O_OR_MARK, O_XOR_MARK, O_LEFT_SHIFT_MARK,
# O_RIGHT_SHIFT_MARK, O_SET_XMARK, O_CTMASK, O_NFMASK, O_MASK)
_OPS = frozenset({0, 1, 2, 3, 4, 5, 8})
OPTIONS = (
    XtOpt("set-xmark", 8, excl=_OPS), XtOpt("set-mark", 0, excl=_OPS),
    XtOpt("and-mark", 3, excl=_OPS), XtOpt("or-mark", 4, excl=_OPS),
    XtOpt("xor-mark", 5, excl=_OPS), XtOpt("save-mark", 1, nargs=0, excl=_OPS),
    XtOpt("restore-mark", 2, nargs=0, excl=_OPS), XtOpt("left-shift-mark", 6),
    XtOpt("right-shift-mark", 7), XtOpt("ctmask", 9, excl=frozenset({11})),
    XtOpt("nfmask", 10, excl=frozenset({11})), XtOpt("mask", 11, excl=frozenset({9, 10})),
)


def build(given: list[Given], ctx: RuleContext) -> Connmark:
    seen = xt_collect("CONNMARK", OPTIONS, given)
    f = dict(mode=None, ctmark=0, ctmask=U32, nfmask=U32, shift_dir=ShiftDir.LEFT,
             shift_bits=0)
    for g in given:
        name = g.name
        if name == "set-xmark":
            f["ctmark"], f["ctmask"] = parse_val_mask(g, "CONNMARK")
            f["mode"] = ConnmarkMode.SET
        elif name == "set-mark":
            value, mask = parse_val_mask(g, "CONNMARK")
            f.update(mode=ConnmarkMode.SET, ctmark=value, ctmask=value | mask)
        elif name in ("and-mark", "or-mark", "xor-mark"):
            x = parse_uint_opt(g, "CONNMARK")
            mark, mask = {"and-mark": (0, ~x & U32), "or-mark": (x, x), "xor-mark": (x, 0)}[name]
            f.update(mode=ConnmarkMode.SET, ctmark=mark, ctmask=mask)
        elif name == "save-mark":
            f["mode"] = ConnmarkMode.SAVE
        elif name == "restore-mark":
            f["mode"] = ConnmarkMode.RESTORE
        elif name == "mask":
            f["nfmask"] = f["ctmask"] = parse_uint_opt(g, "CONNMARK")
        elif name in ("ctmask", "nfmask"):
            f[name] = parse_uint_opt(g, "CONNMARK")
        elif name in ("left-shift-mark", "right-shift-mark"):
            f["shift_bits"] = parse_uint_opt(g, "CONNMARK", 0, 32)
            f["shift_dir"] = ShiftDir.LEFT if name.startswith("left") else ShiftDir.RIGHT
    if f["mode"] is None:
        raise ctx_error(ctx, "CONNMARK target: No operation specified")
    xt_fcheck("CONNMARK", OPTIONS, seen, ctx)
    return Connmark(**f)


SPEC = ExtSpec("CONNMARK", "target", xt_opts(OPTIONS), build, Kernel())
