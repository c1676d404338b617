"""``-j NFQUEUE``: hand the packet to a userspace queue (extensions/libxt_NFQUEUE.c revision 3,
kernel net/netfilter/xt_NFQUEUE.c ``nfqueue_tg_v3``). A verdict: the packet leaves the
traversal (NF_QUEUE; with --queue-bypass it is accepted when no program listens).

Stored as ``xt_NFQ_info_v3``: the first queue number, the number of queues (1 unless
--queue-balance) and the flags. iptables-save prints ``--queue-balance F:L`` when there is more
than one queue, else ``--queue-num N`` (always, default 0), then ``--queue-bypass`` and
``--queue-cpu-fanout``.

Userspace: --queue-num and --queue-balance exclude each other, --queue-cpu-fanout needs
--queue-balance, the balance range needs two parts with first < last. Kernel: the number of
queues is a u16, so ``0:65535`` (65536 queues) wraps to 0 and the load fails (EINVAL). No table
or hook restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from .base import ExtSpec, Given, RuleContext
from .xtopt import XtOpt, parse_uint_opt, parse_uint_range, xt_fcheck, xt_opts, xt_parse


class NfqFlag(enum.IntFlag):
    """NFQ_FLAG_* (include/uapi/linux/netfilter/xt_NFQUEUE.h)."""

    BYPASS = 0x01
    CPU_FANOUT = 0x02


@dataclass(frozen=True, slots=True)
class Nfqueue(Target):
    """xt_NFQ_info_v3: queues ``queuenum .. queuenum + queues_total - 1``."""

    NAME = "NFQUEUE"
    TERMINAL = True
    queuenum: int = 0
    queues_total: int = 1     # u16 as the kernel gets it (0 only from the wrapped 0:65535)
    flags: NfqFlag = NfqFlag(0)

    @property
    def bypass(self) -> bool:
        return bool(self.flags & NfqFlag.BYPASS)

    def apply(self, pkt, ev):
        """xt_NFQUEUE.c nfqueue_tg_v3(): NF_QUEUE_NR(queue), with
        NF_VERDICT_FLAG_QUEUE_BYPASS for --queue-bypass. The verdict is QUEUE: nfemu takes a
        program to be listening, and what it answers is outside the model. With
        --queue-balance the queue is nfqueue_hash() of the addresses under a boot-time random
        seed (or the CPU number with --queue-cpu-fanout), so only the range is recorded.
        Without a listener the kernel drops the packet, or with --queue-bypass lets it go
        on to the next table (nf_hook_slow: nf_queue() returns 1), which the event notes."""
        detail: dict = {}
        if self.queues_total > 1:
            detail["queue"] = f"{self.queuenum}-{self.queuenum + self.queues_total - 1}"
            detail["chosen_by"] = ("cpu" if self.flags & NfqFlag.CPU_FANOUT
                                   else "hash of the addresses (random seed)")
        else:
            detail["queue"] = self.queuenum
        detail["no_listener"] = ("accepted by this table (--queue-bypass)" if self.bypass
                                 else "dropped")
        ev.record("NFQUEUE", **detail)
        return _engine.TargetResult(_engine.Verdict.QUEUE, pkt)

    def save(self) -> str:
        if self.queues_total > 1:
            out = f" --queue-balance {self.queuenum}:{self.queuenum + self.queues_total - 1}"
        else:
            out = f" --queue-num {self.queuenum}"
        if self.flags & NfqFlag.BYPASS:
            out += " --queue-bypass"
        if self.flags & NfqFlag.CPU_FANOUT:
            out += " --queue-cpu-fanout"
        return out


# O_QUEUE_NUM, O_QUEUE_BALANCE, O_QUEUE_BYPASS, O_QUEUE_CPU_FANOUT
OPTIONS = (
    XtOpt("queue-num", 0, excl=frozenset({1})),
    XtOpt("queue-balance", 1, excl=frozenset({0})),
    XtOpt("queue-bypass", 2, nargs=0),
    XtOpt("queue-cpu-fanout", 3, nargs=0, also=frozenset({1})),
)


def build(given: list[Given], ctx: RuleContext) -> Nfqueue:
    seen: dict[int, Given] = {}
    queuenum, total, flags = 0, 1, NfqFlag(0)
    for g in given:
        e = xt_parse("NFQUEUE", OPTIONS, g, seen)
        if e.id == 0:
            queuenum = parse_uint_opt(g, "NFQUEUE", 0, 0xFFFF)
        elif e.id == 1:
            first, last = parse_uint_range(g, "NFQUEUE", 0xFFFF)
            if g.arg.count(":") != 1:
                raise g.error(f"Bad range \"{g.arg}\"")
            if first >= last:
                raise g.error(f"{first} should be less than {last}")
            queuenum, total = first, (last - first + 1) & 0xFFFF
        elif e.id == 2:
            flags |= NfqFlag.BYPASS
        else:
            flags |= NfqFlag.CPU_FANOUT
    xt_fcheck("NFQUEUE", OPTIONS, seen, ctx)
    return Nfqueue(queuenum, total, flags)


def check(value: Nfqueue, table: str, hooks, rule) -> list[str]:
    """nfqueue_tg_check(): the u16 queue count may not be 0."""
    if value.queues_total == 0:
        return ["-j NFQUEUE --queue-balance: 65536 queues do not fit the kernel's 16-bit queue "
                "count (kernel: \"number of total queues is 0\", EINVAL)"]
    return []


SPEC = ExtSpec("NFQUEUE", "target", xt_opts(OPTIONS), build, check=check)
