"""``-m rpfilter [--loose] [--validmark] [--accept-local] [--invert]``: reverse path filter
(extensions/libxt_rpfilter.c; kernel net/ipv4/netfilter/ipt_rpfilter.c and
net/ipv6/netfilter/ip6t_rpfilter.c).

The match looks the source address up as a destination (with the incoming interface unless
``--loose``, with the packet mark when ``--validmark``) and matches when the route leads back
out of the interface the packet came in on; ``--accept-local`` also passes local sources,
``--invert`` turns the result round. No option takes ``!``.

Kernel (rpfilter_check): only in the raw and mangle tables, only reachable from PREROUTING.
iptables-save prints the flags in the fixed order loose, validmark, accept-local, invert.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Match
from .base import PRE, ExtSpec, Given, Kernel, RuleContext
from .xtopt import collect_flags, flag_table, save_flags, xt_opts


class RpfFlag(enum.IntFlag):
    """XT_RPFILTER_* (include/uapi/linux/netfilter/xt_rpfilter.h)."""

    LOOSE = 1 << 0
    VALID_MARK = 1 << 1
    ACCEPT_LOCAL = 1 << 2
    INVERT = 1 << 3


_NAMES = (("loose", RpfFlag.LOOSE), ("validmark", RpfFlag.VALID_MARK),
          ("accept-local", RpfFlag.ACCEPT_LOCAL), ("invert", RpfFlag.INVERT))


@dataclass(frozen=True, slots=True)
class Rpfilter(Match):
    NAME = "rpfilter"
    flags: RpfFlag = RpfFlag(0)

    def save(self) -> str:
        return save_flags(_NAMES, self.flags)


OPTIONS = flag_table(_NAMES)


def build(given: list[Given], ctx: RuleContext) -> Rpfilter:
    return Rpfilter(collect_flags("rpfilter", OPTIONS, _NAMES, given, RpfFlag(0)))


SPEC = ExtSpec("rpfilter", "match", xt_opts(OPTIONS), build,
               Kernel(tables=frozenset({"raw", "mangle"}), hooks=frozenset({PRE})))
