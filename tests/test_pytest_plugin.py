"""nfemu/pytest_plugin.py run by pytest itself (the ``pytester`` fixture): a test file that
uses the ``nfemu_node`` fixture and the assertions passes and fails as it should, and a
failure shows the trace. The inner runs load the plugin with ``-p nfemu.pytest_plugin`` and
entry-point autoloading off (as where nfemu's ``pytest11`` entry point is not installed);
one run loads it through the entry point when this environment has it."""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

# imported here, so that the in-process inner runs (which drop the modules they import
# first) find them loaded
import nfemu.assertions  # noqa: F401
import nfemu.packetopts  # noqa: F401
import nfemu.tracecli  # noqa: F401

pytest_plugins = ["pytester"]

RULES = '''
RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j SVC
-A POSTROUTING -o eth1 -j MASQUERADE
-A SVC -p tcp -m statistic --mode random --probability 0.25 -j DNAT --to-destination 10.1.0.1:8080
-A SVC -p tcp -j DNAT --to-destination 10.1.0.2:8080
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p udp --dport 53 -j REJECT
COMMIT
"""
HOST = ["eth0=192.168.0.2/24", "eth1=10.1.0.254/16"]
TO_SVC = "-p tcp -s 192.168.0.50 -d 10.96.0.10 --dport 80 -i eth0"
'''

# the shares are the kernel's: --probability 0.25 is the u32 threshold 2^29 of 2^31, a quarter
# exactly; the rest goes to the second endpoint
PASSING = RULES + '''
from fractions import Fraction
from nfemu.pytest_plugin import (assert_dropped, assert_masqueraded, assert_path,
                                 assert_reaches, assert_rejected, assert_delivered)


def test_service(nfemu_node):
    node = nfemu_node(RULES, iface=HOST)
    assert_reaches(node, TO_SVC, {"10.1.0.1:8080": Fraction(1, 4),
                                  "10.1.0.2:8080": Fraction(3, 4)})
    assert_masqueraded(node, TO_SVC, to="10.1.0.254")
    assert_path(node, TO_SVC, ["nat:PREROUTING", "SVC", "nat:POSTROUTING"])


def test_input(nfemu_node):
    node = nfemu_node(RULES, iface=HOST, seed=3)
    assert node.seed == 3
    assert_delivered(node, "-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport 22 -i eth0")
    assert_dropped(node, "-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport 23 -i eth0")
    assert_rejected(node, "-p udp -s 192.168.0.9 -d 192.168.0.2 --dport 53 -i eth0",
                    "icmp-port-unreachable")


def test_from_a_file(nfemu_node, tmp_path):
    path = tmp_path / "rules.v4"
    path.write_text(RULES)
    node = nfemu_node(str(path), iface=HOST)
    assert_dropped(node, "-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport 23 -i eth0")
'''

FAILING = RULES + '''
from fractions import Fraction
from nfemu.assertions import assert_dropped, assert_reaches


def test_thirds(nfemu_node):
    node = nfemu_node(RULES, iface=HOST)
    assert_reaches(node, TO_SVC, {"10.1.0.1:8080": Fraction(1, 2),
                                  "10.1.0.2:8080": Fraction(1, 2)})


def test_ssh_dropped(nfemu_node):
    node = nfemu_node(RULES, iface=HOST)
    assert_dropped(node, "-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport 22 -i eth0")
'''


@pytest.fixture
def run(pytester, monkeypatch):
    """Run the inner session with the plugin loaded by -p and autoloading off."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def go(source: str, *args: str):
        pytester.makepyfile(test_rules=source)
        return pytester.runpytest("-p", "nfemu.pytest_plugin", *args)
    return go


def test_passing_tests_pass(run):
    result = run(PASSING)
    result.assert_outcomes(passed=3)


def test_failures_show_the_trace(run):
    result = run(FAILING)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    # the shares: a quarter and three quarters, not halves
    result.stdout.fnmatch_lines([
        "*assert_reaches: the packet's destinations differ (exact shares)*",
        "*10.1.0.1:8080*1/2 (0.5)*1/4 (0.25)*differs*",
        "*10.1.0.2:8080*1/2 (0.5)*3/4 (0.75)*differs*",
    ])
    # the traces: the rules hit, the NAT events, the verdicts
    assert "-A SVC -p tcp -m statistic --mode random --probability 0.25000000000 -j DNAT " \
           "--to-destination 10.1.0.1:8080" in out
    assert "=> DNAT to=10.1.0.1:8080" in out
    assert "=> SNAT to=10.1.0.254:40000, by=MASQUERADE" in out
    assert "verdict ACCEPT: forwarded out eth1" in out
    result.stdout.fnmatch_lines([
        "*assert_dropped: not every outcome is dropped*",
        "*INPUT rule 1: -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT*",
        "*verdict ACCEPT: delivered locally*",
    ])
    # the assertion's own frames are hidden: the traceback ends in the test
    assert "_check_each" not in out


def test_fixture_is_listed(run):
    result = run(PASSING, "--fixtures")
    result.stdout.fnmatch_lines(["nfemu_node*", "*factory of*Node*"])


def test_without_the_plugin_there_is_no_fixture(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_rules=PASSING)
    result = pytester.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*fixture 'nfemu_node' not found*"])


def _entry_point_installed() -> bool:
    return any(ep.value == "nfemu.pytest_plugin"
               for ep in importlib.metadata.entry_points(group="pytest11"))


@pytest.mark.skipif(not _entry_point_installed(),
                    reason="nfemu's pytest11 entry point is not installed here")
@pytest.mark.parametrize("args", [(), ("-p", "nfemu.pytest_plugin")])
def test_through_the_entry_point(pytester, monkeypatch, args):
    """Autoloaded by its entry point, alone or with -p naming the same module (which
    pluggy would refuse without the plugin's pytest_addhooks)."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_rules=PASSING)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)


@pytest.mark.skipif(not _entry_point_installed(),
                    reason="nfemu's pytest11 entry point is not installed here")
def test_entry_point_and_conftest(pytester, monkeypatch):
    """Autoloaded, and named by a conftest's pytest_plugins too."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeconftest('pytest_plugins = ["nfemu.pytest_plugin"]')
    pytester.makepyfile(test_rules=PASSING)
    pytester.runpytest().assert_outcomes(passed=3)
    # and off: -p no:nfemu blocks the entry point, the conftest loads the module
    pytester.runpytest("-p", "no:nfemu").assert_outcomes(passed=3)


def test_conftest_without_the_entry_point(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["nfemu.pytest_plugin"]')
    pytester.makepyfile(test_rules=PASSING)
    pytester.runpytest().assert_outcomes(passed=3)



def test_the_docs_example_runs(run, pytester):
    """docs/pytest.md's complete example: its rules.v4 and test file, as written there;
    it passes, and fails when a share is changed."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "pytest.md").read_text()
    section = text.split("## A complete example", 1)[1].split("\n## ", 1)[0]
    rules, test = re.findall(r"```(?:python)?\n(.*?)```", section, re.DOTALL)
    assert rules.startswith("*nat") and "def test_" in test
    assert len(test.strip().splitlines()) <= 11
    (pytester.path / "rules.v4").write_text(rules)
    run(test).assert_outcomes(passed=1)
    broken = test.replace('"10.244.2.7:8080": Fraction(1, 2)', '"10.244.2.7:8080": Fraction(1, 3)')
    assert broken != test
    result = run(broken)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*10.244.2.7:8080*1/3*1/2 (0.5)*differs*"])


PROPERTY = RULES + """
from hypothesis import Phase, given, settings, strategies as st
from nfemu.assertions import assert_dropped, assert_delivered

# per test, not a profile: this module runs inside the outer session's process
FEW = settings(deadline=None, derandomize=True, database=None, max_examples=20,
               phases=[Phase.generate, Phase.shrink])


@FEW
@given(dport=st.integers(0, 65535))
def test_only_ssh_gets_in(nfemu_node, dport):
    node = nfemu_node(RULES, iface=HOST)
    pkt = f"-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport {dport} -i eth0"
    if dport == 22:
        assert_delivered(node, pkt)
    else:
        assert_dropped(node, pkt)


@FEW
@given(dport=st.integers(0, 65535))
def test_a_wrong_property_is_found(nfemu_node, dport):
    node = nfemu_node(RULES, iface=HOST)
    assert_delivered(node, f"-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport {dport} -i eth0")
"""


def test_with_hypothesis(run):
    """A property test uses the fixture under @given (no function-scoped-fixture health
    check); a wrong property fails with a shrunk example and the trace."""
    pytest.importorskip("hypothesis")
    result = run(PROPERTY, "-p", "_hypothesis_pytestplugin")
    result.assert_outcomes(passed=1, failed=1)
    # (hypothesis names the shrunk example "Falsifying example" or, in newer releases,
    # "Failing test case")
    result.stdout.re_match_lines([r".*assert_delivered: not every outcome is delivered",
                                  r".*INPUT policy: :INPUT policy DROP",
                                  r".*(Falsifying example|Failing test case)", r".*dport=0"])
