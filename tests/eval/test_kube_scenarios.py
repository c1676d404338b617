"""kube-proxy scenarios traced on node dumps a real kernel produced (issue 3 item 8).

The dumps are iptables-nft-save outputs of kube-proxy shaped restore input loaded into a
kernel: corpus/cases/kube/*.nft.save (corpus/regenerate.py) and corpus/kube-nodes/*.nft.save
(corpus/kube-nodes/make.py, which mirrors the services of kube-proxy's own packet-flow tests).
The node is the one make.py builds, read from its ``ip -j`` dumps: eth0 192.168.0.2/24 and
192.168.1.2/24, cni0 10.244.1.254/24 (this node's pods), default via 192.168.0.1, the rest of
the pod network 10.244.0.0/16 via the next node 192.168.0.3.

Where the expectations come from:

* which endpoints and whether the packet is masqueraded: kube-proxy's packet-flow tests
  (pkg/proxy/iptables/proxier_test.go: TestClusterIPGeneral, TestLoadBalancer, TestNodePorts,
  TestHealthCheckNodePort, TestExternalTrafficPolicyLocal/Cluster, TestNoEndpointsReject,
  TestInternalTrafficPolicy), whose expected outputs ("10.180.0.1:80, 10.180.2.1:80", masq
  true/false, "REJECT", "DROP") are restated here with this node's addresses;
* the exact share of each endpoint: from the ``--probability`` values printed in the dump,
  the way the kernel uses them (iptables stores u32 = lround(p * 2^31) and xt_statistic
  matches when get_random_u32() & 0x7FFFFFFF < u32), computed below from the dump text alone;
* where the packet goes and the masquerade address: the kernel's routing and
  nf_nat_masquerade_ipv4 (inet_select_addr of the output device for the next hop), i.e. the
  cni0 address for a pod on this node and 192.168.0.2 for anything behind 192.168.0.3 (seen
  on the kernel while this file was written: with corpus/cases/kube/nodeport loaded and
  route_localnet=1, a connect to 127.0.0.1:30080 reached the pod as
  10.244.1.254 -> 10.244.1.11:8080).

route_localnet=1 is modelled as one switch for all devices (Host.route_localnet).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from fractions import Fraction
from functools import cache
from pathlib import Path

import pytest

import nfemu
from nfemu.engine import Verdict
from nfemu.errors import RulesetErrors
from nfemu.host import Host
from nfemu.node import Node
from nfemu.packet import Packet
from nfemu.validate import ALL_OBJECTS

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "corpus" / "cases" / "kube"
NODES = ROOT / "corpus" / "kube-nodes"

TCP, UDP, SCTP = 6, 17, 132
SYN = 0x02
MASQ_BIT = 0x4000


def ip(text: str) -> int:
    a, b, c, d = map(int, text.split("."))
    return a << 24 | b << 16 | c << 8 | d


def dotted(value: int) -> str:
    return ".".join(str(value >> s & 255) for s in (24, 16, 8, 0))


NODE_IP, NODE_IP2, CNI0 = ip("192.168.0.2"), ip("192.168.1.2"), ip("10.244.1.254")
OTHER_NODE = ip("192.168.0.3")
POD = ip("10.244.1.200")                 # a client pod on this node (no dump uses it)
EXTERNAL = ip("203.0.113.2")             # kube-proxy's testExternalClient
BLOCKED = ip("203.0.113.130")            # kube-proxy's testExternalClientBlocked

HOST = Host.from_files(str(NODES / "node.addrs.json"), str(NODES / "node.routes.json"))


# ---------------------------------------------------------------------- what the kernel does
def out_iface_for(dst: int) -> str:
    """The device the node routes ``dst`` out of: its pod subnet is on cni0, everything else
    (other nodes' pods via 192.168.0.3, the default route) leaves eth0."""
    return "cni0" if dst >> 8 == ip("10.244.1.0") >> 8 else "eth0"


def masquerade_source(out_iface: str) -> int:
    """nf_nat_masquerade_ipv4: the first primary address of the output device whose subnet
    holds the next hop (the endpoint itself on cni0, 192.168.0.3 or 192.168.0.1 on eth0)."""
    return {"cni0": CNI0, "eth0": NODE_IP}[out_iface]


def kube_chain(kind: str, port_name: str, proto: str, endpoint: str = "") -> str:
    """kube-proxy's chain names: KIND- + the first 16 base32 characters of
    sha256("ns/svc:port" + protocol [+ "ip:port"])."""
    digest = hashlib.sha256((port_name + proto + endpoint).encode()).digest()
    return f"KUBE-{kind}-" + base64.b32encode(digest).decode()[:16]


@cache
def dump_text(path: Path) -> str:
    return path.read_text()


@cache
def ruleset(path: Path):
    # dumps taken on a node: the nfacct objects they name existed there
    return nfemu.load(str(path), objects=ALL_OBJECTS)


def split_from_dump(path: Path, chain: str) -> dict[tuple[int, int], Fraction]:
    """The exact share of each endpoint behind a KUBE-SVC/KUBE-SVL chain, from the saved text
    alone: the chain's rules jump to KUBE-SEP chains in order, each but the last with
    ``--probability p`` (u32 = lround(p * 2^31), taken when a 31-bit random number is below
    it); each KUBE-SEP chain DNATs to one address:port."""
    text = dump_text(path)
    dnat = {m[1]: (ip(m[2]), int(m[3])) for m in re.finditer(
        r"^-A (KUBE-SEP-\w+) .*-j DNAT --to-destination ([\d.]+):(\d+)$", text, re.MULTILINE)}
    shares: dict[tuple[int, int], Fraction] = {}
    left = Fraction(1)
    for m in re.finditer(rf"^-A {chain} (.*)-j (KUBE-SEP-\w+)$", text, re.MULTILINE):
        p = re.search(r"--probability ([\d.]+)", m[1])
        if p:
            u32 = int(Fraction(p[1]) * 2**31 + Fraction(1, 2))     # lround, p > 0
            share = left * Fraction(u32, 2**31)
        else:
            share = left
        shares[dnat[m[2]]] = shares.get(dnat[m[2]], 0) + share
        left -= share
        if not p:
            break
    assert shares and left == 0, f"{chain} has no final unconditional endpoint in {path.name}"
    return shares


# ---------------------------------------------------------------------- running and reading
def tcp(src: int, dst: int, dport: int, **kw) -> Packet:
    return Packet(src=src, dst=dst, proto=TCP, sport=40000, dport=dport, tcp_flags=SYN, **kw)


def outcomes(path: Path, pkt: Packet, iface: str | None = None, local: bool = False,
             host: Host = HOST):
    result = Node(ruleset(path), host, seed=1).outcomes(pkt, iface=iface, local=local)
    assert sum(o.probability for o in result) == 1
    return result


def only(result):
    assert len(result) == 1, [o.journey.packet.describe() for o in result]
    return result[0].journey


def nat_walk(journey, hook: str) -> list[tuple[str, str]]:
    """(chain, target) of every nat rule the packet matched at ``hook``, in order."""
    return [(s.chain, s.target) for s in journey.steps
            if s.hook == hook and s.table == "nat" and s.rule is not None]


def events(journey, kind: str):
    return [e for e in journey.events if e.kind == kind]


def destinations(result) -> dict[tuple[int, int], Fraction]:
    got: dict[tuple[int, int], Fraction] = {}
    for o in result:
        key = (o.journey.packet.dst, o.journey.packet.dport)
        got[key] = got.get(key, 0) + o.probability
    return got


def assert_serviced(result, client: int, masq: bool, dnat_hook: str = "PREROUTING",
                    where: str = "forward"):
    """Every outcome is DNATed at ``dnat_hook``, leaves by the route of its endpoint, and is
    masqueraded (source = the output device's address, decided by KUBE-POSTROUTING from the
    0x4000 mark) or keeps the client's source, as kube-proxy's ``masq`` says."""
    for o in result:
        j = o.journey
        assert (j.verdict, j.where) == (Verdict.ACCEPT, where), (j.where, j.note)
        assert j.out_iface == out_iface_for(j.packet.dst)
        (dnat,) = events(j, "DNAT")
        assert dnat.hook == dnat_hook and dnat.chain.startswith("KUBE-SEP-")
        assert dnat.detail["to"] == f"{dotted(j.packet.dst)}:{j.packet.dport}"
        marked = ("KUBE-MARK-MASQ", "MARK") in nat_walk(j, dnat_hook)
        post = nat_walk(j, "POSTROUTING")
        assert j.packet.mark & MASQ_BIT == 0          # cleared (xor) or never set
        if masq:
            assert marked
            assert post == [("POSTROUTING", "KUBE-POSTROUTING"), ("KUBE-POSTROUTING", "MARK"),
                            ("KUBE-POSTROUTING", "MASQUERADE")]
            (snat,) = events(j, "SNAT")
            assert (snat.hook, snat.chain) == ("POSTROUTING", "KUBE-POSTROUTING")
            assert j.packet.src == masquerade_source(j.out_iface)
            # a client port >= 1024 stays in the kernel's 1024-65535 class (random with
            # --random-fully, see test_random_fully_draws_the_source_port)
            assert 1024 <= j.packet.sport <= 65535
        else:
            assert not marked
            assert post == [("POSTROUTING", "KUBE-POSTROUTING"), ("KUBE-POSTROUTING", "RETURN")]
            assert not events(j, "SNAT")
            assert j.packet.src == client


def assert_untouched(result, pkt: Packet, where: str, out_iface: str = ""):
    """No service matched: no NAT of either kind, the packet goes on as it came (kube-proxy's
    tracer output "")."""
    j = only(result)
    assert (j.verdict, j.where, j.out_iface) == (Verdict.ACCEPT, where, out_iface)
    assert not events(j, "DNAT") and not events(j, "SNAT")
    assert (j.packet.src, j.packet.dst, j.packet.dport) == (pkt.src, pkt.dst, pkt.dport)


def assert_dropped(journey, table: str, hook: str, chain: str, target: str = "DROP"):
    assert journey.verdict is Verdict.DROP
    assert journey.where == f"dropped in {table} {hook}"
    last = journey.steps[-1]
    assert (last.hook, last.table, last.chain, last.target) == (hook, table, chain, target)
    assert not events(journey, "DNAT")


def assert_rejected(journey, hook: str, chain: str, client: int, reply_from: int):
    """kube-proxy's "REJECT": filter drops the packet and answers with an ICMP port
    unreachable (ipt_REJECT's default) from the service address when it is local, else from
    the address routing picks towards the client (icmp_send with saddr 0)."""
    assert_dropped(journey, "filter", hook, chain, target="REJECT")
    (reject,) = events(journey, "REJECT")
    assert (reject.hook, reject.table, reject.chain) == (hook, "filter", chain)
    assert reject.detail["with"] == "icmp-port-unreachable"
    assert reject.detail["reply"] == ("ICMP destination-unreachable (type 3 code 3, "
                                      f"port-unreachable) {dotted(reply_from)} > "
                                      f"{dotted(client)}")


# ====================================================================== ClusterIP
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_clusterip_endpoint_shares_are_the_kernels_thresholds(n):
    """ClusterIP with one and several endpoints (TestClusterIPGeneral "simple clusterIP" /
    "clusterIP with multiple endpoints"): a pod reaches every endpoint, unmasqueraded, with
    exactly the share the printed thresholds give."""
    path = KUBE / f"clusterip-{n}ep.nft.save"
    svc = kube_chain("SVC", "ns1/svc1:p80", "tcp")
    result = outcomes(path, tcp(POD, ip("10.96.0.41"), 80), iface="cni0")
    want = split_from_dump(path, svc)
    assert destinations(result) == want
    assert {a for a, _ in want} == {ip(f"10.244.1.{i}") for i in range(1, n + 1)}
    assert {port for _, port in want} == {8080}                       # targetPort
    assert_serviced(result, POD, masq=False)
    for o in result:
        sep = kube_chain("SEP", "ns1/svc1:p80", "tcp", f"{dotted(o.journey.packet.dst)}:8080")
        assert nat_walk(o.journey, "PREROUTING") == [
            ("PREROUTING", "KUBE-SERVICES"), ("KUBE-SERVICES", svc), (svc, sep), (sep, "DNAT")]


def test_three_endpoints_use_the_0_33333333349_threshold_not_one_third():
    """kube-proxy writes 0.3333333333 and 0.5000000000; iptables keeps
    u32 = lround(0.3333333333 * 2^31) = 715827883 (printed 0.33333333349), so the first
    endpoint gets 715827883/2^31, a little more than 1/3, and the other two share the rest."""
    assert "--probability 0.3333333333 " in (KUBE / "clusterip-3ep.rules").read_text()
    assert "--probability 0.33333333349 " in dump_text(KUBE / "clusterip-3ep.nft.save")
    result = outcomes(KUBE / "clusterip-3ep.nft.save", tcp(POD, ip("10.96.0.41"), 80),
                      iface="cni0")
    first = Fraction(715827883, 2**31)
    assert destinations(result) == {(ip("10.244.1.1"), 8080): first,
                                    (ip("10.244.1.2"), 8080): (1 - first) / 2,
                                    (ip("10.244.1.3"), 8080): (1 - first) / 2}
    assert first != Fraction(1, 3)


def test_five_endpoints_on_a_full_node():
    """A full node dump: web/api:grpc has five endpoints (0.20000000019, 0.25, 0.33333333349,
    0.5); a pod on a remote node (arriving on eth0) reaches each with the kernel's share."""
    path = KUBE / "full-node.nft.save"
    svc = kube_chain("SVC", "web/api:grpc", "tcp")
    remote_pod = ip("10.244.3.9")
    result = outcomes(path, tcp(remote_pod, ip("10.96.100.2"), 9090), iface="eth0")
    want = split_from_dump(path, svc)
    assert destinations(result) == want
    assert len(want) == 5 and want[(ip("10.244.1.110"), 9090)] == Fraction(
        int(Fraction("0.20000000019") * 2**31 + Fraction(1, 2)), 2**31)
    assert_serviced(result, remote_pod, masq=False)


def test_clusterip_general_one_and_two_endpoints_local_and_remote():
    """TestClusterIPGeneral: svc1 has one endpoint on this node, svc2 one here and one on
    another node ("10.180.0.1:80, 10.180.2.1:80"); the remote one leaves eth0 towards
    192.168.0.3."""
    path = NODES / "clusterip-general.nft.save"
    result = outcomes(path, tcp(POD, ip("10.96.0.41"), 80), iface="cni0")
    assert destinations(result) == {(ip("10.244.1.1"), 80): 1}
    assert_serviced(result, POD, masq=False)
    result = outcomes(path, tcp(POD, ip("10.96.0.42"), 80), iface="cni0")
    assert destinations(result) == {(ip("10.244.1.1"), 80): Fraction(1, 2),
                                    (ip("10.244.2.1"), 80): Fraction(1, 2)}
    assert destinations(result) == split_from_dump(path, kube_chain("SVC", "ns2/svc2:http",
                                                                    "tcp"))
    assert {o.journey.out_iface for o in result} == {"cni0", "eth0"}
    assert_serviced(result, POD, masq=False)


def test_clusterip_target_port():
    """TestClusterIPGeneral "clusterIP with TargetPort": port 443 goes to 8443."""
    result = outcomes(NODES / "clusterip-general.nft.save", tcp(POD, ip("10.96.0.42"), 443),
                      iface="cni0")
    assert destinations(result) == {(ip("10.244.1.1"), 8443): Fraction(1, 2),
                                    (ip("10.244.2.1"), 8443): Fraction(1, 2)}
    assert_serviced(result, POD, masq=False)


@pytest.mark.parametrize("proto,name,target_port", [
    (TCP, "tcp", 5353), (UDP, "udp", 53), (SCTP, "sctp", 53)])
def test_tcp_udp_and_sctp_on_the_same_port(proto, name, target_port):
    """TestClusterIPGeneral "clusterIP with TCP, UDP, and SCTP on same port": each protocol
    has its own KUBE-SVC chain; TCP uses targetPort 5353, UDP and SCTP keep 53."""
    pkt = Packet(src=POD, dst=ip("10.96.0.42"), proto=proto, sport=40000, dport=53,
                 tcp_flags=SYN if proto == TCP else 0)
    result = outcomes(NODES / "clusterip-general.nft.save", pkt, iface="cni0")
    assert destinations(result) == {(ip("10.244.1.1"), target_port): Fraction(1, 2),
                                    (ip("10.244.2.1"), target_port): Fraction(1, 2)}
    assert {o.journey.packet.proto for o in result} == {proto}
    svc = kube_chain("SVC", f"ns2/svc2:dns-{name}", name)
    assert all(("KUBE-SERVICES", svc) in nat_walk(o.journey, "PREROUTING") for o in result)
    assert_serviced(result, POD, masq=False)


def test_udp_dns_service_of_a_real_cluster():
    """kube-dns: UDP and TCP on 53 and TCP 9153, two endpoints on another node."""
    path = KUBE / "clusterip-udp-dns.nft.save"
    pkt = Packet(src=POD, dst=ip("10.96.0.10"), proto=UDP, sport=40000, dport=53)
    result = outcomes(path, pkt, iface="cni0")
    assert destinations(result) == split_from_dump(
        path, kube_chain("SVC", "kube-system/kube-dns:dns", "udp"))
    assert {a for a, _ in destinations(result)} == {ip("10.244.0.2"), ip("10.244.0.3")}
    assert_serviced(result, POD, masq=False)


def test_port_or_protocol_a_service_does_not_have_is_untouched():
    """TestClusterIPGeneral "TCP-only port does not match UDP traffic" and "svc1 does not
    accept svc2's ports": no rule matches; the packet is routed to the cluster IP as it is
    (out of the default route)."""
    path = NODES / "clusterip-general.nft.save"
    udp80 = Packet(src=POD, dst=ip("10.96.0.42"), proto=UDP, sport=40000, dport=80)
    assert_untouched(outcomes(path, udp80, iface="cni0"), udp80, "forward", "eth0")
    svc1_443 = tcp(POD, ip("10.96.0.41"), 443)
    assert_untouched(outcomes(path, svc1_443, iface="cni0"), svc1_443, "forward", "eth0")


def test_sctp_clusterip():
    path = KUBE / "clusterip-sctp.nft.save"
    pkt = Packet(src=POD, dst=ip("10.96.0.77"), proto=SCTP, sport=5000, dport=9999)
    result = outcomes(path, pkt, iface="cni0")
    assert destinations(result) == {(ip("10.244.1.1"), 9999): Fraction(1, 2),
                                    (ip("10.244.1.2"), 9999): Fraction(1, 2)}
    assert_serviced(result, POD, masq=False)


# ====================================================================== hairpin
@pytest.mark.parametrize("path,endpoint_port", [
    (KUBE / "clusterip-1ep.nft.save", 8080), (NODES / "clusterip-general.nft.save", 80)])
def test_hairpin_to_own_cluster_ip_is_masqueraded(path, endpoint_port):
    """TestClusterIPGeneral "hairpin to cluster IP": a pod that reaches itself through its
    service is marked in its KUBE-SEP chain (-s <endpoint> -j KUBE-MARK-MASQ) and
    masqueraded to the cni0 address, so the reply comes back through the node."""
    me = ip("10.244.1.1")
    result = outcomes(path, tcp(me, ip("10.96.0.41"), 80), iface="cni0")
    j = only(result)
    assert (j.packet.dst, j.packet.dport) == (me, endpoint_port)
    assert_serviced(result, me, masq=True)
    assert j.packet.src == CNI0 and j.out_iface == "cni0"
    walk = nat_walk(j, "PREROUTING")
    sep = walk[-1][0]
    assert walk[-3:] == [(sep, "KUBE-MARK-MASQ"), ("KUBE-MARK-MASQ", "MARK"), (sep, "DNAT")]


# ====================================================================== NodePort
NODEPORT = NODES / "nodeport-localhost.nft.save"
NP_SVC, NP_EXT = kube_chain("SVC", "ns1/svc1:p80", "tcp"), kube_chain("EXT", "ns1/svc1:p80", "tcp")
BOTH = {(ip("10.244.1.1"), 80): Fraction(1, 2), (ip("10.244.2.1"), 80): Fraction(1, 2)}


@pytest.mark.parametrize("client,node_ip", [
    (EXTERNAL, NODE_IP),            # TestNodePorts "external to nodePort"
    (OTHER_NODE, NODE_IP),          # from another node of the cluster
    (EXTERNAL, NODE_IP2),           # "external to nodePort on secondary IP"
])
def test_nodeport_from_outside_and_from_another_node(client, node_ip):
    """Cluster policy: every endpoint, masqueraded; the path goes through the last rule of
    KUBE-SERVICES (addrtype LOCAL) and KUBE-NODEPORTS into KUBE-EXT, which marks."""
    result = outcomes(NODEPORT, tcp(client, node_ip, 30001), iface="eth0")
    assert destinations(result) == BOTH == split_from_dump(NODEPORT, NP_SVC)
    assert_serviced(result, client, masq=True)
    for o in result:
        sep = kube_chain("SEP", "ns1/svc1:p80", "tcp", f"{dotted(o.journey.packet.dst)}:80")
        assert nat_walk(o.journey, "PREROUTING") == [
            ("PREROUTING", "KUBE-SERVICES"), ("KUBE-SERVICES", "KUBE-NODEPORTS"),
            ("KUBE-NODEPORTS", NP_EXT), (NP_EXT, "KUBE-MARK-MASQ"), ("KUBE-MARK-MASQ", "MARK"),
            (NP_EXT, NP_SVC), (NP_SVC, sep), (sep, "DNAT")]
        # the mark is on the packet between PREROUTING and POSTROUTING: KUBE-FORWARD accepts
        # it by the mark ("kubernetes forwarding rules")
        fwd = [(s.chain, s.rule, s.target) for s in o.journey.steps
               if s.hook == "FORWARD" and s.table == "filter"]
        assert ("KUBE-FORWARD", 2, "ACCEPT") in fwd


def test_nodeport_from_a_pod_is_masqueraded():
    """TestExternalTrafficPolicyCluster "pod to NodePort hits both endpoints, masqueraded"."""
    result = outcomes(NODEPORT, tcp(POD, NODE_IP, 30001), iface="cni0")
    assert destinations(result) == BOTH
    assert_serviced(result, POD, masq=True)


def test_nodeport_from_the_node_itself():
    """TestNodePorts "node to nodePort": generated here to 192.168.0.2:30001, DNATed in nat
    OUTPUT, routed again to the endpoint, masqueraded."""
    result = outcomes(NODEPORT, tcp(0, NODE_IP, 30001), local=True)
    assert destinations(result) == BOTH
    assert_serviced(result, NODE_IP, masq=True, dnat_hook="OUTPUT", where="out")


def test_nodeport_via_localhost_is_dropped_when_route_localnet_is_off():
    """TestNodePorts "localhost to nodePort gets masqueraded" needs route_localnet=1, which
    kube-proxy sets when localhost NodePorts are on. nfemu's Host models route_localnet=0:
    then the kernel DNATs the SYN in nat OUTPUT, ip_route_me_harder() cannot route a packet
    with source 127.0.0.1 out of a non-loopback device (__mkroute_output: EINVAL) and the
    packet is dropped before POSTROUTING. The kernel showed exactly that here: with
    route_localnet=0 a connect to 127.0.0.1:30080 counted 1 in KUBE-NODEPORTS and 0 in
    nat POSTROUTING; with 1 it was masqueraded and reached the pod."""
    result = outcomes(NODEPORT, tcp(0, ip("127.0.0.1"), 30001), local=True)
    for o in result:
        j = o.journey
        assert j.verdict is Verdict.DROP and j.where == "no route after OUTPUT"
        assert "EINVAL" in j.note
        assert j.packet.src == ip("127.0.0.1")
        walk = nat_walk(j, "OUTPUT")
        assert walk[:3] == [("OUTPUT", "KUBE-SERVICES"), ("KUBE-SERVICES", "KUBE-NODEPORTS"),
                            ("KUBE-NODEPORTS", NP_EXT)]
        assert walk[-1][1] == "DNAT"
        assert not [s for s in j.steps if s.hook == "POSTROUTING"]
    assert destinations(result) == BOTH


def test_nodeport_via_localhost_with_route_localnet_is_masqueraded():
    """kube-proxy's expectation with its own sysctl: both endpoints, masqueraded to the
    output device's address (the kernel: 10.244.1.254 -> 10.244.1.11:8080 on cni0)."""
    host = dataclasses.replace(HOST, route_localnet=True)
    result = outcomes(NODEPORT, tcp(0, ip("127.0.0.1"), 30001), local=True, host=host)
    assert destinations(result) == BOTH
    assert_serviced(result, ip("127.0.0.1"), masq=True, dnat_hook="OUTPUT", where="out")


def test_nodeport_corpus_dump_target_port_and_local_endpoints():
    """corpus/cases/kube/nodeport: NodePort 30080 -> targetPort 8080 on two pods of this
    node; from outside both are reached, masqueraded to the cni0 address."""
    path = KUBE / "nodeport.nft.save"
    result = outcomes(path, tcp(EXTERNAL, NODE_IP, 30080), iface="eth0")
    assert destinations(result) == {(ip("10.244.1.10"), 8080): Fraction(1, 2),
                                    (ip("10.244.1.11"), 8080): Fraction(1, 2)}
    assert_serviced(result, EXTERNAL, masq=True)
    assert {o.journey.packet.src for o in result} == {CNI0}


def test_nodeport_dump_with_kube_proxy_nfacct_counters():
    """kube-proxy v1.29+ with nfacct: the same service plus an extra KUBE-NODEPORTS rule for
    127.0.0.0/8 that only counts (-m nfacct), and -m nfacct on the INVALID drop. The kernel
    loaded it (the objects existed); the flows are those of the dump without nfacct."""
    path = NODES / "nodeport-nfacct.nft.save"
    # in a fresh namespace the objects do not exist and the kernel refuses the rules
    with pytest.raises(RulesetErrors, match="nfacct object"):
        nfemu.load(str(path))
    result = outcomes(path, tcp(EXTERNAL, NODE_IP, 30001), iface="eth0")
    assert destinations(result) == BOTH
    assert_serviced(result, EXTERNAL, masq=True)


# ====================================================================== LoadBalancer
LB = NODES / "loadbalancer-sourceranges.nft.save"
LB_FW, LB_EXT = kube_chain("FW", "ns1/svc1:p80", "tcp"), kube_chain("EXT", "ns1/svc1:p80", "tcp")
LB_EP = {(ip("10.244.2.1"), 80): 1}


@pytest.mark.parametrize("lb_ip", ["1.2.3.4", "5.6.7.8"])
def test_loadbalancer_source_range_allowed(lb_ip):
    """TestLoadBalancer "accepted external to LB1/LB2": 203.0.113.2 is in 203.0.113.0/25;
    KUBE-FW sends it to KUBE-EXT (masquerade) and the endpoint."""
    result = outcomes(LB, tcp(EXTERNAL, ip(lb_ip), 80), iface="eth0")
    assert destinations(result) == LB_EP
    assert_serviced(result, EXTERNAL, masq=True)
    walk = nat_walk(only(result), "PREROUTING")
    assert walk[:3] == [("PREROUTING", "KUBE-SERVICES"), ("KUBE-SERVICES", LB_FW),
                        (LB_FW, LB_EXT)]


@pytest.mark.parametrize("client,iface", [(BLOCKED, "eth0"), (POD, "cni0")])
@pytest.mark.parametrize("lb_ip", ["1.2.3.4", "5.6.7.8"])
def test_loadbalancer_source_range_dropped(client, iface, lb_ip):
    """TestLoadBalancer "blocked external to LB" and "pod to LB (blocked by
    LoadBalancerSourceRanges)": KUBE-FW ends without a jump, nothing is DNATed, and filter
    KUBE-PROXY-FIREWALL drops the packet (forwarded: the LB IP is not on the node)."""
    j = only(outcomes(LB, tcp(client, ip(lb_ip), 80), iface=iface))
    assert_dropped(j, "filter", "FORWARD", "KUBE-PROXY-FIREWALL")
    # only the comment-only last rule of KUBE-FW ("... will be dropped by
    # KUBE-PROXY-FIREWALL") matched; it has no target
    assert nat_walk(j, "PREROUTING") == [("PREROUTING", "KUBE-SERVICES"),
                                         ("KUBE-SERVICES", LB_FW), (LB_FW, "")]


def test_loadbalancer_from_the_node_is_allowed_by_its_source_range():
    """TestLoadBalancer "node to LB1 (allowed by LoadBalancerSourceRanges)": the node's own
    address is in 192.168.0.0/24."""
    result = outcomes(LB, tcp(0, ip("1.2.3.4"), 80), local=True)
    assert destinations(result) == LB_EP
    assert_serviced(result, NODE_IP, masq=True, dnat_hook="OUTPUT", where="out")


def test_loadbalancer_ip_as_source_is_allowed_when_the_node_is():
    """TestLoadBalancer "same node to LB1, SNATted to LB1 (implicitly allowed)": with the LB
    IP on the node, a connection from the node to it has the LB IP as source; kube-proxy adds
    -s <LB IP> to KUBE-FW because the node IP is inside a source range."""
    host = Host.from_options(["eth0=192.168.0.2/24,192.168.1.2/24", "cni0=10.244.1.254/24"],
                             local_ips=["1.2.3.4"], default_gateway="192.168.0.1")
    result = outcomes(LB, tcp(ip("1.2.3.4"), ip("1.2.3.4"), 80), local=True, host=host)
    assert destinations(result) == LB_EP
    j = only(result)
    assert (LB_FW, LB_EXT) in nat_walk(j, "OUTPUT")
    assert (j.verdict, j.where, j.out_iface, j.packet.src) == (Verdict.ACCEPT, "out", "eth0",
                                                               NODE_IP)


def test_nodeport_bypasses_load_balancer_source_ranges():
    """TestLoadBalancer "nodePort bypasses LoadBalancerSourceRanges"."""
    result = outcomes(LB, tcp(BLOCKED, NODE_IP, 30001), iface="eth0")
    assert destinations(result) == LB_EP
    assert_serviced(result, BLOCKED, masq=True)


def test_pod_to_cluster_ip_of_a_load_balancer():
    """TestLoadBalancer "pod to cluster IP"."""
    result = outcomes(LB, tcp(POD, ip("10.96.0.41"), 80), iface="cni0")
    assert destinations(result) == LB_EP
    assert_serviced(result, POD, masq=False)


@pytest.mark.parametrize("client,allowed", [
    (ip("192.0.2.77"), True), (ip("198.51.100.5"), True), (ip("198.51.100.200"), False)])
def test_corpus_loadbalancer_source_ranges(client, allowed):
    """corpus/cases/kube/loadbalancer-sourceranges: ranges 192.0.2.0/24 and 198.51.100.0/25."""
    path = KUBE / "loadbalancer-sourceranges.nft.save"
    result = outcomes(path, tcp(client, ip("203.0.113.51"), 80), iface="eth0")
    if allowed:
        assert destinations(result) == split_from_dump(
            path, kube_chain("SVC", "ns5/svc5:p80", "tcp"))
        assert_serviced(result, client, masq=True)
    else:
        assert_dropped(only(result), "filter", "FORWARD", "KUBE-PROXY-FIREWALL")


def test_loadbalancer_with_three_endpoints():
    """corpus/cases/kube/loadbalancer: Cluster policy LB IP, three endpoints."""
    path = KUBE / "loadbalancer.nft.save"
    result = outcomes(path, tcp(EXTERNAL, ip("203.0.113.10"), 80), iface="eth0")
    assert destinations(result) == split_from_dump(path, kube_chain("SVC", "ns3/svc3:http",
                                                                    "tcp"))
    assert len(result) == 3
    assert_serviced(result, EXTERNAL, masq=True)


# ====================================================================== externalIPs
@pytest.mark.parametrize("client,iface", [(EXTERNAL, "eth0"), (POD, "cni0")])
def test_external_ips_with_cluster_policy(client, iface):
    """TestExternalTrafficPolicyCluster "external/pod to external IP hits both endpoints,
    masqueraded"."""
    path = KUBE / "externalips.nft.save"
    for eip in ("192.168.99.22", "192.168.99.23"):
        result = outcomes(path, tcp(client, ip(eip), 80), iface=iface)
        assert destinations(result) == {(ip("10.244.1.40"), 80): Fraction(1, 2),
                                        (ip("10.244.1.41"), 80): Fraction(1, 2)}
        assert_serviced(result, client, masq=True)


# ====================================================================== externalTrafficPolicy
ETP = NODES / "etp-local.nft.save"
ETP_SVC = kube_chain("SVC", "ns1/svc1:p80", "tcp")
ETP_SVL = kube_chain("SVL", "ns1/svc1:p80", "tcp")
ETP_EXT = kube_chain("EXT", "ns1/svc1:p80", "tcp")
ETP_ALL = {(ip("10.244.1.1"), 80): Fraction(1, 2), (ip("10.244.2.1"), 80): Fraction(1, 2)}
ETP_LOCAL = {(ip("10.244.1.1"), 80): 1}


@pytest.mark.parametrize("dst,dport", [
    ("10.96.0.41", 80), ("192.168.99.11", 80), ("1.2.3.4", 80), ("192.168.0.2", 30001)])
def test_etp_local_from_a_pod_hits_all_endpoints_unmasqueraded(dst, dport):
    """TestExternalTrafficPolicyLocal "pod to cluster IP / external IP / LB IP / NodePort
    hits both endpoints, unmasqueraded" (the "pod traffic" short-circuit in KUBE-EXT)."""
    result = outcomes(ETP, tcp(POD, ip(dst), dport), iface="cni0")
    assert destinations(result) == ETP_ALL == split_from_dump(ETP, ETP_SVC)
    assert_serviced(result, POD, masq=False)
    if dst != "10.96.0.41":
        assert all((ETP_EXT, ETP_SVC) in nat_walk(o.journey, "PREROUTING") for o in result)


@pytest.mark.parametrize("dst,dport", [("192.168.99.11", 80), ("1.2.3.4", 80),
                                       ("192.168.0.2", 30001)])
def test_etp_local_from_outside_hits_only_the_local_endpoint_unmasqueraded(dst, dport):
    """TestExternalTrafficPolicyLocal "external to external IP / LB IP / NodePort hits only
    local endpoint, unmasqueraded": KUBE-EXT falls through to KUBE-SVL."""
    result = outcomes(ETP, tcp(EXTERNAL, ip(dst), dport), iface="eth0")
    assert destinations(result) == ETP_LOCAL == split_from_dump(ETP, ETP_SVL)
    assert_serviced(result, EXTERNAL, masq=False)
    walk = nat_walk(only(result), "PREROUTING")
    sep = kube_chain("SEP", "ns1/svc1:p80", "tcp", "10.244.1.1:80")
    assert walk[-3:] == [(ETP_EXT, ETP_SVL), (ETP_SVL, sep), (sep, "DNAT")]


def test_etp_local_from_the_node_is_masqueraded_to_all_endpoints():
    """"masquerade LOCAL traffic" / "route LOCAL traffic": the node's own connection to the LB
    IP is masqueraded and uses the Cluster chain."""
    result = outcomes(ETP, tcp(0, ip("1.2.3.4"), 80), local=True)
    assert destinations(result) == ETP_ALL
    assert_serviced(result, NODE_IP, masq=True, dnat_hook="OUTPUT", where="out")


def test_etp_local_corpus_three_endpoints_one_local():
    """corpus/cases/kube/etp-local: from outside only 10.244.1.51 (its one local endpoint),
    from a pod all three with the 0.33333333349 shares."""
    path = KUBE / "etp-local.nft.save"
    ext = outcomes(path, tcp(EXTERNAL, ip("203.0.113.60"), 443), iface="eth0")
    assert destinations(ext) == {(ip("10.244.1.51"), 8443): 1}
    assert_serviced(ext, EXTERNAL, masq=False)
    pod = outcomes(path, tcp(POD, NODE_IP, 30443), iface="cni0")
    assert destinations(pod) == split_from_dump(path, kube_chain("SVC", "ns6/svc6:p443", "tcp"))
    assert len(pod) == 3
    assert_serviced(pod, POD, masq=False)


def test_etp_local_without_local_endpoints_drops_outside_traffic():
    """kube-proxy: "has no local endpoints" -> DROP in filter KUBE-EXTERNAL-SERVICES for the
    NodePort (node address: INPUT) and the external IP (not on the node: FORWARD)."""
    path = KUBE / "etp-local-no-local-eps.nft.save"
    assert_dropped(only(outcomes(path, tcp(EXTERNAL, NODE_IP, 30081), iface="eth0")),
                   "filter", "INPUT", "KUBE-EXTERNAL-SERVICES")
    assert_dropped(only(outcomes(path, tcp(EXTERNAL, ip("192.168.99.30"), 80), iface="eth0")),
                   "filter", "FORWARD", "KUBE-EXTERNAL-SERVICES")


# ====================================================================== health check node port
def test_health_check_node_port_is_accepted_on_a_node_that_drops_input():
    """TestHealthCheckNodePort "firewall accepts HealthCheckNodePort": filter KUBE-NODEPORTS
    accepts port 30000 before the node's own INPUT rules and its DROP policy; any other port
    the node does not open is dropped by that policy."""
    pkt = tcp(ip("1.2.3.4"), NODE_IP, 30000)
    j = only(outcomes(ETP, pkt, iface="eth0"))
    assert (j.verdict, j.where) == (Verdict.ACCEPT, "local")
    assert j.packet.dst == NODE_IP and j.packet.dport == 30000
    filt = [(s.chain, s.target) for s in j.steps if s.hook == "INPUT" and s.table == "filter"]
    assert filt[-2:] == [("INPUT", "KUBE-NODEPORTS"), ("KUBE-NODEPORTS", "ACCEPT")]
    closed = only(outcomes(ETP, tcp(ip("1.2.3.4"), NODE_IP, 30002), iface="eth0"))
    assert closed.verdict is Verdict.DROP and closed.where == "dropped in filter INPUT"
    assert closed.steps[-1].rule is None and closed.steps[-1].target == "DROP"   # the policy
    ssh = only(outcomes(ETP, tcp(EXTERNAL, NODE_IP, 22), iface="eth0"))
    assert (ssh.verdict, ssh.where) == (Verdict.ACCEPT, "local")


def test_health_check_node_port_corpus():
    j = only(outcomes(KUBE / "etp-local.nft.save", tcp(EXTERNAL, NODE_IP, 32000), iface="eth0"))
    assert (j.verdict, j.where) == (Verdict.ACCEPT, "local")
    assert ("KUBE-NODEPORTS", "ACCEPT") in [(s.chain, s.target) for s in j.steps
                                            if s.table == "filter"]


# ====================================================================== internalTrafficPolicy
def test_itp_local_pod_reaches_only_local_endpoints():
    """TestInternalTrafficPolicy "internalTrafficPolicy is local and there are multiple local
    endpoints": KUBE-SERVICES jumps to KUBE-SVL, which holds only this node's endpoints."""
    path = KUBE / "itp-local.nft.save"
    svl = kube_chain("SVL", "ns7/svc7:p80", "tcp")
    result = outcomes(path, tcp(POD, ip("10.96.0.48"), 80), iface="cni0")
    assert destinations(result) == {(ip("10.244.1.71"), 80): Fraction(1, 2),
                                    (ip("10.244.1.72"), 80): Fraction(1, 2)}
    assert destinations(result) == split_from_dump(path, svl)
    assert_serviced(result, POD, masq=False)
    assert all(("KUBE-SERVICES", svl) in nat_walk(o.journey, "PREROUTING") for o in result)
    node = outcomes(path, tcp(0, ip("10.96.0.48"), 80), local=True)
    assert destinations(node) == destinations(result)
    assert_serviced(node, NODE_IP, masq=True, dnat_hook="OUTPUT", where="out")


def test_itp_local_without_local_endpoints_drops():
    """TestInternalTrafficPolicy "no endpoints" -> "DROP" (filter KUBE-SERVICES, "has no local
    endpoints"): from a pod in FORWARD, from the node in OUTPUT."""
    path = KUBE / "itp-local-no-local-eps.nft.save"
    assert_dropped(only(outcomes(path, tcp(POD, ip("10.96.0.49"), 80), iface="cni0")),
                   "filter", "FORWARD", "KUBE-SERVICES")
    assert_dropped(only(outcomes(path, tcp(0, ip("10.96.0.49"), 80), local=True)),
                   "filter", "OUTPUT", "KUBE-SERVICES")


# ====================================================================== no endpoints
NOEP = KUBE / "no-endpoints.nft.save"


def test_no_endpoints_rejects_cluster_ip():
    """TestNoEndpointsReject "pod to cluster IP with no endpoints": REJECT in filter
    KUBE-SERVICES, answered from the address routing picks towards the pod (cni0's)."""
    assert_rejected(only(outcomes(NOEP, tcp(POD, ip("10.96.0.52"), 80), iface="cni0")),
                    "FORWARD", "KUBE-SERVICES", POD, CNI0)
    udp = Packet(src=POD, dst=ip("10.96.0.53"), proto=UDP, sport=40000, dport=53)
    assert_rejected(only(outcomes(NOEP, udp, iface="cni0")), "FORWARD", "KUBE-SERVICES",
                    POD, CNI0)
    assert_rejected(only(outcomes(NOEP, tcp(0, ip("10.96.0.52"), 80), local=True)),
                    "OUTPUT", "KUBE-SERVICES", NODE_IP, NODE_IP)


@pytest.mark.parametrize("client,iface,reply_from", [(EXTERNAL, "eth0", NODE_IP),
                                                     (POD, "cni0", CNI0)])
def test_no_endpoints_rejects_external_ip_nodeport_and_lb_ip(client, iface, reply_from):
    """TestNoEndpointsReject "external/pod to external IP / NodePort / LoadBalancer IP with
    no endpoints": REJECT in filter KUBE-EXTERNAL-SERVICES; the NodePort is on the node
    (INPUT, answered from the node address), the others are forwarded."""
    j = only(outcomes(NOEP, tcp(client, ip("192.168.99.40"), 80), iface=iface))
    assert_rejected(j, "FORWARD", "KUBE-EXTERNAL-SERVICES", client, reply_from)
    j = only(outcomes(NOEP, tcp(client, ip("203.0.113.90"), 80), iface=iface))
    assert_rejected(j, "FORWARD", "KUBE-EXTERNAL-SERVICES", client, reply_from)
    j = only(outcomes(NOEP, tcp(client, NODE_IP, 30999), iface=iface))
    assert_rejected(j, "INPUT", "KUBE-EXTERNAL-SERVICES", client, NODE_IP)


# ====================================================================== the 0x4000 mark
def test_masquerade_is_decided_in_postrouting_by_the_mark_alone():
    """KUBE-POSTROUTING masquerades whatever carries 0x4000 and clears the bit (xor): a
    packet that is no service traffic but arrives with the bit set (another component's
    mark) is masqueraded too, and one without it is left alone."""
    path = NODES / "clusterip-general.nft.save"
    marked = Packet(src=POD, dst=ip("8.8.8.8"), proto=UDP, sport=40000, dport=53, mark=0x4001)
    j = only(outcomes(path, marked, iface="cni0"))
    assert not events(j, "DNAT")
    assert nat_walk(j, "POSTROUTING") == [
        ("POSTROUTING", "KUBE-POSTROUTING"), ("KUBE-POSTROUTING", "MARK"),
        ("KUBE-POSTROUTING", "MASQUERADE")]
    assert (j.where, j.out_iface, j.packet.src, j.packet.mark) == ("forward", "eth0", NODE_IP,
                                                                   0x0001)
    plain = marked.replace(mark=0x0001)
    j = only(outcomes(path, plain, iface="cni0"))
    assert nat_walk(j, "POSTROUTING") == [("POSTROUTING", "KUBE-POSTROUTING"),
                                          ("KUBE-POSTROUTING", "RETURN")]
    assert (j.packet.src, j.packet.mark) == (POD, 0x0001)


def test_masquerade_all_marks_pod_traffic_too():
    """corpus/cases/kube/masquerade-all (--masquerade-all, MASQUERADE --random-fully): the
    KUBE-SVC masquerade rule has no "! -s <pod CIDR>", so even pod traffic is masqueraded."""
    path = KUBE / "masquerade-all.nft.save"
    result = outcomes(path, tcp(POD, ip("10.96.0.41"), 80), iface="cni0")
    assert destinations(result) == {(ip("10.244.1.1"), 80): Fraction(1, 2),
                                    (ip("10.244.1.2"), 80): Fraction(1, 2)}
    assert_serviced(result, POD, masq=True)


def test_random_fully_draws_the_source_port():
    """kube-proxy writes MASQUERADE --random-fully when iptables supports it. With it the
    kernel always draws the new source port (NF_NAT_RANGE_PROTO_RANDOM_FULLY is in
    NF_NAT_RANGE_PROTO_RANDOM_ALL, so get_unique_tuple() never keeps the port), in the class
    of the old one, 1024-65535; without it a free port is kept. The kernel showed both: SYNs
    from 192.168.0.2:40000-40007 to the NodePort reached the pod from ports 9253, 4846, ...
    with --random-fully and from 40007 without. nfemu reports the random draw in the SNAT
    event (it cannot enumerate 64,512 ports as outcomes)."""
    assert "MASQUERADE --random-fully" in dump_text(NODEPORT)
    for o in outcomes(NODEPORT, tcp(EXTERNAL, NODE_IP, 30001), iface="eth0"):
        (snat,) = events(o.journey, "SNAT")
        assert snat.detail["random_port"].startswith("1024-65535 ")
    assert "MASQUERADE --random-fully" not in dump_text(KUBE / "nodeport.nft.save")
    for o in outcomes(KUBE / "nodeport.nft.save", tcp(EXTERNAL, NODE_IP, 30080), iface="eth0"):
        (snat,) = events(o.journey, "SNAT")
        assert "random_port" not in snat.detail and o.journey.packet.sport == 40000


# ====================================================================== the CLI
def nfemu_trace(*args: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "nfemu", "trace", *args, "--addrs",
                          str(NODES / "node.addrs.json"), "--routes",
                          str(NODES / "node.routes.json"), "--all", "--json"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_cli_three_endpoint_shares():
    out = nfemu_trace(str(KUBE / "clusterip-3ep.nft.save"), "-i", "cni0", "-p", "tcp", "-s",
                      "10.244.1.200", "-d", "10.96.0.41", "--dport", "80")
    first = Fraction(715827883, 2**31)
    got = sorted((Fraction(o["probability"]), o["packet"], o["where"], o["out_iface"])
                 for o in out["outcomes"])
    assert got == sorted([
        (first, "tcp 10.244.1.200:40000 -> 10.244.1.1:8080 [S]", "forward", "cni0"),
        ((1 - first) / 2, "tcp 10.244.1.200:40000 -> 10.244.1.2:8080 [S]", "forward", "cni0"),
        ((1 - first) / 2, "tcp 10.244.1.200:40000 -> 10.244.1.3:8080 [S]", "forward", "cni0")])
    for o in out["outcomes"]:
        assert [e["kind"] for e in o["events"]] == ["DNAT"]


def test_cli_external_traffic_policy_local_nodeport():
    out = nfemu_trace(str(ETP), "-i", "eth0", "-p", "tcp", "-s", "203.0.113.2", "-d",
                      "192.168.0.2", "--dport", "30001")
    (o,) = out["outcomes"]
    assert (o["probability"], o["verdict"], o["where"], o["out_iface"]) == (
        "1", "ACCEPT", "forward", "cni0")
    assert o["packet"] == "tcp 203.0.113.2:40000 -> 10.244.1.1:80 [S]"
    chains = [(s["table"], s["chain"], s["target"]) for s in o["path"] if s["rule"] is not None]
    assert ("nat", ETP_EXT, ETP_SVL) in chains
    assert [e["kind"] for e in o["events"]] == ["DNAT"]


def test_cli_no_endpoints_reject():
    out = nfemu_trace(str(NOEP), "-i", "eth0", "-p", "tcp", "-s", "203.0.113.2", "-d",
                      "192.168.0.2", "--dport", "30999")
    (o,) = out["outcomes"]
    assert (o["probability"], o["verdict"], o["where"]) == ("1", "DROP",
                                                            "dropped in filter INPUT")
    (event,) = o["events"]
    assert (event["kind"], event["chain"], event["with"]) == (
        "REJECT", "KUBE-EXTERNAL-SERVICES", "icmp-port-unreachable")


def test_cli_nodeport_from_outside_is_masqueraded():
    out = nfemu_trace(str(NODEPORT), "-i", "eth0", "-p", "tcp", "-s", "203.0.113.2", "-d",
                      "192.168.0.2", "--dport", "30001")
    # the masqueraded source port is drawn by --random-fully: leave it out
    got = sorted((o["probability"], re.sub(r":\d+ ->", " ->", o["packet"]), o["out_iface"])
                 for o in out["outcomes"])
    assert got == [("1/2", "tcp 10.244.1.254 -> 10.244.1.1:80 [S]", "cni0"),
                   ("1/2", "tcp 192.168.0.2 -> 10.244.2.1:80 [S]", "eth0")]
    for o in out["outcomes"]:
        assert [(e["kind"], e.get("mark")) for e in o["events"]] == [
            ("MARK", "0x0 -> 0x4000"), ("DNAT", None), ("MARK", "0x4000 -> 0x0"), ("SNAT", None)]
