"""``-p tcp [-m tcp]``: ports, flags and options (libxt_tcp.c, kernel xt_tcpudp.c tcp_mt).

The kernel requires the rule to say ``-p tcp`` (xt_match.proto = IPPROTO_TCP)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..protocols import TCP
from ..util import parse_uint
from .base import ExtSpec, Given, Opt, RuleContext
from .ports import check_ports_proto, parse_port_range, save_ports

FLAG_NAMES = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10),
              ("URG", 0x20), ("ALL", 0x3F), ("NONE", 0))


@dataclass(frozen=True, slots=True)
class Tcp(Match):
    NAME = "tcp"
    sport: tuple[int, int] = (0, 0xFFFF)
    sport_inv: bool = False
    dport: tuple[int, int] = (0, 0xFFFF)
    dport_inv: bool = False
    option: int = 0
    option_inv: bool = False
    flags_mask: int = 0
    flags_cmp: int = 0
    flags_inv: bool = False

    @property
    def native(self) -> bool:
        """iptables-nft turns this match into native nf_tables expressions (see
        nfemu/nftnative.py): it has a port or flag test and no --tcp-option."""
        if self.option or self.option_inv:
            return False
        return bool(self.sport != (0, 0xFFFF) or self.sport_inv or self.dport != (0, 0xFFFF)
                    or self.dport_inv or self.flags_mask or self.flags_inv)

    def save(self) -> str:
        out = save_ports(self.sport, self.sport_inv, self.dport, self.dport_inv)
        if self.option or self.option_inv:
            out.append(f"{' !' if self.option_inv else ''} --tcp-option {self.option}")
        if self.flags_mask or self.flags_inv:
            out.append(f"{' !' if self.flags_inv else ''} --tcp-flags "
                       f"{flags_text(self.flags_mask)} {flags_text(self.flags_cmp)}")
        return "".join(out)


def flags_text(flags: int) -> str:
    """print_tcpf(): names of the set bits joined by commas, NONE when empty."""
    names = []
    while flags:
        for name, bit in FLAG_NAMES:
            if flags & bit:
                names.append(name)
                flags &= ~bit
                break
    return ",".join(names) if names else "NONE"


def parse_flags(text: str, g: Given) -> int:
    value = 0
    for name in text.split(","):
        for known, bit in FLAG_NAMES:
            if name.upper() == known:
                value |= bit
                break
        else:
            raise g.error(f"Unknown TCP flag `{name}'")
    return value


def build(given: list[Given], ctx: RuleContext) -> Tcp:
    fields: dict = {}
    seen: set[str] = set()
    for g in given:
        key = {"source-port": "sport", "destination-port": "dport"}.get(g.name, g.name)
        key = "tcp-flags" if key == "syn" else key
        if key in seen:
            what = {"sport": "--source-port", "dport": "--destination-port",
                    "tcp-flags": "--tcp-flags", "tcp-option": "--tcp-option"}[key]
            raise g.error(f"Only one `{what}' allowed")
        seen.add(key)
        if key == "sport":
            fields["sport"], fields["sport_inv"] = parse_port_range(g.arg, g), g.inv
        elif key == "dport":
            fields["dport"], fields["dport_inv"] = parse_port_range(g.arg, g), g.inv
        elif g.name == "syn":
            fields.update(flags_mask=0x17, flags_cmp=0x02, flags_inv=g.inv)
        elif key == "tcp-flags":
            fields.update(flags_mask=parse_flags(g.args[0], g), flags_cmp=parse_flags(g.args[1], g),
                          flags_inv=g.inv)
        elif key == "tcp-option":
            option = parse_uint(g.arg, 1, 255)
            if option is None:
                raise g.error(f"Bad TCP option `{g.arg}'")
            fields["option"], fields["option_inv"] = option, g.inv
    return Tcp(**fields)


def check(value: Tcp, table: str, hooks, rule) -> list[str]:
    """A native match only needs the rule's protocol to be tcp (iptables-nft checks it: even
    ``! -p tcp`` passes); an xtables one gets the kernel's check: ``-p tcp``, not negated."""
    return check_ports_proto(value, rule, TCP, "tcp")


SPEC = ExtSpec(
    "tcp", "match",
    (Opt("source-port"), Opt("sport"), Opt("destination-port"), Opt("dport"), Opt("syn", 0),
     Opt("tcp-flags", 2), Opt("tcp-option")),
    build, check=check)
