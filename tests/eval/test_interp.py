"""The reference chain walk (ipt_do_table) on rules with only IP header tests, and the exact
outcome explorer."""
from fractions import Fraction

import nfemu
from nfemu.engine import EvalContext, NodeState, Verdict
from nfemu.host import Host
from nfemu.interp import explore, iface_matches, walk_table
from nfemu.packet import Packet

HOST = Host.from_options(["eth0=192.168.0.2/24"])


def _table(body: str, table: str = "filter"):
    return nfemu.loads(f"*{table}\n{body}\nCOMMIT\n").table(table)


def _walk(body, pkt, chain="INPUT", counters=None):
    ev = EvalContext(HOST, NodeState(), hook=chain)
    return walk_table(_table(body), chain, pkt, ev, counters)


PKT = Packet(src=0x0A000001, dst=0xC0A80002, proto=6, sport=1000, dport=22, iif="eth0")


def test_policy_when_nothing_matches():
    r = _walk(":INPUT DROP [0:0]\n-A INPUT -s 10.9.9.9", PKT)
    assert r.verdict is Verdict.DROP and [(s.rule, s.target) for s in r.steps] == [(None, "DROP")]


def test_first_matching_verdict_wins_and_counters_count_bytes():
    counters = {}
    r = _walk("-A INPUT -s 10.0.0.0/8\n-A INPUT -p tcp -j DROP\n-A INPUT -j ACCEPT", PKT,
              counters=counters)
    assert r.verdict is Verdict.DROP
    assert [s.rule for s in r.steps] == [1, 2]
    assert counters == {("filter", "INPUT", 0): (1, PKT.length), ("filter", "INPUT", 1): (1, PKT.length)}


def test_jump_return_and_implicit_return():
    body = (":A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A INPUT -j DROP\n"
            "-A A -j B\n-A A -s 10.0.0.1 -j RETURN\n-A A -j ACCEPT\n-A B -d 1.1.1.1 -j ACCEPT")
    r = _walk(body, PKT)
    assert r.verdict is Verdict.DROP
    assert [(s.chain, s.rule) for s in r.steps] == [("INPUT", 1), ("A", 1), ("A", 2), ("INPUT", 2)]


def test_goto_returns_past_the_goto():
    body = (":INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A INPUT -j DROP\n"
            "-A A -g B\n-A A -j ACCEPT\n-A B -s 9.9.9.9")
    r = _walk(body, PKT)
    # B ends: it returns to the last -j return point (after INPUT rule 1), not into A
    assert r.verdict is Verdict.DROP
    assert [(s.chain, s.rule) for s in r.steps] == [("INPUT", 1), ("A", 1), ("INPUT", 2)]


def test_goto_from_builtin_ends_in_policy():
    r = _walk(":INPUT DROP [0:0]\n:A - [0:0]\n-A INPUT -g A\n-A INPUT -j ACCEPT\n-A A -j RETURN", PKT)
    assert r.verdict is Verdict.DROP and r.steps[-1].rule is None


def test_header_tests_negations_and_interfaces():
    assert _walk("-A INPUT ! -s 10.0.0.0/8 -j DROP", PKT).verdict is Verdict.ACCEPT
    assert _walk("-A INPUT -i eth+ -j DROP", PKT).verdict is Verdict.DROP
    assert _walk("-A INPUT ! -i eth0 -j DROP", PKT).verdict is Verdict.ACCEPT
    assert _walk("-A INPUT -p udp -j DROP", PKT).verdict is Verdict.ACCEPT
    assert _walk("-A INPUT ! -p udp -j DROP", PKT).verdict is Verdict.DROP
    assert _walk("-A INPUT -f -j DROP", PKT).verdict is Verdict.ACCEPT
    frag = Packet(src=1, dst=2, proto=6, frag=10, payload=b"x" * 8)
    assert _walk("-A INPUT -f -j DROP", frag).verdict is Verdict.DROP
    assert _walk("-A INPUT ! -f -j DROP", frag).verdict is Verdict.ACCEPT


def test_iface_wildcards():
    assert iface_matches("eth+", "eth0") and iface_matches("eth+", "eth")
    assert iface_matches("+", "") and not iface_matches("eth0", "")
    assert not iface_matches("eth0", "eth01")


def test_explore_enumerates_exact_probabilities():
    def run(choose):
        if choose(Fraction(1, 3)):
            return "a"
        if choose(Fraction(1, 2)):
            return "b"
        return "c"
    outcomes = dict((r, p) for p, r in explore(run))
    assert outcomes == {"a": Fraction(1, 3), "b": Fraction(1, 3), "c": Fraction(1, 3)}
    assert sum(outcomes.values()) == 1


def test_explore_does_not_branch_on_certain_choices():
    assert explore(lambda choose: (choose(Fraction(1)), choose(Fraction(0)))) == [
        (Fraction(1), (True, False))]
