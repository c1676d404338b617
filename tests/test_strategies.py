"""nfemu.strategies (issue 6 item 1): what the strategies promise, as properties.

Rulesets load without an error and in nfemu's canonical form (that form being the kernel's
is tests/kernel/test_strategies_vs_kernel.py's job), respect their restrictions and shrink
to a few short rules; pinned packet fields are pinned; flows are well-formed connections
(checked against a sequence-number bookkeeping of our own, and against nfemu's conntrack);
the compiled engine agrees with the reference walk on everything drawn.
"""
from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, Phase, assume, find, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

import nfemu
import nfemu.strategies as nst
from nfemu.ir import BUILTIN_CHAINS, Goto, Jump, Ruleset, Verdict
from nfemu.node import Node
from nfemu.packet import ICMP, SCTP, TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, UDP, Packet
from nfemu.parse import load_report
from nfemu.validate import find_loop

ROUTER = nfemu.Host.from_options(["eth0=192.168.0.2/24", "eth1=10.0.0.1/24"],
                                 default_gateway="192.168.0.1")
# NFEMU_STRATEGY_EXAMPLES scales the engine comparisons (default 150 examples each)
ENGINE_EXAMPLES = int(os.environ.get("NFEMU_STRATEGY_EXAMPLES", "150"))
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=ENGINE_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def ip(text: str) -> int:
    a, b, c, d = map(int, text.split("."))
    return a << 24 | b << 16 | c << 8 | d


def rule_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A ")]


# ---- rulesets --------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nst.rulesets(max_user_chains=3, max_rules=5))
def test_rulesets_pass_check_and_are_canonical(text):
    report = load_report(text, "drawn.rules")
    assert not report.errors, "\n".join(e.format() for e in report.errors) + "\n" + text
    saved = report.ruleset.save(header=False)
    # written as nfemu (and, per the kernel test, iptables-save) prints it
    assert saved == text
    # and the printed form reads back to the same ruleset and the same text
    again = nfemu.loads(saved)
    assert again == report.ruleset and again.save(header=False) == saved
    for table in report.ruleset.tables:
        assert find_loop(table) is None


@FAST
@given(nst.rulesets(tables=["nat", "raw"], max_user_chains=2, max_rules=3, max_matches=1,
                    extensions=["tcp", "udp", "mark", "DNAT", "SNAT", "MASQUERADE", "CT"]))
def test_restrictions_hold(text):
    ruleset = nfemu.loads(text)
    allowed = {"tcp", "udp", "mark", "DNAT", "SNAT", "MASQUERADE", "CT"}
    assert {t.name for t in ruleset.tables} <= {"nat", "raw"}
    for table in ruleset.tables:
        users = [c for c in table.chains if not c.builtin]
        assert len(users) <= 2
        assert {c.name for c in table.chains} == set(BUILTIN_CHAINS[table.name]) | {
            c.name for c in users}
        for chain in table.chains:
            assert len(chain.rules) <= 3
            for rule in chain.rules:
                assert len(rule.matches) <= 1
                assert {m.NAME for m in rule.matches} <= allowed
                t = rule.target
                if t is not None and type(t) not in (Jump, Goto, Verdict):
                    assert t.NAME in allowed, rule.save()
                if type(t) in (Jump, Goto):
                    assert t.chain in {c.name for c in users}


@FAST
@given(nst.rulesets(as_ir=True, max_rules=3))
def test_rulesets_as_ir(ruleset):
    assert isinstance(ruleset, Ruleset)
    assert not load_report(ruleset.save()).errors


@FAST
@given(nst.rules("nat", "PREROUTING", extensions=["tcp", "DNAT", "REDIRECT"]))
def test_rules_for_one_chain(line):
    assert line.startswith("-A PREROUTING")
    text = "*nat\n:PREROUTING ACCEPT [0:0]\n" + line + "\nCOMMIT\n"
    report = load_report(text)
    assert not report.errors, line


@FAST
@given(nst.rules("filter", "U1", jump_to=["U2"], as_ir=True))
def test_rules_as_ir_jump_only_where_told(rule):
    assert rule.chain == "U1"
    if type(rule.target) in (Jump, Goto):
        assert rule.target.chain == "U2"


@FAST
@given(nst.chains("mangle", "POSTROUTING", max_rules=3, as_ir=True))
def test_chains_as_ir(chain):
    assert chain.name == "POSTROUTING" and chain.policy in ("ACCEPT", "DROP")
    assert len(chain.rules) <= 3


@pytest.mark.parametrize("name", nst.extension_names(evaluated=False))
def test_every_catalog_extension_is_drawn_and_loads(name):
    def uses(ruleset):
        return any(v is not None and v.NAME == name and type(v) not in (Jump, Goto, Verdict)
                   for t in ruleset.tables for c in t.chains for r in c.rules
                   for v in (*r.matches, r.target))
    found = find(nst.rulesets(extensions=[name], as_ir=True), uses,
                 settings=settings(max_examples=3000, database=None, phases=[Phase.generate]))
    assert not load_report(found.save()).errors


@pytest.mark.parametrize("name", nst.NOT_EVALUATED)
def test_not_evaluated_is_honest(name):
    """The extensions left out by default are the ones a trace cannot go through."""
    from nfemu.interp import NotEvaluable
    line = find(nst.rules("filter", "INPUT", extensions=[name], max_matches=1),
                lambda line: f"-m {name}" in line and not any(
                    f" {flag} " in line for flag in ("-s", "-d", "-i", "-p")),
                settings=settings(max_examples=3000, database=None))
    node = Node(nfemu.loads(f"*filter\n:INPUT ACCEPT [0:0]\n{line}\nCOMMIT\n"), ROUTER)
    with pytest.raises(NotEvaluable):
        for sport in (1, 2, 3, 1):
            node.trace(Packet(src=ip("192.168.0.50"), dst=ip("192.168.0.2"), proto=UDP,
                              sport=sport, dport=2), iface="eth0")


def test_unknown_extension_is_refused():
    with pytest.raises(ValueError, match="unknown extensions"):
        nst.rulesets(extensions=["NOPE"]).example()


def test_shrinks_to_one_short_rule():
    found = find(nst.rulesets(tables=["filter", "nat"], max_rules=3), lambda t: "DNAT" in t,
                 settings=settings(max_examples=500, database=None))
    # (the shrinker is heuristic: a leftover plain rule or empty table may remain)
    lines = rule_lines(found)
    dnat = [line for line in lines if "DNAT" in line]
    assert len(lines) <= 2 and len(dnat) == 1, found
    assert re.fullmatch(r"-A (PREROUTING|OUTPUT) -j DNAT --to-destination \S+", dnat[0]), found
    assert ":U0" not in found and found.count("*") <= 2, found


# ---- packets ---------------------------------------------------------------------------------

@FAST
@given(nst.packets(proto="tcp", src="10.0.0.5", dst="10.96.0.10", sport=1234, dport=53,
                   tcp_flags=TCP_SYN, mark=7, ttl=9, tos=4, iif="eth3",
                   payload=b"abc"))
def test_pinned_fields_are_pinned(pkt):
    assert (pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport) == (
        TCP, ip("10.0.0.5"), ip("10.96.0.10"), 1234, 53)
    assert (pkt.tcp_flags, pkt.mark, pkt.ttl, pkt.tos, pkt.iif, pkt.payload) == (
        TCP_SYN, 7, 9, 4, "eth3", b"abc")


@FAST
@given(nst.packets(proto=st.sampled_from(["udp", "icmp"]), dport=st.sampled_from([53, 5353]),
                   icmp_type=3, icmp_code=st.just(1)))
def test_strategy_pins_draw_from_the_strategy(pkt):
    assert pkt.proto in (UDP, ICMP)
    if pkt.proto == UDP:
        assert pkt.dport in (53, 5353)
    else:
        assert (pkt.icmp_type, pkt.icmp_code) == (3, 1)


@FAST
@given(nst.packets(family=st.sampled_from([4, 6])))
def test_packets_survive_the_wire(pkt):
    """What a drawn packet says is what its bytes say (metadata aside)."""
    back = Packet.from_bytes(pkt.to_bytes())
    assert back == pkt.replace(mark=0, iif="", oif="")
    assert pkt.proto in (TCP, UDP, ICMP, SCTP, 58)


@FAST
@given(st.data())
def test_arrivals_enter_where_the_host_can(data):
    host = data.draw(nst.hosts())
    a = data.draw(nst.arrivals(host=host))
    names = {i.name for i in host.interfaces}
    own = {addr.addr for i in host.interfaces for addr in i.inet()}
    if a.local:
        assert a.iface is None and a.packet.src in own
    else:
        assert a.iface in names and a.iface != "lo"


# ---- flows -----------------------------------------------------------------------------------

def check_tcp_bookkeeping(flow) -> None:
    """Sequence numbers as RFC 9293 counts them: SYN and FIN take one, data its length; an
    ACK acknowledges everything the peer sent before."""
    nxt: dict[str, int] = {}
    other = {"original": "reply", "reply": "original"}
    for item in flow:
        p, d = item.packet, item.direction
        if d in nxt:
            assert p.tcp_seq == nxt[d]
        if p.tcp_flags & TCP_ACK:
            assert p.tcp_ack == nxt[other[d]]
        nxt[d] = (p.tcp_seq + len(p.payload) + bool(p.tcp_flags & TCP_SYN)
                  + bool(p.tcp_flags & TCP_FIN)) % 2**32


@FAST
@given(nst.flows(client="192.168.0.50", server="10.0.0.5", dport=80))
def test_flows_are_well_formed(flow):
    first = flow[0].packet
    assert flow[0].direction == "original"
    assert (first.src, first.dst) == (ip("192.168.0.50"), ip("10.0.0.5"))
    times = [f.time for f in flow]
    assert times == sorted(times)
    for item in flow:
        p = item.packet
        assert p.proto == first.proto
        if item.direction == "original":
            assert (p.src, p.dst, p.sport, p.dport) == (first.src, first.dst, first.sport,
                                                        first.dport)
            assert (item.iface, item.local) == ("eth0", False)
        else:
            assert (p.src, p.dst, p.sport, p.dport) == (first.dst, first.src, first.dport,
                                                        first.sport)
            assert (item.iface, item.local) == ("eth1", False)
    if first.proto == TCP:
        assert first.dport == 80
        assert [f.packet.tcp_flags for f in flow[:3]] == [TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK]
        assert [f.direction for f in flow[:3]] == ["original", "reply", "original"]
        rst = [f for f in flow if f.packet.tcp_flags & TCP_RST]
        assert not rst or rst == [flow[-1]]
        check_tcp_bookkeeping(flow)
    elif first.proto == ICMP:
        types = [f.packet.icmp_type for f in flow]
        assert types == [8, 0] * (len(flow) // 2)
        assert len({f.packet.icmp_id for f in flow}) == 1


OPEN = nfemu.loads("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                   ":OUTPUT ACCEPT [0:0]\nCOMMIT\n")


@FAST
@given(nst.flows(server=st.sampled_from(["10.0.0.5", "8.8.8.8"]),
                 gaps=st.sampled_from([0.0, 0.01, 1.0])))
def test_flows_are_one_connection_to_conntrack(flow):
    """Through an open router, the first packet makes a NEW entry and every later one,
    replies included, belongs to it (none INVALID, none a second NEW)."""
    node = Node(OPEN, ROUTER, seed=1)
    states = [item.send(node).ctinfo for item in flow]
    assert states[0] == "NEW"
    for item, state in zip(flow[1:], states[1:]):
        want = "ESTABLISHED_REPLY" if item.direction == "reply" else "ESTABLISHED"
        assert state == want, (item.packet.describe(), states)


@FAST
@given(nst.flows(server=st.sampled_from(["10.0.0.5", "8.8.8.8"]),
                 gaps=st.sampled_from([0.0, 1.0, 200.0])))
def test_a_flow_replays_as_it_sends(flow):
    """capture(flow) through Node.replay does what sending each packet does."""
    node = Node(OPEN, ROUTER, seed=1)
    sent = [item.send(node) for item in flow]
    replayed = list(Node(OPEN, ROUTER, seed=1).replay(nst.capture(flow)))
    assert [r.problem for r in replayed] == [None] * len(flow)
    assert [(r.journey.key(), r.journey.ctinfo) for r in replayed] == [
        (j.key(), j.ctinfo) for j in sent]


def test_capture_refuses_local_packets():
    flow = find(nst.flows(server_local=True), lambda f: any(item.local for item in f),
                settings=settings(database=None))
    with pytest.raises(ValueError, match="locally generated"):
        nst.capture(flow)


@FAST
@given(nst.flows(server_local=True, server="192.168.0.2", client_iface="eth0"))
def test_flows_to_the_node_reply_locally(flow):
    for item in flow:
        if item.direction == "reply":
            assert item.local and item.iface is None
        else:
            assert not item.local and item.iface == "eth0"


# ---- hosts -----------------------------------------------------------------------------------

@FAST
@given(nst.hosts(max_interfaces=2))
def test_hosts(host):
    names = [i.name for i in host.interfaces]
    assert names[0] == "lo" and "eth0" in names and len(names) <= 3
    assert len(set(names)) == len(names)
    gateways = [r for r in host.routes if r.gateway is not None]
    assert len(gateways) <= 1
    for route in gateways:
        assert route.dst == 0 and route.prefixlen == 0 and route.dev == "eth0"


@FAST
@given(nst.hosts(interfaces=["eth0=10.1.0.2/16"], default_gateway="10.1.0.1"))
def test_hosts_pinned(host):
    assert [i.name for i in host.interfaces] == ["lo", "eth0"]
    assert [r.gateway for r in host.routes if r.gateway] == [ip("10.1.0.1")]


# ---- the engines on drawn inputs -------------------------------------------------------------

def outcomes(node, a) -> dict:
    return {o.journey.key(): o.probability
            for o in node.outcomes(a.packet, iface=a.iface, local=a.local)}


@SLOW
@given(st.data())
def test_compiled_engine_agrees_with_reference_on_drawn_inputs(data):
    host = data.draw(nst.hosts(), label="host")
    ruleset = data.draw(nst.rulesets(max_user_chains=2, max_rules=3, as_ir=True),
                        label="ruleset")
    text = ruleset.save()
    assume(text.count("statistic") <= 5)
    compiled = Node(ruleset, host, seed=3)
    reference = Node(ruleset, host, seed=3, engine="reference")
    for a in data.draw(st.lists(nst.arrivals(host=host), min_size=1, max_size=3),
                       label="arrivals"):
        exact = outcomes(compiled, a)
        assert exact == outcomes(reference, a)
        assert sum(exact.values()) == 1
        j = compiled.trace(*a)
        assert j.key() in exact
        k = reference.trace(*a)
        assert k.key() in exact
        if "statistic" not in text:
            assert j.key() == k.key()
    if "statistic" not in text:
        assert compiled.counters == reference.counters


@SLOW
@given(st.data())
def test_engines_agree_on_drawn_flows(data):
    ruleset = data.draw(nst.rulesets(tables=["filter", "nat", "mangle"], max_rules=3,
                                     as_ir=True), label="ruleset")
    assume("statistic" not in ruleset.save())
    flow = data.draw(nst.flows(server=st.sampled_from(["10.0.0.5", "192.168.0.2"]),
                               gaps=st.sampled_from([0.0, 1.0])), label="flow")
    compiled = Node(ruleset, ROUTER, seed=3)
    reference = Node(ruleset, ROUTER, seed=3, engine="reference")
    for item in flow:
        a, b = item.send(compiled), item.send(reference)
        assert (a.key(), a.ctinfo) == (b.key(), b.ctinfo)


# ---- the module itself -----------------------------------------------------------------------

def test_docstring_examples_run():
    result = doctest.testmod(nst, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0


def test_kube_clusters_is_reexported():
    assert callable(nst.kube_clusters)
    try:
        import nfemu.kube.strategies  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"nfemu.kube.strategies is not there yet ({exc})")
    assert isinstance(nst.kube_clusters(), SearchStrategy)


def test_nfemu_imports_without_hypothesis():
    """hypothesis is a test-time dependency: only the strategies modules may import it."""
    script = """
import importlib, pkgutil, sys
sys.modules["hypothesis"] = None            # any import of it fails
import nfemu
bad = []
for info in pkgutil.walk_packages(nfemu.__path__, "nfemu."):
    if info.name.endswith(("strategies", "__main__")):
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as exc:
        if "hypothesis" in str(exc):
            bad.append(info.name)
print(" ".join(bad))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"these import hypothesis: {run.stdout}"


def test_the_guide_example_runs():
    """docs/strategies.md's ten-line property test, run as a user would."""
    import pathlib
    guide = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "strategies.md").read_text()
    code = re.search(r"## A property test in ten lines\n\n```python\n(.*?)```", guide,
                     re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    namespace: dict = {}
    exec(compile(code, "docs/strategies.md", "exec"), namespace)   # noqa: S102
    namespace["test_no_ssh_from_outside"]()
