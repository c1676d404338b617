"""nfemu.conntrack against the kernel's connection tracking.

Small flows are played through a netsim node that forwards between ``peer``
(192.168.50.1) and ``peer2`` (10.50.0.2): raw datagrams sent in order from either side,
one at a time. For every packet the kernel's ctstate and direction (an nft chain at
prerouting priority -190, just after conntrack, counts each combination) is compared with
what :meth:`ConntrackTable.track` says for the same packet, and after every packet the
kernel's ``conntrack -L`` is compared with nfemu's table printed by
:meth:`ConntrackTable.format` and read back with the same parser: tuples, TCP state,
[UNREPLIED]/[ASSURED], and the timeout only as "at most the timeout the last packet set,
and not much less" (real time passes on the kernel's side).

nfemu's clock is the monotonic time at which each packet was sent, so the UDP "stream
after 2 s" rule sees the same elapsed time as the kernel (the test waits 2.5 s before the
packet that makes the UDP flow a stream).
"""
from __future__ import annotations

import re
import time

from nfemu.conntrack import ConntrackTable
from nfemu.ext.conntrack import CtState
from nfemu.host import ip4
from nfemu.packet import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, Packet
from tests.kernel.netsim import (
    _SENDER,
    CTINFO_LABELS,
    CTSTATE_PROBE_RULES,
    Net,
    NetsimError,
    parse_conntrack,
)

PEER, PEER2 = ip4("192.168.50.1"), ip4("10.50.0.2")
OTHER = ip4("192.168.50.7")       # an address behind the node's eth0 that is not peer

_PROBE = """\
table inet nfemuprobe {
    chain p {
        type filter hook prerouting priority -190; policy accept;
%s    }
}
"""
_LABELS = CTINFO_LABELS
WINDOW = 64240


class FlowNet(Net):
    """A netsim node that lets packets of existing connections through and tells the
    conntrack state each packet got (Net.send insists on ctstate NEW)."""

    def __enter__(self):
        super().__enter__()
        try:
            self._run(["nft", "-f", "-"], input=_PROBE % CTSTATE_PROBE_RULES, ns=self.node)
        except BaseException:
            self.__exit__()
            raise
        return self

    def probe(self) -> list[int]:
        out = self._run(["nft", "list", "table", "inet", "nfemuprobe"], ns=self.node).stdout
        return [int(n) for n in re.findall(r"counter packets (\d+)", out)]

    def play(self, datagram: bytes, from_peer2: bool, timeout: float = 5.0) -> str:
        """Send one datagram from a peer, wait until it has passed the node's PREROUTING,
        and return the ctstate (and direction) the kernel gave it."""
        before = self.probe()
        ns = self.peer2 if from_peer2 else self.peer
        said = self._run(["python3", "-c", _SENDER], ns=ns,
                         input=datagram.hex() + "\n").stdout.split()
        if said != ["ok"]:
            raise NetsimError(f"could not send {datagram.hex()}: {said}")
        self.sent += 1
        deadline = time.monotonic() + timeout
        while self.counters()["pre"][0] < self.sent:
            if time.monotonic() > deadline:
                raise NetsimError("the packet did not reach the node")
            time.sleep(0.005)
        after = self.probe()
        grew = [label for label, a, b in zip(_LABELS, before, after) if b > a]
        if len(grew) != 1:
            raise NetsimError(f"no single ctstate for the packet: {grew}")
        return grew[0]


def tcp(src, dst, sport, dport, flags, seq, ack=0, data=b"", window=WINDOW) -> bytes:
    return Packet(src=src, dst=dst, proto=6, sport=sport, dport=dport, tcp_flags=flags,
                  tcp_seq=seq, tcp_ack=ack, tcp_window=window, payload=data).to_bytes()


def udp(src, dst, sport, dport, data=b"q") -> bytes:
    return Packet(src=src, dst=dst, proto=17, sport=sport, dport=dport,
                  payload=data).to_bytes()


def icmp(src, dst, type_, code=0, rest=0, inner=None) -> bytes:
    return Packet(src=src, dst=dst, proto=1, icmp_type=type_, icmp_code=code,
                  icmp_rest=rest, inner=inner, payload=b"" if inner else b"ping").to_bytes()


def _label(entry, ctinfo) -> str:
    if ctinfo == CtState.INVALID or entry is None:
        return "INVALID"
    name = {CtState.NEW: "NEW", CtState.ESTABLISHED: "ESTABLISHED",
            CtState.RELATED: "RELATED"}[ctinfo]
    return name + (" REPLY" if entry.reply else "")


class Replay:
    """The same packets fed to the kernel (through FlowNet) and to a ConntrackTable."""

    def __init__(self, net: FlowNet):
        self.net = net
        self.table = ConntrackTable()
        self.t0 = time.monotonic()
        self.log: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def step(self, datagram: bytes, from_peer2: bool, expect: str | None = None) -> None:
        now = self.now()
        kernel = self.net.play(datagram, from_peer2)
        pkt = Packet.from_bytes(datagram)
        self.table.expire(now)
        entry, ctinfo = self.table.track(pkt, now)
        if entry is not None and not entry.confirmed and not entry.killed:
            assert self.table.confirm(entry, now) is entry
        ours = _label(entry, ctinfo)
        self.log.append(f"{pkt.proto} {pkt.src:#x}->{pkt.dst:#x} flags={pkt.tcp_flags:#x} "
                        f"kernel {kernel} nfemu {ours}")
        assert ours == kernel, "\n".join(self.log)
        if expect is not None:      # the kernel source's expectation, checked on both
            assert kernel == expect, "\n".join(self.log)
        self.compare_tables()

    def compare_tables(self) -> None:
        now = self.now()
        kernel = {self._key(e): e for e in self.net.ct_entries()}
        self.table.expire(now)
        text = "\n".join(self.table.format(e, now) for e in self.table.entries())
        ours = {self._key(e): e for e in parse_conntrack(text)}
        assert set(kernel) == set(ours), (
            "\n".join(self.log) + f"\nkernel:\n{self.net.conntrack()}\nnfemu:\n{text}")
        for key, k in kernel.items():
            set_to = next(e.timeout for e in self.table.entries()
                          if self._key(parse_conntrack(self.table.format(e, now))[0]) == key)
            # at most what the last packet set; not much less (real time passed)
            assert max(0, set_to - 30) <= k.timeout <= set_to, (key, k.timeout, set_to)

    @staticmethod
    def _key(e) -> tuple:
        return (e.proto, e.orig_src, e.orig_dst, e.orig_sport, e.orig_dport, e.orig_icmp,
                e.reply_src, e.reply_dst, e.reply_sport, e.reply_dport, e.reply_icmp,
                e.state, e.flags)


def test_flows_match_kernel(kernel):
    with FlowNet(forward=True) as net:
        r = Replay(net)
        # UDP request and reply (30 s, no [ASSURED] until 2 s have passed)
        r.step(udp(PEER, PEER2, 5001, 53), False, "NEW")
        r.step(udp(PEER2, PEER, 53, 5001), True, "ESTABLISHED REPLY")
        udp_start = r.now()

        # TCP: handshake, data unacknowledged then acknowledged, FIN/ACK close
        c, s = 1000, 5000
        r.step(tcp(PEER, PEER2, 40001, 80, TCP_SYN, c), False, "NEW")
        r.step(tcp(PEER2, PEER, 80, 40001, TCP_SYN | TCP_ACK, s, c + 1), True,
               "ESTABLISHED REPLY")
        r.step(tcp(PEER, PEER2, 40001, 80, TCP_ACK, c + 1, s + 1), False, "ESTABLISHED")
        r.step(tcp(PEER, PEER2, 40001, 80, TCP_ACK | TCP_PSH, c + 1, s + 1, b"0123456789"),
               False, "ESTABLISHED")
        r.step(tcp(PEER2, PEER, 80, 40001, TCP_ACK, s + 1, c + 11), True,
               "ESTABLISHED REPLY")
        r.step(tcp(PEER, PEER2, 40001, 80, TCP_FIN | TCP_ACK, c + 11, s + 1), False)
        r.step(tcp(PEER2, PEER, 80, 40001, TCP_ACK, s + 1, c + 12), True)
        r.step(tcp(PEER2, PEER, 80, 40001, TCP_FIN | TCP_ACK, s + 1, c + 12), True)
        r.step(tcp(PEER, PEER2, 40001, 80, TCP_ACK, c + 12, s + 2), False)

        # a new SYN on the closed connection (TIME_WAIT after a FIN): the old entry is
        # killed and the SYN starts a new one (nf_conntrack_tcp_packet: -NF_REPEAT)
        r.step(tcp(PEER, PEER2, 40001, 80, TCP_SYN, c + 100000), False, "NEW")

        # a RST whose sequence number is not the peer's last ACK, in an assured
        # ESTABLISHED connection: the state stays (a challenge ACK may follow)
        r.step(tcp(PEER, PEER2, 40008, 80, TCP_SYN, c), False)
        r.step(tcp(PEER2, PEER, 80, 40008, TCP_SYN | TCP_ACK, s, c + 1), True)
        r.step(tcp(PEER, PEER2, 40008, 80, TCP_ACK, c + 1, s + 1), False)
        r.step(tcp(PEER2, PEER, 80, 40008, TCP_ACK, s + 1, c + 1), True)
        r.step(tcp(PEER2, PEER, 80, 40008, TCP_RST, s + 500), True, "ESTABLISHED REPLY")

        # TCP reset by the client after the handshake (seq = the server's last ACK)
        r.step(tcp(PEER, PEER2, 40002, 80, TCP_SYN, c), False)
        r.step(tcp(PEER2, PEER, 80, 40002, TCP_SYN | TCP_ACK, s, c + 1), True)
        r.step(tcp(PEER, PEER2, 40002, 80, TCP_ACK, c + 1, s + 1), False)
        r.step(tcp(PEER, PEER2, 40002, 80, TCP_RST, c + 1), False, "ESTABLISHED")

        # a SYN answered only by a RST: the entry is deleted at once
        r.step(tcp(PEER, PEER2, 40003, 80, TCP_SYN, c), False)
        r.step(tcp(PEER2, PEER, 80, 40003, TCP_RST | TCP_ACK, 0, c + 1), True,
               "ESTABLISHED REPLY")

        # picked up mid-stream (nf_conntrack_tcp_loose=1): an ACK makes an entry
        r.step(tcp(PEER, PEER2, 40004, 80, TCP_ACK, 7000, 9000), False, "NEW")
        r.step(tcp(PEER2, PEER, 80, 40004, TCP_ACK, 9000, 7000), True, "ESTABLISHED REPLY")
        r.step(tcp(PEER, PEER2, 40004, 80, TCP_ACK, 7000, 9000, window=1000), False,
               "ESTABLISHED")

        # TCP packets that cannot start a connection are INVALID and leave no entry
        r.step(tcp(PEER, PEER2, 40005, 80, TCP_SYN | TCP_FIN, c), False, "INVALID")
        r.step(tcp(PEER, PEER2, 40006, 80, TCP_FIN | TCP_ACK, c, s), False, "INVALID")
        r.step(tcp(PEER, PEER2, 40007, 80, TCP_SYN | TCP_ACK, c, s), False, "INVALID")

        # ICMP echo and reply; an echo reply nobody asked for
        r.step(icmp(PEER, PEER2, 8, rest=(77 << 16) | 1), False, "NEW")
        r.step(icmp(PEER2, PEER, 0, rest=(77 << 16) | 1), True, "ESTABLISHED REPLY")
        r.step(icmp(PEER2, PEER, 0, rest=(78 << 16) | 1), True, "INVALID")

        # ICMP errors quoting a forwarded UDP datagram: RELATED (reply direction); about
        # an unknown flow, or sent to another address than the flow's: INVALID
        quoted = Packet(src=PEER, dst=PEER2, proto=17, sport=5002, dport=53, payload=b"q")
        r.step(udp(PEER, PEER2, 5002, 53), False, "NEW")
        r.step(icmp(PEER2, PEER, 3, 3, inner=quoted), True, "RELATED REPLY")
        r.step(icmp(PEER2, PEER, 11, 0, inner=quoted), True, "RELATED REPLY")
        unknown = Packet(src=PEER, dst=PEER2, proto=17, sport=5999, dport=53, payload=b"q")
        r.step(icmp(PEER2, PEER, 3, 3, inner=unknown), True, "INVALID")
        r.step(icmp(PEER2, OTHER, 3, 3, inner=quoted), True, "INVALID")
        # an error from the client's side about the reply direction: RELATED original
        back = Packet(src=PEER2, dst=PEER, proto=17, sport=53, dport=5002, payload=b"q")
        r.step(icmp(PEER, PEER2, 3, 1, inner=back), False, "RELATED")

        # what routers quote: the IP header and 8 bytes (a TCP flow's time exceeded), and
        # shorter quotes: 4 bytes still hold the ports conntrack needs, 2 bytes do not
        seg = tcp(PEER, PEER2, 40004, 80, TCP_ACK, 7000, 9000)
        for cut, expect in ((28, "RELATED REPLY"), (24, "RELATED REPLY"), (22, "INVALID")):
            r.step(icmp(PEER2, PEER, 11, 0, inner=Packet.from_bytes(seg[:cut])), True, expect)

        # the UDP flow again, more than 2 s after its first packet: a stream, [ASSURED]
        time.sleep(max(0.0, udp_start + 2.5 - r.now()))
        r.step(udp(PEER, PEER2, 5001, 53), False, "ESTABLISHED")
        entry, _ = r.table.lookup(Packet.from_bytes(udp(PEER, PEER2, 5001, 53)))
        assert entry is not None and entry.timeout == 120


NAT_RULES = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p udp --dport 53 -j DNAT --to-destination 10.50.0.9:5353
-A POSTROUTING -p tcp --dport 80 -j SNAT --to-source 10.50.0.1:7000
COMMIT
"""
SERVER = ip4("10.50.0.9")
NODE1 = ip4("10.50.0.1")


class NatReplay(Replay):
    """Replay with the node's two NAT rules applied to nfemu's new entries by hand, the way
    nf_nat_setup_info changes the reply tuple (nfemu's NAT targets do it in the pipeline;
    here only the table's lookups by the NAT-changed reply tuple are under test)."""

    def step(self, datagram, from_peer2, expect=None):
        orig_track = self.table.track

        def track(pkt, now, zone=0):
            entry, ctinfo = orig_track(pkt, now, zone)
            if entry is not None and not entry.confirmed:
                if pkt.proto == 17 and pkt.dport == 53:
                    entry.repl_src, entry.repl_sport = SERVER, 5353
                if pkt.proto == 6 and pkt.dport == 80:
                    entry.repl_dst, entry.repl_dport = NODE1, 7000
            return entry, ctinfo
        self.table.track = track
        try:
            super().step(datagram, from_peer2, expect)
        finally:
            del self.table.track


def test_nat_reply_tuples_match_kernel(kernel):
    with FlowNet(forward=True, default_route=True) as net:
        net.load(NAT_RULES)
        r = NatReplay(net)
        # DNAT: the reply comes from the real server, errors quote the translated datagram
        r.step(udp(PEER, PEER2, 5003, 53), False, "NEW")
        r.step(udp(SERVER, PEER, 5353, 5003), True, "ESTABLISHED REPLY")
        sent = Packet(src=PEER, dst=SERVER, proto=17, sport=5003, dport=5353, payload=b"q")
        r.step(icmp(SERVER, PEER, 3, 3, inner=sent), True, "RELATED REPLY")
        # SNAT: the reply goes to the node's address and port
        r.step(tcp(PEER, PEER2, 40010, 80, TCP_SYN, 1000), False, "NEW")
        r.step(tcp(PEER2, NODE1, 80, 7000, TCP_SYN | TCP_ACK, 5000, 1001), True,
               "ESTABLISHED REPLY")
        r.step(tcp(PEER, PEER2, 40010, 80, TCP_ACK, 1001, 5001), False, "ESTABLISHED")
