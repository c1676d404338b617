"""``-p udp [-m udp]``: ports (libxt_udp.c, kernel xt_tcpudp.c udp_mt).

The kernel requires the rule to say ``-p udp`` (xt_match.proto = IPPROTO_UDP)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..protocols import UDP
from .base import ExtSpec, Given, Kernel, Opt, RuleContext
from .ports import parse_port_range, save_range


@dataclass(frozen=True, slots=True)
class Udp(Match):
    NAME = "udp"
    sport: tuple[int, int] = (0, 0xFFFF)
    sport_inv: bool = False
    dport: tuple[int, int] = (0, 0xFFFF)
    dport_inv: bool = False

    @property
    def native(self) -> bool:
        """iptables-nft turns a udp match with a port test into native expressions."""
        return bool(self.sport != (0, 0xFFFF) or self.sport_inv or self.dport != (0, 0xFFFF)
                    or self.dport_inv)

    def save(self) -> str:
        out = []
        if self.sport != (0, 0xFFFF):
            out.append(f"{' !' if self.sport_inv else ''} --sport {save_range(*self.sport)}")
        if self.dport != (0, 0xFFFF):
            out.append(f"{' !' if self.dport_inv else ''} --dport {save_range(*self.dport)}")
        return "".join(out)


def build(given: list[Given], ctx: RuleContext) -> Udp:
    fields: dict = {}
    for g in given:
        key = {"source-port": "sport", "destination-port": "dport"}.get(g.name, g.name)
        if key in fields:
            what = "--source-port" if key == "sport" else "--destination-port"
            raise g.error(f"Only one `{what}' allowed")
        fields[key] = parse_port_range(g.arg, g, "udp")
        fields[key + "_inv"] = g.inv
    return Udp(**fields)


def check(value: Udp, table: str, hooks, rule) -> list[str]:
    """As for tcp: native matches need -p udp (negated or not), xtables ones a plain -p udp."""
    if value.native:
        return [] if rule.proto == UDP else ["UDP match requires '-p udp'"]
    if rule.proto != UDP or rule.proto_inv:
        return ["-m udp needs -p udp in the rule (the kernel refuses it: RULE_APPEND failed, "
                "Invalid argument)"]
    return []


SPEC = ExtSpec(
    "udp", "match",
    (Opt("source-port"), Opt("sport"), Opt("destination-port"), Opt("dport")),
    build, check=check)
