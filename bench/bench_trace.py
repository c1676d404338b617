#!/usr/bin/env python3
"""Packet-evaluation speed benchmark: nfemu's ``Node.trace`` vs. the kernel's netfilter.

    python3 bench/bench_trace.py [--services 10000] [--packets N] [--quick] [--full] [--json]

Issue 3 item 10. On a kube-proxy dump (bench/gen_kube_dump.py, cached in bench/.cache/)
it measures, in one command, what a new-connection packet costs (bench/README.md has the
method, its cross-check and caveats):

kernel (needs root, ``ip``, ``conntrack`` and the restore tool; skipped otherwise)
    Three network namespaces set up identically: a veth ``eth0`` with the node address
    10.0.0.2/24, and a default route via 10.0.0.1. The gateway's neighbour entry is
    permanent and points at a MAC nobody owns, so the peer, in a sink namespace, drops the
    frames as PACKET_OTHERHOST. They differ in the ruleset, loaded with
    ``iptables-nft-restore``: "rules" holds the dump; "empty" has the built-in chains, no
    rules, and an unreferenced conntrack rule that turns conntrack on; "zero" holds the
    dump of 0 services. A worker in each namespace sends TCP SYNs to ClusterIP:80 from a
    raw socket (IP_HDRINCL), each with its own source port, so each is a new connection.
    The OUTPUT and POSTROUTING hooks run synchronously inside ``sendto()``. So the CPU
    time of the send loop with the rules, minus the same loop with the empty ruleset,
    divided by the number of packets ("net"), is what netfilter spends on the rules per
    new connection. The conntrack table is flushed before every batch and checked after
    it: each connection DNATed to an endpoint of its service in "rules", none NATed in the
    other two.
nfemu (public API only)
    The same datagrams (``Packet.from_bytes`` of the same bytes) go through
    ``Node(ruleset, host).trace(pkt, local=True)``, with host ``eth0=10.0.0.2/24`` and
    default gateway 10.0.0.1. The DNAT result is checked the same way.
    Scaling: uniform packets at 100, 1,000 and 10,000 services (30,000 with --full).
    ``--all``: ``Node.outcomes`` of one SYN to a service with 1,000 endpoints.

Cases: ``first`` (the first service in KUBE-SERVICES), ``last`` (the last one) and
``uniform`` (services drawn uniformly with a seeded generator). Times are thread CPU
time (``time.thread_time``), so other processes on the machine disturb them less than
they disturb wall time; wall time is kept in ``--json``. Each repetition runs every case
on every kernel namespace and on nfemu, rotating which goes first, then every scaling
size. Results are medians over the repetitions, so each ratio compares measurements taken
in the same minutes.

stdlib only; nfemu is imported from the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, REPO_ROOT)

import gen_kube_dump  # noqa: E402
from nfemu.packet import _csum  # noqa: E402  (RFC 1071, the sum nfemu itself verifies)
from bench_load import machine_info as _load_machine_info, prepare_dump  # noqa: E402

NODE_IP = "10.0.0.2"
NODE_PREFIX = 24
GATEWAY = "10.0.0.1"
NOBODY_MAC = "02:00:00:00:00:99"   # the gateway's neighbour entry: a MAC no device has
SPORT_BASE = 1024
SPORT_SPAN = 64000                 # distinct source ports per batch
MAX_ENDPOINTS = 64000              # gen_kube_dump.endpoint_ip: 250 per /24 of 10.244.0.0/16

TARGETS = {"ratio_uniform": 0.5, "scaling_10k_over_100": 1.5, "all_seconds": 0.1}

# The empty ruleset of the baseline namespace: the same tables and built-in chains as the
# dump, no rule on any hook, and one unreferenced chain whose conntrack rule makes the
# kernel register conntrack in the namespace (nf_ct_netns_get at rule init), as the dump's
# conntrack/NAT rules do. Without it no connection is tracked at all.
EMPTY_RULESET = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:NFEMU-BENCH-CT - [0:0]
-A NFEMU-BENCH-CT -m conntrack --ctstate NEW -j RETURN
COMMIT
"""


# --------------------------------------------------------------------------
# packets
# --------------------------------------------------------------------------

def syn_bytes(src: str, dst: str, sport: int, dport: int = gen_kube_dump.SERVICE_PORT) -> bytes:
    """A 40-byte IPv4 TCP SYN (DF, TTL 64, window 64240, no options), checksums filled in:
    what the raw socket hands to the kernel and what nfemu reads."""
    s, d = bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))
    tcp = bytearray(struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0))
    struct.pack_into("!H", tcp, 16, _csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp))
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                               s, d))
    struct.pack_into("!H", ip, 10, _csum(bytes(ip)))
    return bytes(ip + tcp)


def make_batch(case: str, services: int, n: int, rng: random.Random) -> List[Tuple[int, int]]:
    """(service index, source port) for n new connections."""
    if case == "first":
        idx = [0] * n
    elif case == "last":
        idx = [services - 1] * n
    else:
        idx = [rng.randrange(services) for _ in range(n)]
    return [(i, SPORT_BASE + k % SPORT_SPAN) for k, i in enumerate(idx)]


def service_endpoints(i: int, endpoints: int) -> List[str]:
    """Pod IPs of service i in the generated dump (gen_kube_dump's numbering)."""
    return [gen_kube_dump.endpoint_ip(i * endpoints + k) for k in range(endpoints)]


# --------------------------------------------------------------------------
# kernel side
# --------------------------------------------------------------------------

# Runs inside a namespace (ip netns exec). One JSON request per stdin line:
# {"src": ip, "pkts": [[dst, sport], ...]}; builds the datagrams first, then times the
# sendto() loop. Replies {"n", "cpu_s", "wall_s", "errors"}.
WORKER = r"""
import json, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF
def syn(src, dst, sport, dport):
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = bytearray(struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 2, 64240, 0, 0))
    struct.pack_into("!H", tcp, 16, csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp))
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, s, d))
    struct.pack_into("!H", ip, 10, csum(bytes(ip)))
    return bytes(ip + tcp)
so = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
send = so.sendto
for line in sys.stdin:
    req = json.loads(line)
    pk = [(syn(req["src"], d, sp, req["dport"]), (d, 0)) for d, sp in req["pkts"]]
    errors = 0
    w0 = time.perf_counter(); c0 = time.thread_time()
    for b, a in pk:
        try:
            send(b, a)
        except OSError:
            errors += 1
    c1 = time.thread_time(); w1 = time.perf_counter()
    print(json.dumps({"n": len(pk), "cpu_s": c1 - c0, "wall_s": w1 - w0, "errors": errors}),
          flush=True)
"""

_CT_LINE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*?"
                      r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")


class KernelBench:
    """Two node namespaces (rules / empty) and a sink namespace; a send worker in each node
    namespace. Use as a context manager: the namespaces are deleted on exit."""

    def __init__(self, rules_path: str, restore: str, log):
        self.rules_path = rules_path
        self.restore = restore
        self.log = log
        tag = f"nfemu-bt{os.getpid()}"
        self.sink = f"{tag}-sink"
        self.ns = {"rules": f"{tag}-rules", "empty": f"{tag}-empty", "zero": f"{tag}-zero"}
        self.created: List[str] = []
        self.workers: Dict[str, subprocess.Popen] = {}
        self.load_seconds: Dict[str, float] = {}
        self._loading: Optional[subprocess.Popen] = None
        self._t0 = 0.0

    def _run(self, argv: List[str], ns: Optional[str] = None, stdin=None,
             check: bool = True) -> subprocess.CompletedProcess:
        if ns is not None:
            argv = ["ip", "netns", "exec", ns, *argv]
        p = subprocess.run(argv, stdin=stdin, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-800:]}")
        return p

    def __enter__(self) -> "KernelBench":
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _setup(self) -> None:
        for name in (self.sink, *self.ns.values()):
            self._run(["ip", "netns", "add", name])
            self.created.append(name)
            self._run(["ip", "-n", name, "link", "set", "lo", "up"])
        for key, ns in self.ns.items():
            peer = f"p-{key}"
            self._run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                       "peer", "name", peer, "netns", self.sink])
            self._run(["ip", "-n", self.sink, "link", "set", peer, "up"])
            self._run(["ip", "-n", ns, "addr", "add", f"{NODE_IP}/{NODE_PREFIX}", "dev", "eth0"])
            self._run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            self._run(["ip", "-n", ns, "neigh", "add", GATEWAY, "lladdr", NOBODY_MAC,
                       "nud", "permanent", "dev", "eth0"])
            self._run(["ip", "-n", ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0"])
        for key, ns in self.ns.items():
            if key == "rules":
                # the big one runs in the background while nfemu loads (wait_loaded)
                self._t0 = time.perf_counter()
                with open(self.rules_path, "rb") as f:
                    self._loading = subprocess.Popen(
                        ["ip", "netns", "exec", ns, self.restore], stdin=f,
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                continue
            t0 = time.perf_counter()
            text = EMPTY_RULESET if key == "empty" else gen_kube_dump.generate(0, 1)
            p = subprocess.run(["ip", "netns", "exec", ns, self.restore],
                               input=text, capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"{self.restore} ({key} ruleset): {p.stderr.strip()}")
            self.load_seconds[key] = time.perf_counter() - t0

    def wait_loaded(self) -> None:
        """Wait for the dump to be loaded, then start a send worker in every namespace."""
        if self._loading is not None:
            err = self._loading.communicate()[1]
            rc, self._loading = self._loading.returncode, None
            if rc != 0:
                raise RuntimeError(f"{self.restore} < {self.rules_path}: exit {rc}: "
                                   f"{err.strip()[-800:]}")
            self.load_seconds["rules"] = time.perf_counter() - self._t0
            self.log(f"  kernel: dump loaded by {os.path.basename(self.restore)} in "
                     f"{self.load_seconds['rules']:.1f}s")
        env = dict(os.environ)
        for key, ns in self.ns.items():
            if key not in self.workers:
                self.workers[key] = subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, "-c", WORKER],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def close(self) -> None:
        if self._loading is not None:
            self._loading.kill()
            self._loading.wait()
            self._loading = None
        for w in self.workers.values():
            try:
                w.stdin.close()
                w.wait(timeout=10)
            except Exception:
                w.kill()
        self.workers.clear()
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.created.clear()

    def conntrack_max(self) -> int:
        with_ns = self._run(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"], self.ns["rules"])
        return int(with_ns.stdout.strip())

    def ensure_conntrack_room(self, n: int) -> None:
        """Raise nf_conntrack_max where the kernel lets the namespace do so, so that a
        batch of n new connections is never cut by early drop."""
        need = 2 * n
        for ns in self.ns.values():
            cur = int(self._run(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"],
                                ns).stdout.strip())
            if cur < need:
                p = self._run(["sysctl", "-w", f"net.netfilter.nf_conntrack_max={need}"], ns,
                              check=False)
                if p.returncode != 0:
                    raise RuntimeError(f"nf_conntrack_max is {cur} < {need} in {ns} and cannot "
                                       f"be raised: {p.stderr.strip()}")

    def flush(self, key: str) -> None:
        self._run(["conntrack", "-F"], self.ns[key], check=False)

    def send(self, key: str, pkts: List[Tuple[str, int]]) -> Dict:
        w = self.workers[key]
        w.stdin.write(json.dumps({"src": NODE_IP, "dport": gen_kube_dump.SERVICE_PORT,
                                  "pkts": pkts}) + "\n")
        w.stdin.flush()
        line = w.stdout.readline()
        if not line:
            raise RuntimeError(f"send worker in {self.ns[key]} exited (rc {w.poll()})")
        return json.loads(line)

    def check(self, key: str, batch: List[Tuple[int, int]], endpoints: int) -> Optional[str]:
        """None if the conntrack table holds exactly the batch's connections, each DNATed to
        an endpoint of its service on the target port (rules) or not NATed (empty)."""
        out = self._run(["conntrack", "-L", "-p", "tcp"], self.ns[key]).stdout
        seen = {}
        for line in out.splitlines():
            m = _CT_LINE.search(line)
            if m:
                seen[(m.group(2), int(m.group(3)))] = (m.group(5), int(m.group(7)))
        if len(seen) != len(batch):
            return f"{key}: {len(seen)} conntrack entries for {len(batch)} SYNs"
        for i, sport in batch:
            cip = gen_kube_dump.cluster_ip(i)
            reply = seen.get((cip, sport))
            if reply is None:
                return f"{key}: no conntrack entry for {cip}:{sport}"
            if key == "rules":
                if reply[1] != gen_kube_dump.TARGET_PORT or reply[0] not in service_endpoints(
                        i, endpoints):
                    return f"{key}: {cip}:{sport} -> {reply[0]}:{reply[1]}, not an endpoint"
            elif reply != (cip, gen_kube_dump.SERVICE_PORT):
                return f"{key}: {cip}:{sport} was NATed to {reply} without a service rule"
        return None


def kernel_skip_reason(a) -> Optional[str]:
    if "kernel" in a.skip:
        return "--skip kernel"
    if os.geteuid() != 0:
        return "not root (namespaces and iptables need CAP_NET_ADMIN/CAP_SYS_ADMIN)"
    for tool in ("ip", "conntrack", a.iptables_restore):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


# --------------------------------------------------------------------------
# nfemu side
# --------------------------------------------------------------------------

class _GcClock:
    """A ``gc.callbacks`` entry that adds up the wall time of the cyclic collector's runs:
    how much of a chunk went to collections rather than to nfemu's own work (chains that
    nfemu compiles on first use are new objects, which later full collections traverse)."""

    def __init__(self):
        self.seconds = 0.0
        self._start = None

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None


class NfemuSide:
    """nfemu through its public API only (nfemu.load, Node, Host, Packet)."""

    def __init__(self):
        import nfemu
        from nfemu.host import Host
        from nfemu.node import Node
        from nfemu.packet import Packet
        self.nfemu, self.Node, self.Packet = nfemu, Node, Packet
        self.host = Host.from_options([f"eth0={NODE_IP}/{NODE_PREFIX}"], default_gateway=GATEWAY)

    def node(self, path: str):
        """A Node on the dump at path, and the seconds nfemu.load took."""
        t0 = time.perf_counter()
        rs = self.nfemu.load(path)
        t1 = time.perf_counter()
        return self.Node(rs, self.host, seed=1), t1 - t0

    def packets(self, batch: List[Tuple[int, int]]):
        return [self.Packet.from_bytes(syn_bytes(NODE_IP, gen_kube_dump.cluster_ip(i), sp))
                for i, sp in batch]

    def first_trace(self, node) -> float:
        """The first trace on a fresh node, timed alone (it includes any lazy set-up)."""
        pkt = self.packets([(0, SPORT_BASE)])[0]
        c0 = time.thread_time()
        node.trace(pkt, local=True)
        return time.thread_time() - c0

    def chunk(self, node, batch: List[Tuple[int, int]], endpoints: int,
              budget: float) -> Dict:
        """Trace the batch's packets in order (stopping early once ``budget`` seconds have
        passed); CPU and wall time per packet. Only each result's final packet is kept, and
        every 8th whole journey, so that the benchmark's own bookkeeping leaves few objects
        for the cyclic collector. Then, untimed, the check: every final packet DNATed to an
        endpoint of its service on the target port, every kept journey sent out eth0."""
        pkts = self.packets(batch)
        finals, sample = [], []
        append, trace = finals.append, node.trace
        deadline = time.perf_counter() + budget
        gc_clock = _GcClock()
        gc.callbacks.append(gc_clock)
        w0 = time.perf_counter()
        c0 = time.thread_time()
        try:
            for k, pkt in enumerate(pkts):
                j = trace(pkt, local=True)
                append(j.packet)
                if k & 7 == 7:
                    sample.append((k, j))
                    if time.perf_counter() > deadline:
                        break
        finally:
            c1 = time.thread_time()
            w1 = time.perf_counter()
            gc.callbacks.remove(gc_clock)
        del j
        bad = None
        for (i, _), p in zip(batch, finals):
            dst = None if p is None else ".".join(str(p.dst >> b & 255) for b in (24, 16, 8, 0))
            if (p is None or p.dport != gen_kube_dump.TARGET_PORT
                    or dst not in service_endpoints(i, endpoints)):
                bad = (f"service {i}: final packet {p.describe() if p is not None else None}, "
                       f"not DNATed to one of its endpoints")
                break
        for k, j in sample:
            if bad is None and (j.where != "out" or j.out_iface != "eth0"):
                bad = (f"service {batch[k][0]}: verdict {j.verdict} where {j.where!r} out "
                       f"{j.out_iface!r}, not sent out eth0")
        return {"n": len(finals), "cpu_s": c1 - c0, "wall_s": w1 - w0,
                "gc_s": gc_clock.seconds, "error": bad}

    def outcomes(self, node, endpoints: int) -> Dict:
        """Node.outcomes for one SYN to service 0, timed; checks that there is one outcome
        per endpoint, each to a different endpoint, and that the probabilities add up to 1."""
        pkt = self.packets([(0, SPORT_BASE)])[0]
        w0 = time.perf_counter()
        c0 = time.thread_time()
        outs = node.outcomes(pkt, local=True)
        c1 = time.thread_time()
        w1 = time.perf_counter()
        total = sum(o.probability for o in outs)
        dsts = {o.journey.packet.dst for o in outs if o.journey.packet is not None}
        err = None
        if len(outs) != endpoints or total != 1 or len(dsts) != endpoints:
            err = f"{len(outs)} outcomes, {len(dsts)} destinations, total probability {total}"
        return {"cpu_s": c1 - c0, "wall_s": w1 - w0, "outcomes": len(outs), "error": err}


# --------------------------------------------------------------------------
# the run: every repetition measures every unit once, interleaved
# --------------------------------------------------------------------------

class Series:
    """Per-packet samples of one unit (a kernel namespace or nfemu) in one case."""

    def __init__(self):
        self.us: List[float] = []
        self.wall_us: List[float] = []
        self.gc_us: List[float] = []
        self.packets = 0
        self.error: Optional[str] = None

    def add(self, n: int, cpu_s: float, wall_s: float, gc_s: float | None = None) -> float:
        self.us.append(cpu_s / n * 1e6)
        self.wall_us.append(wall_s / n * 1e6)
        if gc_s is not None:
            self.gc_us.append(gc_s / n * 1e6)
        self.packets += n
        return self.us[-1]

    def median(self) -> Optional[float]:
        return statistics.median(self.us) if self.us else None

    def to_dict(self) -> Dict:
        return {"us": self.median(), "us_min": min(self.us, default=None),
                "us_max": max(self.us, default=None),
                "wall_us": statistics.median(self.wall_us) if self.wall_us else None,
                "gc_us": statistics.median(self.gc_us) if self.gc_us else None,
                "packets": self.packets, "samples_us": self.us, "error": self.error}


def run(a, paths: Dict, batches: Dict[str, List[List[Tuple[int, int]]]], kb: Optional[KernelBench],
        side: Optional[NfemuSide], log) -> Dict:
    """Loads the nfemu nodes, then per repetition: each case on every kernel namespace and
    on nfemu (rotating which goes first), each nfemu scaling size, one --all. Rotating
    and interleaving make the ratios compare measurements taken in the same minutes,
    whatever else the machine was doing."""
    cases = list(batches)
    kkeys = ("rules", "empty", "zero") if kb else ()
    res: Dict = {"kernel": None, "nfemu": None}
    nodes: Dict = {}
    nfinfo: Dict = {"load_seconds": {}, "first_trace_us": {}}
    if side is not None:
        for s in sorted({a.services, *a.scaling_sizes}):
            node, secs = side.node(paths[s])
            nodes[s] = node
            nfinfo["load_seconds"][s] = secs
            nfinfo["first_trace_us"][s] = side.first_trace(node) * 1e6
            log(f"  nfemu: {s} services loaded in {secs:.1f}s, first trace "
                f"{nfinfo['first_trace_us'][s]:.0f} us")
        if a.all_endpoints:
            nodes["all"], secs = side.node(paths["all"])
            nfinfo["load_seconds"]["all"] = secs
        # The loads leave the cyclic collector a full collection due (millions of new
        # objects): run it now rather than inside whichever chunk comes first. Then, unless
        # --no-freeze, move the loaded rulesets out of its reach (gc.freeze), as a
        # long-running service does: otherwise every later full collection, whoever
        # caused it, traverses them (about 2 s with 10,000 services loaded here).
        t0 = time.perf_counter()
        gc.collect()
        nfinfo["full_collection_seconds"] = time.perf_counter() - t0
        if not a.no_freeze:
            gc.freeze()
    if kb is not None:
        kb.wait_loaded()
        res["kernel"] = {"restore": a.iptables_restore, "load_seconds": kb.load_seconds,
                         "conntrack_max": kb.conntrack_max()}
        kb.ensure_conntrack_room(a.packets)
        warm = [(gen_kube_dump.cluster_ip(0), SPORT_BASE + k) for k in range(200)]
        for key in kkeys:                  # warm-up: caches, socket, first-use paths
            kb.flush(key)
            kb.send(key, warm)
            kb.flush(key)
    kser = {c: {k: Series() for k in kkeys} for c in cases}
    knet = {c: [] for c in cases}
    nser = {c: Series() for c in cases}
    sser = {s: Series() for s in a.scaling_sizes}
    all_runs: List[Dict] = []
    units = list(kkeys) + (["nfemu"] if side else [])
    chunk_budget = a.budget / a.repeat
    srng = random.Random(a.seed + 1)
    for rep in range(a.repeat):
        order = units[rep % len(units):] + units[:rep % len(units)] if units else []
        for case in cases:
            batch = batches[case][rep]
            per = {}
            for unit in order:
                if unit == "nfemu":
                    ser = nser[case]
                    if ser.error:
                        continue
                    r = side.chunk(nodes[a.services], batch, a.endpoints, chunk_budget)
                    per[unit] = ser.add(r["n"], r["cpu_s"], r["wall_s"], r.get("gc_s"))
                    ser.error = r["error"]
                    continue
                kb.flush(unit)
                r = kb.send(unit, [(gen_kube_dump.cluster_ip(i), sp) for i, sp in batch])
                if r["errors"]:
                    raise RuntimeError(f"{r['errors']} sendto() errors in {unit} ({case})")
                problem = kb.check(unit, batch, a.endpoints)
                if problem:
                    raise RuntimeError(f"kernel check failed ({case}): {problem}")
                per[unit] = kser[case][unit].add(r["n"], r["cpu_s"], r["wall_s"])
            if kb is not None:
                knet[case].append(per["rules"] - per["empty"])
            log(f"  rep {rep + 1}/{a.repeat} {case:8s} " + "  ".join(
                f"{u} {per[u]:7.1f}" for u in units if u in per) + " us/packet"
                + (f"  (kernel net {knet[case][-1]:.1f})" if kb is not None else ""))
        if kb is not None:
            for key in kkeys:
                kb.flush(key)
        if side is None:
            continue
        sizes = a.scaling_sizes[rep % len(a.scaling_sizes):] + \
            a.scaling_sizes[:rep % len(a.scaling_sizes)] if a.scaling_sizes else []
        for s in sizes:
            ser = sser[s]
            if ser.error:
                continue
            batch = make_batch("uniform", s, a.packets, srng)
            r = side.chunk(nodes[s], batch, a.scale_eps[s], chunk_budget)
            ser.add(r["n"], r["cpu_s"], r["wall_s"], r.get("gc_s"))
            ser.error = r["error"]
        if sizes:
            log(f"  rep {rep + 1}/{a.repeat} scaling  " + "  ".join(
                f"{s}: {sser[s].us[-1]:.1f}" for s in a.scaling_sizes if sser[s].us)
                + " us/packet")
        if a.all_endpoints and rep < a.all_repeat:
            r = side.outcomes(nodes["all"], a.all_endpoints)
            all_runs.append(r)
            log(f"  rep {rep + 1}/{a.repeat} --all    {r['cpu_s']:.3f} s, {r['outcomes']} "
                f"outcomes" + (f"  ERROR {r['error']}" if r["error"] else ""))
    if kb is not None:
        kc = {}
        for c in cases:
            d = {k: kser[c][k].to_dict() for k in kkeys}
            d["net"] = {"us": statistics.median(knet[c]), "us_min": min(knet[c]),
                        "us_max": max(knet[c]), "samples_us": knet[c]}
            kc[c] = d
        res["kernel"]["cases"] = kc
    if side is not None:
        res["nfemu"] = dict(nfinfo, cases={c: nser[c].to_dict() for c in cases},
                            scaling={s: sser[s].to_dict() for s in a.scaling_sizes})
        if all_runs:
            res["nfemu"]["all"] = {
                "seconds": statistics.median(r["cpu_s"] for r in all_runs),
                "wall_seconds": statistics.median(r["wall_s"] for r in all_runs),
                "samples_s": [r["cpu_s"] for r in all_runs],
                "outcomes": all_runs[-1]["outcomes"],
                "error": next((r["error"] for r in all_runs if r["error"]), None)}
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def machine_info(restore: str) -> Dict:
    m = _load_machine_info()
    cpu = m.get("cpu")
    if not cpu:
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                           None)
        except OSError:
            cpu = None
    m["cpu"] = cpu
    path = shutil.which(restore)
    if path:
        try:
            m["restore"] = subprocess.run([path, "--version"], capture_output=True, text=True,
                                          timeout=10).stdout.strip()
        except Exception:
            m["restore"] = None
    m["loadavg"] = os.getloadavg()
    if m.get("git_rev"):
        try:   # the engine measured may be uncommitted work
            dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain", "--",
                                    "nfemu"], capture_output=True, text=True,
                                   timeout=10).stdout.strip()
            if dirty:
                m["git_rev"] += "+uncommitted nfemu/ changes"
        except Exception:
            pass
    return m


def _f(v, spec=".1f", suffix="") -> str:
    return "-" if v is None else format(v, spec) + suffix


def _verdict(value, target) -> str:
    if value is None:
        return "not measured"
    return "met" if value <= target else "MISSED"


def summarise(kern: Optional[Dict], nf: Optional[Dict]) -> Dict:
    """The ratios: nfemu / kernel net (the targets' measure) and nfemu / kernel with rules
    (whole sendto, for reference) per case; nfemu at N services / at 100."""
    s: Dict = {}
    if kern and nf:
        for case, kc in kern["cases"].items():
            nu = nf["cases"][case]["us"]
            if nu is not None:
                net = kc["net"]["us"]
                s[f"ratio_{case}"] = nu / net if net > 0 else None
                s[f"ratio_{case}_rules"] = nu / kc["rules"]["us"]
    if nf:
        sc = nf["scaling"]
        if sc.get(100, {}).get("us"):
            for n, r in sc.items():
                if n != 100 and r["us"] is not None:
                    s[f"scaling_{n}_over_100"] = r["us"] / sc[100]["us"]
        if nf.get("all"):
            s["all_seconds"] = nf["all"]["seconds"]
    return s


def print_report(a, meta, kern, kern_skip, nf, nf_err, summ) -> None:
    m = meta["machine"]
    print(f"\nnfemu packet-evaluation benchmark: {a.services} services x {a.endpoints} "
          f"endpoints, new-connection TCP SYNs to ClusterIP:80 generated locally (OUTPUT path)")
    print(f"machine: {m.get('cpu')}, {m.get('nproc')} cores, Linux {m.get('kernel')}, "
          f"Python {m.get('python')}, {m.get('restore') or m.get('iptables')}; git "
          f"{m.get('git_rev')}; load average {meta['loadavg_start'][0]:.2f} at start, "
          f"{meta['loadavg_end'][0]:.2f} at end")
    print(f"thread CPU time per packet in microseconds, median of {a.repeat} interleaved "
          f"repetitions of {a.packets} packets (nfemu: at most {a.budget:g} s per case)")
    if kern is None:
        print(f"kernel part skipped: {kern_skip}")
    if nf_err:
        print(f"nfemu part skipped: {nf_err}")
    print()
    def rng(d):
        return (f"{d['us']:.1f} [{d['us_min']:.1f}..{d['us_max']:.1f}]"
                if d and d["us"] is not None else "-")

    hdr = ("case", "kernel rules", "kernel empty", "kernel 0-svc", "kernel net [min..max]",
           "nfemu [min..max]", "nfemu/net", "nfemu/rules")
    rows = []
    for case in ("first", "last", "uniform"):
        kc = kern["cases"][case] if kern else None
        nc = nf["cases"][case] if nf else None
        rows.append((
            case,
            _f(kc and kc["rules"]["us"]), _f(kc and kc["empty"]["us"]),
            _f(kc and kc["zero"]["us"]), rng(kc and kc["net"]),
            rng(nc) + (" WRONG" if nc and nc["error"] else ""),
            _f(summ.get(f"ratio_{case}"), ".2f", "x"),
            _f(summ.get(f"ratio_{case}_rules"), ".2f", "x"),
        ))
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    for r in [hdr] + rows:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
    if kern:
        print(f"kernel rules / empty / 0-svc: one sendto() with the dump / the empty ruleset / "
              f"the 0-service dump ({kern['restore']});\nnet = rules - empty = what netfilter "
              f"spends on the rules per new connection, the denominator of the targets")
    if nf and nf["scaling"]:
        print("\nnfemu scaling, uniformly chosen services:")
        for n, r in sorted(nf["scaling"].items()):
            ratio = summ.get(f"scaling_{n}_over_100", 1.0 if n == 100 else None)
            eps = a.scale_eps.get(n, a.endpoints)
            note = f" ({eps} endpoints each)" if eps != a.endpoints else ""
            print(f"  {n:6d} services{note}: {_f(r['us'], '8.1f')} us/packet [{_f(r['us_min'])}.."
                  f"{_f(r['us_max'])}] over {r['packets']} packets, {_f(ratio, '.2f', 'x')} "
                  f"of 100; load {nf['load_seconds'][n]:.1f} s, first trace "
                  f"{nf['first_trace_us'][n]:.0f} us" + (" WRONG" if r["error"] else ""))
    if nf:
        gcs = [f"{c} {nf['cases'][c]['gc_us']:.1f} us" for c in ("first", "last", "uniform")
               if nf["cases"].get(c, {}).get("gc_us") is not None]
        if gcs:
            print("of nfemu's time per packet, cyclic-GC collections (median): " + ", ".join(gcs))
    if nf and "full_collection_seconds" in nf:
        print(f"\none full cyclic-GC collection with these rulesets loaded: "
              f"{nf['full_collection_seconds']:.2f} s; " + (
                  "not frozen (--no-freeze): such collections fall inside the timings"
                  if a.no_freeze else "then gc.freeze() (see --no-freeze)"))
    if nf and nf.get("all"):
        r = nf["all"]
        print(f"\nnfemu --all (Node.outcomes), 1 service x {a.all_endpoints} endpoints: "
              f"{r['seconds']:.3f} s (median of {len(r['samples_s'])}), {r['outcomes']} outcomes"
              + (f"  WRONG: {r['error']}" if r["error"] else ""))
    print("\ntargets (issue 3 item 10):")
    u = summ.get("ratio_uniform")
    print(f"  nfemu uniform mean <= 0.5x the kernel's (net): {_f(u, '.2f', 'x'):>8}  "
          + (_verdict(u, TARGETS["ratio_uniform"]) if a.services == 10000
             else f"(target is for 10,000 services; this run had {a.services:,})"))
    sc = summ.get("scaling_10000_over_100")
    print(f"  nfemu at 10,000 services <= 1.5x at 100:       {_f(sc, '.2f', 'x'):>8}  "
          f"{_verdict(sc, TARGETS['scaling_10k_over_100'])}")
    al = summ.get("all_seconds")
    print(f"  --all on 1,000 endpoints < 0.1 s:               {_f(al, '.3f', ' s'):>8}  "
          + (_verdict(al, TARGETS["all_seconds"]) if a.all_endpoints in (0, 1000)
             else f"(target is for 1,000 endpoints; this run had {a.all_endpoints:,})"))
    errors = [r["error"] for part in ((nf["cases"], nf["scaling"]) if nf else ())
              for r in part.values() if r["error"]]
    if nf and nf.get("all") and nf["all"]["error"]:
        errors.append(nf["all"]["error"])
    for e in errors:
        print(f"  WARNING: nfemu gave a wrong result, its figure measures something else: {e}")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--packets", type=int, default=None,
                    help="SYNs per case per repetition (default 3000, --quick 1000)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="interleaved repetitions (default 5, --quick 3)")
    ap.add_argument("--budget", type=float, default=None,
                    help="at most this many seconds of nfemu tracing per case, over all "
                         "repetitions (default 5, --quick 1.5)")
    ap.add_argument("--quick", action="store_true", help="fewer packets and repetitions")
    ap.add_argument("--full", action="store_true", help="also 30,000 services in the scaling")
    ap.add_argument("--all-endpoints", type=int, default=1000,
                    help="endpoints of the --all service (0: skip --all)")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--iptables-restore", default="iptables-nft-restore",
                    help="loads the kernel rulesets (e.g. iptables-legacy-restore)")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["kernel", "nfemu", "scaling", "all"])
    ap.add_argument("--no-freeze", action="store_true",
                    help="leave the loaded rulesets to the cyclic collector (no gc.freeze)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    a.packets = a.packets or (1000 if a.quick else 3000)
    a.repeat = a.repeat or (3 if a.quick else 5)
    a.budget = a.budget if a.budget is not None else (1.5 if a.quick else 5.0)
    a.all_repeat = 1 if a.quick else 3
    if a.services < 1 or a.packets < 1 or a.repeat < 1 or a.endpoints < 1:
        ap.error("--services, --endpoints, --packets and --repeat must be >= 1")
    if a.services * a.endpoints > MAX_ENDPOINTS:
        ap.error(f"--services x --endpoints at most {MAX_ENDPOINTS} (gen_kube_dump's pod "
                 f"addresses: 250 per /24 of 10.244.0.0/16)")
    if a.packets > SPORT_SPAN:
        ap.error(f"--packets at most {SPORT_SPAN} (one source port per connection)")
    a.scaling_sizes = [] if "scaling" in a.skip else [100, 1000, 10000] + ([30000] if a.full
                                                                           else [])
    # 30,000 services fit the generator's pod range only with 2 endpoints each
    a.scale_eps = {n: min(a.endpoints, MAX_ENDPOINTS // n) for n in a.scaling_sizes}
    if "all" in a.skip:
        a.all_endpoints = 0

    def log(*x):
        print(*x, file=sys.stderr, flush=True)

    # SIGTERM/SIGHUP -> SystemExit, so that the namespaces are deleted on the way out
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))

    meta = {"loadavg_start": os.getloadavg()}
    t_start = time.perf_counter()
    log("preparing dumps ...")
    paths: Dict = {a.services: prepare_dump(a.services, a.endpoints, use_cache=True)}
    if "nfemu" not in a.skip:
        for n in a.scaling_sizes:
            paths.setdefault(n, prepare_dump(n, a.scale_eps[n], use_cache=True))
        if a.all_endpoints:
            paths["all"] = prepare_dump(1, a.all_endpoints, use_cache=True)
    # the same packets for both sides: one batch per repetition and case
    rng = random.Random(a.seed)
    batches = {c: [make_batch(c, a.services, a.packets, rng) for _ in range(a.repeat)]
               for c in ("first", "last", "uniform")}

    side, nf_err = None, None
    if "nfemu" in a.skip:
        nf_err = "--skip nfemu"
    else:
        try:
            side = NfemuSide()
        except Exception as e:
            nf_err = f"cannot import nfemu: {type(e).__name__}: {e}"
    kern_skip = kernel_skip_reason(a)
    res = {"kernel": None, "nfemu": None}
    with contextlib.ExitStack() as stack:
        kb = None
        if kern_skip is None:
            log(f"kernel namespaces ({a.iptables_restore}) ...")
            try:
                kb = stack.enter_context(KernelBench(paths[a.services],
                                                     shutil.which(a.iptables_restore), log))
            except Exception as e:
                kern_skip = f"set-up failed: {e}"
        if kern_skip:
            log(f"kernel part skipped: {kern_skip}")
        if kb is not None or side is not None:
            try:
                res = run(a, paths, batches, kb, side, log)
            except Exception as e:
                # a kernel failure is reported, then nfemu is measured alone
                if kb is None:
                    raise
                kern_skip = f"failed: {e}"
                log(f"kernel part failed ({e}); measuring nfemu alone")
                stack.close()
                res = run(a, paths, batches, None, side, log) if side else res
    meta.update(loadavg_end=os.getloadavg(), machine=machine_info(a.iptables_restore),
                seconds=time.perf_counter() - t_start)
    summ = summarise(res["kernel"], res["nfemu"])
    if a.json:
        print(json.dumps({"args": vars(a), "meta": meta, "kernel": res["kernel"],
                          "kernel_skipped": kern_skip, "nfemu": res["nfemu"],
                          "nfemu_skipped": nf_err, "summary": summ, "targets": TARGETS},
                         indent=2, default=str))
    else:
        print_report(a, meta, res["kernel"], kern_skip, res["nfemu"], nf_err, summ)
        print(f"\n(total {meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
