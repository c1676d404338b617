"""The guides in docs/guides/ run as written: every ``nfemu`` command of their ```sh blocks
(from the repository root, as ``python -m nfemu``), every ```python block that is a test file
(under pytest, with nfemu's plugin), and what each guide says of the output is asserted
here."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDES = ROOT / "docs" / "guides"

_BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def blocks(guide: str, language: str) -> list[str]:
    """The fenced blocks of one language in a guide, in order."""
    text = (GUIDES / guide).read_text()
    return [body for lang, body in _BLOCK.findall(text) if lang == language]


def commands(guide: str) -> list[str]:
    """The ``nfemu ...`` command lines of the guide's ```sh blocks."""
    return [line.strip() for body in blocks(guide, "sh") for line in body.splitlines()
            if line.strip().startswith("nfemu ")]


def run_nfemu(command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    argv = shlex.split(command)[1:]
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "nfemu", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def the(cmds: list[str], *words: str) -> str:
    """The one command containing every word."""
    found = [c for c in cmds if all(w in c for w in words)]
    assert len(found) == 1, (words, found)
    return found[0]


# ---- the operator's guide ------------------------------------------------------------------

def test_operator_guide_commands_all_run():
    cmds = commands("operator.md")
    assert len(cmds) == 5
    for c in cmds:
        r = run_nfemu(c)
        assert r.returncode == 0, (c, r.stderr)


def test_operator_guide_says_what_the_commands_show():
    cmds = commands("operator.md")
    r = run_nfemu(the(cmds, "nfemu check"))
    assert re.match(r"ok: 3 tables, \d+ rules", r.stdout)

    # outside the source ranges: through KUBE-FW-* without a match, dropped by
    # KUBE-PROXY-FIREWALL in filter FORWARD
    out = run_nfemu(the(cmds, "-s 198.51.100.7")).stdout
    assert "KUBE-FW-" in out and "KUBE-PROXY-FIREWALL rule" in out
    assert out.rstrip().splitlines()[-1].startswith("verdict DROP: dropped in filter FORWARD")

    # inside a range: one outcome, DNAT to the only endpoint, masqueraded, out eth0
    out = run_nfemu(the(cmds, "-s 203.0.113.9")).stdout
    assert out.count("== probability") == 1 and "== probability 1 (1.000000)" in out
    assert ("verdict ACCEPT: forwarded out eth0; packet tcp 192.168.0.2:40000 -> "
            "10.244.2.1:80" in out)

    # a pod to a two-endpoint ClusterIP: exactly 1/2 each, to two different pods
    out = run_nfemu(the(cmds, "clusterip-general", "--all")).stdout
    assert out.count("== probability 1/2 (0.500000)") == 2
    finals = set(re.findall(r"-> (10\.244\.\d+\.\d+:8443)", " ".join(
        x for x in out.splitlines() if x.startswith("verdict"))))
    assert len(finals) == 2

    # the replay: 4 NEW connections DNATed to pods, 12 replies, the stray FIN INVALID and
    # dropped by KUBE-FORWARD
    out = run_nfemu(the(cmds, "nfemu replay")).stdout
    assert "NEW 4" in out and "ESTABLISHED_REPLY 12" in out and "INVALID 1" in out
    assert "filter KUBE-FORWARD 1" in out
    assert re.search(r"NAT destinations \(new connections\): 10\.244\.", out)


# ---- the rule authors' guide ---------------------------------------------------------------

def run_pytest_on(code: str, tmp_path: Path, name: str = "test_generated_rules.py"
                  ) -> subprocess.CompletedProcess:
    """pytest on one test file holding ``code``, run from the repository root (the guide's
    paths are relative to it), with nfemu's plugin and nothing of this suite's set-up."""
    test = tmp_path / name
    test.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "nfemu.pytest_plugin", "-p",
         "no:cacheprovider", "-W", "ignore", "--rootdir", str(tmp_path), str(test)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)


def test_rule_authors_guide_example_passes(tmp_path):
    (code,) = blocks("rule-authors.md", "python")
    r = run_pytest_on(code, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\b4 passed\b", r.stdout), r.stdout


def test_rule_authors_guide_failure_shows_the_trace(tmp_path):
    # "Change the expected shares of the first test to Fraction(1, 3) and Fraction(2, 3)"
    (code,) = blocks("rule-authors.md", "python")
    wrong = code.replace('{"10.244.1.1:8443": Fraction(1, 2),', '{"10.244.1.1:8443": Fraction(1, 3),')
    wrong = wrong.replace('"10.244.2.1:8443": Fraction(1, 2)}', '"10.244.2.1:8443": Fraction(2, 3)}')
    assert wrong.count("Fraction(1, 3)") == 1 and wrong.count("Fraction(2, 3)") == 1
    r = run_pytest_on(wrong, tmp_path)
    assert r.returncode == 1
    out = r.stdout
    assert re.search(r"\b1 failed, 3 passed\b", out), out
    assert "10.244.1.1:8443" in out and "1/2" in out and "1/3" in out
    for seen in ("PREROUTING nat", "KUBE-SERVICES rule", "--probability 0.50000000000",
                 "-j DNAT --to-destination 10.244.1.1:8443", "verdict ACCEPT"):
        assert seen in out, seen


# ---- the README's kube trace example -------------------------------------------------------

def test_readme_kube_trace_example_says_why_it_is_rejected():
    text = (ROOT / "README.md").read_text()
    line = next(x.strip() for x in text.splitlines()
                if x.strip().startswith(".venv/bin/nfemu kube trace "))
    r = run_nfemu(line.replace(".venv/bin/nfemu", "nfemu", 1))
    assert r.returncode == 0, r.stderr
    assert "has no endpoints" in r.stdout
    assert "matches no pod" in r.stdout
    assert "rejected in filter KUBE-EXTERNAL-SERVICES" in r.stdout


# ---- the fuzzing guide ---------------------------------------------------------------------

def test_fuzzing_guide_example_passes(tmp_path):
    (code,) = blocks("fuzzing.md", "python")
    r = run_pytest_on(code, tmp_path, "test_fuzz_firewall.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\b3 passed\b", r.stdout), r.stdout


def test_fuzzing_guide_catches_the_pruner_that_forgets_the_table(tmp_path):
    # "With the reset line (dead = set()) removed, the test fails on that example."
    (code,) = blocks("fuzzing.md", "python")
    reset = '        if line.startswith("*"):\n            dead = set()\n        elif words[:1]'
    assert code.count(reset) == 1
    buggy = code.replace(reset, "        if words[:1]")
    r = run_pytest_on(buggy, tmp_path, "test_fuzz_firewall.py")
    assert r.returncode == 1
    assert re.search(r"\b1 failed, 2 passed\b", r.stdout), r.stdout
    assert "test_pruning_changes_no_packets_fate" in r.stdout
    assert "10.0.0.5" in r.stdout            # the DNAT the buggy pruner lost
