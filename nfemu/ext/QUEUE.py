"""``-j QUEUE``: the old standard verdict NF_QUEUE (queue 0). iptables-legacy loads it as the
standard target; iptables-nft 1.8.9 has no translation for it and asks the kernel for an
xtables target named QUEUE, which does not exist, so every such rule fails to load
(``RULE_APPEND failed (No such file or directory)``) although ``iptables-restore --test``
accepts it. There is no userspace extension file (libxtables' standard target); the kernel
side is the NF_QUEUE verdict of net/ipv4/netfilter/ip_tables.c.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Target
from .base import ExtSpec, Given, RuleContext


@dataclass(frozen=True, slots=True)
class Queue(Target):
    """NF_QUEUE to queue 0 (what iptables-legacy would load)."""

    NAME = "QUEUE"
    TERMINAL = True
    queuenum: int = 0


def build(given: list[Given], ctx: RuleContext) -> Queue:
    return Queue()


def check(value: Queue, table: str, hooks, rule) -> list[str]:
    return ["-j QUEUE is refused by iptables-nft 1.8.9: the nf_tables backend has no QUEUE "
            "verdict and the kernel has no xtables target of that name (RULE_APPEND failed: "
            "No such file or directory); use -j NFQUEUE --queue-num 0"]


SPEC = ExtSpec("QUEUE", "target", (), build, check=check)
