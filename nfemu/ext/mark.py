"""``-m mark [!] --mark value[/mask]`` (extensions/libxt_mark.c, kernel net/netfilter/xt_mark.c
mark_mt): matches when ``(skb->mark & mask) == value``, xor ``!``.

Also holds the small libxtables helpers the match modules of this group share: C strtoul(3)
and the generic option checks of libxtables' xtoptions.c (``xtables_option_parse`` and
``xtables_options_fcheck``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import ParseError
from ..ir import Match
from .base import ExtSpec, Given, Opt, RuleContext

ULONG_MAX = (1 << 64) - 1
_SPACE = " \t\n\v\f\r"


def strtoul(text: str, start: int = 0, base: int = 0) -> tuple[int, int, bool]:
    """C strtoul(text + start, &end, base) on a 64-bit machine: (value, end index, ERANGE).

    end == start when no digits were read. Leading white space and a sign are skipped; a
    minus negates modulo 2**64; an overflow gives ULONG_MAX and sets ERANGE."""
    i = start
    n = len(text)
    while i < n and text[i] in _SPACE:
        i += 1
    neg = False
    if i < n and text[i] in "+-":
        neg = text[i] == "-"
        i += 1
    if base in (0, 16) and text[i:i + 2] in ("0x", "0X") and i + 2 < n and \
            text[i + 2] in "0123456789abcdefABCDEF":
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if text[i:i + 1] == "0" else 10
    digits = "0123456789abcdef"[:base]
    j = i
    while j < n and text[j].lower() in digits:
        j += 1
    if j == i:
        return 0, start, False
    value = int(text[i:j], base)
    if value > ULONG_MAX:
        return ULONG_MAX, j, True
    if neg:
        value = (-value) & ULONG_MAX
    return value, j, False


def strtoui(text: str, start: int = 0, lo: int = 0, hi: int = 0xFFFFFFFF) -> tuple[int, int] | None:
    """xtables_strtoui(s, &end, ...): a number within [lo, hi] (a minus sign is refused);
    returns (value, end index) or None. The caller checks what follows."""
    i = start
    while i < len(text) and text[i] in _SPACE:
        i += 1
    if text[i:i + 1] == "-":
        return None
    value, end, erange = strtoul(text, start)
    if end == start or erange or not lo <= value <= hi:
        return None
    return value, end


def strtoui_all(text: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int | None:
    """xtables_strtoui(s, NULL, ...): the whole string must be the number."""
    got = strtoui(text, 0, lo, hi)
    if got is None or got[1] != len(text):
        return None
    return got[0]


# -- libxtables' generic option checks ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class XtOpt:
    """One ``struct xt_option_entry``: ``id`` groups aliases (the first entry of an id is
    the name iptables prints in its messages)."""

    name: str
    id: int
    nargs: int = 1
    invert: bool = False
    mand: bool = False
    excl: frozenset[int] = frozenset()
    also: frozenset[int] = frozenset()


def xt_opts(table: Sequence[XtOpt]) -> tuple[Opt, ...]:
    return tuple(Opt(e.name, e.nargs) for e in table)


def canonical(table: Sequence[XtOpt], id_: int) -> str:
    return next(e.name for e in table if e.id == id_)


def entry_of(table: Sequence[XtOpt], name: str) -> XtOpt:
    return next(e for e in table if e.name == name)


def xt_parse(ext: str, table: Sequence[XtOpt], g: Given, seen: dict[int, Given]) -> XtOpt:
    """xtables_option_parse(): the once-only and invert checks of one option."""
    e = entry_of(table, g.name)
    if e.id in seen:
        raise g.error(f"{ext}: option \"--{canonical(table, e.id)}\" can only be used once.")
    if g.inv and not e.invert:
        raise g.error(f"{ext}: option \"--{canonical(table, e.id)}\" cannot be inverted.")
    seen[e.id] = g
    return e


def xt_fcheck(ext: str, table: Sequence[XtOpt], seen: dict[int, Given], ctx: RuleContext) -> None:
    """xtables_options_fcheck(): mandatory options, mutual exclusion and ``also``, in the
    order of the option table."""
    for e in table:
        if e.mand and e.id not in seen:
            raise ParseError(f"{ext}: option \"--{e.name}\" must be specified", ctx.loc)
        if e.id not in seen:
            continue
        for i in range(32):
            if i == e.id or not any(o.id == i for o in table):
                continue
            if i in e.excl and i in seen:
                raise seen[i].error(f"{ext}: option \"--{e.name}\" cannot be used together "
                                    f"with \"--{canonical(table, i)}\".")
            if i in e.also and i not in seen:
                raise seen[e.id].error(f"{ext}: option \"--{e.name}\" also requires "
                                       f"\"--{canonical(table, i)}\".")


def xt_collect(ext: str, table: Sequence[XtOpt], given: Iterable[Given]) -> dict[int, Given]:
    seen: dict[int, Given] = {}
    for g in given:
        xt_parse(ext, table, g, seen)
    return seen


def parse_mark_mask(g: Given, ext: str) -> tuple[int, int]:
    """xtables_parse_mark_mask(): ``value[/mask]``, each a C number up to 2**32-1."""
    text = g.arg
    bad = f"{ext}: bad integer value for option \"--{g.name}\", or out of range."
    got = strtoui(text)
    if got is None:
        raise g.error(bad)
    value, end = got
    mask = 0xFFFFFFFF
    if text[end:end + 1] == "/":
        got = strtoui(text, end + 1)
        if got is None:
            raise g.error(bad)
        mask, end = got
    if end != len(text):
        raise g.error(f"{ext}: trailing garbage after value for option \"--{g.name}\".")
    return value, mask


# -- the mark match -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mark(Match):
    NAME = "mark"
    mark: int = 0
    mask: int = 0xFFFFFFFF
    invert: bool = False

    def save(self) -> str:
        inv = " !" if self.invert else ""
        if self.mask == 0xFFFFFFFF:
            return f"{inv} --mark {self.mark:#x}"
        return f"{inv} --mark {self.mark:#x}/{self.mask:#x}"


OPTIONS = (XtOpt("mark", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Mark:
    seen = xt_collect("mark", OPTIONS, given)
    xt_fcheck("mark", OPTIONS, seen, ctx)
    g = seen[0]
    value, mask = parse_mark_mask(g, "mark")
    return Mark(value, mask, g.inv)


SPEC = ExtSpec("mark", "match", xt_opts(OPTIONS), build)
