"""dscp, tos, ttl, ecn, length, tcpmss, esp, ah, string, u32, helper, quota, hashlimit, limit,
time, connlimit, devgroup and rpfilter against the real kernel.

Each case loads a ruleset into a fresh ``node`` namespace (tests/kernel/netsim.py), sends new
connections from the ``peer`` (or ``peer2``) and compares every rule and policy counter of
``iptables-save -c`` with nfemu's (``Node.trace(pkt, iface=...)``, node.counters), packets and
bytes. The rules carry no target or a non-terminal one, so every rule's counter says whether
its matches held. With iptables-nft 1.8.9 every match here but ``-m limit`` runs as the
kernel's xtables match (nft_compat); ``-m limit`` is nft_limit.

Stateful matches (quota, hashlimit, limit) see the packets in order: the sender is pinned to
one CPU, so the node handles them in the order sent. A batch is sent in a few milliseconds,
so nfemu gives every packet of a batch the same time (``ev.now`` 0): the rates used refill
no whole token in a second (1/sec and slower, byte rates of 16 and 32 bytes/s), so what the
kernel's jiffies or nanoseconds add during a batch changes no answer. ``-m time`` reads the
kernel's wall clock: nfemu is given the time of sending and the rules keep their boundaries
minutes away from it. ``-m connlimit`` is compared where nfemu's single-packet view holds
(each address group meets one connection per rule). Device groups are set on the node with
``ip link set DEV group N`` and given to nfemu through interfaces that carry a ``group``.

Examples: NFEMU_KERNEL_EXAMPLES (default 1000) / 50 for the header and payload rulesets,
/ 100 for string, u32, rate and connlimit cases, / 200 for time cases, besides fixed cases.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import struct
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfemu
import nfemu.errors
from nfemu.engine import sampler
from nfemu.ext.conntrack import CtState
from nfemu.host import Host, Interface, ip4
from nfemu.node import Node
from nfemu.packet import ICMP, TCP, TCP_SYN, UDP, Packet

KERNEL_EXAMPLES = int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000"))
HEADER_EXAMPLES = max(1, KERNEL_EXAMPLES // 50)
FUZZ_EXAMPLES = max(1, KERNEL_EXAMPLES // 100)
TIME_EXAMPLES = max(1, KERNEL_EXAMPLES // 200)

NODE_IP = "192.168.50.2"
NODE_IP1 = "10.50.0.1"
SOURCES = ["192.168.50.1", "192.168.50.7", "192.168.50.200", "10.1.2.3", "10.1.9.9",
           "172.16.5.5", "172.16.77.1"]
ESP, AH = 50, 51
WORDS = [b"GET", b"get", b"HTTP/1.1", b"abc", b"ab", b"\xdf", b"\xbf", b"\x00\x01", b"Zz"]

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.function_scoped_fixture])

# ---- running a case ----------------------------------------------------------------------


@contextlib.contextmanager
def one_cpu():
    """Pin this process, and so the sender it starts, to one CPU: one per-CPU backlog on the
    node, which then handles the packets in the order they were sent."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def trace_at(node: Node, pkt: Packet, iface: str, now: float):
    """``node.trace(pkt, iface=iface)`` with the evaluation time set to ``now`` (Node.trace
    has no parameter for it)."""
    trav = node._traversal(pkt, iface, False, CtState.NEW, sampler(node.rng), node.state,
                           node.counters)
    trav.ev.now = now
    return trav.run()


@dataclasses.dataclass
class Batch:
    packets: list[Packet]
    iface: str = "eth0"              # eth0: from the peer; eth1: from peer2


def conn_key(p: Packet) -> tuple:
    """What makes a packet a new conntrack entry: ports for tcp/udp, the echo id for icmp,
    the addresses alone for protocols conntrack tracks generically (esp, ah)."""
    if p.proto in (TCP, UDP):
        return (p.proto, p.src, p.dst, p.sport, p.dport)
    if p.proto == ICMP:
        return (p.proto, p.src, p.dst, p.icmp_rest >> 16)
    return (p.proto, p.src, p.dst)


def run_case(text: str, batches: list[Batch], host: Host | None = None,
             net_kw: dict | None = None, now: float | None = None, setup=None) -> None:
    """Load TEXT into the node (after ``setup(net)``), send the batches, trace the same
    packets through nfemu at time ``now`` (seconds; ``"wall"``: the wall clock when the
    packets are sent) and compare every counter."""
    from tests.kernel.netsim import Net, kernel_counters

    keys = [conn_key(p) for b in batches for p in b.packets]
    assert len(keys) == len(set(keys)), "every packet must be a new connection"
    host = host or Host.from_options([f"eth0={NODE_IP}/24"], ip_forward=False)
    node = Node(nfemu.loads(text), host, seed=1)
    with Net(**(net_kw or {})) as net, one_cpu():
        if setup is not None:
            setup(net)
        net.load(text)
        when = time.time() if now == "wall" else (now or 0.0)
        for b in batches:
            net.send([p.to_bytes() for p in b.packets], from_peer2=b.iface == "eth1")
        saved = net.save()
    for b in batches:
        for p in b.packets:
            trace_at(node, Packet.from_bytes(p.to_bytes()), b.iface, when)
    kernel = kernel_counters(saved.ruleset)
    ours = {k: node.counters.get(k, (0, 0)) for k in kernel}
    extra = {k: v for k, v in node.counters.items() if k not in kernel and v != (0, 0)}
    sent = "\n".join(f"[{b.iface}] " + p.describe() + f" tos={p.tos:#x} ttl={p.ttl} "
                     f"len={p.length} payload={p.payload!r}"
                     for b in batches for p in b.packets)
    assert ours == kernel and not extra, (
        f"counters differ\n--- rules\n{text}--- packets\n{sent}\n--- kernel\n{saved.text}"
        "--- differing (kernel, nfemu)\n"
        + "\n".join(f"{k}: {kernel[k]} vs {ours[k]}" for k in kernel if kernel[k] != ours[k])
        + "".join(f"\n{k}: only nfemu {v}" for k, v in extra.items()))


def filter_input(rules: list[str], policy: str = "ACCEPT", mangle: list[str] = ()) -> str:
    lines = ["*mangle", ":PREROUTING ACCEPT [0:0]"]
    lines += [f"-A PREROUTING {r}" for r in mangle]
    lines += ["COMMIT", "*filter", f":INPUT {policy} [0:0]", ":FORWARD ACCEPT [0:0]",
              ":OUTPUT ACCEPT [0:0]"]
    lines += [f"-A INPUT {r}" for r in rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def hex_arg(pattern: bytes) -> str:
    return f'--hex-string "|{pattern.hex()}|"'

# ---- header and payload matches -----------------------------------------------------------


neg = st.sampled_from(["", "! "])


@st.composite
def string_match(draw) -> str:
    pattern = draw(st.sampled_from(WORDS)) if draw(st.booleans()) else \
        draw(st.binary(min_size=1, max_size=4).map(lambda b: bytes(c % 4 + 0x61 for c in b)))
    algo = draw(st.sampled_from(["bm", "kmp"]))
    parts = [f"-m string --algo {algo} {draw(neg)}{hex_arg(pattern)}"]
    if draw(st.booleans()):
        parts.append(f"--from {draw(st.integers(0, 60))}")
    if draw(st.booleans()):
        parts.append(f"--to {draw(st.integers(61, 120))}")
    if draw(st.booleans()):
        parts.append("--icase")
    return " ".join(parts)


@st.composite
def u32_match(draw) -> str:
    first = draw(st.sampled_from(["0", "4", "6", "8", "12", "16", "20", "24", "28", "40"]))
    ops = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["&", "<<", ">>", "@"]))
        if op == "&":
            n = draw(st.sampled_from([0xFF, 0xFFFF, 0x3C, 0x1FFF, 0xFF000000, 0x80000000]))
        elif op in ("<<", ">>"):
            n = draw(st.sampled_from([0, 1, 8, 16, 22, 24, 28, 31]))
        else:
            n = draw(st.sampled_from([0, 2, 4, 8, 20]))
        ops.append(f"{op}{n:#x}")
    loc = first + "".join(ops)
    lo = draw(st.sampled_from([0, 1, 6, 17, 0x40, 0x45000000, 0x80000000]))
    hi = lo + draw(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0x3FFFFFFF]))
    value = f"{lo:#x}" if lo == hi else f"{lo:#x}:{min(hi, 0xFFFFFFFF):#x}"
    return f'-m u32 {draw(neg)}--u32 "{loc}={value}"'


@st.composite
def condition(draw) -> str:
    kind = draw(st.sampled_from(["dscp", "tos", "ttl", "ecn", "length", "tcpmss", "string",
                                 "u32", "helper", "esp", "quota", "two"]))
    if kind == "two":                       # two matches in one rule (one -p at most)
        first, second = draw(condition()), draw(condition())
        return first if "-p " in first and "-p " in second else f"{first} {second}"
    if kind == "dscp":
        if draw(st.booleans()):
            return f"-m dscp {draw(neg)}--dscp {draw(st.sampled_from([0, 8, 10, 46, 63]))}"
        return f"-m dscp {draw(neg)}--dscp-class {draw(st.sampled_from(['EF', 'AF11', 'CS1']))}"
    if kind == "tos":
        value = draw(st.sampled_from(["0x10", "0x10/0x3f", "0x3/0x3", "0x0/0xfc",
                                      "Minimize-Cost", "0xb8/0xfc"]))
        return f"-m tos {draw(neg)}--tos {value}"
    if kind == "ttl":
        n = draw(st.sampled_from([1, 63, 64, 65, 128, 255]))
        form = draw(st.sampled_from(["--ttl-eq", "! --ttl-eq", "--ttl-lt", "--ttl-gt"]))
        return f"-m ttl {form} {n}"
    if kind == "ecn":
        parts = []
        proto = ""
        if draw(st.booleans()):
            proto = "-p tcp "
            for opt in ("--ecn-tcp-ece", "--ecn-tcp-cwr"):
                if draw(st.booleans()):
                    parts.append(f"{draw(neg)}{opt}")
        if not parts or draw(st.booleans()):
            parts.append(f"{draw(neg)}--ecn-ip-ect {draw(st.integers(0, 3))}")
        return f"{proto}-m ecn {' '.join(parts)}"
    if kind == "length":
        a = draw(st.integers(20, 120))
        b = draw(st.integers(a, 140))
        return f"-m length {draw(neg)}--length {a}:{b}"
    if kind == "tcpmss":
        a = draw(st.sampled_from([0, 536, 1000, 1460, 1461]))
        b = draw(st.sampled_from([x for x in (536, 1000, 1460, 9000, 65535) if x >= a]))
        return f"-p tcp -m tcpmss {draw(neg)}--mss {a}:{b}"
    if kind == "string":
        return draw(string_match())
    if kind == "u32":
        return draw(u32_match())
    if kind == "helper":
        return f"-m helper {draw(neg)}--helper {draw(st.sampled_from(['ftp', 'sip', 'f']))}"
    if kind == "esp":
        a = draw(st.sampled_from([0, 100, 256, 70000]))
        b = draw(st.sampled_from([x for x in (100, 300, 70000, 4294967295) if x >= a]))
        name = draw(st.sampled_from(["esp", "ah"]))
        return f"-p {name} -m {name} {draw(neg)}--{name}spi {a}:{b}"
    return f"-m quota {draw(neg)}--quota {draw(st.sampled_from([0, 60, 200, 500]))}"


@st.composite
def header_rules(draw) -> tuple[str, ...]:
    return tuple(draw(st.lists(condition(), min_size=1, max_size=8)))


@st.composite
def payload(draw) -> bytes:
    parts = draw(st.lists(st.sampled_from(WORDS + [b" ", b"x", b"\x00" * 4]), max_size=10))
    return b"".join(parts)


@st.composite
def mss_options(draw) -> bytes:
    if draw(st.integers(0, 3)) == 0:
        return b""
    lead = bytes([1]) * draw(st.integers(0, 3))
    mss = draw(st.sampled_from([536, 1000, 1460, 1461, 8960]))
    return lead + bytes([2, 4]) + mss.to_bytes(2, "big")


@st.composite
def packet(draw, src: str) -> Packet:
    proto = draw(st.sampled_from([TCP, TCP, UDP, UDP, ICMP, ESP, AH]))
    common = dict(src=ip4(src), dst=ip4(NODE_IP), proto=proto, tos=draw(st.integers(0, 255)),
                  ttl=draw(st.sampled_from([1, 2, 63, 64, 65, 128, 255])),
                  ip_id=draw(st.integers(1, 0xFFFF)))
    data = draw(payload())
    if proto == TCP:
        flags = TCP_SYN | draw(st.sampled_from([0, 0x40, 0x80, 0xC0]))
        return Packet(**common, sport=draw(st.integers(1024, 65535)),
                      dport=draw(st.sampled_from([22, 80, 443])), tcp_flags=flags,
                      tcp_options=draw(mss_options()), tcp_window=64240, payload=data)
    if proto == UDP:
        return Packet(**common, sport=draw(st.integers(1024, 65535)),
                      dport=draw(st.sampled_from([53, 123, 5000])), payload=data)
    if proto == ICMP:
        return Packet(**common, icmp_type=8, icmp_rest=draw(st.integers(0, 0xFFFF)) << 16 | 1,
                      payload=data)
    spi = draw(st.sampled_from([5, 100, 256, 300, 70000]))
    if proto == ESP:
        return Packet(**common, payload=struct.pack("!II", spi, 1) + data)
    return Packet(**common, payload=struct.pack("!BBHII", 59, 4, 0, spi, 1) + bytes(12))


@st.composite
def packets(draw) -> list[Packet]:
    out, seen = [], set()
    for _ in range(draw(st.integers(1, 12))):
        p = draw(packet(draw(st.sampled_from(SOURCES))))
        if conn_key(p) not in seen:
            seen.add(conn_key(p))
            out.append(p)
    return out


@settings(max_examples=HEADER_EXAMPLES, **SETTINGS)
@given(rules=header_rules(), mangle=header_rules(), pkts=packets(),
       targets=st.lists(st.sampled_from(["", "", "", " -j ACCEPT", " -j MARK --set-mark 1"]),
                        min_size=8, max_size=8))
def test_header_and_payload_matches(kernel, rules, mangle, pkts, targets):
    """Rules over dscp, tos, ttl, ecn, length, tcpmss, string, u32, helper, esp/ah and quota
    in filter INPUT and mangle PREROUTING, against TCP SYNs with and without MSS options and
    ECN flags, UDP, ICMP echo, ESP and AH packets of every TOS and various TTLs."""
    text = filter_input([r + t for r, t in zip(rules, targets)],
                        mangle=[r + (" -j MARK --set-mark 2" if t else "")
                                for r, t in zip(mangle, targets)])
    run_case(text, [Batch(pkts)])


def test_header_matches_fixed(kernel):
    """A hand-written case touching each match with both outcomes."""
    rules = ["-m dscp --dscp 10", "-m dscp ! --dscp-class EF", "-m tos --tos 0x10/0x3f",
             "-m tos --tos Minimize-Cost", "-m ttl --ttl-lt 64", "-m ttl ! --ttl-eq 64",
             "-m ecn --ecn-ip-ect 1", "-p tcp -m ecn --ecn-tcp-ece ! --ecn-tcp-cwr",
             "-m length --length 40:60", "-p tcp -m tcpmss --mss 1000:1460",
             "-p tcp -m tcpmss ! --mss 1000:1460",
             '-m string --algo bm --string "HTTP"', '-m string --algo kmp --string "http" --icase',
             '-m string --algo bm --string "abc" --from 40 --to 50',
             '-m u32 --u32 "0>>22&0x3C@0&0xFFFF=53"', '-m u32 --u32 "0<<31=0x80000000"',
             "-m helper --helper ftp", "-m helper ! --helper ftp",
             "-p esp -m esp --espspi 256:511", "-p ah -m ah ! --ahspi 300",
             "-m quota --quota 150", "-m quota ! --quota 150"]
    src = ip4
    pkts = [
        Packet(src=src("192.168.50.1"), dst=src(NODE_IP), proto=TCP, sport=1000, dport=80,
               tcp_flags=TCP_SYN | 0x40, tcp_options=bytes([1, 1, 2, 4, 5, 0xB4]), tos=0x29,
               ttl=63, payload=b"GET / HTTP/1.1", ip_id=0x1111),
        Packet(src=src("192.168.50.1"), dst=src(NODE_IP), proto=TCP, sport=1001, dport=80,
               tcp_flags=TCP_SYN | 0xC0, tcp_options=bytes([2, 4, 0x23, 0x28]), tos=0xB8,
               ttl=64, payload=b"xx abc", ip_id=0x2222),
        Packet(src=src("10.1.2.3"), dst=src(NODE_IP), proto=UDP, sport=5000, dport=53,
               tos=0x12, ttl=1, payload=b"get http", ip_id=0x3333),
        Packet(src=src("10.1.2.3"), dst=src(NODE_IP), proto=ESP, tos=0x10,
               payload=struct.pack("!II", 300, 1), ip_id=0x4444),
        Packet(src=src("10.1.9.9"), dst=src(NODE_IP), proto=AH,
               payload=struct.pack("!BBHII", 59, 4, 0, 300, 1) + bytes(12), ip_id=0x5555),
        Packet(src=src("172.16.5.5"), dst=src(NODE_IP), proto=ICMP, icmp_type=8,
               icmp_rest=7 << 16 | 1, payload=b"abcabc" * 10, ip_id=0x6666),
    ]
    run_case(filter_input(rules), [Batch(pkts)])


# ---- string and u32 fuzzing ---------------------------------------------------------------

ALPHABET = b"abA\xdf\xbf"


@st.composite
def fuzz_string_rules(draw) -> list[str]:
    out = []
    for _ in range(draw(st.integers(5, 25))):
        pattern = bytes(draw(st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=5)))
        algo = draw(st.sampled_from(["bm", "bm", "kmp"]))
        rule = f"-m string --algo {algo} {hex_arg(pattern)} --from 28"
        if draw(st.booleans()):
            rule += f" --to {draw(st.integers(29, 60))}"
        if draw(st.booleans()):
            rule += " --icase"
        out.append(rule)
    return out


@settings(max_examples=FUZZ_EXAMPLES, **SETTINGS)
@given(rules=fuzz_string_rules(), payloads=st.lists(
    st.lists(st.sampled_from(ALPHABET), max_size=30).map(bytes), min_size=1, max_size=15))
def test_string_search_like_the_kernel(kernel, rules, payloads):
    """Patterns and UDP payloads over a + b + A + 0xDF + 0xBF: the kernel's Boyer-Moore with its
    shift tables and Latin-1 case folding (toupper(0xDF) = 0xBF; bad-shift by the raw byte)
    misses some occurrences with --icase; KMP does not."""
    pkts = [Packet(src=ip4("192.168.50.1"), dst=ip4(NODE_IP), proto=UDP, sport=2000 + i,
                   dport=9, payload=data) for i, data in enumerate(payloads)]
    run_case(filter_input(rules), [Batch(pkts)])


def test_string_bm_icase_misses_like_the_kernel(kernel):
    """Worked by hand in tests/eval/test_matches_extra.py: bm --icase "ßa" misses "xßa"."""
    pattern = hex_arg(b"\xdfa")
    rules = [f"-m string --algo {a} {pattern} --icase --from 28" for a in ("bm", "kmp")]
    pkts = [Packet(src=ip4("192.168.50.1"), dst=ip4(NODE_IP), proto=UDP, sport=2000 + i,
                   dport=9, payload=data)
            for i, data in enumerate((b"x\xdfa", b"\xdfa", b"x\xbfa"))]
    run_case(filter_input(rules), [Batch(pkts)])


@settings(max_examples=FUZZ_EXAMPLES, **SETTINGS)
@given(rules=st.lists(u32_match(), min_size=5, max_size=20), pkts=packets())
def test_u32_like_the_kernel(kernel, rules, pkts):
    """Locations with &, <<, >>, @ and reads past the end."""
    run_case(filter_input(rules), [Batch(pkts)])


def test_u32_shift_above_31_refused(kernel):
    """Current kernels refuse a shift count above 31 (xt_u32: reject invalid shift counts);
    nfemu's load check says so too."""
    from tests.kernel.netsim import Net, NetsimError

    text = filter_input(['-m u32 --u32 "0<<32=0"'])
    with pytest.raises(nfemu.errors.RulesetErrors):
        nfemu.loads(text)
    with Net() as net, pytest.raises(NetsimError, match="Invalid argument"):
        net.load(text)
    net_ok = filter_input(['-m u32 --u32 "0<<31=0"'])
    nfemu.loads(net_ok)
    with Net() as net:
        net.load(net_ok)


# ---- rates: quota, hashlimit, limit -------------------------------------------------------

@st.composite
def rate_rule(draw, name: str) -> str:
    kind = draw(st.sampled_from(["hashlimit", "hashlimit", "bytes", "limit", "quota"]))
    if kind == "limit":
        return (f"-m limit --limit {draw(st.sampled_from(['1/sec', '2/min', '3/hour']))} "
                f"--limit-burst {draw(st.integers(1, 6))}")
    if kind == "quota":
        return f"-m quota {draw(neg)}--quota {draw(st.integers(0, 400))}"
    above = draw(st.sampled_from(["--hashlimit-upto", "--hashlimit-above"]))
    parts = [f"-m hashlimit {above}"]
    if kind == "bytes":
        rate = draw(st.sampled_from(["16b/s", "32b/s"]))
        parts.append(rate)
        if draw(st.booleans()):
            parts.append(f"--hashlimit-burst {draw(st.sampled_from([32, 64, 100]))}b")
    else:
        rate = draw(st.sampled_from(["1/sec", "5/min", "2/hour", "1/day"]))
        # 1/day with a burst above 1 overflows the kernel's 64-bit credits: refused (ERANGE)
        burst = 1 if rate == "1/day" else draw(st.integers(1, 5))
        parts.append(f"{rate} --hashlimit-burst {burst}")
    modes = draw(st.lists(st.sampled_from(["srcip", "srcport", "dstip", "dstport"]),
                          unique=True, max_size=3))
    if modes:
        parts.append(f"--hashlimit-mode {','.join(modes)}")
    if "srcip" in modes and draw(st.booleans()):
        parts.append(f"--hashlimit-srcmask {draw(st.sampled_from([8, 16, 24]))}")
    parts.append(f"--hashlimit-name {name}")
    return " ".join(parts)


@st.composite
def rate_case(draw) -> tuple[list[str], list[list[Packet]]]:
    names = ["h1", "h2", "h3"]
    rules = [draw(rate_rule(draw(st.sampled_from(names)))) for _ in range(draw(st.integers(1, 6)))]
    # one hashlimit table per name: the first rule naming it decides the configuration in
    # both kernel and nfemu, but keep the names unique to compare rules independently
    seen, unique = set(), []
    for i, r in enumerate(rules):
        name = r.rsplit(" ", 1)[-1] if "--hashlimit-name" in r else None
        if name in seen:
            r = r.replace(f"--hashlimit-name {name}", f"--hashlimit-name u{i}")
        seen.add(name)
        unique.append(r)
    batches = []
    sport = 3000
    for _ in range(draw(st.integers(1, 2))):
        batch = []
        for _ in range(draw(st.integers(1, 14))):
            src = draw(st.sampled_from(SOURCES[:4]))
            size = draw(st.sampled_from([0, 10, 60, 200]))
            proto = draw(st.sampled_from([UDP, TCP]))
            sport += 1
            kw = dict(src=ip4(src), dst=ip4(NODE_IP), proto=proto, sport=sport,
                      dport=draw(st.sampled_from([53, 80])), payload=bytes(size))
            if proto == TCP:
                kw["tcp_flags"] = TCP_SYN
            batch.append(Packet(**kw))
        batches.append(batch)
    return unique, batches


@settings(max_examples=FUZZ_EXAMPLES, **SETTINGS)
@given(case=rate_case())
def test_rates_like_the_kernel(kernel, case):
    """quota across packets, hashlimit buckets per key (packet and byte mode), limit bursts:
    each batch arrives within milliseconds; nfemu takes the packets as simultaneous."""
    rules, batches = case
    run_case(filter_input(rules), [Batch(b) for b in batches])


def test_rates_fixed(kernel):
    rules = ["-m quota --quota 200", "-m quota ! --quota 200",
             ("-m hashlimit --hashlimit-upto 1/sec --hashlimit-burst 3 --hashlimit-mode srcip "
              "--hashlimit-name a"),
             ("-m hashlimit --hashlimit-above 1/min --hashlimit-burst 2 --hashlimit-mode "
              "srcip,dstport --hashlimit-srcmask 16 --hashlimit-name b"),
             "-m hashlimit --hashlimit-upto 16b/s --hashlimit-burst 48b --hashlimit-name c",
             "-m limit --limit 1/sec --limit-burst 4"]
    pkts = [Packet(src=ip4(SOURCES[i % 3]), dst=ip4(NODE_IP), proto=UDP, sport=4000 + i,
                   dport=53 if i % 2 else 80, payload=bytes(i * 7)) for i in range(12)]
    run_case(filter_input(rules), [Batch(pkts)])


# ---- time ----------------------------------------------------------------------------------

@st.composite
def time_rule(draw) -> tuple:
    """Offsets from the time of sending, in minutes, kept away from it (+-3 minutes and
    more), and day sets; turned into a rule when the case runs."""
    parts = {}
    if draw(st.booleans()):
        away = st.one_of(st.integers(-700, -3), st.integers(3, 700))
        parts["daytime"] = (draw(away), draw(away), draw(st.booleans()))
    if draw(st.booleans()):
        parts["weekdays"] = (draw(st.lists(st.integers(1, 7), min_size=1, max_size=6,
                                           unique=True)), draw(st.booleans()))
    if draw(st.booleans()):
        parts["monthdays"] = (draw(st.lists(st.integers(1, 31), min_size=1, max_size=20,
                                            unique=True)), draw(st.booleans()))
    if draw(st.booleans()):
        parts["dates"] = (draw(st.integers(-30, 30)), draw(st.integers(-30, 30)))
    return tuple(sorted(parts.items()))


def time_rule_text(spec: tuple, now: float) -> str:
    t = datetime.datetime.fromtimestamp(now, datetime.UTC)
    out = ["-m time"]
    for key, value in spec:
        if key == "daytime":
            a, b, contiguous = value
            start = (t + datetime.timedelta(minutes=a)).strftime("%H:%M")
            stop = (t + datetime.timedelta(minutes=b)).strftime("%H:%M")
            out.append(f"--timestart {start} --timestop {stop}")
            if contiguous and stop < start:
                out.append("--contiguous")
        elif key == "weekdays":
            days, inv = value
            out.append(f"{'! ' if inv else ''}--weekdays {','.join(map(str, days))}")
        elif key == "monthdays":
            days, inv = value
            out.append(f"{'! ' if inv else ''}--monthdays {','.join(map(str, days))}")
        else:
            a, b = sorted(value)
            fmt = "%Y-%m-%dT%H:%M:%S"
            start = (t + datetime.timedelta(days=a, minutes=-5 if a == 0 else 0)).strftime(fmt)
            stop = (t + datetime.timedelta(days=b, minutes=5 if b == 0 else 0)).strftime(fmt)
            out.append(f"--datestart {start} --datestop {stop}")
    if len(out) == 1:
        out.append("--weekdays Mon,Tue,Wed,Thu,Fri,Sat,Sun")
    return " ".join(out)


@settings(max_examples=TIME_EXAMPLES, **SETTINGS)
@given(specs=st.lists(time_rule(), min_size=4, max_size=12))
def test_time_like_the_kernel(kernel, specs):
    """-m time against the node's wall clock (UTC): nfemu evaluates at the time of sending;
    every time-of-day and date boundary of the rules is minutes away from it."""
    now = time.time()
    rules = [time_rule_text(spec, now) for spec in specs]
    pkts = [Packet(src=ip4("192.168.50.1"), dst=ip4(NODE_IP), proto=UDP, sport=6000 + i,
                   dport=53) for i in range(3)]
    run_case(filter_input(rules), [Batch(pkts)], now="wall")


# ---- connlimit -----------------------------------------------------------------------------

@settings(max_examples=FUZZ_EXAMPLES, **SETTINGS)
@given(limits=st.lists(st.tuples(st.sampled_from(["above", "upto"]), st.integers(0, 2), neg),
                       min_size=1, max_size=6),
       plen=st.sampled_from([32, 24, 16]), daddr=st.booleans(),
       groups=st.lists(st.integers(1, 200), min_size=1, max_size=6, unique=True))
def test_connlimit_single_connection_per_group(kernel, limits, plen, daddr, groups):
    """Each address group (under the rule's mask) meets one connection: the kernel counts 1,
    which is nfemu's single-packet view. With --connlimit-daddr the groups are destinations
    in mangle PREROUTING (before routing drops what is not for the node)."""
    side = "daddr" if daddr else "saddr"
    rules = [f"-m connlimit {inv}--connlimit-{kind} {n} --connlimit-mask {plen} "
             f"--connlimit-{side}" for kind, n, inv in limits]
    step = {32: 1, 24: 256, 16: 65536}[plen]
    base = ip4("172.16.0.0") if daddr else ip4("10.0.0.0")
    pkts = []
    for i, g in enumerate(groups):
        addr = base + g * step + 1
        src, dst = (ip4("192.168.50.1"), addr) if daddr else (addr, ip4(NODE_IP))
        pkts.append(Packet(src=src, dst=dst, proto=UDP, sport=7000 + i, dport=53))
    text = filter_input([], mangle=rules) if daddr else filter_input(rules)
    run_case(text, [Batch(pkts)])


# ---- rpfilter ------------------------------------------------------------------------------

RPF_OPTIONS = ["", "--loose", "--accept-local", "--loose --accept-local", "--invert",
               "--loose --invert", "--accept-local --invert", "--validmark",
               "--loose --validmark --accept-local --invert"]


@pytest.mark.parametrize("default_route", [False, True])
def test_rpfilter_spoofed_sources(kernel, default_route):
    """rpfilter in raw and mangle PREROUTING on a node with eth0 (192.168.50.2/24) and eth1
    (10.50.0.1/24), with and without a default route through eth1: sources on eth0's subnet,
    eth1's subnet, the node's own addresses, its subnet broadcast, loopback addresses and an
    address reached only by the default route, arriving on eth0 and on eth1."""
    rules = [f"-m rpfilter {o}".strip() for o in RPF_OPTIONS]
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "".join(f"-A PREROUTING {r}\n" for r in rules) + "COMMIT\n"
            + filter_input([], mangle=rules))
    # (a source 0.0.0.0 cannot be sent: the peer's raw socket fills it in)
    spoofed = ["192.168.50.1", "192.168.50.9", "10.50.0.7", NODE_IP, "192.168.50.255",
               "127.0.0.1", "127.0.0.9", "8.8.8.8", NODE_IP1]
    on0 = [Packet(src=ip4(s), dst=ip4(NODE_IP), proto=UDP, sport=8000 + i, dport=53)
           for i, s in enumerate(spoofed)]
    on1 = [Packet(src=ip4(s), dst=ip4(NODE_IP1), proto=UDP, sport=8100 + i, dport=53)
           for i, s in enumerate(["10.50.0.2", "10.50.0.99", "192.168.50.1", "8.8.4.4"])]
    host = Host.from_options([f"eth0={NODE_IP}/24", f"eth1={NODE_IP1}/24"],
                             default_gateway="10.50.0.2" if default_route else None)
    run_case(text, [Batch(on0), Batch(on1, iface="eth1")], host=host,
             net_kw={"forward": True, "default_route": default_route})


# ---- devgroup ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class GroupInterface(Interface):
    """An interface with its device group (``ip link set DEV group N``)."""

    group: int = 0


def with_groups(host: Host, groups: dict[str, int]) -> Host:
    ifaces = tuple(GroupInterface(**{f.name: getattr(i, f.name)
                                     for f in dataclasses.fields(Interface)},
                                  group=groups.get(i.name, 0))
                   for i in host.interfaces)
    return Host(ifaces, host.routes, host.ip_forward)


def test_devgroup_input_and_forward(kernel):
    """--src-group in INPUT and FORWARD, --dst-group in FORWARD, with masks and !, on a node
    whose eth0 is in group 5 and eth1 in group 0x13 (lo stays in group 0)."""
    groups = {"eth0": 5, "eth1": 0x13}
    specs = ["--src-group 5", "! --src-group 5", "--src-group 0x1/0x1", "--src-group default",
             "--src-group 0x13", "--src-group 0x3/0xf"]
    fwd = specs + ["--dst-group 0x13", "! --dst-group 0x13", "--dst-group 5",
                   "--src-group 5 --dst-group 0x3/0xf", "--src-group 0x13 ! --dst-group 5"]
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "".join(f"-A INPUT -m devgroup {s}\n" for s in specs)
            + "".join(f"-A FORWARD -m devgroup {s}\n" for s in fwd) + "COMMIT\n")
    host = with_groups(Host.from_options([f"eth0={NODE_IP}/24", f"eth1={NODE_IP1}/24"]),
                       groups)

    def setup(net):
        for dev, g in groups.items():
            subprocess.run(["ip", "netns", "exec", net.node, "ip", "link", "set", dev,
                            "group", str(g)], check=True)

    there = [Packet(src=ip4("192.168.50.1"), dst=ip4(d), proto=UDP, sport=9000 + i, dport=53)
             for i, d in enumerate([NODE_IP, "10.50.0.2", NODE_IP1])]
    back = [Packet(src=ip4("10.50.0.2"), dst=ip4(d), proto=UDP, sport=9100 + i, dport=53)
            for i, d in enumerate(["192.168.50.1", NODE_IP1])]
    run_case(text, [Batch(there), Batch(back, iface="eth1")], host=host,
             net_kw={"forward": True}, setup=setup)


# ---- TTL in FORWARD -----------------------------------------------------------------------

def test_ttl_in_forward_is_decremented(kernel):
    """ip_forward() decrements the TTL before the FORWARD hook: a packet sent with TTL 64
    matches --ttl-eq 63 in FORWARD and POSTROUTING. The kernel's side is checked first (a
    failure there is an error, not the expected failure); then nfemu's."""
    from tests.kernel.netsim import Net, kernel_counters

    text = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -m ttl --ttl-eq 64\n-A FORWARD -m ttl --ttl-eq 63\n"
            "-A POSTROUTING -m ttl --ttl-eq 63\nCOMMIT\n")
    pkt = Packet(src=ip4("192.168.50.1"), dst=ip4("10.50.0.2"), proto=UDP, sport=9500,
                 dport=53, ttl=64)
    with Net(forward=True) as net:
        net.load(text)
        net.send([pkt.to_bytes()])
        kernel_side = kernel_counters(net.save().ruleset)
    hits = [kernel_side[("mangle", c, 0)][0] for c in ("PREROUTING", "FORWARD", "POSTROUTING")]
    if hits != [1, 1, 1]:
        raise RuntimeError(f"the kernel did not count as expected: {hits}")
    node = Node(nfemu.loads(text),
                Host.from_options([f"eth0={NODE_IP}/24", f"eth1={NODE_IP1}/24"]), seed=1)
    node.trace(pkt, iface="eth0")
    assert {k: node.counters.get(k, (0, 0)) for k in kernel_side} == kernel_side
