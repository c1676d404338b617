#!/usr/bin/env python3
"""Scaling benchmark: nfemu's cost per new-connection packet at 100, 1,000, 10,000 and
30,000 services, with the same rule shape at every size.

    python3 bench/bench_scaling.py [--sizes 100,1000,10000,30000] [--endpoints 2] [--quick] [--json]

Issue 5 item 3 ("scaling: cost per packet at 100, 1,000, 10,000 and 30,000 services; target
flat within 1.5x"). bench_trace.py measures scaling too, but its sizes share its
``--endpoints`` (5) and only the 30,000-service dump falls back to 2 endpoints, because
gen_kube_dump numbers pods within 10.244.0.0/16 (at most 64,000). Here every size uses the
same number of endpoints per service (default 2, the most 30,000 services allow), so that
the number of services is the only thing that changes: every KUBE-SVC chain has the same
rules, every KUBE-SEP chain the same two, and only KUBE-SERVICES (and the number of
chains) grows.

What is measured is bench_trace.py's nfemu side, reused as is (``NfemuSide``: public API
only): TCP SYNs from the node (10.0.0.2, a local process, ``Node.trace(pkt, local=True)``)
to ClusterIP:80 of services drawn uniformly with a seeded generator, each with its own
source port; thread CPU time of the trace loop per packet; every final packet checked to be
DNATed to an endpoint of its service on port 8080 (a wrong result marks the size WRONG).
nfemu compiles a chain the first time a packet enters it (nfemu/compile.py CompiledChain),
so on a fresh node the first SYN to a service also compiles its KUBE-SVC chain and the
KUBE-SEP chain it picks. Both costs are measured, separately:

first touch
    On each freshly loaded node, one SYN to each of ``--packets`` distinct services drawn
    at random (all of them when there are fewer), each the first packet to its service:
    thread CPU time per packet, the chain compiles included.
steady state (the figure the target is about)
    Then every chain of the node is compiled (untimed; this reaches into the node's
    compiled tables, ``node.machine.hook_tables``, and is skipped with ``--cold`` or when
    the node has no such structure), and the measured loop runs on a node that compiles
    nothing more: the per-packet cost of the walk, NAT, conntrack and routing alone.

Each size is loaded, then one full collection and ``gc.freeze()`` (as bench_trace does,
so that later collections do not walk the loaded ruleset), then its first touches are
timed and its chains compiled; once all sizes are ready, the same again (the compiled
chains out of the collector's way too); then each repetition runs
one batch on every size, rotating which size goes first, and the result per size is the
median over the repetitions. The ratio is each size's median over the 100-service median
(or over the smallest size measured).

stdlib only; nfemu is imported from the repository root (through bench_trace).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from typing import Dict

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import bench_trace  # noqa: E402  (puts the repository root first on sys.path)
from bench_load import prepare_dump  # noqa: E402

TARGET = 1.5            # issue 5: cost per packet flat within 1.5x from 100 to 30,000 services
DEFAULT_SIZES = (100, 1000, 10000, 30000)


def compile_all_chains(node) -> int | None:
    """Compile every chain of the node's compiled tables now, as a packet entering each
    would (CompiledChain compiles itself when its rules are first asked for). Reaches into
    ``node.machine.hook_tables`` ({hook: ((table name, CompiledTable), ...)}); returns the
    number of chains, or None when the node is not built that way (then nothing is done)."""
    machine = getattr(node, "machine", None)
    hook_tables = getattr(machine, "hook_tables", None)
    if not isinstance(hook_tables, dict):
        return None
    seen = set()
    for entries in hook_tables.values():
        for entry in entries:
            table = entry[1] if isinstance(entry, tuple) and len(entry) > 1 else entry
            chains = getattr(table, "chains", None)
            if not isinstance(chains, dict):
                continue
            for chain in chains.values():
                if id(chain) not in seen:
                    seen.add(id(chain))
                    getattr(chain, "rules", None)
    return len(seen)


def measure(a, log) -> Dict:
    """Load every size, time the first touches, compile the rest (unless --cold), then the
    interleaved repetitions; the per-size results."""
    side = bench_trace.NfemuSide()
    nodes: Dict[int, object] = {}
    info: Dict[int, Dict] = {}
    rng = random.Random(a.seed)
    for n in a.sizes:
        path = prepare_dump(n, a.endpoints, use_cache=True)
        node, secs = side.node(path)
        nodes[n] = node
        info[n] = {"dump": path, "load_seconds": secs,
                   "first_trace_us": side.first_trace(node) * 1e6}
        # as before the measured loop (below): the loaded objects out of the cyclic
        # collector's way, so that the first touches do not pay for traversing them
        if not a.no_freeze:
            gc.collect()
            gc.freeze()
        # first touch: distinct services other than service 0 (first_trace's), each once
        k = min(a.packets, n - 1)
        if k > 0:
            svcs = rng.sample(range(1, n), k)
            batch = [(i, bench_trace.SPORT_BASE + j % bench_trace.SPORT_SPAN)
                     for j, i in enumerate(svcs)]
            r = side.chunk(node, batch, a.endpoints, float("inf"))
            info[n]["first_touch"] = {"us": r["cpu_s"] / r["n"] * 1e6, "packets": r["n"],
                                      "error": r["error"]}
        else:
            info[n]["first_touch"] = None
        t0 = time.thread_time()
        info[n]["chains_compiled"] = None if a.cold else compile_all_chains(node)
        info[n]["compile_all_seconds"] = time.thread_time() - t0
        ft = info[n]["first_touch"]
        log(f"  {n} services x {a.endpoints} endpoints loaded in {secs:.1f} s, first trace "
            f"{info[n]['first_trace_us']:.0f} us, first touch "
            + ("-" if ft is None else f"{ft['us']:.1f} us/packet over {ft['packets']}")
            + ("" if info[n]["chains_compiled"] is None else
               f"; then {info[n]['chains_compiled']} chains compiled in "
               f"{info[n]['compile_all_seconds']:.1f} s"))
    t0 = time.perf_counter()
    gc.collect()
    full_collection = time.perf_counter() - t0
    if not a.no_freeze:
        gc.freeze()
    series = {n: bench_trace.Series() for n in a.sizes}
    chunk_budget = a.budget / a.repeat
    for rep in range(a.repeat):
        k = rep % len(a.sizes)
        for n in a.sizes[k:] + a.sizes[:k]:
            ser = series[n]
            if ser.error:
                continue
            batch = bench_trace.make_batch("uniform", n, a.packets, rng)
            r = side.chunk(nodes[n], batch, a.endpoints, chunk_budget)
            ser.add(r["n"], r["cpu_s"], r["wall_s"], r.get("gc_s"))
            ser.error = r["error"]
        log(f"  rep {rep + 1}/{a.repeat}  " + "  ".join(
            f"{n}: {series[n].us[-1]:.1f}" for n in a.sizes if series[n].us) + " us/packet")
    out = {}
    for n in a.sizes:
        out[n] = dict(series[n].to_dict(), **info[n])
    return {"sizes": out, "full_collection_seconds": full_collection}


def summarise(sizes: Dict[int, Dict]) -> Dict:
    """Each size's median over the smallest size's; the largest of those ratios and the
    verdict against the target."""
    base_n = min(sizes)
    base = sizes[base_n]["us"]
    ratios = {n: (r["us"] / base if base and r["us"] is not None else None)
              for n, r in sizes.items()}
    fbase = (sizes[base_n].get("first_touch") or {}).get("us")
    first_ratios = {n: ((r.get("first_touch") or {}).get("us") / fbase
                        if fbase and (r.get("first_touch") or {}).get("us") else None)
                    for n, r in sizes.items()}
    vals = [v for v in ratios.values() if v is not None]
    worst = max(vals) if vals else None
    wrong = [n for n, r in sizes.items()
             if r["error"] or (r.get("first_touch") or {}).get("error")]
    return {"base_services": base_n, "ratios": ratios, "max_ratio": worst, "target": TARGET,
            "met": None if worst is None or wrong else worst <= TARGET, "wrong": wrong,
            "first_touch_ratios": first_ratios}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="comma-separated numbers of services (default 100,1000,10000,30000)")
    ap.add_argument("--endpoints", type=int, default=2,
                    help="endpoints per service at every size (default 2: services x "
                         f"endpoints must stay <= {bench_trace.MAX_ENDPOINTS})")
    ap.add_argument("--packets", type=int, default=None,
                    help="SYNs per size per repetition (default 3000, --quick 1000)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="interleaved repetitions (default 5, --quick 3)")
    ap.add_argument("--budget", type=float, default=None,
                    help="at most this many seconds of tracing per size over all "
                         "repetitions (default 5, --quick 1.5)")
    ap.add_argument("--quick", action="store_true", help="fewer packets and repetitions")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--cold", action="store_true",
                    help="do not compile every chain before the measured loop: chains are "
                         "then compiled inside it, when first entered")
    ap.add_argument("--no-freeze", action="store_true",
                    help="leave the loaded rulesets to the cyclic collector (no gc.freeze)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    try:
        a.sizes = sorted({int(x) for x in a.sizes.split(",") if x.strip()})
    except ValueError:
        ap.error("--sizes: comma-separated integers")
    a.packets = a.packets or (1000 if a.quick else 3000)
    a.repeat = a.repeat or (3 if a.quick else 5)
    a.budget = a.budget if a.budget is not None else (1.5 if a.quick else 5.0)
    if not a.sizes or min(a.sizes) < 1 or a.endpoints < 1 or a.packets < 1 or a.repeat < 1:
        ap.error("--sizes, --endpoints, --packets and --repeat must be >= 1")
    if max(a.sizes) * a.endpoints > bench_trace.MAX_ENDPOINTS:
        ap.error(f"services x endpoints at most {bench_trace.MAX_ENDPOINTS} (gen_kube_dump's "
                 f"pod addresses): {max(a.sizes)} x {a.endpoints}")
    if a.packets > bench_trace.SPORT_SPAN:
        ap.error(f"--packets at most {bench_trace.SPORT_SPAN} (one source port per connection)")

    def log(*x):
        print(*x, file=sys.stderr, flush=True)

    import nfemu
    compiled = getattr(nfemu, "compiled", lambda: None)()
    la0 = os.getloadavg()
    t0 = time.perf_counter()
    log(f"nfemu scaling: {', '.join(map(str, a.sizes))} services x {a.endpoints} endpoints "
        f"(nfemu from {os.path.dirname(nfemu.__file__)}, compiled: {compiled})")
    res = measure(a, log)
    summ = summarise(res["sizes"])
    meta = {"loadavg_start": la0, "loadavg_end": os.getloadavg(),
            "seconds": time.perf_counter() - t0, "nfemu_compiled": compiled,
            "nfemu_path": os.path.dirname(nfemu.__file__),
            "machine": bench_trace.machine_info("iptables-nft-restore")}
    if a.json:
        print(json.dumps({"args": vars(a), "meta": meta, **res, "summary": summ}, indent=2,
                         default=str))
        return 0
    print(f"\nnfemu cost per new-connection packet (uniform ClusterIP SYNs, OUTPUT path), "
          f"{a.endpoints} endpoints per service; thread CPU time, median of {a.repeat} "
          f"interleaved repetitions of up to {a.packets} packets; compiled: {compiled}")
    state = ("chains compiled when first entered, inside the loop (--cold)" if a.cold
             else "every chain compiled beforehand: steady state")
    print(f"  ({state})")
    for n, r in sorted(res["sizes"].items()):
        ratio = summ["ratios"][n]
        ft = r.get("first_touch")
        print(f"  {n:6d} services: {bench_trace._f(r['us'], '8.1f')} us/packet "
              f"[{bench_trace._f(r['us_min'])}..{bench_trace._f(r['us_max'])}] over "
              f"{r['packets']} packets, {bench_trace._f(ratio, '.2f', 'x')} of "
              f"{summ['base_services']}; first touch "
              + ("-" if ft is None else f"{ft['us']:.1f} us/packet "
                 f"({bench_trace._f(summ['first_touch_ratios'][n], '.2f', 'x')})")
              + f"; load {r['load_seconds']:.1f} s"
              + (f"  WRONG: {r['error']}" if r["error"] else "")
              + (f"  WRONG (first touch): {ft['error']}" if ft and ft["error"] else ""))
    verdict = {True: "met", False: "MISSED", None: "not measured"}[summ["met"]]
    print(f"target: largest / {summ['base_services']} services <= {TARGET}x: "
          f"{bench_trace._f(summ['max_ratio'], '.2f', 'x')}  {verdict}")
    print(f"(total {meta['seconds']:.0f} s, load average {la0[0]:.2f} -> "
          f"{meta['loadavg_end'][0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
