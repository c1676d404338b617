"""What every extension module provides.

An extension module (``nfemu/ext/NAME.py``) mirrors a pair of files: iptables'
``extensions/libxt_NAME.c`` (options, parsing, saving) and the kernel's
``net/netfilter/xt_NAME.c`` (which tables and hooks allow it, what it needs from the rule).
It defines a frozen dataclass for its IR value and one ``SPEC`` describing it. The option
checks and parsers they share are in xtopt.py (libxtables' xtoptions.c) and xthost.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import Location, ParseError
from ..ir import Family

PRE, IN, FWD, OUT, POST = "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"
ALL_HOOKS = frozenset({PRE, IN, FWD, OUT, POST})


@dataclass(frozen=True, slots=True)
class Opt:
    """One long option of an extension, as in its ``struct option`` / ``xt_option_entry``.

    ``nargs``: 0 for a flag, 1 for one argument, 2 when the parser also takes the next word
    (``--tcp-flags MASK COMP``)."""

    name: str
    nargs: int = 1


@dataclass(frozen=True, slots=True)
class Given:
    """One option as it was given on a rule line."""

    name: str
    inv: bool
    args: tuple[str, ...]
    loc: Location

    @property
    def arg(self) -> str:
        return self.args[0]

    def error(self, message: str) -> ParseError:
        return ParseError(message, self.loc)


@dataclass(slots=True)
class RuleContext:
    """What an extension may look at while parsing: the rule's generic part so far."""

    family: Family
    table: str
    proto: int
    proto_inv: bool
    loc: Location          # where the extension was named (-m NAME / -j NAME)
    proto_given: bool = False


@dataclass(frozen=True, slots=True)
class Kernel:
    """What the kernel's checkentry enforces at load time (``xt_check_match``/``_target``)."""

    tables: frozenset[str] | None = None    # xt_*.table: only in these tables
    hooks: frozenset[str] | None = None     # xt_*.hooks: only reachable from these hooks
    proto: int | None = None                # xt_*.proto: rule must say -p PROTO, not inverted


@dataclass(frozen=True)
class ExtSpec:
    """The registry entry of one extension."""

    name: str
    kind: str                                    # "match" or "target"
    options: tuple[Opt, ...]
    build: Callable[[list[Given], RuleContext], object]
    kernel: Kernel = Kernel()
    #: extra load-time checks that depend on the place of the rule:
    #: check(value, table, hooks_reaching, rule) -> list of messages
    check: Callable[..., list[str]] | None = None
    families: frozenset[Family] = frozenset({Family.IPV4, Family.IPV6})
    aliases: tuple[str, ...] = ()
    fields: dict = field(default_factory=dict)
