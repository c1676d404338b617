"""nfemu.kube.render against the rule shapes kube-proxy's source writes.

Expectations come from kube-proxy (kubernetes/kubernetes pkg/proxy/iptables/proxier.go and
its proxier_test.go), never from nfemu's own output: the whole TestOverallIPTablesRules
expectation (tests/kube/data/overall.expected), chain names of real clusters, and
hand-checked fragments that follow the branches of syncProxyRules.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

import nfemu
from nfemu.kube import (endpoint_chain_name, load_manifests, port_proto_hash, probability,
                        render, service_chain_names)

DATA = Path(__file__).parent / "data"
BUILTIN = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}


def chains(text: str) -> dict[tuple[str, str], list[str]]:
    """(table, chain) -> its "-A" lines in order, for the chains kube-proxy owns."""
    out: dict = defaultdict(list)
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            chain = line.split()[1]
            if chain not in BUILTIN:
                out[(table, chain)].append(line)
    return dict(out)


def rules(text: str) -> list[str]:
    return [l for l in text.splitlines() if l.startswith("-A ")]


def cluster_of(yaml_text: str):
    return load_manifests(yaml_text)


NODE = """
apiVersion: v1
kind: Node
metadata: {name: node-a}
spec: {podCIDR: 10.244.1.0/24}
status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}
"""


def svc(name="web", ns="default", type_="ClusterIP", cip="10.96.0.10", port=80, extra="",
        port_extra="", status=""):
    return f"""
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  type: {type_}
  clusterIP: {cip}
  ports:
  - {{name: http, port: {port}, protocol: TCP, targetPort: 8080{port_extra}}}
{extra}
{status}
"""


def eps(name="web", ns="default", endpoints=(("10.244.1.5", "node-a"),), port=8080, conds=None):
    items = []
    for i, (ip, node) in enumerate(endpoints):
        cond = conds[i] if conds else "{ready: true, serving: true, terminating: false}"
        items.append(f"  - {{addresses: [{ip}], nodeName: {node}, conditions: {cond}}}")
    body = "\n".join(items) if items else "  []"
    return f"""
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abcde
  namespace: {ns}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
{body}
"""


# ---------------------------------------------------------------- kube-proxy's own test
def test_overall_iptables_rules_of_kube_proxy_test():
    """TestOverallIPTablesRules: every chain kube-proxy writes, rule for rule, in order."""
    cluster = load_manifests(DATA / "overall.yaml")
    text = render(cluster, "test-node", cluster_cidr="10.0.0.0/8", nfacct=True,
                  random_fully=False)
    got = chains(text)
    want = chains((DATA / "overall.expected").read_text())
    assert set(got) == set(want)
    for key in want:
        assert got[key] == want[key], key


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("name,proto,chain", [
    # the API server's service and CoreDNS, as every cluster's iptables-save shows them
    ("default/kubernetes:https", "TCP", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
    ("kube-system/kube-dns:dns", "UDP", "KUBE-SVC-TCOU7JCQXEZGVUNU"),
    ("kube-system/kube-dns:dns-tcp", "TCP", "KUBE-SVC-ERIFXISQEP7F7OF4"),
    ("kube-system/kube-dns:metrics", "TCP", "KUBE-SVC-JD5MR3NA4I4DYORP"),
    # kube-proxy's proxier_test.go
    ("ns1/svc1:p80", "TCP", "KUBE-SVC-XPGD46QRK7WJZT7O"),
    ("ns2/svc2:p80", "TCP", "KUBE-SVC-GNZBNJ2PO5MGZ6GT"),
    ("ns3/svc3:p80", "TCP", "KUBE-SVC-X27LE4BHSL4DOUIK"),
])
def test_service_chain_names(name, proto, chain):
    names = service_chain_names(name, proto)
    assert names["cluster"] == chain
    suffix = chain.split("-")[-1]
    assert port_proto_hash(name, proto) == suffix
    assert names["local"] == f"KUBE-SVL-{suffix}"
    assert names["external"] == f"KUBE-EXT-{suffix}"
    assert names["firewall"] == f"KUBE-FW-{suffix}"


@pytest.mark.parametrize("name,endpoint,chain", [
    ("ns1/svc1:p80", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
    ("ns3/svc3:p80", "10.180.0.3:80", "KUBE-SEP-OYPFS5VJICHGATKP"),
    ("ns4/svc4:p80", "10.180.0.4:80", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
    ("ns4/svc4:p80", "10.180.0.5:80", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
    ("ns5/svc5:p80", "10.180.0.3:80", "KUBE-SEP-I77PXRDZVX7PMWMN"),
])
def test_endpoint_chain_names(name, endpoint, chain):
    assert endpoint_chain_name(name, "TCP", endpoint) == chain


def test_unnamed_port_service_port_name():
    """ServicePortName.String() has no ':port' when the port has no name."""
    cluster = cluster_of(NODE + """
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{port: 80}]
""" + eps(port=80).replace("name: http, ", 'name: "", '))
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    want = service_chain_names("default/web", "tcp")["cluster"]
    assert f'--comment "default/web cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j {want}' in text


def test_probability_strings():
    """computeProbability: %0.10f of 1/n."""
    assert probability(2) == "0.5000000000"
    assert probability(3) == "0.3333333333"
    assert probability(6) == "0.1666666667"
    assert probability(7) == "0.1428571429"


# ---------------------------------------------------------------- shapes
def test_clusterip_three_endpoints():
    cluster = cluster_of(NODE + svc() + eps(endpoints=(
        ("10.244.2.7", "node-b"), ("10.244.1.5", "node-a"), ("10.244.10.3", "node-c"))))
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    name = "default/web:http"
    svc_chain = service_chain_names(name, "tcp")["cluster"]
    # endpoints sorted by their "ip:port" string, as kube-proxy's endpoint cache sorts them
    order = ["10.244.1.5:8080", "10.244.10.3:8080", "10.244.2.7:8080"]
    sep = [endpoint_chain_name(name, "tcp", e) for e in order]
    assert chains(text)[("nat", svc_chain)] == [
        f'-A {svc_chain} -m comment --comment "{name} cluster IP" -m tcp -p tcp -d 10.96.0.10 '
        f'--dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ',
        f'-A {svc_chain} -m comment --comment "{name} -> {order[0]}" -m statistic --mode random '
        f'--probability 0.3333333333 -j {sep[0]}',
        f'-A {svc_chain} -m comment --comment "{name} -> {order[1]}" -m statistic --mode random '
        f'--probability 0.5000000000 -j {sep[1]}',
        f'-A {svc_chain} -m comment --comment "{name} -> {order[2]}" -j {sep[2]}',
    ]
    for chain, ep in zip(sep, order):
        ip = ep.split(":")[0]
        assert chains(text)[("nat", chain)] == [
            f"-A {chain} -m comment --comment {name} -s {ip} -j KUBE-MARK-MASQ",
            f"-A {chain} -m comment --comment {name} -m tcp -p tcp -j DNAT --to-destination {ep}",
        ]
    assert (f'-A KUBE-SERVICES -m comment --comment "{name} cluster IP" -m tcp -p tcp '
            f'-d 10.96.0.10 --dport 80 -j {svc_chain}') in rules(text)
    # no external chain for a ClusterIP service
    assert not any("KUBE-EXT-" in l for l in rules(text))


def test_nodeport_cluster_policy():
    cluster = cluster_of(NODE + svc(type_="NodePort", port_extra=", nodePort: 30080") + eps())
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    name = "default/web:http"
    n = service_chain_names(name, "tcp")
    assert chains(text)[("nat", "KUBE-NODEPORTS")] == [
        f"-A KUBE-NODEPORTS -m comment --comment {name} -m tcp -p tcp --dport 30080 -j {n['external']}"]
    assert chains(text)[("nat", n["external"])] == [
        f'-A {n["external"]} -m comment --comment "masquerade traffic for {name} external '
        f'destinations" -j KUBE-MARK-MASQ',
        f'-A {n["external"]} -j {n["cluster"]}']
    # the nodeport tail call is the last rule of KUBE-SERVICES
    assert chains(text)[("nat", "KUBE-SERVICES")][-1] == (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
        'be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')


def test_no_localhost_nodeports():
    cluster = cluster_of(NODE + svc(type_="NodePort", port_extra=", nodePort: 30080") + eps())
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16", localhost_nodeports=False)
    assert chains(text)[("nat", "KUBE-SERVICES")][-1].endswith(
        '-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS')
    assert ("filter", "KUBE-FIREWALL") not in chains(text)


def test_loadbalancer_source_ranges_with_node_ip():
    extra = "  loadBalancerSourceRanges: [192.168.0.0/24, 203.0.113.0/25]"
    status = "status: {loadBalancer: {ingress: [{ip: 1.2.3.4}, {ip: 5.6.7.8, ipMode: Proxy}]}}"
    cluster = cluster_of(NODE + svc(type_="LoadBalancer", port_extra=", nodePort: 30080",
                                    extra=extra, status=status) + eps())
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    name = "default/web:http"
    n = service_chain_names(name, "tcp")
    fw = n["firewall"]
    # ipMode Proxy ingress addresses are not VIPs: no rule for 5.6.7.8
    assert "5.6.7.8" not in text
    assert (f'-A KUBE-SERVICES -m comment --comment "{name} loadbalancer IP" -m tcp -p tcp '
            f'-d 1.2.3.4 --dport 80 -j {fw}') in rules(text)
    # the node IP 192.168.0.2 is in a source range: the LB IP itself is allowed as a source
    assert chains(text)[("nat", fw)] == [
        f'-A {fw} -m comment --comment "{name} loadbalancer IP" -s 192.168.0.0/24 -j {n["external"]}',
        f'-A {fw} -m comment --comment "{name} loadbalancer IP" -s 203.0.113.0/25 -j {n["external"]}',
        f'-A {fw} -m comment --comment "{name} loadbalancer IP" -s 1.2.3.4 -j {n["external"]}',
        f'-A {fw} -m comment --comment "other traffic to {name} will be dropped by '
        f'KUBE-PROXY-FIREWALL"']
    assert chains(text)[("filter", "KUBE-PROXY-FIREWALL")] == [
        f'-A KUBE-PROXY-FIREWALL -m comment --comment "{name} traffic not accepted by {fw}" '
        f'-m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP']


def test_session_affinity_client_ip():
    extra = "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}"
    cluster = cluster_of(NODE + svc(extra=extra) + eps(endpoints=(
        ("10.244.1.5", "node-a"), ("10.244.2.6", "node-b"))))
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    name = "default/web:http"
    c = service_chain_names(name, "tcp")["cluster"]
    s1 = endpoint_chain_name(name, "tcp", "10.244.1.5:8080")
    s2 = endpoint_chain_name(name, "tcp", "10.244.2.6:8080")
    assert chains(text)[("nat", c)][1:] == [
        f'-A {c} -m comment --comment "{name} -> 10.244.1.5:8080" -m recent --name {s1} '
        f'--rcheck --seconds 300 --reap -j {s1}',
        f'-A {c} -m comment --comment "{name} -> 10.244.2.6:8080" -m recent --name {s2} '
        f'--rcheck --seconds 300 --reap -j {s2}',
        f'-A {c} -m comment --comment "{name} -> 10.244.1.5:8080" -m statistic --mode random '
        f'--probability 0.5000000000 -j {s1}',
        f'-A {c} -m comment --comment "{name} -> 10.244.2.6:8080" -j {s2}']
    assert chains(text)[("nat", s1)][1] == (
        f"-A {s1} -m comment --comment {name} -m recent --name {s1} --set -m tcp -p tcp "
        f"-j DNAT --to-destination 10.244.1.5:8080")


def test_session_affinity_default_timeout():
    cluster = cluster_of(NODE + svc(extra="  sessionAffinity: ClientIP") + eps())
    assert "--rcheck --seconds 10800 --reap" in render(cluster, "node-a")


def test_external_traffic_policy_local():
    extra = "  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000"
    status = "status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}"
    cluster = cluster_of(NODE + svc(type_="LoadBalancer", port_extra=", nodePort: 30080",
                                    extra=extra, status=status)
                         + eps(endpoints=(("10.244.1.5", "node-a"), ("10.244.2.6", "node-b"))))
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    name = "default/web:http"
    n = service_chain_names(name, "tcp")
    ext, svl, svc_chain = n["external"], n["local"], n["cluster"]
    assert chains(text)[("nat", ext)] == [
        f'-A {ext} -m comment --comment "pod traffic for {name} external destinations" '
        f'-s 10.244.0.0/16 -j {svc_chain}',
        f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {name} external '
        f'destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
        f'-A {ext} -m comment --comment "route LOCAL traffic for {name} external destinations" '
        f'-m addrtype --src-type LOCAL -j {svc_chain}',
        f'-A {ext} -j {svl}']
    local_sep = endpoint_chain_name(name, "tcp", "10.244.1.5:8080")
    assert chains(text)[("nat", svl)] == [
        f'-A {svl} -m comment --comment "{name} -> 10.244.1.5:8080" -j {local_sep}']
    assert chains(text)[("filter", "KUBE-NODEPORTS")] == [
        f'-A KUBE-NODEPORTS -m comment --comment "{name} health check node port" -m tcp -p tcp '
        f'--dport 32000 -j ACCEPT']
    # on a node without a local endpoint: external traffic is dropped in the filter table
    text_b = render(cluster, "node-a", node_ips=["192.168.0.3"], cluster_cidr="10.244.0.0/16")
    assert svl in text_b  # node-a still has its endpoint
    cluster2 = cluster_of(NODE.replace("node-a", "node-z") + svc(
        type_="LoadBalancer", port_extra=", nodePort: 30080", extra=extra, status=status)
        + eps(endpoints=(("10.244.2.6", "node-b"),)))
    text_z = render(cluster2, "node-z", cluster_cidr="10.244.0.0/16")
    assert svl not in text_z
    assert chains(text_z)[("filter", "KUBE-EXTERNAL-SERVICES")] == [
        f'-A KUBE-EXTERNAL-SERVICES -m comment --comment "{name} has no local endpoints" -m tcp '
        f'-p tcp -d 1.2.3.4 --dport 80 -j DROP',
        f'-A KUBE-EXTERNAL-SERVICES -m comment --comment "{name} has no local endpoints" -m '
        f'addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP']
    # the short-circuit rules stay, with no fall-through to KUBE-SVL
    assert chains(text_z)[("nat", ext)][-1] == (
        f'-A {ext} -m comment --comment "route LOCAL traffic for {name} external destinations" '
        f'-m addrtype --src-type LOCAL -j {svc_chain}')


def test_internal_traffic_policy_local():
    extra = "  internalTrafficPolicy: Local"
    cluster = cluster_of(NODE + svc(extra=extra) + eps(endpoints=(("10.244.2.6", "node-b"),)))
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    name = "default/web:http"
    assert chains(text)[("filter", "KUBE-SERVICES")] == [
        f'-A KUBE-SERVICES -m comment --comment "{name} has no local endpoints" -m tcp -p tcp '
        f'-d 10.96.0.10 --dport 80 -j DROP']
    assert "KUBE-SVC-" not in text and "KUBE-SEP-" not in text
    text_b = render(cluster_of(NODE + svc(extra=extra) + eps(endpoints=(
        ("10.244.1.5", "node-a"), ("10.244.2.6", "node-b")))), "node-a", cluster_cidr="10.244.0.0/16")
    svl = service_chain_names(name, "tcp")["local"]
    assert (f'-A KUBE-SERVICES -m comment --comment "{name} cluster IP" -m tcp -p tcp '
            f'-d 10.96.0.10 --dport 80 -j {svl}') in rules(text_b)
    assert "10.244.2.6" not in text_b


def test_no_endpoints_rejects_everywhere():
    extra = "  externalIPs: [192.168.99.11]"
    status = "status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}"
    cluster = cluster_of(NODE + svc(type_="LoadBalancer", port_extra=", nodePort: 30080",
                                    extra=extra, status=status) + eps(endpoints=()))
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16")
    c = '"default/web:http has no endpoints"'
    assert chains(text)[("filter", "KUBE-SERVICES")] == [
        f"-A KUBE-SERVICES -m comment --comment {c} -m tcp -p tcp -d 10.96.0.10 --dport 80 -j REJECT"]
    assert chains(text)[("filter", "KUBE-EXTERNAL-SERVICES")] == [
        f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {c} -m tcp -p tcp -d 192.168.99.11 --dport 80 -j REJECT",
        f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {c} -m tcp -p tcp -d 1.2.3.4 --dport 80 -j REJECT",
        f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {c} -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT"]
    nat = [l for l in rules(text) if "default/web" in l]
    assert nat == [l for l in rules(text) if "REJECT" in l]


def test_terminating_endpoints_only_when_none_ready():
    conds = ["{ready: true, serving: true, terminating: false}",
             "{ready: false, serving: true, terminating: true}"]
    both = eps(endpoints=(("10.244.1.5", "node-a"), ("10.244.1.6", "node-a")), conds=conds)
    text = render(cluster_of(NODE + svc() + both), "node-a")
    assert "10.244.1.5:8080" in text and "10.244.1.6" not in text
    conds = ["{ready: false, serving: true, terminating: true}",
             "{ready: false, serving: false, terminating: true}"]
    only = eps(endpoints=(("10.244.1.5", "node-a"), ("10.244.1.6", "node-a")), conds=conds)
    text = render(cluster_of(NODE + svc() + only), "node-a")
    assert "10.244.1.5:8080" in text and "10.244.1.6" not in text
    conds = ["{ready: false, serving: false, terminating: false}"]
    none = eps(endpoints=(("10.244.1.5", "node-a"),), conds=conds)
    text = render(cluster_of(NODE + svc() + none), "node-a")
    assert "has no endpoints" in text and "KUBE-SEP-" not in text


def test_masquerade_all():
    cluster = cluster_of(NODE + svc() + eps())
    text = render(cluster, "node-a", cluster_cidr="10.244.0.0/16", masquerade_all=True)
    c = service_chain_names("default/web:http", "tcp")["cluster"]
    assert chains(text)[("nat", c)][0] == (
        f'-A {c} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 '
        f'--dport 80 -j KUBE-MARK-MASQ')


@pytest.mark.parametrize("mode,kw,not_local,local", [
    ("ClusterCIDR", {"cluster_cidr": "10.244.0.0/16"}, "! -s 10.244.0.0/16", "-s 10.244.0.0/16"),
    ("NodeCIDR", {}, "! -s 10.244.1.0/24", "-s 10.244.1.0/24"),
    ("BridgeInterface", {"bridge_interface": "cbr0"}, "! -i cbr0", "-i cbr0"),
    ("InterfaceNamePrefix", {"interface_name_prefix": "veth"}, "! -i veth+", "-i veth+"),
])
def test_local_detector_modes(mode, kw, not_local, local):
    extra = "  externalTrafficPolicy: Local"
    cluster = cluster_of(NODE + svc(type_="NodePort", port_extra=", nodePort: 30080", extra=extra)
                         + eps())
    text = render(cluster, "node-a", detect_local=mode, **kw)
    n = service_chain_names("default/web:http", "tcp")
    assert chains(text)[("nat", n["cluster"])][0].endswith(
        f"--dport 80 {not_local} -j KUBE-MARK-MASQ")
    assert chains(text)[("nat", n["external"])][0] == (
        f'-A {n["external"]} -m comment --comment "pod traffic for default/web:http external '
        f'destinations" {local} -j {n["cluster"]}')


def test_cluster_cidr_mode_without_cidr_detects_nothing():
    cluster = cluster_of(NODE + svc() + eps())
    text = render(cluster, "node-a")
    assert "KUBE-MARK-MASQ" not in "\n".join(
        l for l in rules(text) if l.startswith("-A KUBE-SVC-"))


def test_headless_and_external_name_skipped():
    text = render(cluster_of(NODE + svc(cip="None") + eps()), "node-a")
    assert "default/web" not in text
    ext_name = """
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: example.com}
"""
    assert "default/ext" not in render(cluster_of(NODE + ext_name), "node-a")


def test_endpoints_v1_used_when_no_slice():
    endpoints = """
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: default}
subsets:
- addresses: [{ip: 10.244.1.5, nodeName: node-a}]
  notReadyAddresses: [{ip: 10.244.1.9, nodeName: node-a}]
  ports: [{name: http, port: 8080, protocol: TCP}]
"""
    text = render(cluster_of(NODE + svc() + endpoints), "node-a")
    assert "--to-destination 10.244.1.5:8080" in text and "10.244.1.9" not in text
    # a slice for the service wins over the Endpoints object
    text = render(cluster_of(NODE + svc() + endpoints + eps(endpoints=(("10.244.1.7", "node-a"),))),
                  "node-a")
    assert "10.244.1.7:8080" in text and "10.244.1.5" not in text


def test_every_render_loads():
    """The renders above are accepted by nfemu's loader (nfemu check's rules)."""
    cluster = load_manifests(DATA / "overall.yaml")
    for kw in ({}, {"cluster_cidr": "10.0.0.0/8", "masquerade_all": True},
               {"detect_local": "InterfaceNamePrefix", "interface_name_prefix": "cali"}):
        nfemu.loads(render(cluster, "test-node", **kw))


def test_unknown_node_is_an_error():
    with pytest.raises(ValueError, match="no Node object named 'nope'"):
        render(load_manifests(DATA / "overall.yaml"), "nope")


def test_large_cluster_mode_drops_endpoint_comments():
    """More than 1000 endpoints in all: appendServiceCommentLocked writes no comment on the
    KUBE-SVC endpoint rules and KUBE-SEP rules (other rules keep theirs)."""
    endpoints = tuple((f"10.244.{1 + i // 250}.{1 + i % 250}", "node-a") for i in range(1001))
    text = render(cluster_of(NODE + svc() + eps(endpoints=endpoints)), "node-a",
                  cluster_cidr="10.244.0.0/16")
    svc_chain = service_chain_names("default/web:http", "tcp")["cluster"]
    lines = chains(text)[("nat", svc_chain)]
    assert lines[0].startswith(f'-A {svc_chain} -m comment --comment "default/web:http cluster IP"')
    assert all("--comment" not in l for l in lines[1:])
    assert lines[1].startswith(f"-A {svc_chain} -m statistic --mode random --probability 0.0009990010 -j KUBE-SEP-")
    seps = [l for l in rules(text) if l.startswith("-A KUBE-SEP-")]
    assert len(seps) == 2002 and all("--comment" not in l for l in seps)
    smaller = endpoints[:1000]
    text = render(cluster_of(NODE + svc() + eps(endpoints=smaller)), "node-a")
    assert all("--comment" in l for l in rules(text) if l.startswith("-A KUBE-SEP-"))


def test_docs_python_example_runs():
    """The Python example of docs/kube.md runs as written, in a fresh interpreter, from the
    repository root."""
    import re
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[2]
    [code] = re.findall(r"```python\n(.*?)```", (root / "docs" / "kube.md").read_text(), re.S)
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "10.0.0.11:40000 -> 10.244.2.5:80" in done.stdout
    assert "endpoints: 10.244.2.5:80" in done.stdout
