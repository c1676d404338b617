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

Revision 2 has no table or hook restriction in the kernel. This module also holds the small
libxtables parsing helpers (strtoul with an end pointer, XTTYPE_UINT32, XTTYPE_MARKMASK32, the
option-table exclusion check) that the other target modules of this group share.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..ir import Target
from ..errors import ParseError
from .base import ExtSpec, Given, Kernel, Opt, RuleContext

U32 = 0xFFFFFFFF

_STRTOUL = re.compile(r"[ \t\n\v\f\r]*\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def c_strtoul(text: str) -> tuple[int | None, str]:
    """strtoul(text, &end, 0) as libxtables' xtables_strtoul_base() uses it: the value of the
    longest numeric prefix and the rest of the string. ``None`` when no digits were read or the
    number is negative (xtables refuses a leading '-')."""
    m = _STRTOUL.match(text)
    if not m:
        return None, text
    digits = m.group(1)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits, 8)
    else:
        value = int(digits)
    return value, text[m.end():]


def strtoui_prefix(text: str, lo: int, hi: int) -> tuple[int | None, str]:
    """xtables_strtoui(text, &end, &v, lo, hi): the value (None when out of [lo, hi] or not a
    number) and the rest after the numeric prefix."""
    value, rest = c_strtoul(text)
    if value is None or value < lo or value > hi:
        return None, rest
    return value, rest


def parse_uint_opt(g: Given, ext: str, lo: int = 0, hi: int = U32) -> int:
    """XTTYPE_UINT8/16/32 (xtopt_parse_int): the whole argument is a number in [lo, hi]."""
    value, rest = strtoui_prefix(g.arg, lo, hi)
    if value is None or rest:
        raise g.error(f"{ext}: bad value for option \"--{g.name}\", or out of range "
                      f"({lo}-{hi}).")
    return value


def parse_markmask(g: Given, ext: str) -> tuple[int, int]:
    """XTTYPE_MARKMASK32 (xtopt_parse_markmask): ``value[/mask]``, mask defaults to ~0."""
    value, rest = strtoui_prefix(g.arg, 0, U32)
    if value is None:
        raise g.error(f"{ext}: bad integer value for option \"--{g.name}\", or out of range.")
    mask = U32
    if rest.startswith("/"):
        mask, rest = strtoui_prefix(rest[1:], 0, U32)
        if mask is None:
            raise g.error(f"{ext}: bad integer value for option \"--{g.name}\", or out of "
                          "range.")
    if rest:
        raise g.error(f"{ext}: trailing garbage after value for option \"--{g.name}\".")
    return value, mask


def check_once(given: list[Given], ext: str) -> None:
    """xtables_option_parse(): an option given twice, or negated when it cannot be."""
    seen: set[str] = set()
    for g in given:
        if g.name in seen:
            raise g.error(f"{ext}: option \"--{g.name}\" can only be used once.")
        seen.add(g.name)
        if g.inv:
            raise g.error(f"{ext}: option \"--{g.name}\" cannot be inverted.")


def check_exclusions(given: list[Given], ext: str, table: Sequence[str],
                     excl: dict[str, Sequence[str]], loc_given: Given | None = None) -> None:
    """xtables_options_fcheck(): walk the option table in its order; the first given option
    that excludes another given one is reported with the first such other option (in the
    order of option ids, which ``excl`` lists)."""
    names = {g.name: g for g in given}
    for name in table:
        if name not in names:
            continue
        for other in excl.get(name, ()):
            if other != name and other in names:
                g = loc_given or names[other]
                raise g.error(f"{ext}: option \"--{name}\" cannot be used together with "
                              f"\"--{other}\".")


@dataclass(frozen=True, slots=True)
class Mark(Target):
    """xt_mark_tginfo2: the new mark is ``(mark & ~mask) ^ value``."""

    NAME = "MARK"
    TERMINAL = False
    value: int = 0
    mask: int = U32

    def save(self) -> str:
        return f" --set-xmark 0x{self.value:x}/0x{self.mask:x}"

    def apply(self, mark: int) -> int:
        """The packet mark after this target (mark_tg)."""
        return ((mark & ~self.mask) ^ self.value) & U32


# option ids in libxt_MARK.c (O_SET_MARK, O_SET_XMARK, O_AND_MARK, O_OR_MARK, O_XOR_MARK) and
# the table order of mark_tg_opts
_OPS_BY_ID = ("set-mark", "set-xmark", "and-mark", "or-mark", "xor-mark")
_TABLE = ("set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark")


def build(given: list[Given], ctx: RuleContext) -> Mark:
    check_once(given, "MARK")
    result: tuple[int, int] | None = None
    for g in given:
        if g.name == "set-xmark":
            result = parse_markmask(g, "MARK")
        elif g.name == "set-mark":
            value, mask = parse_markmask(g, "MARK")
            result = (value, value | mask)
        else:
            x = parse_uint_opt(g, "MARK")
            result = {"and-mark": (0, ~x & U32), "or-mark": (x, x),
                      "xor-mark": (x, 0)}[g.name]
    if result is None:
        raise ctx_error(ctx, "MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is "
                             "required")
    check_exclusions(given, "MARK", _TABLE, {name: _OPS_BY_ID for name in _TABLE})
    return Mark(*result)


def ctx_error(ctx: RuleContext, message: str) -> ParseError:
    """An error about the whole extension (its final check), located at ``-j NAME``."""
    return ParseError(message, ctx.loc)


SPEC = ExtSpec("MARK", "target", tuple(Opt(name) for name in _TABLE), build, Kernel())
