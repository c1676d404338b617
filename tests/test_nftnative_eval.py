"""Packet evaluation of iptables-nft's native tcp/udp matches: what the kernel runs, not what
iptables-save prints.

iptables-nft 1.8.9 stores ``-m tcp``/``-m udp`` tests as nf_tables comparisons (seen with
``nft --debug=netlink list ruleset``); iptables-nft-save prints one match rebuilt from all of
them. Each case below is a rule, the line iptables-nft-save 1.8.9 printed for it, and packets
with two expectations: does the rule match it as restored from the rule, and as restored from
the saved line (what a restore of the dump runs). The expectations are the kernel's:
tests/kernel/test_nftnative_vs_kernel.py loads these very cases into a namespace, sends these
packets, and asserts the kernel's rule counters equal them, for the rules and for their dump.

The stored comparisons themselves (``Tcp.nft``/``Udp.nft``) are checked against the
``nft --debug=netlink`` listings of the same rules (copied into PROGRAMS below; the kernel
test compares them with a live listing for generated rules).
"""
from __future__ import annotations

import pytest

import nfemu
from nfemu.ext.tcp import Cmp, Tcp
from nfemu.ext.udp import Udp
from nfemu.host import Host, ip4
from nfemu.node import Node
from nfemu.packet import ICMP, TCP, TCP_ACK, TCP_PSH, TCP_SYN, TCP_URG, UDP, Packet

NODE_IP = "192.168.50.2"

SYN, ACK, URG = TCP_SYN, TCP_ACK, TCP_URG
# a TCP MSS option (kind 2), for --tcp-option 2
MSS = bytes([2, 4, 5, 0xB4])


def tcp(sport: int, dport: int, flags: int = SYN, options: bytes = b"") -> tuple:
    return ("tcp", sport, dport, flags, options)


def udp(sport: int, dport: int) -> tuple:
    return ("udp", sport, dport)


def icmp(payload: bytes = b"") -> tuple:
    """An echo request: transport header bytes 0-1 are type 8, code 0 (0x0800 = 2048), byte
    13 is payload[5] (8-byte ICMP header)."""
    return ("icmp", payload)


def make_packet(spec: tuple, src: str) -> Packet:
    common = {"src": ip4(src), "dst": ip4(NODE_IP), "ttl": 64, "ip_id": 7}
    kind = spec[0]
    if kind == "tcp":
        _, sport, dport, flags, options = spec
        return Packet(**common, proto=TCP, sport=sport, dport=dport, tcp_flags=flags,
                      tcp_options=options, tcp_seq=1000, tcp_window=64240)
    if kind == "udp":
        return Packet(**common, proto=UDP, sport=spec[1], dport=spec[2])
    return Packet(**common, proto=ICMP, icmp_type=8, icmp_code=0, icmp_rest=0x1234 << 16 | 1,
                  payload=spec[1])


# (rule, the line iptables-nft-save 1.8.9 printed for it, [(packet, matches the rule as
# restored, matches the saved line as restored)])
CASES = [
    # both single nonzero ports negated: ONE 32-bit "not equal", i.e. not (both equal)
    ("-p tcp -m tcp ! --sport 22 ! --dport 23", "-p tcp -m tcp ! --sport 22 ! --dport 23",
     [(tcp(22, 23), False, False), (tcp(22, 24), True, True), (tcp(21, 23), True, True),
      (tcp(21, 24), True, True)]),
    # the same tests in two matches: two 16-bit "not equal", printed as the line above
    ("-p tcp -m tcp ! --sport 22 -m tcp ! --dport 23", "-p tcp -m tcp ! --sport 22 ! --dport 23",
     [(tcp(22, 23), False, False), (tcp(22, 24), False, True), (tcp(21, 23), False, True),
      (tcp(21, 24), True, True)]),
    ("-p udp -m udp ! --sport 22 ! --dport 23", "-p udp -m udp ! --sport 22 ! --dport 23",
     [(udp(22, 23), False, False), (udp(22, 24), True, True), (udp(21, 23), True, True)]),
    # port 0 is not a single port for the 32-bit form: two tests, "neither equal"
    ("-p udp -m udp ! --sport 0 ! --dport 23", "-p udp -m udp ! --sport 0 ! --dport 23",
     [(udp(0, 23), False, False), (udp(0, 24), False, False), (udp(1, 23), False, False),
      (udp(1, 24), True, True)]),
    # both equal: one 32-bit "equal"
    ("-p tcp -m tcp --sport 22 --dport 23", "-p tcp -m tcp --sport 22 --dport 23",
     [(tcp(22, 23), True, True), (tcp(22, 24), False, False), (tcp(21, 23), False, False)]),
    ("-p tcp -m tcp --sport 0 --dport 0", "-p tcp -m tcp --sport 0 --dport 0",
     [(tcp(0, 0), True, True), (tcp(0, 1), False, False)]),
    # dport == 3 and dport > 1, printed as the range 2:3
    ("-p udp -m udp --dport 3 -m udp ! --dport 0:1", "-p udp -m udp --dport 2:3",
     [(udp(9, 3), True, True), (udp(9, 2), False, True), (udp(9, 1), False, False),
      (udp(9, 4), False, False)]),
    # dport != 1 and dport == 2; the negation read back stays: printed "! --dport 2"
    ("-p tcp -m tcp ! --dport 1 -m tcp --dport 2", "-p tcp -m tcp ! --dport 2",
     [(tcp(9, 1), False, True), (tcp(9, 2), True, False), (tcp(9, 3), False, True)]),
    # dport == 5 and dport not in 100:65535 (a range test), printed as the last one
    ("-p tcp -m tcp --dport 5 -m tcp ! --dport 100:65535", "-p tcp -m tcp ! --dport 100:65535",
     [(tcp(9, 5), True, True), (tcp(9, 6), False, True), (tcp(9, 100), False, False),
      (tcp(9, 65535), False, False)]),
    # not (sport 22 and dport 23), and dport == 5: printed as a 32-bit "not equal" of 22/5
    ("-p tcp -m tcp ! --sport 22 ! --dport 23 -m tcp --dport 5",
     "-p tcp -m tcp ! --sport 22 ! --dport 5",
     [(tcp(22, 5), True, False), (tcp(22, 23), False, True), (tcp(21, 5), True, True),
      (tcp(21, 6), False, True)]),
    # two flag tests, both run; the last prints
    ("-p tcp -m tcp --tcp-flags SYN SYN -m tcp --tcp-flags URG URG",
     "-p tcp -m tcp --tcp-flags URG URG",
     [(tcp(9, 9, SYN), False, False), (tcp(9, 9, SYN | URG), True, True),
      (tcp(9, 9, ACK | URG), False, True), (tcp(9, 9, ACK), False, False)]),
    # a flags negation read back stays
    ("-p tcp -m tcp ! --tcp-flags SYN SYN -m tcp --tcp-flags URG URG",
     "-p tcp -m tcp ! --tcp-flags URG URG",
     [(tcp(9, 9, ACK | URG), True, False), (tcp(9, 9, SYN | URG), False, False),
      (tcp(9, 9, ACK), False, True), (tcp(9, 9, SYN), False, True)]),
    # flags test with cmp bits outside the mask: never equal
    ("-p tcp -m tcp --tcp-flags SYN SYN,ACK", "-p tcp -m tcp --tcp-flags SYN SYN,ACK",
     [(tcp(9, 9, SYN), False, False), (tcp(9, 9, ACK), False, False)]),
    # stores nothing: every tcp packet
    ("-p tcp -m tcp ! --tcp-flags NONE NONE", "-p tcp",
     [(tcp(9, 9, SYN), True, True), (tcp(9, 9, ACK | TCP_PSH), True, True),
      (udp(9, 9), False, False)]),
    # mask NONE with a nonzero cmp: native (not all fields zero), but nothing stored: every
    # tcp packet (tcp_mt would test (flags & 0) == ALL: never)
    ("-p tcp -m tcp --tcp-flags NONE ALL", "-p tcp",
     [(tcp(9, 9, SYN), True, True), (tcp(9, 9, ACK), True, True)]),
    ("-p udp -m udp ! --sport 0:65535", "-p udp",
     [(udp(9, 9), True, True), (tcp(9, 9), False, False)]),
    # "! -p tcp": the port test reads bytes 0-1 of any transport header (ICMP: type, code)
    ("! -p tcp -m tcp --sport 2048", "! -p tcp -m tcp --sport 2048",
     [(icmp(), True, True), (udp(2048, 5), True, True), (tcp(2048, 5), False, False),
      (udp(2049, 5), False, False)]),
    ("! -p udp -m udp ! --sport 22 ! --dport 23", "! -p udp -m udp ! --sport 22 ! --dport 23",
     [(tcp(22, 23), False, False), (tcp(22, 24), True, True), (udp(21, 24), False, False)]),
    # flags are byte 13 of whatever transport header; too short a header: no match at all
    ("! -p tcp -m tcp --tcp-flags SYN,ACK SYN", "! -p tcp -m tcp --tcp-flags SYN,ACK SYN",
     [(icmp(bytes(5) + b"\x02"), True, True), (icmp(bytes(6)), False, False),
      (icmp(), False, False), (tcp(9, 9, SYN), False, False)]),
    ("! -p tcp -m tcp ! --tcp-flags SYN,ACK SYN", "! -p tcp -m tcp ! --tcp-flags SYN,ACK SYN",
     [(icmp(bytes(5) + b"\x02"), False, False), (icmp(bytes(6)), True, True),
      (icmp(), False, False)]),
    # 0:hi is "<= hi", lo:65535 a range, a reversed udp range never holds
    ("-p udp -m udp ! --dport 0:65534", "-p udp -m udp --dport 65535",
     [(udp(9, 65535), True, True), (udp(9, 65534), False, False)]),
    ("-p udp -m udp --dport 100:65535", "-p udp -m udp --dport 100:65535",
     [(udp(9, 99), False, False), (udp(9, 100), True, True), (udp(9, 65535), True, True)]),
    ("-p udp -m udp --dport 5:4", "-p udp -m udp --dport 5:4",
     [(udp(9, 4), False, False), (udp(9, 5), False, False)]),
    ("-p udp -m udp ! --dport 5:4", "-p udp -m udp ! --dport 5:4",
     [(udp(9, 4), True, True), (udp(9, 1000), True, True)]),
    # --tcp-option keeps its match an xtables one (printed on its own); the other two merge
    ("-p tcp -m tcp --tcp-option 2 -m tcp ! --sport 3 -m tcp ! --dport 4",
     "-p tcp -m tcp --tcp-option 2 -m tcp ! --sport 3 ! --dport 4",
     [(tcp(3, 4, SYN, MSS), False, False), (tcp(3, 5, SYN, MSS), False, True),
      (tcp(2, 5, SYN, MSS), True, True), (tcp(2, 5, SYN), False, False)]),
]


def source(i: int) -> str:
    """Case i's packets come from their own address, and its rule tests it (-s)."""
    return f"10.9.{i // 200}.{i % 200 + 1}"


def ruleset_text(saved: bool) -> str:
    """Every case's rule (or saved line) in filter INPUT, without target (a counter each),
    policy DROP (no connection is confirmed: the same packets can be sent again)."""
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for i, (rule, printed, _) in enumerate(CASES):
        lines.append(f"-A INPUT -s {source(i)}/32 {printed if saved else rule}")
    return "\n".join(lines + ["COMMIT"]) + "\n"


def all_packets() -> list[Packet]:
    return [make_packet(spec, source(i)) for i, (_, _, pkts) in enumerate(CASES)
            for spec, _, _ in pkts]


def expected_counts(saved: bool) -> dict:
    """(filter, INPUT, i) -> packets case i's rule counts, as the kernel counted them."""
    return {("filter", "INPUT", i): sum(1 for _, orig, after in pkts if (after if saved else orig))
            for i, (_, _, pkts) in enumerate(CASES)}


def nfemu_counts(text: str, pkts: list[Packet]) -> dict:
    node = Node(nfemu.loads(text), Host.from_options([f"eth0={NODE_IP}/24"]), seed=1)
    for p in pkts:
        node.trace(Packet.from_bytes(p.to_bytes()), iface="eth0")
    return {("filter", "INPUT", i): node.counters.get(("filter", "INPUT", i), (0, 0))[0]
            for i in range(len(CASES))}


@pytest.mark.parametrize("saved", [False, True], ids=["restored", "dump-restored"])
def test_counts(saved):
    """Per rule, the packets nfemu counts are the kernel's (for the rules, and for the rules
    read back from their save dump)."""
    got = nfemu_counts(ruleset_text(saved), all_packets())
    want = expected_counts(saved)
    wrong = {CASES[k[2]][1 if saved else 0]: (want[k], got[k]) for k in want if want[k] != got[k]}
    assert not wrong, f"(kernel, nfemu) packet counts differ: {wrong}"


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_saved_line(i):
    """nfemu prints each rule as iptables-nft-save 1.8.9 did."""
    rule, printed, _ = CASES[i]
    rs = nfemu.loads(f"*filter\n-A INPUT {rule}\nCOMMIT\n")
    assert rs.table("filter").chain("INPUT").rules[0].save() == f"-A INPUT {printed}"


# What ``nft --debug=netlink list ruleset`` showed after iptables-nft-restore of each rule
# (payload loads from the transport header and their cmp/range/bitwise), in order.
PROGRAMS = [
    ("-p tcp -m tcp --dport 22", [Cmp("dport", "eq", 22)]),
    ("-p tcp -m tcp ! --dport 22", [Cmp("dport", "neq", 22)]),
    ("-p tcp -m tcp --dport 1:100", [Cmp("dport", "range_eq", 1, 100)]),
    ("-p tcp -m tcp ! --dport 1:100", [Cmp("dport", "range_neq", 1, 100)]),
    ("-p tcp -m tcp --dport 0:100", [Cmp("dport", "lte", 100)]),
    ("-p tcp -m tcp ! --dport 0:100", [Cmp("dport", "gt", 100)]),
    ("-p tcp -m tcp --dport 100:65535", [Cmp("dport", "range_eq", 100, 65535)]),
    ("-p tcp -m tcp ! --dport 100:65535", [Cmp("dport", "range_neq", 100, 65535)]),
    ("-p udp -m udp --dport 65535:65535", [Cmp("dport", "eq", 65535)]),
    ("-p udp -m udp ! --dport 0:65534", [Cmp("dport", "gt", 65534)]),
    ("-p udp -m udp ! --dport 5:4", [Cmp("dport", "range_neq", 5, 4)]),
    ("-p tcp -m tcp ! --sport 22 ! --dport 23", [Cmp("ports", "neq", 22 << 16 | 23)]),
    ("-p tcp -m tcp --sport 22 --dport 23", [Cmp("ports", "eq", 22 << 16 | 23)]),
    ("-p udp -m udp ! --sport 22 ! --dport 23", [Cmp("ports", "neq", 22 << 16 | 23)]),
    ("-p tcp -m tcp --sport 22 ! --dport 23", [Cmp("sport", "eq", 22), Cmp("dport", "neq", 23)]),
    ("-p tcp -m tcp ! --sport 0 ! --dport 23", [Cmp("sport", "neq", 0), Cmp("dport", "neq", 23)]),
    ("-p tcp -m tcp ! --sport 22 ! --dport 0", [Cmp("sport", "neq", 22), Cmp("dport", "neq", 0)]),
    ("-p tcp -m tcp --sport 0 --dport 0", [Cmp("sport", "eq", 0), Cmp("dport", "eq", 0)]),
    ("-p tcp -m tcp ! --sport 1:2 ! --dport 23",
     [Cmp("sport", "range_neq", 1, 2), Cmp("dport", "neq", 23)]),
    ("-p tcp -m tcp ! --sport 0:65535 --dport 5", [Cmp("dport", "eq", 5)]),
    ("-p tcp -m tcp --syn", [Cmp("flags", "eq", 0x02, 0, 0x17)]),
    ("-p tcp -m tcp ! --syn", [Cmp("flags", "neq", 0x02, 0, 0x17)]),
    ("-p tcp -m tcp --tcp-flags ALL NONE", [Cmp("flags", "eq", 0, 0, 0x3F)]),
    ("-p tcp -m tcp ! --tcp-flags SYN,ACK SYN", [Cmp("flags", "neq", 0x02, 0, 0x12)]),
    # the flags test comes first, whatever the order on the command line
    ("-p tcp -m tcp --dport 80 --syn",
     [Cmp("flags", "eq", 0x02, 0, 0x17), Cmp("dport", "eq", 80)]),
    ("-p tcp -m tcp --sport 1 --dport 2 --tcp-flags SYN SYN",
     [Cmp("flags", "eq", 0x02, 0, 0x02), Cmp("ports", "eq", 1 << 16 | 2)]),
    ("-p tcp -m tcp --tcp-flags SYN,ACK SYN -m tcp --tcp-flags FIN FIN",
     [Cmp("flags", "eq", 0x02, 0, 0x12), Cmp("flags", "eq", 0x01, 0, 0x01)]),
    ("! -p tcp -m tcp --dport 80", [Cmp("dport", "eq", 80)]),
    ("! -p udp -m udp ! --sport 22 ! --dport 23", [Cmp("ports", "neq", 22 << 16 | 23)]),
    # nothing stored
    ("-p tcp -m tcp ! --sport 0:65535", []),
    ("-p tcp -m tcp ! --tcp-flags NONE NONE", []),
    ("-p tcp -m tcp --tcp-flags NONE ALL", []),
    ("-p tcp -m tcp --tcp-flags NONE SYN --dport 3", [Cmp("dport", "eq", 3)]),
]


def stored(rule: str) -> list | None:
    """The comparisons nfemu keeps for RULE's native tcp/udp match (None: it has none)."""
    rs = nfemu.loads(f"*filter\n-A INPUT {rule}\nCOMMIT\n")
    progs = [m.nft for m in rs.table("filter").chain("INPUT").rules[0].matches
             if type(m) in (Tcp, Udp) and m.nft is not None]
    assert len(progs) <= 1
    return list(progs[0]) if progs else []


@pytest.mark.parametrize("rule,program", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_stored_comparisons(rule, program):
    assert stored(rule) == program


@pytest.mark.parametrize("rule", ["-p tcp -m tcp", "-p tcp -m tcp --sport 0:65535",
                                  "-p tcp -m tcp --tcp-flags NONE NONE",
                                  "-p tcp -m tcp --tcp-option 2 --dport 80", "-p udp -m udp"])
def test_xtables_matches_keep_no_comparisons(rule):
    """``nft --debug=netlink`` showed ``match name tcp``/``udp`` for these: no payload test."""
    rs = nfemu.loads(f"*filter\n-A INPUT {rule}\nCOMMIT\n")
    (m,) = rs.table("filter").chain("INPUT").rules[0].matches
    assert m.nft is None and not m.native


def test_short_transport_header_breaks():
    """nft_payload_eval: a load past the end of the transport header is NFT_BREAK (the rule
    does not match, the packet goes on: no hotdrop, unlike xt_tcpudp.c tcp_mt)."""
    rs = nfemu.loads("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp ! --dport 80 -j DROP\n"
                     "-A INPUT -p tcp -m tcp ! --syn -j DROP\nCOMMIT\n")
    node = Node(rs, Host.from_options([f"eth0={NODE_IP}/24"]), seed=1)
    # a TCP datagram whose total length leaves only 2 bytes of transport header
    full = make_packet(tcp(9, 9), "10.1.1.1")
    short = full.replace(length=full.header_len + 2)
    node.trace(short, iface="eth0")
    assert node.counters.get(("filter", "INPUT", 0), (0, 0))[0] == 0
    assert node.counters.get(("filter", "INPUT", 1), (0, 0))[0] == 0
    assert node.counters[("filter", "INPUT", None)][0] == 1


def test_kept_fields_are_the_printed_form():
    """The Tcp/Udp fields stay what iptables-save prints (other code indexes on them); the
    comparisons the kernel runs sit next to them."""
    rs = nfemu.loads("*filter\n-A INPUT -p udp -m udp --dport 3 -m udp ! --dport 0:1\nCOMMIT\n")
    (m,) = rs.table("filter").chain("INPUT").rules[0].matches
    assert (m.dport, m.dport_inv, m.sport, m.sport_inv) == ((2, 3), False, (0, 65535), False)
    assert m.nft == (Cmp("dport", "eq", 3), Cmp("dport", "gt", 1))
