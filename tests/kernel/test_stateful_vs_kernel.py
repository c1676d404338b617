"""Stateful NAT decisions of Node.send against the kernel: what get_unique_tuple() does
when the table already holds connections (issue 4).

Connections are first packets sent in order through a netsim node (forwarding, DNAT and
SNAT rules); nfemu's node gets the same packets through ``Node.send`` in the same order.
The kernel draws a random source port when it must remap one; the test reads that port
from ``conntrack -L`` and checks (a) it lies where nfemu says the kernel draws from and
differs from the taken one, (b) with that draw scripted (``node.nat_port_hint``) nfemu's
conntrack tuples and every counter equal the kernel's.
"""
from __future__ import annotations

import nfemu
from nfemu.host import Host, ip4
from nfemu.node import Node
from nfemu.packet import TCP_SYN, Packet
from tests.kernel.netsim import Net, kernel_counters, parse_conntrack

PEER, PEER2 = ip4("192.168.50.1"), ip4("10.50.0.2")
VIP = ip4("10.96.0.10")


def host() -> Host:
    return Host.from_options(["eth0=192.168.50.2/24", "eth1=10.50.0.1/24"],
                             default_gateway="10.50.0.2")


def syn(src, dst, sport, dport) -> Packet:
    return Packet(src=src, dst=dst, proto=6, sport=sport, dport=dport, tcp_flags=TCP_SYN,
                  tcp_seq=1000, tcp_window=64240)


def tuples(entries):
    """(orig, reply) tuples of parsed ``conntrack -L`` entries, sorted."""
    return sorted(((e.orig_src, e.orig_dst, e.orig_sport, e.orig_dport),
                   (e.reply_src, e.reply_dst, e.reply_sport, e.reply_dport)) for e in entries)


def listed(node: Node):
    """nfemu's table printed as ``conntrack -L`` and read back with the same parser."""
    table = node.conntrack
    return parse_conntrack("\n".join(table.format(e, 0.0) for e in table.entries()))


def run_kernel(rules: str, packets: list[Packet]):
    with Net(forward=True, default_route=True) as net:
        net.load(rules)
        for p in packets:                 # one at a time: the order decides the clash
            net.send([p.to_bytes()])
        return net.save(), net.ct_entries()


def run_nfemu(rules: str, packets: list[Packet], hint=None) -> Node:
    node = Node(nfemu.loads(rules), host(), seed=1)
    node.nat_port_hint = hint
    for i, p in enumerate(packets):
        node.send(p, iface="eth0", now=float(i))
    return node


def compare(kernel, node):
    saved, entries = kernel
    assert tuples(listed(node)) == tuples(entries)
    assert kernel_counters(nfemu.loads(node.counted_ruleset().save(counters=True),
                                       counters=True)) == kernel_counters(saved.ruleset)


def test_null_binding_remaps_a_clashing_source_port(kernel):
    # no SNAT anywhere: the second connection, DNATed onto the first one's tuple, gets a
    # new source port from POSTROUTING's null binding
    rules = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.50.0.2:8080
COMMIT
"""
    packets = [syn(PEER, PEER2, 40000, 8080), syn(PEER, VIP, 40000, 80)]
    k = run_kernel(rules, packets)
    second = next(e for e in k[1] if e.orig_dst == VIP)
    port = second.reply_dport
    assert port != 40000 and 1024 <= port <= 65535
    plain = run_nfemu(rules, packets)
    mine = next(e for e in listed(plain) if e.orig_dst == VIP)
    assert mine.reply_dport != 40000 and 1024 <= mine.reply_dport <= 65535
    compare(k, run_nfemu(rules, packets, hint=lambda pkt, lo, hi: port))


def test_snat_clash_and_the_same_source_reusing_its_mapping(kernel):
    # two clients with the same source port SNATed to one address: the second is
    # remapped; a second connection of the first client to another destination reuses
    # its mapping (find_appropriate_src) and the reply tuples say so
    rules = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth1 -j SNAT --to-source 10.50.0.1
COMMIT
"""
    other = ip4("192.168.50.7")
    packets = [syn(PEER, PEER2, 40000, 80), syn(other, PEER2, 40000, 80),
               syn(PEER, PEER2, 40000, 81), syn(other, PEER2, 40000, 81)]
    k = run_kernel(rules, packets)
    by_orig = {(e.orig_src, e.orig_dport): e.reply_dport for e in k[1]}
    assert by_orig[(PEER, 80)] == by_orig[(PEER, 81)] == 40000
    drawn = by_orig[(other, 80)]
    assert drawn != 40000
    # the other client's second connection reuses the mapping it got first
    assert by_orig[(other, 81)] == drawn
    compare(k, run_nfemu(rules, packets, hint=lambda pkt, lo, hi: drawn))


def _corrupt_l4(datagram: bytes) -> bytes:
    """The datagram with its transport checksum off by one (IPv4 header kept valid)."""
    d = bytearray(datagram)
    ihl = (d[0] & 15) * 4
    at = ihl + {6: 16, 17: 6, 1: 2}[d[9]]
    d[at + 1] ^= 0x01
    return bytes(d)


def test_bad_transport_checksum_is_invalid_in_prerouting(kernel):
    from tests.kernel.test_conntrack_vs_kernel import FlowNet, icmp, tcp, udp
    good = [tcp(PEER, PEER2, 1234, 80, TCP_SYN, 1), udp(PEER, PEER2, 5000, 53),
            icmp(PEER, PEER2, 8, rest=(7 << 16) | 1)]
    node = Node(nfemu.loads("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n"), host(), seed=1)
    with FlowNet(forward=True) as net:
        for d in good:
            bad = _corrupt_l4(d)
            assert net.play(bad, False) == "INVALID"
            j = node.send(Packet.from_bytes(bad), iface="eth0", now=1.0, csum_bad=True)
            assert j.ctinfo == "INVALID"
            assert net.play(d, False) == "NEW"
            assert node.send(Packet.from_bytes(d), iface="eth0", now=1.0).ctinfo == "NEW"


def test_recent_table_takes_the_mask_of_the_first_rule_loaded(kernel):
    # the first rule naming the table is never evaluated (its -s never matches), yet its
    # --mask /24 is the table's: the client .7 is found under the entry .1 set
    rules = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -s 10.9.9.9/32 -m recent --rcheck --name T --mask 255.255.255.0 --rsource
-A FORWARD -s 192.168.50.1/32 -m recent --set --name T --mask 255.255.255.255 --rsource
-A FORWARD -m recent --rcheck --name T --mask 255.255.255.255 --rsource -j ACCEPT
COMMIT
"""
    packets = [syn(PEER, PEER2, 1000, 80), syn(ip4("192.168.50.7"), PEER2, 1001, 80)]
    k = run_kernel(rules, packets)
    node = run_nfemu(rules, packets)
    assert kernel_counters(k[0].ruleset)[("filter", "FORWARD", 2)][0] == 2
    compare(k, node)


def test_connlimit_counts_live_connections(kernel):
    # three SYNs from one client (the third is over the limit and dropped, so it never
    # gets confirmed), a RST closing the first, then a fourth SYN: nf_conncount forgets the
    # unconfirmed one and the closed one, so the fourth passes
    from tests.kernel.test_conntrack_vs_kernel import FlowNet, tcp
    from nfemu.packet import TCP_RST
    rules = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m connlimit --connlimit-above 2 --connlimit-mask 32 --connlimit-saddr -j DROP
COMMIT
"""
    packets = [tcp(PEER, PEER2, 1001, 80, TCP_SYN, 100), tcp(PEER, PEER2, 1002, 80, TCP_SYN, 100),
               tcp(PEER, PEER2, 1003, 80, TCP_SYN, 100), tcp(PEER, PEER2, 1001, 80, TCP_RST, 101),
               tcp(PEER, PEER2, 1004, 80, TCP_SYN, 100), tcp(PEER, PEER2, 1005, 80, TCP_SYN, 100)]
    node = Node(nfemu.loads(rules), host(), seed=1)
    with FlowNet(forward=True) as net:
        net.load(rules)
        for i, d in enumerate(packets):
            net.play(d, False)
            node.send(Packet.from_bytes(d), iface="eth0", now=float(i))
        saved = net.save()
    kernel = kernel_counters(saved.ruleset)
    assert kernel[("filter", "FORWARD", 0)][0] == 2       # the third and the sixth SYN
    assert kernel_counters(nfemu.loads(node.counted_ruleset().save(counters=True),
                                       counters=True)) == kernel
