"""Every ruleset nfemu.kube.render writes loads into a real kernel, and the kernel's
iptables-save prints it back exactly as nfemu's canonical form (``nfemu.loads(text).save()``
without '#' lines).

Clusters come from nfemu.kube.strategies.kube_clusters (services of every type, policies,
affinity, terminating and missing endpoints), rendered on each node with the local traffic
detector modes and options kube-proxy has. Examples: NFEMU_KERNEL_EXAMPLES (default 1000) /
20, at least 5; each example is one iptables-restore in a fresh namespace per render.

Then connections through renders end where nfemu says they may: a render for node-a with
the node addresses of tests/kernel/netsim.py's ``Net(forward=True, default_route=True)``
(192.168.50.2 on eth0, 10.50.0.1 on eth1; the pods, like everything else, routed to peer2)
is loaded there, and new connections (TCP SYN, UDP) from peer (eth0) and peer2 (eth1) go to
the services' cluster IPs, external IPs, load balancer IPs and node ports. The kernel's
conntrack entry (the DNAT destination of its reply tuple, or none when the packet was
rejected or dropped) must be one of the outcomes ``Node.outcomes`` gives a nonzero
probability. (The packet-for-packet and counter comparison of kube-shaped rules is
tests/kernel/test_kube_vs_kernel.py; this checks the renders themselves.) Examples:
NFEMU_KERNEL_EXAMPLES / 50, at least 3.
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfemu
from nfemu.kube import load_manifests, render
from nfemu.kube.model import Cluster
from nfemu.kube.strategies import CLUSTER_CIDR, kube_clusters
from nfemu.node import Node
from nfemu.packet import TCP, TCP_SYN, UDP, Packet
from tests.kernel.netsim import play_connections
from tests.kernel.test_kube_vs_kernel import FROM_PEER, FROM_PEER2, Conn, node_host, observable

EXAMPLES = max(5, int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")) // 20)
TRACE_EXAMPLES = max(3, int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")) // 50)
ROOT = Path(__file__).resolve().parents[2]
NODE_IPS = ["192.168.50.2", "10.50.0.1"]

OPTIONS = st.sampled_from([
    {"cluster_cidr": CLUSTER_CIDR},
    {"cluster_cidr": CLUSTER_CIDR, "masquerade_all": True},
    {"detect_local": "NodeCIDR"},
    {"detect_local": "BridgeInterface", "bridge_interface": "cni0"},
    {"detect_local": "InterfaceNamePrefix", "interface_name_prefix": "veth"},
    {},
    {"cluster_cidr": CLUSTER_CIDR, "localhost_nodeports": False,
     "conntrack_tcp_liberal": True, "random_fully": False},
])


def _body(text: str) -> str:
    return "".join(l for l in text.splitlines(keepends=True) if not l.startswith("#"))


def _check(kernel, text: str) -> None:
    restored = kernel.restore(text)
    assert restored.accepted, restored.stderr + "\n" + text
    assert restored.saved == _body(nfemu.loads(text).save())


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cluster=kube_clusters(nodes=2), node=st.sampled_from(["node-a", "node-b"]),
       options=OPTIONS)
def test_rendered_rules_load_and_save_back(kernel, cluster, node, options):
    _check(kernel, render(cluster, node, **options))


def test_walkthrough_and_kube_proxy_test_renders(kernel):
    """The example manifests and kube-proxy's TestOverallIPTablesRules services."""
    ex = ROOT / "examples" / "nodeport-walkthrough"
    for variant in ("service-broken.yaml", "service-fixed.yaml"):
        cluster = load_manifests(ex / "nodes.yaml", ex / "pod.yaml", ex / variant)
        for node in ("node-1", "node-2"):
            _check(kernel, render(cluster, node, cluster_cidr="10.244.0.0/16"))
    overall = load_manifests(ROOT / "tests" / "kube" / "data" / "overall.yaml")
    _check(kernel, render(overall, "test-node", cluster_cidr="10.0.0.0/8"))


# ---- connections through renders, in the kernel and in nfemu
def _targets(cluster: Cluster) -> list[tuple[str, int, int]]:
    """(destination, port, protocol) of every TCP/UDP service address kube-proxy serves."""
    out = []
    for svc in cluster.services:
        for info in svc.ports_for_proxy():
            if info.protocol not in ("TCP", "UDP"):
                continue
            proto = TCP if info.protocol == "TCP" else UDP
            out.append((info.cluster_ip, info.port, proto))
            out += [(ip, info.port, proto) for ip in (*info.external_ips, *info.lb_vips)]
            if info.node_port:
                out.append((NODE_IPS[0], info.node_port, proto))
    return out


@st.composite
def connection_cases(draw):
    cluster = draw(kube_clusters(nodes=2, with_endpoints=True))
    targets = _targets(cluster)
    if not targets:
        targets = [(NODE_IPS[0], 30999, TCP)]
    conns = []
    for key in range(20000, 20000 + draw(st.integers(1, 8))):
        dst, port, proto = draw(st.sampled_from(targets))
        origin = draw(st.sampled_from(["eth0", "eth1"]))
        src = draw(st.sampled_from(FROM_PEER if origin == "eth0" else FROM_PEER2))
        common = {"src": int(ipaddress.ip_address(src)), "dst": int(ipaddress.ip_address(dst)),
                  "ip_id": key}
        if proto == TCP:
            pkt = Packet(**common, proto=TCP, sport=key, dport=port, tcp_flags=TCP_SYN,
                         tcp_window=64240)
        else:
            pkt = Packet(**common, proto=UDP, sport=key, dport=port, payload=b"kube")
        conns.append(Conn(pkt, origin))
    return cluster, conns


@settings(max_examples=TRACE_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(case=connection_cases())
def test_kernel_connections_end_where_nfemu_allows(kernel, case):
    cluster, conns = case
    text = render(cluster, "node-a", node_ips=NODE_IPS, cluster_cidr=CLUSTER_CIDR)
    _sent, _saved, entries = play_connections(text, [c for c in conns])
    seen = {}
    for e in entries:
        seen[(e.proto, e.orig_sport)] = (e.reply_src, e.reply_sport)
    node = Node(nfemu.loads(text), node_host(), seed=0)
    problems = []
    for conn in conns:
        allowed = {}
        for o in node.outcomes(conn.pkt, iface=conn.origin):
            if o.probability > 0:
                allowed[observable(conn, o.journey)] = o.journey
        got = seen.get(conn.key)
        if got not in allowed:
            problems.append(f"{conn.origin} {conn.pkt.describe()}: kernel "
                            f"{'no entry' if got is None else got}, nfemu allows "
                            f"{sorted(map(str, allowed))}")
    assert not problems, "\n".join(problems) + "\n--- rules\n" + text
