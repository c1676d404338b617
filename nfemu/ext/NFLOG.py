"""``-j NFLOG``: send the packet to a netlink log group (extensions/libxt_NFLOG.c; kernel
net/netfilter/xt_NFLOG.c). Returns XT_CONTINUE.

iptables-nft 1.8.9 turns NFLOG into a native nft ``log`` expression, so what survives is what
that expression holds: the group (0-65535, 0 not printed), the prefix (at least one character,
cut to 127 bytes), the snap length (``--nflog-size``, printed whenever given) and the queue
threshold (0-65535, 0 not printed). The deprecated ``--nflog-range`` is accepted (with a
warning), excludes ``--nflog-size`` and is lost. Printed order: prefix, group, size, threshold.
No table or hook restriction.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import engine as _engine
from ..ir import Target
from ..util import save_string
from .base import ExtSpec, Given, Kernel, RuleContext
from .LOG import log_line, truncate_bytes
from .xtopt import XtOpt, parse_uint_opt, xt_collect, xt_fcheck, xt_opts

PREFIX_SIZE = 128  # NF_LOG_PREFIXLEN of the nft log expression

# nflog_opts with the ids of libxt_NFLOG.c (O_GROUP, O_PREFIX, O_RANGE, O_SIZE, O_THRESHOLD)
OPTIONS = (XtOpt("nflog-group", 0), XtOpt("nflog-prefix", 1),
           XtOpt("nflog-range", 2, excl=frozenset({3})),
           XtOpt("nflog-size", 3, excl=frozenset({2})), XtOpt("nflog-threshold", 4))


@dataclass(frozen=True, slots=True)
class Nflog(Target):
    NAME = "NFLOG"
    TERMINAL = False
    group: int = 0
    prefix: str = ""
    size: int | None = None      # snap length; None: whole packet
    threshold: int = 0

    def apply(self, pkt, ev):
        """xt_NFLOG.c nflog_tg() (under iptables-nft the nft ``log group`` expression, same
        effect): the packet goes to nfnetlink_log group ``group`` (copy range ``size``,
        batching ``threshold``); XT_CONTINUE. Recorded as an NFLOG event whose ``line``
        describes the packet in the syslog logger's words (what ulogd would print; the
        kernel itself prints nothing)."""
        detail = {"group": self.group, "prefix": self.prefix}
        if self.size is not None:
            detail["size"] = self.size
        if self.threshold:
            detail["threshold"] = self.threshold
        detail["line"] = self.prefix + log_line(pkt, ev)
        ev.record("NFLOG", **detail)
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)

    def save(self) -> str:
        out = ""
        if self.prefix:
            out += f" --nflog-prefix {save_string(self.prefix)}"
        if self.group:
            out += f" --nflog-group {self.group}"
        if self.size is not None:
            out += f" --nflog-size {self.size}"
        if self.threshold:
            out += f" --nflog-threshold {self.threshold}"
        return out


def build(given: list[Given], ctx: RuleContext) -> Nflog:
    seen = xt_collect("NFLOG", OPTIONS, given)
    f: dict = {}
    for g in given:
        if g.name == "nflog-group":
            f["group"] = parse_uint_opt(g, "NFLOG", 0, 0xFFFF)
        elif g.name == "nflog-prefix":
            if not g.arg:
                raise g.error("Argument must have a minimum length of 1 characters")
            f["prefix"] = truncate_bytes(g.arg, PREFIX_SIZE)
        elif g.name == "nflog-range":
            parse_uint_opt(g, "NFLOG")  # "has never worked and is no longer supported"
        elif g.name == "nflog-size":
            f["size"] = parse_uint_opt(g, "NFLOG")
        elif g.name == "nflog-threshold":
            f["threshold"] = parse_uint_opt(g, "NFLOG", 0, 0xFFFF)
    xt_fcheck("NFLOG", OPTIONS, seen, ctx)
    return Nflog(**f)


SPEC = ExtSpec("NFLOG", "target", xt_opts(OPTIONS), build, Kernel())
