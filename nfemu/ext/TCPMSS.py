"""``-j TCPMSS``: rewrite the MSS option of TCP SYN packets (extensions/libxt_TCPMSS.c; kernel
net/netfilter/xt_TCPMSS.c). Returns XT_CONTINUE.

Stored as ``xt_tcpmss_info.mss``: the value, or 0xFFFF (XT_TCPMSS_CLAMP_PMTU) for
--clamp-mss-to-pmtu. The two options do not exclude each other in iptables 1.8.9: the last one
given wins (``--set-mss 1400 --clamp-mss-to-pmtu`` saves as ``--clamp-mss-to-pmtu``).
--set-mss is 0-65515 (IPv4) or 0-65495 (IPv6).

Kernel: ``.proto = IPPROTO_TCP`` (the rule must say ``-p tcp``, not negated). --clamp-mss-to-pmtu
is refused in a rule of a built-in chain other than FORWARD, OUTPUT and POSTROUTING. Under
nf_tables (nft_compat) the hook mask is 0 when a rule is added to a user chain and only the
target's fixed ``.hooks`` (none) are checked later, so a clamping rule in a user chain loads
even when the chain is reached from PREROUTING or INPUT (seen on 6.18); for the same reason the
"Only works on TCP SYN packets" check (a tcp --syn/--tcp-flags match) is skipped altogether.
No table restriction.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import BUILTIN_CHAINS, Family, Target
from ..protocols import TCP
from .base import FWD, OUT, POST, ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, ctx_error, parse_uint_opt, xt_fcheck, xt_opts, xt_parse

CLAMP_PMTU = 0xFFFF  # XT_TCPMSS_CLAMP_PMTU
CLAMP_HOOKS = frozenset({FWD, OUT, POST})


@dataclass(frozen=True, slots=True)
class Tcpmss(Target):
    """xt_tcpmss_info: the MSS to set, or CLAMP_PMTU (path MTU minus the headers)."""

    NAME = "TCPMSS"
    TERMINAL = False
    mss: int = CLAMP_PMTU

    @property
    def clamp_to_pmtu(self) -> bool:
        return self.mss == CLAMP_PMTU

    def save(self) -> str:
        return " --clamp-mss-to-pmtu" if self.clamp_to_pmtu else f" --set-mss {self.mss}"


OPTIONS = (XtOpt("set-mss", 0), XtOpt("clamp-mss-to-pmtu", 1, nargs=0))


def build(given: list[Given], ctx: RuleContext) -> Tcpmss:
    # UINT16_MAX minus the size of the IP header (struct iphdr / struct ip6_hdr)
    hi = 0xFFFF - (20 if ctx.family is Family.IPV4 else 40)
    seen: dict[int, Given] = {}
    mss = None
    for g in given:
        e = xt_parse("TCPMSS", OPTIONS, g, seen)
        mss = parse_uint_opt(g, "TCPMSS", 0, hi) if e.id == 0 else CLAMP_PMTU
    xt_fcheck("TCPMSS", OPTIONS, seen, ctx)
    if mss is None:
        raise ctx_error(ctx, "TCPMSS target: At least one parameter is required")
    return Tcpmss(mss)


def check(value: Tcpmss, table: str, hooks, rule) -> list[str]:
    """tcpmss_tg4_check()/tcpmss_tg6_check(): path-MTU clamping only in FORWARD, OUTPUT and
    POSTROUTING (checked only for rules of built-in chains under nft_compat)."""
    if value.clamp_to_pmtu and rule.chain in BUILTIN_CHAINS.get(table, ()) \
            and rule.chain not in CLAMP_HOOKS:
        return [f"-j TCPMSS --clamp-mss-to-pmtu is not allowed in {rule.chain} (kernel: "
                "\"path-MTU clamping only supported in FORWARD, OUTPUT and POSTROUTING hooks\", "
                "EINVAL)"]
    return []


SPEC = ExtSpec("TCPMSS", "target", xt_opts(OPTIONS), build, Kernel(proto=TCP), check=check)
