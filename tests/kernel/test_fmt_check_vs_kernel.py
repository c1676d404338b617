"""Differential tests: random rulesets over the whole extension catalog are loaded into the
real kernel and into nfemu. Whatever the kernel accepts nfemu must accept and print exactly as
iptables-save does; whatever the kernel rejects nfemu must reject."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings, strategies as st

from nfemu.parse import load_with_errors

def assert_agrees_with_kernel(kernel, text: str, name: str, counters: bool = False) -> None:
    """What the kernel accepts nfemu accepts and prints as iptables-save does; what the
    kernel rejects nfemu rejects."""
    real = kernel.restore(text, counters=counters)
    ruleset, errors = load_with_errors(text, name, counters=counters)
    if real.accepted:
        assert not errors, f"kernel accepts, nfemu rejects:\n{text}\n" + "\n".join(
            e.format() for e in errors)
        assert ruleset.save(counters=counters, header=False) == real.saved, text
    else:
        assert errors, f"kernel rejects ({real.stderr.strip()}), nfemu accepts:\n{text}"


GENERIC = ["", "-s 10.0.0.1", "-s 10.1.2.3/24", "! -s 192.168.0.0/16", "-d 10.96.0.10/32",
           "-d 10.0.0.0/255.255.0.0", "-i eth0", "! -o lo", "-i eth+", "-o veth1"]
PROTOS = ["", "", "-p tcp", "-p udp", "-p icmp", "-p sctp", "-p 47", "! -p tcp", "-p TCP", "-p 6"]
MATCHES = [
    '-m comment --comment "x y"', "-m comment --comment kube/svc", "--dport 80", "--sport 1024:",
    "-m tcp --dport 53", "--syn", "! --syn", "-m udp --sport 53", "--dport 1:1023",
    "-m multiport --dports 80,443", "-m multiport --ports 1:10,20", "-m mark --mark 0x4000/0x4000",
    "-m mark ! --mark 1", "-m conntrack --ctstate NEW,ESTABLISHED", "-m conntrack ! --ctstate INVALID",
    "-m state --state RELATED", "-m statistic --mode random --probability 0.25",
    "-m statistic --mode random --probability 0.3333333333", "-m statistic --mode nth --every 3 --packet 1",
    "-m recent --name foo --rcheck --seconds 60 --reap", "-m recent --set", "-m addrtype --dst-type LOCAL",
    "-m addrtype ! --src-type LOCAL,BROADCAST", "-m iprange --src-range 10.0.0.1-10.0.0.9",
    "-m length --length 100:200", "-m limit --limit 5/sec --limit-burst 7", "-m owner --uid-owner 0",
    "-m mac --mac-source 00:11:22:33:44:55", "-m pkttype --pkt-type broadcast",
    "-m connmark --mark 1/0xff", "--icmp-type echo-request", "--icmp-type 3/3",
    "-m sctp --dport 9", "--tcp-flags SYN,ACK SYN",
    # odd spellings, abbreviations and values the kernel or iptables may refuse
    "--dp 80", "--dport 0x50", "--dport 080", "--sport 5:4", "--dport :1023", "! --dport 0:1023",
    "-m multiport --dport 1,2", "-m multiport --sports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
    "-m mark --mark 0x1/0xffffffff1", "-m mark --mark 4294967295", "-m connmark ! --mark 7/3",
    "-m statistic --mode random --probability 1.5", "-m statistic --mode nth --every 0",
    "-m statistic --mode nth --every 5", "-m recent --update --seconds 0 --hitcount 2",
    "-m recent --rcheck --hitcount 0", "-m recent --remove --seconds 5",
    "-m limit --limit 0/sec", "-m limit --limit 100/minute --limit-burst 0",
    "-m conntrack --ctorigdst 10.0.0.0/8 --ctorigdstport 53", "-m conntrack --ctstatus ASSURED",
    "-m conntrack --ctstate SNAT,DNAT", "-m state --state NEW,INVALID,UNTRACKED",
    "-m addrtype --src-type LOCAL --limit-iface-in", "-m addrtype --dst-type UNICAST --limit-iface-out",
    "-m length --length 70000", "-m owner --gid-owner 10-20", "-m owner ! --socket-exists",
    "-m physdev --physdev-is-bridged", "-m physdev --physdev-out veth0", "-m pkttype --pkt-type host",
    "-m iprange ! --dst-range 10.0.0.9-10.0.0.1", "-m comment --comment",
    "--icmp-type any", "--icmp-type 300", "-m tcp --tcp-option 2", "-m ttl --ttl-gt 5",
    "-m tos --tos 0x10", "-m rpfilter --loose", "-m tcpmss --mss 1000:1500",
    "-m hashlimit --hashlimit-upto 5/sec --hashlimit-name hl1",
]
TARGETS = [
    "", "-j ACCEPT", "-j DROP", "-j RETURN", "-j REJECT", "-j REJECT --reject-with tcp-reset",
    "-j REJECT --reject-with icmp-host-prohibited", "-j DNAT --to-destination 10.0.0.1:80",
    "-j DNAT --to-destination 10.0.0.1", "-j SNAT --to-source 1.2.3.4", "-j MASQUERADE",
    "-j MASQUERADE --to-ports 1000-2000 --random-fully", "-j REDIRECT --to-ports 8080",
    "-j MARK --set-mark 1", "-j MARK --or-mark 0x4000", "-j MARK --and-mark 0xff",
    "-j CONNMARK --save-mark", "-j CONNMARK --restore-mark --mask 0xff",
    '-j LOG --log-prefix "p: " --log-level 4', "-j NFLOG --nflog-group 2", "-j CT --notrack",
    "-j NOTRACK", "-j NETMAP --to 10.0.0.0/24", "-j X", "-g X",
    "-j DNAT --to-destination 10.0.0.1-10.0.0.9:80-90 --random --persistent",
    "-j SNAT --to-source 1.2.3.4:1000 --random-fully", "-j MARK --set-xmark 0x4000/0x4000",
    "-j MARK --set-mark 1/0xff", "-j CONNMARK --set-mark 5/0xf", "-j REDIRECT",
    "-j REJECT --reject-with tcp-rst", "-j REJECT --reject-with icmp-admin-prohibited",
    "-j LOG --log-level debug --log-uid", "-j NFLOG --nflog-prefix x --nflog-threshold 3",
    "-j CT --zone 5", "-j TCPMSS --clamp-mss-to-pmtu", "-j NFQUEUE --queue-num 3 --queue-bypass",
    "-j TOS --set-tos 0x10", "-j CLASSIFY --set-class 1:2", "-j TRACE", "-j DROP --bogus",
    "-j QUEUE", "-j Y",
]
TABLES = {"filter": ["INPUT", "FORWARD", "OUTPUT"],
          "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
          "mangle": ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
          "raw": ["PREROUTING", "OUTPUT"]}


@st.composite
def rulesets(draw):
    table = draw(st.sampled_from(sorted(TABLES)))
    chains = TABLES[table] + ["X"]
    lines = [f"*{table}", ":X - [0:0]"]
    for _ in range(draw(st.integers(1, 4))):
        chain = draw(st.sampled_from(chains))
        parts = [f"-A {chain}", draw(st.sampled_from(GENERIC)), draw(st.sampled_from(PROTOS))]
        parts += draw(st.lists(st.sampled_from(MATCHES), max_size=3))
        target = draw(st.sampled_from(TARGETS))
        if chain == "X" and target in ("-j X", "-g X"):
            target = "-j ACCEPT"
        parts.append(target)
        lines.append(" ".join(p for p in parts if p))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


@settings(max_examples=int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(rulesets())
def test_random_rulesets_agree_with_kernel(kernel, text):
    assert_agrees_with_kernel(kernel, text, "gen.rules")


COMMANDS = ["-N Y", "-N X", "-X X", "-X", "-F X", "-F", "-P INPUT DROP", "-P OUTPUT RETURN",
            "-D X 1", "-D X -j ACCEPT", "-I X 1 -j DROP", "-I X 5 -j DROP", "-A X -j RETURN",
            "-C X -j RETURN", "-Z X", "-A Y -j X", "-A INPUT -j Y", "-A X -j Y", "-E X Z",
            "-A INPUT -g X", "-A FORWARD -s 10.0.0.1 -j X"]


@st.composite
def command_scripts(draw):
    lines = ["*filter", ":X - [0:0]"]
    lines += draw(st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=6))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


@settings(max_examples=int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")) // 4, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(command_scripts())
def test_restore_commands_agree_with_kernel(kernel, text):
    assert_agrees_with_kernel(kernel, text, "cmd.rules")


@st.composite
def saved_with_counters(draw):
    lines = ["*filter", f":INPUT {draw(st.sampled_from(['ACCEPT', 'DROP']))} "
                        f"[{draw(st.integers(0, 10**12))}:{draw(st.integers(0, 10**15))}]",
             f":FORWARD ACCEPT {draw(st.sampled_from(['[0:0]', '[1:2]', '[x:1]', '']))}",
             ":X - [7:9]"]
    for _ in range(draw(st.integers(0, 3))):
        prefix = draw(st.sampled_from(["", "[3:4] ", "[18446744073709551615:5] ", "[1:] "]))
        lines.append(prefix + draw(st.sampled_from(["-A INPUT -j X", "-A X -s 1.2.3.4",
                                                    "-A INPUT -c 5 6 -j ACCEPT"])))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


@settings(max_examples=int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")) // 4, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(saved_with_counters())
def test_counters_agree_with_kernel(kernel, text):
    assert_agrees_with_kernel(kernel, text, "c.rules", counters=True)


def test_corpus_expectations_still_hold(kernel):
    """A sample of stored corpus expectations, re-made on this machine's kernel."""
    from pathlib import Path
    cases = sorted((Path(__file__).resolve().parents[2] / "corpus" / "cases").glob("*/*.rules"))
    for rules in cases[::7]:
        text = rules.read_bytes().decode("utf-8", "surrogateescape")
        real = kernel.restore(text)
        saved = rules.with_suffix(".nft.save")
        assert real.accepted == saved.exists(), rules
        if real.accepted:
            stored = "".join(l for l in saved.read_text(errors="surrogateescape")
                             .splitlines(keepends=True) if not l.startswith("#"))
            assert real.saved == stored, rules


def _corpus_rule_bodies() -> list[str]:
    """Every rule of the corpus without its "-A CHAIN" (kernel-checked on their own)."""
    from pathlib import Path
    bodies = set()
    for rules in (Path(__file__).resolve().parents[2] / "corpus" / "cases").glob("*/*.rules"):
        for line in rules.read_bytes().decode("utf-8", "surrogateescape").split("\n"):
            parts = line.split(" ", 2)
            if parts[0] == "-A" and len(parts) == 3 and "\x00" not in line:
                bodies.add(parts[2])
    return sorted(bodies)


BODIES = _corpus_rule_bodies()


@st.composite
def placed_rules(draw):
    """A corpus rule put somewhere else: another table, a built-in chain or a user chain
    reached from some built-in chains (what the kernel's hook checks are about)."""
    table = draw(st.sampled_from(sorted(TABLES)))
    body = draw(st.sampled_from(BODIES))
    lines = [f"*{table}", ":U - [0:0]", ":Y - [0:0]", ":X - [0:0]"]
    where = draw(st.sampled_from(TABLES[table] + ["U"]))
    lines.append(f"-A {where} {body}")
    if where == "U":
        for hook in draw(st.lists(st.sampled_from(TABLES[table]), max_size=2, unique=True)):
            lines.append(f"-A {hook} -j U")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


@settings(max_examples=int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(placed_rules())
def test_corpus_rules_placed_anywhere_agree_with_kernel(kernel, text):
    assert_agrees_with_kernel(kernel, text, "placed.rules")
