"""The cluster as kube-proxy sees it: Services, EndpointSlices (or core/v1 Endpoints), Pods
and Nodes read from manifests, and the per-node endpoint view kube-proxy builds from them.

What mirrors which part of kube-proxy (kubernetes/kubernetes, pkg/proxy):

* :meth:`Service.ports_for_proxy` - ``newBaseServiceInfo`` (serviceport.go) and
  ``ShouldSkipService``: headless and ExternalName services are skipped; external IPs, load
  balancer source ranges and load balancer VIPs (``ipMode`` VIP or unset) are kept for the
  IPv4 family only; ``sessionAffinityConfig.clientIP.timeoutSeconds`` defaults to 10800; the
  health check node port is used only for ``type: LoadBalancer`` with external policy Local.
* :meth:`Cluster.endpoints_map` - ``EndpointSliceCache`` (endpointslicecache.go): endpoints
  per (service, port name, protocol), deduplicated by ``ip:port`` (a later copy wins unless it
  is terminating), sorted by the ``ip:port`` string; ``ready``/``serving`` default to true and
  ``terminating`` to false when absent; ``isLocal`` is ``nodeName == this node``. Slices are
  grouped by their ``kubernetes.io/service-name`` label; slices and services labelled
  ``service.kubernetes.io/headless`` or ``service.kubernetes.io/service-proxy-name`` are
  ignored, as kube-proxy's informers filter them out. core/v1 Endpoints are read only for a
  service that has no EndpointSlice, the way the EndpointSlice mirroring controller would
  turn them into slices (``addresses`` ready, ``notReadyAddresses`` neither ready nor
  serving).
* :func:`categorize_endpoints` - ``CategorizeEndpoints`` (topology.go): Cluster policy uses
  the ready endpoints (only those hinted for this node or its zone when topology hints
  apply, ``topologyModeFromHints``), or when none is ready the serving and terminating ones;
  Local policy uses this node's ready endpoints, or else this node's serving terminating
  ones.

Only IPv4 is modelled (the IPv4 proxier); IPv6 addresses are ignored as that proxier ignores
them.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..errors import Location
from .manifests import ManifestError, MDict, MList, objects_of, read_documents, read_source

__all__ = ["Cluster", "Service", "ServicePort", "EndpointSlice", "Endpoint", "SlicePort",
           "Pod", "NodeObject", "EndpointInfo", "ServicePortInfo", "categorize_endpoints",
           "topology_mode", "LABEL_ZONE"]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LABEL_PROXY_NAME = "service.kubernetes.io/service-proxy-name"
LABEL_ZONE = "topology.kubernetes.io/zone"
PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_STICKY_SECONDS = 10800


# ------------------------------------------------------------------ field readers
def _where(obj, key=None) -> Location:
    if isinstance(obj, MDict):
        return obj.value_location(key) if key is not None else obj.location
    return getattr(obj, "location", Location())


def _map(obj, key) -> dict:
    """The mapping at ``obj[key]`` (an empty one, located at ``obj``, when absent)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return _empty(obj)
    if not isinstance(value, dict):
        raise ManifestError(f"{key} must be a mapping", _where(obj, key))
    return value


def _empty(parent) -> MDict:
    d = MDict()
    d.location = _where(parent)
    d.value_locations = {}
    return d


def _list(obj, key) -> list:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(f"{key} must be a sequence", _where(obj, key))
    return value


def _str(obj, key, default: str | None = None, required: bool = False) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        if required:
            raise ManifestError(f"{key} is required", _where(obj))
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ManifestError(f"{key} must be a string", _where(obj, key))
    return str(value)


def _int(obj, key, lo: int, hi: int, default: int | None = None, required: bool = False):
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        if required:
            raise ManifestError(f"{key} is required", _where(obj))
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{key} must be an integer, not {value!r}", _where(obj, key))
    if not lo <= value <= hi:
        raise ManifestError(f"{key} {value} is out of range {lo}-{hi}", _where(obj, key))
    return value


def _bool(obj, key) -> bool | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ManifestError(f"{key} must be true or false", _where(obj, key))
    return value


def _labels(obj, key="labels") -> dict[str, str]:
    labels = _map(obj, key)
    out = {}
    for k, v in labels.items():
        if not isinstance(k, str) or isinstance(v, (dict, list)) or v is None:
            raise ManifestError(f"{key} must map strings to strings", _where(labels, k))
        out[k] = v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _ip(text, where: Location, what: str):
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError:
        raise ManifestError(f"{what} {text!r} is not an IP address", where) from None


def _protocol(obj, key="protocol") -> str:
    proto = _str(obj, key, "TCP")
    if proto not in PROTOCOLS:
        raise ManifestError(f"protocol must be one of TCP, UDP, SCTP, not {proto!r}",
                            _where(obj, key))
    return proto


# ------------------------------------------------------------------ objects
@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target_port: int | str
    node_port: int = 0


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    selector: dict | None = None
    external_ips: tuple[str, ...] = ()
    lb_ingress: tuple[tuple[str, str | None], ...] = ()     # (ip, ipMode)
    lb_source_ranges: tuple[str, ...] = ()
    session_affinity: str = "None"
    affinity_timeout: int | None = None
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    health_check_node_port: int = 0
    labels: dict = field(default_factory=dict)
    location: Location = Location()
    publish_not_ready: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def cluster_ip(self) -> str | None:
        """The IPv4 cluster IP (``clusterIPs`` first, then ``clusterIP``), or None when the
        service is headless or has none of that family."""
        for ip in self.cluster_ips:
            if ip in ("", "None"):
                return None
            try:
                if ipaddress.ip_address(ip).version == 4:
                    return ip
            except ValueError:
                continue
        return None

    def skipped_reason(self) -> str | None:
        """Why kube-proxy ignores the service (ShouldSkipService and its informer's label
        filter), or None."""
        if LABEL_PROXY_NAME in self.labels:
            return f"it is labelled {LABEL_PROXY_NAME} (another proxy serves it)"
        if LABEL_HEADLESS in self.labels:
            return f"it is labelled {LABEL_HEADLESS}"
        if self.type == "ExternalName":
            return "it is an ExternalName service"
        if not self.cluster_ips or self.cluster_ips[0] in ("", "None"):
            return "it is headless (clusterIP None)"
        if self.cluster_ip() is None:
            return "it has no IPv4 cluster IP"
        return None

    def externally_accessible_type(self) -> bool:
        """apiservice.ExternallyAccessible: LoadBalancer, NodePort, or ClusterIP with
        external IPs."""
        return self.type in ("LoadBalancer", "NodePort") or (
            self.type == "ClusterIP" and bool(self.external_ips))

    def ports_for_proxy(self) -> list["ServicePortInfo"]:
        """One :class:`ServicePortInfo` per port, as newBaseServiceInfo builds it for the
        IPv4 proxier; empty when kube-proxy skips the service."""
        if self.skipped_reason():
            return []
        v4 = lambda ips: tuple(ip for ip in ips if ipaddress.ip_address(ip).version == 4)  # noqa: E731
        ranges = []
        for cidr in self.lb_source_ranges:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
            if net.version == 4:
                ranges.append(str(net))
        vips = tuple(ip for ip, mode in self.lb_ingress
                     if ip and (mode is None or mode == "VIP")
                     and ipaddress.ip_address(ip).version == 4)
        ext_local = self.externally_accessible_type() and self.external_traffic_policy == "Local"
        hc = self.health_check_node_port if (self.type == "LoadBalancer" and ext_local) else 0
        sticky = (self.affinity_timeout if self.affinity_timeout is not None
                  else DEFAULT_STICKY_SECONDS)
        out = []
        for p in self.ports:
            out.append(ServicePortInfo(
                namespace=self.namespace, name=self.name, port_name=p.name,
                protocol=p.protocol, cluster_ip=self.cluster_ip(), port=p.port,
                node_port=p.node_port if self.type in ("NodePort", "LoadBalancer") else 0,
                external_ips=v4(self.external_ips), lb_vips=vips,
                lb_source_ranges=tuple(ranges),
                affinity=self.session_affinity == "ClientIP", sticky_seconds=sticky,
                external_policy_local=ext_local,
                internal_policy_local=self.internal_traffic_policy == "Local",
                health_check_node_port=hc))
        return out


@dataclass(frozen=True)
class ServicePortInfo:
    """One service port as kube-proxy's ServicePort interface describes it."""

    namespace: str
    name: str
    port_name: str
    protocol: str
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    lb_vips: tuple[str, ...] = ()
    lb_source_ranges: tuple[str, ...] = ()
    affinity: bool = False
    sticky_seconds: int = DEFAULT_STICKY_SECONDS
    external_policy_local: bool = False
    internal_policy_local: bool = False
    health_check_node_port: int = 0

    @property
    def name_string(self) -> str:
        """ServicePortName.String(): ``ns/name`` plus ``:port`` when the port is named."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.lb_vips or self.external_ips)

    def uses_cluster_endpoints(self) -> bool:
        return not self.internal_policy_local or self.externally_accessible()

    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (self.external_policy_local
                                              and self.externally_accessible())


@dataclass(frozen=True)
class Endpoint:
    """One entry of an EndpointSlice's ``endpoints``."""

    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None
    zone: str | None = None
    target: str | None = None         # "Kind ns/name" of targetRef
    zone_hints: tuple[str, ...] = ()  # hints.forZones[].name
    node_hints: tuple[str, ...] = ()  # hints.forNodes[].name


@dataclass(frozen=True)
class SlicePort:
    name: str | None                  # None: the port has no name field (kube-proxy skips it)
    port: int | None
    protocol: str = "TCP"


@dataclass(frozen=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str | None
    address_type: str = "IPv4"
    ports: tuple[SlicePort, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    labels: dict = field(default_factory=dict)
    mirrored_from_endpoints: bool = False
    location: Location = Location()


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: dict = field(default_factory=dict)
    node_name: str | None = None
    ips: tuple[str, ...] = ()
    phase: str | None = None
    ready: bool | None = None
    terminating: bool = False
    container_ports: tuple[tuple[str | None, int, str], ...] = ()   # (name, port, protocol)
    location: Location = Location()


@dataclass(frozen=True)
class NodeObject:
    name: str
    internal_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()
    pod_cidrs: tuple[str, ...] = ()
    labels: dict = field(default_factory=dict)
    location: Location = Location()

    def ipv4_addresses(self) -> list[str]:
        """kube-proxy's node IPs: InternalIP addresses first, then ExternalIP ones (IPv4)."""
        out = []
        for ip in (*self.internal_ips, *self.external_ips):
            if ipaddress.ip_address(ip).version == 4 and ip not in out:
                out.append(ip)
        return out

    def ipv4_pod_cidr(self) -> str | None:
        for cidr in self.pod_cidrs:
            if ipaddress.ip_network(cidr, strict=False).version == 4:
                return str(ipaddress.ip_network(cidr, strict=False))
        return None


@dataclass(frozen=True)
class EndpointInfo:
    """One endpoint of a service port on one node (BaseEndpointInfo)."""

    ip: str
    port: int
    is_local: bool
    ready: bool
    serving: bool
    terminating: bool
    zone_hints: frozenset = frozenset()
    node_hints: frozenset = frozenset()

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


# ------------------------------------------------------------------ parsing
def _metadata(obj: MDict) -> tuple[str, str, dict, MDict]:
    meta = _map(obj, "metadata")
    name = _str(meta, "name", required=True)
    namespace = _str(meta, "namespace", "default")
    return namespace, name, _labels(meta), meta


def _parse_service(obj: MDict) -> Service:
    namespace, name, labels, _meta = _metadata(obj)
    spec = _map(obj, "spec")
    stype = _str(spec, "type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        raise ManifestError(f"unknown service type {stype!r}", _where(spec, "type"))
    cluster_ips = [str(x) for x in _list(spec, "clusterIPs")]
    cip = _str(spec, "clusterIP")
    if not cluster_ips and cip is not None:
        cluster_ips = [cip]
    for i, ip in enumerate(cluster_ips):
        if ip not in ("", "None"):
            where = (spec["clusterIPs"].item_location(i)
                     if isinstance(spec.get("clusterIPs"), MList) and spec["clusterIPs"]
                     else _where(spec, "clusterIP"))
            _ip(ip, where, "clusterIP")
    if stype != "ExternalName" and not cluster_ips:
        raise ManifestError("spec.clusterIP is required (kubectl get -o yaml prints the one "
                            "the API server allocated)", _where(spec))
    ports = []
    seen = set()
    for i, p in enumerate(_list(spec, "ports")):
        if not isinstance(p, dict):
            raise ManifestError("a service port is a mapping", spec["ports"].item_location(i))
        port = _int(p, "port", 1, 65535, required=True)
        proto = _protocol(p)
        pname = _str(p, "name", "")
        if pname in seen:
            raise ManifestError(f"duplicate service port name {pname!r}", _where(p))
        seen.add(pname)
        tp = p.get("targetPort", port)
        if isinstance(tp, bool) or not isinstance(tp, (int, str)):
            raise ManifestError("targetPort must be a number or a port name", _where(p, "targetPort"))
        node_port = _int(p, "nodePort", 0, 65535, 0)
        ports.append(ServicePort(pname, proto, port, tp, node_port))
    if len(ports) > 1 and any(not p.name for p in ports):
        raise ManifestError("a service with several ports must name each of them", _where(spec, "ports"))
    selector = spec.get("selector")
    if selector is not None:
        selector = _labels(spec, "selector")
    ext = []
    for i, ip in enumerate(_list(spec, "externalIPs")):
        ext.append(str(_ip(ip, spec["externalIPs"].item_location(i), "externalIP")))
    ranges = []
    for i, cidr in enumerate(_list(spec, "loadBalancerSourceRanges")):
        try:
            ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            raise ManifestError(f"loadBalancerSourceRanges entry {cidr!r} is not a CIDR",
                                spec["loadBalancerSourceRanges"].item_location(i)) from None
        ranges.append(str(cidr))
    affinity = _str(spec, "sessionAffinity", "None")
    if affinity not in ("None", "ClientIP"):
        raise ManifestError(f"sessionAffinity must be None or ClientIP, not {affinity!r}",
                            _where(spec, "sessionAffinity"))
    timeout = None
    if affinity == "ClientIP":
        client = _map(_map(spec, "sessionAffinityConfig"), "clientIP")
        timeout = _int(client, "timeoutSeconds", 1, 86400, None)
    etp = _str(spec, "externalTrafficPolicy", "Cluster")
    itp = _str(spec, "internalTrafficPolicy", "Cluster")
    for key, value in (("externalTrafficPolicy", etp), ("internalTrafficPolicy", itp)):
        if value not in ("Cluster", "Local"):
            raise ManifestError(f"{key} must be Cluster or Local, not {value!r}", _where(spec, key))
    hc = _int(spec, "healthCheckNodePort", 0, 65535, 0)
    ingress = []
    lb = _map(_map(obj, "status"), "loadBalancer")
    for i, ing in enumerate(_list(lb, "ingress")):
        if not isinstance(ing, dict):
            raise ManifestError("a load balancer ingress is a mapping", lb["ingress"].item_location(i))
        ip = _str(ing, "ip")
        if ip:
            _ip(ip, _where(ing, "ip"), "load balancer ingress ip")
            ingress.append((ip, _str(ing, "ipMode")))
    return Service(namespace, name, stype, tuple(cluster_ips), tuple(ports), selector,
                   tuple(ext), tuple(ingress), tuple(ranges), affinity, timeout, etp, itp, hc,
                   labels, obj.location, bool(_bool(spec, "publishNotReadyAddresses")))


def _parse_endpoint(e: MDict, where: Location) -> Endpoint:
    if not isinstance(e, dict):
        raise ManifestError("an endpoint is a mapping", where)
    addrs = []
    for i, a in enumerate(_list(e, "addresses")):
        addrs.append(str(_ip(a, e["addresses"].item_location(i), "endpoint address")))
    cond = _map(e, "conditions")
    ready, serving, terminating = _bool(cond, "ready"), _bool(cond, "serving"), _bool(cond, "terminating")
    ref = _map(e, "targetRef")
    target = None
    if ref:
        target = f"{_str(ref, 'kind', 'Pod')} {_str(ref, 'namespace', '')}/{_str(ref, 'name', '')}"
    hints = _map(e, "hints")
    zone_hints = tuple(str(z.get("name")) for z in _list(hints, "forZones")
                       if isinstance(z, dict) and z.get("name") is not None)
    node_hints = tuple(str(n.get("name")) for n in _list(hints, "forNodes")
                       if isinstance(n, dict) and n.get("name") is not None)
    return Endpoint(tuple(addrs), ready is None or ready, serving is None or serving,
                    bool(terminating), _str(e, "nodeName"), _str(e, "zone"), target,
                    zone_hints, node_hints)


def _parse_slice(obj: MDict) -> EndpointSlice:
    namespace, name, labels, _meta = _metadata(obj)
    atype = _str(obj, "addressType", "IPv4")
    ports = []
    for i, p in enumerate(_list(obj, "ports")):
        if not isinstance(p, dict):
            raise ManifestError("a slice port is a mapping", obj["ports"].item_location(i))
        pname = p.get("name")
        if pname is not None and not isinstance(pname, str):
            raise ManifestError("port name must be a string", _where(p, "name"))
        ports.append(SlicePort(pname, _int(p, "port", 0, 65535, None), _protocol(p)))
    eps = []
    for i, e in enumerate(_list(obj, "endpoints")):
        eps.append(_parse_endpoint(e, obj["endpoints"].item_location(i)))
    if atype == "IPv4":
        for ep in eps:
            for a in ep.addresses:
                if ipaddress.ip_address(a).version != 4:
                    raise ManifestError(f"address {a} in an IPv4 EndpointSlice", obj.location)
    return EndpointSlice(namespace, name, labels.get(LABEL_SERVICE_NAME), atype, tuple(ports),
                         tuple(eps), labels, False, obj.location)


def _parse_endpoints(obj: MDict) -> list[EndpointSlice]:
    """core/v1 Endpoints, one pseudo-slice per subset (what the mirroring controller writes)."""
    namespace, name, labels, _meta = _metadata(obj)
    out = []
    for si, subset in enumerate(_list(obj, "subsets")):
        if not isinstance(subset, dict):
            raise ManifestError("a subset is a mapping", obj["subsets"].item_location(si))
        ports = []
        for i, p in enumerate(_list(subset, "ports")):
            ports.append(SlicePort(_str(p, "name", ""), _int(p, "port", 1, 65535, required=True),
                                   _protocol(p)))
        eps = []
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for i, a in enumerate(_list(subset, key)):
                where = subset[key].item_location(i)
                if not isinstance(a, dict):
                    raise ManifestError("an endpoint address is a mapping", where)
                ip = str(_ip(_str(a, "ip", required=True), _where(a, "ip"), "address"))
                if ipaddress.ip_address(ip).version != 4:
                    continue
                ref = _map(a, "targetRef")
                target = (f"{_str(ref, 'kind', 'Pod')} {_str(ref, 'namespace', '')}/"
                          f"{_str(ref, 'name', '')}") if ref else None
                eps.append(Endpoint((ip,), ready, ready, False, _str(a, "nodeName"), None, target))
        out.append(EndpointSlice(namespace, f"{name}-mirrored-{si}", name, "IPv4", tuple(ports),
                                 tuple(eps), labels, True, obj.location))
    if not out:
        out.append(EndpointSlice(namespace, f"{name}-mirrored", name, "IPv4", (), (), labels,
                                 True, obj.location))
    return out


def _parse_pod(obj: MDict) -> Pod:
    namespace, name, labels, meta = _metadata(obj)
    spec = _map(obj, "spec")
    status = _map(obj, "status")
    ips = [str(x.get("ip")) for x in _list(status, "podIPs") if isinstance(x, dict) and x.get("ip")]
    if not ips and _str(status, "podIP"):
        ips = [_str(status, "podIP")]
    for ip in ips:
        _ip(ip, _where(status), "podIP")
    ready = None
    for c in _list(status, "conditions"):
        if isinstance(c, dict) and c.get("type") == "Ready":
            ready = str(c.get("status")) == "True"
    ports = []
    for c in _list(spec, "containers"):
        if not isinstance(c, dict):
            continue
        for p in _list(c, "ports"):
            if isinstance(p, dict):
                ports.append((_str(p, "name"), _int(p, "containerPort", 1, 65535, required=True),
                              _protocol(p)))
    return Pod(namespace, name, labels, _str(spec, "nodeName"), tuple(ips), _str(status, "phase"),
               ready, meta.get("deletionTimestamp") is not None, tuple(ports), obj.location)


def _parse_node(obj: MDict) -> NodeObject:
    _ns, name, labels, _meta = _metadata(obj)
    spec = _map(obj, "spec")
    status = _map(obj, "status")
    internal, external = [], []
    for i, a in enumerate(_list(status, "addresses")):
        if not isinstance(a, dict):
            raise ManifestError("a node address is a mapping", status["addresses"].item_location(i))
        kind, addr = _str(a, "type"), _str(a, "address")
        if kind in ("InternalIP", "ExternalIP") and addr:
            ip = str(_ip(addr, _where(a, "address"), kind))
            (internal if kind == "InternalIP" else external).append(ip)
    cidrs = [str(c) for c in _list(spec, "podCIDRs")]
    if not cidrs and _str(spec, "podCIDR"):
        cidrs = [_str(spec, "podCIDR")]
    for c in cidrs:
        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            raise ManifestError(f"podCIDR {c!r} is not a CIDR", _where(spec)) from None
    return NodeObject(name, tuple(internal), tuple(external), tuple(cidrs), labels, obj.location)


_PARSERS = {"Service": _parse_service, "EndpointSlice": _parse_slice, "Pod": _parse_pod,
            "Node": _parse_node}


# ------------------------------------------------------------------ the cluster
def topology_mode(endpoints: list[EndpointInfo], node: str, zone: str,
                  prefer_same_node: bool = True) -> str:
    """topologyModeFromHints (pkg/proxy/topology.go): "PreferSameNode" when every ready
    endpoint has node hints and one names this node (the PreferSameTrafficDistribution
    gate, on by default since it went beta), else "PreferSameZone" when every ready endpoint
    has zone hints and one names this node's zone, else "" (no topology)."""
    ready = [ep for ep in endpoints if ep.ready]
    all_node = all(ep.node_hints for ep in ready)
    all_zone = all(ep.zone_hints for ep in ready)
    if prefer_same_node and all_node and any(node in ep.node_hints for ep in ready):
        return "PreferSameNode"
    if all_zone and any(zone in ep.zone_hints for ep in ready):
        return "PreferSameZone"
    return ""


def _available(ep: EndpointInfo, mode: str, node: str, zone: str) -> bool:
    """availableForTopology."""
    if mode == "PreferSameNode":
        return node in ep.node_hints
    if mode == "PreferSameZone":
        return zone in ep.zone_hints
    return True


def categorize_endpoints(endpoints: list[EndpointInfo], svc: ServicePortInfo, node: str = "",
                         zone: str = "", prefer_same_node: bool = True):
    """CategorizeEndpoints (pkg/proxy/topology.go): returns (cluster_endpoints,
    local_endpoints, all_locally_reachable, has_any_endpoints). ``node`` and ``zone`` (the
    node's topology.kubernetes.io/zone label) drive topology-aware routing hints."""
    cluster: list[EndpointInfo] = []
    local: list[EndpointInfo] = []
    has_any = False
    mode = ""
    if svc.uses_cluster_endpoints():
        mode = topology_mode(endpoints, node, zone, prefer_same_node)
        cluster = [ep for ep in endpoints if ep.ready and _available(ep, mode, node, zone)]
        if not cluster:
            cluster = [ep for ep in endpoints if ep.serving and ep.terminating]
        has_any = bool(cluster)
    if not svc.uses_local_endpoints():
        return cluster, local, cluster, has_any
    local_ready = local_serving_terminating = False
    for ep in endpoints:
        if ep.ready:
            has_any = True
            local_ready |= ep.is_local
        elif ep.serving and ep.terminating:
            has_any = True
            local_serving_terminating |= ep.is_local
    use_terminating = False
    if local_ready:
        local = [ep for ep in endpoints if ep.is_local and ep.ready]
    elif local_serving_terminating:
        use_terminating = True
        local = [ep for ep in endpoints if ep.is_local and ep.serving and ep.terminating]
    if not svc.uses_cluster_endpoints():
        return cluster, local, local, has_any
    if not mode and not use_terminating:
        return cluster, local, cluster, has_any
    # kube-proxy merges the two lists through a Go map (random order): sorted here
    merged = {str(ep): ep for ep in cluster}
    merged.update({str(ep): ep for ep in local})
    return cluster, local, [merged[k] for k in sorted(merged)], has_any


@dataclass
class Cluster:
    """Everything read from the manifests. Objects of other kinds are counted in
    ``ignored`` (kind -> count); ``warnings`` lists located notes about objects kube-proxy
    would ignore."""

    services: list[Service] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)
    endpoints_objects: list[EndpointSlice] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    nodes: list[NodeObject] = field(default_factory=list)
    ignored: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    endpoints_from_pods: bool = False

    # -------------------------------------------------------------- building
    def add_text(self, text: str, file: str = "<text>") -> None:
        """Add every object of a YAML text (raises ManifestError with its location)."""
        for doc in read_documents(text, file):
            for obj in objects_of(doc, file):
                self.add_object(obj)

    def add_object(self, obj: MDict) -> None:
        kind = obj.get("kind")
        if kind == "Endpoints":
            self.endpoints_objects.extend(_parse_endpoints(obj))
            return
        parser = _PARSERS.get(kind)
        if parser is None:
            self.ignored[kind] = self.ignored.get(kind, 0) + 1
            return
        item = parser(obj)
        if kind == "Service":
            if any(s.key == item.key for s in self.services):
                raise ManifestError(f"service {item.key} is defined twice", obj.location)
            self.services.append(item)
        elif kind == "EndpointSlice":
            if item.service_name is None:
                self.warnings.append((obj.location, f"EndpointSlice {item.namespace}/{item.name} "
                                      f"has no {LABEL_SERVICE_NAME} label: kube-proxy ignores it"))
            self.slices.append(item)
        elif kind == "Pod":
            self.pods.append(item)
        else:
            if any(n.name == item.name for n in self.nodes):
                raise ManifestError(f"node {item.name} is defined twice", obj.location)
            self.nodes.append(item)

    # -------------------------------------------------------------- lookups
    def service(self, key) -> Service:
        """A service by ``ns/name`` (or ``name`` in namespace default); KeyError if absent."""
        if isinstance(key, Service):
            return key
        ns, _, name = key.rpartition("/")
        ns = ns or "default"
        for s in self.services:
            if s.namespace == ns and s.name == name:
                return s
        raise KeyError(f"no service {ns}/{name}")

    def node(self, name: str) -> NodeObject | None:
        return next((n for n in self.nodes if n.name == name), None)

    def slices_for(self, svc: Service) -> list[EndpointSlice]:
        """The slices kube-proxy would use for ``svc``: its EndpointSlices, or (when it has
        none) the mirrored core/v1 Endpoints."""
        own = [s for s in self.slices if s.namespace == svc.namespace
               and s.service_name == svc.name and LABEL_HEADLESS not in s.labels
               and LABEL_PROXY_NAME not in s.labels]
        if own:
            return own
        mirrored = [s for s in self.endpoints_objects
                    if s.namespace == svc.namespace and s.service_name == svc.name]
        if mirrored or not self.endpoints_from_pods:
            return mirrored
        return self.controller_slices(svc)

    def controller_slices(self, svc: Service) -> list[EndpointSlice]:
        """The EndpointSlice the endpointslice controller would write for ``svc`` from the
        Pods given (pkg/controller/endpointslice: a service with a selector; pods of its
        namespace matching it that have an IP and are not Succeeded/Failed; ``serving`` =
        the pod is Ready, ``terminating`` = it has a deletionTimestamp, ``ready`` = serving
        and not terminating, or publishNotReadyAddresses; each service port's targetPort
        resolved by number, or by the name of a container port of that protocol (podutil
        FindPort), pods without it left out of that port). Used when
        ``endpoints_from_pods`` is set and no EndpointSlice or Endpoints names the service."""
        if not svc.selector:
            return []
        out = []
        by_port: dict = {}
        for port in svc.ports:
            eps = []
            for pod in self.selected_pods(svc):
                if not pod.ips or pod.phase in ("Succeeded", "Failed"):
                    continue
                if isinstance(port.target_port, int):
                    number = port.target_port
                else:
                    number = next((n for name, n, proto in pod.container_ports
                                   if name == port.target_port and proto == port.protocol), None)
                    if number is None:
                        continue
                serving = bool(pod.ready)
                ready = svc.publish_not_ready or (serving and not pod.terminating)
                v4 = [ip for ip in pod.ips if ipaddress.ip_address(ip).version == 4]
                if not v4:
                    continue
                eps.append((number, Endpoint((v4[0],), ready, serving, pod.terminating,
                                             pod.node_name, None, f"Pod {pod.namespace}/{pod.name}")))
            for number, ep in eps:
                by_port.setdefault((port.name, port.protocol, number), []).append(ep)
        for i, ((pname, proto, number), eps) in enumerate(sorted(by_port.items(),
                                                                 key=lambda kv: kv[0])):
            out.append(EndpointSlice(svc.namespace, f"{svc.name}-from-pods-{i}", svc.name, "IPv4",
                                     (SlicePort(pname, number, proto),), tuple(eps),
                                     {LABEL_SERVICE_NAME: svc.name}, False, svc.location))
        return out

    def endpoints_map(self, node: str) -> dict[tuple[str, str, str, str], list[EndpointInfo]]:
        """kube-proxy's EndpointsMap on ``node``: (namespace, service, port name, protocol) ->
        endpoints sorted by ``ip:port`` string (endpointsMapFromEndpointInfo)."""
        out: dict = {}
        for svc in self.services:
            per_port: dict = {}
            for sl in self.slices_for(svc):
                if sl.address_type != "IPv4":
                    continue
                for port in sl.ports:
                    if port.name is None or not port.port:
                        continue
                    key = (svc.namespace, svc.name, port.name, port.protocol)
                    bucket = per_port.setdefault(key, {})
                    for ep in sl.endpoints:
                        if not ep.addresses:
                            continue
                        info = EndpointInfo(str(ipaddress.ip_address(ep.addresses[0])), port.port,
                                            bool(node) and ep.node_name == node, ep.ready,
                                            ep.serving, ep.terminating,
                                            frozenset(ep.zone_hints), frozenset(ep.node_hints))
                        if str(info) not in bucket or not ep.terminating:
                            bucket[str(info)] = info
            for key, bucket in per_port.items():
                if bucket:
                    out[key] = [bucket[k] for k in sorted(bucket)]
        return out

    # -------------------------------------------------------------- explanations
    def selected_pods(self, svc: Service) -> list[Pod]:
        if not svc.selector:
            return []
        return [p for p in self.pods if p.namespace == svc.namespace
                and all(p.labels.get(k) == v for k, v in svc.selector.items())]

    def explain_endpoints(self, service, node: str | None = None) -> list[str]:
        """Why ``service`` has (or lacks) endpoints, in sentences: the EndpointSlices found,
        the endpoints kube-proxy would use (and on ``node``, the local ones), and when there
        are none, whether its selector matches any pod and which pods come close."""
        svc = self.service(service)
        lines: list[str] = []
        skip = svc.skipped_reason()
        if skip:
            return [f"kube-proxy ignores service {svc.key}: {skip}"]
        slices = self.slices_for(svc)
        eps_map = self.endpoints_map(node or "")
        node_obj = self.node(node) if node else None
        zone = node_obj.labels.get(LABEL_ZONE, "") if node_obj else ""
        listed = usable = 0
        for info in svc.ports_for_proxy():
            eps = eps_map.get((svc.namespace, svc.name, info.port_name, info.protocol), [])
            cluster, local, _reach, has_any = categorize_endpoints(eps, info, node or "", zone)
            listed += len(eps)
            usable += has_any
            label = f"{info.name_string} ({info.protocol.lower()} {info.cluster_ip}:{info.port})"
            if not has_any:
                lines.append(f"{label} has no endpoints: traffic to it is rejected")
            else:
                used = cluster if info.uses_cluster_endpoints() else local
                lines.append(f"{label} endpoints: " + ", ".join(str(e) for e in used))
                if node and info.uses_local_endpoints():
                    lines.append(f"  local to {node}: "
                                 + (", ".join(str(e) for e in local) or "none"))
        if usable:
            return lines
        if listed:
            lines.append(f"{listed} endpoint(s) listed, none ready nor serving while "
                         "terminating (kube-proxy uses only those)")
            return lines
        if not slices:
            lines.append(f"no EndpointSlice (or Endpoints) names service {svc.key}")
        else:
            names = ", ".join(s.name for s in slices)
            count = sum(len(s.endpoints) for s in slices)
            if count:
                wanted = sorted({(p.name or "", p.protocol) for p in svc.ports})
                have = sorted({(p.name if p.name is not None else "<no name field>", p.protocol)
                               for s in slices for p in s.ports})
                lines.append(f"its EndpointSlices ({names}) list {count} endpoint(s) but under "
                             f"ports {have}, not the service's {wanted}")
                return lines
            lines.append(f"its EndpointSlices ({names}) list no endpoint")
        if svc.selector is None:
            lines.append("the service has no selector: its endpoints are managed by hand")
            return lines
        sel = ",".join(f"{k}={v}" for k, v in svc.selector.items())
        matched = self.selected_pods(svc)
        if matched:
            lines.append(f"its selector {sel} matches pod(s) "
                         + ", ".join(f"{p.namespace}/{p.name}" for p in matched)
                         + (": the endpoint controller would list them; give their "
                            "EndpointSlice to nfemu, or derive it (--endpoints-from-pods)" if not slices
                            else ": check they are ready and expose the target port"))
            return lines
        in_ns = [p for p in self.pods if p.namespace == svc.namespace]
        lines.append(f"its selector {sel} matches no pod in namespace {svc.namespace}"
                     + ("" if in_ns else " (no pod of that namespace was given)"))
        close = []
        for p in in_ns:
            hits = [f"{k}={p.labels[k]}" for k in svc.selector if p.labels.get(k) == svc.selector[k]]
            same_value = [f"{k}={v}" for k, v in p.labels.items()
                          if v in svc.selector.values() and svc.selector.get(k) != v]
            same_key = [f"{k}={p.labels[k]}" for k in svc.selector
                        if k in p.labels and p.labels[k] != svc.selector[k]]
            if hits or same_value or same_key:
                close.append(f"pod {p.namespace}/{p.name} has labels "
                             + ",".join(f"{k}={v}" for k, v in sorted(p.labels.items())))
        if close:
            lines.append("close: " + "; ".join(close))
        return lines

    def services_at(self, dst: str, dport: int, protocol: str, node_ips=()) -> list[tuple[Service, str]]:
        """The services a packet to ``dst:dport`` addresses, with how: ``cluster IP``,
        ``external IP``, ``loadbalancer IP`` or ``node port`` (any of ``node_ips`` or a
        loopback address)."""
        out = []
        proto = protocol.upper()
        is_node = dst in node_ips or ipaddress.ip_address(dst).is_loopback
        for svc in self.services:
            for info in svc.ports_for_proxy():
                if info.protocol != proto:
                    continue
                if info.port == dport and dst == info.cluster_ip:
                    out.append((svc, "cluster IP"))
                elif info.port == dport and dst in info.external_ips:
                    out.append((svc, "external IP"))
                elif info.port == dport and dst in info.lb_vips:
                    out.append((svc, "loadbalancer IP"))
                elif info.node_port and info.node_port == dport and is_node:
                    out.append((svc, "node port"))
        return out


def load_manifests(*sources, endpoints_from_pods: bool = False) -> Cluster:
    """A :class:`Cluster` from manifest sources: paths (``str`` or ``os.PathLike``) or YAML
    texts, each holding one or more objects (``---`` documents, ``kind: List``). Raises
    :class:`~nfemu.kube.manifests.ManifestError` (FILE:LINE:COL) for bad input.
    ``endpoints_from_pods``: a service that no EndpointSlice or Endpoints names gets the
    slice the endpointslice controller would write from the Pods given
    (:meth:`Cluster.controller_slices`)."""
    cluster = Cluster(endpoints_from_pods=endpoints_from_pods)
    for source in sources:
        if isinstance(source, (list, tuple)):
            for s in source:
                text, name = read_source(s)
                cluster.add_text(text, name)
            continue
        text, name = read_source(source)
        cluster.add_text(text, name)
    return cluster
