"""Stateful replay against the kernel (issue 4 item 5): the same capture through a kernel
node and through ``Node.replay``, then every counter, the conntrack table, the packets the
node sent out and the ctstate of every packet compared (tests/kernel/replaynet.py says how
the capture is injected, what is read back, and how nfemu is steered to the kernel's random
choices).

Each scenario is a set of conversations (:class:`Conv`: TCP, UDP or ICMP echo, with the
client's packets arriving on the node's eth0 or eth1 and the server's answers on the side
the server lives), played in two phases: the client's packets up to the first answer, then
the rest, the server's packets built from the kernel's conntrack entry (the endpoint DNAT
chose, the port SNAT/MASQUERADE drew), as a real server would send them. Scenarios:

1. TCP through DNAT (handshake, data both ways, FIN/ACK close; a retransmitted SYN before
   the answer) and UDP with two datagrams before any reply: nat counters count only first
   packets, later packets are rewritten from the binding; INVALID packets;
2. kube-proxy shapes (the rules tests/kernel/test_kube_vs_kernel.py writes, plus session
   affinity ``-m recent --rcheck --seconds 2 --reap`` / ``--set``): ClusterIP with three
   endpoints (the kernel's random choice replayed in nfemu), NodePort from outside with
   MASQUERADE --random-fully, hairpin (a pod to its own service, masqueraded), and a
   client's connections within and past the affinity's --seconds (real gaps);
3. SNAT / MASQUERADE port clashes: clients behind the node using the same source port to
   the same server: a SNAT port range of two ports (the clash remapped to the other port,
   a third client dropped when both are taken), MASQUERADE of TCP and of ICMP echo ids
   (the kernel's random port given to nfemu through ``node.nat_port_hint``); replies
   un-SNATed to the right client;
4. ICMP errors: port unreachable from a DNATed server, time exceeded and fragmentation
   needed from a router about a masqueraded connection (RELATED, outer and inner headers
   translated back), errors about no connection (INVALID); and wrong transport
   checksums (INVALID in conntrack, so neither NATed nor un-NATed);
5. ``-m statistic --mode nth`` over the packets of a capture, in nat (first packets only)
   and in filter and mangle (every packet);
6. ``-m statistic --mode random`` as a distribution: the kernel's counts against nfemu's
   exact probabilities; every connection keeps its first choice;
7. generated (hypothesis): NAT shapes (DNAT with ranges and --random, nth, REDIRECT,
   MASQUERADE in its variants, SNAT to ranges, --persistent), NOTRACK and zones,
   CONNMARK, ctstate filters, and interleaved conversations from clients that reuse source
   ports (clashes), in a drawn order.

Sizes scale with NFEMU_KERNEL_EXAMPLES (default 1000; generated cases: / 25).
"""
from __future__ import annotations

import itertools
import os
import re
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfemu.host import fmt4, ip4
from nfemu.packet import (
    ICMP,
    TCP,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    UDP,
    Packet,
)
from tests.kernel.replaynet import (
    NODE0,
    NODE1,
    NfemuSide,
    Record,
    ReplayNet,
    Scenario,
    _link_of,
    _packet_key,
)

KERNEL_EXAMPLES = int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000"))

_ip_ids = itertools.count(0x100)
WINDOW = 64240


def iface_of(addr: str | int) -> str:
    """The node interface packets from ADDR arrive on: its link, else eth1 (the default
    route's side: servers, pods and everything else)."""
    return _link_of(ip4(addr) if isinstance(addr, str) else addr) or "eth1"


# ---- conversations ------------------------------------------------------------------------


@dataclass
class Conv:
    """One connection as a script of steps, played from the client's side (``"c"``) and
    the server's (``"s"``):

    * TCP: ``("c", flags, nbytes)`` / ``("s", flags, nbytes)`` (sequence and
      acknowledgement numbers follow), ``("c again",)`` repeats the client's last segment;
    * UDP: ``("c", nbytes)`` / ``("s", nbytes)``; ICMP echo: ``("c",)`` / ``("s",)``;
    * ``("err", who, type, code, quote)``: an ICMP error about the client's last packet as
      the server received it (after the node's NAT), sent by the server (``who`` "s") or a
      router at address ``who``, quoting ``quote`` bytes of the datagram (None: all of it);
    * ``("c bad", ...)`` / ``("s bad", ...)``: the packet ``"c"`` / ``"s"`` would send with
      a wrong transport checksum (it does not count for sequence numbers).

    The server's packets come from the kernel's conntrack entry for the connection (the
    reply tuple: the endpoint DNAT chose, the address and port the client was mapped to);
    when the kernel has no entry, or the node itself is the server, the conversation ends
    at its first answer.
    """

    proto: int
    client: str
    sport: int                  # the source port, or the ICMP echo id
    dst: str
    dport: int = 0
    steps: list = field(default_factory=list)
    at: float | None = None     # when the first packet is sent (seconds into phase 1)
    note: str = ""
    c_isn: int = 1000
    s_isn: int = 500000
    # progress
    _pos: int = 0
    _c_next: int = 0
    _s_next: int = 0
    _last_c: Packet | None = None
    _seq: int = 1

    def __post_init__(self):
        self._c_next, self._s_next = self.c_isn, self.s_isn

    @property
    def key(self) -> tuple:
        return _packet_key(self._client_packet(0, b""))

    def _client_packet(self, flags: int, data: bytes) -> Packet:
        common = {"src": ip4(self.client), "dst": ip4(self.dst), "ip_id": next(_ip_ids),
                      "payload": data}
        if self.proto == TCP:
            return Packet(**common, proto=TCP, sport=self.sport, dport=self.dport,
                          tcp_flags=flags, tcp_seq=0, tcp_window=WINDOW)
        if self.proto == UDP:
            return Packet(**common, proto=UDP, sport=self.sport, dport=self.dport)
        return Packet(**common, proto=ICMP, icmp_type=8, icmp_rest=self.sport << 16 | self._seq)

    def lead(self) -> list[Record]:
        """The client's packets before the first answer (phase 1)."""
        out = []
        while self._pos < len(self.steps) and self.steps[self._pos][0].startswith("c"):
            out.append(self._step(None))
        if out and self.at is not None:
            out[0] = Record(out[0].iface, out[0].data, self.at, out[0].note)
        return out

    def rest(self, ct: dict) -> list[Record]:
        """The remaining packets, one list per step (phase 2), given the kernel's entries."""
        e = ct.get(self.key)
        if e is not None and e.reply_src in (ip4(NODE0), ip4(NODE1)):
            e = None                  # the node itself answers (nfemu does not model that)
        out = []
        while self._pos < len(self.steps):
            if e is None and not self.steps[self._pos][0].startswith("c"):
                break
            out.append(self._step(e))
        return out

    def _step(self, e) -> Record:
        step = self.steps[self._pos]
        self._pos += 1
        if step[0] in ("c bad", "s bad"):
            # the same packet with its transport checksum broken; as if it was never sent
            saved = (self._c_next, self._s_next, self._seq, self._last_c)
            rec = self._render((step[0][0],) + tuple(step[1:]), e)
            self._c_next, self._s_next, self._seq, self._last_c = saved
            return Record(rec.iface, corrupt(rec.data), None, rec.note + " (bad checksum)")
        return self._render(step, e)

    def _render(self, step, e) -> Record:
        kind = step[0]
        note = self.note
        if kind == "c again":
            pkt = self._last_c.replace(ip_id=next(_ip_ids))
            return Record.of(iface_of(self.client), pkt, note=note + " (again)")
        if kind == "c":
            pkt = self._client_side(step)
            self._last_c = pkt
            return Record.of(iface_of(self.client), pkt, note=note)
        if kind == "s":
            pkt = self._server_side(step, e)
            return Record.of(iface_of(pkt.src), pkt, note=note + " (answer)")
        if kind == "err":
            _, who, itype, code, quote = step
            seen = self._as_server_saw(self._last_c, e)
            data = seen.to_bytes()
            if quote is not None:
                data = data[:seen.header_len + quote]
            src = e.reply_src if who == "s" else ip4(who)
            pkt = Packet(src=src, dst=seen.src, proto=ICMP, icmp_type=itype, icmp_code=code,
                         icmp_rest=1400 if (itype, code) == (3, 4) else 0,
                         inner=Packet.from_bytes(data), ip_id=next(_ip_ids))
            return Record.of(iface_of(src), pkt, note=f"{note} (icmp {itype}/{code})")
        raise ValueError(step)

    def _client_side(self, step) -> Packet:
        if self.proto == TCP:
            _, flags, n = step
            data = bytes((self._c_next + i) & 0xFF for i in range(n))
            pkt = self._client_packet(flags, data)
            pkt = pkt.replace(tcp_seq=self._c_next,
                              tcp_ack=self._s_next if flags & TCP_ACK else 0)
            self._c_next += n + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
            return pkt
        if self.proto == UDP:
            return self._client_packet(0, bytes(range(step[1])))
        pkt = self._client_packet(0, b"ping")
        self._seq += 1
        return pkt

    def _server_side(self, step, e) -> Packet:
        common = {"src": e.reply_src, "dst": e.reply_dst, "ip_id": next(_ip_ids)}
        if self.proto == TCP:
            _, flags, n = step
            pkt = Packet(**common, proto=TCP, sport=e.reply_sport, dport=e.reply_dport,
                         tcp_flags=flags, tcp_seq=self._s_next,
                         tcp_ack=self._c_next if flags & TCP_ACK else 0, tcp_window=WINDOW,
                         payload=bytes(n))
            self._s_next += n + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
            return pkt
        if self.proto == UDP:
            return Packet(**common, proto=UDP, sport=e.reply_sport, dport=e.reply_dport,
                          payload=bytes(step[1]))
        return Packet(**common, proto=ICMP, icmp_type=0,
                      icmp_rest=e.reply_icmp[2] << 16 | (self._seq - 1), payload=b"ping")

    @staticmethod
    def _as_server_saw(pkt: Packet, e) -> Packet:
        """The client's packet after the node's NAT and forwarding (TTL 63)."""
        changes = {"src": e.reply_dst, "dst": e.reply_src, "ttl": pkt.ttl - 1}
        if pkt.proto in (TCP, UDP):
            changes.update(sport=e.reply_dport, dport=e.reply_sport)
        elif pkt.proto == ICMP:
            changes["icmp_rest"] = e.reply_icmp[2] << 16 | (pkt.icmp_rest & 0xFFFF)
        return pkt.replace(**changes)


def corrupt(data: bytes) -> bytes:
    """DATA with a wrong TCP, UDP or ICMP checksum (never 0, which means "none" for UDP)."""
    out = bytearray(data)
    at = (out[0] & 15) * 4 + {TCP: 16, UDP: 6, ICMP: 2}[out[9]]
    out[at] ^= 0x5A
    if out[at] == 0 and out[at + 1] == 0:
        out[at + 1] = 1
    return bytes(out)


def tcp_session(extra_syn: bool = False) -> list:
    """Handshake, data both ways, FIN/ACK close from the client."""
    steps = [("c", TCP_SYN, 0)]
    if extra_syn:
        steps.append(("c again",))
    return steps + [
        ("s", TCP_SYN | TCP_ACK, 0), ("c", TCP_ACK, 0), ("c", TCP_PSH | TCP_ACK, 100),
        ("s", TCP_ACK, 0), ("s", TCP_PSH | TCP_ACK, 50), ("c", TCP_ACK, 0),
        ("c", TCP_FIN | TCP_ACK, 0), ("s", TCP_ACK, 0), ("s", TCP_FIN | TCP_ACK, 0),
        ("c", TCP_ACK, 0)]


def phases(convs: list[Conv], first_extra=(), second_extra=None):
    """Phase 1: every conversation's leading client packets (in order), then FIRST_EXTRA
    records; phase 2: the rest of the conversations, one step of each in turn, then what
    SECOND_EXTRA(ct) returns."""
    def one(ct):
        return [r for c in convs for r in c.lead()] + list(first_extra)

    def two(ct):
        rests = [c.rest(ct) for c in convs]
        out = [r for group in itertools.zip_longest(*rests) for r in group if r is not None]
        return out + (list(second_extra(ct)) if second_extra else [])
    return one, two


def check(out) -> None:
    assert not out.problems, "\n" + out.report()


# the same counting rules in every scenario: ctstate, direction, status and NAT bits of
# every packet, as the kernel's conntrack match sees them
MANGLE = """\
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m conntrack --ctstate NEW
-A PREROUTING -m conntrack --ctstate ESTABLISHED --ctdir ORIGINAL
-A PREROUTING -m conntrack --ctstate ESTABLISHED --ctdir REPLY
-A PREROUTING -m conntrack --ctstate RELATED
-A PREROUTING -m conntrack --ctstate INVALID
-A PREROUTING -m conntrack --ctstatus SEEN_REPLY
-A PREROUTING -m conntrack --ctstatus ASSURED
-A PREROUTING -m conntrack --ctstate DNAT
-A PREROUTING -m conntrack --ctstate SNAT
-A FORWARD -m conntrack --ctstate NEW,RELATED -m conntrack --ctstatus CONFIRMED
-A POSTROUTING -m conntrack --ctstate DNAT
-A POSTROUTING -m conntrack --ctstate SNAT
-A POSTROUTING -m conntrack --ctstate DNAT --ctdir REPLY
COMMIT
"""

CLIENT, CLIENT2, CLIENT3 = "192.168.50.1", "192.168.50.7", "192.168.50.8"
SERVER, SERVER2, ROUTER = "10.50.0.9", "10.50.0.10", "10.50.0.20"
NEIGHBOURS = [CLIENT, CLIENT2, CLIENT3, SERVER, SERVER2, ROUTER]


# ---- 1. flows through DNAT ----------------------------------------------------------------

DNAT_RULES = MANGLE + f"""\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d {NODE0}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {SERVER}:8080
-A PREROUTING -d {NODE0}/32 -p udp -m udp --dport 53 -j DNAT --to-destination {SERVER2}:5353
-A PREROUTING -d {NODE0}/32 -p tcp -m tcp --dport 81
-A POSTROUTING -o eth1
-A POSTROUTING -o eth0
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -d {SERVER}/32 -p tcp -m conntrack --ctstate NEW,DNAT -m tcp --dport 8080 -j ACCEPT
-A FORWARD -d {SERVER2}/32 -p udp -m udp --dport 5353 -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
"""


def test_dnat_flows(kernel):
    """TCP through DNAT: handshake (with a retransmitted SYN before the SYN/ACK), data both
    ways, FIN/ACK close; several clients interleaved; UDP with a second datagram before
    the reply; a connection the nat rules leave alone (null binding, delivered locally);
    INVALID packets (a FIN/ACK and a SYN/ACK for no connection, dropped in FORWARD; a
    SYN+FIN and a segment without flags on an established DNATed connection: INVALID
    packets are not NATed, so they go to the node itself); then a closed connection
    reopened by a new SYN on the same ports (the TIME_WAIT entry replaced, NAT decided
    again)."""
    n = max(2, KERNEL_EXAMPLES // 250)
    clients = [CLIENT, CLIENT2, CLIENT3]
    convs = []
    for i in range(n):
        convs.append(Conv(TCP, clients[i % 3], 40000 + i, NODE0, 80,
                          tcp_session(extra_syn=i == 0), note=f"tcp{i}", c_isn=1000 * (i + 1)))
    for i in range(n):
        convs.append(Conv(UDP, clients[i % 3], 5000 + i, NODE0, 53,
                          [("c", 10), ("c", 11), ("s", 40), ("c", 12), ("s", 41)],
                          note=f"udp{i}"))
    convs.append(Conv(TCP, CLIENT, 41000, NODE0, 81, [("c", TCP_SYN, 0)], note="local"))

    def segment(src, dst, sport, dport, flags, seq=7, ack=9):
        return Packet(src=ip4(src), dst=ip4(dst), proto=TCP, sport=sport, dport=dport,
                      tcp_flags=flags, tcp_seq=seq, tcp_ack=ack, tcp_window=WINDOW,
                      ip_id=next(_ip_ids))
    stray = [Record.of("eth0", segment(CLIENT2, NODE0, 41999, 80, TCP_FIN | TCP_ACK),
                       note="FIN/ACK, no connection"),
             Record.of("eth1", segment(SERVER, CLIENT, 8080, 41998, TCP_SYN | TCP_ACK),
                       note="SYN/ACK, no connection")]
    # on tcp1, established: bad flag combinations (tcp_error: INVALID)
    bad = [Record.of("eth0", segment(clients[1], NODE0, 40001, 80, TCP_SYN | TCP_FIN, 2002),
                     note="tcp1 SYN+FIN"),
           Record.of("eth0", segment(clients[1], NODE0, 40001, 80, 0, 2002, 0),
                     note="tcp1 no flags")]
    one, two = phases(convs, first_extra=stray, second_extra=lambda ct: bad)
    again = Conv(TCP, CLIENT, 40000, NODE0, 80, tcp_session(), note="tcp0 reopened",
                 c_isn=9_000_000, s_isn=7_000_000)
    three, four = phases([again])
    out = Scenario(DNAT_RULES, NEIGHBOURS).run(one, two, three, four)
    check(out)
    # what the kernel showed, the point of the scenario
    saved = out.kernel_save
    assert f"[{n + 1}:{40 * (n + 1)}] -A PREROUTING -d {NODE0}/32 -p tcp -m tcp --dport 80" \
        in saved
    assert f"[{n}:{n * 38}] -A PREROUTING -d {NODE0}/32 -p udp -m udp --dport 53" in saved


# ---- 2. kube-proxy ----------------------------------------------------------------------------

AFFINITY_SECONDS = 2


def kube_rules():
    """kube-proxy's rules (tests/kernel/test_kube_vs_kernel.py's generator) for: a NodePort
    service with three endpoints, a UDP ClusterIP service with session affinity ClientIP
    (timeout AFFINITY_SECONDS; the recent rules added the way proxier.go writes them), and a
    ClusterIP service with one endpoint (hairpin)."""
    from tests.kernel.test_kube_vs_kernel import Service, kube_ruleset

    web = Service(0, "tcp", 80, "NodePort", (), (), ("10.244.1.2", "10.244.1.3", "10.244.2.4"),
                  (False,) * 3, False)
    dns = Service(1, "udp", 53, "ClusterIP", (), (), ("10.244.1.5", "10.244.2.6"),
                  (False,) * 2, False)
    solo = Service(2, "tcp", 8443, "ClusterIP", (), (), ("10.244.3.7",), (False,), False)
    text = kube_ruleset([web, dns, solo])
    lines = text.splitlines()
    svc = dns.chain("KUBE-SVC-")
    out = []
    for line in lines:
        for ep in dns.endpoints:
            sep = dns.sep(ep)
            if line.startswith(f"-A {sep} ") and "-j DNAT" in line:
                line = line.replace(
                    " -m udp -j DNAT",
                    f" -m recent --set --name {sep} --mask 255.255.255.255 --rsource"
                    " -m udp -j DNAT")
        if line.startswith(f"-A {svc} ") and "statistic" in line:
            # the affinity checks go before the random cascade
            for ep in dns.endpoints:
                sep = dns.sep(ep)
                out.append(f'-A {svc} -m comment --comment "{dns.name} -> {ep}:5353" '
                           f"-m recent --rcheck --seconds {AFFINITY_SECONDS} --reap --name "
                           f"{sep} --mask 255.255.255.255 --rsource -j {sep}")
        out.append(line)
    return MANGLE + "\n".join(out) + "\n", web, dns, solo


def test_kube(kernel):
    """ClusterIP from a pod and from outside (three endpoints, chosen at random by the
    kernel and replayed in nfemu), NodePort from outside (masqueraded with
    --random-fully), hairpin (a pod to its own service), and session affinity: a client's
    second connection within --seconds goes where the first went (recent --rcheck), its
    third, past --seconds (real time), is decided again; a UDP flow answered and used again
    after the stream delay becomes [ASSURED]; ICMP errors about connections both DNATed and
    masqueraded."""
    rules, web, dns, solo = kube_rules()
    gap = AFFINITY_SECONDS + 1.5
    convs = [
        # affinity: three connections from one client, one from another
        Conv(UDP, "10.244.9.9", 6001, dns.cluster_ip, 53, [("c", 20), ("s", 60), ("c", 21)],
             at=0.0, note="dns1"),
        Conv(UDP, "10.244.9.9", 6002, dns.cluster_ip, 53, [("c", 20), ("s", 60)], at=0.5,
             note="dns2 (within --seconds)"),
        Conv(UDP, "10.244.9.8", 6003, dns.cluster_ip, 53, [("c", 20), ("s", 60)], at=0.6,
             note="dns other client"),
        Conv(UDP, "10.244.9.9", 6004, dns.cluster_ip, 53, [("c", 20), ("s", 60)],
             at=0.5 + gap, note="dns3 (past --seconds)"),
    ]
    n = max(3, KERNEL_EXAMPLES // 200)
    for i in range(n):
        # a pod and an outside client to the cluster IP; an outside client to the node port
        convs.append(Conv(TCP, "10.244.9.9", 42000 + i, web.cluster_ip, 80, tcp_session(),
                          note=f"clusterip pod {i}"))
        convs.append(Conv(TCP, CLIENT, 43000 + i, web.cluster_ip, 80, tcp_session(),
                          note=f"clusterip outside {i}"))
        convs.append(Conv(TCP, CLIENT2, 44000 + i, NODE0, web.node_port, tcp_session(),
                          note=f"nodeport {i}"))
    convs.append(Conv(TCP, solo.endpoints[0], 45000, solo.cluster_ip, 8443, tcp_session(),
                      note="hairpin"))
    # errors about DNATed and masqueraded connections (both translations, inside and out)
    convs.append(Conv(UDP, CLIENT3, 46000, dns.cluster_ip, 53,
                      [("c", 20), ("err", "s", 3, 3, None)], note="dns from outside, refused"))
    convs.append(Conv(TCP, CLIENT3, 46001, NODE0, web.node_port,
                      [("c", TCP_SYN, 0), ("err", ROUTER, 11, 0, 8), ("c again",)],
                      note="nodeport, time exceeded"))
    out = Scenario(rules, NEIGHBOURS).run(*phases(convs))
    check(out)
    # the kernel did what the scenario is about
    ct = {(e.orig_src, e.orig_sport): e for e in out.kernel_ct}
    first, within, past = (ct[(ip4("10.244.9.9"), p)] for p in (6001, 6002, 6004))
    assert within.reply_src == first.reply_src
    assert past.reply_src in {ip4(ep) for ep in dns.endpoints}
    assert "ASSURED" in first.flags and "ASSURED" not in within.flags
    hairpin = ct[(ip4(solo.endpoints[0]), 45000)]
    assert (hairpin.reply_src, hairpin.reply_dst) == (ip4(solo.endpoints[0]), ip4(NODE1))
    rcheck = [line for line in out.kernel_save.splitlines() if "--rcheck" in line]
    hits = sum(int(re.match(r"\[(\d+):", line).group(1)) for line in rcheck)
    assert hits == 1, rcheck            # only dns2 was decided by affinity


# ---- 3. SNAT port clashes --------------------------------------------------------------------

SNAT_RULES = MANGLE + """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth1 -p udp -j SNAT --to-source 10.50.0.1:6000-6001
-A POSTROUTING -o eth1 -p tcp -j MASQUERADE
-A POSTROUTING -o eth1 -p icmp -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED --ctdir REPLY
-A FORWARD -m conntrack --ctstate NEW
COMMIT
"""


def test_snat_port_clash(kernel):
    """Clients behind the node with the same source port (or ICMP echo id) to the same
    server, SNATed to the node's one address: the first keeps its port; the second clashes
    and is remapped (UDP: SNAT to a range of two ports, the other port; TCP MASQUERADE and
    ICMP: the kernel's random draw, given to nfemu; a router's time exceeded about the
    remapped ping has its quoted echo id translated back); the remapped client's next
    connection to another server reuses its mapping; a third UDP client finds both ports
    taken (the kernel drops its datagrams at confirmation, each one NEW again). Each reply
    goes back to its own client."""
    convs = []
    for client in (CLIENT, CLIENT2, CLIENT3):
        convs.append(Conv(UDP, client, 6000, SERVER, 53,
                          [("c", 30), ("c", 29), ("s", 90), ("c", 31)], note=f"udp {client}"))
    for client in (CLIENT, CLIENT2):
        convs.append(Conv(TCP, client, 40000, SERVER, 80, tcp_session(), note=f"tcp {client}"))
        convs.append(Conv(ICMP, client, 77, SERVER, 0,
                          [("c",), ("s",), ("c",), ("err", ROUTER, 11, 0, 8), ("s",)],
                          note=f"ping {client}"))
    # the second client's port again, to another server: the kernel reuses the mapping its
    # first connection got (find_appropriate_src), though the port itself is free there
    later = Conv(TCP, CLIENT2, 40000, SERVER2, 80, tcp_session(), note="tcp again",
                 c_isn=3_000_000)
    one, two = phases(convs)
    three, four = phases([later])
    out = Scenario(SNAT_RULES, NEIGHBOURS).run(one, two, three, four)
    check(out)
    ct = {(e.proto, e.orig_src): e for e in out.kernel_ct if e.orig_dst == ip4(SERVER)}
    assert ct[(UDP, ip4(CLIENT))].reply_dport == 6000
    assert ct[(UDP, ip4(CLIENT2))].reply_dport == 6001
    assert (UDP, ip4(CLIENT3)) not in ct
    assert ct[(TCP, ip4(CLIENT))].reply_dport == 40000
    remapped = {e.orig_dst: e.reply_dport for e in out.kernel_ct
                if (e.proto, e.orig_src) == (TCP, ip4(CLIENT2))}
    assert remapped[ip4(SERVER)] != 40000 and remapped[ip4(SERVER2)] == remapped[ip4(SERVER)]


# ---- 4. ICMP errors -----------------------------------------------------------------------------

ICMP_RULES = MANGLE + f"""\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d {NODE0}/32 -p udp -m udp --dport 53 -j DNAT --to-destination {SERVER2}:5353
-A POSTROUTING -o eth1 -p tcp -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate INVALID
-A FORWARD -m conntrack --ctstate RELATED -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT
-A FORWARD -i eth0 -m conntrack --ctstate NEW -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
"""


def test_icmp_errors(kernel):
    """A DNATed UDP datagram answered by the server with port unreachable (the whole
    datagram quoted): RELATED, forwarded to the client with the outer source and the
    quoted destination translated back; a masqueraded TCP connection's SYN answered by a
    router with time exceeded and by the server with fragmentation needed (28 bytes
    quoted): RELATED, outer destination and quoted source translated back; errors about
    connections that do not exist (forwarded: dropped as INVALID; to the node itself)."""
    convs = [
        Conv(UDP, CLIENT, 5002, NODE0, 53, [("c", 12), ("err", "s", 3, 3, None)],
             note="udp dnat"),
        Conv(TCP, CLIENT2, 40100, SERVER, 80,
             [("c", TCP_SYN, 0), ("err", ROUTER, 11, 0, 8), ("err", "s", 3, 4, 8),
              ("s", TCP_SYN | TCP_ACK, 0), ("c", TCP_ACK, 0)], note="tcp masq"),
    ]

    def strays(ct):
        nobody = Packet(src=ip4(CLIENT), dst=ip4(SERVER2), proto=UDP, sport=5999, dport=5353,
                        payload=b"q", ttl=63)
        to_node = Packet(src=ip4(NODE1), dst=ip4(SERVER), proto=TCP, sport=40999, dport=80,
                         tcp_flags=TCP_SYN, tcp_window=WINDOW, ttl=64)
        return [Record.of("eth1", Packet(src=ip4(SERVER2), dst=ip4(CLIENT), proto=ICMP,
                                         icmp_type=3, icmp_code=3, inner=nobody,
                                         ip_id=next(_ip_ids)), note="error, no connection"),
                Record.of("eth1", Packet(src=ip4(ROUTER), dst=ip4(NODE1), proto=ICMP,
                                         icmp_type=11, icmp_code=0,
                                         inner=Packet.from_bytes(to_node.to_bytes()[:28]),
                                         ip_id=next(_ip_ids)), note="error to the node")]
    out = Scenario(ICMP_RULES, NEIGHBOURS).run(*phases(convs, second_extra=strays))
    check(out)
    # the kernel forwarded the three RELATED errors, translated, to the clients
    back = [Packet.from_bytes(d) for d in out.kernel_out["eth0"]]
    errors = [p for p in back if p.proto == ICMP]
    assert [(fmt4(p.src), fmt4(p.dst), p.icmp_type) for p in errors] == [
        (NODE0, CLIENT, 3), (ROUTER, CLIENT2, 11), (SERVER, CLIENT2, 3)]
    assert (fmt4(errors[0].inner.dst), errors[0].inner.dport) == (NODE0, 53)
    assert (fmt4(errors[1].inner.src), errors[1].inner.sport) == (CLIENT2, 40100)


# ---- 4b. bad checksums ----------------------------------------------------------------------

CSUM_RULES = DNAT_RULES.replace(":FORWARD DROP [0:0]", ":FORWARD ACCEPT [0:0]").replace(
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n",
    "-A FORWARD -m conntrack --ctstate INVALID\n")


def test_bad_checksums(kernel):
    """Packets with a wrong TCP/UDP/ICMP checksum (nf_conntrack_checksum=1: conntrack
    verifies them in PREROUTING and gives them no entry, ctstate INVALID; the rules still
    see them, without NAT): a UDP datagram to a DNATed port before its good copy (the bad
    one is not DNATed: delivered to the node), a server's bad reply (not un-NATed: forwarded
    with the server's address), a TCP SYN before its good retransmission and a bad
    SYN/ACK before the good one, and a bad ICMP error about a live connection."""
    convs = [
        Conv(UDP, CLIENT, 5100, NODE0, 53,
             [("c bad", 10), ("c", 10), ("s", 40), ("s bad", 41), ("c", 12), ("s", 41)],
             note="udp dnat"),
        Conv(TCP, CLIENT2, 40200, SERVER, 80,
             [("c bad", TCP_SYN, 0), ("c", TCP_SYN, 0), ("s bad", TCP_SYN | TCP_ACK, 0),
              ("s", TCP_SYN | TCP_ACK, 0), ("c", TCP_ACK, 0)], note="tcp"),
        Conv(UDP, CLIENT3, 5101, SERVER, 53, [("c", 10), ("err", "s", 3, 3, None)],
             note="udp error"),
    ]

    def bad_error(ct):
        e = ct[convs[2].key]
        quoted = Packet(src=e.reply_dst, dst=e.reply_src, proto=UDP, sport=e.reply_dport,
                        dport=e.reply_sport, payload=bytes(10), ttl=63)
        err = Packet(src=e.reply_src, dst=e.reply_dst, proto=ICMP, icmp_type=3, icmp_code=3,
                     inner=quoted, ip_id=next(_ip_ids))
        return [Record("eth1", corrupt(err.to_bytes()), note="bad icmp error")]
    out = Scenario(CSUM_RULES, NEIGHBOURS, valid_checksums=False).run(
        *phases(convs, second_extra=bad_error))
    check(out)
    assert out.kernel_ctinfo["INVALID"] == 5, out.kernel_ctinfo


# ---- 5. nth -------------------------------------------------------------------------------------

NTH_RULES = """\
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m statistic --mode nth --every 5 --packet 2
-A POSTROUTING -o eth0 -m statistic --mode nth --every 2 --packet 0
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 192.168.50.2/32 -p udp -m udp --dport 53 -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 10.50.0.9:5353
-A PREROUTING -d 192.168.50.2/32 -p udp -m udp --dport 53 -m statistic --mode nth --every 2 --packet 1 -j DNAT --to-destination 10.50.0.10:5353
-A PREROUTING -d 192.168.50.2/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.50.0.20:5353
-A POSTROUTING -m statistic --mode nth --every 4 --packet 3
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m statistic --mode nth --every 4 --packet 1
-A FORWARD -p udp -m statistic --mode nth --every 3 --packet 2 -j ACCEPT
-A FORWARD -m statistic --mode nth ! --every 2 --packet 1
COMMIT
"""


def test_nth(kernel):
    """nth counters across a capture's packets: the nat rules see only each connection's
    first packet (the endpoint cycles over connections, later packets follow their
    binding), the mangle and filter rules every packet, both directions."""
    n = max(6, KERNEL_EXAMPLES // 50)
    clients = [CLIENT, CLIENT2, CLIENT3]
    convs = [Conv(UDP, clients[i % 3], 7000 + i, NODE0, 53,
                  [("c", 8), ("c", 9), ("s", 30), ("c", 10), ("s", 31)], note=f"udp{i}")
             for i in range(n)]
    out = Scenario(NTH_RULES, NEIGHBOURS).run(*phases(convs))
    check(out)
    servers = [e.reply_src for e in sorted(out.kernel_ct, key=lambda e: e.orig_sport)]
    # --every N --packet P matches packets P, P + N, ... (counting from 0) of those the
    # rule sees: rule 1 takes connections 0, 3, 6, ...; rule 2 sees 1, 2, 4, 5, ... and
    # takes its packets 1, 3, ... (connections 2, 5, ...); the rest fall to rule 3
    cycle = [ip4(a) for a in ("10.50.0.9", "10.50.0.20", "10.50.0.10")]
    assert servers == [cycle[i % 3] for i in range(n)], [fmt4(s) for s in servers]


# ---- 6. statistic random as a distribution ------------------------------------------------------

RANDOM_RULES = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 192.168.50.2/32 -p udp -m udp --dport 53 -m statistic --mode random --probability 0.25000000000 -j DNAT --to-destination 10.50.0.9:5353
-A PREROUTING -d 192.168.50.2/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.50.0.10:5353
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m statistic --mode random --probability 0.70000000000
COMMIT
"""


def test_random_distribution(kernel):
    """Many UDP connections of three datagrams each through a random DNAT choice (nat: once
    per connection) and a random counting rule (filter: every packet): the kernel's counts
    fit nfemu's exact probabilities, nfemu's own (seeded) counts fit them too, and in both
    every datagram of a connection goes to the server its first one went to."""
    from tests.kernel.test_statistic_vs_kernel import ALPHA, two_sided

    n = max(300, 2 * KERNEL_EXAMPLES)
    per = 3
    convs = [(f"192.168.50.{1 + i % 3 * 6}", 10000 + i // 3) for i in range(n)]
    records = [Record.of("eth0", Packet(src=ip4(c), dst=ip4(NODE0), proto=UDP, sport=p,
                                        dport=53, payload=bytes(k), ip_id=next(_ip_ids)))
               for k in range(per) for c, p in convs]
    with tempfile.TemporaryDirectory(prefix="nfemu-replay-") as tmp, \
            ReplayNet(NEIGHBOURS) as net:
        net.load(RANDOM_RULES)
        played = net.play(records)
        kernel_ct = net.ct_entries()
        saved = net.save().ruleset
        side = NfemuSide(RANDOM_RULES, tmp, steer=False)
        side.play(played, {})
    from tests.kernel.netsim import kernel_counters
    kernel = kernel_counters(saved)
    ours = {k: tuple(side.node.counters.get(k, (0, 0))) for k in kernel}
    # nfemu's exact probabilities, from a fresh node's outcomes for one first packet
    probe = NfemuSide(RANDOM_RULES, tmp, steer=False).node
    first = records[0].packet
    p_nat = sum((o.probability for o in probe.outcomes(first, iface="eth0")
                 if o.journey.packet.dst == ip4(SERVER)), Fraction(0))
    problems = []
    for who, counts in (("kernel", kernel), ("nfemu", ours)):
        first_packets = counts[("nat", "PREROUTING", 0)][0] + counts[("nat", "PREROUTING", 1)][0]
        if first_packets != n:
            problems.append(f"{who}: the nat rules saw {first_packets} packets for {n} "
                            "connections")
        chosen = counts[("nat", "PREROUTING", 0)][0]
        pv = two_sided(n, float(p_nat), chosen)
        if pv < ALPHA:
            problems.append(f"{who}: {chosen} of {n} connections took the first DNAT, nfemu's "
                            f"probability {p_nat} (p-value {pv:.3g})")
        counted = counts[("filter", "FORWARD", 0)][0]
        pv = two_sided(n * per, 0.7, counted)
        if pv < ALPHA:
            problems.append(f"{who}: the filter rule counted {counted} of {n * per} packets "
                            f"(p-value {pv:.3g})")
    # every datagram of a connection went where its first one went
    for who, out in (("kernel", played.out["eth1"]), ("nfemu", side.out["eth1"])):
        where: dict = {}
        for data in out:
            pkt = Packet.from_bytes(data)
            where.setdefault((pkt.src, pkt.sport), set()).add(pkt.dst)
        split = {k: v for k, v in where.items() if len(v) > 1}
        if len(out) != n * per or split:
            problems.append(f"{who}: {len(out)} datagrams forwarded for {n * per}; "
                            f"connections split between servers: {list(split)[:5]}")
    assert len(kernel_ct) == n
    assert not problems, "\n".join(problems + side.problems)


# ---- 7. generated: NAT shapes and interleaved conversations ---------------------------------

GEN_EXAMPLES = max(1, KERNEL_EXAMPLES // 25)

# nat rules to draw from, each with the (protocol, destination, port) its conversations use
GEN_PRE = [
    (f"-d {NODE0}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination {SERVER}:8080",
     (TCP, NODE0, 80)),
    (f"-d {NODE0}/32 -p udp -m udp --dport 53 -j DNAT --to-destination {SERVER2}",
     (UDP, NODE0, 53)),
    ((f"-d {NODE0}/32 -p tcp -m tcp --dport 81 -j DNAT --to-destination "
     f"{SERVER}-{SERVER2}:9000-9001"), (TCP, NODE0, 81)),
    ((f"-d {NODE0}/32 -p udp -m udp --dport 54 -m statistic --mode nth --every 2 --packet 0 "
     f"-j DNAT --to-destination {SERVER2}:5354"), (UDP, NODE0, 54)),
    (f"-d {NODE0}/32 -p udp -m udp --dport 54 -j DNAT --to-destination {SERVER}:5355",
     (UDP, NODE0, 54)),
    (f"-d {NODE0}/32 -p icmp -m icmp --icmp-type 8 -j DNAT --to-destination {SERVER}",
     (ICMP, NODE0, 0)),
    (f"-d {NODE0}/32 -p tcp -m tcp --dport 82 -j REDIRECT --to-ports 8082", (TCP, NODE0, 82)),
    ((f"-d {NODE0}/32 -p tcp -m tcp --dport 83 -j DNAT --to-destination {SERVER}:9000-9003 "
     "--random"), (TCP, NODE0, 83)),
    (f"-d {NODE0}/32 -p udp -m udp --dport 55 -j DNAT --to-destination {SERVER}:9000-9001",
     (UDP, NODE0, 55)),
]
GEN_POST = [
    "-o eth1 -s 192.168.50.0/24 -j MASQUERADE",
    "-o eth1 -s 192.168.50.0/24 -j MASQUERADE --random",
    "-o eth1 -s 192.168.50.0/24 -j MASQUERADE --random-fully",
    "-o eth1 -s 192.168.50.0/24 -p tcp -j MASQUERADE --to-ports 30000-30002",
    "-o eth1 -p udp -j SNAT --to-source 10.50.0.1:6000-6002",
    "-o eth1 -p tcp -j SNAT --to-source 10.50.0.1",
    "-o eth0 -s 10.50.0.0/24 -j MASQUERADE",
    "-o eth1 -p udp -j SNAT --to-source 10.50.0.1-10.50.0.3",
    "-o eth1 -p tcp -j SNAT --to-source 10.50.0.1-10.50.0.3:7000-7001 --persistent",
]
GEN_RAW = [
    "-A PREROUTING -p udp -m udp --dport 5353 -j CT --notrack",
    "-A PREROUTING -p icmp -j CT --zone 3",
]
GEN_MANGLE = [
    "-A PREROUTING -p udp -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x7/0xff",
    "-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff",
    "-A FORWARD -m connmark --mark 0x7/0xff",
    "-A POSTROUTING -m conntrack --ctstate SNAT --ctorigsrc 192.168.50.0/24",
]
GEN_FILTER = [
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A FORWARD -i eth0 -m conntrack --ctstate NEW -j ACCEPT",
    "-A FORWARD -i eth1 -p tcp -m conntrack --ctstate NEW -j ACCEPT",
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP",
    "-A FORWARD -p udp -m conntrack --ctstate NEW -m conntrack --ctstatus CONFIRMED",
]
# destinations nat leaves alone (forwarded as they are, or delivered to the node)
GEN_DIRECT = [(TCP, SERVER, 80), (UDP, SERVER, 53), (ICMP, SERVER, 0), (UDP, SERVER2, 5353),
              (TCP, NODE0, 80), (UDP, NODE0, 53), (TCP, SERVER, 9000), (UDP, SERVER, 9000)]


@st.composite
def gen_case(draw) -> tuple[str, list]:
    """Rules and the conversations' destinations (those the drawn DNAT/REDIRECT rules
    match, and a few others)."""
    pre = draw(st.lists(st.sampled_from(GEN_PRE), unique=True, min_size=1, max_size=5))
    post = draw(st.lists(st.sampled_from(GEN_POST), unique=True, max_size=3))
    mangle = draw(st.lists(st.sampled_from(GEN_MANGLE), unique=True, max_size=4))
    filt = draw(st.lists(st.sampled_from(GEN_FILTER), unique=True, max_size=5))
    raw = draw(st.lists(st.sampled_from(GEN_RAW), unique=True, max_size=2))
    policy = draw(st.sampled_from(["ACCEPT", "ACCEPT", "DROP"]))
    if policy == "DROP":
        filt = [GEN_FILTER[0], GEN_FILTER[1]] + [r for r in filt if r not in GEN_FILTER[:2]]
    text = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + "".join(f"{r}\n" for r in raw) + "COMMIT\n") if raw else ""
    text += MANGLE.replace("COMMIT\n", "".join(f"{r}\n" for r in mangle) + "COMMIT\n")
    text += ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             ":POSTROUTING ACCEPT [0:0]\n" + "".join(f"-A PREROUTING {r}\n" for r, _ in pre)
             + "".join(f"-A POSTROUTING {r}\n" for r in post) + "COMMIT\n")
    text += (f"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             + "".join(f"{r}\n" for r in filt) + "COMMIT\n")
    return text, [t for _, t in pre]


def _tcp_script(kind: str) -> list:
    if kind == "session":
        return tcp_session()
    if kind == "refused":
        return [("c", TCP_SYN, 0), ("s", TCP_RST | TCP_ACK, 0)]
    if kind == "reset":
        return [("c", TCP_SYN, 0), ("s", TCP_SYN | TCP_ACK, 0), ("c", TCP_ACK, 0),
                ("c", TCP_PSH | TCP_ACK, 20), ("c", TCP_RST | TCP_ACK, 0)]
    if kind == "midstream":        # picked up without a SYN (nf_conntrack_tcp_loose)
        return [("c", TCP_ACK, 0), ("s", TCP_ACK, 0), ("c", TCP_PSH | TCP_ACK, 10),
                ("s", TCP_ACK, 0)]
    return [("c", TCP_SYN, 0), ("c again",), ("c again",)]          # unanswered


@st.composite
def gen_convs(draw, targets: list) -> list[Conv]:
    count = draw(st.integers(1, 8))
    convs, used = [], set()
    for i in range(count):
        if draw(st.integers(0, 4)) == 0:
            # a server behind eth1 opens a connection to a client
            proto, client, dst, dport = TCP, draw(st.sampled_from([SERVER, SERVER2])), \
                draw(st.sampled_from([CLIENT, CLIENT2])), 22
        else:
            proto, dst, dport = draw(st.sampled_from(
                targets if draw(st.integers(0, 4)) else GEN_DIRECT))
            client = draw(st.sampled_from([CLIENT, CLIENT2, CLIENT3]))
        sport = draw(st.sampled_from([40000, 40001, 6000, 30001]))
        if proto == ICMP:
            sport, dport = draw(st.sampled_from([77, 78])), 0
        if (proto, client, dst, sport, dport) in used:
            continue
        used.add((proto, client, dst, sport, dport))
        if proto == TCP:
            steps = _tcp_script(draw(st.sampled_from(["session", "refused", "reset",
                                                       "midstream", "unanswered"])))
        elif proto == UDP:
            steps = [("c", 10)] + draw(st.lists(st.sampled_from([("c", 11), ("s", 40)]),
                                                max_size=4))
            if draw(st.booleans()):
                steps.append(("err", "s", 3, 3, None))
        else:
            steps = [("c",)] + draw(st.lists(st.sampled_from([("c",), ("s",)]), max_size=3))
        convs.append(Conv(proto, client, sport, dst, dport, steps, note=f"conv{i}",
                          c_isn=1000 + 100000 * i))
    return convs


@settings(max_examples=GEN_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_generated(kernel, data):
    """Generated: a few nat rules (DNAT with and without port and address ranges, with
    --random, nth, REDIRECT, MASQUERADE plain, --random, --random-fully and to a port
    range, SNAT to a port range, an address or an address range, --persistent), raw
    NOTRACK and zones, CONNMARK, ctstate filters; conversations (TCP sessions, refused,
    reset, picked up mid-stream, unanswered with retransmissions; UDP with replies and port
    unreachable; ICMP echo) from clients that reuse source ports, some opened by a server
    on the other side, some to a server's port a DNAT also maps to; phase 2 interleaved in
    a drawn order."""
    rules, targets = data.draw(gen_case(), "rules")
    convs = data.draw(gen_convs(targets), "conversations")
    def order(ct):
        rests = [list(c.rest(ct)) for c in convs]
        out = []
        while any(rests):
            i = data.draw(st.sampled_from([k for k, r in enumerate(rests) if r]))
            out.append(rests[i].pop(0))
        return out
    out = Scenario(rules, NEIGHBOURS).run(lambda ct: [r for c in convs for r in c.lead()],
                                          order)
    check(out)
