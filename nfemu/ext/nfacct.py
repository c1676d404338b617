"""``-m nfacct --nfacct-name NAME``: count the packet in an extended accounting object; always
matches (libxt_nfacct.c; kernel net/netfilter/xt_nfacct.c and nfnetlink_acct.c).

The name is cut to 31 bytes (NFACCT_NAME_MAX - 1) as iptables copies it. iptables-save prints
``--nfacct-name`` followed by two spaces (xtables_save_string adds its own).

Kernel (nfacct_mt_checkentry): the accounting object must already exist (``nfacct add NAME``),
else the load fails with ENOENT. A fresh network namespace has none, and nfemu does not model
them yet, so ``check`` refuses every nfacct rule.
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
    return [f"nfacct object {value.name} does not exist (nfemu knows no nfacct objects yet; "
            "the kernel refuses the rule: No such file or directory)"]


SPEC = ExtSpec("nfacct", "match", (Opt("nfacct-name"),), build, check=check)
