"""``-m connmark [!] --mark VALUE[/MASK]``: ((ctmark & MASK) == VALUE) xor ``!``
(libxt_connmark.c revision 1; kernel net/netfilter/xt_connmark.c connmark_mt).

VALUE and MASK are kept as given (VALUE is not masked); MASK defaults to 0xffffffff.
iptables-save prints ``0xVALUE`` or ``0xVALUE/0xMASK`` (xtables_print_val_mask). No table or
hook restriction (the kernel takes a conntrack reference for the namespace).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, Opt, RuleContext
from .conntrack import tracked
from .xtopt import need, parse_val_mask, single

U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Connmark(Match):
    NAME = "connmark"
    mark: int = 0
    mask: int = U32
    inv: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_connmark.c connmark_mt(): no conntrack entry (``nf_ct_get`` NULL: no entry,
        INVALID or untracked) never matches, even with ``!``; else
        ``((ct->mark & mask) == mark) ^ invert``."""
        ct = tracked(ev)
        if ct is None:
            return False
        return ((ct.mark & self.mask) == self.mark) != self.inv

    def save(self) -> str:
        value = f"0x{self.mark:x}" if self.mask == U32 else f"0x{self.mark:x}/0x{self.mask:x}"
        return f"{' !' if self.inv else ''} --mark {value}"


def build(given: list[Given], ctx: RuleContext) -> Connmark:
    g = single(given).get("mark")
    need(g is not None, ctx, "connmark: option \"--mark\" must be specified")
    mark, mask = parse_val_mask(g, "connmark")
    return Connmark(mark, mask, g.inv)


SPEC = ExtSpec("connmark", "match", (Opt("mark"),), build)
