"""Port and port-range parsing shared by tcp, udp, sctp, multiport and the NAT targets
(libxtables xtables_parse_port, libxt_tcp.c parse_tcp_ports)."""
from __future__ import annotations

from ..util import parse_uint
from .base import Given

# The service names of Debian netbase's /etc/services that rules commonly use; iptables
# resolves names with getservbyname(3). Numbers are always accepted.
SERVICES = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
    "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "kerberos": 88, "pop3": 110,
    "sunrpc": 111, "ntp": 123, "netbios-ns": 137, "imap2": 143, "imap": 143, "snmp": 161,
    "bgp": 179, "ldap": 389, "https": 443, "microsoft-ds": 445, "isakmp": 500,
    "syslog": 514, "submission": 587, "ldaps": 636, "imaps": 993, "pop3s": 995,
    "openvpn": 1194, "mysql": 3306, "postgresql": 5432, "http-alt": 8080,
}


def parse_port(text: str, g: Given) -> int:
    value = parse_uint(text, 0, 0xFFFF)
    if value is None:
        value = SERVICES.get(text)
    if value is None:
        raise g.error(f"invalid port/service `{text}' specified")
    return value


def parse_port_range(text: str, g: Given) -> tuple[int, int]:
    """``P``, ``A:B``, ``:B`` (0:B) or ``A:`` (A:65535); min > max is an error."""
    if ":" not in text:
        port = parse_port(text, g)
        return port, port
    lo_text, _, hi_text = text.partition(":")
    lo = parse_port(lo_text, g) if lo_text else 0
    hi = parse_port(hi_text, g) if hi_text else 0xFFFF
    if lo > hi:
        raise g.error("invalid portrange (min > max)")
    return lo, hi


def save_range(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}:{hi}"
