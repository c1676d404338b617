"""nfemu.packet (the packet model) and nfemu.packetopts (the CLI packet syntax)."""
from __future__ import annotations

import argparse

import pytest
from hypothesis import given, strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Ether
from scapy.layers.sctp import SCTP, SCTPChunkData, SCTPChunkInit
from scapy.packet import Raw

from nfemu.errors import ParseError
from nfemu.ext.conntrack import CtState
from nfemu.packet import (IP_DF, IP_MF, TCP_ACK, TCP_CWR, TCP_ECE, TCP_SYN, Packet,
                          PacketError, PacketType)
from nfemu.packetopts import PacketContext, add_packet_arguments, packet_from_args


def ip_bytes(pkt) -> bytes:
    layer = pkt[IP] if IP in pkt else pkt[IPv6]
    return bytes(layer)


def scapy_checksums(data: bytes, v6: bool = False) -> bytes:
    """The same datagram with every checksum left to scapy to compute."""
    pkt = (IPv6 if v6 else IP)(data)
    layer = pkt
    while layer is not None and layer.name != "NoPayload":
        for name in ("chksum", "cksum"):
            if name in layer.fields and not isinstance(layer, (IPerror, UDPerror)):
                layer.fields[name] = None
        if layer.__class__.__name__.endswith("error"):
            break
        layer = layer.payload
    return bytes(pkt)


def roundtrip(pkt) -> Packet:
    """scapy -> Packet -> bytes/scapy: identical bytes, and checksums equal to scapy's."""
    packet = Packet.from_scapy(pkt)
    data = packet.to_bytes()
    assert data == ip_bytes(pkt)
    assert data == scapy_checksums(data, packet.family == 6)
    assert bytes(packet.to_scapy()) == data
    assert Packet.from_scapy(packet.to_scapy()) == packet
    return packet


# ---- round trips of each protocol -----------------------------------------------------------

def test_tcp_fields():
    pkt = (IP(src="10.244.1.5", dst="10.96.0.10", ttl=17, tos=0x28, id=999, flags="DF")
           / TCP(sport=40000, dport=53, seq=7, ack=9, flags="SAEC", window=1000, urgptr=3,
                 options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)])
           / b"data")
    p = roundtrip(pkt)
    assert (p.family, p.src, p.dst, p.proto) == (4, 0x0AF40105, 0x0A60000A, 6)
    assert (p.sport, p.dport, p.tcp_seq, p.tcp_ack, p.tcp_window, p.tcp_urgptr) == (
        40000, 53, 7, 9, 1000, 3)
    assert p.tcp_flags == TCP_SYN | TCP_ACK | TCP_ECE | TCP_CWR
    assert (p.ttl, p.tos, p.ip_id, p.ip_flags, p.frag) == (17, 0x28, 999, IP_DF, 0)
    assert p.length == len(bytes(pkt)) == 20 + 32 + 4
    assert p.payload == b"data"
    assert p.tcp_mss == 1460
    # kinds the kernel walk sees, including the EOL padding scapy adds
    assert p.tcp_option_kinds == (1 << 0) | (1 << 2) | (1 << 4) | (1 << 1) | (1 << 3)
    assert p.l4_csum is None


def test_ip_options_and_ihl():
    p = roundtrip(IP(dst="1.2.3.4", options=b"\x94\x04\x00\x00") / UDP(dport=5) / b"x")
    assert p.ihl == 6 and p.ip_options == b"\x94\x04\x00\x00" and p.header_len == 24


def test_udp():
    p = roundtrip(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=53) / b"query")
    assert (p.sport, p.dport, p.udp_len, p.length) == (1, 53, 13, 33)


def test_udp_without_checksum_stays_without():
    p = roundtrip(IP(dst="2.2.2.2") / UDP(dport=53, chksum=0) / b"q")
    assert p.l4_csum == 0 and p.replace(dst=5).to_bytes()[26:28] == b"\0\0"


def test_icmp_echo():
    p = roundtrip(IP(dst="8.8.8.8") / ICMP(type=8, id=0x1234, seq=7) / b"ping")
    assert (p.icmp_type, p.icmp_code, p.icmp_id, p.icmp_seq) == (8, 0, 0x1234, 7)


def test_sctp_chunks_and_crc32c():
    p = roundtrip(IP(dst="1.2.3.4") / SCTP(sport=5, dport=6, tag=9) / SCTPChunkInit()
                  / SCTPChunkData(data=b"abc", beginning=1, ending=1))
    assert (p.sport, p.dport, p.sctp_vtag) == (5, 6, 9)
    assert p.sctp_chunks == ((1, 0), (0, 3))


def test_ipv6():
    p = roundtrip(IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0x10, fl=5, hlim=9)
                  / TCP(dport=443))
    assert (p.family, p.proto, p.tos, p.flowlabel, p.ttl, p.length) == (6, 6, 0x10, 5, 9, 60)
    roundtrip(IPv6(src="::1", dst="::2") / UDP(dport=53) / b"x")
    roundtrip(IPv6(src="::1", dst="::2") / ICMPv6EchoRequest(id=3, seq=4))
    roundtrip(IPv6(src="::1", dst="::2") / SCTP(sport=1, dport=2) / SCTPChunkInit())


def test_ether_metadata():
    p = Packet.from_scapy(Ether(src="00:11:22:33:44:55", dst="ff:ff:ff:ff:ff:ff")
                          / IP(dst="1.2.3.4") / UDP() / Raw(b"\0" * 30), iif="eth0", mark=7)
    assert p.in_mac == 0x001122334455 and p.out_mac == 0xFFFFFFFFFFFF
    assert p.pkttype == PacketType.BROADCAST and p.iif == "eth0" and p.mark == 7
    assert Ether(bytes(p.to_scapy(link=True))).src == "00:11:22:33:44:55"
    assert Packet.from_scapy(Ether(dst="01:00:5e:00:00:01") / IP()).pkttype == \
        PacketType.MULTICAST
    assert Packet.from_scapy(IP(dst="1.2.3.4")).in_mac is None


def test_ethernet_padding_is_trimmed():
    frame = Ether(bytes(Ether() / IP(dst="1.2.3.4") / UDP(dport=9)) + b"\0" * 18)
    p = Packet.from_scapy(frame)
    assert p.length == 28 and p.payload == b""


# ---- fragments ------------------------------------------------------------------------------

def test_non_first_fragment_has_no_l4():
    whole = IP(src="1.2.3.4", dst="5.6.7.8", id=42) / UDP(sport=1, dport=2) / (b"z" * 64)
    first, second = whole.fragment(32)[:2]
    p1, p2 = roundtrip(first), roundtrip(second)
    assert p1.ip_flags & IP_MF and p1.frag == 0 and (p1.sport, p1.dport) == (1, 2)
    assert p1.l4_csum is not None              # covers bytes in other fragments: kept
    assert p2.frag == 4 and p2.fragoff == 4 and not p2.has_l4
    assert (p2.sport, p2.dport) == (0, 0) and p2.payload == bytes(second[IP].payload)
    assert "frag 32" in p2.describe()


def test_ipv6_fragment():
    p = roundtrip(IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(nh=17, offset=3, m=1, id=77)
                  / (b"x" * 16))
    assert p.v6_frag and (p.frag, p.ip_flags, p.ip_id, p.proto) == (3, 1, 77, 17)
    assert not p.has_l4 and p.header_len == 48


# ---- ICMP errors ----------------------------------------------------------------------------

def test_icmp_error_inner_packet():
    quoted = bytes(IP(src="10.0.0.1", dst="10.96.0.10") / UDP(sport=5, dport=53)
                   / (b"q" * 30))[:28]
    p = roundtrip(IP(src="10.96.0.10", dst="10.0.0.1") / ICMP(type=3, code=3) / Raw(quoted))
    inner = p.inner
    assert inner is not None and p.payload == b""
    assert (inner.src, inner.dst, inner.sport, inner.dport) == (0x0A000001, 0x0A60000A, 5, 53)
    assert inner.length == 58 and inner.captured == 28 and inner.l4_csum is not None
    assert p.describe() == ("icmp 10.96.0.10 -> 10.0.0.1 port-unreachable "
                            "for (udp 10.0.0.1:5 -> 10.96.0.10:53)")


def test_icmp_error_nat_rewrite_of_inner():
    """Rewriting the quoted datagram (un-NAT of an ICMP error) keeps every checksum right:
    the inner IP header's recomputed, the inner UDP one updated incrementally."""
    orig = IP(src="10.0.0.1", dst="10.244.1.7") / UDP(sport=5, dport=8053) / (b"q" * 30)
    quoted = bytes(orig)[:28]
    p = Packet.from_scapy(IP(src="10.244.1.7", dst="10.0.0.1") / ICMP(type=3, code=3)
                          / Raw(quoted))
    rewritten = p.replace(src=0x0A60000A, inner=p.inner.replace(dst=0x0A60000A, dport=53))
    expected = bytes(IP(src="10.0.0.1", dst="10.96.0.10") / UDP(sport=5, dport=53)
                     / (b"q" * 30))[:28]
    assert rewritten.inner.to_bytes() == expected
    data = rewritten.to_bytes()
    assert data == scapy_checksums(data)


def test_icmp_error_tcp_inner_eight_bytes():
    quoted = bytes(IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=1000, dport=80, seq=5))[:28]
    p = roundtrip(IP(src="2.2.2.2", dst="1.1.1.1") / ICMP(type=11, code=0) / Raw(quoted))
    assert (p.inner.sport, p.inner.dport, p.inner.tcp_seq) == (1000, 80, 5)
    assert "[" not in p.describe()             # the flags were not quoted


def test_icmpv6_error_inner():
    p = roundtrip(IPv6(src="::1", dst="::2") / ICMPv6DestUnreach(code=4)
                  / IPv6(src="::2", dst="::1") / UDP(sport=9, dport=53))
    assert p.inner is not None and p.inner.dport == 53


def test_bad_packets():
    with pytest.raises(PacketError):
        Packet.from_bytes(b"\x45\x00")
    with pytest.raises(PacketError):
        Packet.from_bytes(b"\x60" + b"\0" * 10)
    with pytest.raises(PacketError):
        Packet.from_scapy(Ether() / Raw(b"\x00\x01"))


# ---- replace (NAT rewrites) -----------------------------------------------------------------

def test_replace_dnat():
    p = Packet.from_scapy(IP(src="10.244.1.5", dst="10.96.0.10") / TCP(sport=40000, dport=53)
                          / b"hello")
    q = p.replace(dst=0x0AF40207, dport=5353)
    assert p.dst == 0x0A60000A and q.dst == 0x0AF40207 and q.dport == 5353
    assert q.length == p.length and q.to_bytes() == scapy_checksums(q.to_bytes())


def test_replace_payload_follows_length():
    p = Packet(src=1, dst=2, proto=17, sport=1, dport=2, payload=b"ab")
    assert (p.length, p.udp_len) == (30, 10)
    q = p.replace(payload=b"abcd")
    assert (q.length, q.udp_len) == (32, 12)


def test_replace_first_fragment_checksum_incremental():
    whole = IP(src="1.2.3.4", dst="5.6.7.8") / TCP(sport=1, dport=2) / (b"z" * 64)
    first = whole.fragment(40)[0]
    p = Packet.from_scapy(first).replace(dst=0x0A000001, dport=99)
    rewritten = bytes(IP(src="1.2.3.4", dst="10.0.0.1") / TCP(sport=1, dport=99)
                      / (b"z" * 64))
    assert p.to_bytes()[20 + 16:20 + 18] == rewritten[36:38]


def test_frozen_and_hashable():
    p = Packet(src=1, dst=2, proto=6)
    with pytest.raises(AttributeError):
        p.src = 3
    assert hash(p) == hash(Packet(src=1, dst=2, proto=6))


# ---- describe -------------------------------------------------------------------------------

def test_describe():
    p = Packet.from_scapy(IP(src="10.244.1.5", dst="10.96.0.10") / TCP(sport=40000, dport=53))
    assert p.describe() == "tcp 10.244.1.5:40000 -> 10.96.0.10:53 [S]"
    assert p.replace(tcp_flags=TCP_SYN | TCP_ACK, mark=0x4000).describe() == \
        "tcp 10.244.1.5:40000 -> 10.96.0.10:53 [S.] mark 0x4000"
    assert Packet.from_scapy(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=2)
                             ).describe() == "udp 1.1.1.1:1 -> 2.2.2.2:2"
    assert Packet.from_scapy(IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(id=1, seq=2)
                             ).describe() == "icmp 1.1.1.1 -> 2.2.2.2 echo-request id 1 seq 2"
    assert Packet.from_scapy(IPv6(src="::1", dst="::2") / UDP(sport=1, dport=2)
                             ).describe() == "udp [::1]:1 -> [::2]:2"
    assert Packet.from_scapy(IP(src="1.1.1.1", dst="2.2.2.2") / SCTP(sport=1, dport=2)
                             / SCTPChunkInit()).describe() == "sctp 1.1.1.1:1 -> 2.2.2.2:2 [INIT]"


# ---- hypothesis round trips -----------------------------------------------------------------

u8, u16, u32 = (st.integers(0, (1 << n) - 1) for n in (8, 16, 32))
ipv4 = u32.map(lambda v: ".".join(str(b) for b in v.to_bytes(4, "big")))
data = st.binary(max_size=64)
tcp_options = st.lists(st.sampled_from([b"\x01", b"\x02\x04\x05\xb4", b"\x04\x02",
                                        b"\x03\x03\x07", b"\x08\x0a" + b"\1" * 8]),
                       max_size=4).map(b"".join)


@st.composite
def ip_header(draw, proto):
    return IP(src=draw(ipv4), dst=draw(ipv4), ttl=draw(u8), tos=draw(u8), id=draw(u16),
              flags=draw(st.sampled_from([0, 2])), proto=proto)


@given(st.data(), u16, u16, u32, u32, u8, st.integers(0, 15), u16, u16, tcp_options, data)
def test_tcp_roundtrip(d, sport, dport, seq, ack, flags, reserved, window, urg, opts, payload):
    ip = d.draw(ip_header(6))
    opts += bytes(-len(opts) % 4)
    raw = bytearray(bytes(TCP(sport=sport, dport=dport, seq=seq, ack=ack, window=window,
                              urgptr=urg)) + opts)
    raw[12] = ((5 + len(opts) // 4) << 4) | reserved
    raw[13] = flags
    raw[16:18] = b"\0\0"
    pkt = IP(bytes(ip / TCP(bytes(raw)) / payload))
    pkt[TCP].chksum = None
    pkt = IP(bytes(pkt))
    p = roundtrip(pkt)
    assert (p.sport, p.dport, p.tcp_seq, p.tcp_ack, p.tcp_flags, p.tcp_reserved) == (
        sport, dport, seq, ack, flags, reserved)
    assert p.payload == payload


@given(st.data(), u16, u16, data)
def test_udp_roundtrip(d, sport, dport, payload):
    p = roundtrip(d.draw(ip_header(17)) / UDP(sport=sport, dport=dport) / payload)
    assert (p.sport, p.dport, p.payload) == (sport, dport, payload)


@given(st.data(), u8, u8, u32, data)
def test_icmp_roundtrip(d, itype, code, rest, payload):
    if itype in (3, 4, 5, 11, 12):
        payload = b""        # errors quote a datagram: tested separately
    pkt = d.draw(ip_header(1)) / ICMP(type=itype, code=code) / payload
    raw = bytearray(bytes(pkt))
    raw[24:28] = rest.to_bytes(4, "big")
    pkt = IP(bytes(raw))
    pkt[ICMP].chksum = None
    p = roundtrip(IP(bytes(pkt)))
    assert (p.icmp_type, p.icmp_code, p.icmp_rest) == (itype, code, rest)


@given(st.data(), u16, u16, u32, st.binary(min_size=1, max_size=40))
def test_sctp_roundtrip(d, sport, dport, tag, chunk_data):
    p = roundtrip(d.draw(ip_header(132)) / SCTP(sport=sport, dport=dport, tag=tag)
                  / SCTPChunkData(data=chunk_data))
    assert (p.sport, p.dport, p.sctp_vtag, p.sctp_chunks[0][0]) == (sport, dport, tag, 0)


@given(st.data(), u16, u16, st.integers(1, 60), u8)
def test_icmp_error_roundtrip(d, sport, dport, cut, code):
    orig = d.draw(ip_header(17)) / UDP(sport=sport, dport=dport) / (b"x" * 60)
    quoted = bytes(orig)[:20 + cut]
    p = roundtrip(IP(src="9.9.9.9", dst="1.1.1.1") / ICMP(type=3, code=code) / Raw(quoted))
    if cut >= 4:
        assert p.inner is not None and p.inner.sport == sport


@given(st.data(), st.integers(8, 40))
def test_fragment_roundtrip(d, size):
    whole = d.draw(ip_header(6)) / TCP(sport=1, dport=2) / (b"y" * 100)
    for frag in whole.fragment(size * 8 // 8 * 8):
        p = roundtrip(frag)
        if frag.frag:
            assert not p.has_l4 and p.sport == 0


@given(ipv4, ipv4, u16, u16, ipv4, u16)
def test_replace_matches_scapy(src, dst, sport, dport, new_dst, new_dport):
    p = Packet.from_scapy(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport) / b"abc")
    q = p.replace(dst=int.from_bytes(bytes(map(int, new_dst.split("."))), "big"),
                  dport=new_dport)
    assert q.to_bytes() == bytes(IP(src=src, dst=new_dst) / TCP(sport=sport, dport=new_dport)
                                 / b"abc")


# ---- packetopts -----------------------------------------------------------------------------

def parse(*argv):
    parser = argparse.ArgumentParser()
    add_packet_arguments(parser)
    return packet_from_args(parser.parse_args(list(argv)))


def test_opts_defaults():
    p, ctx = parse("-d", "10.96.0.10", "-i", "eth0")
    assert ctx == PacketContext(arrives_on="eth0", local=False, ctstate=CtState.NEW)
    assert p.describe() == "tcp 192.0.2.1:40000 -> 10.96.0.10:80 [S]"
    assert (p.length, p.ttl, p.tos, p.mark, p.iif) == (40, 64, 0, 0, "eth0")
    assert p.to_bytes() == scapy_checksums(p.to_bytes())


def test_opts_full():
    p, ctx = parse("-p", "udp", "-s", "10.244.1.5", "--sport", "40000", "-d", "10.96.0.10",
                   "--dport", "53", "-i", "eth0", "--mark", "0x4000", "--ttl", "3",
                   "--tos", "16", "--length", "100", "--ctstate", "ESTABLISHED")
    assert p.describe() == "udp 10.244.1.5:40000 -> 10.96.0.10:53 mark 0x4000"
    assert (p.length, p.udp_len, p.ttl, p.tos) == (100, 80, 3, 16)
    assert ctx.ctstate == CtState.ESTABLISHED
    assert len(p.to_bytes()) == 100


def test_opts_local_and_flags():
    p, ctx = parse("-d", "10.96.0.10", "--local", "--tcp-flags", "SYN,ACK,ECE")
    assert ctx.local and ctx.arrives_on is None and ctx.auto_src and p.src == 0
    assert p.tcp_flags == TCP_SYN | TCP_ACK | TCP_ECE and p.iif == ""


def test_opts_icmp():
    p, _ = parse("-p", "icmp", "-d", "1.2.3.4", "-i", "eth0")
    assert (p.icmp_type, p.icmp_code, p.length) == (8, 0, 28)
    p, _ = parse("-p", "icmp", "--icmp-type", "port-unr", "-d", "1.2.3.4", "-i", "eth0")
    assert (p.icmp_type, p.icmp_code) == (3, 3)
    p, _ = parse("-p", "icmp", "--icmp-type", "3/13", "-d", "1.2.3.4", "-i", "eth0")
    assert (p.icmp_type, p.icmp_code) == (3, 13)
    p, _ = parse("-p", "icmpv6", "--icmp-type", "echo-reply", "-d", "::1", "-i", "eth0")
    assert (p.family, p.icmp_type) == (6, 129)


def test_opts_sctp_fragment_number():
    p, _ = parse("-p", "sctp", "--dport", "3868", "-d", "1.2.3.4", "-i", "eth0")
    assert p.sctp_chunks == ((1, 0),) and p.length == 52
    p, _ = parse("-p", "udp", "--fragment", "-d", "1.2.3.4", "-i", "eth0")
    assert p.frag == 185 and not p.has_l4 and p.length == 20
    p, _ = parse("-p", "47", "-d", "1.2.3.4", "-i", "eth0")
    assert p.proto == 47 and p.length == 20
    p, _ = parse("-d", "2001:db8::2", "-i", "eth0")
    assert p.family == 6 and p.length == 60


@pytest.mark.parametrize("argv, option", [
    (["-d", "1.2.3.4"], "-i"),
    (["-d", "1.2.3.4", "-i", "eth0", "--local"], "-i"),
    (["-i", "eth0"], "-d"),
    (["-d", "1.2.3.400", "-i", "eth0"], "-d"),
    (["-d", "1.2.3.4", "-s", "::1", "-i", "eth0"], "-s"),
    (["-d", "1.2.3.4", "-p", "nope", "-i", "eth0"], "-p"),
    (["-d", "1.2.3.4", "-p", "all", "-i", "eth0"], "-p"),
    (["-d", "1.2.3.4", "--dport", "70000", "-i", "eth0"], "--dport"),
    (["-d", "1.2.3.4", "--sport", "x", "-i", "eth0"], "--sport"),
    (["-d", "1.2.3.4", "-p", "icmp", "--dport", "5", "-i", "eth0"], "--dport"),
    (["-d", "1.2.3.4", "--tcp-flags", "SYN,BOGUS", "-i", "eth0"], "--tcp-flags"),
    (["-d", "1.2.3.4", "-p", "udp", "--tcp-flags", "SYN", "-i", "eth0"], "--tcp-flags"),
    (["-d", "1.2.3.4", "-p", "icmp", "--icmp-type", "nope", "-i", "eth0"], "--icmp-type"),
    (["-d", "1.2.3.4", "-p", "icmp", "--icmp-type", "any", "-i", "eth0"], "--icmp-type"),
    (["-d", "1.2.3.4", "--icmp-type", "8", "-i", "eth0"], "--icmp-type"),
    (["-d", "1.2.3.4", "--length", "10", "-i", "eth0"], "--length"),
    (["-d", "1.2.3.4", "--ttl", "256", "-i", "eth0"], "--ttl"),
    (["-d", "1.2.3.4", "--tos", "-1", "-i", "eth0"], "--tos"),
    (["-d", "1.2.3.4", "--mark", "0x100000000", "-i", "eth0"], "--mark"),
    (["-d", "1.2.3.4", "--ctstate", "NEW,ESTABLISHED", "-i", "eth0"], "--ctstate"),
    (["-d", "1.2.3.4", "--ctstate", "BOGUS", "-i", "eth0"], "--ctstate"),
    (["-d", "1.2.3.4", "--fragment", "--dport", "5", "-i", "eth0"], "--dport"),
    (["-d", "::1", "-p", "icmp", "-i", "eth0"], "-p"),
])
def test_opts_errors(argv, option):
    with pytest.raises(ParseError) as info:
        parse(*argv)
    assert info.value.message.startswith(option + ":")


ipv6 = st.integers(0, (1 << 128) - 1).map(
    lambda v: __import__("ipaddress").IPv6Address(v).compressed)


@given(ipv6, ipv6, u8, st.integers(0, 0xFFFFF), u8, st.sampled_from([6, 17, 58, 132]), u16,
       u16, data)
def test_ipv6_roundtrip(src, dst, tc, fl, hlim, proto, sport, dport, payload):
    l4 = {6: TCP(sport=sport, dport=dport), 17: UDP(sport=sport, dport=dport),
          58: ICMPv6EchoRequest(id=sport, seq=dport),
          132: SCTP(sport=sport, dport=dport) / SCTPChunkData(data=b"d")}[proto]
    p = roundtrip(IPv6(src=src, dst=dst, tc=tc, fl=fl, hlim=hlim) / l4 / payload)
    assert (p.family, p.proto, p.tos, p.flowlabel, p.ttl) == (6, proto, tc, fl, hlim)
