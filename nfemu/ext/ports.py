"""Port and port-range parsing shared by tcp, udp, sctp, multiport and the NAT targets
(libxtables xtables_parse_port, libxt_tcp.c parse_tcp_ports)."""
from __future__ import annotations

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
