"""iptables-nft's native tcp/udp matches against the real kernel: what nf_tables stores, how
the kernel evaluates it, and what a restore of the save dump runs.

iptables-nft 1.8.9 stores ``-m tcp``/``-m udp`` tests as nf_tables payload comparisons and
iptables-nft-save prints one match rebuilt from all of them, which does not always test what
the stored comparisons test (nfemu/nftnative.py). For rules loaded into a ``node`` namespace
(tests/kernel/netsim.py), this checks:

* the stored comparisons: ``nft --debug=netlink list chain ip filter INPUT``, read back into
  nfemu's Cmp tuples, equal the rule's ``Tcp.nft``/``Udp.nft``;
* the evaluation: packets sent from the peer (TCP with several flag sets, UDP, ICMP echo),
  every rule without target and the policy DROP (no connection is ever confirmed, so the same
  packets are new again later); every rule counter of ``iptables-save -c`` equals nfemu's
  (``Node.trace(pkt, iface="eth0")``, ``node.counters``);
* the dump: nfemu prints the rules as iptables-nft-save did; the dump (without counters) is
  restored, the same packets sent again, and the counters equal nfemu's for the dump read by
  nfemu (or both refuse the dump: iptables-nft-save can print a tcp range ``10:5`` that
  iptables-restore refuses).

The hand-written cases of tests/test_nftnative_eval.py (whose expectations are these kernel
counts) run first; then generated rules. Examples: NFEMU_KERNEL_EXAMPLES (default 1000) / 10.
"""
from __future__ import annotations

import os
import re
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfemu
from nfemu.errors import RulesetErrors
from nfemu.ext.tcp import Cmp, Tcp
from nfemu.ext.udp import Udp
from nfemu.host import Host
from nfemu.node import Node
from nfemu.packet import (
    ICMP,
    TCP,
    TCP_ACK,
    TCP_CWR,
    TCP_ECE,
    TCP_PSH,
    TCP_SYN,
    TCP_URG,
    UDP,
    Packet,
)
from tests import test_nftnative_eval as cases

EXAMPLES = max(1, int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000")) // 10)

NODE_IP = cases.NODE_IP

# ---- reading nft --debug=netlink -------------------------------------------------------

_RULE = re.compile(r"^ip filter INPUT \d")
_LOAD = re.compile(r"\[ payload load (\d+)b @ (\w+) header \+ (\d+) => reg (\d+) \]")
_META = re.compile(r"\[ meta load \w+ => reg (\d+) \]")
_BITWISE = re.compile(r"\[ bitwise reg (\d+) = \( reg (\d+) & (0x[0-9a-f]+) \) \^ 0x0+ \]")
_CMP = re.compile(r"\[ cmp (\w+) reg (\d+) (0x[0-9a-f]+) \]")
_RANGE = re.compile(r"\[ range (\w+) reg (\d+) (0x[0-9a-f]+) (0x[0-9a-f]+) \]")
_FIELDS = {(0, 2): "sport", (2, 2): "dport", (0, 4): "ports", (13, 1): "flags"}


def _data(word: str, size: int) -> int:
    """libnftnl prints register data as 32-bit words in host order (x86: little endian);
    the value of the first SIZE bytes read in network order."""
    return int.from_bytes(int(word, 16).to_bytes(4, "little")[:size], "big")


def stored_programs(listing: str) -> list[list[Cmp]]:
    """Per rule of the listing, its comparisons on transport header payload, as Cmp."""
    rules: list[list[Cmp]] = []
    regs: dict = {}
    for line in listing.splitlines():
        if _RULE.match(line):
            rules.append([])
            regs = {}
            continue
        if not rules:
            continue
        if m := _LOAD.search(line):
            size, base, offset, reg = int(m[1]), m[2], int(m[3]), m[4]
            regs[reg] = (_FIELDS.get((offset, size)), size, None) if base == "transport" else None
        elif m := _META.search(line):
            regs[m[1]] = None
        elif m := _BITWISE.search(line):
            src = regs.get(m[2])
            regs[m[1]] = None if src is None else (src[0], src[1], _data(m[3], src[1]))
        elif (m := _CMP.search(line)) or (m := _RANGE.search(line)):
            src = regs.get(m[2])
            if src is None:
                continue
            field, size, mask = src
            assert field is not None, f"unexpected transport header load in {line!r}"
            if line.lstrip().startswith("[ range"):
                rules[-1].append(Cmp(field, f"range_{m[1]}", _data(m[3], size),
                                     _data(m[4], size)))
            else:
                rules[-1].append(Cmp(field, m[1], _data(m[3], size), 0, mask or 0))
    return rules


def ours(rule) -> list[Cmp]:
    """The comparisons nfemu keeps for a rule (its native tcp/udp match, if any)."""
    out: list[Cmp] = []
    for m in rule.matches:
        if type(m) in (Tcp, Udp) and m.nft is not None:
            out.extend(m.nft)
    return out


def listing(net) -> str:
    r = subprocess.run(["ip", "netns", "exec", net.node, "nft", "--debug=netlink", "list",
                        "chain", "ip", "filter", "INPUT"], capture_output=True, text=True,
                       timeout=60, check=True)
    return r.stdout


def without_counters(saved_text: str) -> str:
    """An ``iptables-save -c`` dump as plain iptables-save prints it (counters zero)."""
    text = re.sub(r"^\[\d+:\d+\] ", "", saved_text, flags=re.MULTILINE)
    return re.sub(r"^(:\S+ \S+) \[\d+:\d+\]", r"\1 [0:0]", text, flags=re.MULTILINE)


def rule_lines(text: str) -> list[str]:
    """The ``-A`` lines of a dump, without their ``[packets:bytes]`` prefix."""
    lines = (re.sub(r"^\[\d+:\d+\] ", "", line) for line in text.splitlines())
    return [line for line in lines if line.startswith("-A ")]

# ---- the comparison --------------------------------------------------------------------


def nfemu_counters(ruleset, pkts: list[Packet]) -> dict:
    node = Node(ruleset, Host.from_options([f"eth0={NODE_IP}/24"]), seed=1)
    for p in pkts:
        node.trace(Packet.from_bytes(p.to_bytes()), iface="eth0")
    return node.counters


def save_c(net) -> str:
    """``iptables-save -c`` of the node (read here, not by nfemu: a dump can hold a line
    iptables-restore, and so nfemu, refuses)."""
    r = subprocess.run(["ip", "netns", "exec", net.node, "iptables-save", "-c"],
                       capture_output=True, text=True, timeout=60, check=True)
    return r.stdout


def input_counters(saved_text: str) -> dict:
    """(filter, INPUT, rule index or None for the policy) -> (packets, bytes) of a dump."""
    out = {}
    table = None
    index = 0
    for line in saved_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table == "filter" and (m := re.match(r"^:INPUT \S+ \[(\d+):(\d+)\]", line)):
            out[("filter", "INPUT", None)] = (int(m[1]), int(m[2]))
        elif table == "filter" and (m := re.match(r"^\[(\d+):(\d+)\] -A INPUT ", line)):
            out[("filter", "INPUT", index)] = (int(m[1]), int(m[2]))
            index += 1
    return out


def compare(saved_text: str, counters: dict, text: str, pkts: list[Packet]) -> None:
    kernel = input_counters(saved_text)
    mine = {k: counters.get(k, (0, 0)) for k in kernel}
    extra = {k: v for k, v in counters.items() if k not in kernel and v != (0, 0)}
    assert mine == kernel and not extra, (
        f"counters differ\n--- rules\n{text}--- packets\n"
        + "\n".join(p.describe() for p in pkts) + f"\n--- kernel\n{saved_text}"
        + "--- differing (kernel, nfemu)\n"
        + "\n".join(f"{k}: {kernel[k]} vs {mine[k]}" for k in kernel if kernel[k] != mine[k])
        + "".join(f"\n{k}: only nfemu {v}" for k, v in extra.items()))


def run_case(text: str, pkts: list[Packet]) -> list[Packet]:
    """Load TEXT (filter table), check stored comparisons, counters, save output, then the
    same for its dump. Returns nothing useful; asserts."""
    from tests.kernel.netsim import Net, NetsimError

    try:
        ruleset = nfemu.loads(text)
    except RulesetErrors as e:
        refused = e
    else:
        refused = None
    datagrams = [p.to_bytes() for p in pkts]
    with Net() as net:
        try:
            net.load(text)
        except NetsimError as e:
            assert refused is not None, f"the kernel refused what nfemu loads:\n{text}{e}"
            return
        assert refused is None, f"nfemu refused what the kernel loads:\n{text}{refused}"
        rules = ruleset.table("filter").chain("INPUT").rules
        kernel_programs = stored_programs(listing(net))
        assert kernel_programs == [ours(r) for r in rules], (
            f"stored comparisons differ\n{text}kernel: {kernel_programs}\n"
            f"nfemu:  {[ours(r) for r in rules]}")
        net.send(datagrams)
        saved = save_c(net)
        compare(saved, nfemu_counters(ruleset, pkts), text, pkts)
        assert rule_lines(ruleset.save()) == rule_lines(saved), (
            f"save output differs\n{text}--- kernel\n{saved}--- nfemu\n{ruleset.save()}")

        # the dump, restored: what the kernel runs for the printed lines
        dump = without_counters(saved)
        try:
            dumped = nfemu.loads(dump)
        except RulesetErrors as e:
            dump_refused = e
        else:
            dump_refused = None
        try:
            net.load(dump)
        except NetsimError as e:
            assert dump_refused is not None, f"the kernel refused a dump nfemu loads:\n{dump}{e}"
            return
        assert dump_refused is None, f"nfemu refused a dump the kernel loads:\n{dump}{dump_refused}"
        kernel_programs = stored_programs(listing(net))
        mine = [ours(r) for r in dumped.table("filter").chain("INPUT").rules]
        assert kernel_programs == mine, (
            f"stored comparisons of the dump differ\n{dump}kernel: {kernel_programs}\n"
            f"nfemu:  {mine}")
        net.send(datagrams)
        compare(save_c(net), nfemu_counters(dumped, pkts), dump, pkts)


# ---- hand-written cases (tests/test_nftnative_eval.py) ----------------------------------

def test_eval_cases_vs_kernel(kernel):
    """The kernel counts for the cases of tests/test_nftnative_eval.py are the expectations
    written there (rules and dump), and the saved lines are the ones written there."""
    from tests.kernel.netsim import Net

    pkts = cases.all_packets()
    with Net() as net:
        net.load(cases.ruleset_text(saved=False))
        net.send([p.to_bytes() for p in pkts])
        saved = save_c(net)
        got = {k: v[0] for k, v in input_counters(saved).items() if k[2] is not None}
        assert got == cases.expected_counts(saved=False)
        printed = [re.sub(r"^-A INPUT -s \S+ ", "", line) for line in rule_lines(saved)]
        assert printed == [printed_line for _, printed_line, _ in cases.CASES]

        net.load(cases.ruleset_text(saved=True))
        net.send([p.to_bytes() for p in pkts])
        got = {k: v[0] for k, v in input_counters(save_c(net)).items() if k[2] is not None}
        assert got == cases.expected_counts(saved=True)
    run_case(cases.ruleset_text(saved=False), pkts)


def test_stored_comparisons_vs_kernel(kernel):
    """The ``nft --debug=netlink`` programs copied into tests/test_nftnative_eval.py PROGRAMS
    are what the kernel holds for those rules."""
    from tests.kernel.netsim import Net

    text = "*filter\n:INPUT DROP [0:0]\n" + "".join(
        f"-A INPUT {rule}\n" for rule, _ in cases.PROGRAMS) + "COMMIT\n"
    with Net() as net:
        net.load(text)
        assert stored_programs(listing(net)) == [program for _, program in cases.PROGRAMS]

# ---- generated rules ---------------------------------------------------------------------


PORTS = [0, 1, 2, 22, 23, 53, 1023, 1024, 65534, 65535]
FLAG_NAMES = ["FIN", "SYN", "RST", "PSH", "ACK", "URG"]
# flag sets conntrack takes as a new connection (tcp_new: SYN or, loose, ACK; ECE, CWR and
# PSH do not count), so that every packet reaches the filter table as ctstate NEW
TCP_FLAG_SETS = [TCP_SYN, TCP_ACK, TCP_SYN | TCP_URG, TCP_SYN | TCP_PSH, TCP_ACK | TCP_PSH,
                 TCP_ACK | TCP_URG, TCP_ACK | TCP_URG | TCP_PSH, TCP_SYN | TCP_ECE | TCP_CWR,
                 TCP_ACK | TCP_ECE]
neg = st.sampled_from(["", "", "! "])


@st.composite
def port_spec(draw, udp: bool) -> str:
    a = draw(st.sampled_from(PORTS))
    if draw(st.booleans()):
        return str(a)
    b = draw(st.sampled_from(PORTS))
    if not udp or draw(st.integers(0, 5)):
        a, b = min(a, b), max(a, b)          # libxt_tcp refuses min > max; libxt_udp not
    return f"{a}:{b}"


@st.composite
def flag_list(draw) -> str:
    names = draw(st.lists(st.sampled_from(FLAG_NAMES), max_size=3, unique=True))
    return draw(st.sampled_from(["ALL", "NONE"])) if not names or draw(st.integers(0, 7)) == 0 \
        else ",".join(names)


@st.composite
def one_match(draw, proto: str, plain_p: bool) -> str:
    """``-m tcp``/``-m udp`` with some of its options (an empty one or --tcp-option only when
    the rule says a plain -p: those stay xtables matches, which need it)."""
    parts = [f"-m {proto}"]
    for opt in ("sport", "dport"):
        if draw(st.booleans()):
            parts.append(f"{draw(neg)}--{opt} {draw(port_spec(proto == 'udp'))}")
    if proto == "tcp":
        flags = draw(st.integers(0, 5))
        if flags == 0:
            parts.append(f"{draw(neg)}--syn")
        elif flags == 1:
            parts.append(f"{draw(neg)}--tcp-flags {draw(flag_list())} {draw(flag_list())}")
        if plain_p and draw(st.integers(0, 7)) == 0:
            parts.append(f"{draw(neg)}--tcp-option {draw(st.sampled_from([2, 3, 4, 8]))}")
    if len(parts) == 1 and not plain_p:
        parts.append(f"! --sport {draw(port_spec(proto == 'udp'))}")
    return " ".join(parts)


@st.composite
def rule(draw) -> str:
    proto = draw(st.sampled_from(["tcp", "udp"]))
    plain_p = draw(st.integers(0, 4)) > 0
    parts = [f"{'' if plain_p else '! '}-p {proto}"]
    for i in range(draw(st.integers(1, 3))):
        parts.append(draw(one_match(proto, plain_p)))
        if draw(st.integers(0, 5)) == 0:
            parts.append(f"-m comment --comment c{i}")
    return "-A INPUT " + " ".join(parts)


@st.composite
def ruleset_text(draw) -> str:
    rules = draw(st.lists(rule(), min_size=1, max_size=8))
    return "\n".join(["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]",
                      ":OUTPUT ACCEPT [0:0]", *rules, "COMMIT"]) + "\n"


@st.composite
def packet(draw) -> Packet:
    common = {"src": nfemu.host.ip4(draw(st.sampled_from(["192.168.50.1", "10.1.2.3"]))),
              "dst": nfemu.host.ip4(NODE_IP), "ttl": 64,
              "ip_id": draw(st.integers(1, 0xFFFF))}
    proto = draw(st.sampled_from([TCP, TCP, UDP, UDP, ICMP]))
    if proto == ICMP:
        payload = bytes(draw(st.lists(st.sampled_from([0, 1, 2, 0x12, 0x17, 0xFF]),
                                      max_size=12)))
        return Packet(**common, proto=ICMP, icmp_type=8, icmp_code=0,
                      icmp_rest=draw(st.integers(0, 0xFFFF)) << 16 | 1, payload=payload)
    port = st.one_of(st.sampled_from(PORTS + [21, 24, 3, 80, 1025]), st.integers(0, 0xFFFF))
    sport, dport = draw(port), draw(port)
    if proto == TCP:
        options = draw(st.sampled_from([b"", cases.MSS, bytes([4, 2, 1, 1]), bytes([3, 3, 7, 1])]))
        return Packet(**common, proto=TCP, sport=sport, dport=dport,
                      tcp_flags=draw(st.sampled_from(TCP_FLAG_SETS)), tcp_options=options,
                      tcp_seq=draw(st.integers(0, 2**32 - 1)), tcp_window=64240)
    return Packet(**common, proto=UDP, sport=sport, dport=dport,
                  payload=bytes(draw(st.integers(0, 16))))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=ruleset_text(), pkts=st.lists(packet(), min_size=1, max_size=16))
def test_generated_vs_kernel(kernel, text, pkts):
    run_case(text, pkts)
