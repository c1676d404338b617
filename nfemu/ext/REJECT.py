"""``-j REJECT``: drop the packet and answer with an ICMP error or a TCP reset
(extensions/libipt_REJECT.c and libip6t_REJECT.c; kernel net/ipv4/netfilter/ipt_REJECT.c and
net/ipv6/netfilter/ip6t_REJECT.c).

``--reject-with`` takes a type's name or alias, case-insensitively and as any prefix of either
(``strncasecmp(name, arg, strlen(arg))``), the first match in the table's (enum) order winning:
``icmp`` is icmp-net-unreachable, ``p`` icmp-proto-unreachable, and the empty string the first
type. iptables-save prints the canonical name and always prints the option (default
icmp-port-unreachable / icmp6-port-unreachable).

The kernel allows REJECT only in table filter, hooks INPUT/FORWARD/OUTPUT, and tcp-reset only
in a rule that says ``-p tcp`` without ``!``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Family, Target
from ..protocols import TCP
from .base import FWD, IN, OUT, ExtSpec, Given, Kernel, Opt, RuleContext
from .xtopt import check_once


class RejectWith(enum.IntEnum):
    """enum ipt_reject_with (IPv4)."""

    ICMP_NET_UNREACHABLE = 0
    ICMP_HOST_UNREACHABLE = 1
    ICMP_PROT_UNREACHABLE = 2
    ICMP_PORT_UNREACHABLE = 3
    ICMP_ECHOREPLY = 4
    ICMP_NET_PROHIBITED = 5
    ICMP_HOST_PROHIBITED = 6
    TCP_RESET = 7
    ICMP_ADMIN_PROHIBITED = 8


class Reject6With(enum.IntEnum):
    """enum ip6t_reject_with (IPv6)."""

    ICMP6_NO_ROUTE = 0
    ICMP6_ADM_PROHIBITED = 1
    ICMP6_NOT_NEIGHBOUR = 2
    ICMP6_ADDR_UNREACH = 3
    ICMP6_PORT_UNREACH = 4
    ICMP6_ECHOREPLY = 5
    TCP_RESET = 6
    ICMP6_POLICY_FAIL = 7
    ICMP6_REJECT_ROUTE = 8


# (value, name, alias) in the order of the userspace tables (indexed by the enum; holes for the
# types iptables no longer offers)
_NAMES4 = (
    (RejectWith.ICMP_NET_UNREACHABLE, "icmp-net-unreachable", "net-unreach"),
    (RejectWith.ICMP_HOST_UNREACHABLE, "icmp-host-unreachable", "host-unreach"),
    (RejectWith.ICMP_PROT_UNREACHABLE, "icmp-proto-unreachable", "proto-unreach"),
    (RejectWith.ICMP_PORT_UNREACHABLE, "icmp-port-unreachable", "port-unreach"),
    (RejectWith.ICMP_NET_PROHIBITED, "icmp-net-prohibited", "net-prohib"),
    (RejectWith.ICMP_HOST_PROHIBITED, "icmp-host-prohibited", "host-prohib"),
    (RejectWith.TCP_RESET, "tcp-reset", "tcp-rst"),
    (RejectWith.ICMP_ADMIN_PROHIBITED, "icmp-admin-prohibited", "admin-prohib"),
)
_NAMES6 = (
    (Reject6With.ICMP6_NO_ROUTE, "icmp6-no-route", "no-route"),
    (Reject6With.ICMP6_ADM_PROHIBITED, "icmp6-adm-prohibited", "adm-prohibited"),
    (Reject6With.ICMP6_ADDR_UNREACH, "icmp6-addr-unreachable", "addr-unreach"),
    (Reject6With.ICMP6_PORT_UNREACH, "icmp6-port-unreachable", "port-unreach"),
    (Reject6With.TCP_RESET, "tcp-reset", "tcp-reset"),
    (Reject6With.ICMP6_POLICY_FAIL, "icmp6-policy-fail", "policy-fail"),
    (Reject6With.ICMP6_REJECT_ROUTE, "icmp6-reject-route", "reject-route"),
)


@dataclass(frozen=True, slots=True)
class Reject(Target):
    """ipt_reject_info / ip6t_reject_info: what to answer with. The verdict is DROP."""

    NAME = "REJECT"
    TERMINAL = True
    reject_with: int = RejectWith.ICMP_PORT_UNREACHABLE
    family: Family = Family.IPV4

    @property
    def tcp_reset(self) -> bool:
        tcp = RejectWith.TCP_RESET if self.family is Family.IPV4 else Reject6With.TCP_RESET
        return self.reject_with == tcp

    def save(self) -> str:
        table = _NAMES4 if self.family is Family.IPV4 else _NAMES6
        for value, name, _alias in table:
            if value == self.reject_with:
                return f" --reject-with {name}"
        return ""  # pragma: no cover - build never stores another value


def _lookup(arg: str, family: Family) -> int | None:
    n = len(arg)
    lower = arg.lower()
    table = _NAMES4 if family is Family.IPV4 else _NAMES6
    for value, name, alias in table:
        if name[:n] == lower and len(name) >= n or alias[:n] == lower and len(alias) >= n:
            return value
    return None


def build(given: list[Given], ctx: RuleContext) -> Reject:
    check_once(given, "REJECT")
    if ctx.family is Family.IPV4:
        value: int = RejectWith.ICMP_PORT_UNREACHABLE
    else:
        value = Reject6With.ICMP6_PORT_UNREACH
    for g in given:
        found = _lookup(g.arg, ctx.family)
        if found is None:
            if ctx.family is Family.IPV4 and any(
                    word[:len(g.arg)] == g.arg.lower() for word in ("echo-reply", "echoreply")):
                raise g.error(f"--reject-with echo-reply no longer supported; unknown reject "
                              f"type \"{g.arg}\"")
            raise g.error(f"unknown reject type \"{g.arg}\"")
        value = found
    return Reject(value, ctx.family)


def check(value: Reject, table: str, hooks, rule) -> list[str]:
    """ipt_REJECT/ip6t_REJECT reject_tg_check: a TCP reset needs ``-p tcp`` (not negated)."""
    if value.tcp_reset and (rule.proto != TCP or rule.proto_inv):
        return ["-j REJECT --reject-with tcp-reset needs -p tcp in the rule (kernel: "
                "\"TCP_RESET invalid for non-tcp\")"]
    return []


SPEC = ExtSpec("REJECT", "target", (Opt("reject-with"),), build,
               Kernel(tables=frozenset({"filter"}), hooks=frozenset({IN, FWD, OUT})),
               check=check)
