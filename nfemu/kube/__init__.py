"""kube-proxy's iptables mode as a model: Kubernetes manifests in, the iptables rules
kube-proxy writes on a node out (``nfemu kube render``, ``nfemu kube trace``).

>>> from nfemu.kube import load_manifests, render, render_node
>>> cluster = load_manifests("examples/nodeport-walkthrough/fixed.yaml")   # doctest: +SKIP
>>> text = render(cluster, "node-1", cluster_cidr="10.244.0.0/16")        # doctest: +SKIP
>>> node = render_node(cluster, "node-1", cluster_cidr="10.244.0.0/16")   # doctest: +SKIP

docs/kube.md describes what is modelled and how it maps to kube-proxy's source.
"""
from __future__ import annotations

import ipaddress

from .manifests import ManifestError
from .model import Cluster, load_manifests
from .render import (endpoint_chain_name, port_proto_hash, probability, render,
                     service_chain_names)

__all__ = ["Cluster", "ManifestError", "load_manifests", "render", "render_node", "node_host", "host_options",
           "port_proto_hash", "service_chain_names", "endpoint_chain_name", "probability"]


def host_options(cluster: Cluster, node: str, node_ips: list[str] | None = None,
                 prefix_len: int = 24, pod_interface: str = "cni0"):
    """The ``Host.from_options`` arguments of ``node`` (``ifaces``, ``gateway``): its IPs on
    ``eth0`` (``/prefix_len``), the first address of its podCIDR on ``pod_interface`` (the
    bridge pods hang off) and a default gateway, the first other address of the node's
    subnet."""
    obj = cluster.node(node)
    if node_ips is None:
        if obj is None:
            raise ValueError(f"no Node object named {node!r}; pass node_ips")
        node_ips = obj.ipv4_addresses()
    ifaces = []
    gateway = None
    if node_ips:
        ifaces.append("eth0=" + ",".join(f"{ip}/{prefix_len}" for ip in node_ips))
        net = ipaddress.ip_network(f"{node_ips[0]}/{prefix_len}", strict=False)
        for cand in net.hosts():
            if str(cand) not in node_ips:
                gateway = str(cand)
                break
    cidr = obj.ipv4_pod_cidr() if obj is not None else None
    if cidr:
        net = ipaddress.ip_network(cidr)
        first = next(net.hosts(), None)
        if first is not None:
            ifaces.append(f"{pod_interface}={first}/{net.prefixlen}")
    return ifaces, gateway


def node_host(cluster: Cluster, node: str, node_ips: list[str] | None = None,
              prefix_len: int = 24, pod_interface: str = "cni0"):
    """A :class:`nfemu.host.Host` for ``node`` built from :func:`host_options`, with
    ``route_localnet=1`` (kube-proxy sets it for localhost node ports)."""
    from ..host import Host
    ifaces, gateway = host_options(cluster, node, node_ips, prefix_len, pod_interface)
    return Host.from_options(ifaces, (), gateway, route_localnet=True)


def render_node(cluster: Cluster, node: str, *, seed: int | None = None, **options):
    """A :class:`nfemu.node.Node` running the rules :func:`render` gives for ``node`` (same
    keyword options) on the host :func:`node_host` builds."""
    from ..node import Node
    from ..parse import loads
    from ..validate import ALL_OBJECTS
    text = render(cluster, node, **options)
    ruleset = loads(text, file=f"<kube render {node}>", objects=ALL_OBJECTS)  # its nfacct objects exist
    return Node(ruleset, node_host(cluster, node, options.get("node_ips")), seed=seed)
