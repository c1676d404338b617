"""libxtables' generic option handling (xtables/xtoptions.c), shared by the extension modules.

- the option table checks: ``xtables_option_parse`` (an option given twice, ``!`` where it is
  not allowed) and ``xtables_options_fcheck`` (mandatory options, ``cannot be used together
  with``, ``also requires``), messages prefixed by the extension name;
- the older per-extension checks that print no prefix (``single``, ``no_invert``, ``need``);
- the number option types: XTTYPE_UINT8/16/32 (``parse_uint_opt``), XTTYPE_UINT*RC
  (``parse_uint_range``), XTTYPE_MARKMASK32 / ``xtables_parse_val_mask`` (``parse_val_mask``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from ..cnum import strtoui
from ..errors import ParseError
from .base import Given, Opt, RuleContext

U32 = 0xFFFFFFFF


# -- xtables_option_parse / xtables_options_fcheck ---------------------------------------

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
    """The ``Opt`` list of an ``ExtSpec`` for an option table."""
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


def xt_collect(ext: str, table: Sequence[XtOpt], given: Iterable[Given]) -> dict[int, Given]:
    """xt_parse() of every option given: option id -> the option."""
    seen: dict[int, Given] = {}
    for g in given:
        xt_parse(ext, table, g, seen)
    return seen


def xt_fcheck(ext: str, table: Sequence[XtOpt], seen: dict[int, Given], ctx: RuleContext) -> None:
    """xtables_options_fcheck(): mandatory options, mutual exclusion and ``also``, in the
    order of the option table, each option's others in the order of their ids (0-31)."""
    ids = {o.id for o in table}
    for e in table:
        if e.mand and e.id not in seen:
            raise ParseError(f"{ext}: option \"--{e.name}\" must be specified", ctx.loc)
        if e.id not in seen or not (e.excl or e.also):
            continue
        for i in sorted(e.excl | e.also):
            if i == e.id or i not in ids or not 0 <= i < 32:
                continue
            if i in e.excl and i in seen:
                raise seen[i].error(f"{ext}: option \"--{e.name}\" cannot be used together "
                                    f"with \"--{canonical(table, i)}\".")
            if i in e.also and i not in seen:
                raise seen[e.id].error(f"{ext}: option \"--{e.name}\" also requires "
                                       f"\"--{canonical(table, i)}\".")


def check_once(given: list[Given], ext: str) -> None:
    """xtables_option_parse() for an extension whose options are all distinct and none of
    which takes ``!`` (so it needs no option table)."""
    seen: set[str] = set()
    for g in given:
        if g.name in seen:
            raise g.error(f"{ext}: option \"--{g.name}\" can only be used once.")
        seen.add(g.name)
        if g.inv:
            raise g.error(f"{ext}: option \"--{g.name}\" cannot be inverted.")


def flag_table(names: Sequence[tuple[str, int]]) -> tuple[XtOpt, ...]:
    """The option table of an extension whose options are all flags (no argument, no ``!``)
    setting one bit each: ``names`` is (option, bit) in id order."""
    return tuple(XtOpt(name, i, 0) for i, (name, _) in enumerate(names))


def collect_flags(ext: str, table: Sequence[XtOpt], names: Sequence[tuple[str, int]],
                  given: Iterable[Given], flags):
    """xt_collect() of a flag_table(): ``flags`` with the bit of each option given added."""
    for i in xt_collect(ext, table, given):
        flags |= names[i][1]
    return flags


def save_flags(names: Sequence[tuple[str, int]], flags: int) -> str:
    """How such an extension saves: `` --option`` for each bit set, in the order of ``names``."""
    return "".join(f" --{name}" for name, bit in names if flags & bit)


def ctx_error(ctx: RuleContext, message: str) -> ParseError:
    """An error about the whole extension (its final check), located at ``-m/-j NAME``."""
    return ParseError(message, ctx.loc)


# -- the checks of extensions that print no prefix -----------------------------------------

def single(given: list[Given], names: Iterable[str] = ()) -> dict[str, Given]:
    """Index options by name; an option given twice is an error, as in iptables
    (``multiple --X flags not allowed`` / xtables_option_parse's XTOPT_MULTI check)."""
    seen: dict[str, Given] = {}
    for g in given:
        if g.name in seen:
            raise g.error(f"option \"--{g.name}\" can only be used once")
        seen[g.name] = g
    return seen


def no_invert(g: Given) -> None:
    if g.inv:
        raise g.error(f"option \"--{g.name}\" cannot be inverted")


def need(cond: bool, g: Given | RuleContext, message: str) -> None:
    if not cond:
        raise ParseError(message, g.loc)


# -- number option types -------------------------------------------------------------------

def parse_uint_opt(g: Given, ext: str, lo: int = 0, hi: int = U32) -> int:
    """XTTYPE_UINT8/16/32 (xtopt_parse_int): the whole argument is a number in [lo, hi]."""
    got = strtoui(g.arg, 0, lo, hi)
    if got is None or got[1] != len(g.arg):
        raise g.error(f"{ext}: bad value for option \"--{g.name}\", or out of range "
                      f"({lo}-{hi}).")
    return got[0]


def parse_uint_range(g: Given, ext: str, hi: int) -> tuple[int, int]:
    """XTTYPE_UINT*RC (xtopt_parse_mint): ``N``, ``N:M``, ``:M`` (0:M), ``N:`` (N:max), ``:``;
    one value gives N:N; no ordering check. The messages are libxtables'."""
    text = g.arg
    values: list[int] = []
    pos = 0
    while True:
        if len(values) == 2:
            raise g.error(f"{ext}: Too many components for option \"--{g.name}\" (max: 2)")
        if pos >= len(text) or text[pos] == ":":
            end = pos
            value = hi if len(values) == 1 else 0
        else:
            got = strtoui(text, pos, 0, hi)
            if got is None:
                raise g.error(f"{ext}: bad value for option \"--{g.name}\" near "
                              f"\"{text[pos:]}\", or out of range (0-{hi}).")
            value, end = got
            if end < len(text) and text[end] != ":":
                raise g.error(f"{ext}: Argument to \"--{g.name}\" has unexpected characters "
                              f"near \"{text[end:]}\".")
        values.append(value)
        if end >= len(text):
            break
        pos = end + 1
    return values[0], values[-1]


def parse_val_mask(g: Given, ext: str,
                   name2id: Callable[[str], int | None] | None = None) -> tuple[int, int]:
    """xtables_parse_val_mask() (and so XTTYPE_MARKMASK32, xtables_parse_mark_mask(), which
    passes no name map): ``value[/mask]``, each a C number up to 2**32-1, the mask ~0 by
    default. With ``name2id`` (the lmap), a word that is not a number is looked up."""
    text = g.arg
    got = strtoui(text)
    if got is not None:
        value, end = got
        if end == len(text):
            return value, U32
        if text[end] == "/":
            got = strtoui(text, end + 1)
            if got is None:
                raise g.error(f"{ext}: bad integer value for option \"--{g.name}\", or out of "
                              "range.")
            mask, end = got
            if end == len(text):
                return value, mask
            raise g.error(f"{ext}: trailing garbage after value for option \"--{g.name}\".")
        if name2id is None:
            raise g.error(f"{ext}: trailing garbage after value for option \"--{g.name}\".")
    elif name2id is None:
        raise g.error(f"{ext}: bad integer value for option \"--{g.name}\", or out of range.")
    value = name2id(text)
    if value is None:
        raise g.error(f"{ext}: could not map name {text} to an integer value for option "
                      f"\"--{g.name}\".")
    return value, U32
