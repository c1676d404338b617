"""Hypothesis strategies of kube clusters (hypothesis is a test dependency: import this
module only in tests).

``kube_clusters()`` draws a :class:`~nfemu.kube.model.Cluster` of two or three nodes and up
to ``max_services`` services of every type (ClusterIP, NodePort, LoadBalancer with and
without loadBalancerSourceRanges, external IPs), with ClientIP affinity, external and
internal traffic policy Local, health check node ports, and EndpointSlices whose endpoints
are ready, terminating (serving or not) or not ready, on this node or another, sometimes with
topology hints (zone or node, on all endpoints or some); some services have no endpoints at
all. Nodes carry a ``topology.kubernetes.io/zone`` label (zone-0, zone-1). Every cluster renders (``nfemu.kube.render``) on every one of its
nodes, and shrinks towards one single-port TCP ClusterIP service.

Example::

    from hypothesis import given
    from nfemu.kube import render
    from nfemu.kube.strategies import kube_clusters

    @given(kube_clusters())
    def test_renders(cluster):
        assert "KUBE-SERVICES" in render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
"""
from __future__ import annotations

from hypothesis import strategies as st

from ..errors import Location
from .model import Cluster, Endpoint, EndpointSlice, NodeObject, Service, ServicePort, SlicePort

__all__ = ["kube_clusters", "NODE_NAMES", "CLUSTER_CIDR"]

NODE_NAMES = ("node-a", "node-b", "node-c")
CLUSTER_CIDR = "10.244.0.0/16"
_CONDITIONS = (
    (True, True, False),     # ready
    (False, True, True),     # terminating, still serving
    (False, False, True),    # terminating, not serving
    (False, False, False),   # not ready
)


def _zone(node_index: int) -> str:
    return f"zone-{node_index % 2}"


def _nodes(count: int) -> list[NodeObject]:
    return [NodeObject(name, (f"192.168.0.{2 + i}",), (), (f"10.244.{1 + i}.0/24",),
                       {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": _zone(i)},
                       Location("<kube_clusters>"))
            for i, name in enumerate(NODE_NAMES[:count])]


@st.composite
def _service(draw, index: int, node_count: int, with_endpoints: bool | None):
    stype = draw(st.sampled_from(("ClusterIP", "NodePort", "LoadBalancer")))
    namespace = draw(st.sampled_from(("default", "ns1")))
    name = f"svc{index}"
    nports = draw(st.integers(1, 2))
    protocols = draw(st.lists(st.sampled_from(("TCP", "UDP", "SCTP")), min_size=nports,
                              max_size=nports))
    ports = []
    for j, proto in enumerate(protocols):
        pname = f"p{j}" if nports > 1 or draw(st.booleans()) else ""
        port = draw(st.sampled_from((80, 443, 53, 8080)))
        node_port = 30000 + index * 4 + j if stype != "ClusterIP" else 0
        ports.append(ServicePort(pname, proto, port + j, draw(st.sampled_from((8080, 9000))),
                                 node_port))
    external_ips = tuple(f"192.168.99.{10 + index}" for _ in range(1)
                         if draw(st.booleans()) and draw(st.booleans()))
    lb_ingress = ()
    ranges = ()
    if stype == "LoadBalancer":
        lb_ingress = ((f"1.2.3.{10 + index}", draw(st.sampled_from((None, "VIP", "Proxy")))),)
        if draw(st.booleans()):
            ranges = tuple(draw(st.lists(st.sampled_from(
                ("203.0.113.0/25", "192.168.0.0/24", "10.0.0.0/8", "198.51.100.7/32")),
                min_size=1, max_size=2, unique=True)))
    affinity = draw(st.sampled_from(("None", "ClientIP")))
    timeout = draw(st.sampled_from((None, 60, 10800))) if affinity == "ClientIP" else None
    etp = draw(st.sampled_from(("Cluster", "Local")))
    itp = draw(st.sampled_from(("Cluster", "Local")))
    hc = 32000 + index if stype == "LoadBalancer" and etp == "Local" else 0
    svc = Service(namespace, name, stype, (f"10.96.0.{10 + index}",), tuple(ports),
                  {"app": name}, external_ips, lb_ingress, ranges, affinity, timeout, etp, itp,
                  hc, {}, Location("<kube_clusters>"))
    has_eps = draw(st.booleans()) if with_endpoints is None else with_endpoints
    slices = []
    if has_eps:
        count = draw(st.integers(0, 4))
        hints = draw(st.sampled_from(("none", "none", "zone", "node", "some")))
        eps = []
        for k in range(count):
            node_i = draw(st.integers(0, node_count - 1))
            ready, serving, terminating = draw(st.sampled_from(_CONDITIONS))
            zone_hints = node_hints = ()
            if hints == "zone" or (hints == "some" and draw(st.booleans())):
                zone_hints = (_zone(node_i),)
            elif hints == "node":
                node_hints = (NODE_NAMES[node_i],)
            eps.append(Endpoint((f"10.244.{1 + node_i}.{10 + index * 8 + k}",), ready, serving,
                                terminating, NODE_NAMES[node_i], _zone(node_i), None,
                                zone_hints, node_hints))
        slice_ports = tuple(SlicePort(p.name, p.target_port, p.protocol) for p in ports)
        slices.append(EndpointSlice(namespace, f"{name}-x1", name, "IPv4", slice_ports,
                                    tuple(eps), {"kubernetes.io/service-name": name}, False,
                                    Location("<kube_clusters>")))
    return svc, slices


@st.composite
def kube_clusters(draw, max_services: int = 4, min_services: int = 1, nodes: int = 2,
                  with_endpoints: bool | None = None) -> Cluster:
    """A Cluster with ``nodes`` nodes (``node-a``, ``node-b``, ``node-c``; 192.168.0.2, .3,
    .4; podCIDRs 10.244.1.0/24, ...) and between ``min_services`` and ``max_services``
    services. ``with_endpoints`` True/False forces every service to have an EndpointSlice or
    none; None draws it."""
    if not 1 <= nodes <= len(NODE_NAMES):
        raise ValueError(f"nodes must be 1-{len(NODE_NAMES)}")
    count = draw(st.integers(min_services, max_services))
    cluster = Cluster(nodes=_nodes(nodes))
    for i in range(count):
        svc, slices = draw(_service(i, nodes, with_endpoints))
        cluster.services.append(svc)
        cluster.slices.extend(slices)
    return cluster
