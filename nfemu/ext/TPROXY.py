"""``-j TPROXY``: deliver the packet to a local socket without changing it (transparent proxy;
extensions/libxt_TPROXY.c revision 1, kernel net/netfilter/xt_TPROXY.c ``tproxy_tg4_v1`` /
``tproxy_tg6_v1``). A verdict: the packet is accepted (and marked) when a socket is found,
dropped otherwise.

--on-port is mandatory (XTTYPE_PORT: getaddrinfo's service parsing, base 10 or a service name,
kept to 16 bits), --on-ip an address of the rule's family (default 0.0.0.0 / ::: the
packet's destination), --tproxy-mark value[/mask] (mask defaults to ~0; without the option
0x0/0x0). iptables-save prints all three: ``--on-port P --on-ip A --tproxy-mark 0xV/0xM``.

Kernel: table mangle, hook PREROUTING only (also for user chains reached from elsewhere), and
the rule must say ``-p tcp`` or ``-p udp`` without ``!`` (checked for every rule, user chains
included).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Family, Target
from ..protocols import TCP, UDP
from ..util import int_to_ipv4, int_to_ipv6
from .base import PRE, ExtSpec, Given, Kernel, RuleContext
from .ports import getportbyname
from .xthost import parse_host
from .xtopt import XtOpt, parse_val_mask, xt_fcheck, xt_opts, xt_parse


@dataclass(frozen=True, slots=True)
class Tproxy(Target):
    """xt_tproxy_target_info_v1: where to look for the socket and how to mark the packet
    (``mark = (mark & ~mark_mask) ^ mark_value``)."""

    NAME = "TPROXY"
    TERMINAL = True
    port: int = 0                 # 0: the packet's destination port
    addr: int = 0                 # 0: the packet's destination address
    mark_value: int = 0
    mark_mask: int = 0
    family: Family = Family.IPV4

    def save(self) -> str:
        addr = int_to_ipv4(self.addr) if self.family is Family.IPV4 else int_to_ipv6(self.addr)
        return (f" --on-port {self.port} --on-ip {addr}"
                f" --tproxy-mark 0x{self.mark_value:x}/0x{self.mark_mask:x}")


# P_PORT, P_ADDR, P_MARK
OPTIONS = (XtOpt("on-port", 0, mand=True), XtOpt("on-ip", 1), XtOpt("tproxy-mark", 2))


def build(given: list[Given], ctx: RuleContext) -> Tproxy:
    seen: dict[int, Given] = {}
    f: dict = {"family": ctx.family}
    for g in given:
        e = xt_parse("TPROXY", OPTIONS, g, seen)
        if e.id == 0:
            port = getportbyname(g.arg)
            if port is None:
                raise g.error(f"Port \"{g.arg}\" does not resolve to anything.")
            f["port"] = port
        elif e.id == 1:
            f["addr"] = parse_host(g.arg, ctx.family, g)
        else:
            f["mark_value"], f["mark_mask"] = parse_val_mask(g, "TPROXY")
    xt_fcheck("TPROXY", OPTIONS, seen, ctx)
    return Tproxy(**f)


def check(value: Tproxy, table: str, hooks, rule) -> list[str]:
    """tproxy_tg4_check()/tproxy_tg6_check(): -p tcp or -p udp, not negated."""
    if rule.proto in (TCP, UDP) and not rule.proto_inv:
        return []
    return ["-j TPROXY needs -p tcp or -p udp in the rule (kernel: \"Can be used only with "
            "-p tcp or -p udp\", EINVAL)"]


SPEC = ExtSpec("TPROXY", "target", xt_opts(OPTIONS), build,
               Kernel(tables=frozenset({"mangle"}), hooks=frozenset({PRE})), check=check)
