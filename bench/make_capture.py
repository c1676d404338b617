#!/usr/bin/env python3
"""Generate the replay benchmark's capture: N TCP packets in F interleaved flows to the
services of the generated kube-proxy dump (bench/gen_kube_dump.py), streamed to a file.

    python3 bench/make_capture.py -o /tmp/replay.pcapng                # 1,000,000 in 10,000
    python3 bench/make_capture.py --packets 100000 --flows 10000 -o OUT --format pcap
    python3 bench/make_capture.py --replies static -o OUT              # no nfemu needed

Issue 4 item 7. The node is the one of tests/kernel/test_kube_vs_kernel.py: ``eth0``
192.168.50.2/24 faces the clients, ``eth1`` 10.50.0.1/24 faces the pod network, and the
default route goes via 10.50.0.2 on eth1, so every pod IP (10.244.0.0/16) is reached over
eth1. :data:`HOST_OPTIONS` are the matching ``nfemu replay`` host options.

Each flow is one TCP connection from a client outside the node (192.168.50.10-249, on
eth0's link) to the ClusterIP:80 of a service drawn uniformly from the dump (seeded).
The dump has ClusterIP services only (no NodePort rules: KUBE-NODEPORTS is empty), so
there are no NodePort flows. The capture holds the packets *as they arrive at the node*
(what ``nfemu replay`` feeds in):

    client -> ClusterIP:80          on eth0    SYN (MSS option), ACK, data, FIN/ACK, ACK
    endpoint:8080 -> 10.50.0.1:P    on eth1    SYN/ACK (MSS option), data, FIN/ACK

The client is outside the cluster CIDR, so kube-proxy's ``! -s 10.244.0.0/16 ... -j
KUBE-MARK-MASQ`` marks the SYN and KUBE-POSTROUTING MASQUERADEs it ``--random-fully``: the
endpoint answers the node's eth1 address on a port P the node drew at random, from an
endpoint the node drew at random. Both are the reply tuple of the connection's conntrack
entry, which a capture must contain but cannot know in advance. ``--replies`` says where
they come from:

``nfemu`` (the default)
    nfemu itself decides, once per flow: the generator holds a ``Node`` of the dump with
    the node's host and seed ``--seed`` and hands it every SYN, in capture order, with its
    capture timestamp, arriving on eth0, through nfemu's own replay driver
    (``nfemu.replay.replay``, hence the stateful ``Node.send``: the same calls ``nfemu
    replay`` makes for those packets, but given as IP datagrams, without the Ethernet
    header, whose MAC addresses no rule of the dump reads). The reply tuple of the conntrack entry a SYN creates
    addresses that flow's SYN/ACK and later server packets. ``nfemu replay`` run with the
    same ``--seed`` draws the same endpoints and ports: only a flow's first packet
    traverses the nat chains, which hold the only random choices (statistic, and the port
    MASQUERADE --random-fully draws), and the replay meets the SYNs in the same order with
    the same connections in its table (further on in their TCP states, which does not
    change the tuples a port choice is checked against; none expires during the capture:
    the shortest timeout met, LAST_ACK's, is 30 s, and the capture lasts N / rate seconds,
    10 s at the defaults; keep it under 30 s). So every reply
    matches its connection. This holds for the nfemu version that made the capture: the
    benchmark's cache key includes a hash of nfemu's sources, and the benchmark checks the
    replay's counters (no INVALID drop in KUBE-FORWARD, every non-SYN packet ESTABLISHED).
``static``
    No nfemu: the endpoint is drawn uniformly from the service's endpoints with the
    generator's own random numbers and P is the client's source port (as if MASQUERADE
    had kept it). For a replay this means nearly every reply is unmatched (another
    endpoint or port than nfemu chose: a new SYN/ACK-less connection, INVALID for
    conntrack), so a benchmark of it measures INVALID traffic. Useful only to test the
    generator, or to benchmark the reader without nfemu.

Flow shape: SYN, SYN/ACK, ACK; then ``k - 6`` data segments alternating client request
(PSH/ACK, 60-400 bytes) and server response (PSH/ACK, 1460 bytes mostly, sometimes
shorter), each acknowledging everything the other side sent (one segment in flight, window
64240, no window scaling, so conntrack's window tracking accepts every segment); then
FIN/ACK from the client, FIN/ACK from the server, ACK. Sequence numbers start at seeded
random ISNs and wrap modulo 2**32. Flow lengths k vary between 6 and about
2 * N / F - 6 and add up to exactly N (flows are paired: one gets d more packets, its
partner d fewer).

Interleaving: each flow lasts a random 2-30 % of the capture and starts at a random time
within it; its packets are evenly spaced over that span (virtual time). Packets of all
flows are merged in virtual-time order (a heap of one entry per flow), then stamped at a
constant rate (``--rate``, default 100,000 packets per second of capture time): packet j
has time :data:`START_NS` (2023-11-14 22:13:20 UTC) + j / rate. On average 16 % of the
flows are open at once, at most about 21 % (2,100 of 10,000). Timestamps are strictly
increasing.

Output: Ethernet frames (link type 1, no padding, no FCS), IPv4 with DF, TTL 64 and
correct IP and TCP checksums, in either

* ``pcapng`` (default): two Interface Description Blocks, ``eth0`` and ``eth1``
  (if_name, nanosecond if_tsresol), each packet an Enhanced Packet Block on the
  interface it arrives on, so a replay that honours the file's interface names sees
  replies arrive on eth1; or
* ``pcap``: classic pcap, nanosecond magic, no interface information (replay everything
  with ``-i eth0``; conntrack does not care on which interface a reply arrives, and the
  dump has no ``-i`` rules, so counters are the same).

tcpdump and tshark read both. Memory is flat in N: state per flow (F entries) plus a
write buffer. The parameters and counts go to ``OUT.json`` beside the capture.

Packets are built with ``struct`` and arithmetic checksums (16-bit word sums of the
headers, prefix sums of the fixed payload patterns), not with scapy or
``nfemu.packet.Packet``: ``Packet(...).to_bytes()`` of a 1460-byte segment costs about
15 us, :func:`tcp_frame` about 1 us, and gives the same bytes (checked for payloads of
0-1460 bytes, with and without the MSS option). The whole generator runs at about
3.5 us a packet (1,000,000 packets in 3.5 s, plus the dump's load for ``--replies nfemu``).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import struct
import sys
import time
from collections.abc import Callable

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

import gen_kube_dump

NODE0, NODE1, PEER2 = "192.168.50.2", "10.50.0.1", "10.50.0.2"
NODE0_PREFIX = NODE1_PREFIX = 24
# `nfemu replay` / `nfemu trace` host options of this node
HOST_OPTIONS = ["--iface", f"eth0={NODE0}/{NODE0_PREFIX}",
                "--iface", f"eth1={NODE1}/{NODE1_PREFIX}",
                "--default-gateway", PEER2]
CLIENT_FIRST, CLIENT_COUNT = 10, 240          # clients 192.168.50.10 .. .249
SPORT_FIRST = 10000                           # client source ports 10000 ..
START_NS = 1_700_000_000 * 1_000_000_000     # default capture start (2023-11-14)
MSS = 1460
WINDOW = 64240
MIN_FLOW = 6                                  # SYN, SYN/ACK, ACK, FIN, FIN, ACK

MAC_NODE0 = bytes.fromhex("020000000002")     # node eth0
MAC_NODE1 = bytes.fromhex("020000000102")     # node eth1
MAC_PEER2 = bytes.fromhex("020000000103")     # 10.50.0.2, the pod network's router
ETH_IP = b"\x08\x00"

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MSS_OPT = struct.pack("!BBH", 2, 4, MSS)


def ip_int(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return a << 24 | b << 16 | c << 8 | d


def ip_text(n: int) -> str:
    return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


# ---- payload patterns and their checksum prefix sums --------------------------------------

def _pattern(head: bytes, size: int) -> bytes:
    filler = b"abcdefghijklmnopqrstuvwxyz0123456789"
    body = head + filler * (size // len(filler) + 1)
    return body[:size]


REQUEST = _pattern(b"GET /api/v1/items?page=1 HTTP/1.1\r\nHost: svc\r\nUser-Agent: bench\r\n"
                   b"Accept: */*\r\nX-Pad: ", MSS)
RESPONSE = _pattern(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: 100000\r\n\r\n", MSS)


def _prefix_sums(data: bytes) -> list:
    """s[k] = sum of the first k big-endian 16-bit words of data (unfolded)."""
    words = struct.unpack(f"!{len(data) // 2}H", data[:len(data) // 2 * 2])
    out = [0]
    acc = 0
    for w in words:
        acc += w
        out.append(acc)
    return out


_REQ_SUMS = _prefix_sums(REQUEST)
_RESP_SUMS = _prefix_sums(RESPONSE)


def payload_sum(pattern: bytes, sums: list, n: int) -> int:
    """Unfolded 16-bit one's-complement-style word sum of pattern[:n] (odd n: the last
    byte is the high byte of a zero-padded word, RFC 1071)."""
    s = sums[n >> 1]
    if n & 1:
        s += pattern[n - 1] << 8
    return s


def fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


_IP_TCP = struct.Struct("!BBHHHBBHII HHIIBBHHH")


def tcp_frame(eth: bytes, src: int, dst: int, sport: int, dport: int, seq: int, ack: int,
              flags: int, ip_id: int, options: bytes, payload: bytes, psum: int) -> bytes:
    """An Ethernet frame (header ``eth``, 14 bytes) holding one IPv4 TCP segment with
    correct checksums. ``psum`` is payload_sum() of ``payload``; ``options`` is 0 or 4
    bytes (the MSS option)."""
    tcp_len = 20 + len(options) + len(payload)
    total = 20 + tcp_len
    doff_flags = (5 + len(options) // 4) << 12 | flags
    addr = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
    ip_sum = 0x4500 + total + ip_id + 0x4000 + 0x4006 + addr
    ip_csum = ~fold(ip_sum) & 0xFFFF
    t = (addr + 6 + tcp_len + sport + dport + (seq >> 16) + (seq & 0xFFFF)
         + (ack >> 16) + (ack & 0xFFFF) + doff_flags + WINDOW + psum)
    if options:
        t += MSS_SUM
    tcp_csum = ~fold(t) & 0xFFFF
    hdr = _IP_TCP.pack(0x45, 0, total, ip_id, 0x4000, 64, 6, ip_csum, src, dst,
                       sport, dport, seq, ack, doff_flags >> 8, flags, WINDOW, tcp_csum, 0)
    return eth + hdr + options + payload


MSS_SUM = (2 << 8 | 4) + MSS


# ---- capture writers -----------------------------------------------------------------------

class _Writer:
    """Buffered writer of records; ``write(ts_ns, iface, frame)`` with iface 0 (eth0) or 1
    (eth1)."""

    FLUSH = 4096

    def __init__(self, path: str):
        self.f = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.buf: list = []
        self.count = 0
        self.bytes = 0

    def _flush(self) -> None:
        self.f.write(b"".join(self.buf))
        self.buf.clear()

    def close(self) -> None:
        self._flush()
        self.f.close()


class PcapWriter(_Writer):
    """Classic pcap, little-endian, nanosecond magic 0xA1B23C4D, link type 1 (Ethernet)."""

    _rec = struct.Struct("<IIII")

    def __init__(self, path: str):
        super().__init__(path)
        self.f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))

    def write(self, ts_ns: int, iface: int, frame: bytes) -> None:
        n = len(frame)
        sec, ns = divmod(ts_ns, 1_000_000_000)
        self.buf.append(self._rec.pack(sec, ns, n, n))
        self.buf.append(frame)
        self.count += 1
        self.bytes += n
        if len(self.buf) >= self.FLUSH:
            self._flush()


def _pcapng_option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _pcapng_block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


class PcapngWriter(_Writer):
    """pcapng, little-endian: one Section Header Block, Interface Description Blocks for
    eth0 and eth1 (link type 1, snaplen 262144, if_name, if_tsresol 9 = nanoseconds), one
    Enhanced Packet Block per packet (no options)."""

    _epb = struct.Struct("<IIIIIII")

    def __init__(self, path: str, names=("eth0", "eth1")):
        super().__init__(path)
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _pcapng_option(
            4, b"nfemu bench/make_capture.py") + _pcapng_option(0, b"")
        out = [_pcapng_block(0x0A0D0D0A, shb)]
        for name in names:
            opts = (_pcapng_option(2, name.encode()) + _pcapng_option(9, b"\x09")
                    + _pcapng_option(0, b""))
            out.append(_pcapng_block(1, struct.pack("<HHI", 1, 0, 262144) + opts))
        self.f.write(b"".join(out))

    def write(self, ts_ns: int, iface: int, frame: bytes) -> None:
        n = len(frame)
        pad = (-n) % 4
        blen = 32 + n + pad
        self.buf.append(self._epb.pack(6, blen, iface, ts_ns >> 32, ts_ns & 0xFFFFFFFF, n, n))
        self.buf.append(frame)
        self.buf.append(b"\0" * pad + struct.pack("<I", blen) if pad else
                        struct.pack("<I", blen))
        self.count += 1
        self.bytes += n
        if len(self.buf) >= self.FLUSH:
            self._flush()


# ---- reply oracles ---------------------------------------------------------------------------

Reply = tuple[int, int, int, int]     # the server's packets: src, sport, dst, dport


class StaticReplies:
    """``--replies static``: a uniformly drawn endpoint of the service on 8080, answering
    the node's eth1 address on the client's own source port. Needs no nfemu."""

    name = "static"

    def __init__(self, endpoints: int, rng: random.Random):
        self.endpoints = endpoints
        self.rng = rng
        self.node1 = ip_int(NODE1)

    def __call__(self, svc: int, client: int, sport: int, syn_ip: bytes, ts_ns: int) -> Reply:
        k = self.rng.randrange(self.endpoints)
        ep = ip_int(gen_kube_dump.endpoint_ip(svc * self.endpoints + k))
        return ep, gen_kube_dump.TARGET_PORT, self.node1, sport


class _Feed:
    """An endless iterator handing nfemu's replay driver one pushed item per step, so the
    driver can be advanced one packet at a time (it pulls a record only when asked for its
    next result)."""

    def __init__(self):
        self.item = None

    def __iter__(self):
        return self

    def __next__(self):
        item, self.item = self.item, None
        if item is None:
            raise RuntimeError("the replay driver read ahead of the generator")
        return item


class NfemuReplies:
    """``--replies nfemu``: the reply tuple of the conntrack entry nfemu creates for the
    flow's SYN. The SYNs go through nfemu's own replay driver (``nfemu.replay.replay``,
    which ``nfemu replay`` runs, and so through the stateful ``Node.send``) on a node with
    the benchmark's host and seed, in capture order, at capture time, arriving on eth0:
    the same calls the replay of the capture makes for them."""

    name = "nfemu"

    def __init__(self, dump_path: str, seed: int, log=None):
        if REPO_ROOT not in sys.path:
            sys.path.insert(0, REPO_ROOT)
        from fractions import Fraction

        import nfemu
        from nfemu.host import Host
        from nfemu.node import Node
        from nfemu.replay import replay
        t0 = time.perf_counter()
        ruleset = nfemu.load(dump_path)
        host = Host.from_options([f"eth0={NODE0}/{NODE0_PREFIX}", f"eth1={NODE1}/{NODE1_PREFIX}"],
                                 default_gateway=PEER2)
        self.node = Node(ruleset, host, seed=seed)
        self.load_seconds = time.perf_counter() - t0
        self.Fraction = Fraction
        self.feed = _Feed()
        self.results = replay(self.node, self.feed, iface="eth0")
        if log:
            log(f"nfemu oracle: loaded {dump_path} in {self.load_seconds:.1f} s")

    def __call__(self, svc: int, client: int, sport: int, syn_ip: bytes, ts_ns: int) -> Reply:
        self.feed.item = (self.Fraction(ts_ns, 1_000_000_000), syn_ip)
        r = next(self.results)
        journey = r.journey
        ct = getattr(journey, "ct", None)
        if ct is None:
            raise RuntimeError(
                f"nfemu gave no conntrack entry for the SYN from {ip_text(client)}:{sport} "
                f"(problem {r.problem!r} {r.message or ''}, verdict "
                f"{getattr(journey, 'verdict', '-')}): is Node.send stateful? "
                "--replies static makes a capture without nfemu.")
        t = ct.repl_tuple
        return t.src, t.sport, t.dst, t.dport


# ---- the flows ---------------------------------------------------------------------------------

class Flow:
    """One TCP connection's generation state."""

    __slots__ = (
        "cid",
        "client",
        "cseq",
        "dt",
        "eth_c",
        "idx",
        "reply",
        "sent",
        "sid",
        "sport",
        "sseq",
        "svc",
        "t0",
        "total",
        "vip",
        "vport",
    )

    def __init__(self, idx, svc, client, sport, vip, vport, cisn, sisn, total, t0, dt):
        self.idx = idx
        self.svc = svc
        self.client = client
        self.sport = sport
        self.vip = vip
        self.vport = vport
        self.reply: Reply | None = None
        self.cseq = cisn            # next sequence number of the client
        self.sseq = sisn            # next sequence number of the server
        self.total = total
        self.sent = 0
        self.t0 = t0
        self.dt = dt
        self.cid = (idx * 7) & 0xFFFF     # IP ids, advanced per packet
        self.sid = (idx * 13 + 1) & 0xFFFF
        self.eth_c = MAC_NODE0 + bytes((2, 0, 0, 0, 0, client & 0xFF)) + ETH_IP


ETH_S = MAC_NODE1 + MAC_PEER2 + ETH_IP
M32 = 0xFFFFFFFF


def flow_sizes(n: int, f: int, rng: random.Random) -> list:
    """k_i >= MIN_FLOW for every flow, sum exactly n; paired variation."""
    base, rem = divmod(n, f)
    sizes = [base + (1 if i < rem else 0) for i in range(f)]
    for i in range(0, f - 1, 2):
        d = rng.randint(0, sizes[i + 1] - MIN_FLOW)
        sizes[i] += d
        sizes[i + 1] -= d
    rng.shuffle(sizes)
    return sizes


def generate(path: str, packets: int = 1_000_000, flows: int = 10_000, seed: int = 1,
             services: int = 10_000, endpoints: int = 5, rate: float = 100_000.0,
             fmt: str = "pcapng", replies: str = "nfemu", dump_path: str | None = None,
             start_ns: int = START_NS, log: Callable[[str], None] | None = None) -> dict:
    """Write the capture to ``path``; return its description (parameters and counts)."""
    if flows < 1 or packets < MIN_FLOW * flows:
        raise ValueError(f"need at least {MIN_FLOW} packets per flow ({MIN_FLOW * flows} "
                         f"for {flows} flows), got {packets}")
    if flows > CLIENT_COUNT * (65536 - SPORT_FIRST):
        raise ValueError("too many flows for the client address/port space")
    if services < 1 or endpoints < 1:
        raise ValueError("services and endpoints must be >= 1")
    t_start = time.perf_counter()
    rng = random.Random(seed)
    if replies == "nfemu":
        if dump_path is None:
            raise ValueError("--replies nfemu needs the dump (--dump)")
        oracle = NfemuReplies(dump_path, seed, log)
    elif replies == "static":
        oracle = StaticReplies(endpoints, random.Random(seed ^ 0x5EED))
    else:
        raise ValueError(f"unknown replies mode {replies!r}")

    sizes = flow_sizes(packets, flows, rng)
    heap = []
    client_base = ip_int("192.168.50.0")
    for i in range(flows):
        svc = rng.randrange(services)
        client = client_base + CLIENT_FIRST + i % CLIENT_COUNT
        sport = SPORT_FIRST + i // CLIENT_COUNT
        vip = ip_int(gen_kube_dump.cluster_ip(svc))
        dur = rng.uniform(0.02, 0.30)
        t0 = rng.uniform(0.0, 1.0 - dur)
        fl = Flow(i, svc, client, sport, vip, gen_kube_dump.SERVICE_PORT,
                  rng.getrandbits(32), rng.getrandbits(32), sizes[i], t0,
                  dur / (sizes[i] - 1))
        heap.append((t0, i, fl))
    heapq.heapify(heap)

    writer = PcapngWriter(path) if fmt == "pcapng" else PcapWriter(path)
    step = 1e9 / rate
    req, req_sums, resp, resp_sums = REQUEST, _REQ_SUMS, RESPONSE, _RESP_SUMS
    prng = random.Random(seed ^ 0xDA7A)
    j = 0
    n_flows_done = 0
    max_open = opened = 0
    heappop, heapreplace = heapq.heappop, heapq.heapreplace
    while heap:
        _vt, _i, fl = heap[0]
        k = fl.sent
        total = fl.total
        ts = start_ns + int(j * step)
        last_data = total - 3            # index of the client's FIN
        if k == 0:                                   # SYN
            frame = tcp_frame(fl.eth_c, fl.client, fl.vip, fl.sport, fl.vport,
                              fl.cseq, 0, SYN, fl.cid, MSS_OPT, b"", 0)
            fl.reply = oracle(fl.svc, fl.client, fl.sport, frame[14:], ts)
            fl.cseq = (fl.cseq + 1) & M32
            iface = 0
            opened += 1
            max_open = max(max_open, opened)
        elif k == 1:                                 # SYN/ACK
            r = fl.reply
            frame = tcp_frame(ETH_S, r[0], r[2], r[1], r[3], fl.sseq, fl.cseq, SYN | ACK,
                              fl.sid, MSS_OPT, b"", 0)
            fl.sseq = (fl.sseq + 1) & M32
            iface = 1
        elif k == 2:                                 # ACK
            frame = tcp_frame(fl.eth_c, fl.client, fl.vip, fl.sport, fl.vport,
                              fl.cseq, fl.sseq, ACK, fl.cid, b"", b"", 0)
            iface = 0
        elif k < last_data:                          # data, client first
            if (k - 3) % 2 == 0:
                n = prng.randint(60, 400)
                frame = tcp_frame(fl.eth_c, fl.client, fl.vip, fl.sport, fl.vport,
                                  fl.cseq, fl.sseq, PSH | ACK, fl.cid, b"", req[:n],
                                  payload_sum(req, req_sums, n))
                fl.cseq = (fl.cseq + n) & M32
                iface = 0
            else:
                n = MSS if prng.random() < 0.8 else prng.randint(1, MSS)
                r = fl.reply
                frame = tcp_frame(ETH_S, r[0], r[2], r[1], r[3], fl.sseq, fl.cseq,
                                  PSH | ACK, fl.sid, b"", resp[:n],
                                  payload_sum(resp, resp_sums, n))
                fl.sseq = (fl.sseq + n) & M32
                iface = 1
        elif k == last_data:                         # client FIN
            frame = tcp_frame(fl.eth_c, fl.client, fl.vip, fl.sport, fl.vport,
                              fl.cseq, fl.sseq, FIN | ACK, fl.cid, b"", b"", 0)
            fl.cseq = (fl.cseq + 1) & M32
            iface = 0
        elif k == total - 2:                         # server FIN
            r = fl.reply
            frame = tcp_frame(ETH_S, r[0], r[2], r[1], r[3], fl.sseq, fl.cseq, FIN | ACK,
                              fl.sid, b"", b"", 0)
            fl.sseq = (fl.sseq + 1) & M32
            iface = 1
        else:                                        # last ACK
            frame = tcp_frame(fl.eth_c, fl.client, fl.vip, fl.sport, fl.vport,
                              fl.cseq, fl.sseq, ACK, fl.cid, b"", b"", 0)
            iface = 0
        if iface:
            fl.sid = (fl.sid + 1) & 0xFFFF
        else:
            fl.cid = (fl.cid + 1) & 0xFFFF
        writer.write(ts, iface, frame)
        j += 1
        k += 1
        fl.sent = k
        if k == total:
            heappop(heap)
            fl.reply = None
            n_flows_done += 1
            opened -= 1
        else:
            heapreplace(heap, (fl.t0 + k * fl.dt, fl.idx, fl))
    writer.close()
    elapsed = time.perf_counter() - t_start
    info = {
        "path": path,
        "format": fmt,
        "packets": writer.count,
        "flows": n_flows_done,
        "frame_bytes": writer.bytes,
        "file_bytes": os.path.getsize(path),
        "seed": seed,
        "services": services,
        "endpoints": endpoints,
        "rate": rate,
        "start_ns": start_ns,
        "capture_seconds": (j - 1) * step / 1e9 if j else 0.0,
        "max_open_flows": max_open,
        "replies": oracle.name,
        "host_options": HOST_OPTIONS,
        "generate_seconds": elapsed,
    }
    if isinstance(oracle, NfemuReplies):
        info["oracle_load_seconds"] = oracle.load_seconds
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True, help="capture file to write")
    ap.add_argument("--packets", "-n", type=int, default=1_000_000)
    ap.add_argument("--flows", "-f", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1,
                    help="seed of the flows and of nfemu's node (replay with the same --seed)")
    ap.add_argument("--services", type=int, default=10_000, help="services in the dump")
    ap.add_argument("--endpoints", type=int, default=5, help="endpoints per service")
    ap.add_argument("--rate", type=float, default=100_000.0,
                    help="packets per second of capture time (default 100000)")
    ap.add_argument("--format", choices=("pcapng", "pcap"), default="pcapng")
    ap.add_argument("--replies", choices=("nfemu", "static"), default="nfemu",
                    help="where the reply tuples come from (see the module docstring)")
    ap.add_argument("--dump", help="the kube dump (default: generated with gen_kube_dump "
                    "for --services/--endpoints into bench/.cache)")
    ap.add_argument("--quiet", "-q", action="store_true")
    a = ap.parse_args(argv)

    def log(msg: str) -> None:
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    dump = a.dump
    if a.replies == "nfemu" and dump is None:
        from bench_load import prepare_dump
        dump = prepare_dump(a.services, a.endpoints, True)
    try:
        info = generate(a.output, a.packets, a.flows, a.seed, a.services, a.endpoints,
                        a.rate, a.format, a.replies, dump, log=log)
    except ValueError as exc:
        ap.error(str(exc))
    info["dump"] = dump
    with open(a.output + ".json", "w") as fp:
        json.dump(info, fp, indent=1)
    log(f"{info['packets']:,} packets in {info['flows']:,} flows ({info['file_bytes']:,} "
        f"bytes, {info['capture_seconds']:.2f} s of capture, up to {info['max_open_flows']:,} "
        f"flows open) written to {a.output} in {info['generate_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
