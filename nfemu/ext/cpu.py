"""``-m cpu [!] --cpu N``: the packet is handled by CPU N (extensions/libxt_cpu.c; kernel
net/netfilter/xt_cpu.c). No kernel restriction.

Not evaluated: which CPU runs the hook depends on the NIC's queues, RPS/RFS and the
scheduler at the moment the packet arrives, none of which nfemu knows (:meth:`Cpu.match`
raises NotEvaluable)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .u32 import not_evaluable
from .xtopt import XtOpt, parse_uint_opt, xt_collect, xt_fcheck, xt_opts


@dataclass(frozen=True, slots=True)
class Cpu(Match):
    NAME = "cpu"
    cpu: int = 0
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_cpu.c cpu_mt(): ``(cpu == smp_processor_id()) ^ invert``. The processor is not
        a property of the packet (it follows the receive queue, RPS and the scheduler), so
        nfemu does not guess it: NotEvaluable. (A rule whose --cpu names a processor the
        machine does not have never matches, but nfemu does not know the processor count
        either.)"""
        raise not_evaluable(
            f"-m cpu{self.save()}: the CPU that handles a packet (smp_processor_id()) is not "
            f"known offline ({ev.table} {ev.chain} rule {ev.rule})")

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --cpu {self.cpu}"


OPTIONS = (XtOpt("cpu", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Cpu:
    seen = xt_collect("cpu", OPTIONS, given)
    xt_fcheck("cpu", OPTIONS, seen, ctx)
    g = seen[0]
    return Cpu(parse_uint_opt(g, "cpu"), g.inv)


SPEC = ExtSpec("cpu", "match", xt_opts(OPTIONS), build)
