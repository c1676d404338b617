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
from .mark import XtOpt, xt_collect, xt_opts


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
        return "".join(f" --{name}" for name, bit in _NAMES if self.flags & bit)


OPTIONS = tuple(XtOpt(name, i, 0) for i, (name, _) in enumerate(_NAMES))


def build(given: list[Given], ctx: RuleContext) -> Socket:
    seen = xt_collect("socket", OPTIONS, given)
    flags = SocketFlag(0)
    for i in seen:
        flags |= _NAMES[i][1]
    return Socket(flags)


SPEC = ExtSpec("socket", "match", xt_opts(OPTIONS), build,
               Kernel(hooks=frozenset({PRE, IN})))
