"""``-j LOG``: kernel log of the packet (extensions/libxt_LOG.c; kernel
net/netfilter/xt_LOG.c). Returns XT_CONTINUE.

``--log-level`` takes a syslog name (alert, crit, debug, emerg, error, info, notice, panic,
warning; exact, lower case) or a number 0-7; iptables-save prints the number and omits the
default 4. ``--log-prefix`` (at least one character) is cut to 29 bytes (``char prefix[30]``)
without an error. Flags print in the order --log-tcp-sequence, --log-tcp-options,
--log-ip-options, --log-uid, --log-macdecode, after the prefix and the level.
No table or hook restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..cnum import strtoui_all
from ..ir import Target
from ..util import save_string
from .base import ExtSpec, Given, Kernel, Opt, RuleContext
from .xtopt import check_once

DEFAULT_LEVEL = 4
PREFIX_SIZE = 30  # sizeof(struct xt_log_info.prefix)

LEVEL_NAMES = {"alert": 1, "crit": 2, "debug": 7, "emerg": 0, "error": 3, "info": 6,
               "notice": 5, "panic": 0, "warning": 4}


class LogFlag(enum.IntFlag):
    """XT_LOG_* (include/uapi/linux/netfilter/xt_LOG.h)."""

    TCPSEQ = 0x01
    TCPOPT = 0x02
    IPOPT = 0x04
    UID = 0x08
    MACDECODE = 0x20


_FLAG_OPTS = (("log-tcp-sequence", LogFlag.TCPSEQ), ("log-tcp-options", LogFlag.TCPOPT),
              ("log-ip-options", LogFlag.IPOPT), ("log-uid", LogFlag.UID),
              ("log-macdecode", LogFlag.MACDECODE))


def truncate_bytes(text: str, size: int) -> str:
    """What fits a NUL-terminated ``char[size]`` (strncpy and a final NUL): at most size-1
    bytes, cut in the middle of a UTF-8 sequence if need be (kept as surrogate escapes)."""
    raw = text.encode("utf-8", "surrogateescape")[:size - 1]
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Log(Target):
    NAME = "LOG"
    TERMINAL = False
    level: int = DEFAULT_LEVEL
    prefix: str = ""
    flags: LogFlag = LogFlag(0)

    def save(self) -> str:
        out = ""
        if self.prefix:
            out += f" --log-prefix {save_string(self.prefix)}"
        if self.level != DEFAULT_LEVEL:
            out += f" --log-level {self.level}"
        for name, flag in _FLAG_OPTS:
            if self.flags & flag:
                out += f" --{name}"
        return out


def build(given: list[Given], ctx: RuleContext) -> Log:
    check_once(given, "LOG")
    level, prefix, flags = DEFAULT_LEVEL, "", LogFlag(0)
    for g in given:
        if g.name == "log-level":
            value = LEVEL_NAMES.get(g.arg)
            if value is None:
                value = strtoui_all(g.arg, 0, 7)
                if value is None:
                    raise g.error(f"log level \"{g.arg}\" unknown")
            level = value
        elif g.name == "log-prefix":
            if not g.arg:
                raise g.error("Argument must have a minimum length of 1 characters")
            if "\n" in g.arg:
                raise g.error("Newlines not allowed in --log-prefix")
            prefix = truncate_bytes(g.arg, PREFIX_SIZE)
        else:
            flags |= dict(_FLAG_OPTS)[g.name]
    return Log(level, prefix, flags)


SPEC = ExtSpec("LOG", "target",
               (Opt("log-level"), Opt("log-prefix"), *(Opt(n, 0) for n, _ in _FLAG_OPTS)),
               build, Kernel())
