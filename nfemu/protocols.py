"""IP protocol numbers and names, as iptables resolves them.

iptables turns ``-p NAME`` into a number with getprotobyname(3) (which reads /etc/protocols)
and prints numbers back with a short built-in table first (``xtables_chain_protos``), then
getprotobynumber(3). A real node's /etc/protocols is Debian netbase's; nfemu carries that
table as data so that ``fmt`` prints the same names on any machine.
"""
from __future__ import annotations

# iptables' own names (libxtables: xtables_chain_protos), also accepted by -p.
CHAIN_PROTO_NAMES: dict[str, int] = {
    "tcp": 6, "sctp": 132, "udp": 17, "udplite": 136, "icmp": 1, "icmpv6": 58,
    "ipv6-icmp": 58, "esp": 50, "ah": 51, "ipv6-mh": 135, "mh": 135, "all": 0,
}

# Debian netbase /etc/protocols: name, number, aliases.
_ETC_PROTOCOLS = """
ip 0 IP
hopopt 0 HOPOPT
icmp 1 ICMP
igmp 2 IGMP
ggp 3 GGP
ipencap 4 IP-ENCAP
st 5 ST
tcp 6 TCP
egp 8 EGP
igp 9 IGP
pup 12 PUP
udp 17 UDP
hmp 20 HMP
xns-idp 22 XNS-IDP
rdp 27 RDP
iso-tp4 29 ISO-TP4
dccp 33 DCCP
xtp 36 XTP
ddp 37 DDP
idpr-cmtp 38 IDPR-CMTP
ipv6 41 IPv6
ipv6-route 43 IPv6-Route
ipv6-frag 44 IPv6-Frag
idrp 45 IDRP
rsvp 46 RSVP
gre 47 GRE
esp 50 IPSEC-ESP
ah 51 IPSEC-AH
skip 57 SKIP
ipv6-icmp 58 IPv6-ICMP
ipv6-nonxt 59 IPv6-NoNxt
ipv6-opts 60 IPv6-Opts
rspf 73 RSPF CPHB
vmtp 81 VMTP
eigrp 88 EIGRP
ospf 89 OSPFIGP
ax.25 93 AX.25
ipip 94 IPIP
etherip 97 ETHERIP
encap 98 ENCAP
pim 103 PIM
ipcomp 108 IPCOMP
vrrp 112 VRRP
l2tp 115 L2TP
isis 124 ISIS
sctp 132 SCTP
fc 133 FC
mobility-header 135 Mobility-Header
udplite 136 UDPLite
mpls-in-ip 137 MPLS-in-IP
manet 138
hip 139 HIP
shim6 140 Shim6
wesp 141 WESP
rohc 142 ROHC
ethernet 143 Ethernet
"""

_BY_NAME: dict[str, int] = {}
_BY_NUMBER: dict[int, str] = {}
for _line in _ETC_PROTOCOLS.strip().splitlines():
    _name, _num, *_aliases = _line.split()
    for _n in (_name, *_aliases):
        _BY_NAME.setdefault(_n, int(_num))
    _BY_NUMBER.setdefault(int(_num), _name)

TCP, UDP, ICMP, SCTP, DCCP, UDPLITE, ICMPV6 = 6, 17, 1, 132, 33, 136, 58


def parse_protocol(text: str) -> int | None:
    """``-p`` argument to a number, as xtables_parse_protocol() does (after iptables lowercased
    it): a number 0-255 (C strtoul base 0), ``all``, a name from /etc/protocols, or a name of
    iptables' own table. None when unknown."""
    from .util import parse_c_uint

    value = parse_c_uint(text)
    if value is not None:
        return value if value <= 255 else None
    if text == "all":
        return 0
    if text in _BY_NAME:
        return _BY_NAME[text]
    return CHAIN_PROTO_NAMES.get(text)


def protocol_name(number: int) -> str:
    """How iptables-nft-save prints protocol ``number``: the /etc/protocols name when there
    is one (seen: 4 prints as "ipencap", 58 as "ipv6-icmp"), else the number."""
    if number == 0:
        return "all"
    return _BY_NUMBER.get(number, str(number))
