"""The compiled engine (nfemu/compile.py, nfemu/walk.py, resumable exploration in
nfemu/pipeline.py) against the reference walk (nfemu/interp.py, exploration by replaying
decisions from the start): on generated rulesets and packets both give the same outcomes
with the same exact probabilities, the same sampled traces and the same counters."""
from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nfemu
from nfemu.compile import Program, build_index
from nfemu.host import Host
from nfemu.node import Node
from nfemu.packet import Packet

HOST = Host.from_options(["eth0=192.168.0.2/24", "eth1=10.0.0.1/24"],
                         default_gateway="192.168.0.1")
SERVICE_IPS = ["10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.0.4"]
ENDPOINTS = ["10.0.0.5", "10.0.0.6", "192.168.0.9"]
SOURCES = ["192.168.0.50", "10.0.0.5", "172.16.0.1"]
PORTS = [53, 80, 443, 8080]
USER = ["U0", "U1", "U2"]


def ip(text: str) -> int:
    a, b, c, d = map(int, text.split("."))
    return a << 24 | b << 16 | c << 8 | d


neg = st.sampled_from(["", "! "])


@st.composite
def condition(draw, random_ok: bool = False) -> str:
    """Header tests and matches; a statistic match only where ``random_ok`` (a chain visited
    at most once per packet: one in a chain many rules jump to would make 2^visits runs)."""
    parts = []
    if draw(st.booleans()):
        parts.append(f"{draw(neg)}-s {draw(st.sampled_from(SOURCES))}/"
                     f"{draw(st.sampled_from([8, 16, 32]))}")
    if draw(st.booleans()):
        parts.append(f"{draw(neg)}-d {draw(st.sampled_from(SERVICE_IPS + ['192.168.0.2']))}")
    proto = draw(st.sampled_from(["", "tcp", "udp"]))
    if proto:
        parts.append(f"-p {proto}")
        if draw(st.booleans()):
            parts.append(f"-m {proto} {draw(neg)}--dport {draw(st.sampled_from(PORTS))}")
    if draw(st.booleans()):
        parts.append(f"-m mark {draw(neg)}--mark {draw(st.sampled_from(['0x1', '0x2/0x2']))}")
    if random_ok and draw(st.integers(0, 5)) == 0:   # k random rules make up to 2^k runs
        p = draw(st.sampled_from(["0.5", "0.25", "0.33333333349", "0.1"]))
        parts.append(f"-m statistic --mode random --probability {p}")
    if draw(st.integers(0, 5)) == 0:
        parts.append(f"-m comment --comment c{draw(st.integers(0, 9))}")
    return " ".join(parts)


@st.composite
def service_rule(draw, chain: str, targets: list[str]) -> str:
    """A rule keyed like kube-proxy's KUBE-SERVICES (indexable), or now and then not."""
    if draw(st.integers(0, 4)) == 0:
        return f"-A {chain} {draw(condition(random_ok=True))} -j {draw(st.sampled_from(targets))}"
    proto = draw(st.sampled_from(["tcp", "udp"]))
    chance = ""
    if draw(st.integers(0, 5)) == 0:
        p = draw(st.sampled_from(["0.5", "0.2"]))
        chance = f"-m statistic --mode random --probability {p} "
    return (f"-A {chain} {chance}-d {draw(st.sampled_from(SERVICE_IPS))}/32 -p {proto} "
            f"-m comment --comment svc -m {proto} --dport {draw(st.sampled_from(PORTS))} "
            f"-j {draw(st.sampled_from(targets))}")


@st.composite
def rulesets(draw) -> str:
    # nat: PREROUTING -> SERVICES (indexed when long enough) -> U0..U2 (DNAT, MARK);
    # POSTROUTING: SNAT/MASQUERADE by mark
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]", ":SERVICES - [0:0]"] + [f":{u} - [0:0]" for u in USER]
    nat.append("-A PREROUTING -j SERVICES")
    nat.append("-A OUTPUT -j SERVICES")
    for _ in range(draw(st.integers(0, 24))):
        nat.append(draw(service_rule("SERVICES", USER + ["RETURN", "ACCEPT"])))
    for k, u in enumerate(USER):
        later = USER[k + 1:] + ["RETURN", "ACCEPT"]
        for _ in range(draw(st.integers(0, 4))):
            target = draw(st.sampled_from(later + ["DNAT", "MARK"]))
            if target == "DNAT":
                ep = draw(st.sampled_from(ENDPOINTS))
                port = draw(st.sampled_from(["", ":8080"]))
                cond = draw(condition())
                if port and "-p " not in cond:
                    cond = "-p tcp " + cond
                nat.append(f"-A {u} {cond} -j DNAT --to-destination {ep}{port}")
            elif target == "MARK":
                nat.append(f"-A {u} {draw(condition())} -j MARK --set-xmark 0x2/0x2")
            else:
                jump = draw(st.sampled_from(["-j", "-g"])) if target in USER else "-j"
                nat.append(f"-A {u} {draw(condition())} {jump} {target}")
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(["MASQUERADE", "SNAT --to-source 192.168.0.2", "RETURN"]))
        nat.append(f"-A POSTROUTING {draw(condition(random_ok=True))} -j {target}")
    nat.append("COMMIT")
    # filter: FORWARD/INPUT/OUTPUT with a user chain
    filt = ["*filter", f":INPUT {draw(st.sampled_from(['ACCEPT', 'DROP']))} [0:0]",
            f":FORWARD {draw(st.sampled_from(['ACCEPT', 'DROP']))} [0:0]",
            ":OUTPUT ACCEPT [0:0]", ":F1 - [0:0]"]
    for chain in ("INPUT", "FORWARD", "OUTPUT", "F1"):
        for _ in range(draw(st.integers(0, 4))):
            choices = ["ACCEPT", "DROP", "RETURN", "MARK"] + (["F1"] if chain != "F1" else [])
            target = draw(st.sampled_from(choices))
            if target == "MARK":
                target = "MARK --set-xmark 0x1/0xff"
            filt.append(f"-A {chain} {draw(condition())} -j {target}")
    filt.append("COMMIT")
    return "\n".join(nat + filt) + "\n"


@st.composite
def packets(draw) -> tuple[Packet, str | None, bool]:
    proto = draw(st.sampled_from([6, 17, 1]))
    local = draw(st.integers(0, 4)) == 0
    pkt = Packet(src=0 if local else ip(draw(st.sampled_from(SOURCES))),
                 dst=ip(draw(st.sampled_from(SERVICE_IPS + ["192.168.0.2", "10.0.0.5"]))),
                 proto=proto, sport=draw(st.sampled_from([1000, 40000])) if proto != 1 else 0,
                 dport=draw(st.sampled_from(PORTS)) if proto != 1 else 0,
                 tcp_flags=0x02 if proto == 6 else 0, icmp_type=8 if proto == 1 else 0,
                 mark=draw(st.sampled_from([0, 1, 2])))
    iface = None if local else draw(st.sampled_from(["eth0", "eth1"]))
    return pkt, iface, local


def _outcomes(node, pkt, iface, local) -> dict:
    return {o.journey.key(): o.probability for o in node.outcomes(pkt, iface=iface, local=local)}


@settings(max_examples=300)
@given(rulesets(), st.lists(packets(), min_size=1, max_size=4))
def test_compiled_engine_agrees_with_the_reference_walk(text, pkts):
    assume(text.count("statistic") <= 8)
    ruleset = nfemu.loads(text)
    compiled = Node(ruleset, HOST, seed=5)
    reference = Node(ruleset, HOST, seed=5, engine="reference")
    for pkt, iface, local in pkts:
        exact = _outcomes(compiled, pkt, iface, local)
        assert exact == _outcomes(reference, pkt, iface, local)
        assert sum(exact.values()) == 1
        a = compiled.trace(pkt, iface=iface, local=local)
        b = reference.trace(pkt, iface=iface, local=local)
        assert a.key() in exact and b.key() in exact
        if "statistic" not in text:
            assert a.key() == b.key() and a.events == b.events
    if "statistic" not in text:
        # (with random rules the seeded samples differ: the index skips rules, and their
        # statistic matches, that cannot match the packet, so fewer numbers are drawn)
        assert compiled.counters == reference.counters

def test_a_long_service_chain_is_indexed_and_keeps_first_match_order():
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":S - [0:0]", ":A - [0:0]", ":B - [0:0]",
             "-A PREROUTING -j S"]
    for n in range(20):
        lines.append(f"-A S -d 10.96.0.{n}/32 -p tcp -m tcp --dport 80 -j A")
        if n == 10:
            # not keyed: must be visited for every key, in its place
            lines.append("-A S -p tcp -m tcp --dport 80 -j B")
    lines.append("-A S -d 10.96.0.3/32 -p tcp -m tcp --dport 80 -j B")   # shadowed by rule 4
    lines += ["-A A -j MARK --set-xmark 0x1/0xffffffff", "-A A -j ACCEPT",
              "-A B -j MARK --set-xmark 0x2/0xffffffff", "-A B -j ACCEPT", "COMMIT"]
    ruleset = nfemu.loads("\n".join(lines) + "\n")
    chain = Program.compile(ruleset).tables["nat"].chains["S"]
    assert chain.index is not None and chain.index.shape == ("dst", "proto", "dport")
    assert chain.index.default == [11]
    assert chain.index.by_key[(ip("10.96.0.3"), 6, 80)] == [3, 11, 21]
    node = Node(ruleset, HOST)
    for n, mark, rule in ((3, 1, 4), (15, 2, 12), (10, 1, 11)):
        pkt = Packet(src=ip("192.168.0.50"), dst=ip(f"10.96.0.{n}"), proto=6, sport=1,
                     dport=80)
        journey = node.trace(pkt, iface="eth0")
        hits = [s.rule for s in journey.steps if s.chain == "S"]
        assert journey.packet.mark == mark and hits == [rule]


def test_a_chain_with_many_unkeyed_rules_is_not_indexed():
    rules = [nfemu.loads("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -d 10.0.0.1/32 -p tcp "
                         "-m tcp --dport 80 -j ACCEPT\nCOMMIT\n").table("filter")
             .chain("INPUT").rules[0]] * 10
    unkeyed = nfemu.loads("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n"
                          ).table("filter").chain("INPUT").rules[0]
    assert build_index(rules) is not None
    assert build_index(rules + [unkeyed] * 65) is None
    assert build_index(rules[:7]) is None


def test_exact_enumeration_resumes_at_each_decision():
    """A 200-endpoint kube-style cascade: 200 outcomes, shares from the u32 thresholds."""
    n = 200
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":SVC - [0:0]", "-A PREROUTING -j SVC"]
    for k in range(n - 1):
        lines.append(f"-A SVC -m statistic --mode random --probability {1 / (n - k):.11f} "
                     f"-j DNAT --to-destination 10.1.{k // 250}.{k % 250 + 1}")
    lines += ["-A SVC -j DNAT --to-destination 10.2.0.1", "COMMIT"]
    ruleset = nfemu.loads("\n".join(lines) + "\n")
    pkt = Packet(src=ip("192.168.0.50"), dst=ip("10.96.0.1"), proto=6, sport=1, dport=80)
    outcomes = Node(ruleset, HOST).outcomes(pkt, iface="eth0")
    assert len(outcomes) == n and sum(o.probability for o in outcomes) == 1
    # the share of endpoint k: its threshold times the misses of every rule before it
    # (libxt_statistic stores lround(p * 2^31); the kernel matches when a random 31-bit
    # number is below it)
    remaining = Fraction(1)
    expected = {}
    for k in range(n - 1):
        p = float(f"{1 / (n - k):.11f}")
        chance = Fraction(math.floor(p * 2**31 + 0.5), 2**31)
        expected[ip(f"10.1.{k // 250}.{k % 250 + 1}")] = remaining * chance
        remaining *= 1 - chance
    expected[ip("10.2.0.1")] = remaining
    assert {o.journey.packet.dst: o.probability for o in outcomes} == expected
