#!/usr/bin/env python3
"""Every benchmark of issue 5 item 3 in one command, and one table of ratios and targets.

    python3 bench/run_all.py                       # the full set (6-7 min on 2 cores)
    python3 bench/run_all.py --quick               # fewer packets and repetitions (1.5-2 min)
    python3 bench/run_all.py --python /tmp/edvb/bin/python     # the compiled twin of a venv
    NFEMU_PURE_PYTHON=1 python3 bench/run_all.py   # (or --pure) the pure-Python twin
    python3 bench/run_all.py --profile             # then a py-spy profile of each benchmark
    python3 bench/run_all.py --json > all.json

Each benchmark runs as a child process of the chosen interpreter (``--python``) with
``--json``, one after the other (never two at once: they time CPU-bound work), and its
figures are read from that JSON:

trace     bench_trace.py --skip scaling: new-connection SYNs to the 10,000-service kube
          dump, nfemu's ``Node.trace`` against the kernel's netfilter (raw-socket SYNs in
          network namespaces holding the same rules; the kernel part needs root), cases
          first / last / uniform; and ``--all`` (``Node.outcomes``) on a 1,000-endpoint
          service.
scaling   bench_scaling.py: nfemu's cost per new-connection packet at 100, 1,000, 10,000 and
          30,000 services, same rule shape at every size, ratio to the 100-service cost.
replay    bench_replay.py: ``nfemu replay --counters`` of the generated capture
          (``--packets``, default 1,000,000; 100,000 with ``--quick``) against
          ``tcpdump -r IN -w OUT`` on the same file.
load      bench_load.py: ``nfemu.load`` (+ the compile) of the 10,000-service dump against
          ``iptables-restore --test`` on the same file (needs root), and peak memory;
          every row bench_load gives (load cache hit, cache off, ...) is shown, the hit
          and the cache-off rows against the target.

The table: benchmark, nfemu's figure, the baseline's figure (measured in the same
command), the ratio nfemu / baseline, the target of issue 5 and whether it was met (and by
how much it was missed). The replay's CPU time (user + system) is shown beside its wall
time: on a shared machine the difference is time spent waiting for a CPU. With nfemu's load
cache (nfemu/loadcache.py) present and on, the dump is loaded once before the replay, so
that every timed replay run reads it the same way. It also says which of nfemu's twins ran: ``nfemu.compiled()`` as
the benchmark scripts import nfemu, with the child environment (``NFEMU_PURE_PYTHON``
passes through; ``--pure`` sets it).

Which checkout is measured: the benchmark scripts put their own repository root first on
``sys.path`` and run nfemu's CLI from there, so they measure the nfemu of the checkout they
are in. run_all therefore runs the scripts of the checkout the chosen interpreter imports
nfemu from (for a venv with an editable install of a copy, that copy's bench/), unless
``--bench-dir`` says otherwise; the table names that directory, and says when its
scripts differ from run_all's own.

``--profile`` then profiles each benchmark with py-spy (cProfile if py-spy is missing),
apart from the timings: the trace, --all and scaling loops with the ruleset already loaded
(py-spy attaches once loading is done), the replay and load commands whole, as measured.
For each it lists the top 10 functions by own time: the innermost Python function of each
sample (with a compiled twin, py-spy also reads the Cython frames, ``--native``, and a
sample's own time goes to the innermost Python or Cython function, not to the CPython
internals it was in).

stdlib only.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)

BENCHES = ("trace", "scaling", "replay", "load")
SCRIPTS = {"trace": "bench_trace.py", "scaling": "bench_scaling.py",
           "replay": "bench_replay.py", "load": "bench_load.py",
           # with trace: bench_scaling at the trace's one size, for nfemu's steady state
           "steady": "bench_scaling.py"}
# the modules the scripts import from bench/
HELPERS = ("gen_kube_dump.py", "make_capture.py")

# issue 5 item 3 (and item 2 for the load); --all has no figure in issue 5: issue 3's
TARGETS = {
    "uniform_vs_kernel": 0.25,     # nfemu mean <= 0.25x the kernel's, uniform services
    "scaling": 1.5,                # cost per packet flat within 1.5x, 100 -> 30,000 services
    "replay_rate": 500_000.0,      # packets/s with --counters, at least
    "replay_vs_tcpdump": 3.0,      # within 3x of tcpdump -r IN -w OUT
    "all_seconds": 0.1,            # issue 3 item 10: --all on 1,000 endpoints under 0.1 s
    "load_vs_restore": 1.0,        # issue 5 item 2: load <= iptables-restore --test
    "load_peak_mib": 1024.0,       # issue 5 item 2: peak memory <= 1 GiB
}

# Printed by the interpreter under test, from the directory the scripts run in and with
# their sys.path: which nfemu they import and which twin it is.
PROBE = r"""
import json, os, sys
root = sys.argv[1]
sys.path.insert(0, root)
import nfemu
c = getattr(nfemu, "compiled", None)
try:
    import nfemu.loadcache as lc
    off = getattr(lc, "disabled", lambda: None)()
    cdir = getattr(lc, "cache_dir", lambda: None)()
    cache = {"present": True, "disabled": off, "dir": None if cdir is None else str(cdir)}
except ImportError:
    cache = {"present": False}
print(json.dumps({"file": os.path.abspath(nfemu.__file__), "load_cache": cache,
                  "compiled": c() if callable(c) else None,
                  "version": getattr(nfemu, "__version__", None),
                  "python": sys.version.split()[0], "executable": sys.executable}))
"""

# Finds the checkout the interpreter imports nfemu from (run from "/", so that the current
# directory is not on the path).
LOCATE = r"""
import os, nfemu
print(os.path.dirname(os.path.dirname(os.path.abspath(nfemu.__file__))))
"""

# The profiling driver (argv: root, mode, seconds, cprofile-output or "-", mode args).
# Loads what the benchmark loads, runs its loop once (any lazy set-up), collects and
# freezes the garbage collector's generations as the benchmarks do, prints READY and runs
# the loop for `seconds`: py-spy attaches after READY, so it sees the per-packet work only.
# With a cProfile output instead of "-", the loop runs under cProfile.
DRIVER = r"""
import gc, json, os, random, sys, time
root, mode, seconds, prof = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
rest = sys.argv[5:]
sys.path.insert(0, os.path.join(root, "bench"))
sys.path.insert(0, root)
import nfemu
import bench_trace
from bench_load import prepare_dump
side = bench_trace.NfemuSide()
if mode == "trace":
    services, endpoints = int(rest[0]), int(rest[1])
    node, _ = side.node(prepare_dump(services, endpoints, True))
    pkts = side.packets(bench_trace.make_batch("uniform", services, 2000, random.Random(7)))
    def step():
        for p in pkts:
            node.trace(p, local=True)
elif mode == "all":
    node, _ = side.node(prepare_dump(1, int(rest[0]), True))
    pkt = side.packets([(0, bench_trace.SPORT_BASE)])[0]
    def step():
        node.outcomes(pkt, local=True)
else:
    raise SystemExit("unknown mode " + mode)
step()
gc.collect()
gc.freeze()
def loop():
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        step()
        n += 1
    return n
if prof == "-":
    print("READY", flush=True)
    n = loop()
else:
    import cProfile
    pr = cProfile.Profile()
    pr.enable()
    n = loop()
    pr.disable()
    pr.dump_stats(prof)
print(json.dumps({"iterations": n}), flush=True)
"""

# What bench_load times: nfemu.load, then the compile of the rules (Program.compile, where
# this nfemu has it); then leave at once (os._exit), as the timed part ends there: the
# interpreter's teardown of the ruleset is not part of the figure.
LOADER = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import nfemu
rs = nfemu.load(sys.argv[2])
try:
    from nfemu.compile import Program
except ImportError:
    Program = None
if Program is not None and hasattr(Program, "compile"):
    Program.compile(rs)
sys.stdout.flush()
if not os.environ.get("NFEMU_PROFILE"):     # under cProfile: a normal exit writes the profile
    os._exit(0)
"""


def log(*x) -> None:
    print(*x, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# the checkout, the interpreter, the machine
# --------------------------------------------------------------------------

def _out(cmd: List[str], timeout: float = 20, **kw) -> Optional[str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def locate_checkout(python: str, env: Dict[str, str]) -> Optional[str]:
    return _out([python, "-c", LOCATE], env=env, cwd="/")


def probe(python: str, root: str, env: Dict[str, str]) -> Dict:
    p = subprocess.run([python, "-c", PROBE, root], capture_output=True, text=True, env=env,
                       cwd=root, timeout=60)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-2000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _opt(args: List[str], name: str, default: int) -> int:
    """The integer value of option name in an argument list (--name N or --name=N)."""
    for i, x in enumerate(args):
        try:
            if x == name and i + 1 < len(args):
                return int(args[i + 1])
            if x.startswith(name + "="):
                return int(x.split("=", 1)[1])
        except ValueError:
            break
    return default


def _sha(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def script_differences(bench_dir: str) -> List[str]:
    """The scripts whose copy in bench_dir differs from run_all's own bench/."""
    if os.path.realpath(bench_dir) == os.path.realpath(BENCH_DIR):
        return []
    names = [*SCRIPTS.values(), *HELPERS]
    return [n for n in names
            if _sha(os.path.join(bench_dir, n)) != _sha(os.path.join(BENCH_DIR, n))]


def checkout_state(root: str) -> Dict:
    """The measured checkout: git revision, uncommitted files under nfemu/, and a digest of
    nfemu's sources (.py, .pyx, .pxd; so two checkouts with the same digest ran the same
    code, compiled or not)."""
    st: Dict = {"git_rev": _out(["git", "-C", root, "rev-parse", "--short", "HEAD"])}
    porc = _out(["git", "-C", root, "status", "--porcelain", "--", "nfemu"])
    st["uncommitted"] = ([re.sub(r"^\s*\S+\s+", "", ln) for ln in porc.splitlines()]
                         if porc else [])
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(os.path.join(root, "nfemu"))):
        dirs.sort()
        for fn in sorted(files):
            if fn.endswith((".py", ".pyx", ".pxd")):
                p = os.path.join(dirpath, fn)
                h.update(os.path.relpath(p, root).encode())
                with open(p, "rb") as f:
                    h.update(f.read())
    st["sources_digest"] = h.hexdigest()[:12]
    return st


def machine() -> Dict:
    """What RESULTS.md describes the machine by."""
    m: Dict = {"nproc": os.cpu_count(), "kernel": platform.release(),
               "runner_python": platform.python_version()}
    ls = _out(["lscpu"]) or ""
    for line in ls.splitlines():
        k, _, v = line.partition(":")
        v = v.strip()
        if k == "Model name":
            m["cpu"] = v
        elif k == "CPU(s)":
            m["cpus"] = v
        elif k == "Thread(s) per core":
            m["threads_per_core"] = v
        elif k == "Hypervisor vendor":
            m["hypervisor"] = v
        elif k == "CPU family":
            m["cpu_family"] = v
        elif k == "Model":
            m["cpu_model_number"] = v
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal:")))
        m["ram_gib"] = round(kib / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    for tool, argv in (("iptables", ["iptables", "--version"]),
                       ("iptables_legacy", ["iptables-legacy", "--version"]),
                       ("iptables_restore", ["iptables-restore", "--version"]),
                       ("tcpdump", ["tcpdump", "--version"]),
                       ("py_spy", ["py-spy", "--version"])):
        if shutil.which(argv[0]):
            v = _out(argv)
            if v is None:   # tcpdump --version prints to stdout in 4.99, older to stderr
                p = subprocess.run(argv, capture_output=True, text=True)
                v = (p.stdout or p.stderr).strip()
            m[tool] = v.splitlines()[0] if v else None
    return m


# --------------------------------------------------------------------------
# running a benchmark
# --------------------------------------------------------------------------

def run_bench(name: str, argv: List[str], cwd: str, env: Dict[str, str], timeout: float,
              logdir: str) -> Dict:
    """Run one benchmark script; its stderr goes to ours (prefixed) and to a file, its
    stdout is parsed as JSON. Returns {json, rc, seconds, loadavg, error}."""
    log(f"== {name}: {' '.join(shlex.quote(x) for x in argv)}")
    la0 = os.getloadavg()
    t0 = time.perf_counter()
    errpath = os.path.join(logdir, f"{name}.stderr")
    outpath = os.path.join(logdir, f"{name}.json")
    with open(errpath, "w") as errf, open(outpath, "w") as outf:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=outf, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)

        def pump():
            for line in p.stderr:
                errf.write(line)
                sys.stderr.write(f"  [{name}] {line}")
                sys.stderr.flush()
        th = threading.Thread(target=pump, daemon=True)
        th.start()
        try:
            rc = p.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            # the benchmark's own session: SIGTERM first (bench_trace deletes its
            # namespaces on SIGTERM), then SIGKILL
            os.killpg(p.pid, signal.SIGTERM)
            try:
                rc = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                rc = p.wait()
        th.join(timeout=10)
    res = {"rc": rc, "seconds": time.perf_counter() - t0, "loadavg_start": la0,
           "loadavg_end": os.getloadavg(), "json": None, "error": None,
           "stdout_file": outpath, "stderr_file": errpath, "command": argv}
    with open(outpath) as f:
        text = f.read()
    try:
        res["json"] = parse_json(text)
    except ValueError as e:
        res["error"] = f"no JSON on stdout ({e})"
    if timed_out:
        res["error"] = f"timed out after {timeout:g} s"
    elif rc != 0 and res["json"] is None:
        with open(errpath) as f:
            tail = [ln for ln in f.read().splitlines() if ln.strip()][-5:]
        res["error"] = f"exit {rc}: " + " | ".join(tail)
    log(f"== {name}: exit {rc} after {res['seconds']:.0f} s"
        + (f" ({res['error']})" if res["error"] else ""))
    return res


def parse_json(text: str):
    """The JSON a script printed: the whole stdout, or from its first line that opens an
    object (in case something printed before it)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("{"):
            try:
                return json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
    raise ValueError("unparseable" if text.strip() else "empty")


# --------------------------------------------------------------------------
# reading the figures (defensively: the scripts' schemas may change)
# --------------------------------------------------------------------------

def dig(d, *path, default=None):
    for k in path:
        if isinstance(d, dict):
            if k in d:
                d = d[k]
            elif str(k) in d:
                d = d[str(k)]
            else:
                return default
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return default
    return d


def num(v) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def row(bench: str, name: str, nfemu=None, nfemu_s: str = "-", base=None, base_s: str = "-",
        ratio=None, target: Optional[str] = None, check=None, note: str = "",
        wrong: Optional[str] = None) -> Dict:
    """A table row. check: (value, bound, "<=" or ">="), or None for a figure without a
    target."""
    verdict, by = "-", None
    if wrong:
        verdict = "WRONG"
        note = (note + "; " if note else "") + f"wrong result: {wrong}"
    elif check is not None:
        value, bound, op = check
        if value is None:
            verdict = "not measured"
        elif op == "<=":
            verdict = "met" if value <= bound else "MISSED"
            by = value / bound
        else:
            verdict = "met" if value >= bound else "MISSED"
            by = bound / value if value else None
        if verdict == "MISSED" and by is not None:
            verdict = (f"MISSED by {by:.3f}x" if by < 1.1 else f"MISSED by {by:.2f}x" if by < 10
                       else f"MISSED by {by:.0f}x")
    return {"bench": bench, "name": name, "nfemu": nfemu, "nfemu_str": nfemu_s,
            "baseline": base, "baseline_str": base_s, "ratio": ratio,
            "target": target or "-", "verdict": verdict, "miss_factor": by, "note": note}


def _us(v) -> str:
    return "-" if v is None else f"{v:.1f} us"


def rows_trace(d: Dict, notes: List[str], label: str = "") -> List[Dict]:
    out = []
    kern, nf = d.get("kernel"), d.get("nfemu")
    services = dig(d, "args", "services")
    if not kern:
        notes.append(f"trace: kernel part not measured: {d.get('kernel_skipped') or 'no figures'}")
    if not nf:
        notes.append(f"trace: nfemu part not measured: {d.get('nfemu_skipped') or 'no figures'}")
    for case in ("uniform", "first", "last"):
        nu = num(dig(nf, "cases", case, "us"))
        gc_us = num(dig(nf, "cases", case, "gc_us"))
        net = num(dig(kern, "cases", case, "net", "us"))
        whole = num(dig(kern, "cases", case, "rules", "us"))
        ratio = nu / net if nu is not None and net else None
        target = case == "uniform"
        out.append(row(
            "trace", f"new connection, {case} service ({services:,} services)"
            if isinstance(services, int) else f"new connection, {case} service",
            nu, _us(nu) + (f" (GC {_us(gc_us)})" if gc_us is not None and nu is not None else ""),
            net,
            f"kernel net {_us(net)}" + (f" (sendto {whole:.1f})" if whole else ""),
            ratio, "<= 0.25x the kernel" if target else None,
            (ratio, TARGETS["uniform_vs_kernel"], "<=") if target else None,
            note="us of thread CPU per packet; kernel net = with the dump - empty ruleset",
            wrong=dig(nf, "cases", case, "error")))
    a = dig(nf, "all")
    if a or nf:
        secs = num(dig(a, "seconds"))
        eps = dig(d, "args", "all_endpoints")
        out.append(row("trace", f"--all, 1 service x {eps:,} endpoints" if isinstance(eps, int)
                       else "--all", secs,
                       "-" if secs is None else f"{secs:.3f} s ({dig(a, 'outcomes')} outcomes)",
                       None, "- (no kernel equivalent)", None, "< 0.1 s (issue 3)",
                       (secs, TARGETS["all_seconds"], "<="),
                       note="issue 5 sets no figure for --all; issue 3's is used",
                       wrong=dig(a, "error")))
    return out


def rows_scaling(d: Dict, notes: List[str], label: str = "") -> List[Dict]:
    out = []
    sizes = d.get("sizes") or {}
    eps = dig(d, "args", "endpoints")
    try:
        keys = sorted(sizes, key=lambda k: int(k))
    except (TypeError, ValueError):
        keys = list(sizes)
    if not keys:
        notes.append("scaling: no sizes in the JSON")
        return out
    base_k = keys[0]
    base = num(dig(sizes, base_k, "us"))
    for k in keys[1:]:
        us = num(dig(sizes, k, "us"))
        ratio = us / base if us is not None and base else None
        out.append(row("scaling", f"cost per packet, {int(k):,} vs {int(base_k):,} services"
                       + (f" ({eps} endpoints each)" if eps else ""),
                       us, _us(us), base, f"{_us(base)} at {int(base_k):,}", ratio,
                       "<= 1.5x", (ratio, TARGETS["scaling"], "<="),
                       wrong=dig(sizes, k, "error") or dig(sizes, base_k, "error")))
    # the first packet to a service on a fresh node (it compiles the chains it enters),
    # where bench_scaling measured it: informational
    fb = num(dig(sizes, base_k, "first_touch", "us"))
    fl = num(dig(sizes, keys[-1], "first_touch", "us"))
    if fb is not None and fl is not None and len(keys) > 1:
        out.append(row("scaling", f"  first packet to a service, {int(keys[-1]):,} vs "
                       f"{int(base_k):,} services (compiles its chains)", fl, _us(fl), fb,
                       f"{_us(fb)} at {int(base_k):,}", fl / fb if fb else None,
                       note="informational"))
    if dig(d, "args", "cold"):
        notes.append("scaling: --cold: chains compiled inside the measured loop")
    return out


def _replay_row(rows, key: str) -> Optional[Dict]:
    for r in rows or []:
        if isinstance(r, dict) and r.get("key") == key:
            return r
    return None


def rows_replay(d: Dict, notes: List[str], label: str = "") -> List[Dict]:
    out = []
    rows = d.get("rows")
    rep = _replay_row(rows, "replay")
    tcp = _replay_row(rows, "tcpdump")
    net = _replay_row(rows, "net")
    load = _replay_row(rows, "load")
    n = dig(d, "capture", "packets")
    check = d.get("counter_check")
    wrong = None
    if check:
        wrong = "counter check: " + "; ".join(map(str, check))[:300]
    elif check is None:
        notes.append("replay: the counter check did not run")
    rate = num(dig(rep, "packets_per_s"))
    secs = num(dig(rep, "seconds"))
    tsecs = num(dig(tcp, "seconds"))
    trate = num(dig(tcp, "packets_per_s"))
    if tcp is None or tsecs is None:
        notes.append(f"replay: tcpdump baseline not measured ({dig(tcp, 'status') or 'absent'})")
    label = f"{n:,}-packet capture" if isinstance(n, int) else "capture"
    out.append(row("replay", f"replay --counters, {label}: rate", rate,
                   "-" if rate is None else f"{rate:,.0f} pkt/s",
                   trate, "-" if trate is None else f"tcpdump {trate:,.0f} pkt/s",
                   rate / trate if rate and trate else None, ">= 500,000 pkt/s",
                   (rate, TARGETS["replay_rate"], ">="), wrong=wrong))
    out.append(row("replay", f"replay --counters, {label}: time", secs,
                   "-" if secs is None else f"{secs:.2f} s",
                   tsecs, "-" if tsecs is None else f"tcpdump -r -w {tsecs:.2f} s",
                   secs / tsecs if secs is not None and tsecs else None, "<= 3x tcpdump",
                   (secs / tsecs if secs is not None and tsecs else None,
                    TARGETS["replay_vs_tcpdump"], "<="), wrong=wrong))
    # CPU time (user + system, medians): on a machine shared with other work, wall time
    # includes waiting for a CPU; this row shows how much
    cpu = (num(dig(rep, "user_s")) or 0) + (num(dig(rep, "sys_s")) or 0) \
        if num(dig(rep, "user_s")) is not None else None
    tcpu = (num(dig(tcp, "user_s")) or 0) + (num(dig(tcp, "sys_s")) or 0) \
        if num(dig(tcp, "user_s")) is not None else None
    if cpu:
        out.append(row("replay", "  CPU time (user+sys) of the replay", cpu,
                       f"{cpu:.2f} s = {n / cpu:,.0f} pkt/s" if isinstance(n, int)
                       else f"{cpu:.2f} s",
                       tcpu, "-" if tcpu is None else f"tcpdump {tcpu:.2f} s",
                       cpu / tcpu if tcpu else None,
                       note="informational: wall time minus waiting for a CPU"))
    nrate, nsecs = num(dig(net, "packets_per_s")), num(dig(net, "seconds"))
    if net is not None:
        lsecs = num(dig(load, "seconds"))
        out.append(row("replay", "  per packet alone (replay - no-packet run)", nrate,
                       "-" if nrate is None else f"{nrate:,.0f} pkt/s ({nsecs:.2f} s)",
                       trate, "-" if trate is None else f"tcpdump {trate:,.0f} pkt/s",
                       nsecs / tsecs if nsecs is not None and tsecs else None,
                       note="informational; the no-packet run (start-up, load, --counters "
                            "text) took " + ("-" if lsecs is None else f"{lsecs:.2f} s"),
                       wrong=wrong))
    peak = num(dig(rep, "peak_mib"))
    if peak is not None:
        notes.append(f"replay: peak RSS {peak:.0f} MiB")
    return out


def _load_rows(d: Dict) -> Dict[str, Dict]:
    """bench_load's rows by key, from {"results": {key: row}} or a list of rows."""
    res = d.get("results", d.get("rows"))
    if isinstance(res, dict):
        return {k: v for k, v in res.items() if isinstance(v, dict)}
    if isinstance(res, list):
        return {str(r.get("key") or r.get("label")): r for r in res if isinstance(r, dict)}
    return {}


def _seconds(r: Dict) -> Optional[float]:
    for k in ("median_seconds", "seconds", "median_s"):
        if num(r.get(k)) is not None:
            return num(r.get(k))
    return None


def _mib(r: Dict) -> Optional[float]:
    for k in ("peak_rss_mib", "peak_mib", "maxrss_mib"):
        if num(r.get(k)) is not None:
            return num(r.get(k))
    return None


def rows_load(d: Dict, notes: List[str], label: str = "") -> List[Dict]:
    """bench_load's rows. Its schema has changed while being worked on: rows are found by key
    (baseline, load, cold, ...) or, failing that, by label. "load" is the figure the target
    is about (with bench_load's load cache, a cache hit: issue 5 item 2 allows a cache keyed
    by the file's hash); "cold" (cache off: the parse) is given against the same bound."""
    out = []
    rows = _load_rows(d)
    if not rows:
        notes.append("load: no rows found in bench_load's JSON (schema changed?); keys: "
                     + ", ".join(map(str, d.keys())))
        return out
    base = rows.get("baseline") or next(
        (r for r in rows.values() if "iptables-restore" in str(r.get("label", ""))), None)
    load = rows.get("load") or next(
        (r for r in rows.values() if str(r.get("label", "")).startswith("nfemu.load")), None)
    cold = rows.get("cold")
    bsecs = _seconds(base) if base else None
    if base is None or bsecs is None:
        why = (base or {}).get("skipped") or (base or {}).get("error") or "absent"
        notes.append(f"load: iptables-restore --test baseline not measured ({why})")
    meta = d.get("meta") or {}
    what = (f"{meta['services']:,} services" if isinstance(meta.get("services"), int)
            else "dump")
    bstr = "-" if bsecs is None else f"iptables-restore --test {bsecs:.2f} s"
    suffix = f", {label}" if label else ""
    for r, name in ((load, f"{(load or {}).get('label') or 'nfemu.load()'} ({what})"),
                    (cold, f"  {(cold or {}).get('label') or 'cache off'}")):
        if r is None:
            continue
        secs = _seconds(r)
        ratio = secs / bsecs if secs is not None and bsecs else None
        out.append(row("load", name + suffix, secs, "-" if secs is None else f"{secs:.2f} s",
                       bsecs, bstr, ratio, "<= 1.0x", (ratio, TARGETS["load_vs_restore"], "<="),
                       wrong=r.get("error") or r.get("skipped")))
    if load is None:
        notes.append("load: no nfemu.load() row in bench_load's JSON")
    # peak memory: the largest of nfemu's rows (the bound holds for every way of loading)
    peaks = [(m, r) for r in rows.values() if r is not base
             and "nfemu" in str(r.get("label", "")).lower() + str(r.get("command", ""))
             and (m := _mib(r)) is not None]
    if peaks:
        mib, pr = max(peaks, key=lambda x: x[0])
        bmib = _mib(base) if base else None
        out.append(row("load", f"  peak memory, largest nfemu row ({pr.get('label')})" + suffix,
                       mib, f"{mib:.0f} MiB", bmib,
                       "-" if bmib is None else f"iptables-restore {bmib:.0f} MiB",
                       mib / bmib if bmib else None, "<= 1 GiB",
                       (mib, TARGETS["load_peak_mib"], "<=")))
    for key, r in rows.items():   # the others (legacy, first, the CLI, ...): informational
        if r is base or r is load or r is cold:
            continue
        secs = _seconds(r)
        if secs is None and not r.get("error"):
            continue
        out.append(row("load", f"  {r.get('label', key)}" + suffix, secs,
                       "-" if secs is None else f"{secs:.2f} s", bsecs, bstr,
                       secs / bsecs if secs is not None and bsecs else None,
                       wrong=r.get("error")))
    return out


def rows_steady(steady: Dict, trace: Optional[Dict], notes: List[str]) -> List[Dict]:
    """nfemu's steady-state cost per new connection at bench_trace's size (bench_scaling run
    at that one size: every chain compiled before the measured loop) against bench_trace's
    kernel net for the uniform case, measured in the same command; and the first packet to
    a service on a fresh node (it compiles the chains it enters)."""
    out = []
    sizes = steady.get("sizes") or {}
    if not sizes:
        return out
    k = next(iter(sizes))
    us = num(dig(sizes, k, "us"))
    ft = num(dig(sizes, k, "first_touch", "us"))
    eps = dig(steady, "args", "endpoints")
    net = num(dig(trace, "kernel", "cases", "uniform", "net", "us"))
    what = f"{int(k):,} services" + (f" x {eps}" if eps else "")
    out.append(row("trace", f"new connection, uniform, steady state ({what})", us, _us(us),
                   net, "-" if net is None else f"kernel net {_us(net)}",
                   us / net if us is not None and net else None, "<= 0.25x the kernel",
                   (us / net if us is not None and net else None,
                    TARGETS["uniform_vs_kernel"], "<="),
                   note="bench_scaling at this size: every chain compiled beforehand",
                   wrong=dig(sizes, k, "error")))
    if ft is not None:
        out.append(row("trace", "  first packet to a service, fresh node (compiles its chains)",
                       ft, _us(ft), net, "-" if net is None else f"kernel net {_us(net)}",
                       ft / net if net else None, note="informational",
                       wrong=dig(sizes, k, "first_touch", "error")))
    if dig(steady, "args", "cold"):
        notes.append("steady: --cold given: chains compiled inside the measured loop")
    return out


EXTRACT = {"trace": rows_trace, "scaling": rows_scaling, "replay": rows_replay,
           "load": rows_load, "steady": lambda d, notes, label="": []}


# --------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------

# C frames: addresses, CPython's functions, Cython's helpers (__Pyx_...) and its other
# generated C (__pyx_tp_dealloc..., module init). Cython's compiled bodies of generators
# and lambdas (__pyx_gb_..., __pyx_lambda_funcdef_...) and of functions (__pyx_pw_/pf_) are
# the user's code: source frames.
_C_FRAME = re.compile(r"^(0x[0-9a-f]+|__Pyx|_?Py[A-Z_]|_Py|__pyx_(?!gb_|lambda_funcdef|pw_|pf_)"
                      r"|cfunction_|method_vectorcall|vectorcall|call_function|gc_collect)")


def _frame_is_source(frame: str) -> bool:
    """A py-spy frame "function (file[:line])" of Python or Cython source, as opposed to
    the C of CPython, Cython's helpers or a library."""
    m = re.match(r"^(.*) \(([^()]*)\)$", frame)
    if not m:
        return False
    func, where = m.group(1), m.group(2)
    if _C_FRAME.match(func):
        return False
    where = where.rsplit(":", 1)[0] if re.search(r":\d+$", where) else where
    return where.endswith(".py") or where.startswith("<")


def top_own(raw_path: str, n: int = 10, native: bool = False) -> Dict:
    """Top n functions by own time from py-spy's raw (folded) output: each sample's time
    goes to its innermost Python/Cython source frame. With native stacks (py-spy
    --native), also the share of samples inside the cyclic garbage collector (CPython's
    gc_collect_main), whose time is otherwise charged to whatever function allocated."""
    own: collections.Counter = collections.Counter()
    total = in_gc = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            try:
                c = int(count)
            except ValueError:
                continue
            frames = [fr for fr in stack.split(";") if fr]
            total += c
            if "gc_collect" in stack:
                in_gc += c
            src = [fr for fr in frames if _frame_is_source(fr)]
            if not src:
                leaf = frames[-1] if frames else "(no Python frame)"
            elif src[-1].startswith("__create_fn__") and len(src) > 1:
                # a dataclass's generated __init__/__eq__...: name the caller
                leaf = f"dataclass {src[-1].split(' ')[0].rsplit('.', 1)[-1]} <- {src[-2]}"
            else:
                leaf = src[-1]
            own[leaf] += c
    by_file: collections.Counter = collections.Counter()
    for k, v in own.items():
        m = re.match(r"^.* \(([^()]*)\)$", k)
        by_file[m.group(1).rsplit(":", 1)[0] if m else "?"] += v
    return {"samples": total,
            "gc_percent": (100.0 * in_gc / total if total else None) if native else None,
            "top": [{"function": k, "samples": v, "percent": 100.0 * v / total if total else 0}
                    for k, v in own.most_common(n)],
            "by_file": [{"file": k, "percent": 100.0 * v / total if total else 0}
                        for k, v in by_file.most_common(8)]}


def top_cprofile(path: str, root: str, n: int = 10) -> Dict:
    """Top n functions by own time (tottime) of a cProfile output."""
    import pstats
    st = pstats.Stats(path)
    items = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)
    total = sum(v[2] for _, v in st.stats.items())

    def where(file):
        return os.path.relpath(file, root) if file.startswith(root + os.sep) else file
    return {"samples": None, "total_tottime_s": total,
            "top": [{"function": f"{fn} ({where(file)}:{line})", "seconds": v[2], "calls": v[1],
                     "percent": 100.0 * v[2] / total if total else 0}
                    for (file, line, fn), v in items[:n]]}


class Profiler:
    """py-spy when it works, else cProfile."""

    def __init__(self, python: str, root: str, env: Dict[str, str], compiled: Optional[bool],
                 outdir: str, seconds: float):
        self.python, self.root, self.env, self.outdir = python, root, env, outdir
        self.seconds = seconds
        self.pyspy = shutil.which("py-spy")
        self.native = bool(compiled)
        self.tool = "py-spy" if self.pyspy else "cProfile"

    def _pyspy_args(self, out: str) -> List[str]:
        return ([self.pyspy, "record", "--format", "raw", "--nolineno", "-r", "200", "-o", out]
                + (["--native"] if self.native else []))

    def attach(self, name: str, mode: str, args: List[str]) -> Dict:
        """The driver's loop (after loading), for self.seconds."""
        if not self.pyspy:
            out = os.path.join(self.outdir, f"{name}.prof")
            p = subprocess.run([self.python, "-c", DRIVER, self.root, mode, str(self.seconds),
                                out, *args], cwd=self.root, env=self.env, capture_output=True,
                               text=True)
            if p.returncode != 0:
                return {"error": p.stderr.strip()[-1000:]}
            return dict(top_cprofile(out, self.root), tool="cProfile",
                        what=f"{self.seconds:g} s of the loop after loading")
        out = os.path.join(self.outdir, f"{name}.pyspy.txt")
        drv = subprocess.Popen([self.python, "-c", DRIVER, self.root, mode,
                                str(self.seconds + 5), "-", *args], cwd=self.root,
                               env=self.env, stdout=subprocess.PIPE, text=True)
        try:
            line = drv.stdout.readline()
            if line.strip() != "READY":
                drv.wait()
                return {"error": f"profile driver failed before READY (exit {drv.returncode})"}
            sp = subprocess.run(self._pyspy_args(out) + ["--pid", str(drv.pid), "--duration",
                                                         str(int(self.seconds))],
                                capture_output=True, text=True)
            drv.wait(timeout=self.seconds + 120)
        finally:
            if drv.poll() is None:
                drv.kill()
                drv.wait()
        if sp.returncode != 0 or not os.path.exists(out):
            return {"error": f"py-spy: {sp.stderr.strip()[-500:]}"}
        return dict(top_own(out, native=self.native),
                    tool="py-spy" + (" --native" if self.native else ""),
                    what=f"{self.seconds:g} s of the loop after loading", raw=out)

    def command(self, name: str, argv: List[str], env: Optional[Dict[str, str]] = None) -> Dict:
        """A whole command (argv[0] is the interpreter), as the benchmark ran it."""
        env = env or self.env
        if not self.pyspy:
            out = os.path.join(self.outdir, f"{name}.prof")
            # NFEMU_PROFILE: nfemu's CLI (and LOADER) exit normally, so cProfile can write
            env = dict(env, NFEMU_PROFILE="1")
            rest = list(argv[1:])
            if rest[:1] == ["-c"]:      # cProfile runs a script or a module, not -c
                script = os.path.join(self.outdir, f"{name}-prog.py")
                with open(script, "w") as f:
                    f.write(rest[1])
                rest = [script, *rest[2:]]
            p = subprocess.run([argv[0], "-m", "cProfile", "-o", out, *rest], cwd=self.root,
                               env=env, capture_output=True, text=True)
            if not os.path.exists(out):
                return {"error": f"cProfile: exit {p.returncode}: {p.stderr.strip()[-500:]}"}
            return dict(top_cprofile(out, self.root), tool="cProfile", what="the whole command")
        out = os.path.join(self.outdir, f"{name}.pyspy.txt")
        t0 = time.perf_counter()
        sp = subprocess.run(self._pyspy_args(out) + ["--", *argv], cwd=self.root, env=env,
                            capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if not os.path.exists(out):
            return {"error": f"py-spy: exit {sp.returncode}: {sp.stderr.strip()[-500:]}"}
        return dict(top_own(out, native=self.native),
                    tool="py-spy" + (" --native" if self.native else ""),
                    what=f"the whole command ({secs:.1f} s under py-spy)", raw=out)


def run_profiles(a, benches: Dict[str, Dict], prof: Profiler) -> Dict[str, Dict]:
    out: Dict[str, Dict] = {}
    if "trace" in benches:
        d = benches["trace"]["json"] or {}
        s = dig(d, "args", "services", default=10000)
        e = dig(d, "args", "endpoints", default=5)
        log(f"== profile: trace loop, {s} services x {e} endpoints")
        out["trace"] = prof.attach("trace", "trace", [str(s), str(e)])
        eps = dig(d, "args", "all_endpoints", default=1000)
        if eps:
            log(f"== profile: --all loop, 1 service x {eps} endpoints")
            out["all"] = prof.attach("all", "all", [str(eps)])
    if "scaling" in benches:
        d = benches["scaling"]["json"] or {}
        sizes = sorted(int(k) for k in (d.get("sizes") or {})) or [100, 30000]
        e = dig(d, "args", "endpoints", default=2)
        for n in (sizes[0], sizes[-1]):
            log(f"== profile: scaling loop, {n} services x {e} endpoints")
            out[f"scaling {n}"] = prof.attach(f"scaling-{n}", "trace", [str(n), str(e)])
    if "replay" in benches:
        cmd = dig(benches["replay"]["json"], "command")
        if isinstance(cmd, list) and cmd:
            cmd = [prof.python] + list(cmd[1:])
            log("== profile: " + " ".join(cmd))
            out["replay"] = prof.command("replay", cmd)
        else:
            out["replay"] = {"error": "bench_replay's JSON gave no command"}
    if "load" in benches:
        path = dig(benches["load"]["json"], "meta", "file")
        if isinstance(path, str):
            cmd = [prof.python, "-c", LOADER, prof.root, path]
            if a.load_cache:
                # the parse itself, then (the entry now written in a private cache
                # directory, as bench_load does) what a cache hit costs
                env = dict(prof.env, XDG_CACHE_HOME=tempfile.mkdtemp(prefix="xdg-",
                                                                     dir=prof.outdir))
                log(f"== profile: nfemu.load({path}) + compile, NFEMU_NO_CACHE=1")
                out["load + compile, cache off"] = prof.command(
                    "load-nocache", cmd, dict(env, NFEMU_NO_CACHE="1"))
                subprocess.run(cmd, env=env, cwd=prof.root, capture_output=True)
                log(f"== profile: nfemu.load({path}) + compile, cache hit")
                out["load + compile, cache hit"] = prof.command("load-cached", cmd, env)
                shutil.rmtree(env["XDG_CACHE_HOME"], ignore_errors=True)
            else:
                log(f"== profile: nfemu.load({path}) + compile")
                out["load + compile"] = prof.command("load", cmd)
        else:
            out["load"] = {"error": "bench_load's JSON gave no file"}
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def _ratio(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}x" if v < 0.1 else f"{v:.2f}x" if v < 100 else f"{v:.0f}x"


def print_table(res: Dict) -> None:
    t = res["twin"]
    twin = {True: "compiled (Cython)", False: "pure Python", None: "unknown"}[t.get("compiled")]
    m = res["machine"]
    print(f"nfemu benchmarks (issue 5 item 3): twin: {twin}; nfemu from "
          f"{os.path.dirname(t.get('file') or '?')}; Python {t.get('python')} "
          f"({t.get('executable')})" + ("; NFEMU_PURE_PYTHON=1" if res["env_pure"] else ""))
    c = res["checkout"]
    print(f"nfemu: git {c.get('git_rev')}"
          + (f" + {len(c['uncommitted'])} uncommitted files under nfemu/"
             if c.get("uncommitted") else "") + f", sources digest {c.get('sources_digest')}")
    print(f"machine: {m.get('cpu')}, {m.get('nproc')} cores, {m.get('ram_gib')} GiB, Linux "
          f"{m.get('kernel')}, {m.get('iptables')}; load average "
          f"{res['loadavg_start'][0]:.2f} at start, {res['loadavg_end'][0]:.2f} at end; "
          f"{'quick' if res['quick'] else 'full'} run, {res['seconds']:.0f} s")
    lc = t.get("load_cache") or {}
    print("load cache (nfemu/loadcache.py): " + (
        "none in this nfemu" if not lc.get("present") else
        "off (NFEMU_NO_CACHE)" if lc.get("disabled") else
        f"on, in {lc.get('dir')}: loads after the first of each dump read the cached ruleset"))
    print(f"scripts: {res['bench_dir']}" + (
        f" (differ from {BENCH_DIR}: {', '.join(res['script_differences'])})"
        if res["script_differences"] else ""))
    print()
    hdr = ("benchmark", "nfemu", "baseline", "ratio", "target", "result")
    body = [(r["name"], r["nfemu_str"], r["baseline_str"], _ratio(r["ratio"]), r["target"],
             r["verdict"]) for r in res["rows"]]
    widths = [max(len(str(x[i])) for x in [hdr, *body]) for i in range(len(hdr))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if i in (0, 1, 2, 4, 5) else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for b in body:
        print(line(b))
    print("\nratio = nfemu / baseline (time or cost per packet; for rates, nfemu's rate / "
          "the baseline's). 'MISSED by Nx' = how far nfemu is from the target.")
    for r in res["rows"]:
        if r["note"] and r["verdict"] == "WRONG":
            print(f"  {r['name'].strip()}: {r['note']}")
    for n in res["notes"]:
        print(f"note: {n}")
    for name, b in res["benches"].items():
        if b.get("error"):
            print(f"{name}: FAILED: {b['error']} (stderr: {b['stderr_file']})")
    print(f"raw JSON and stderr of each benchmark: {res['logdir']}")
    if res.get("profiles"):
        print()
        for name, p in res["profiles"].items():
            if p.get("error"):
                print(f"profile {name}: {p['error']}")
                continue
            print(f"profile {name} ({p['tool']}, {p['what']}"
                  + (f", {p['samples']} samples" if p.get("samples") else "")
                  + (f", {p['gc_percent']:.0f}% of them in the cyclic GC"
                     if p.get("gc_percent") is not None else "")
                  + "): top 10 by own time")
            for it in p["top"]:
                extra = (f"  {it['seconds']:.3f} s, {it['calls']} calls"
                         if "seconds" in it else "")
                print(f"  {it['percent']:5.1f}%  {it['function']}{extra}")
            if p.get("by_file"):
                print("  own time by file: " + ", ".join(
                    f"{it['file']} {it['percent']:.0f}%" for it in p["by_file"]))


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that runs the benchmarks (e.g. a venv holding the "
                         "compiled build; default: this one)")
    ap.add_argument("--pure", action="store_true",
                    help="set NFEMU_PURE_PYTHON=1 for the benchmarks (the pure-Python twin)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer packets and repetitions everywhere (replay: 100,000 packets)")
    ap.add_argument("--packets", type=int, default=None,
                    help="packets in the replay capture (default 1,000,000; --quick 100,000)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions for every benchmark (default: trace 5, scaling 5, "
                         "replay 3, load 3; --quick: 3, 3, 1, 1)")
    ap.add_argument("--skip", action="append", default=[], choices=BENCHES)
    ap.add_argument("--only", action="append", default=[], choices=BENCHES)
    ap.add_argument("--args", nargs=2, action="append", default=[], metavar=("BENCH", "ARGS"),
                    help="extra arguments for one benchmark, e.g. --args trace "
                         "'--iptables-restore iptables-legacy-restore'")
    ap.add_argument("--bench-dir", help="run the benchmark scripts of this bench/ directory "
                                        "(default: the one of the checkout --python imports "
                                        "nfemu from)")
    ap.add_argument("--replay-cache", default="/tmp/nfemu-runall-replay",
                    help="bench_replay's --cache-dir (captures of ~800 MB per million packets)")
    ap.add_argument("--logdir", help="where each benchmark's JSON and stderr are kept "
                                     "(default: a new directory under /tmp)")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds after which a benchmark is stopped (default 3600)")
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, profile each benchmark (py-spy, else cProfile)")
    ap.add_argument("--profile-seconds", type=float, default=None,
                    help="seconds of each profiled loop (default 20, --quick 8)")
    ap.add_argument("--no-cache", action="store_true",
                    help="set NFEMU_NO_CACHE=1 for the benchmarks (no load cache: every "
                         "nfemu.load parses the dump)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    selected = [b for b in BENCHES if b not in a.skip and (not a.only or b in a.only)]
    extra: Dict[str, List[str]] = collections.defaultdict(list)
    for b, s in a.args:
        if b not in BENCHES:
            ap.error(f"--args: unknown benchmark {b!r} (one of {', '.join(BENCHES)})")
        extra[b] += shlex.split(s)
    packets = a.packets or (100_000 if a.quick else 1_000_000)
    prof_secs = a.profile_seconds or (8.0 if a.quick else 20.0)

    env = dict(os.environ)
    if a.pure:
        env["NFEMU_PURE_PYTHON"] = "1"
    if a.no_cache:
        env["NFEMU_NO_CACHE"] = "1"
    python = shutil.which(a.python) or a.python
    if a.bench_dir:
        bench_dir = os.path.abspath(a.bench_dir)
    else:
        found = locate_checkout(python, env)
        if found and all(os.path.exists(os.path.join(found, "bench", s))
                         for s in SCRIPTS.values()):
            bench_dir = os.path.join(found, "bench")
        else:
            bench_dir = BENCH_DIR
            if found:
                log(f"note: {python} imports nfemu from {found}, which has no complete bench/; "
                    f"the scripts of {BENCH_DIR} will import their own checkout's nfemu")
    root = os.path.dirname(bench_dir)
    missing = [s for b, s in SCRIPTS.items() if b in selected
               and not os.path.exists(os.path.join(bench_dir, s))]
    if missing:
        ap.error(f"{bench_dir} lacks {', '.join(missing)}")
    twin = probe(python, root, env)
    if "error" in twin:
        log(f"cannot import nfemu with {python} from {root}:\n{twin['error']}")
        return 2
    lc = twin.get("load_cache") or {}
    a.load_cache = bool(lc.get("present")) and not lc.get("disabled")
    logdir = a.logdir or tempfile.mkdtemp(prefix="nfemu-runall-")
    os.makedirs(logdir, exist_ok=True)
    twin_name = {True: "compiled", False: "pure Python", None: "unknown"}[twin.get("compiled")]
    log(f"run_all: {twin_name} twin, nfemu {twin['file']}, Python {twin['python']}; scripts "
        f"{bench_dir}; logs {logdir}")
    if os.geteuid() != 0:
        log("run_all: not root: the kernel baselines (trace, load) will be skipped")

    rep = a.repeat
    argvs = {
        "trace": ["--skip", "scaling"] + (["--quick"] if a.quick else [])
                 + (["--repeat", str(rep)] if rep else []),
        "scaling": (["--quick"] if a.quick else []) + (["--repeat", str(rep)] if rep else []),
        "replay": ["--packets", str(packets), "--repeat", str(rep or (1 if a.quick else 3)),
                   "--cache-dir", a.replay_cache],
        "load": ["--repeat", str(rep or (1 if a.quick else 3))],
        "steady": ["--sizes", str(_opt(extra["trace"], "--services", 10000)),
                   "--endpoints", str(_opt(extra["trace"], "--endpoints", 5))]
                  + (["--quick"] if a.quick else []) + (["--repeat", str(rep)] if rep else []),
    }
    la0 = os.getloadavg()
    t0 = time.perf_counter()
    benches: Dict[str, Dict] = {}
    rows: List[Dict] = []
    notes: List[str] = []
    # (name, benchmark, extra environment, label)
    runs = []
    for b in selected:
        runs.append((b, b, {}, ""))
        if b == "trace":
            # bench_trace times a fresh node: nfemu compiles each chain when a packet first
            # enters it, so its uniform case pays for compiling chains too; this run gives
            # the steady state at the same size (and the first-touch cost)
            runs.append(("trace-steady", "steady", {}, ""))
    warmed = False
    for name, b, env_extra, label in runs:
        # the replay's timed commands load the dump through the user's load cache: fill it
        # first, so that the no-packet run and the replays all read it the same way (a
        # cold first run would make "replay - no-packet" wrong). bench_load keeps its own
        # private cache and measures the cases itself.
        if b == "replay" and a.load_cache and not warmed:
            # bench_replay's own no-packet run, once, untimed: it makes the capture if
            # needed and leaves the dump in the cache under the key the CLI uses
            warmed = True
            wcmd = [python, os.path.join(bench_dir, SCRIPTS[b]), *argvs[b], *extra[b],
                    "--skip", "tcpdump", "--skip", "replay", "--repeat", "1", "--json"]
            log("== replay warm-up (capture, load cache): " + " ".join(wcmd[1:]))
            t1 = time.perf_counter()
            w = subprocess.run(wcmd, cwd=root, env=env, capture_output=True, text=True)
            if w.returncode != 0:
                notes.append(f"replay warm-up failed (exit {w.returncode}): "
                             + " | ".join(w.stderr.strip().splitlines()[-3:]))
            else:
                notes.append(f"replay warm-up (capture made or found, dump put in the load "
                             f"cache): {time.perf_counter() - t1:.0f} s, untimed")
        cmd = [python, os.path.join(bench_dir, SCRIPTS[b]), *argvs[b], *extra[b], "--json"]
        r = run_bench(name, cmd, root, dict(env, **env_extra), a.timeout, logdir)
        r["env_extra"] = env_extra
        benches[name] = r
        if r["json"] is not None:
            try:
                rows += EXTRACT[b](r["json"], notes, label)
            except Exception as e:   # a schema this reader does not know: say so, go on
                notes.append(f"{name}: could not read its JSON ({type(e).__name__}: {e}); "
                             f"see {r['stdout_file']}")
        notes.append(f"{name}: {r['seconds']:.0f} s, load average "
                     f"{r['loadavg_start'][0]:.2f} -> {r['loadavg_end'][0]:.2f}")
    st = benches.get("trace-steady")
    if st and st["json"] is not None:
        try:
            extra_rows = rows_steady(st["json"], (benches.get("trace") or {}).get("json"), notes)
        except Exception as e:
            extra_rows = []
            notes.append(f"trace-steady: could not read its JSON ({type(e).__name__}: {e})")
        at = next((i + 1 for i, r in enumerate(rows)
                   if r["bench"] == "trace" and "uniform" in r["name"]), 0)
        if at and extra_rows:
            rows[at - 1]["name"] += ", fresh node"
        rows[at:at] = extra_rows
    res = {"twin": twin, "env_pure": env.get("NFEMU_PURE_PYTHON") == "1",
           "python": python, "bench_dir": bench_dir,
           "script_differences": script_differences(bench_dir),
           "quick": a.quick, "replay_packets": packets, "targets": TARGETS,
           "loadavg_start": la0, "loadavg_end": os.getloadavg(),
           "seconds": time.perf_counter() - t0, "machine": machine(),
           "checkout": checkout_state(root), "logdir": logdir,
           "rows": rows, "notes": notes,
           "benches": {b: {k: v for k, v in r.items() if k != "json"} for b, r in benches.items()},
           "command": [sys.executable, os.path.abspath(__file__)]
           + (sys.argv[1:] if argv is None else list(argv))}
    if a.profile:
        prof = Profiler(python, root, env, twin.get("compiled"), logdir, prof_secs)
        res["profiles"] = run_profiles(a, {b: r for b, r in benches.items() if r["json"]}, prof)
        res["loadavg_after_profiles"] = os.getloadavg()
    with open(os.path.join(logdir, "run_all.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)
    if a.json:
        print(json.dumps(res, indent=1, default=str))
    else:
        print_table(res)
    failed = [b for b, r in benches.items() if r["error"]]
    return 1 if failed or any(r["verdict"] == "WRONG" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
