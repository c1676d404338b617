"""kube-proxy scenarios on a dump the kernel produced (corpus/cases/kube/nodeport): a NodePort
reached on a node that does not host the pods. Expected behaviour from kube-proxy's design
(and the kernel's NAT rules); the kernel differential tests of issue 3 will confirm it."""
from fractions import Fraction
from pathlib import Path

import nfemu
from nfemu.engine import Verdict
from nfemu.host import Host
from nfemu.node import Node
from nfemu.packet import Packet

ROOT = Path(__file__).resolve().parents[2]


def ip(text):
    a, b, c, d = map(int, text.split("."))
    return a << 24 | b << 16 | c << 8 | d


def node():
    rules = nfemu.load(ROOT / "examples" / "kube-nodeport.rules")
    host = Host.from_options(["eth0=192.168.0.2/24"], default_gateway="192.168.0.1")
    return Node(rules, host, seed=7)


def test_nodeport_from_outside_reaches_both_endpoints_masqueraded():
    pkt = Packet(src=ip("192.168.0.50"), dst=ip("192.168.0.2"), proto=6, sport=40000,
                 dport=30080, tcp_flags=0x02)
    outcomes = node().outcomes(pkt, iface="eth0")
    got = {(o.journey.packet.dst, o.journey.packet.dport): o.probability for o in outcomes}
    assert got == {(ip("10.244.1.10"), 8080): Fraction(1, 2),
                   (ip("10.244.1.11"), 8080): Fraction(1, 2)}
    for o in outcomes:
        j = o.journey
        assert (j.verdict, j.where, j.out_iface) == (Verdict.ACCEPT, "forward", "eth0")
        assert j.packet.src == ip("192.168.0.2")          # masqueraded to the node's address
        assert j.packet.mark & 0x4000 == 0                # KUBE-POSTROUTING clears the bit
        chains = [s.chain for s in j.steps if s.table == "nat" and s.rule is not None]
        assert chains[:4] == ["PREROUTING", "KUBE-SERVICES", "KUBE-NODEPORTS",
                              "KUBE-EXT-GNZBNJ2PO5MGZ6GT"]
        assert "KUBE-POSTROUTING" in chains


def test_clusterip_from_a_pod_is_not_masqueraded():
    pkt = Packet(src=ip("10.244.0.5"), dst=ip("10.96.0.42"), proto=6, sport=40000, dport=80,
                 tcp_flags=0x02)
    outcomes = node().outcomes(pkt, iface="eth0")
    assert sum(o.probability for o in outcomes) == 1
    assert {o.journey.packet.src for o in outcomes} == {ip("10.244.0.5")}
    assert {o.journey.packet.dst for o in outcomes} == {ip("10.244.1.10"), ip("10.244.1.11")}


def test_unknown_port_on_the_node_is_delivered_locally_untouched():
    pkt = Packet(src=ip("192.168.0.50"), dst=ip("192.168.0.2"), proto=6, dport=22)
    (only,) = node().outcomes(pkt, iface="eth0")
    assert only.probability == 1 and only.journey.where == "local"
    assert only.journey.packet.dst == ip("192.168.0.2")


def test_clusterip_from_the_node_itself_is_masqueraded_to_its_own_address():
    pkt = Packet(dst=ip("10.96.0.42"), proto=6, sport=40000, dport=80, tcp_flags=0x02)
    outcomes = node().outcomes(pkt, local=True)
    assert {(o.journey.where, o.journey.out_iface) for o in outcomes} == {("out", "eth0")}
    assert {o.journey.packet.src for o in outcomes} == {ip("192.168.0.2")}
    assert all(e.detail.get("unchanged") in (None, True) and "0.0.0.0" not in str(e.detail)
               for o in outcomes for e in o.journey.events)
