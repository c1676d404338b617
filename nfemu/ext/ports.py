"""Port and port-range parsing shared by tcp, udp, sctp, multiport, conntrack and the targets
(libxtables xtables_parse_port, xtables_getportbyname, libxt_tcp.c parse_tcp_ports), and the
load-time protocol check of tcp and udp."""
from __future__ import annotations

from ..cnum import strtoul
from ..util import parse_uint
from .base import Given

def _load_services() -> dict[tuple[str, str], int]:
    """Debian netbase's /etc/services (nfemu/data/services.txt: "proto port name aliases"):
    iptables resolves port names with getservbyname(name, proto)."""
    from importlib import resources
    table: dict[tuple[str, str], int] = {}
    text = resources.files("nfemu").joinpath("data/services.txt").read_text()
    for line in text.splitlines():
        proto, port, *names = line.split()
        for name in names:
            table.setdefault((name, proto), int(port))
    return table


SERVICES = _load_services()
# xtables_getportbyname() asks getaddrinfo() without a protocol: the first entry of the name.
SERVICES_ANY: dict[str, int] = {}
for (_name, _proto), _port in SERVICES.items():
    SERVICES_ANY.setdefault(_name, _port)


def getportbyname(text: str) -> int | None:
    """xtables_getportbyname(): getaddrinfo(NULL, text): a base-10 number (white space and a
    sign allowed, kept to its low 16 bits when it fits an int) or a service name."""
    value, end, _ = strtoul(text, 0, 10)
    if end == len(text):
        as_int = value & 0xFFFFFFFF          # glibc keeps the number in an int
        if as_int < 0x80000000:
            return as_int & 0xFFFF           # and htons() keeps 16 bits
    return SERVICES_ANY.get(text)


def parse_port(text: str, g: Given, proto: str = "tcp") -> int:
    value = parse_uint(text, 0, 0xFFFF)
    if value is None:
        value = SERVICES.get((text, proto))
    if value is None:
        raise g.error(f"invalid port/service `{text}' specified")
    return value


def parse_port_range(text: str, g: Given, proto: str = "tcp") -> tuple[int, int]:
    """``P``, ``A:B``, ``:B`` (0:B) or ``A:`` (A:65535); min > max is an error."""
    if ":" not in text:
        port = parse_port(text, g, proto)
        return port, port
    lo_text, _, hi_text = text.partition(":")
    lo = parse_port(lo_text, g, proto) if lo_text else 0
    hi = parse_port(hi_text, g, proto) if hi_text else 0xFFFF
    if lo > hi:
        raise g.error("invalid portrange (min > max)")
    return lo, hi


def save_range(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}:{hi}"


def check_ports_proto(value, rule, proto: int, name: str) -> list[str]:
    """The load-time check of -m tcp / -m udp (``name``): a native match (iptables-nft) only
    needs the rule's protocol to be ``proto`` (even ``! -p tcp`` passes); an xtables one gets
    the kernel's check (xt_match.proto): ``-p proto``, not negated."""
    if value.native:
        return [] if rule.proto == proto else [f"{name.upper()} match requires '-p {name}'"]
    if rule.proto != proto or rule.proto_inv:
        return [f"-m {name} needs -p {name} in the rule (the kernel refuses it: RULE_APPEND "
                "failed, Invalid argument)"]
    return []


def save_ports(sport: tuple[int, int], sport_inv: bool, dport: tuple[int, int],
               dport_inv: bool) -> list[str]:
    """How libxt_tcp.c / libxt_udp.c save their ports: only those that are not 0:65535."""
    out = []
    if sport != (0, 0xFFFF):
        out.append(f"{' !' if sport_inv else ''} --sport {save_range(*sport)}")
    if dport != (0, 0xFFFF):
        out.append(f"{' !' if dport_inv else ''} --dport {save_range(*dport)}")
    return out
