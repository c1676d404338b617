"""``-m cpu [!] --cpu N``: the packet is handled by CPU N (extensions/libxt_cpu.c; kernel
net/netfilter/xt_cpu.c). No kernel restriction."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, parse_uint_opt, xt_collect, xt_fcheck, xt_opts


@dataclass(frozen=True, slots=True)
class Cpu(Match):
    NAME = "cpu"
    cpu: int = 0
    invert: bool = False

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --cpu {self.cpu}"


OPTIONS = (XtOpt("cpu", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Cpu:
    seen = xt_collect("cpu", OPTIONS, given)
    xt_fcheck("cpu", OPTIONS, seen, ctx)
    g = seen[0]
    return Cpu(parse_uint_opt(g, "cpu"), g.inv)


SPEC = ExtSpec("cpu", "match", xt_opts(OPTIONS), build)
