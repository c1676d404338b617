"""Play a capture through a kernel node and through nfemu's stateful node, and compare them.

The network is netsim's (tests/kernel/netsim.py, ``Net(forward=True, default_route=True)``)::

    clients --- peer (eth0) <--veth--> (eth0, 192.168.50.2) node (10.50.0.1, eth1) <--veth--> (eth0) peer2 --- servers, pods

``node`` holds the iptables ruleset, forwards, and routes everything it has no route for to
peer2 (``default via 10.50.0.2 dev eth1``). The peers only inject and swallow: a capture
record that arrives on the node's eth0 is written as an Ethernet frame (source the peer's
MAC, destination the node's) onto the peer end of that veth with a packet socket, and what
the node sends out of eth0/eth1 is read on the peer ends with the same packet sockets
(before the peers' own stack, which drops every IP packet in nft prerouting at priority -400
and so never answers). The node's own packets (RSTs, ICMP errors, redirects: answers nfemu
does not model) are dropped by netsim's output chain before any iptables chain.

One injector process (:data:`_INJECTOR`), started in the root namespace, opens a packet
socket in each peer namespace (``setns``), pins itself to one CPU, and sends the frames in
capture order: the node handles them in that order (one per-CPU backlog; each frame is
normally handled to the end in the softirq of its own send), whichever side they come from.
Gaps between records are kept (``Record.at``: seconds after the start of the phase) where a
test depends on time (recent --seconds, conntrack's UDP stream delay); records without a
gap go as fast as the socket takes them. The injector reports the wall-clock time of each
send: that is the timestamp the record gets in the capture file nfemu replays, so nfemu's
clock (packet timestamps) sees the gaps the kernel saw. After the last frame, the harness
waits until every frame has passed the node's PREROUTING (netsim's ``pre`` counter), then
the injector reads until the peers have received as many frames as the node sent out
(an nft counter at POSTROUTING priority 1000, less conntrack's ``insert_failed``: packets
dropped at confirmation after that).

A capture is played in phases (:meth:`ReplayNet.play` once per phase): a phase's packets may
depend on what the kernel did in the earlier ones (a server answering the source port that
MASQUERADE or a clashing SNAT drew at random: read from ``conntrack -L``). The played
records are written as pcapng (:func:`write_pcapng`: one interface description per node
interface, named ``eth0``/``eth1``, so each record says where it arrives) and that file is
what nfemu replays (:class:`NfemuSide`: ``node.replay(path)`` when nfemu/replay.py exists,
else ``node.send`` per record).

Where the kernel draws at random, nfemu is steered to the kernel's choice:

* endpoint choice (``-m statistic --mode random`` in nat): for a packet whose evaluation
  asks for random decisions, copies of the node are run with scripted answers (depth
  first, as tests/kernel/test_kube_vs_kernel.py does for single packets) until one gives the
  connection the reply tuple source (the DNAT destination) the kernel's conntrack entry
  has; the node then takes that script;
* ports and ICMP ids drawn by NAT (get_random_u16() in nf_nat_l4proto_unique_tuple:
  MASQUERADE/SNAT --random and --random-fully, a source port remapped after a clash):
  ``node.nat_port_hint`` answers nfemu's draw with the port the kernel's conntrack entry
  shows for that connection (:func:`_port_hint`). Should nfemu still end up with another
  port, that is reported; both ports must lie in the range nfemu names (its NAT event's
  ``random_port``), nfemu's must not clash, and from then on the kernel's port is an
  alias of nfemu's (:class:`Aliases`, TCP and UDP ports: later packets to the kernel's
  port go to nfemu with nfemu's, nfemu's outputs and entries are compared with the
  kernel's port written back), so that the rest of the capture is still compared.

What is compared (:func:`compare`): every rule and policy counter of ``iptables-save -c``
(packets and bytes; also the whole text nfemu predicts), the conntrack table (original and
reply tuples, TCP state, [UNREPLIED]/[ASSURED], mark, the timeout within two seconds), the
packets the node sent out of each interface byte for byte (addresses, ports, TTL, ICMP
inner headers, checksums), and how many packets got each ctstate and direction (an nft
chain at prerouting priority -190 in the kernel, ``Journey.ctinfo`` in nfemu).
"""
from __future__ import annotations

import copy
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nfemu
from nfemu.host import Host, fmt4, ip4
from nfemu.packet import ICMP, TCP, UDP, Packet
from tests.kernel.netsim import (
    CTINFO_LABELS,
    CTSTATE_PROBE_RULES,
    NODE_MAC0,
    NODE_MAC1,
    PEER2_MAC,
    PEER_MAC,
    CtEntry,
    Net,
    NetsimError,
    Scripted,
    kernel_counters,
    parse_conntrack,
)

NODE0, NODE1, PEER, PEER2 = "192.168.50.2", "10.50.0.1", "192.168.50.1", "10.50.0.2"
NETS = {"eth0": (ip4("192.168.50.0"), 24), "eth1": (ip4("10.50.0.0"), 24)}
#: the MACs of each node interface and of the peer end facing it
MACS = {"eth0": (NODE_MAC0, PEER_MAC), "eth1": (NODE_MAC1, PEER2_MAC)}
IFACES = ("eth0", "eth1")


def node_host() -> Host:
    """The node as nfemu sees it (netsim's ``Net(forward=True, default_route=True)``)."""
    return Host.from_options([f"eth0={NODE0}/24", f"eth1={NODE1}/24"], default_gateway=PEER2)


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


# ---- captures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One packet of a capture: the node interface it arrives on, the IP datagram, and when
    it is sent (seconds after the start of its phase; None: right after the previous one)."""

    iface: str
    data: bytes
    at: float | None = None
    note: str = ""

    @classmethod
    def of(cls, iface: str, pkt: Packet, at: float | None = None, note: str = "") -> Record:
        return cls(iface, pkt.to_bytes(), at, note)

    @property
    def packet(self) -> Packet:
        return Packet.from_bytes(self.data, iif=self.iface)


def write_pcapng(path: str | Path, records: list[tuple[str, bytes, int]]) -> None:
    """A pcapng file (little-endian, one section) with an Ethernet interface description
    per node interface (``if_name`` eth0 / eth1, ``if_tsresol`` nanoseconds) and one
    Enhanced Packet Block per (iface, IP datagram, time in ns since the epoch): the frame
    as it arrives on that interface (source the peer's MAC, destination the node's)."""
    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        size = 12 + len(body)
        return struct.pack("<II", btype, size) + body + struct.pack("<I", size)

    def option(code: int, value: bytes) -> bytes:
        return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for name in IFACES:
        opts = option(2, name.encode()) + option(9, bytes([9])) + option(0, b"")
        out.append(block(1, struct.pack("<HHI", 1, 0, 0) + opts))
    for iface, data, ts_ns in records:
        node_mac, peer_mac = MACS[iface]
        frame = _mac(node_mac) + _mac(peer_mac) + b"\x08\x00" + data
        body = struct.pack("<IIIII", IFACES.index(iface), ts_ns >> 32, ts_ns & 0xFFFFFFFF,
                           len(frame), len(frame)) + frame
        out.append(block(6, body))
    Path(path).write_bytes(b"".join(out))


# ---- the kernel side ------------------------------------------------------------------------

# Runs in the root namespace. Reads one JSON object: {"peers": {iface: netns}, "cpu": n,
# "frames": [[iface, hex, at or null], ...]}; opens a packet socket on eth0 of each peer
# namespace, sends the frames in order (keeping the gaps), prints {"sent": [ns, ...]}, then
# reads what the peers receive and prints
# {"got": {iface: [[ns, hex], ...]}} once it has as many frames in all as the number it
# reads next says (or after 10 s).
_INJECTOR = r"""
import ctypes, json, os, select, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET, ETH_P_ALL, PACKET_OUTGOING = 0x40000000, 3, 4
spec = json.loads(sys.stdin.readline())
os.sched_setaffinity(0, {spec["cpu"]})
home = os.open("/proc/self/ns/net", os.O_RDONLY)
socks = {}
for iface, ns in spec["peers"].items():
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns " + ns)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    s.bind(("eth0", ETH_P_ALL))
    s.setblocking(False)
    socks[iface] = s
    os.close(fd)
if libc.setns(home, CLONE_NEWNET) != 0:
    raise OSError(ctypes.get_errno(), "setns home")
got = {iface: [] for iface in socks}
def drain():
    for iface, s in socks.items():
        while True:
            try:
                data, addr = s.recvfrom(65536)
            except BlockingIOError:
                break
            if addr[2] != PACKET_OUTGOING:
                got[iface].append([time.time_ns(), data.hex()])
start = time.monotonic()
sent = []
for iface, frame, at in spec["frames"]:
    if at is not None:
        while True:
            left = start + at - time.monotonic()
            if left <= 0:
                break
            drain()
            time.sleep(min(left, 0.01))
    sent.append(time.time_ns())
    socks[iface].send(bytes.fromhex(frame))
    drain()
print(json.dumps({"sent": sent}), flush=True)
want = json.loads(sys.stdin.readline())
deadline = time.monotonic() + 10
while sum(map(len, got.values())) < want and time.monotonic() < deadline:
    select.select(list(socks.values()), [], [], 0.1)
    drain()
print(json.dumps({"got": got}), flush=True)
"""

# ctstate and direction of every packet arriving from a device other than lo, counted
# just after conntrack (priority -200) and before raw's NOTRACK could matter (-190 is after
# raw at -300: a packet raw left untracked counts as untracked)
_PROBE = """\
table inet nfemureplayprobe {
    chain p {
        type filter hook prerouting priority -190; policy accept;
%s    }
    chain post {
        type filter hook postrouting priority 1000; policy accept;
        oifname "eth0" counter
        oifname "eth1" counter
    }
}
"""


@dataclass
class Played:
    """One phase as the kernel saw it: the records, the time each was sent (ns since the
    epoch), and the IP datagrams the node sent out of each interface, in order."""

    records: list[Record]
    sent_ns: list[int]
    out: dict[str, list[bytes]]


class ReplayNet(Net):
    """netsim's forwarding node, fed by packet sockets on the peer ends (module docstring).
    ``neighbours`` are addresses on the node's links (clients on eth0's 192.168.50.0/24,
    servers on eth1's 10.50.0.0/24) that get static neighbour entries with the peer's MAC,
    so that the node never sends ARP."""

    def __init__(self, neighbours=()):
        super().__init__(forward=True, default_route=True)
        self._neighbours = [a if isinstance(a, str) else fmt4(a) for a in neighbours]
        self.injected = 0
        self.out_seen = 0

    def __enter__(self):
        super().__enter__()
        try:
            lines = []
            for addr in sorted(set(self._neighbours) - {PEER, PEER2, NODE0, NODE1}):
                iface = _link_of(ip4(addr))
                if iface is None:
                    raise NetsimError(f"{addr} is on neither of the node's links")
                lines.append(f"ip neigh replace {addr} lladdr {MACS[iface][1]} dev {iface} "
                             "nud permanent")
            self._script(self.node, lines + ["nft -f -"], input=_PROBE % CTSTATE_PROBE_RULES)
        except BaseException:
            self.__exit__()
            raise
        return self

    def play(self, records: list[Record], timeout: float = 10.0) -> Played:
        """Inject RECORDS in order (keeping their ``at`` gaps), wait until all of them have
        passed the node's PREROUTING, and return what the node sent out meanwhile."""
        frames = []
        for r in records:
            node_mac, peer_mac = MACS[r.iface]
            frames.append([r.iface, (_mac(node_mac) + _mac(peer_mac) + b"\x08\x00"
                                     + r.data).hex(), r.at])
        spec = {"peers": {"eth0": self.peer, "eth1": self.peer2},
                "cpu": min(os.sched_getaffinity(0)), "frames": frames}
        proc = subprocess.Popen([sys.executable, "-c", _INJECTOR], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            proc.stdin.write(json.dumps(spec) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise NetsimError(f"injector failed: {proc.stderr.read()}")
            sent = json.loads(line)["sent"]
            self.injected += len(records)
            deadline = time.monotonic() + timeout
            while True:
                seen = self.counters()["pre"][0]
                if seen >= self.injected:
                    break
                if time.monotonic() > deadline:
                    raise NetsimError(f"only {seen} of {self.injected} packets reached the "
                                      "node")
                time.sleep(0.005)
            if seen != self.injected:
                raise NetsimError(f"{seen} packets reached the node for {self.injected} sent")
            # the last packet may still be on its way between PREROUTING and POSTROUTING
            time.sleep(0.02)
            left = self.left_out()
            want = left - self.out_seen
            self.out_seen = left
            out, _ = proc.communicate(f"{want}\n", timeout=timeout + 10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        got = json.loads(out.splitlines()[-1])["got"]
        if sum(map(len, got.values())) != want:
            raise NetsimError(f"the node sent {want} packets out of eth0 and eth1, the peers "
                              f"received {[len(got[i]) for i in IFACES]}")
        result = {}
        for iface in IFACES:
            datagrams = []
            for _, hexframe in got[iface]:
                frame = bytes.fromhex(hexframe)
                if frame[12:14] != b"\x08\x00":
                    raise NetsimError(f"the node sent a non-IPv4 frame on {iface}: {hexframe}")
                length = int.from_bytes(frame[16:18], "big")
                datagrams.append(frame[14:14 + length])
            result[iface] = datagrams
        return Played(list(records), sent, result)

    def _probe(self) -> list[int]:
        text = self._run(["nft", "list", "table", "inet", "nfemureplayprobe"],
                         ns=self.node).stdout
        return [int(n) for n in re.findall(r"counter packets (\d+)", text)]

    def ctinfo_counts(self) -> dict[str, int]:
        """How many packets (arriving on eth0/eth1) got each ctstate and direction."""
        return dict(zip(CTINFO_LABELS, self._probe()))

    def left_out(self) -> int:
        """How many packets the node has sent out of eth0 and eth1: those that passed
        POSTROUTING (at priority 1000; netsim drops the node's own packets in OUTPUT)
        less those conntrack dropped at confirmation after it (``insert_failed`` of
        ``conntrack -S``: an entry whose tuple clashes)."""
        passed = sum(self._probe()[len(CTINFO_LABELS):])
        stats = self._run(["conntrack", "-S"], ns=self.node).stdout
        return passed - sum(int(n) for n in re.findall(r"insert_failed=(\d+)", stats))


def _link_of(addr: int) -> str | None:
    for iface, (net, plen) in NETS.items():
        if addr >> (32 - plen) == net >> (32 - plen):
            return iface
    return None


# ---- the nfemu side -------------------------------------------------------------------------


def fork_node(node):
    """A copy of NODE that shares its ruleset, compiled program and host but none of its
    state (conntrack, stateful matches, counters, generator)."""
    memo = {id(node.ruleset): node.ruleset, id(node.machine): node.machine,
            id(node.host): node.host}
    return copy.deepcopy(node, memo)


def _ct_key(e) -> tuple:
    """The original tuple of a parsed conntrack line (CtEntry): what identifies a connection
    in both tables."""
    return (e.proto, e.orig_src, e.orig_dst, e.orig_sport, e.orig_dport,
            e.orig_icmp[2] if e.orig_icmp else None)


def _entry_key(entry) -> tuple:
    """The same key for an nfemu conntrack Entry."""
    icmp = entry.proto == ICMP
    return (entry.proto, entry.orig_src, entry.orig_dst,
            None if icmp else entry.orig_sport, None if icmp else entry.orig_dport,
            entry.orig_sport if icmp else None)


def _packet_key(pkt: Packet) -> tuple:
    """The key of the connection PKT opens (as the original direction)."""
    if pkt.proto == ICMP:
        return (ICMP, pkt.src, pkt.dst, None, None, pkt.icmp_rest >> 16)
    return (pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport, None)


def _port_hint(current: list, kernel_ct: dict, notes: set):
    """``node.nat_port_hint``: where the kernel drew a NAT port at random (get_random_u16()
    in nf_nat_l4proto_unique_tuple), the port its conntrack entry shows for the connection
    whose packet is being played (``current[0]``, its original tuple); the packet's own
    port (nfemu's default) when the kernel has no entry. A kernel port outside the
    candidate range nfemu draws from is noted in NOTES (a difference)."""
    def hint(pkt, first: int, last: int) -> int:
        e = kernel_ct.get(current[0])
        if e is not None:
            orig_sport, orig_dport = current[0][3], current[0][4]
            if e.proto == ICMP and e.reply_icmp:
                mapped = [e.reply_icmp[2]]
            else:
                mapped = [p for p, o in ((e.reply_dport, orig_sport),   # a source mapped
                                         (e.reply_sport, orig_dport))   # a destination
                          if p is not None and p != o]
            for port in mapped:
                if first <= port <= last:
                    return port
            if mapped:
                notes.add(f"{_fmt_key(current[0])}: the kernel's port {mapped} lies outside "
                          f"the range {first}-{last} nfemu draws from")
        if pkt.proto == ICMP:
            return pkt.icmp_rest >> 16
        return pkt.sport
    return hint


class Aliases:
    """Ports the kernel drew at random where nfemu chose another: (proto, address, kernel
    port) <-> nfemu port, for the node-side address of a NAT binding."""

    def __init__(self) -> None:
        self.to_nfemu: dict[tuple[int, int, int], int] = {}
        self.to_kernel: dict[tuple[int, int, int], int] = {}

    def add(self, proto: int, addr: int, kernel_port: int, nfemu_port: int) -> None:
        self.to_nfemu[(proto, addr, kernel_port)] = nfemu_port
        self.to_kernel[(proto, addr, nfemu_port)] = kernel_port

    def __bool__(self) -> bool:
        return bool(self.to_nfemu)

    @staticmethod
    def _map(table, pkt: Packet, dst_side: bool) -> Packet:
        """PKT with the port of its destination (DST_SIDE) or source rewritten through
        TABLE, also in a quoted datagram (the other side of it)."""
        if pkt.proto in (TCP, UDP):
            if dst_side:
                new = table.get((pkt.proto, pkt.dst, pkt.dport))
                if new is not None:
                    pkt = pkt.replace(dport=new)
            else:
                new = table.get((pkt.proto, pkt.src, pkt.sport))
                if new is not None:
                    pkt = pkt.replace(sport=new)
        if pkt.proto == ICMP and pkt.inner is not None:
            inner = Aliases._map(table, pkt.inner, not dst_side)
            if inner is not pkt.inner:
                pkt = pkt.replace(inner=inner)
        return pkt

    def inbound(self, pkt: Packet) -> Packet:
        """A packet of the capture as nfemu must get it (to nfemu's port)."""
        return self._map(self.to_nfemu, pkt, True)

    def outbound(self, pkt: Packet) -> Packet:
        """A packet nfemu sent out, with the kernel's port where nfemu used its own."""
        return self._map(self.to_kernel, pkt, False)


@dataclass
class Sent:
    """What nfemu did with one record."""
    record: Record
    journey: object
    ctinfo: str


class NfemuSide:
    """A Node fed the same phases as the kernel (module docstring)."""

    def __init__(self, ruleset_text: str, workdir: str | Path, seed: int = 1,
                 steer: bool | None = None):
        from nfemu.node import Node

        self.node = Node(nfemu.loads(ruleset_text), node_host(), seed=seed)
        self.workdir = Path(workdir)
        self.aliases = Aliases()
        self.sent: list[Sent] = []
        self.out: dict[str, list[bytes]] = {i: [] for i in IFACES}
        self.problems: list[str] = []
        self.phase = 0
        self.now = 0.0
        self.random_ranges: dict[tuple, tuple[int, int]] = {}
        # steer random decisions to the kernel's (needs a probe run per packet); by default
        # when the rules have random matches
        self.steer = "--mode random" in ruleset_text if steer is None else steer

    @staticmethod
    def uses_replay() -> bool:
        return (Path(nfemu.__file__).parent / "replay.py").exists()

    def play(self, played: Played, kernel_ct: dict[tuple, CtEntry]) -> Path:
        """Replay one phase: writes it as pcapng (with nfemu's ports where aliased) and
        feeds it to the node; KERNEL_CT (the kernel's entries after the phase, by original
        tuple) steers the random decisions. Returns the file."""
        self.phase += 1
        records = []
        for rec in played.records:
            orig = Packet.from_bytes(rec.data)
            pkt = self.aliases.inbound(orig)
            records.append(Record(rec.iface, rec.data if pkt is orig else pkt.to_bytes(),
                                  rec.at, rec.note))
        path = self.workdir / f"phase{self.phase}.pcapng"
        write_pcapng(path, [(r.iface, r.data, ns) for r, ns in zip(records, played.sent_ns)])
        node = self.node
        current: list[tuple] = [()]
        notes: set[str] = set()
        node.nat_port_hint = _port_hint(current, kernel_ct, notes)
        results = iter(node.replay(str(path))) if self.uses_replay() else None
        for rec, ns in zip(records, played.sent_ns):
            now = ns / 1e9
            self.now = now
            pkt = Packet.from_bytes(rec.data, iif=rec.iface)
            current[0] = _packet_key(pkt)
            if self.steer:
                script = self._choose(pkt, rec.iface, now, kernel_ct)
                node.rng = Scripted(script)
            if results is not None:
                res = next(results)
                if res.journey is None:
                    self.problems.append(f"{rec.note or pkt.describe()}: node.replay did not "
                                         f"send it ({res.problem}: {res.message})")
                    continue
                if res.iface != rec.iface:
                    self.problems.append(f"{pkt.describe()}: node.replay sent it from "
                                         f"{res.iface}, the file says {rec.iface}")
                journey = res.journey
            else:
                journey = node.send(pkt, iface=rec.iface, now=now)
            if self.steer and node.rng.draws != len(script):
                self.problems.append(f"{rec.note or pkt.describe()}: nfemu asked for "
                                     f"{node.rng.draws} random decisions, its probe for "
                                     f"{len(script)}")
            self._record(rec, pkt, journey)
        if results is not None:
            rest = list(results)
            if rest:
                self.problems.append(f"node.replay yielded {len(rest)} results more than "
                                     f"the {len(records)} records of {path}")
        self.problems += sorted(notes)
        return path

    def _choose(self, pkt: Packet, iface: str, now: float,
                kernel_ct: dict[tuple, CtEntry]) -> tuple[bool, ...]:
        """The scripted answers that make nfemu take the kernel's choice for PKT: () when
        PKT asks for no random decision; else the first script (depth first) under which
        the packet's connection gets the kernel's DNAT destination (or, like in the
        kernel, no entry)."""
        probe = fork_node(self.node)
        probe.rng = Scripted(())
        probe.send(pkt, iface=iface, now=now)
        if probe.rng.draws == 0:
            return ()
        want = kernel_ct.get(_packet_key(pkt))
        want_obs = None if want is None else (want.reply_src, want.reply_sport,
                                              want.reply_icmp[2] if want.reply_icmp else None)
        pending: list[tuple[bool, ...]] = [()]
        seen = []
        while pending:
            script = pending.pop()
            probe = fork_node(self.node)
            probe.rng = Scripted(script)
            j = probe.send(pkt, iface=iface, now=now)
            draws = probe.rng.draws
            full = script + (True,) * (draws - len(script))
            pending += [full[:d] + (False,) for d in range(len(script), draws)]
            entry = self._confirmed(probe, j)
            obs = None if entry is None else (
                entry.repl_src, None if entry.proto == ICMP else entry.repl_sport,
                entry.repl_sport if entry.proto == ICMP else None)
            seen.append(obs)
            if obs == want_obs:
                return full
        self.problems.append(
            f"{iface} {pkt.describe()}: the kernel's choice "
            f"{'no entry' if want is None else want} is none of nfemu's outcomes {seen}")
        return ()

    @staticmethod
    def _confirmed(node, journey):
        """The packet's conntrack entry if it is in NODE's table after the packet."""
        entry = getattr(journey, "ct", None)
        if entry is None or not getattr(entry, "confirmed", False):
            return None
        return entry if entry in node.conntrack.entries() else None

    def _record(self, rec: Record, pkt: Packet, journey) -> None:
        from nfemu.engine import Verdict

        entry = getattr(journey, "ct", None)
        label = ctinfo_label(getattr(journey, "ctinfo", ""), entry)
        self.sent.append(Sent(rec, journey, label))
        if journey.verdict is Verdict.ACCEPT and journey.where in ("forward", "out"):
            out = self.aliases.outbound(journey.packet)
            self.out.setdefault(journey.out_iface, []).append(out.to_bytes())
        for ev in getattr(journey, "events", ()):
            text = ev.detail.get("random_port") if hasattr(ev, "detail") else None
            if text and entry is not None:
                lo, hi = map(int, re.match(r"(\d+)-(\d+)", text).groups())
                self.random_ranges[_entry_key(entry)] = (lo, hi)

    def learn_aliases(self, kernel_ct: dict[tuple, CtEntry]) -> None:
        """After a phase: where the kernel's reply tuple differs from nfemu's only in the
        node-side port of a NAT binding (a port the kernel drew at random, which
        ``nat_port_hint`` told nfemu), that is a difference (reported); both ports must lie
        in the range nfemu names, nfemu's must not clash, and the two are aliased from then
        on so that the rest of the capture is still compared."""
        ours = {_entry_key(e): e for e in self.node.conntrack.entries()}
        for key, k in kernel_ct.items():
            e = ours.get(key)
            if e is None or e.proto not in (TCP, UDP):
                continue
            if (k.reply_src, k.reply_sport, k.reply_dst) != (e.repl_src, e.repl_sport,
                                                              e.repl_dst):
                continue
            kernel_port, nfemu_port = k.reply_dport, e.repl_dport
            if kernel_port == nfemu_port:
                continue
            if (e.proto, e.repl_dst, kernel_port) in self.aliases.to_nfemu:
                continue
            span = self.random_ranges.get(key)
            conn = _fmt_key(key)
            self.problems.append(f"{conn}: the kernel mapped the source port to "
                                 f"{kernel_port}, nfemu to {nfemu_port} (nat_port_hint "
                                 f"offered {kernel_port}; random range "
                                 f"{'none' if span is None else f'{span[0]}-{span[1]}'})")
            if span is not None:
                lo, hi = span
                for who, port in (("kernel", kernel_port), ("nfemu", nfemu_port)):
                    if not lo <= port <= hi:
                        self.problems.append(f"{conn}: {who}'s port {port} is outside the "
                                             f"range {lo}-{hi} nfemu names")
            clash = [o for o in ours.values() if o is not e and o.repl_tuple == e.repl_tuple]
            if clash:
                self.problems.append(f"{conn}: nfemu's reply tuple clashes with {clash}")
            self.aliases.add(e.proto, e.repl_dst, kernel_port, nfemu_port)

    def ct_entries(self, now: float) -> list[CtEntry]:
        """nfemu's conntrack table at time NOW as ``conntrack -L`` would print it (read back
        with netsim's parser), nfemu's ports written back as the kernel's."""
        table = self.node.conntrack
        table.expire(now)
        text = "\n".join(table.format(e, now) for e in table.entries())
        out = []
        for e in parse_conntrack(text):
            port = self.aliases.to_kernel.get((e.proto, e.reply_dst, e.reply_dport))
            if port is not None:
                e = _replace_ct(e, reply_dport=port)
            out.append(e)
        return out

    def ctinfo_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CTINFO_LABELS, 0)
        for s in self.sent:
            counts[s.ctinfo] = counts.get(s.ctinfo, 0) + 1
        return counts


def _replace_ct(e: CtEntry, **changes) -> CtEntry:
    from dataclasses import replace
    return replace(e, **changes)


def ctinfo_label(ctinfo, entry) -> str:
    """Journey.ctinfo (a string or CtState) and the entry's direction as one of
    :data:`CTINFO_LABELS`."""
    from nfemu.ext.conntrack import CtState

    if isinstance(ctinfo, CtState):
        bits = int(ctinfo)
        text = ("UNTRACKED" if bits & CtState.UNTRACKED else "INVALID" if bits & CtState.INVALID
                else "RELATED" if bits & CtState.RELATED else "ESTABLISHED"
                if bits & CtState.ESTABLISHED else "NEW" if bits & CtState.NEW else "")
    else:
        text = str(ctinfo or "").upper().replace("_", " ").strip()
        text = text.replace("IP CT ", "").replace("CTSTATE ", "")
    if text.endswith(" REPLY"):
        return text
    if not text:
        return "INVALID" if entry is None else "?"
    if text in ("ESTABLISHED", "RELATED") and entry is not None and getattr(entry, "reply",
                                                                           False):
        return text + " REPLY"
    return text


def _fmt_key(key: tuple) -> str:
    proto, src, dst, sport, dport, icmp_id = key
    if proto == ICMP:
        return f"icmp {fmt4(src)} -> {fmt4(dst)} id {icmp_id}"
    name = {TCP: "tcp", UDP: "udp"}.get(proto, str(proto))
    return f"{name} {fmt4(src)}:{sport} -> {fmt4(dst)}:{dport}"


def _fmt_ct(e: CtEntry) -> str:
    flags = " ".join(f"[{f}]" for f in sorted(e.flags))
    return f"{e} {flags} mark={e.mark} timeout={e.timeout}"


# ---- running a scenario -------------------------------------------------------------------------


@dataclass
class Outcome:
    """Both sides after every phase, and what differs (``problems``; empty when they agree)."""

    rules: str
    kernel_save: str
    kernel_ct: list[CtEntry]
    nfemu_ct: list[CtEntry]
    kernel_out: dict[str, list[bytes]]
    nfemu_out: dict[str, list[bytes]]
    kernel_ctinfo: dict[str, int]
    nfemu_ctinfo: dict[str, int]
    records: list[tuple[Record, int]]
    nfemu: NfemuSide
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        """Everything a failure message needs: the problems, then the context."""
        lines = list(self.problems)
        lines.append("--- rules\n" + self.rules.rstrip())
        lines.append("--- capture (iface, time from start, packet)")
        t0 = self.records[0][1] if self.records else 0
        for (rec, ns), sent in zip(self.records, self.nfemu.sent):
            j = sent.journey
            lines.append(f"{rec.iface} {(ns - t0) / 1e9:8.3f} {Packet.from_bytes(rec.data).describe()}"
                         f"  # nfemu: {sent.ctinfo} {j.verdict.name} {j.where} {j.out_iface}"
                         + (f"  ({rec.note})" if rec.note else ""))
        lines.append("--- kernel conntrack\n" + "\n".join(map(_fmt_ct, self.kernel_ct)))
        lines.append("--- nfemu conntrack\n" + "\n".join(map(_fmt_ct, self.nfemu_ct)))
        lines.append("--- kernel iptables-save -c\n" + self.kernel_save.rstrip())
        return "\n".join(lines)


class Scenario:
    """``Scenario(rules, neighbours).run(phase1, phase2, ...)``: each phase is a list of
    records, or a callable given the kernel's conntrack entries so far (a dict by original
    tuple, see :meth:`kernel_port`) that returns one."""

    def __init__(self, rules: str, neighbours=(), steer: bool | None = None,
                 valid_checksums: bool = True):
        self.rules = rules
        self.neighbours = neighbours
        self.steer = steer
        self.valid_checksums = valid_checksums

    @staticmethod
    def kernel_port(ct: dict, proto: int, src: str, sport: int, dst: str, dport: int) -> int:
        """The port the kernel's reply tuple sends replies to (the source port after SNAT /
        MASQUERADE) for the connection with this original tuple."""
        e = ct.get((proto, ip4(src), ip4(dst), sport, dport, None))
        if e is None:
            raise AssertionError(f"the kernel has no entry for {proto} {src}:{sport} -> "
                                 f"{dst}:{dport}")
        return e.reply_dport

    def run(self, *phases) -> Outcome:
        with tempfile.TemporaryDirectory(prefix="nfemu-replay-") as tmp, \
                ReplayNet(self.neighbours) as net:
            net.load(self.rules)
            side = NfemuSide(self.rules, tmp, steer=self.steer)
            played_all: list[tuple[Record, int]] = []
            kernel_out = {i: [] for i in IFACES}
            ct: dict[tuple, CtEntry] = {}
            for phase in phases:
                records = phase(ct) if callable(phase) else phase
                played = net.play(records)
                for iface in IFACES:
                    kernel_out[iface] += played.out[iface]
                played_all += list(zip(played.records, played.sent_ns))
                ct = {_ct_key(e): e for e in net.ct_entries()}
                side.play(played, ct)
                side.learn_aliases(ct)
            saved = net.save()
            kernel_entries = net.ct_entries()
            read_at = time.time()
            kernel_ctinfo = net.ctinfo_counts()
            # the whole capture as one file (what `nfemu replay` would be given); kept, with
            # the rules, the phases nfemu replayed and what each side printed, in
            # $NFEMU_REPLAY_KEEP when that is set
            write_pcapng(Path(tmp) / "capture.pcapng",
                         [(r.iface, r.data, ns) for r, ns in played_all])
            keep = os.environ.get("NFEMU_REPLAY_KEEP")
            if keep:
                _keep(Path(tmp), Path(keep), self.rules, saved.text, kernel_entries, side,
                      read_at)
            out = Outcome(self.rules, saved.text, kernel_entries, side.ct_entries(read_at),
                          kernel_out, side.out, kernel_ctinfo, side.ctinfo_counts(),
                          played_all, side)
            out.problems = side.problems + compare(out, saved.ruleset, self.valid_checksums)
            return out


def _keep(tmp: Path, keep: Path, rules: str, kernel_save: str, kernel_entries,
          side: NfemuSide, now: float) -> None:
    """Copy a scenario's files to a fresh directory under KEEP (for debugging)."""
    import shutil

    keep.mkdir(parents=True, exist_ok=True)
    where = Path(tempfile.mkdtemp(prefix="replay-", dir=keep))
    for f in tmp.iterdir():
        shutil.copy(f, where / f.name)
    (where / "rules").write_text(rules)
    (where / "kernel.save").write_text(kernel_save)
    (where / "kernel.conntrack").write_text("\n".join(map(_fmt_ct, kernel_entries)) + "\n")
    (where / "nfemu.save").write_text(side.node.counted_ruleset().save(counters=True))
    (where / "nfemu.conntrack").write_text(
        "\n".join(map(_fmt_ct, side.ct_entries(now))) + "\n")


def compare(out: Outcome, kernel_ruleset, valid_checksums: bool = True) -> list[str]:
    """Every difference between the kernel and nfemu after a scenario. VALID_CHECKSUMS: the
    capture's checksums are all valid, so every packet the kernel sent must be too."""
    problems = []
    node = out.nfemu.node
    # counters: every rule and policy, packets and bytes
    kernel = kernel_counters(kernel_ruleset)
    ours = {k: tuple(node.counters.get(k, (0, 0))) for k in kernel}
    for k in kernel:
        if kernel[k] != ours[k]:
            problems.append(f"counter {k}: kernel {kernel[k]}, nfemu {ours[k]}")
    for k, v in node.counters.items():
        if k not in kernel and tuple(v) != (0, 0):
            problems.append(f"counter {k}: only nfemu {v}")
    if not problems:
        body = [l for l in node.counted_ruleset().save(counters=True).splitlines()
                if not l.startswith("#")]
        kbody = [l for l in out.kernel_save.splitlines() if not l.startswith("#")]
        if body != kbody:
            problems.append("iptables-save -c text differs:\n" + "\n".join(
                f"  kernel {a!r}\n  nfemu  {b!r}" for a, b in zip(kbody, body) if a != b))
    # conntrack
    kct = {_ct_key(e): e for e in out.kernel_ct}
    nct = {_ct_key(e): e for e in out.nfemu_ct}
    for key in sorted(set(kct) | set(nct), key=str):
        k, n = kct.get(key), nct.get(key)
        if k is None or n is None:
            problems.append(f"conntrack {_fmt_key(key)}: kernel "
                            f"{_fmt_ct(k) if k else 'no entry'}; nfemu "
                            f"{_fmt_ct(n) if n else 'no entry'}")
            continue
        same = ("reply_src", "reply_dst", "reply_sport", "reply_dport", "reply_icmp",
                "state", "flags", "mark", "zone")
        diff = [f for f in same if getattr(k, f) != getattr(n, f)]
        if abs(k.timeout - n.timeout) > 2:
            diff.append("timeout")
        if diff:
            problems.append(f"conntrack {_fmt_key(key)} differs in {', '.join(diff)}:\n"
                            f"  kernel {_fmt_ct(k)}\n  nfemu  {_fmt_ct(n)}")
    # what the node sent, byte for byte
    for iface in IFACES:
        ks, ns = out.kernel_out.get(iface, []), out.nfemu_out.get(iface, [])
        for i, data in enumerate(ks if valid_checksums else ()):
            if Packet.from_bytes(data).to_bytes() != data:
                problems.append(f"kernel packet {i} out of {iface} has a bad checksum or "
                                f"does not re-serialise: {data.hex()}")
        if ks != ns:
            problems.append(f"packets out of {iface}: kernel {len(ks)}, nfemu {len(ns)}")
            for i in range(max(len(ks), len(ns))):
                a = ks[i] if i < len(ks) else None
                b = ns[i] if i < len(ns) else None
                if a != b:
                    problems.append(f"  {iface} #{i}: kernel {_describe(a)}\n"
                                    f"  {' ' * len(iface)}  {' ' * len(str(i))}  nfemu  "
                                    f"{_describe(b)}")
    # ctstate of every packet
    if out.kernel_ctinfo != out.nfemu_ctinfo:
        problems.append(f"ctstate counts: kernel {out.kernel_ctinfo}, nfemu {out.nfemu_ctinfo}")
    return problems


def _describe(data: bytes | None) -> str:
    if data is None:
        return "nothing"
    pkt = Packet.from_bytes(data)
    text = f"{pkt.describe()} ttl={pkt.ttl} id={pkt.ip_id} {data.hex()}"
    if pkt.inner is not None:
        text += f" inner: {pkt.inner.describe()}"
    return text
