#!/usr/bin/env python3
"""Micro-benchmark of the stateful per-packet path: ``Node.send`` on the kube-proxy dump.

    python3 bench/bench_send.py                        # 10,000 services, 10,000 flows
    python3 bench/bench_send.py --flows 2000 --repeat 2 --json
    python3 bench/bench_send.py --profile 3000         # cProfile of the send loop

Issue 5. The node is ``Host.from_options(["eth0=10.0.0.2/24", "eth1=10.244.0.1/16"],
default_gateway="10.0.0.1")`` holding the generated dump (bench/gen_kube_dump.py, cached
in bench/.cache/, or ``--dump FILE``): clients reach it on eth0, the pods (10.244.0.0/16)
are on eth1's link. Each flow is one TCP connection from a client outside the cluster
CIDR (192.168.0.0/16, random port 32768-60999) to the ClusterIP:80 of a uniformly drawn
service (seeded), five packets as they arrive at the node:

    SYN (MSS option)        client -> ClusterIP:80      on eth0   NEW
    SYN/ACK (MSS option)    endpoint:8080 -> 10.244.0.1:P on eth1 ESTABLISHED (reply)
    ACK                     client -> ClusterIP:80      on eth0   ESTABLISHED
    ACK (window update)     endpoint:8080 -> 10.244.0.1:P on eth1 ESTABLISHED (reply)
    ACK (window update)     client -> ClusterIP:80      on eth0   ESTABLISHED

The endpoint and the masquerade port P are the node's own choices (the KUBE-SVC
statistic rules, MASQUERADE --random-fully), read from the SYN as it left the node, so the
reply packets can only be built once their SYN went through. Flows go in groups of 100:
the 100 SYNs, then the 100 SYN/ACKs, then each ACK round, so that connections interleave
as in real traffic; packet k is stamped ``now = 1000 + k * 10 us``.

Runs (``--repeat``, default 3), each on a fresh ``Node`` (the ruleset is loaded once;
nfemu compiles a chain when a packet first enters it, so the SYNs of a fresh node pay for
compiling their service's chains; ``--warm`` compiles every chain before the run, the
steady state of a node that has seen every service):
the first one builds the replies from the node's answers and records every packet's
bytes, ctinfo and outgoing packet; the later ones send the recorded bytes (same seed, same
order, hence the same choices) and must give the same ctinfo and outgoing packets (the
benchmark fails otherwise). Every SYN must be DNATed to an endpoint of its service and
leave on eth1; every other packet must be ESTABLISHED and forwarded.

What is timed is what ``nfemu replay`` does for a datagram once it is read:
``Packet.from_bytes(data, iif=..., in_mac=..., out_mac=...)`` then ``node.send(pkt,
iface=..., now=...)``, block by block (the packets of one kind of one group, built
before the block), in CPU time of the thread (``time.thread_time_ns``: other processes
on the machine disturb it less than wall time, which is kept as ``*_wall``). The rates
are packets per second of that time, for the whole mix, for the SYNs (new connections)
and for the established packets (the four others), medians over the runs.

Garbage collection: ``gc.freeze()`` after the load and again after each node is made
(its compiled rules are load-time data too), so that the collector scans only what the
packets leave behind (conntrack entries mostly), as in a long replay; what a run keeps
for the comparison is tuples of atoms, which the collector does not visit. (``nfemu
replay`` runs with the collector off.)

Baseline, run in the same process on the same bytes (before and after every run, the
median kept): the least a Python packet processor does per packet, written here in plain
Python: unpack the IPv4 and TCP headers with ``struct``, build the 5-tuple, look it up in
a flow dict in both directions and insert or update the flow. It depends on no nfemu code
(so it neither gains nor loses from nfemu's optimisations, and runs interpreted even when
nfemu is compiled), and it moves with the machine's speed and load as nfemu does: the
ratio ``nfemu time / baseline time`` is the figure to compare across machines and commits
(lower is better). Raw rates are printed too.

``--profile N`` runs one extra pass of the first N flows (recorded bytes) under cProfile
and prints the top of the profile by own time (``--profile-sort cumulative`` for
cumulative).

stdlib only; nfemu is imported from the repository root.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import struct
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, REPO_ROOT)

import gen_kube_dump  # noqa: E402
from bench_load import machine_info, prepare_dump  # noqa: E402

HOST_IFACES = ["eth0=10.0.0.2/24", "eth1=10.244.0.1/16"]
GATEWAY = "10.0.0.1"
NODE_ETH1 = (10 << 24) | (244 << 16) | 1          # 10.244.0.1, MASQUERADE's source
CLIENT_NET = (192 << 24) | (168 << 16)            # clients: 192.168.0.0/16 (not the cluster's)
MAC_NODE0, MAC_NODE1, MAC_GW, MAC_POD = 0x020000000002, 0x020000000102, 0x020000000001, \
    0x0200000001FF
GROUP = 100
T0, STEP = 1000.0, 1e-5
SYN, ACK = 0x02, 0x10
MSS_OPT = struct.pack("!BBH", 2, 4, 1460)
KINDS = ("syn", "synack", "ack", "ack_reply", "ack2")
ESTABLISHED_KINDS = KINDS[1:]
EXPECTED_CTINFO = {"syn": "NEW", "synack": "ESTABLISHED_REPLY", "ack": "ESTABLISHED",
                   "ack_reply": "ESTABLISHED_REPLY", "ack2": "ESTABLISHED"}


# ---- packets -------------------------------------------------------------------------------

# the RFC 1071 sum nfemu itself uses for the datagrams it writes
from nfemu.packet import _csum  # noqa: E402


def tcp_datagram(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int,
                 window: int, options: bytes = b"", ip_id: int = 0) -> bytes:
    """An IPv4 TCP segment without payload (DF, TTL 64), both checksums filled in."""
    tcp = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq, ack,
                                (5 + len(options) // 4) << 4, flags, window, 0, 0) + options)
    pseudo = struct.pack("!IIBBH", src, dst, 0, 6, len(tcp))
    struct.pack_into("!H", tcp, 16, _csum(pseudo + bytes(tcp)))
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, 64, 6, 0,
                               src, dst))
    struct.pack_into("!H", ip, 10, _csum(bytes(ip)))
    return bytes(ip + tcp)


def _ip(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return a << 24 | b << 16 | c << 8 | d


class Flow:
    __slots__ = ("client", "sport", "service", "isn_c", "isn_s", "pod", "port")

    def __init__(self, rng: random.Random, services: int):
        self.client = CLIENT_NET | rng.randrange(1, 65535)
        self.sport = rng.randrange(32768, 61000)
        self.service = rng.randrange(services)
        self.isn_c = rng.getrandbits(32)
        self.isn_s = rng.getrandbits(32)
        self.pod = self.port = None

    def packet(self, kind: str) -> tuple[bytes, str]:
        """The datagram of this kind and the interface it arrives on."""
        vip = _ip(gen_kube_dump.cluster_ip(self.service))
        c1, s1 = (self.isn_c + 1) & 0xFFFFFFFF, (self.isn_s + 1) & 0xFFFFFFFF
        if kind == "syn":
            return tcp_datagram(self.client, vip, self.sport, 80, self.isn_c, 0, SYN, 64240,
                                MSS_OPT), "eth0"
        if kind == "synack":
            return tcp_datagram(self.pod, NODE_ETH1, 8080, self.port, self.isn_s, c1,
                                SYN | ACK, 65160, MSS_OPT), "eth1"
        if kind == "ack":
            return tcp_datagram(self.client, vip, self.sport, 80, c1, s1, ACK, 502), "eth0"
        if kind == "ack_reply":
            return tcp_datagram(self.pod, NODE_ETH1, 8080, self.port, s1, c1, ACK, 510), "eth1"
        return tcp_datagram(self.client, vip, self.sport, 80, c1, s1, ACK, 503), "eth0"


_MACS = {"eth0": (MAC_GW, MAC_NODE0), "eth1": (MAC_POD, MAC_NODE1)}


# ---- the runs ------------------------------------------------------------------------------

def schedule(flows: int) -> list[tuple[int, str]]:
    """(flow, kind) in sending order: groups of GROUP flows, one kind after the other."""
    order = []
    for g in range(0, flows, GROUP):
        members = range(g, min(g + GROUP, flows))
        for kind in KINDS:
            order.extend((f, kind) for f in members)
    return order


def _packet_key(pkt) -> tuple:
    """What a run must reproduce of a packet leaving the node."""
    return (pkt.src, pkt.dst, pkt.proto, pkt.sport, pkt.dport, pkt.tcp_flags, pkt.tcp_seq,
            pkt.tcp_ack, pkt.tcp_window, pkt.ttl, pkt.mark, pkt.length, pkt.iif, pkt.oif)


def blocks(order) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each run of one kind in ``order`` (GROUP packets or fewer)."""
    out, start = [], 0
    for k in range(1, len(order) + 1):
        if k == len(order) or order[k][1] != order[start][1]:
            out.append((start, k, order[start][1]))
            start = k
    return out


def warm_up(node) -> int:
    """Compile every chain of the node's tables now (nfemu/compile.py compiles a chain the
    first time a packet enters it): the steady state of a node that has already seen
    traffic to every service. Returns how many chains."""
    count, seen = 0, set()
    for entries in node.machine.hook_tables_ct.values():
        for _, table in entries:
            if table is None or id(table) in seen:
                continue
            seen.add(id(table))
            chains = table.chains
            for chain in (chains.values() if isinstance(chains, dict) else chains):
                getattr(chain, "rules", None)
                count += 1
    return count


def run_pass(make_node, Packet, flows: list[Flow], order, recorded, endpoints: int,
             profile: cProfile.Profile | None = None, warm: bool = False) -> dict:
    """One pass of ``order`` through a fresh node. ``recorded`` None: build the packets
    (replies from the SYNs' results) and return them; else send the recorded bytes and
    compare the results. Each block (a run of one kind) is timed as a whole, its packets
    built before: CPU time of this thread and wall time, in ns, per kind."""
    # the node's compiled rules are load-time data, as the ruleset is: frozen too (the
    # previous run's node is let go first), so that collections scan only what the
    # packets make
    gc.unfreeze()
    gc.collect()
    node = make_node()
    if warm:
        warm_up(node)
    gc.collect()
    gc.freeze()
    cpu = {k: [0, 0] for k in KINDS}        # kind -> [ns, packets]
    wall = {k: 0 for k in KINDS}
    results = []
    packets = [] if recorded is None else recorded["packets"]
    thread_ns, perf_ns = time.thread_time_ns, time.perf_counter_ns
    from_bytes = Packet.from_bytes
    send = node.send
    for start, end, kind in blocks(order):
        if recorded is None:
            for f, _ in order[start:end]:
                packets.append(flows[f].packet(kind))
        block = [(data, iface) + _MACS[iface] + (T0 + k * STEP,)
                 for k, (data, iface) in enumerate(packets[start:end], start)]
        journeys = []
        keep = journeys.append
        if profile is not None:
            profile.enable()
        t0, w0 = thread_ns(), perf_ns()
        for data, iface, in_mac, out_mac, now in block:
            keep(send(from_bytes(data, iif=iface, in_mac=in_mac, out_mac=out_mac),
                      iface=iface, now=now))
        t1, w1 = thread_ns(), perf_ns()
        if profile is not None:
            profile.disable()
        cpu[kind][0] += t1 - t0
        cpu[kind][1] += end - start
        wall[kind] += w1 - w0
        for (f, _), journey in zip(order[start:end], journeys):
            out = journey.packet
            # kept as atoms only (nothing the collector must visit)
            results.append((journey.ctinfo, journey.verdict.value, journey.where,
                            journey.out_iface, _packet_key(out)))
            if recorded is None and kind == "syn":
                flow = flows[f]
                if (journey.ctinfo != "NEW" or journey.out_iface != "eth1"
                        or out.src != NODE_ETH1):
                    raise SystemExit(f"SYN of flow {f} not masqueraded out of eth1: "
                                     f"{journey.ctinfo} {journey.where} {out}")
                pods = {_ip(gen_kube_dump.endpoint_ip(flow.service * endpoints + e))
                        for e in range(endpoints)}
                if out.dst not in pods or out.dport != 8080:
                    raise SystemExit(f"SYN of flow {f} not DNATed to its service: {out}")
                flow.pod, flow.port = out.dst, out.sport
    for k, ((f, kind), r) in enumerate(zip(order, results)):
        if r[0] != EXPECTED_CTINFO[kind] or r[1] != "ACCEPT" or r[2] != "forward":
            raise SystemExit(f"packet {k} ({kind} of flow {f}): {r[:4]}")
    if recorded is not None and results != recorded["results"]:
        bad = next(k for k, (a, b) in enumerate(zip(results, recorded["results"])) if a != b)
        raise SystemExit(f"run differs from the first at packet {bad}: {results[bad]} vs "
                         f"{recorded['results'][bad]}")
    return {"cpu": cpu, "wall": wall, "packets": packets, "results": results}


def baseline_pass(packets) -> float:
    """The baseline (see the module docstring): header unpack, 5-tuple, flow dict lookup
    in both directions, insert or update. Returns CPU ns per packet (the loop timed as a
    whole, like nfemu's blocks)."""
    flows: dict = {}
    unpack_ip = struct.Struct("!BBHHHBBHII").unpack_from
    unpack_l4 = struct.Struct("!HHIIBB").unpack_from
    thread_ns = time.thread_time_ns
    t0 = thread_ns()
    for k, (data, _iface) in enumerate(packets):
        now = T0 + k * STEP
        vihl, _tos, _tot, _id, _frag, _ttl, proto, _c, src, dst = unpack_ip(data)
        sport, dport, _seq, _ack, _off, flags = unpack_l4(data, (vihl & 15) * 4)
        key = (proto, src, dst, sport, dport)
        flow = flows.get(key)
        if flow is None:
            flow = flows.get((proto, dst, src, dport, sport))
        if flow is None:
            flows[key] = [now, flags, 1]
        else:
            flow[0] = now
            flow[1] |= flags
            flow[2] += 1
    return (thread_ns() - t0) / len(packets)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--dump", help="the dump (default: generated into bench/.cache/)")
    ap.add_argument("--flows", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3, help="runs, each on a fresh node")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--warm", action="store_true",
                    help="compile every chain before each run (see warm_up)")
    ap.add_argument("--profile", type=int, metavar="FLOWS", default=0,
                    help="one more pass of FLOWS flows under cProfile")
    ap.add_argument("--profile-sort", default="tottime")
    ap.add_argument("--profile-top", type=int, default=30)
    a = ap.parse_args(argv)

    import nfemu
    from nfemu import Host, Node, Packet

    compiled = nfemu.compiled() if hasattr(nfemu, "compiled") else False
    path = a.dump or prepare_dump(a.services, a.endpoints, use_cache=True)
    t = time.perf_counter()
    ruleset = nfemu.load(path)
    host = Host.from_options(HOST_IFACES, default_gateway=GATEWAY)
    load_s = time.perf_counter() - t
    gc.collect()
    gc.freeze()

    def make_node():
        return Node(ruleset, host, seed=a.seed)

    rng = random.Random(a.seed)
    flows = [Flow(rng, a.services) for _ in range(a.flows)]
    order = schedule(a.flows)
    runs, base = [], []
    recorded = None
    for _ in range(max(1, a.repeat)):
        if recorded is not None:
            base.append(baseline_pass(recorded["packets"]))
        run = run_pass(make_node, Packet, flows, order, recorded, a.endpoints, warm=a.warm)
        if recorded is None:
            recorded = run
        runs.append(run)
        base.append(baseline_pass(recorded["packets"]))

    def med(values):
        return statistics.median(values)

    def us(run, kinds, clock="cpu"):
        if clock == "cpu":
            ns = sum(run["cpu"][k][0] for k in kinds)
        else:
            ns = sum(run["wall"][k] for k in kinds)
        return ns / sum(run["cpu"][k][1] for k in kinds) / 1e3

    base_us = med(base) / 1e3
    result = {
        "benchmark": "send",
        "compiled": compiled,
        "services": a.services, "endpoints": a.endpoints, "flows": a.flows,
        "packets": len(order), "repeat": len(runs), "load_seconds": round(load_s, 3),
        "warm": a.warm,
        "clock": "thread CPU time (wall time in *_wall)",
        "baseline_us_per_packet": round(base_us, 3),
        "baseline_packets_per_s": round(1e6 / base_us),
        "machine": machine_info(),
    }
    for name, kinds in (("mix", KINDS), ("new", ("syn",)), ("established", ESTABLISHED_KINDS)):
        t = med([us(r, kinds) for r in runs])
        result[name] = {"us_per_packet": round(t, 3),
                        "packets_per_s": round(1e6 / t),
                        "ratio_to_baseline": round(t / base_us, 2),
                        "us_per_packet_wall": round(med([us(r, kinds, "wall") for r in runs]), 3)}
    result["per_kind_us"] = {k: round(med([us(r, (k,)) for r in runs]), 3) for k in KINDS}

    if a.profile:
        # the first groups of the recorded order are the schedule of their flows alone,
        # and a fresh node makes the same choices for them: replay that prefix
        porder = schedule(min(a.profile, a.flows))
        m = len(porder)
        prefix = {"packets": recorded["packets"][:m], "results": recorded["results"][:m]}
        prof = cProfile.Profile()
        run_pass(make_node, Packet, flows, porder, prefix, a.endpoints, prof, warm=a.warm)
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats(a.profile_sort).print_stats(a.profile_top)
        result["profile"] = s.getvalue()

    if a.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"nfemu Node.send, {a.services} services x {a.endpoints} endpoints, {a.flows} "
          f"flows ({len(order)} packets), {len(runs)} runs, "
          f"{'compiled' if compiled else 'pure Python'}, {'warm' if a.warm else 'fresh'} "
          f"nodes; load {load_s:.1f} s")
    print(f"{'':14}{'us/packet':>11}{'packets/s':>12}{'x baseline':>12}{'wall us':>10}")
    print(f"{'baseline':14}{base_us:>11.2f}{result['baseline_packets_per_s']:>12,}{1:>12.2f}")
    for name in ("mix", "new", "established"):
        r = result[name]
        print(f"{name:14}{r['us_per_packet']:>11.2f}{r['packets_per_s']:>12,}"
              f"{r['ratio_to_baseline']:>12.2f}{r['us_per_packet_wall']:>10.2f}")
    print("per kind (us): " + ", ".join(f"{k} {v}" for k, v in result["per_kind_us"].items()))
    if a.profile:
        print(result["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
