"""The compiled modules (Cython, built by setup.py from the same sources) against their
pure-Python twins, on rulesets, packets and flows drawn by nfemu.strategies.

The cases are drawn here, once; a small script then runs them in two subprocesses, one as
installed (compiled where built) and one under ``NFEMU_PURE_PYTHON=1`` (nfemu/_purepython.py:
the .py files even where the compiled modules are present), and prints every answer as
JSON: each packet's outcomes with their exact probabilities, a seeded trace, the counters,
and a flow sent with connection tracking (verdicts and ctinfo). The two must be identical.
Skipped, saying why, when the compiled modules are not built.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfemu.strategies as nst
from nfemu.packet import Packet

ROOT = Path(__file__).resolve().parent.parent
HOST_OPTIONS = (["eth0=192.168.0.2/24", "eth1=10.0.0.1/24"], "192.168.0.1")

# Runs in the subprocesses: reads the cases from stdin, prints the answers as JSON.
SCRIPT = r"""
import dataclasses, json, sys
import nfemu
from nfemu.host import Host
from nfemu.node import Node
from nfemu.packet import Packet

def packet(fields):
    return Packet(**{k: bytes.fromhex(v[1]) if isinstance(v, list) and v[:1] == ["hex"] else v
                     for k, v in fields.items()})

def packet_json(p):
    if p is None:
        return None
    out = {}
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        if isinstance(v, bytes):
            v = v.hex()
        elif isinstance(v, Packet):
            v = packet_json(v)
        elif isinstance(v, tuple):
            v = [list(x) for x in v]
        elif v is not None and not isinstance(v, (int, str)):
            v = repr(v)
        out[f.name] = int(v) if isinstance(v, int) else v
    return out

def journey_json(j):
    return {"verdict": j.verdict.value, "where": j.where, "out_iface": j.out_iface,
            "packet": packet_json(j.packet), "steps": [list(s) for s in j.steps],
            "ctinfo": j.ctinfo}

cases = json.load(sys.stdin)
answers = []
for case in cases:
    ifaces, gw = case["host"]
    host = Host.from_options(ifaces, default_gateway=gw)
    ruleset = nfemu.loads(case["ruleset"])
    node = Node(ruleset, host, seed=11)
    answer = {"outcomes": [], "traces": []}
    for a in case["arrivals"]:
        pkt = packet(a["packet"])
        answer["outcomes"].append(sorted(
            ([str(o.probability), journey_json(o.journey)]
             for o in node.outcomes(pkt, iface=a["iface"], local=a["local"])),
            key=json.dumps))
        answer["traces"].append(journey_json(node.trace(pkt, iface=a["iface"],
                                                        local=a["local"])))
    flow_node = Node(ruleset, host, seed=11)
    answer["flow"] = [journey_json(flow_node.send(packet(f["packet"]), iface=f["iface"],
                                                  local=f["local"], now=f["time"]))
                      for f in case["flow"]]
    answer["counters"] = sorted(([list(k), list(v)] for k, v in node.counters.items()),
                                key=json.dumps)
    answers.append(answer)
print(json.dumps({"compiled": nfemu.compiled(), "answers": answers}, sort_keys=True))
"""


def packet_fields(p: Packet) -> dict:
    out = {}
    for f in dataclasses.fields(p):
        if not f.init:
            continue
        v = getattr(p, f.name)
        out[f.name] = ["hex", v.hex()] if isinstance(v, bytes) else (
            int(v) if isinstance(v, int) else v)
    return out


def draw_cases(n: int) -> list[dict]:
    cases: list[dict] = []
    strategy = st.tuples(
        nst.rulesets(max_user_chains=2, max_rules=3),
        st.lists(nst.arrivals(), min_size=1, max_size=3),
        nst.flows(gaps=st.sampled_from([0.0, 1.0, 40.0])))

    @settings(max_examples=n, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case):
        text, arrivals, flow = case
        if text.count("statistic") > 4:      # k random rules: up to 2^k outcomes each
            return
        cases.append({
            "ruleset": text, "host": HOST_OPTIONS,
            "arrivals": [{"packet": packet_fields(a.packet), "iface": a.iface,
                          "local": a.local} for a in arrivals],
            "flow": [{"packet": packet_fields(f.packet), "iface": f.iface, "local": f.local,
                      "time": f.time} for f in flow]})

    collect()
    return cases


def run(cases: list[dict], pure: bool) -> dict:
    env = dict(os.environ)
    env.pop("NFEMU_PURE_PYTHON", None)
    if pure:
        env["NFEMU_PURE_PYTHON"] = "1"
    done = subprocess.run([sys.executable, "-c", SCRIPT], input=json.dumps(cases), env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_compiled_and_pure_python_twins_agree():
    cases = draw_cases(int(os.environ.get("NFEMU_TWIN_EXAMPLES", "60")))
    assert cases
    built = run(cases, pure=False)
    if not built["compiled"]:
        pytest.skip("the compiled modules are not built here (nfemu.compiled() is False): "
                    "build them with `pip install .` or `python setup.py build_ext --inplace` "
                    "to compare them with their pure-Python twins")
    pure = run(cases, pure=True)
    assert pure["compiled"] is False, "NFEMU_PURE_PYTHON=1 still ran compiled modules"
    for case, a, b in zip(cases, built["answers"], pure["answers"]):
        assert a == b, f"compiled and pure Python differ on\n{case['ruleset']}"


def test_the_script_answers_in_pure_python():
    """The comparison's own machinery, which runs even where nothing is compiled: the
    script reads drawn cases back faithfully (the packets it rebuilds are the drawn ones)
    and answers for every packet."""
    cases = draw_cases(5)
    answer = run(cases, pure=True)
    assert answer["compiled"] is False
    assert len(answer["answers"]) == len(cases)
    for case, a in zip(cases, answer["answers"]):
        assert len(a["outcomes"]) == len(a["traces"]) == len(case["arrivals"])
        assert len(a["flow"]) == len(case["flow"])
        for outs in a["outcomes"]:
            assert outs and sum(_fraction(p) for p, _ in outs) == 1


def _fraction(text: str):
    from fractions import Fraction
    return Fraction(text)
