"""``-p udp [-m udp]``: ports (libxt_udp.c, kernel xt_tcpudp.c udp_mt).

The kernel requires the rule to say ``-p udp`` (xt_match.proto = IPPROTO_UDP)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..protocols import UDP
from .base import ExtSpec, Given, Opt, RuleContext
from .ports import check_ports_proto, parse_port_range, save_ports


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
        return "".join(save_ports(self.sport, self.sport_inv, self.dport, self.dport_inv))


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
    return check_ports_proto(value, rule, UDP, "udp")


SPEC = ExtSpec(
    "udp", "match",
    (Opt("source-port"), Opt("sport"), Opt("destination-port"), Opt("dport")),
    build, check=check)
