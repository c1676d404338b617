"""``-p udp [-m udp]``: ports (libxt_udp.c, kernel xt_tcpudp.c udp_mt).

The kernel requires the rule to say ``-p udp`` (xt_match.proto = IPPROTO_UDP)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..protocols import UDP
from .base import ExtSpec, Given, Opt, RuleContext
from .ports import check_ports_proto, getportbyname, save_ports
from .tcp import hotdrop, l4_avail, nft_program, port_match, run_nft


@dataclass(frozen=True, slots=True)
class Udp(Match):
    NAME = "udp"
    sport: tuple[int, int] = (0, 0xFFFF)
    sport_inv: bool = False
    dport: tuple[int, int] = (0, 0xFFFF)
    dport_inv: bool = False
    #: As Tcp.nft: the nf_tables comparisons iptables-nft stored for all the rule's udp
    #: matches (set at load by nfemu/nftnative.py), None when not native or built by hand.
    nft: tuple | None = None

    @property
    def native(self) -> bool:
        """iptables-nft turns a udp match with a port test into native expressions."""
        return bool(self.sport != (0, 0xFFFF) or self.sport_inv or self.dport != (0, 0xFFFF)
                    or self.dport_inv)

    def match(self, pkt, ev) -> bool:
        """xt_tcpudp.c udp_mt() for an xtables match (a udp match without port tests); a
        native one runs the nf_tables comparisons iptables-nft 1.8.9 stored (``self.nft``;
        see Tcp.match, nft_program/run_nft in nfemu/ext/tcp.py, and nfemu/nftnative.py): no
        protocol test of their own, a fragment or short header makes the rule not match (no
        hotdrop), ``! --sport A ! --dport B`` is one 32-bit "not equal"."""
        prog = self.nft
        if prog is None and self.native:
            prog = nft_program(self)
        if prog is not None:
            return run_nft(prog, pkt)
        if pkt.frag:
            return False                           # udp_mt: must not be a fragment
        if pkt.proto != UDP or l4_avail(pkt) < 8:
            hotdrop(ev, "udp: header cut short")   # "Dropping evil UDP tinygram"
            return False
        return (port_match(*self.sport, pkt.sport, self.sport_inv)
                and port_match(*self.dport, pkt.dport, self.dport_inv))

    def save(self) -> str:
        return "".join(save_ports(self.sport, self.sport_inv, self.dport, self.dport_inv))


def build(given: list[Given], ctx: RuleContext) -> Udp:
    fields: dict = {}
    for g in given:
        key = {"source-port": "sport", "destination-port": "dport"}.get(g.name, g.name)
        canonical = "source-port" if key == "sport" else "destination-port"
        if key in fields:
            raise g.error(f"udp: option \"--{canonical}\" can only be used once.")
        fields[key] = parse_mport(g.arg, g, "udp", canonical)
        fields[key + "_inv"] = g.inv
    return Udp(**fields)


def parse_mport(text: str, g: Given, ext: str, option: str) -> tuple[int, int]:
    """libxtables xtopt_parse_mport() (XTTYPE_PORTRC, which libxt_udp uses in 1.8.9, unlike
    libxt_tcp): up to two ``:``-separated parts, each a port as xtables_getportbyname() reads
    it (decimal, kept to 16 bits, or a service name of any protocol); an empty part keeps its
    default (0 / 65535); one value gives P:P; no min <= max check (seen: ``5:4`` loads)."""
    parts = text.split(":")
    if len(parts) > 2:
        raise g.error(f"{ext}: Too many components for option \"--{option}\" (max: 2)")
    ports = [0, 0xFFFF]
    for i, part in enumerate(parts):
        if part:
            value = getportbyname(part)
            if value is None:
                raise g.error(f"Port \"{part}\" does not resolve to anything.")
            ports[i] = value
    if len(parts) == 1:
        ports[1] = ports[0]
    return ports[0], ports[1]


def check(value: Udp, table: str, hooks, rule) -> list[str]:
    """As for tcp: native matches need -p udp (negated or not), xtables ones a plain -p udp."""
    return check_ports_proto(value, rule, UDP, "udp")


SPEC = ExtSpec(
    "udp", "match",
    (Opt("source-port"), Opt("sport"), Opt("destination-port"), Opt("dport")),
    build, check=check)
