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

from .. import engine as _engine
from ..ir import BUILTIN_CHAINS, Family, Target
from ..protocols import TCP
from .base import FWD, OUT, POST, ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, ctx_error, parse_uint_opt, xt_fcheck, xt_opts, xt_parse

CLAMP_PMTU = 0xFFFF  # XT_TCPMSS_CLAMP_PMTU
# Host has no MTUs: nfemu assumes the defaults of the devices it models
LOOPBACK_MTU, DEFAULT_MTU = 65536, 1500


def device_mtu(dev: str | None) -> int:
    """dst_mtu() of a route through ``dev``, assuming default device MTUs (Host keeps none):
    65536 for lo, 1500 for anything else."""
    return LOOPBACK_MTU if dev == "lo" else DEFAULT_MTU
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

    def apply(self, pkt, ev):
        """xt_TCPMSS.c tcpmss_tg4()/tcpmss_tg6() -> tcpmss_mangle_packet(): non-first
        fragments are left alone. The new MSS is the given one, or with --clamp-mss-to-pmtu
        ``min(dst_mtu(out route), mtu of the route back to the source) - 40`` (IPv6: 60),
        NF_DROP when that minimum is not above 40/60 (MTUs: see device_mtu). The options are
        walked as the kernel does (a kind <= 1 or a zero length steps one byte, EOL does not
        stop the walk): an MSS option (kind 2, length 4) is lowered to the new MSS, never
        raised. Without one, and only when the segment carries no data and the header is
        below 60 bytes, an MSS option of min(new MSS, 536) (IPv6: 1220) is put first among
        the options. XT_CONTINUE."""
        Verdict, TargetResult = _engine.Verdict, _engine.TargetResult
        if pkt.frag != 0 or pkt.proto != TCP:
            return TargetResult(Verdict.CONTINUE, pkt)
        v4 = pkt.family == 4
        if self.clamp_to_pmtu:
            minlen = 40 if v4 else 60
            back = ev.host.route_lookup(pkt.src) if v4 else None
            in_mtu = device_mtu(back.dev) if back is not None and back.ok else 0xFFFFFFFF
            min_mtu = min(device_mtu(pkt.oif or None), in_mtu)
            if min_mtu <= minlen:
                ev.record("TCPMSS", error=f"unknown or invalid path-MTU ({min_mtu}) (NF_DROP)")
                return TargetResult(Verdict.DROP, pkt)
            newmss = (min_mtu - minlen) & 0xFFFF
        else:
            newmss = self.mss
        opt = bytes(20) + pkt.tcp_options          # the TCP header as the kernel indexes it
        hdrlen = len(opt)
        i = 20
        while i <= hdrlen - 4:
            if opt[i] == 2 and opt[i + 1] == 4:
                oldmss = (opt[i + 2] << 8) | opt[i + 3]
                if oldmss <= newmss:                 # never increase the MSS
                    return TargetResult(Verdict.CONTINUE, pkt)
                options = bytearray(pkt.tcp_options)
                options[i - 20 + 2:i - 20 + 4] = newmss.to_bytes(2, "big")
                return TargetResult(Verdict.CONTINUE, pkt.replace(tcp_options=bytes(options)))
            i += 1 if opt[i] <= 1 or opt[i + 1] == 0 else opt[i + 1]
        if pkt.payload or hdrlen >= 60:
            return TargetResult(Verdict.CONTINUE, pkt)
        newmss = min(newmss, 536 if v4 else 1220)
        options = bytes([2, 4, newmss >> 8, newmss & 0xFF]) + pkt.tcp_options
        return TargetResult(Verdict.CONTINUE, pkt.replace(tcp_options=options))


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
