"""``nfemu verify --kube`` (nfemu/verify.py, nfemu/verifycli.py): kube-proxy's properties on
whole node dumps.

The dumps are those the kernel saved (corpus/kube-nodes/*.nft.save, corpus/cases/kube/
*.nft.save) on the node corpus/kube-nodes/make.py builds (its ``ip -j`` dumps are the host).
Where the expectations come from:

* which endpoints each service has and that each should get 1/n: kube-proxy's packet-flow
  tests (pkg/proxy/iptables/proxier_test.go), whose services make.py mirrors, restated here;
* the exact share each endpoint really gets: the dump's ``--probability`` text the way the
  kernel uses it (iptables stores u32 = lround(p * 2^31); xt_statistic takes the rule when
  get_random_u32() & 0x7FFFFFFF < u32), computed below from the text alone;
* rejected / dropped: kube-proxy's "has no endpoints" REJECT and KUBE-PROXY-FIREWALL DROP
  rules (TestNoEndpointsReject, TestLoadBalancer's blocked client 203.0.113.130).

Each mutation below breaks one property the way a bug or an old release would, and the
report must say which.
"""
from __future__ import annotations

import json
import re
import sys
from fractions import Fraction
from pathlib import Path

import pytest

import nfemu
from nfemu.cli import main
from nfemu.host import Host
from nfemu.validate import ALL_OBJECTS
from nfemu.verify import verify_kube

ROOT = Path(__file__).resolve().parents[1]
NODES = ROOT / "corpus" / "kube-nodes"
CASES = ROOT / "corpus" / "cases" / "kube"
ADDRS, ROUTES = NODES / "node.addrs.json", NODES / "node.routes.json"
HOST = Host.from_files(str(ADDRS), str(ROUTES), route_localnet=True)
HOST_ARGS = ["--addrs", str(ADDRS), "--routes", str(ROUTES), "--route-localnet"]


def load(text: str, name: str = "dump.save"):
    return nfemu.loads(text, name, objects=ALL_OBJECTS)


def lround_share(p: str) -> Fraction:
    """The kernel's chance for ``--probability p``: lround(p * 2^31) / 2^31."""
    return Fraction(int(Fraction(p) * 2**31 + Fraction(1, 2)), 2**31)


def shares_from_text(text: str, chain: str) -> dict[str, Fraction]:
    """Each endpoint's share behind a KUBE-SVC chain, from the saved text alone."""
    dnat = {m[1]: m[2] for m in re.finditer(
        r"^-A (KUBE-SEP-\w+) .*-j DNAT --to-destination (\S+)$", text, re.MULTILINE)}
    out: dict[str, Fraction] = {}
    left = Fraction(1)
    for m in re.finditer(rf"^-A {chain} (.*)-j (KUBE-SEP-\w+)$", text, re.MULTILINE):
        p = re.search(r"--probability ([\d.]+)", m[1])
        share = left * lround_share(p[1]) if p else left
        out[dnat[m[2]]] = out.get(dnat[m[2]], 0) + share
        left -= share
    return out


def checks(report, prop=None, service=None):
    return [c for c in report.checks if (prop is None or c.property == prop)
            and (service is None or c.service == service)]


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- real dumps hold
@pytest.mark.parametrize("name", sorted(p.name for p in NODES.glob("*.nft.save")))
def test_kube_node_dumps_hold(name):
    text = (NODES / name).read_text()
    report = verify_kube(load(text, name), HOST)
    assert report.ok, [(c.service, c.entry, c.problems) for c in report.checks
                       if c.status != "ok"] + [f.message for f in report.findings]
    assert report.skipped == []            # the host is known: nothing is left out
    # every check of reaching endpoints got the shares the dump's probabilities give
    for c in checks(report, "endpoints"):
        assert sum(c.shares.values()) == 1
        assert c.deviation <= 1e-9
    # kube-proxy's tests: the services and their endpoints
    services = {s.name: s for s in report.services}
    if name.startswith("clusterip-general"):
        assert set(services["ns2/svc2:http"].endpoints) == {"10.244.1.1:80", "10.244.2.1:80"}
        assert set(services["ns2/svc2:https"].endpoints) == {"10.244.1.1:8443",
                                                             "10.244.2.1:8443"}
        assert set(services["ns1/svc1:http"].endpoints) == {"10.244.1.1:80"}
        c, = checks(report, "endpoints", "ns2/svc2:http")
        assert c.shares == shares_from_text(text, "KUBE-SVC-TDPTYDRQPCXE6CO7")
        assert {s.protocol for s in report.services} == {"tcp", "udp", "sctp"}
    if name.startswith("etp-local"):
        # externalTrafficPolicy Local: outside clients reach the local endpoint only, the
        # cluster IP reaches both (TestExternalTrafficPolicyLocal)
        svc = services["ns1/svc1:p80"]
        for c in svc.checks:
            if c.entry.startswith(("external IP", "loadbalancer IP", "node port")):
                assert c.shares == {"10.244.1.1:80": 1}
            if c.entry.startswith("cluster IP"):
                assert c.shares == {"10.244.1.1:80": Fraction(1, 2),
                                    "10.244.2.1:80": Fraction(1, 2)}
    if name.startswith("loadbalancer-sourceranges"):
        srcs = {(c.probe.src, c.shares.get("DROP")) for c in checks(report, "source-range")}
        # TestLoadBalancer: 203.0.113.2 is allowed, 203.0.113.130 is not
        inside = {c.probe.src for c in checks(report, "source-range")
                  if c.entry.endswith("(source inside)")}
        outside = {c.probe.src for c in checks(report, "source-range")
                   if c.entry.endswith("(source outside)")}
        assert any(0xCB007100 <= a < 0xCB007180 for a in inside)      # 203.0.113.0/25
        assert any(0xCB007180 <= a < 0xCB007200 for a in outside)     # 203.0.113.128/25
        assert all(share == 1 for src, share in srcs if src in outside)


def test_cases_without_endpoints_are_rejected():
    text = (CASES / "no-endpoints.nft.save").read_text()
    report = verify_kube(load(text), HOST)
    assert report.ok
    rejected = checks(report, "rejected")
    # TestNoEndpointsReject: the cluster IPs, the external IP, the LB IP and the node port
    assert {c.entry for c in rejected} == {
        "cluster IP 10.96.0.52:80", "cluster IP 10.96.0.53:53", "external IP 192.168.99.40:80",
        "external IP 203.0.113.90:80", "node port 30999"}
    assert all(c.shares == {"REJECT": 1} for c in rejected)


def test_three_endpoints_real_shares():
    text = (CASES / "clusterip-3ep.nft.save").read_text()
    report = verify_kube(load(text), HOST)
    assert report.ok
    c, = checks(report, "endpoints")
    assert c.shares == shares_from_text(text, "KUBE-SVC-XPGD46QRK7WJZT7O")
    assert c.shares["10.244.1.1:8080"] == Fraction(715827883, 2**31)     # not exactly 1/3
    assert 0 < c.deviation < 1e-9


# ---------------------------------------------------------------------- mutations fail
def mutate(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_dropped_jump_to_an_endpoint_fails():
    text = mutate(NODES / "clusterip-general.nft.save",
                  '-A KUBE-SVC-TDPTYDRQPCXE6CO7 -m comment --comment "ns2/svc2:http -> '
                  '10.244.1.1:80" -m statistic --mode random --probability 0.50000000000 '
                  '-j KUBE-SEP-7IRKULJCFYFTCFFA\n', "")
    report = verify_kube(load(text), HOST)
    assert not report.ok
    c, = checks(report, "endpoints", "ns2/svc2:http")
    assert c.status == "fail"
    assert any("never reaches endpoint 10.244.1.1:80" in p for p in c.problems)
    assert c.shares == {"10.244.2.1:80": 1}
    assert any(f.kind == "unreferenced-sep" and "KUBE-SEP-7IRKULJCFYFTCFFA" in f.message
               for f in report.findings)
    others = [c for c in checks(report, "endpoints") if c.service != "ns2/svc2:http"]
    assert others and all(c.status == "ok" for c in others)


def test_dropped_dnat_rule_fails():
    text = mutate(NODES / "clusterip-general.nft.save",
                  '-A KUBE-SEP-2SHXPZSDFNWAPVAI -p tcp -m comment --comment "ns2/svc2:http" '
                  '-m tcp -j DNAT --to-destination 10.244.2.1:80\n', "")
    report = verify_kube(load(text), HOST)
    assert not report.ok
    c, = checks(report, "endpoints", "ns2/svc2:http")
    # the endpoint is still expected (the jump's comment names it); half the packets fall
    # through KUBE-SEP-2SHX... and leave undisturbed
    assert c.expected == {"10.244.1.1:80": Fraction(1, 2), "10.244.2.1:80": Fraction(1, 2)}
    assert c.shares == {"10.244.1.1:80": Fraction(1, 2), "not DNATed": Fraction(1, 2)}
    assert any("never reaches endpoint 10.244.2.1:80" in p for p in c.problems)
    assert any(f.kind == "sep-without-dnat" for f in report.findings)


def test_old_five_decimal_probabilities_are_flagged():
    # kube-proxy before 1.x printed "%0.5f": 0.33333, which iptables-save shows as
    # 0.33332999982 (lround(0.33333 * 2^31) = 715820724)
    text = mutate(CASES / "clusterip-3ep.nft.save", "--probability 0.33333333349",
                  "--probability 0.33332999982")
    report = verify_kube(load(text), HOST)
    assert not report.ok
    c, = checks(report, "endpoints")
    assert c.shares["10.244.1.1:8080"] == Fraction(715820724, 2**31) == lround_share("0.33333")
    assert c.shares == shares_from_text(text, "KUBE-SVC-XPGD46QRK7WJZT7O")
    assert c.deviation > 1e-6
    assert any("deviate" in p for p in c.problems)
    # the shares still reach every endpoint: a looser tolerance accepts them
    assert verify_kube(load(text), HOST, tolerance=1e-4).ok


def test_stray_dnat_rule_fails():
    text = mutate(NODES / "etp-local.nft.save",
                  '-A PREROUTING -m comment --comment "kubernetes service portals" -j '
                  'KUBE-SERVICES\n',
                  '-A PREROUTING -m comment --comment "kubernetes service portals" -j '
                  'KUBE-SERVICES\n-A PREROUTING -d 192.168.0.2/32 -p tcp -m tcp --dport 8080 '
                  '-j DNAT --to-destination 10.244.1.50:80\n')
    report = verify_kube(load(text, "stray.save"), HOST)
    assert not report.ok
    bad = [c for c in checks(report, "not-dnated") if c.status == "fail"]
    assert len(bad) == 1 and bad[0].probe.dport == 8080
    assert "10.244.1.50:80" in bad[0].problems[0]
    f, = [f for f in report.findings if f.kind == "stray-nat-rule"]
    assert f.location.startswith("stray.save:") and "DNAT" in f.rule
    # the services themselves still hold
    assert all(c.status == "ok" for c in report.checks if c.property != "not-dnated")


def test_stray_jump_into_a_service_chain_fails():
    text = mutate(NODES / "clusterip-general.nft.save",
                  '-A KUBE-SERVICES -d 10.96.0.41/32 -p tcp -m comment --comment '
                  '"ns1/svc1:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-CW3AQCZPGQ5G56X3\n',
                  '-A KUBE-SERVICES -d 10.96.0.41/32 -p tcp -m comment --comment '
                  '"ns1/svc1:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-CW3AQCZPGQ5G56X3\n'
                  '-A KUBE-SERVICES -d 10.96.0.99/32 -p tcp -m tcp --dport 80 '
                  '-j KUBE-SVC-CW3AQCZPGQ5G56X3\n')
    report = verify_kube(load(text), HOST)
    assert not report.ok
    bad = [c for c in checks(report, "not-dnated") if c.status == "fail"]
    # from outside (PREROUTING) and from the node (OUTPUT): both pass KUBE-SERVICES
    assert {(c.probe.dst, c.probe.local) for c in bad} == {(0x0A600063, False),
                                                           (0x0A600063, True)}  # 10.96.0.99
    assert all("10.244.1.1:80" in c.problems[0] for c in bad)


def test_removed_reject_of_a_service_without_endpoints_fails():
    text = mutate(CASES / "no-endpoints.nft.save",
                  '-A KUBE-SERVICES -d 10.96.0.52/32 -p tcp -m comment --comment "ns9/svc9:p80 '
                  'has no endpoints" -m tcp --dport 80 -j REJECT --reject-with '
                  'icmp-port-unreachable\n', "")
    report = verify_kube(load(text), HOST)
    assert not report.ok
    assert any(f.kind == "missing-cluster-ip" and f.service == "ns9/svc9:p80"
               for f in report.findings)


def test_reject_turned_into_accept_fails():
    text = mutate(CASES / "no-endpoints.nft.save",
                  '"ns9/svc9:p80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with '
                  'icmp-port-unreachable\n-A KUBE-SERVICES -d 10.96.0.53',
                  '"ns9/svc9:p80 has no endpoints" -m tcp --dport 80 -j RETURN\n'
                  '-A KUBE-SERVICES -d 10.96.0.53')
    report = verify_kube(load(text), HOST)
    assert not report.ok
    c, = [c for c in checks(report, "rejected") if c.status == "fail"]
    assert c.entry == "cluster IP 10.96.0.52:80" and "REJECT" not in c.shares


SR = NODES / "loadbalancer-sourceranges.nft.save"
# make.py: the Service's loadBalancerSourceRanges (TestLoadBalancer)
INTENDED = {"ns1/svc1:p80": ["192.168.0.0/24", "203.0.113.0/25"]}
WIDE = ('-A KUBE-FW-XPGD46QRK7WJZT7O -s 203.0.113.0/25 -m comment --comment "ns1/svc1:p80 '
        'loadbalancer IP" -j KUBE-EXT-XPGD46QRK7WJZT7O\n')


def test_source_ranges_against_the_service_spec():
    assert verify_kube(load(SR.read_text()), HOST, source_ranges=INTENDED).ok
    text = mutate(SR, WIDE, WIDE.replace("/25", "/24"))
    report = verify_kube(load(text), HOST, source_ranges=INTENDED)
    assert not report.ok
    bad = [c for c in checks(report, "source-range") if c.status == "fail"]
    assert any("203.0.113.0/24" in p for c in bad for p in c.problems)
    # TestLoadBalancer's blocked client 203.0.113.130 now reaches the endpoint
    reached = {c.probe.src for c in bad if c.probe and "10.244.2.1:80" in c.shares}
    assert any(0xCB007180 <= a < 0xCB007200 for a in reached)
    # without the spec the dump's own ranges are the intent, and they hold
    assert verify_kube(load(text), HOST).ok


def test_missing_firewall_drop_fails():
    text = mutate(SR, '-A KUBE-PROXY-FIREWALL -d 1.2.3.4/32 -p tcp -m comment --comment '
                      '"ns1/svc1:p80 traffic not accepted by KUBE-FW-XPGD46QRK7WJZT7O" -m tcp '
                      '--dport 80 -j DROP\n', "")
    report = verify_kube(load(text), HOST)
    assert not report.ok
    bad = [c for c in checks(report, "source-range") if c.status == "fail"]
    assert bad and all(c.entry == "loadbalancer IP 1.2.3.4:80 (source outside)" for c in bad)
    assert all("not DNATed" in c.shares for c in bad)


# ---------------------------------------------------------------------- without a host
def test_no_host_skips_node_ports_and_says_why():
    report = verify_kube(load((NODES / "nodeport-localhost.nft.save").read_text()))
    assert report.ok
    assert [s.check for s in report.skipped] == ["node port 30001"]
    assert "node's IPs are unknown" in report.skipped[0].reason
    assert any("no host given" in n for n in report.notes)


def test_generated_dump_holds():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from gen_kube_dump import generate
    finally:
        sys.path.pop(0)
    report = verify_kube(load(generate(30, 5)))
    assert report.ok
    assert len(report.services) == 30
    for c in checks(report, "endpoints"):
        assert len(c.shares) == 5 and c.deviation < 1e-9


# ---------------------------------------------------------------------- the command
def test_cli_ok_and_json_schema(capsys):
    code, out, _ = run_cli(["verify", "--kube", str(NODES / "etp-local.nft.save"), "--json",
                            *HOST_ARGS], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["tolerance"] == 1e-6 and doc["host"] == "given"
    assert set(doc["summary"]) == {"services", "with_endpoints", "without_endpoints",
                                   "checks", "failed", "skipped", "seconds"}
    svc, = doc["services"]
    assert svc["service"] == "ns1/svc1:p80" and svc["protocol"] == "tcp"
    assert svc["cluster_ip"] == "10.96.0.41" and svc["port"] == 80
    assert svc["endpoints"] == ["10.244.1.1:80", "10.244.2.1:80"]
    assert svc["local_endpoints"] == ["10.244.1.1:80"]
    kinds = {e["kind"] for e in svc["entries"]}
    assert kinds == {"cluster IP", "external IP", "loadbalancer IP", "node port"}
    check = next(c for c in svc["checks"] if c["entry"].startswith("cluster IP"))
    assert set(check) == {"service", "protocol", "property", "entry", "status", "probe",
                          "expected", "shares", "deviation", "problems"}
    assert check["shares"]["10.244.1.1:80"] == {"exact": "1/2", "value": 0.5}
    assert set(check["probe"]) == {"src", "dst", "protocol", "dport", "iface", "local", "why"}
    for key in ("other_checks", "skipped", "findings", "notes"):
        assert isinstance(doc[key], list)


def test_cli_failure_exit_code_and_table(capsys, tmp_path):
    bad = tmp_path / "old.save"
    bad.write_text(mutate(CASES / "clusterip-3ep.nft.save", "--probability 0.33333333349",
                          "--probability 0.33333"))
    code, out, _ = run_cli(["verify", "--kube", str(bad), *HOST_ARGS], capsys)
    assert code == 1
    assert "FAIL" in out and "ns1/svc1:p80" in out
    code, out, _ = run_cli(["verify", "--kube", str(bad), "--tolerance", "1e-4", *HOST_ARGS],
                           capsys)
    assert code == 0


def test_cli_rejected_rules_exit_1(capsys, tmp_path):
    bad = tmp_path / "bad.rules"
    bad.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j NOSUCHCHAIN\nCOMMIT\n")
    code, _, err = run_cli(["verify", "--kube", str(bad)], capsys)
    assert code == 1
    assert re.search(rf"{re.escape(str(bad))}:3:\d+: error", err), err


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(NODES / "etp-local.nft.save")])      # --kube is required
    assert exc.value.code == 2
    capsys.readouterr()
    code, _, err = run_cli(["verify", "--kube", str(NODES / "etp-local.nft.save"),
                            "--tolerance", "-1"], capsys)
    assert code == 2 and "tolerance" in err
    code, _, err = run_cli(["verify", "--kube", str(NODES / "etp-local.nft.save"),
                            "--source-ranges", "nonsense"], capsys)
    assert code == 2


def test_large_cluster_mode_without_comments():
    """Over 1000 endpoints kube-proxy leaves the comments off KUBE-SEP rules and the
    KUBE-SVC -> KUBE-SEP jumps (proxier.go appendServiceCommentLocked, largeClusterMode): a
    dropped jump is still found, by the KUBE-SEP chain's name (kube-proxy's hash of
    "ns/svc:port" + protocol + "IP:PORT")."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from gen_kube_dump import generate
    finally:
        sys.path.pop(0)
    lines = []
    for line in generate(4, 3).splitlines(keepends=True):
        if line.startswith("-A KUBE-SEP-") or (line.startswith("-A KUBE-SVC-")
                                               and "KUBE-SEP-" in line):
            line = re.sub(r' -m comment --comment "[^"]*"', "", line)
        lines.append(line)
    text = "".join(lines)
    assert verify_kube(load(text)).ok
    jump = next(line for line in lines if line.startswith("-A KUBE-SVC-")
                and "--probability" in line)
    svc_chain, sep_chain = jump.split()[1], jump.split()[-1]
    report = verify_kube(load(text.replace(jump, "")))
    assert not report.ok
    bad = [c for c in report.checks if c.status == "fail"]
    assert len(bad) == 1 and bad[0].property == "endpoints"
    assert any(f.kind == "unreferenced-sep" and sep_chain in f.message
               for f in report.findings)
    # the endpoint the report misses is the one the dropped jump's KUBE-SEP chain DNATs to
    target = re.search(rf"^-A {sep_chain} .*--to-destination (\S+)$", text, re.MULTILINE)[1]
    assert any(f"never reaches endpoint {target}" in p for p in bad[0].problems)
    assert svc_chain.startswith("KUBE-SVC-")


def test_no_host_uses_nodeport_addresses_the_dump_names():
    # kube-proxy with --nodeport-addresses writes "-d NODEIP -j KUBE-NODEPORTS" per node IP
    # instead of "-m addrtype --dst-type LOCAL": the dump then says the node's IPs
    text = mutate(NODES / "nodeport-localhost.nft.save",
                  "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
                  "-d 192.168.0.2/32 -j KUBE-NODEPORTS")
    report = verify_kube(load(text))
    assert report.ok and report.skipped == []
    c, = [c for c in report.checks if c.entry == "node port 30001"]
    assert c.probe.dst == 0xC0A80002
    assert c.shares == {"10.244.1.1:80": Fraction(1, 2), "10.244.2.1:80": Fraction(1, 2)}
    assert any("192.168.0.2/32" in n for n in report.notes)


def test_cli_strict_fails_on_skipped_checks(capsys):
    dump = str(NODES / "nodeport-localhost.nft.save")
    code, out, _ = run_cli(["verify", "--kube", dump], capsys)       # no host: node port
    assert code == 0 and "skipped: ns1/svc1:p80 node port 30001" in out
    code, _, err = run_cli(["verify", "--kube", dump, "--strict"], capsys)
    assert code == 1 and "skipped" in err
    code, _, _ = run_cli(["verify", "--kube", dump, "--strict", *HOST_ARGS], capsys)
    assert code == 0
