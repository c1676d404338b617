"""The rule strategies against the real kernel: every ruleset ``nfemu.strategies.rulesets()``
draws is accepted by ``iptables-restore`` (nf_tables) in a fresh network namespace, and
``iptables-save`` then prints exactly nfemu's canonical form of it (``Ruleset.save``),
line for line ('#' lines aside). This is what makes "always accepted" a fact rather than
nfemu's opinion: nfemu/validate.py is only the model the strategies were written against.

And every connection ``nfemu.strategies.flows()`` draws is one connection to the kernel's
conntrack: played through a forwarding node (tests/kernel/replaynet.py), its first packet is
NEW, every later one ESTABLISHED in its direction, none INVALID; and nfemu, replaying the
same capture, agrees with the kernel on every packet and conntrack entry.

Examples: NFEMU_KERNEL_EXAMPLES (default 1000) / 10 for the whole catalog, / 20 for the
nat-only and extension-restricted forms, / 40 for flows.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfemu
import nfemu.strategies as nst

EXAMPLES = max(1, int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")) // 10)
SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck)}


def assert_kernel_takes(kernel, text: str) -> None:
    real = kernel.restore(text)
    assert real.accepted, f"the kernel refuses a drawn ruleset ({real.stderr.strip()}):\n{text}"
    ours = nfemu.loads(text).save(header=False)
    assert real.saved == ours, (f"iptables-save differs from nfemu's form\n--- drawn\n{text}"
                                f"--- kernel\n{real.saved}--- nfemu\n{ours}")


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(nst.rulesets(tables=["filter", "nat", "mangle", "raw", "security"], max_user_chains=3,
                    max_rules=5, extensions=nst.extension_names(evaluated=False)))
def test_drawn_rulesets_load_into_the_kernel(kernel, text):
    assert_kernel_takes(kernel, text)


@settings(max_examples=max(1, EXAMPLES // 2), **SETTINGS)
@given(nst.rulesets(tables=["nat"], max_user_chains=4, max_rules=4))
def test_drawn_nat_rulesets_load_into_the_kernel(kernel, text):
    """NAT targets are the ones with hook limits: user chains reached from several hooks."""
    assert_kernel_takes(kernel, text)


@settings(max_examples=max(1, EXAMPLES // 2), **SETTINGS)
@given(nst.rulesets(tables=["filter", "mangle"], extensions=["tcp", "udp", "mark", "MARK"],
                    max_matches=3))
def test_restricted_extensions_load_into_the_kernel(kernel, text):
    assert_kernel_takes(kernel, text)


# ---- flows -----------------------------------------------------------------------------------

CLIENTS = ["192.168.50.1", "192.168.50.7"]        # on the node's eth0 link
SERVERS = ["10.50.0.9", "10.50.0.10"]             # on its eth1 link
# each packet counted by its ctstate and direction as the kernel's conntrack match sees it
FLOW_RULES = """\
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m conntrack --ctstate NEW
-A PREROUTING -m conntrack --ctstate ESTABLISHED --ctdir ORIGINAL
-A PREROUTING -m conntrack --ctstate ESTABLISHED --ctdir REPLY
-A PREROUTING -m conntrack --ctstate INVALID
COMMIT
"""


@settings(max_examples=max(1, EXAMPLES // 4), **SETTINGS)
@given(nst.flows(client=st.sampled_from(CLIENTS), server=st.sampled_from(SERVERS),
                 gaps=st.just(0.0)))
def test_drawn_flows_are_one_connection_to_the_kernel(kernel, flow):
    from tests.kernel.netsim import kernel_counters
    from tests.kernel.replaynet import Record, Scenario

    out = Scenario(FLOW_RULES, CLIENTS + SERVERS).run(
        [Record.of(item.iface, item.packet) for item in flow])
    assert not out.problems, "\n" + out.report()
    counts = kernel_counters(nfemu.loads(out.kernel_save, counters=True))
    originals = sum(item.direction == "original" for item in flow)
    described = "\n".join(f"{i.direction} {i.packet.describe()}" for i in flow)
    assert [counts[("mangle", "PREROUTING", k)][0] for k in range(4)] == [
        1, originals - 1, len(flow) - originals, 0], described
