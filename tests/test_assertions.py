"""nfemu/assertions.py: each assertion passes and fails on small hand-written rulesets.

The expectations come from iptables semantics, not from nfemu's output: a DROP rule
discards, REJECT answers (icmp-port-unreachable unless --reject-with says otherwise),
DNAT rewrites the destination, MASQUERADE takes the outgoing interface's primary address,
and ``-m statistic --mode random --probability P`` matches with the probability of the
kernel's u32 threshold (iptables stores ``lround(P * 2^31)``, xt_statistic compares
``get_random_u32() & 0x7FFFFFFF`` against it)."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from nfemu.assertions import (
    assert_accepted,
    assert_delivered,
    assert_dropped,
    assert_masqueraded,
    assert_path,
    assert_reaches,
    assert_rejected,
    chains_visited,
    make_node,
    outcome_destination,
    parse_packet,
)
from nfemu.errors import RulesetErrors
from nfemu.packet import TCP, Packet
from nfemu.util import ipv4_to_int

FIREWALL = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset
-A INPUT -p tcp --dport 23 -j DROP
-A INPUT -p udp --dport 53 -j REJECT
COMMIT
"""

# a service in kube-proxy's shape: three endpoints, a third each as kube-proxy writes it
SERVICE = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
:KUBE-SEP-ONE - [0:0]
:KUBE-SEP-TWO - [0:0]
:KUBE-SEP-THREE - [0:0]
:KUBE-NOTHING - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A POSTROUTING -o eth1 -j MASQUERADE
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp --dport 80 -j KUBE-NOTHING
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp --dport 80 -j KUBE-SVC-ABC
-A KUBE-SVC-ABC -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-ONE
-A KUBE-SVC-ABC -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-TWO
-A KUBE-SVC-ABC -j KUBE-SEP-THREE
-A KUBE-SEP-ONE -p tcp -j DNAT --to-destination 10.1.0.1:8080
-A KUBE-SEP-TWO -p tcp -j DNAT --to-destination 10.1.0.2:8080
-A KUBE-SEP-THREE -p tcp -j DNAT --to-destination 10.1.0.3:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d 10.1.0.3/32 -p tcp --dport 8080 -j DROP
COMMIT
"""

HOST = ["eth0=192.168.0.2/24", "eth1=10.1.0.254/16"]
TO_SERVICE = "-p tcp -s 192.168.0.50 -d 10.96.0.10 --dport 80 -i eth0"

# the kernel's shares: the first rule matches with lround(0.33333333349 * 2^31) / 2^31, the
# second with exactly 1/2 of what is left, the last takes the rest (and FORWARD drops it)
FIRST = Fraction(round(0.33333333349 * 2**31), 2**31)
KERNEL_SHARES = {"10.1.0.1:8080": FIRST, "10.1.0.2:8080": (1 - FIRST) / 2,
                 "DROP": (1 - FIRST) / 2}


@pytest.fixture
def firewall():
    return make_node(FIREWALL, iface=["eth0=192.168.0.2/24"])


@pytest.fixture
def service():
    return make_node(SERVICE, iface=HOST)


def to_host(dport, proto="tcp"):
    return f"-p {proto} -s 192.168.0.9 -d 192.168.0.2 --dport {dport} -i eth0"


def failure(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------- dropped / rejected / accepted

def test_dropped_passes_on_a_drop_rule(firewall):
    assert_dropped(firewall, to_host(23))


def test_dropped_fails_on_an_accepted_packet_and_shows_the_trace(firewall):
    msg = failure(assert_dropped, firewall, to_host(80))
    assert msg.startswith("assert_dropped")
    assert "tcp 192.168.0.9:40000 -> 192.168.0.2:80" in msg
    assert "delivered locally" in msg
    assert ":INPUT policy ACCEPT" in msg        # the policy that accepted it, in the trace
    assert "verdict ACCEPT" in msg


def test_dropped_does_not_take_a_reject(firewall):
    msg = failure(assert_dropped, firewall, to_host(22))
    assert "-A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset" in msg
    assert "REJECT with=tcp-reset" in msg


def test_rejected_with_its_type_and_alias(firewall):
    assert_rejected(firewall, to_host(22))
    assert_rejected(firewall, to_host(22), "tcp-reset")
    assert_rejected(firewall, to_host(22), "tcp-rst")
    # REJECT without --reject-with answers icmp-port-unreachable
    assert_rejected(firewall, to_host(53, "udp"), "icmp-port-unreachable")


def test_rejected_fails_on_another_type_or_a_drop(firewall):
    msg = failure(assert_rejected, firewall, to_host(22), with_="icmp-port-unreachable")
    assert "rejected with tcp-reset, not icmp-port-unreachable" in msg
    msg = failure(assert_rejected, firewall, to_host(23))
    assert "not rejected" in msg and "-j DROP" in msg
    with pytest.raises(ValueError):
        assert_rejected(firewall, to_host(22), "icmp-no-such-thing")


def test_accepted_and_delivered(firewall, service):
    assert_accepted(firewall, to_host(80))
    assert_delivered(firewall, to_host(80))
    assert_accepted(firewall, to_host(80), "local")
    msg = failure(assert_accepted, firewall, to_host(80), "forward")
    assert "accepted but delivered locally" in msg
    msg = failure(assert_delivered, firewall, to_host(23))
    assert "not accepted: dropped in filter INPUT" in msg
    # forwarded through the service's DNAT, out of eth1 (the route to 10.1/16); the third
    # endpoint is dropped in FORWARD
    assert_accepted(service, TO_SERVICE, "eth1", outcome="10.1.0.1:8080")
    msg = failure(assert_accepted, service, TO_SERVICE)
    assert "1 of 3 outcome(s) fail" in msg
    assert "-A FORWARD -d 10.1.0.3/32 -p tcp -m tcp --dport 8080 -j DROP" in msg


def test_forward_policy_drop(firewall):
    # the firewall does not forward: FORWARD's policy is DROP
    node = make_node(FIREWALL, iface=["eth0=192.168.0.2/24"], default_gateway="192.168.0.1")
    to_internet = "-p tcp -s 192.168.0.9 -d 8.8.8.8 -i eth0"
    assert_dropped(node, to_internet)
    assert_path(node, to_internet, ["filter:FORWARD"])
    # without a default route the kernel drops it before FORWARD (no route)
    assert_dropped(firewall, to_internet)
    msg = failure(assert_path, firewall, to_internet, ["filter:FORWARD"])
    assert "dropped by routing" in msg


def test_locally_generated_packet(firewall):
    node = make_node(FIREWALL, iface=["eth0=192.168.0.2/24"], default_gateway="192.168.0.1")
    assert_accepted(node, "-p udp -d 8.8.8.8 --dport 53 --local", "out")
    assert_accepted(node, "-p udp -d 8.8.8.8 --dport 53 --local", "eth0")
    msg = failure(assert_delivered, node, "-p udp -d 8.8.8.8 --dport 53 --local")
    assert "generated locally" in msg and "sent out eth0" in msg


# ---------------------------------------------------------------- reaches

def test_reaches_with_the_kernels_shares(service):
    assert_reaches(service, TO_SERVICE, KERNEL_SHARES)
    msg = failure(assert_reaches, service, TO_SERVICE,
                  {"10.1.0.1:8080": FIRST, "10.1.0.2:8080": (1 - FIRST) / 2,
                   "10.1.0.3:8080": (1 - FIRST) / 2})
    # the third endpoint's packets are dropped in FORWARD after the DNAT
    assert "10.1.0.3:8080" in msg and "0 (0)" in msg and "never reached" in msg
    assert "DROP" in msg and "not expected" in msg
    assert "dropped in filter FORWARD" in msg


def test_reaches_a_third_is_not_exact(service):
    thirds = {"10.1.0.1:8080": Fraction(1, 3), "10.1.0.2:8080": Fraction(1, 3),
              "DROP": Fraction(1, 3)}
    msg = failure(assert_reaches, service, TO_SERVICE, thirds)
    # the real shares, exactly and as decimals, and the hint about the u32 thresholds
    assert f"{FIRST} ({float(FIRST):.10g})" in msg
    assert "1/3 (0.3333333333)" in msg
    assert "tolerance=1e-6" in msg
    assert "KUBE-SVC-ABC rule 1: -A KUBE-SVC-ABC -m statistic --mode random" in msg
    assert "DNAT to=10.1.0.1:8080" in msg
    assert_reaches(service, TO_SERVICE, thirds, tolerance=1e-6)
    with pytest.raises(AssertionError):
        assert_reaches(service, TO_SERVICE, thirds, tolerance=1e-12)


def test_reaches_floats_and_text_shares(service):
    assert_reaches(service, TO_SERVICE, {"10.1.0.1:8080": float(FIRST),
                                         "10.1.0.2:8080": str(KERNEL_SHARES["10.1.0.2:8080"]),
                                         "drop": KERNEL_SHARES["DROP"]})


def test_reaches_a_set_of_destinations(service):
    assert_reaches(service, TO_SERVICE, {"10.1.0.1:8080", "10.1.0.2:8080", "DROP"})
    assert_reaches(service, TO_SERVICE, ["10.1.0.1", "10.1.0.2", "DROP"])
    msg = failure(assert_reaches, service, TO_SERVICE, {"10.1.0.1:8080", "10.1.0.2:8080"})
    assert "DROP" in msg and "not expected" in msg
    msg = failure(assert_reaches, service, TO_SERVICE,
                  {"10.1.0.1:8080", "10.1.0.2:8080", "DROP", "10.1.0.4:8080"})
    assert "10.1.0.4:8080" in msg and "never reached" in msg


def test_reaches_one_destination(firewall):
    assert_reaches(firewall, to_host(80), "192.168.0.2:80")
    assert_reaches(firewall, to_host(23), "DROP")
    assert_reaches(firewall, to_host(22), {"REJECT": 1})
    msg = failure(assert_reaches, firewall, to_host(23), "192.168.0.2:23")
    assert "192.168.0.2:23" in msg and "never reached" in msg
    assert "DROP" in msg and "not expected" in msg and "-j DROP" in msg


def test_destinations_are_normalised():
    from nfemu.assertions import _matches_destination, _normal_destination
    assert _normal_destination("[2001:db8:0::1]:80") == "[2001:db8::1]:80"
    assert _normal_destination("2001:DB8::1") == "2001:db8::1"
    assert _normal_destination(" 10.1.0.1:080 ") == "10.1.0.1:80"
    assert _normal_destination("drop") == "DROP"
    assert _matches_destination("10.1.0.1:80", "10.1.0.1")
    assert _matches_destination("[2001:db8::1]:80", "2001:db8::1")
    assert not _matches_destination("10.1.0.1:80", "10.1.0.10")
    assert not _matches_destination("DROP", "10.1.0.1")


def test_reaches_bad_destination_is_an_error(firewall):
    with pytest.raises(ValueError):
        assert_reaches(firewall, to_host(80), {"nowhere:80": 1})


# ---------------------------------------------------------------- masqueraded

def test_masqueraded_to_the_outgoing_interfaces_address(service):
    assert_masqueraded(service, TO_SERVICE, outcome="10.1.0.1:8080")
    assert_masqueraded(service, TO_SERVICE, to="10.1.0.254", outcome="10.1.0.2:8080")
    # the port is kept when it is free
    assert_masqueraded(service, TO_SERVICE, to="10.1.0.254:40000", outcome="10.1.0.1:8080")
    msg = failure(assert_masqueraded, service, TO_SERVICE, to="10.1.0.9",
                  outcome="10.1.0.1:8080")
    assert "source NATed to 10.1.0.254, not 10.1.0.9" in msg
    assert "-A POSTROUTING -o eth1 -j MASQUERADE" in msg


def test_not_masqueraded(service):
    # leaving by eth0: the MASQUERADE rule is for -o eth1
    msg = failure(assert_masqueraded, service,
                  "-p tcp -s 10.1.0.7 -d 192.168.0.50 --dport 80 -i eth1")
    assert "no SNAT/MASQUERADE in POSTROUTING: the source stays 10.1.0.7" in msg
    assert "forwarded out eth0" in msg
    # the dropped endpoint is not sent at all
    msg = failure(assert_masqueraded, service, TO_SERVICE)
    assert "not sent: dropped in filter FORWARD" in msg


# ---------------------------------------------------------------- path

def test_path_subsequence_with_wildcards(service):
    assert_path(service, TO_SERVICE, ["KUBE-SERVICES", "KUBE-SVC-*", "KUBE-SEP-..."])
    assert_path(service, TO_SERVICE, ["nat:PREROUTING", "nat:KUBE-SVC-ABC"])
    # KUBE-NOTHING is entered (and left: it is empty) before the service chain
    assert_path(service, TO_SERVICE, ["KUBE-NOTHING", "KUBE-SVC-ABC"])


def test_path_order_matters(service):
    msg = failure(assert_path, service, TO_SERVICE, ["KUBE-SEP-*", "KUBE-SVC-*"])
    assert "no KUBE-SVC-* where expected" in msg
    assert "nat:KUBE-SERVICES -> nat:KUBE-NOTHING -> nat:KUBE-SERVICES -> nat:KUBE-SVC-ABC" \
        in msg


def test_path_must_hold_for_every_outcome(service):
    msg = failure(assert_path, service, TO_SERVICE, ["KUBE-SEP-ONE"])
    # the two other endpoints fail, each with its probability
    assert "2 of 3 outcome(s) fail" in msg
    share = KERNEL_SHARES["10.1.0.2:8080"]
    assert f"probability {share} ({float(share):.10g})" in msg
    assert "KUBE-SEP-TWO rule 1: -A KUBE-SEP-TWO -p tcp -j DNAT --to-destination " \
           "10.1.0.2:8080" in msg
    assert_path(service, TO_SERVICE, ["KUBE-SEP-ONE"], any_outcome=True)
    assert_path(service, TO_SERVICE, ["KUBE-SEP-ONE"], outcome="10.1.0.1:8080")
    assert_path(service, TO_SERVICE, ["KUBE-SEP-TWO"],
                outcome=lambda o: outcome_destination(o.journey) == "10.1.0.2:8080")
    msg = failure(assert_path, service, TO_SERVICE, ["KUBE-SEP-NONE"], any_outcome=True)
    assert "no outcome is through KUBE-SEP-NONE" in msg
    msg = failure(assert_path, service, TO_SERVICE, ["KUBE-SEP-ONE"], outcome="10.1.0.9:80")
    assert "no outcome is '10.1.0.9:80'" in msg


def test_path_exact(service):
    assert_path(service, TO_SERVICE, ["PREROUTING", "KUBE-SERVICES", "KUBE-NOTHING",
                                      "KUBE-SERVICES", "KUBE-SVC-ABC", "KUBE-SEP-ONE",
                                      "FORWARD", "nat:POSTROUTING"],
                exact=True, outcome="10.1.0.1:8080")
    msg = failure(assert_path, service, TO_SERVICE, ["KUBE-SERVICES", "KUBE-SVC-ABC"],
                  exact=True, outcome="10.1.0.1:8080")
    assert "visited nat:PREROUTING -> nat:KUBE-SERVICES" in msg
    with pytest.raises(TypeError):
        assert_path(service, TO_SERVICE, "KUBE-SERVICES")


def test_chains_visited_counts_a_chain_entered_again(service):
    probe = parse_packet(TO_SERVICE)
    outcome = service.outcomes(probe.packet, iface="eth0")[0]
    visited = chains_visited(service, outcome.journey)
    assert visited[:4] == [("nat", "PREROUTING"), ("nat", "KUBE-SERVICES"),
                           ("nat", "KUBE-NOTHING"), ("nat", "KUBE-SERVICES")]


# ---------------------------------------------------------------- packets and nodes

def test_packet_forms(firewall):
    pkt = Packet(src=ipv4_to_int("192.168.0.9"), dst=ipv4_to_int("192.168.0.2"), proto=TCP,
                 sport=1234, dport=23, tcp_flags=0x02, iif="eth0")
    assert_dropped(firewall, pkt)
    assert_accepted(firewall, pkt.replace(dport=80))
    assert_dropped(firewall, pkt.replace(iif=""), iface="eth0")
    assert_dropped(firewall, {"p": "tcp", "s": "192.168.0.9", "d": "192.168.0.2",
                              "dport": 23, "i": "eth0"})
    assert_dropped(firewall, {"proto": "tcp", "dst": "192.168.0.2", "dport": 23,
                              "iface": "eth0"})
    # -i from the assertion's keyword
    assert_dropped(firewall, "-p tcp -d 192.168.0.2 --dport 23", iface="eth0")


def test_scapy_packet(firewall):
    scapy = pytest.importorskip("scapy.all")
    pkt = scapy.IP(src="192.168.0.9", dst="192.168.0.2") / scapy.TCP(sport=1234, dport=23)
    assert_dropped(firewall, pkt, iface="eth0")
    msg = failure(assert_delivered, firewall, pkt, iface="eth0")
    assert "tcp 192.168.0.9:1234 -> 192.168.0.2:23" in msg


def test_bad_packets_are_errors_not_failures(firewall):
    with pytest.raises(ValueError, match="-i"):
        assert_dropped(firewall, "-p tcp -d 192.168.0.2 --dport 23")
    with pytest.raises(ValueError, match="--dport"):
        assert_dropped(firewall, "-p tcp -d 192.168.0.2 --dport 70000 -i eth0")
    with pytest.raises(ValueError):
        assert_dropped(firewall, "-p tcp -d 192.168.0.2 --no-such-option -i eth0")
    with pytest.raises(ValueError, match="where it comes from"):
        assert_dropped(firewall, Packet(src=1, dst=2, proto=TCP, dport=23))
    with pytest.raises(TypeError):
        assert_dropped(firewall, 42)


def test_ctstate_from_the_text():
    node = make_node("""*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
COMMIT
""", iface=["eth0=192.168.0.2/24"])
    assert_dropped(node, to_host(80))
    assert_delivered(node, to_host(80) + " --ctstate ESTABLISHED")
    assert_delivered(node, to_host(80), ctstate="ESTABLISHED")
    msg = failure(assert_dropped, node, to_host(80) + " --ctstate ESTABLISHED")
    assert "ctstate ESTABLISHED" in msg


def test_make_node_from_a_file(tmp_path):
    path = tmp_path / "rules.v4"
    path.write_text(FIREWALL)
    for rules in (path, str(path)):
        node = make_node(rules, iface=["eth0=192.168.0.2/24"])
        assert_dropped(node, to_host(23))
    with pytest.raises(FileNotFoundError):
        make_node(str(tmp_path / "missing.v4"))


def test_make_node_from_ip_json(tmp_path):
    addrs = tmp_path / "addrs.json"
    routes = tmp_path / "routes.json"
    addrs.write_text('[{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], '
                     '"operstate": "UNKNOWN", "addr_info": [{"family": "inet", '
                     '"local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]}, '
                     '{"ifindex": 2, "ifname": "eth0", "flags": ["UP"], "operstate": "UP", '
                     '"addr_info": [{"family": "inet", "local": "192.168.0.2", '
                     '"prefixlen": 24, "scope": "global"}]}]')
    routes.write_text('[{"dst": "192.168.0.0/24", "dev": "eth0", "protocol": "kernel", '
                      '"scope": "link", "prefsrc": "192.168.0.2"}]')
    node = make_node(FIREWALL, addrs=addrs, routes=routes)
    assert_dropped(node, to_host(23))
    assert_delivered(node, to_host(80))


def test_make_node_errors():
    with pytest.raises(RulesetErrors):
        make_node("*filter\n-A NOWHERE -j ACCEPT\nCOMMIT\n")
    with pytest.raises(TypeError):
        make_node()
    with pytest.raises(TypeError):
        make_node(FIREWALL, node="node-1")
    with pytest.raises(TypeError):
        make_node(FIREWALL, kube=["svc.yaml"], node="node-1")
    with pytest.raises(TypeError):
        make_node(FIREWALL, host=make_node(FIREWALL).host, iface=["eth0=10.0.0.1/24"])


def test_make_node_seed_is_kept():
    node = make_node(FIREWALL, seed=7)
    assert node.seed == 7


def test_many_outcomes_are_cut_short():
    # 8 endpoints, each with its own DNAT: a failure shows 5 traces and counts the rest
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
             ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]"]
    for i in range(8):
        left = 8 - i
        prob = "" if left == 1 else f"-m statistic --mode random --probability {1 / left:.11f} "
        lines.append(f"-A PREROUTING -d 10.96.0.1/32 -p tcp {prob}"
                     f"-j DNAT --to-destination 10.1.0.{i + 1}:80")
    node = make_node("\n".join(lines + ["COMMIT", ""]), iface=HOST)
    msg = failure(assert_dropped, node, "-p tcp -d 10.96.0.1 -i eth0")
    assert msg.count("-- outcome ") == 5
    assert "and 3 more outcome(s) not shown" in msg


def test_plugin_reexports_and_imports_lightly():
    import nfemu.assertions as assertions
    import nfemu.pytest_plugin as plugin
    assert plugin.assert_reaches is assertions.assert_reaches
    assert plugin.assert_path is assertions.assert_path
    with pytest.raises(AttributeError):
        plugin.no_such_name  # noqa: B018
    # loading the plugin (as pytest does at startup) imports no more of nfemu than the
    # package itself
    code = ("import sys, nfemu; before = set(sys.modules); import nfemu.pytest_plugin; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('nfemu')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "['nfemu.pytest_plugin']"


KUBE_OBJECTS = """apiVersion: v1
kind: Node
metadata: {name: node-1}
spec: {podCIDR: 10.244.0.0/24}
status:
  addresses: [{type: InternalIP, address: 192.168.0.11}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.244.1.5]
  conditions: {ready: true}
  nodeName: node-2
- addresses: [10.244.2.7]
  conditions: {ready: true}
  nodeName: node-3
"""


def _kube():
    kube = pytest.importorskip("nfemu.kube")
    if not hasattr(kube, "render_node") or not hasattr(kube, "load_manifests"):
        pytest.skip("nfemu.kube.render_node is not there yet (issue 6 item 4)")
    return kube


def test_kube_node_from_manifests(tmp_path):
    """A ClusterIP service with two ready endpoints on other nodes: kube-proxy sends half
    of the new connections to each (its first endpoint rule has --probability 0.5, which
    the kernel's threshold 2^30 of 2^31 makes exactly a half), through KUBE-SERVICES ->
    KUBE-SVC-<hash> -> KUBE-SEP-<hash> and a DNAT to the endpoint."""
    _kube()
    pod_to_service = "-p tcp -s 10.244.0.9 -d 10.96.0.20 --dport 80 -i cni0"
    path = tmp_path / "objects.yaml"
    path.write_text(KUBE_OBJECTS)
    for kube in (KUBE_OBJECTS, path, [path]):
        node = make_node(kube=kube, node="node-1", cluster_cidr="10.244.0.0/16")
        assert_reaches(node, pod_to_service, {"10.244.1.5:8080": Fraction(1, 2),
                                              "10.244.2.7:8080": Fraction(1, 2)})
    assert_path(node, pod_to_service, ["KUBE-SERVICES", "KUBE-SVC-*", "KUBE-SEP-*"])
    msg = failure(assert_path, node, pod_to_service, ["KUBE-NODEPORTS"])
    assert "KUBE-SVC-" in msg and "DNAT to=10.244." in msg


def test_kube_node_from_a_cluster():
    kube = _kube()
    cluster = kube.load_manifests(KUBE_OBJECTS)
    node = make_node(kube=cluster, node="node-1", cluster_cidr="10.244.0.0/16", seed=5,
                     engine="reference")
    assert node.seed == 5 and node.engine == "reference"
    assert_reaches(node, "-p tcp -s 10.244.0.9 -d 10.96.0.20 --dport 80 -i cni0",
                   {"10.244.1.5", "10.244.2.7"})
    # a host of one's own: without a route to the endpoints the DNATed packet is dropped
    node = make_node(kube=cluster, node="node-1", cluster_cidr="10.244.0.0/16",
                     iface=["cni0=10.244.0.1/24"])
    assert_dropped(node, "-p tcp -s 10.244.0.9 -d 10.96.0.20 --dport 80 -i cni0")
