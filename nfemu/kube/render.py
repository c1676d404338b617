"""The iptables rules kube-proxy's iptables mode writes on one node, as text.

This mirrors ``syncProxyRules`` and ``writeServiceToEndpointRules`` of kube-proxy's iptables
proxier (kubernetes/kubernetes pkg/proxy/iptables/proxier.go, the v1.29+ shapes: KUBE-SVC /
KUBE-SVL / KUBE-EXT / KUBE-FW / KUBE-SEP chains, ``-m tcp -p tcp`` order, REJECT/DROP rules in
the filter table for services without (local) endpoints, ``MASQUERADE --random-fully``) for a
full sync of the IPv4 proxier, plus the jump rules kube-proxy ensures in the built-in chains
(``iptablesJumpChains``), kubelet's KUBE-FIREWALL jumps and the canary / hint chains that a
node's ``iptables-save`` shows. Rule arguments are written the way kube-proxy writes its
restore input (``iptables-save`` prints them in its own canonical order; ``nfemu fmt`` /
``nfemu.loads(text).save()`` gives that form).

Deliberate differences from the real proxier, all about order or cosmetics:

* kube-proxy walks its service map in Go's random map order; services are rendered here in
  the order of their ``ns/name:port`` string (then protocol), so a render is reproducible.
* the masquerade mark is written ``0x4000`` (the iptables-save spelling of bit 14, the
  default ``--iptables-masquerade-bit``); kube-proxy formats it with ``%#08x``.
* the merged endpoint list of CategorizeEndpoints (topology hints or terminating local
  endpoints in use) comes out of a Go map in random order; it is sorted here.
* nfacct counters (``-m nfacct``) are off by default (``nfacct=True`` turns them on), as on
  a node whose kube-proxy could not create them; ``--nodeport-addresses`` is the default
  (every local address).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
from dataclasses import dataclass

from .model import LABEL_ZONE, Cluster, EndpointInfo, ServicePortInfo, categorize_endpoints

__all__ = ["render", "RenderOptions", "port_proto_hash", "service_chain_names",
           "endpoint_chain_name", "probability", "LocalDetector", "DETECT_LOCAL_MODES"]

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_FIREWALL = "KUBE-FIREWALL"
MASQ_MARK = "0x4000"
LARGE_CLUSTER_ENDPOINTS = 1000
DETECT_LOCAL_MODES = ("ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix", "None")


# ------------------------------------------------------------------ names
def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """portProtoHash: the first 16 characters of base32(sha256(name + protocol)), protocol
    in lower case."""
    digest = hashlib.sha256((service_port_name + protocol.lower()).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_chain_names(service_port_name: str, protocol: str) -> dict[str, str]:
    """The KUBE-SVC/SVL/EXT/FW chain names of a service port (servicePortPolicyClusterChain,
    servicePortPolicyLocalChainName, serviceExternalChainName, serviceFirewallChainName)."""
    h = port_proto_hash(service_port_name, protocol)
    return {"cluster": f"KUBE-SVC-{h}", "local": f"KUBE-SVL-{h}", "external": f"KUBE-EXT-{h}",
            "firewall": f"KUBE-FW-{h}"}


def endpoint_chain_name(service_port_name: str, protocol: str, endpoint: str) -> str:
    """servicePortEndpointChainName: KUBE-SEP- + base32(sha256(name + protocol + ip:port))[:16]."""
    digest = hashlib.sha256((service_port_name + protocol.lower() + endpoint).encode()).digest()
    return "KUBE-SEP-" + base64.b32encode(digest).decode()[:16]


def probability(n: int) -> str:
    """computeProbability: ``%0.10f`` of 1/n."""
    return f"{1.0 / n:.10f}"


# ------------------------------------------------------------------ local traffic detector
@dataclass(frozen=True)
class LocalDetector:
    """proxyutil.LocalTrafficDetector: the match that says "from a pod of this cluster /
    node" (``if_local``) and its negation (``if_not_local``); unimplemented (mode None, or
    ClusterCIDR without a CIDR) means kube-proxy writes neither rule."""

    if_local: tuple[str, ...] = ()
    if_not_local: tuple[str, ...] = ()

    @property
    def implemented(self) -> bool:
        return bool(self.if_local)

    @classmethod
    def build(cls, mode: str, cluster_cidr: str | None, node_cidr: str | None,
              bridge_interface: str | None, interface_prefix: str | None) -> "LocalDetector":
        """The detector of ``--detect-local-mode`` ``mode``; ValueError when its parameter is
        missing (kube-proxy refuses to start, or for ClusterCIDR, runs without one)."""
        if mode == "ClusterCIDR":
            if not cluster_cidr:
                return cls()
            cidr = str(ipaddress.ip_network(cluster_cidr, strict=False))
            return cls(("-s", cidr), ("!", "-s", cidr))
        if mode == "NodeCIDR":
            if not node_cidr:
                raise ValueError("detect-local NodeCIDR needs the node's podCIDR (spec.podCIDR "
                                 "of its Node object)")
            cidr = str(ipaddress.ip_network(node_cidr, strict=False))
            return cls(("-s", cidr), ("!", "-s", cidr))
        if mode == "BridgeInterface":
            if not bridge_interface:
                raise ValueError("detect-local BridgeInterface needs the bridge's name")
            return cls(("-i", bridge_interface), ("!", "-i", bridge_interface))
        if mode == "InterfaceNamePrefix":
            if not interface_prefix:
                raise ValueError("detect-local InterfaceNamePrefix needs the prefix")
            return cls(("-i", interface_prefix + "+"), ("!", "-i", interface_prefix + "+"))
        if mode == "None":
            return cls()
        raise ValueError(f"unknown detect-local mode {mode!r} (one of "
                         f"{', '.join(DETECT_LOCAL_MODES)})")


@dataclass(frozen=True)
class RenderOptions:
    """kube-proxy's configuration that changes the rules."""

    node: str
    node_ips: tuple[str, ...]
    detector: LocalDetector
    masquerade_all: bool = False
    localhost_nodeports: bool = True
    conntrack_tcp_liberal: bool = False
    nfacct: bool = False
    random_fully: bool = True
    zone: str = ""
    prefer_same_node_hints: bool = True


# ------------------------------------------------------------------ rendering
def _q(text: str) -> str:
    """A comment as kube-proxy writes it: quoted when it holds a space."""
    return f'"{text}"' if " " in text else text


class _Lines:
    def __init__(self):
        self.lines: list[str] = []

    def write(self, *parts) -> None:
        flat: list[str] = []
        for p in parts:
            if isinstance(p, (list, tuple)):
                flat.extend(p)
            else:
                flat.append(p)
        self.lines.append(" ".join(flat))


def render(cluster: Cluster, node: str, *, cluster_cidr: str | None = None,
           node_ips: list[str] | None = None, masquerade_all: bool = False,
           detect_local: str = "ClusterCIDR", bridge_interface: str | None = None,
           interface_name_prefix: str | None = None, localhost_nodeports: bool = True,
           conntrack_tcp_liberal: bool = False, nfacct: bool = False,
           random_fully: bool = True) -> str:
    """The iptables rules kube-proxy (iptables mode, IPv4) writes on ``node``, as one
    iptables-restore text (tables mangle, filter and nat, base chains with ACCEPT policies).

    ``node_ips`` default to the Node object's InternalIP/ExternalIP addresses (the first is
    kube-proxy's node IP, used for loadBalancerSourceRanges); ``detect_local`` is
    ``--detect-local-mode`` (ClusterCIDR needs ``cluster_cidr`` to detect anything, NodeCIDR
    reads the Node's podCIDR, BridgeInterface needs ``bridge_interface``,
    InterfaceNamePrefix needs ``interface_name_prefix``). ``localhost_nodeports`` is
    ``--iptables-localhost-nodeports``; ``conntrack_tcp_liberal``: the node sets
    nf_conntrack_tcp_be_liberal (no INVALID drop rule); ``nfacct``: kube-proxy could create
    its nfacct counters (``-m nfacct`` rules; the objects must exist for a load);
    ``random_fully``: iptables supports ``--random-fully``. Raises ValueError for an unknown
    node or a detector without its parameter."""
    opts = _options(cluster, node, cluster_cidr, node_ips, masquerade_all, detect_local,
                    bridge_interface, interface_name_prefix, localhost_nodeports,
                    conntrack_tcp_liberal)
    opts = dataclasses.replace(opts, nfacct=nfacct, random_fully=random_fully)
    filter_chains, filter_rules, nat_chains, nat_rules = _sync(cluster, opts)
    return _assemble(opts, filter_chains, filter_rules, nat_chains, nat_rules)


def _options(cluster, node, cluster_cidr, node_ips, masquerade_all, detect_local,
             bridge_interface, interface_name_prefix, localhost_nodeports,
             conntrack_tcp_liberal) -> RenderOptions:
    obj = cluster.node(node)
    if node_ips is None:
        if obj is None:
            known = ", ".join(n.name for n in cluster.nodes) or "none"
            raise ValueError(f"no Node object named {node!r} (nodes given: {known}); pass "
                             "node_ips (--node-ip) to render a node without one")
        node_ips = obj.ipv4_addresses()
    ips = []
    for ip in node_ips:
        ips.append(str(ipaddress.ip_address(ip)))
    node_cidr = obj.ipv4_pod_cidr() if obj is not None else None
    detector = LocalDetector.build(detect_local, cluster_cidr, node_cidr, bridge_interface,
                                   interface_name_prefix)
    zone = obj.labels.get(LABEL_ZONE, "") if obj is not None else ""
    return RenderOptions(node, tuple(ips), detector, masquerade_all, localhost_nodeports,
                         conntrack_tcp_liberal, zone=zone)


def _service_ports(cluster: Cluster) -> list[ServicePortInfo]:
    ports = [info for svc in cluster.services for info in svc.ports_for_proxy()]
    return sorted(ports, key=lambda i: (i.name_string, i.protocol))


def _sync(cluster: Cluster, opts: RenderOptions):
    """syncProxyRules (full sync): the filter and nat chain and rule lines."""
    filter_chains = [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS,
                     KUBE_PROXY_FIREWALL]
    nat_chains = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]
    fr, nr = _Lines(), _Lines()
    nr.write("-A", KUBE_POSTROUTING, "-m", "mark", "!", "--mark", f"{MASQ_MARK}/{MASQ_MARK}",
             "-j", "RETURN")
    nr.write("-A", KUBE_POSTROUTING, "-j", "MARK", "--xor-mark", MASQ_MARK)
    nr.write("-A", KUBE_POSTROUTING, "-m", "comment", "--comment",
             '"kubernetes service traffic requiring SNAT"', "-j", "MASQUERADE",
             ["--random-fully"] if opts.random_fully else [])
    nr.write("-A", KUBE_MARK_MASQ, "-j", "MARK", "--or-mark", MASQ_MARK)
    if opts.localhost_nodeports:
        filter_chains.append(KUBE_FIREWALL)
        fr.write("-A", KUBE_FIREWALL, "-m", "comment", "--comment",
                 '"block incoming localnet connections"', "-d", "127.0.0.0/8", "!", "-s",
                 "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT",
                 "-j", "DROP")

    eps_map = cluster.endpoints_map(opts.node)
    ports = _service_ports(cluster)
    total = sum(len(eps_map.get((i.namespace, i.name, i.port_name, i.protocol), []))
                for i in ports)
    large = total > LARGE_CLUSTER_ENDPOINTS
    node_ip = opts.node_ips[0] if opts.node_ips else None
    det = opts.detector

    def svc_comment(args: list, text: str) -> list:      # appendServiceCommentLocked
        return args if large else [*args, "-m", "comment", "--comment", _q(text)]

    for info in ports:
        proto = info.protocol.lower()
        name = info.name_string
        names = service_chain_names(name, info.protocol)
        all_eps = eps_map.get((info.namespace, info.name, info.port_name, info.protocol), [])
        cluster_eps, local_eps, reachable, has_eps = categorize_endpoints(
            all_eps, info, opts.node, opts.zone, opts.prefer_same_node_hints)
        cluster_chain, local_chain = names["cluster"], names["local"]
        uses_cluster_chain = bool(cluster_eps) and info.uses_cluster_endpoints()
        uses_local_chain = bool(local_eps) and info.uses_local_endpoints()

        internal_chain, has_internal = cluster_chain, has_eps
        if info.internal_policy_local:
            internal_chain = local_chain
            has_internal = has_internal and bool(local_eps)
        external_policy_chain, has_external = cluster_chain, has_eps
        if info.external_policy_local:
            external_policy_chain = local_chain
            has_external = has_external and bool(local_eps)
        ext_chain = names["external"]
        uses_ext_chain = has_eps and info.externally_accessible()
        lb_chain = ext_chain
        fw_chain = names["firewall"]
        uses_fw = has_eps and bool(info.lb_vips) and bool(info.lb_source_ranges)
        if uses_fw:
            lb_chain = fw_chain

        if not has_eps:
            int_target = ext_target = "REJECT"
            int_comment = ext_comment = _q(f"{name} has no endpoints")
        else:
            int_target = ext_target = int_comment = ext_comment = ""
            if not has_internal:
                int_target, int_comment = "DROP", _q(f"{name} has no local endpoints")
            if not has_external:
                ext_target, ext_comment = "DROP", _q(f"{name} has no local endpoints")
        match = ["-m", proto, "-p", proto]
        cip, port = info.cluster_ip, str(info.port)

        if has_internal:
            nr.write("-A", KUBE_SERVICES, "-m", "comment", "--comment", _q(f"{name} cluster IP"),
                     match, "-d", cip, "--dport", port, "-j", internal_chain)
        else:
            fr.write("-A", KUBE_SERVICES, "-m", "comment", "--comment", int_comment, match,
                     "-d", cip, "--dport", port, "-j", int_target)
        for ext_ip in info.external_ips:
            if has_eps:
                nr.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                         _q(f"{name} external IP"), match, "-d", ext_ip, "--dport", port,
                         "-j", ext_chain)
            if not has_external:
                fr.write("-A", KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment", ext_comment,
                         match, "-d", ext_ip, "--dport", port, "-j", ext_target)
        for vip in info.lb_vips:
            if has_eps:
                nr.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
                         _q(f"{name} loadbalancer IP"), match, "-d", vip, "--dport", port,
                         "-j", lb_chain)
            if uses_fw:
                fr.write("-A", KUBE_PROXY_FIREWALL, "-m", "comment", "--comment",
                         _q(f"{name} traffic not accepted by {fw_chain}"), match, "-d", vip,
                         "--dport", port, "-j", "DROP")
        if not has_external:
            for vip in info.lb_vips:
                fr.write("-A", KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment", ext_comment,
                         match, "-d", vip, "--dport", port, "-j", ext_target)
        if info.node_port:
            if has_eps:
                if opts.localhost_nodeports and opts.nfacct:
                    nr.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment", _q(name), match,
                             "-d", "127.0.0.0/8", "--dport", str(info.node_port), "-m", "nfacct",
                             "--nfacct-name", "localhost_nps_accepted_pkts", "-j", ext_chain)
                nr.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment", _q(name), match,
                         "--dport", str(info.node_port), "-j", ext_chain)
            if not has_external:
                fr.write("-A", KUBE_EXTERNAL_SERVICES, "-m", "comment", "--comment", ext_comment,
                         "-m", "addrtype", "--dst-type", "LOCAL", match,
                         "--dport", str(info.node_port), "-j", ext_target)
        if info.health_check_node_port:
            fr.write("-A", KUBE_NODEPORTS, "-m", "comment", "--comment",
                     _q(f"{name} health check node port"), "-m", "tcp", "-p", "tcp",
                     "--dport", str(info.health_check_node_port), "-j", "ACCEPT")

        if has_internal:
            args = ["-m", "comment", "--comment", _q(f"{name} cluster IP"), *match, "-d", cip,
                    "--dport", port]
            if opts.masquerade_all:
                nr.write("-A", internal_chain, args, "-j", KUBE_MARK_MASQ)
            elif det.implemented:
                nr.write("-A", internal_chain, args, list(det.if_not_local), "-j", KUBE_MARK_MASQ)

        if uses_ext_chain:
            nat_chains.append(ext_chain)
            if not info.external_policy_local:
                nr.write("-A", ext_chain, "-m", "comment", "--comment",
                         _q(f"masquerade traffic for {name} external destinations"),
                         "-j", KUBE_MARK_MASQ)
            else:
                if det.implemented:
                    nr.write("-A", ext_chain, "-m", "comment", "--comment",
                             _q(f"pod traffic for {name} external destinations"),
                             list(det.if_local), "-j", cluster_chain)
                nr.write("-A", ext_chain, "-m", "comment", "--comment",
                         _q(f"masquerade LOCAL traffic for {name} external destinations"),
                         "-m", "addrtype", "--src-type", "LOCAL", "-j", KUBE_MARK_MASQ)
                nr.write("-A", ext_chain, "-m", "comment", "--comment",
                         _q(f"route LOCAL traffic for {name} external destinations"),
                         "-m", "addrtype", "--src-type", "LOCAL", "-j", cluster_chain)
            if has_external:
                nr.write("-A", ext_chain, "-j", external_policy_chain)

        if uses_fw:
            nat_chains.append(fw_chain)
            head = ["-A", fw_chain, "-m", "comment", "--comment", _q(f"{name} loadbalancer IP")]
            allow_from_node = False
            for cidr in info.lb_source_ranges:
                nr.write(head, "-s", cidr, "-j", ext_chain)
                if node_ip and ipaddress.ip_address(node_ip) in ipaddress.ip_network(cidr):
                    allow_from_node = True
            if allow_from_node:
                for vip in info.lb_vips:
                    nr.write(head, "-s", vip, "-j", ext_chain)
            nr.write("-A", fw_chain, "-m", "comment", "--comment",
                     _q(f"other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"))

        if uses_cluster_chain:
            nat_chains.append(cluster_chain)
            _service_to_endpoints(nr, name, info, cluster_chain, cluster_eps, svc_comment)
        if uses_local_chain:
            nat_chains.append(local_chain)
            _service_to_endpoints(nr, name, info, local_chain, local_eps, svc_comment)

        for ep in reachable:
            sep = endpoint_chain_name(name, info.protocol, str(ep))
            nat_chains.append(sep)
            args = svc_comment(["-A", sep], name)
            nr.write(args, "-s", ep.ip, "-j", KUBE_MARK_MASQ)
            if info.affinity:
                args = [*args, "-m", "recent", "--name", sep, "--set"]
            nr.write(args, match, "-j", "DNAT", "--to-destination", str(ep))

    # the tail call to KUBE-NODEPORTS (nodePortAddresses matches everything)
    dest = ["-m", "addrtype", "--dst-type", "LOCAL"]
    if not opts.localhost_nodeports:
        dest += ["!", "-d", "127.0.0.0/8"]
    nr.write("-A", KUBE_SERVICES, "-m", "comment", "--comment",
             '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"',
             dest, "-j", KUBE_NODEPORTS)
    if not opts.conntrack_tcp_liberal:
        fr.write("-A", KUBE_FORWARD, "-m", "conntrack", "--ctstate", "INVALID",
                 ["-m", "nfacct", "--nfacct-name", "ct_state_invalid_dropped_pkts"]
                 if opts.nfacct else [], "-j", "DROP")
    fr.write("-A", KUBE_FORWARD, "-m", "comment", "--comment", '"kubernetes forwarding rules"',
             "-m", "mark", "--mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j", "ACCEPT")
    fr.write("-A", KUBE_FORWARD, "-m", "comment", "--comment",
             '"kubernetes forwarding conntrack rule"', "-m", "conntrack", "--ctstate",
             "RELATED,ESTABLISHED", "-j", "ACCEPT")
    return filter_chains, fr.lines, nat_chains, nr.lines


def _service_to_endpoints(nr: _Lines, name: str, info: ServicePortInfo, chain: str,
                          endpoints: list[EndpointInfo], svc_comment) -> None:
    """writeServiceToEndpointRules: affinity checks first, then one rule per endpoint, each
    but the last matching with probability 1/(endpoints left)."""
    seps = [endpoint_chain_name(name, info.protocol, str(ep)) for ep in endpoints]
    if info.affinity:
        for ep, sep in zip(endpoints, seps):
            nr.write(svc_comment(["-A", chain], f"{name} -> {ep}"), "-m", "recent", "--name", sep,
                     "--rcheck", "--seconds", str(info.sticky_seconds), "--reap", "-j", sep)
    n = len(endpoints)
    for i, (ep, sep) in enumerate(zip(endpoints, seps)):
        args = svc_comment(["-A", chain], f"{name} -> {ep}")
        if i < n - 1:
            args = [*args, "-m", "statistic", "--mode", "random", "--probability",
                    probability(n - i)]
        nr.write(args, "-j", sep)


# The jump rules in the built-in chains, in the order a node shows them: kube-proxy prepends
# each of iptablesJumpChains in turn; kubelet's KUBE-FIREWALL jumps were there first.
_FILTER_JUMPS = {
    "INPUT": [
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        "-j KUBE-FIREWALL",
    ],
    "FORWARD": [
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    ],
    "OUTPUT": [
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-j KUBE-FIREWALL",
    ],
}
_NAT_JUMPS = {
    "PREROUTING": ['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'],
    "OUTPUT": ['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'],
    "POSTROUTING": ['-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'],
}


def _assemble(opts: RenderOptions, filter_chains, filter_rules, nat_chains, nat_rules) -> str:
    out = [f"# kube-proxy (iptables mode) rules for node {opts.node}, rendered by nfemu kube",
           "*mangle"]
    for chain in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"):
        out.append(f":{chain} ACCEPT [0:0]")
    for chain in ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"):
        out.append(f":{chain} - [0:0]")
    out.append("COMMIT")

    out.append("*filter")
    for chain in ("INPUT", "FORWARD", "OUTPUT"):
        out.append(f":{chain} ACCEPT [0:0]")
    user = set(filter_chains) | {KUBE_FIREWALL, "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"}
    for chain in sorted(user):
        out.append(f":{chain} - [0:0]")
    for chain, rules in _FILTER_JUMPS.items():
        out.extend(f"-A {chain} {r}" for r in rules)
    out.extend(filter_rules)
    out.append("COMMIT")

    out.append("*nat")
    for chain in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"):
        out.append(f":{chain} ACCEPT [0:0]")
    top = set(nat_chains[:4]) | {"KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"}
    for chain in sorted(top):
        out.append(f":{chain} - [0:0]")
    seen = set(top)
    for chain in nat_chains[4:]:
        if chain not in seen:
            seen.add(chain)
            out.append(f":{chain} - [0:0]")
    for chain, rules in _NAT_JUMPS.items():
        out.extend(f"-A {chain} {r}" for r in rules)
    out.extend(nat_rules)
    out.append("COMMIT")
    return "\n".join(out) + "\n"
