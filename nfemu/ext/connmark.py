"""``-m connmark [!] --mark VALUE[/MASK]``: ((ctmark & MASK) == VALUE) xor ``!``
(libxt_connmark.c revision 1; kernel net/netfilter/xt_connmark.c connmark_mt).

VALUE and MASK are kept as given (VALUE is not masked); MASK defaults to 0xffffffff.
iptables-save prints ``0xVALUE`` or ``0xVALUE/0xMASK`` (xtables_print_val_mask). No table or
hook restriction (the kernel takes a conntrack reference for the namespace).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, Opt, RuleContext, need, single
from .length import xt_strtoul

U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Connmark(Match):
    NAME = "connmark"
    mark: int = 0
    mask: int = U32
    inv: bool = False

    def save(self) -> str:
        value = f"0x{self.mark:x}" if self.mask == U32 else f"0x{self.mark:x}/0x{self.mask:x}"
        return f"{' !' if self.inv else ''} --mark {value}"


def parse_val_mask(g: Given, ext: str) -> tuple[int, int]:
    """xtables_parse_val_mask() without a name map: ``VALUE[/MASK]``, C numbers."""
    text = g.arg
    bad = g.error(f"{ext}: bad integer value for option \"--{g.name}\", or out of range.")
    garbage = g.error(f"{ext}: trailing garbage after value for option \"--{g.name}\".")
    got = xt_strtoul(text, 0, 0, U32)
    if got is None:
        raise bad
    value, end = got
    if end == len(text):
        return value, U32
    if text[end] != "/":
        raise garbage
    got = xt_strtoul(text, end + 1, 0, U32)
    if got is None:
        raise bad
    mask, end = got
    if end != len(text):
        raise garbage
    return value, mask


def build(given: list[Given], ctx: RuleContext) -> Connmark:
    g = single(given).get("mark")
    need(g is not None, ctx, "connmark: option \"--mark\" must be specified")
    mark, mask = parse_val_mask(g, "connmark")
    return Connmark(mark, mask, g.inv)


SPEC = ExtSpec("connmark", "match", (Opt("mark"),), build)
