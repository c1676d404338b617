"""``-m helper [!] --helper NAME``: the connection's conntrack helper is NAME (``ftp``,
``sip``...) (extensions/libxt_helper.c; kernel net/netfilter/xt_helper.c). The name is at most 29
characters (the rest is cut). No kernel restriction beyond conntrack.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..util import save_string
from .base import ExtSpec, Given, RuleContext
from .conntrack import CtState, CtStatus
from .u32 import not_evaluable
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

NAME_LEN = 30


@dataclass(frozen=True, slots=True)
class Helper(Match):
    NAME = "helper"
    name: str = ""
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_helper.c helper_mt(): the helper of the connection's *master* (the connection
        that expected this one: an FTP data connection's master is the control connection
        with the ftp helper), not the connection's own helper. Without a conntrack entry or
        without a master the result is ``!``; with one, an empty name matches any helper,
        else the master helper's name must be a prefix of the rule's name
        (``strncmp(helper->name, name, strlen(helper->name))``), xor ``!``.

        nfemu's single-packet conntrack view knows whether a connection has a master only
        from its status: a connection that is not IPS_EXPECTED and not RELATED has none (the
        first packet of an expected connection is RELATED, and the connection keeps the
        IPS_EXPECTED bit). A RELATED or expected connection's master and its helper are not
        in the view: NotEvaluable."""
        ct = ev.ct
        if ct is None or ct.untracked or ct.state & CtState.INVALID:
            return self.invert
        if ct.status & CtStatus.EXPECTED or ct.state & CtState.RELATED:
            raise not_evaluable(
                "-m helper tests the helper of the connection's master (the connection that "
                "expected it), which nfemu's single-packet conntrack view does not hold "
                f"({ev.table} {ev.chain} rule {ev.rule})")
        return self.invert

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --helper {save_string(self.name)}"


OPTIONS = (XtOpt("helper", 0, invert=True, mand=True),)


def build(given: list[Given], ctx: RuleContext) -> Helper:
    seen = xt_collect("helper", OPTIONS, given)
    xt_fcheck("helper", OPTIONS, seen, ctx)
    g = seen[0]
    return Helper(g.arg[:NAME_LEN - 1], g.inv)


SPEC = ExtSpec("helper", "match", xt_opts(OPTIONS), build)
