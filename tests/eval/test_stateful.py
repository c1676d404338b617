"""Node.send: connection tracking wired into the pipeline (issue 4).

Expectations come from the kernel's code paths named in each test (nf_nat_inet_fn,
nf_nat_packet, get_unique_tuple, nf_nat_icmp_reply_translation, __nf_conntrack_confirm);
the same behaviours are compared with a real kernel in tests/kernel/test_replay_vs_kernel.py.
"""
from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

import nfemu
from nfemu.host import Host
from nfemu.util import ipv4_to_int
from nfemu.node import Node

NAT = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080
-A PREROUTING -d 10.96.0.10/32 -p udp --dport 53 -j DNAT --to-destination 10.244.1.5:5353
-A POSTROUTING -s 192.168.0.0/24 -o eth1 -j SNAT --to-source 10.244.1.1
COMMIT
"""
CLIENT, OTHER, VIP, POD, NODE1 = "192.168.0.9", "192.168.0.10", "10.96.0.10", "10.244.1.5", "10.244.1.1"


def node(rules: str = NAT) -> Node:
    host = Host.from_options(["eth0=192.168.0.2/24", "eth1=10.244.1.1/24"])
    return Node(nfemu.loads(rules), host, seed=7)



def syn(src=CLIENT, sport=40000, flags="S", seq=100, ack=0):
    return IP(src=src, dst=VIP) / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack)


def test_first_packet_runs_the_nat_chains_later_ones_use_the_binding():
    n = node()
    first = n.send(syn(), iface="eth0", now=1.0)
    assert first.ctinfo == "NEW"
    assert [(s.table, s.chain) for s in first.path] == [("nat", "PREROUTING"),
                                                        ("nat", "POSTROUTING")]
    # a retransmitted SYN before any reply: same entry, still NEW (no reply seen), and
    # nf_nat_inet_fn does not run the chains again (the manips are initialised)
    again = n.send(syn(), iface="eth0", now=2.0)
    assert again.ctinfo == "NEW" and again.path == []
    assert again.ct is first.ct
    for j in (first, again):
        p = j.packet
        assert (p.src, p.dst, p.sport, p.dport) == (ipv4_to_int(NODE1), ipv4_to_int(POD),
                                                    40000, 8080)
    # nat counters count the connection's first packet only
    assert n.counters()[("nat", "PREROUTING", 0)][0] == 1
    assert len(n.conntrack) == 1


def test_reply_is_un_nated_both_ways():
    n = node()
    n.send(syn(), iface="eth0", now=1.0)
    reply = IP(src=POD, dst=NODE1) / TCP(sport=8080, dport=40000, flags="SA", seq=7, ack=101)
    j = n.send(reply, iface="eth1", now=1.1)
    assert j.ctinfo == "ESTABLISHED_REPLY"
    p = j.packet
    # nf_nat_packet: PREROUTING undoes the SNAT (dst), POSTROUTING undoes the DNAT (src)
    assert (p.src, p.sport, p.dst, p.dport) == (ipv4_to_int(VIP), 80, ipv4_to_int(CLIENT), 40000)
    assert j.out_iface == "eth0"
    (entry,) = n.conntrack.entries()
    assert entry.status & nfemu.conntrack.IPS_SEEN_REPLY


def test_second_udp_datagram_before_a_reply_uses_the_binding():
    n = node()
    q = IP(src=CLIENT, dst=VIP) / UDP(sport=5000, dport=53) / b"q"
    a, b = n.send(q, iface="eth0", now=1.0), n.send(q, iface="eth0", now=1.5)
    assert a.path and not b.path
    assert b.packet.dport == 5353 and b.packet.dst == ipv4_to_int(POD)
    assert n.counters()[("nat", "PREROUTING", 1)] == (1, a.packet.length)


def test_snat_remaps_the_source_port_only_on_a_clash():
    n = node()
    one = n.send(syn(CLIENT), iface="eth0", now=1.0)
    two = n.send(syn(OTHER), iface="eth0", now=1.0)
    # get_unique_tuple: the first keeps its port (the tuple is free); the second would
    # give the same reply tuple, so nf_nat_l4proto_unique_tuple picks another port in
    # 1024-65535 (the kernel from a random offset; nfemu the next free one)
    assert one.packet.sport == 40000
    assert two.packet.sport != 40000 and 1024 <= two.packet.sport <= 65535
    replies = {}
    for j in (one, two):
        r = IP(src=POD, dst=NODE1) / TCP(sport=8080, dport=j.packet.sport, flags="SA")
        replies[j.packet.sport] = n.send(r, iface="eth1", now=1.2).packet.dst
    assert replies == {40000: ipv4_to_int(CLIENT), two.packet.sport: ipv4_to_int(OTHER)}


def test_nat_port_hint_scripts_the_kernels_draw():
    n = node()
    n.nat_port_hint = lambda pkt, first, last: 50000
    n.send(syn(CLIENT), iface="eth0", now=1.0)
    assert n.send(syn(OTHER), iface="eth0", now=1.0).packet.sport == 50000


def test_null_binding_remaps_a_clashing_source_port():
    # no SNAT rule at all: the POSTROUTING null binding still runs get_unique_tuple, and a
    # second connection whose DNAT makes its tuple clash with the first gets a new port
    rules = """*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080
COMMIT
"""
    n = node(rules)
    direct = IP(src=CLIENT, dst=POD) / TCP(sport=40000, dport=8080, flags="S")
    a = n.send(direct, iface="eth0", now=1.0)
    b = n.send(syn(CLIENT), iface="eth0", now=1.0)
    assert a.packet.sport == 40000
    assert b.packet.dst == ipv4_to_int(POD) and b.packet.dport == 8080
    assert b.packet.sport != 40000
    assert len(n.conntrack) == 2


def test_icmp_error_is_related_and_translated_inside_and_out():
    n = node()
    q = IP(src=CLIENT, dst=VIP) / UDP(sport=5000, dport=53) / b"q"
    out = n.send(q, iface="eth0", now=1.0).packet
    quoted = IP(bytes(out.to_scapy()))
    err = IP(src=POD, dst=NODE1) / ICMP(type=3, code=3) / quoted
    j = n.send(err, iface="eth1", now=1.1)
    assert j.ctinfo == "RELATED_REPLY" and j.path == []
    p = j.packet
    assert (p.src, p.dst) == (ipv4_to_int(VIP), ipv4_to_int(CLIENT))
    inner = p.inner
    assert (inner.src, inner.dst, inner.sport, inner.dport) == (
        ipv4_to_int(CLIENT), ipv4_to_int(VIP), 5000, 53)
    # an error about no connection is INVALID and gets no NAT
    stray = IP(src=POD, dst=NODE1) / ICMP(type=3, code=3) / IP(src=NODE1, dst=POD) / UDP(
        sport=1, dport=2)
    assert n.send(stray, iface="eth1", now=1.2).ctinfo == "INVALID"


def test_notrack_packets_are_untracked_and_not_nated():
    rules = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j CT --notrack\nCOMMIT\n" + NAT
    n = node(rules)
    j = n.send(syn(), iface="eth0", now=1.0)
    assert j.ctinfo == "UNTRACKED" and j.ct is None
    assert j.packet.dst == ipv4_to_int(VIP)
    assert len(n.conntrack) == 0


def test_raw_sees_no_entry_and_filter_sees_the_state():
    rules = """*raw
:PREROUTING ACCEPT [0:0]
-A PREROUTING -m conntrack --ctstate INVALID
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate NEW -p tcp --syn -j ACCEPT
COMMIT
"""
    n = node(rules)
    fwd = IP(src=CLIENT, dst=POD) / TCP(sport=1234, dport=80, flags="S")
    assert n.send(fwd, iface="eth0", now=1).verdict.name == "ACCEPT"
    back = IP(src=POD, dst=CLIENT) / TCP(sport=80, dport=1234, flags="SA", ack=1)
    assert n.send(back, iface="eth1", now=1.1).verdict.name == "ACCEPT"
    # a mid-stream ACK of no connection: conntrack picks it up as NEW (tcp_loose), not SYN
    stray = IP(src=CLIENT, dst=POD) / TCP(sport=999, dport=80, flags="A")
    assert n.send(stray, iface="eth0", now=1.2).verdict.name == "DROP"
    c = n.counters()
    assert c[("raw", "PREROUTING", 0)][0] == 3       # conntrack runs after raw
    assert c[("filter", "FORWARD", 0)][0] == 1
    assert c[("filter", "FORWARD", 1)][0] == 1


def test_bad_checksum_is_invalid_in_prerouting():
    n = node()
    j = n.send(syn(), iface="eth0", now=1.0, csum_bad=True)
    assert j.ctinfo == "INVALID" and j.ct is None
    assert j.packet.dst == ipv4_to_int(VIP)           # no entry: no NAT
    assert len(n.conntrack) == 0


def test_timeouts_run_on_packet_time():
    n = node()
    q = IP(src=CLIENT, dst=VIP) / UDP(sport=5000, dport=53) / b"q"
    first = n.send(q, iface="eth0", now=100.0)
    # UDP unreplied: 30 s; at 131 s the entry is gone and the chains run again
    later = n.send(q, iface="eth0", now=131.0)
    assert later.ct is not first.ct and later.path
    assert n.counters()[("nat", "PREROUTING", 1)][0] == 2


def test_affinity_with_recent_follows_packet_time():
    rules = """*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
:SEP1 - [0:0]
:SEP2 - [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j SVC
-A SVC -m recent --name SEP1 --rcheck --seconds 10 --reap -j SEP1
-A SVC -m recent --name SEP2 --rcheck --seconds 10 --reap -j SEP2
-A SVC -m statistic --mode random --probability 0.5 -j SEP1
-A SVC -j SEP2
-A SEP1 -p tcp -m recent --name SEP1 --set -j DNAT --to-destination 10.244.1.5:8080
-A SEP2 -p tcp -m recent --name SEP2 --set -j DNAT --to-destination 10.244.1.6:8080
COMMIT
"""
    n = node(rules)
    first = n.send(syn(sport=1000), iface="eth0", now=1000.0).packet.dst
    within = [n.send(syn(sport=1001 + i), iface="eth0", now=1001.0 + i).packet.dst
              for i in range(8)]
    assert set(within) == {first}
    seen = {n.send(syn(sport=2000 + i), iface="eth0", now=2000.0 + 20 * i).packet.dst
            for i in range(40)}
    assert len(seen) == 2          # past --seconds the choice is random again


def test_outcomes_and_trace_stay_stateless():
    n = node()
    n.trace(syn(), iface="eth0")
    assert len(n.conntrack) == 0
    (o,) = n.outcomes(syn(), iface="eth0")
    assert o.journey.packet.dport == 8080


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_both_engines_send_alike(engine):
    host = Host.from_options(["eth0=192.168.0.2/24", "eth1=10.244.1.1/24"])
    n = Node(nfemu.loads(NAT), host, seed=3, engine=engine)
    a = n.send(syn(), iface="eth0", now=1)
    b = n.send(IP(src=POD, dst=NODE1) / TCP(sport=8080, dport=40000, flags="SA"),
               iface="eth1", now=2)
    assert (a.packet.dport, b.packet.sport, b.ctinfo) == (8080, 80, "ESTABLISHED_REPLY")
