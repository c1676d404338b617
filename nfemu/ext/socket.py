"""``-m socket [--transparent] [--nowildcard] [--restore-skmark]``: a local socket matches the
packet (extensions/libxt_socket.c revision 3; kernel net/netfilter/xt_socket.c).

No option takes ``!``. iptables-save prints the flags in the order transparent, nowildcard,
restore-skmark. Kernel: only reachable from PREROUTING and INPUT (``.hooks``), any table.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Match
from .base import IN, PRE, ExtSpec, Given, Kernel, RuleContext
from .xtopt import collect_flags, flag_table, save_flags, xt_opts


class SocketFlag(enum.IntFlag):
    """XT_SOCKET_* (include/uapi/linux/netfilter/xt_socket.h)."""

    TRANSPARENT = 1 << 0
    NOWILDCARD = 1 << 1
    RESTORESKMARK = 1 << 2


_NAMES = (("transparent", SocketFlag.TRANSPARENT), ("nowildcard", SocketFlag.NOWILDCARD),
          ("restore-skmark", SocketFlag.RESTORESKMARK))


@dataclass(frozen=True, slots=True)
class Socket(Match):
    NAME = "socket"
    flags: SocketFlag = SocketFlag(0)

    def save(self) -> str:
        return save_flags(_NAMES, self.flags)


OPTIONS = flag_table(_NAMES)


def build(given: list[Given], ctx: RuleContext) -> Socket:
    return Socket(collect_flags("socket", OPTIONS, _NAMES, given, SocketFlag(0)))


SPEC = ExtSpec("socket", "match", xt_opts(OPTIONS), build,
               Kernel(hooks=frozenset({PRE, IN})))
