"""``-m helper [!] --helper NAME``: the connection's conntrack helper is NAME (``ftp``,
``sip``...) (extensions/libxt_helper.c; kernel net/netfilter/xt_helper.c). The name is at most 29
characters (the rest is cut). No kernel restriction beyond conntrack.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..util import save_string
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

NAME_LEN = 30


@dataclass(frozen=True, slots=True)
class Helper(Match):
    NAME = "helper"
    name: str = ""
    invert: bool = False

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --helper {save_string(self.name)}"


OPTIONS = (XtOpt("helper", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Helper:
    seen = xt_collect("helper", OPTIONS, given)
    xt_fcheck("helper", OPTIONS, seen, ctx)
    g = seen[0]
    return Helper(g.arg[:NAME_LEN - 1], g.inv)


SPEC = ExtSpec("helper", "match", xt_opts(OPTIONS), build)
