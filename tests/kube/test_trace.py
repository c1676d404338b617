"""Packets through rendered kube-proxy rules reach exactly the service's endpoints, each
with the share the kernel's statistic match gives: ``-m statistic --probability p`` matches
when ``(get_random_u32() & 0x7FFFFFFF) < lround(p * 2^31)`` (xt_statistic.c, libxt_statistic),
so endpoint i of n gets t_i/2^31 times what the earlier rules left, the last one the rest.
Expected shares are computed here from kube-proxy's probability strings, not by nfemu."""
from __future__ import annotations

import ipaddress
from collections import defaultdict
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nfemu.kube import load_manifests, probability, render_node
from nfemu.packet import Packet, TCP

NODES = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: node-a}, spec: {podCIDR: 10.244.1.0/24},
   status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}}
- {apiVersion: v1, kind: Node, metadata: {name: node-b}, spec: {podCIDR: 10.244.2.0/24},
   status: {addresses: [{type: InternalIP, address: 192.168.0.3}]}}
"""


def manifests(endpoints, etp="Cluster"):
    items = "\n".join(f"  - {{addresses: [{ip}], nodeName: {node}}}" for ip, node in endpoints)
    return NODES + f"""
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  externalTrafficPolicy: {etp}
  ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints:
{items}
"""


def expected_shares(endpoints: list[str]) -> dict[str, Fraction]:
    """kube-proxy's order (by ip:port string) and the kernel's u32 thresholds."""
    order = sorted(endpoints)
    n = len(order)
    left = Fraction(1)
    out = {}
    for i, ep in enumerate(order):
        if i < n - 1:
            t = Fraction(round(float(probability(n - i)) * 2 ** 31), 2 ** 31)
            out[ep] = left * t
            left -= left * t
        else:
            out[ep] = left
    return out


def reached(node, pkt, **kw) -> dict[str, Fraction]:
    shares: dict = defaultdict(Fraction)
    for o in node.outcomes(pkt, **kw):
        j = o.journey
        assert j.verdict.value == "ACCEPT", j.where
        p = j.packet
        shares[f"{ipaddress.ip_address(p.dst)}:{p.dport}"] += o.probability
    return dict(shares)


def ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 2), st.integers(2, 250)), min_size=1, max_size=6,
                unique_by=lambda t: t))
def test_cluster_ip_reaches_every_endpoint_with_kernel_shares(raw):
    endpoints = [(f"10.244.{n}.{h}", f"node-{'ab'[n - 1]}") for n, h in raw]
    cluster = load_manifests(manifests(endpoints))
    node = render_node(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    pkt = Packet(src=ip("10.244.1.77"), dst=ip("10.96.0.10"), proto=TCP, sport=40000,
                 dport=80, tcp_flags=0x02, iif="cni0")
    want = expected_shares([f"{a}:8080" for a, _ in endpoints])
    assert reached(node, pkt, iface="cni0") == want
    assert sum(want.values()) == 1


def test_three_endpoints_thirds_as_the_kernel_rounds_them():
    endpoints = [("10.244.1.5", "node-a"), ("10.244.2.6", "node-b"), ("10.244.2.7", "node-b")]
    node = render_node(load_manifests(manifests(endpoints)), "node-a",
                       cluster_cidr="10.244.0.0/16")
    pkt = Packet(src=ip("10.244.1.77"), dst=ip("10.96.0.10"), proto=TCP, sport=40000,
                 dport=80, tcp_flags=0x02, iif="cni0")
    got = reached(node, pkt, iface="cni0")
    # 0.3333333333 * 2^31 = 715827882.6... -> 715827883; 0.5 * 2^31 = 1073741824
    t1 = Fraction(715827883, 2 ** 31)
    assert got == {"10.244.1.5:8080": t1, "10.244.2.6:8080": (1 - t1) / 2,
                   "10.244.2.7:8080": (1 - t1) / 2}
    assert got["10.244.1.5:8080"] != Fraction(1, 3)


def test_node_port_from_outside_is_masqueraded_to_every_endpoint():
    endpoints = [("10.244.1.5", "node-a"), ("10.244.2.6", "node-b")]
    node = render_node(load_manifests(manifests(endpoints)), "node-a",
                       cluster_cidr="10.244.0.0/16")
    pkt = Packet(src=ip("203.0.113.9"), dst=ip("192.168.0.2"), proto=TCP, sport=40000,
                 dport=30080, tcp_flags=0x02, iif="eth0")
    outcomes = node.outcomes(pkt, iface="eth0")
    assert reached(node, pkt, iface="eth0") == expected_shares(["10.244.1.5:8080",
                                                                "10.244.2.6:8080"])
    for o in outcomes:
        # externalTrafficPolicy Cluster: the source is rewritten to the node's address
        assert o.journey.packet.src != ip("203.0.113.9")
        assert o.journey.where == "forward"


def test_node_port_local_policy_keeps_source_and_uses_local_endpoints():
    endpoints = [("10.244.1.5", "node-a"), ("10.244.1.6", "node-a"), ("10.244.2.6", "node-b")]
    node = render_node(load_manifests(manifests(endpoints, etp="Local")), "node-a",
                       cluster_cidr="10.244.0.0/16")
    pkt = Packet(src=ip("203.0.113.9"), dst=ip("192.168.0.2"), proto=TCP, sport=40000,
                 dport=30080, tcp_flags=0x02, iif="eth0")
    assert reached(node, pkt, iface="eth0") == expected_shares(["10.244.1.5:8080",
                                                                "10.244.1.6:8080"])
    for o in node.outcomes(pkt, iface="eth0"):
        assert o.journey.packet.src == ip("203.0.113.9")
        assert o.journey.out_iface == "cni0"


def test_node_port_local_policy_without_local_endpoint_is_dropped():
    endpoints = [("10.244.2.6", "node-b")]
    node = render_node(load_manifests(manifests(endpoints, etp="Local")), "node-a",
                       cluster_cidr="10.244.0.0/16")
    pkt = Packet(src=ip("203.0.113.9"), dst=ip("192.168.0.2"), proto=TCP, sport=40000,
                 dport=30080, tcp_flags=0x02, iif="eth0")
    [only] = node.outcomes(pkt, iface="eth0")
    assert only.journey.verdict.value == "DROP"
    assert only.journey.packet.dst == ip("192.168.0.2")


@pytest.mark.parametrize("dst,dport", [("10.96.0.10", 80), ("192.168.0.2", 30080)])
def test_no_endpoints_rejected(dst, dport):
    node = render_node(load_manifests(manifests([])), "node-a", cluster_cidr="10.244.0.0/16")
    pkt = Packet(src=ip("10.244.1.77"), dst=ip(dst), proto=TCP, sport=40000, dport=dport,
                 tcp_flags=0x02, iif="cni0")
    [only] = node.outcomes(pkt, iface="cni0")
    assert only.journey.verdict.value == "DROP"
    assert any(e.kind == "REJECT" for e in only.journey.events)
