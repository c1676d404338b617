"""``-m nfacct --nfacct-name NAME``: count the packet in an extended accounting object; always
matches (libxt_nfacct.c; kernel net/netfilter/xt_nfacct.c and nfnetlink_acct.c).

The name is cut to 31 bytes (NFACCT_NAME_MAX - 1) as iptables copies it. iptables-save prints
``--nfacct-name`` followed by two spaces (xtables_save_string adds its own).

Kernel (nfacct_mt_checkentry): the accounting object must already exist (``nfacct add NAME``),
else the load fails with ENOENT. A fresh network namespace has none, and nfemu does not model
them yet, so ``check`` refuses every nfacct rule.

Evaluation (nfacct_mt): the object's counters grow and the match is true unless the object has
a quota (``nfacct add NAME --quota``) that is not exceeded yet. nfemu models objects without a
quota, which are what kube-proxy creates (``ct_state_invalid_dropped_pkts``,
``localhost_nps_accepted_pkts``): the match is always true; the counters are not kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..util import save_string
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import need, no_invert, single

NFACCT_NAME_MAX = 32


@dataclass(frozen=True, slots=True)
class Nfacct(Match):
    NAME = "nfacct"
    name: str = ""

    def save(self) -> str:
        return f" --nfacct-name  {save_string(self.name)}"

    def match(self, pkt, ev) -> bool:
        """xt_nfacct.c nfacct_mt(): nfnl_acct_update() counts the packet, then the result is
        ``nfnl_acct_overquota() != NFACCT_UNDERQUOTA``, which for an object without a quota
        (NFACCT_NO_QUOTA) is always true. Quotas and the counters are not modelled."""
        return True


def build(given: list[Given], ctx: RuleContext) -> Nfacct:
    g = single(given).get("nfacct-name")
    need(g is not None, ctx, "nfacct: option \"--nfacct-name\" must be specified")
    no_invert(g)
    if not g.arg:
        raise g.error("Argument must have a minimum length of 1 characters")
    raw = g.arg.encode("utf-8", "surrogateescape")[:NFACCT_NAME_MAX - 1]
    name = raw.decode("utf-8", "surrogateescape")
    if "\n" in name:
        raise g.error("Newlines not allowed in --nfacct-name")
    return Nfacct(name)


def check(value: Nfacct, table: str, hooks, rule) -> list[str]:
    return [f"nfacct object {value.name} does not exist (the kernel refuses the rule: No such "
            f"file or directory); if the node has it, say --nfacct {value.name} or "
            "--assume-objects"]


SPEC = ExtSpec("nfacct", "match", (Opt("nfacct-name"),), build, check=check)
