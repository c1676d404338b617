#!/usr/bin/env python3
"""Replay benchmark: ``nfemu replay`` of a generated capture against ``tcpdump -r IN -w OUT``.

    python3 bench/bench_replay.py                          # 1,000,000 packets, 10,000 flows
    python3 bench/bench_replay.py --packets 100000         # quick run
    python3 bench/bench_replay.py --json > replay.json
    python3 bench/bench_replay.py --profile 20000          # cProfile of a 20,000-packet replay

Issue 4 item 7 (the target is issue 5's: >= 500,000 packets/s with ``--counters`` and
within 3x of tcpdump). In one command:

1. the capture: bench/make_capture.py (``--packets`` in ``--flows`` TCP connections to the
   services of the 10,000-service kube dump; replies addressed from nfemu's own conntrack
   entries with ``--seed``, see its docstring), cached in ``--cache-dir`` (default
   /tmp/nfemu-bench-replay) under a name made of the parameters and a hash of the
   generators and of nfemu's sources (the replies depend on nfemu's random choices);
   plus an empty capture (same format, no packet) for the load-only run;
2. the I/O baseline: ``tcpdump -r IN -w OUT``;
3. ``nfemu replay DUMP EMPTY --counters OUT -i eth0 --quiet --no-progress --seed S`` with
   the node's host options (make_capture.HOST_OPTIONS): the load of the dump, interpreter
   start-up and writing the counters, with no packet;
4. the same on the capture.

Every command is a child process, timed with ``time.perf_counter()`` around it (wall
time); its peak RSS is the ``ru_maxrss`` ``os.wait4`` returns for that child. The capture
is read once before the timings so that it is in the page cache. With ``--repeat R`` the
three runs are interleaved R times and medians are reported.

The table: packets, flows, seconds, packets/s, peak MiB, and the ratio to tcpdump's time;
the last row is nfemu's rate with the load-only run's time subtracted (per-packet cost
alone). After the replay its ``--counters`` file is checked against what the kernel's
netfilter gives for this traffic (every packet is forwarded; only SYNs are NEW, so the nat
chains see F packets; KUBE-FORWARD: INVALID DROP 0, the masquerade-mark ACCEPT F SYNs,
RELATED,ESTABLISHED ACCEPT the N - F others; bytes from the capture's IP lengths). A
failed check marks the result WRONG: the replies did not match their connections.

stdlib only; nfemu runs from the repository root (``python3 -m nfemu``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

import gen_kube_dump
import make_capture
from bench_load import machine_info, prepare_dump

DEFAULT_CACHE = "/tmp/nfemu-bench-replay"
SYN_IP_BYTES = 44          # IPv4 20 + TCP 20 + MSS option 4


# ---- capture cache ------------------------------------------------------------------------

def _digest(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.encode())
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:10]


def _nfemu_sources() -> list[str]:
    out = []
    for root, _dirs, files in os.walk(os.path.join(REPO_ROOT, "nfemu")):
        out += [os.path.join(root, f) for f in files if f.endswith((".py", ".pyx", ".pxd"))]
    return out


def capture_path(a, cache: str) -> str:
    srcs = [make_capture.__file__, gen_kube_dump.__file__]
    if a.replies == "nfemu":
        srcs += _nfemu_sources()
    name = (f"cap-{a.packets}p-{a.flows}f-s{a.seed}-{a.services}x{a.endpoints}-"
            f"r{a.rate:g}-{a.replies}-{_digest(srcs)}.{a.format}")
    return os.path.join(cache, name)


def prepare_capture(a, cache: str, dump: str, log) -> dict:
    """Make (or reuse) the capture; return its description (make_capture's JSON)."""
    path = capture_path(a, cache)
    meta = path + ".json"
    if os.path.exists(path) and os.path.exists(meta):
        log(f"capture: reusing {path}")
        with open(meta) as f:
            return json.load(f)
    os.makedirs(cache, exist_ok=True)
    for old in os.listdir(cache):   # captures of other nfemu versions with these parameters
        if old.startswith(os.path.basename(path).rsplit("-", 1)[0] + "-"):
            os.unlink(os.path.join(cache, old))
    log(f"capture: generating {a.packets:,} packets in {a.flows:,} flows -> {path}")
    tmp = path + ".tmp"
    cmd = [sys.executable, make_capture.__file__, "-o", tmp, "--packets", str(a.packets),
           "--flows", str(a.flows), "--seed", str(a.seed), "--services", str(a.services),
           "--endpoints", str(a.endpoints), "--rate", str(a.rate), "--format", a.format,
           "--replies", a.replies, "--dump", dump, "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"make_capture failed ({r.returncode}):\n{r.stderr[-3000:]}")
    with open(tmp + ".json") as f:
        info = json.load(f)
    info["path"] = path
    os.replace(tmp, path)
    with open(meta, "w") as f:
        json.dump(info, f, indent=1)
    os.unlink(tmp + ".json")
    log(f"capture: {info['file_bytes']:,} bytes in {info['generate_seconds']:.1f} s")
    return info


def empty_capture(fmt: str, cache: str) -> str:
    """A capture of the same format with no packet record (for the load-only run)."""
    path = os.path.join(cache, f"empty.{fmt}")
    w = make_capture.PcapngWriter(path) if fmt == "pcapng" else make_capture.PcapWriter(path)
    w.close()
    return path


def count_pcap_records(path: str) -> int:
    """Records of a classic pcap file (little- or big-endian), by walking the record
    headers: how many packets tcpdump wrote."""
    with open(path, "rb") as f:
        head = f.read(24)
        endian = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        rec = struct.Struct(endian + "IIII")
        n = 0
        while True:
            h = f.read(16)
            if len(h) < 16:
                return n
            f.seek(rec.unpack(h)[2], 1)
            n += 1


def warm(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


# ---- running children ----------------------------------------------------------------------

def run_child(argv: list[str], timeout: float | None = None, stdout=subprocess.DEVNULL,
              env=None) -> dict:
    """Run argv; wall seconds, peak RSS (MiB, of that child: os.wait4's rusage), exit code
    and the end of stderr."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=stdout, stderr=err, cwd=REPO_ROOT, env=env)
    timed_out = False
    if timeout:
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
    else:
        pid, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter()
    p.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    tail = err.read()[-4000:].decode(errors="replace")
    err.close()
    return {"seconds": t1 - t0, "peak_mib": ru.ru_maxrss / 1024.0, "rc": p.returncode,
            "stderr": tail, "timed_out": timed_out, "user_s": ru.ru_utime,
            "sys_s": ru.ru_stime}


def nfemu_argv(dump: str, capture: str, counters: str, seed: int, extra: list[str]) -> list[str]:
    return ([sys.executable, "-m", "nfemu", "replay", dump, capture, "--counters", counters,
             "-i", "eth0", "--quiet", "--no-progress", "--seed", str(seed)]
            + make_capture.HOST_OPTIONS + extra)


# ---- checking the counters -------------------------------------------------------------------

_COUNTED = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) (.*)$")


def read_counters(path: str) -> dict:
    """{(table, chain): [(packets, bytes, rule text), ...]} and the policies
    {(table, chain): (packets, bytes)} of an iptables-save -c file."""
    rules: dict = {}
    policies: dict = {}
    table = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                m = re.match(r"^:(\S+) (\S+) \[(\d+):(\d+)\]", line)
                if m and m.group(2) != "-":
                    policies[(table, m.group(1))] = (int(m.group(3)), int(m.group(4)))
            else:
                m = _COUNTED.match(line)
                if m:
                    rules.setdefault((table, m.group(3)), []).append(
                        (int(m.group(1)), int(m.group(2)), m.group(4)))
    return {"rules": rules, "policies": policies}


def check_counters(path: str, info: dict) -> list[str]:
    """What the kernel would count for this capture (see the module docstring); the list
    of differences (empty: as expected)."""
    n, f = info["packets"], info["flows"]
    ip_bytes = info["frame_bytes"] - 14 * n
    syn_bytes = SYN_IP_BYTES * f
    c = read_counters(path)
    rules = c["rules"]
    problems = []

    def expect(table, chain, pick, want, what):
        rs = rules.get((table, chain), [])
        got = [r for r in rs if pick(r[2])]
        if len(got) != 1:
            problems.append(f"{table} {chain}: {len(got)} rules for {what!r}")
            return
        if (got[0][0], got[0][1]) != want:
            problems.append(f"{table} {chain} {what}: [{got[0][0]}:{got[0][1]}], "
                            f"expected [{want[0]}:{want[1]}]")

    expect("filter", "KUBE-FORWARD", lambda t: "--ctstate INVALID" in t, (0, 0),
           "INVALID -j DROP")
    expect("filter", "KUBE-FORWARD", lambda t: "--mark 0x4000/0x4000" in t, (f, syn_bytes),
           "masquerade mark -j ACCEPT")
    expect("filter", "KUBE-FORWARD", lambda t: "RELATED,ESTABLISHED" in t,
           (n - f, ip_bytes - syn_bytes), "RELATED,ESTABLISHED -j ACCEPT")
    expect("filter", "FORWARD", lambda t: "-j KUBE-FORWARD" in t, (n, ip_bytes),
           "-j KUBE-FORWARD")
    expect("nat", "PREROUTING", lambda t: "-j KUBE-SERVICES" in t, (f, syn_bytes),
           "-j KUBE-SERVICES")
    expect("nat", "KUBE-POSTROUTING", lambda t: "MASQUERADE" in t, (f, syn_bytes),
           "MASQUERADE")
    svc = rules.get(("nat", "KUBE-SERVICES"), [])
    hits = sum(r[0] for r in svc if "-j KUBE-SVC-" in r[2])
    if hits != f:
        problems.append(f"nat KUBE-SERVICES: {hits} packets to KUBE-SVC chains, expected {f}")
    for chain in ("INPUT", "OUTPUT"):
        pol = c["policies"].get(("filter", chain))
        if pol and pol != (0, 0):
            problems.append(f"filter {chain} policy [{pol[0]}:{pol[1]}]: no packet is for "
                            f"or from the node itself")
    return problems


# ---- profile ---------------------------------------------------------------------------------

# cProfile in a child. "cli": the whole command, nfemu.cli.main with the cyclic garbage
# collector off, as the console script runs it (nfemu.cli.run, which leaves through
# os._exit, so `python3 -m cProfile -m nfemu` would never write its profile). "loop": the
# dump loaded and the node built outside the profile, then what cmd_replay does per record
# (nfemu.replay.replay driving Node.send, Summary.add); the --counters text, a fixed cost
# (in the load-only run too), is left out.
_PROFILE = r"""
import cProfile, gc, sys, time
repo, mode, out = sys.argv[1:4]
sys.path.insert(0, repo)
gc.disable()
if mode == "cli":
    from nfemu.cli import main
    argv = sys.argv[4:]
    t0 = time.perf_counter()
    cProfile.run("main(argv)", out)
else:
    import nfemu
    from nfemu.host import Host
    from nfemu.node import Node
    from nfemu.replay import Summary, replay
    dump, cap, seed, ifaces, gw = sys.argv[4:9]
    node = Node(nfemu.load(dump), Host.from_options(ifaces.split(","), default_gateway=gw),
                seed=int(seed))
    def loop():
        s = Summary()
        for r in replay(node, cap, iface="eth0"):
            s.add(r)
    t0 = time.perf_counter()
    cProfile.run("loop()", out)
print(time.perf_counter() - t0)
"""


def profile(a, dump: str, cache: str, log) -> int:
    """cProfile of ``nfemu replay`` on an ``a.profile``-packet capture (as many packets per
    flow as the full run): the whole command (load included), then the per-packet loop
    alone; the top 25 functions by tottime for each."""
    import pstats
    sub = argparse.Namespace(**vars(a))
    sub.packets = a.profile
    sub.flows = max(1, round(a.profile * a.flows / a.packets))
    info = prepare_capture(sub, cache, dump, log)
    counters = os.path.join(cache, "profile-counters.save")
    ifaces = ",".join(make_capture.HOST_OPTIONS[1:4:2])
    gw = make_capture.HOST_OPTIONS[-1]
    runs = (("cli", "the whole command (load included)",
             nfemu_argv(dump, info["path"], counters, a.seed, a.nfemu_args)[3:]),
            ("loop", "the per-packet loop alone (replay driver, Summary; no --counters text)",
             [dump, info["path"], str(a.seed), ifaces, gw]))
    for mode, what, args in runs:
        out = os.path.join(cache, f"replay-{mode}.prof")
        argv = [sys.executable, "-c", _PROFILE, REPO_ROOT, mode, out] + args
        log(f"profile ({mode}): " + " ".join(argv[3:]))
        r = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT,
                           check=False)
        if r.returncode != 0 or not os.path.exists(out):
            print(r.stderr[-3000:], file=sys.stderr)
            return 1
        seconds = float(r.stdout.strip().splitlines()[-1])
        print(f"# {what}, under cProfile: {info['packets']:,} packets in {info['flows']:,} "
              f"flows, {seconds:.1f} s")
        pstats.Stats(out).sort_stats("tottime").print_stats(25)
    return 0


# ---- main ------------------------------------------------------------------------------------

def _median(xs):
    return statistics.median(xs) if xs else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", "-n", type=int, default=1_000_000)
    ap.add_argument("--flows", "-f", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--rate", type=float, default=100_000.0,
                    help="capture-time packets per second (default 100000)")
    ap.add_argument("--format", choices=("pcapng", "pcap"), default="pcapng")
    ap.add_argument("--replies", choices=("nfemu", "static"), default="nfemu",
                    help="make_capture's reply mode (static: unmatched replies, see there)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds after which an nfemu run is killed (default 1800)")
    ap.add_argument("--cache-dir", default=DEFAULT_CACHE)
    ap.add_argument("--skip", action="append", default=[],
                    choices=("tcpdump", "load", "replay"), help="skip a row")
    ap.add_argument("--nfemu-args", nargs=argparse.REMAINDER, default=[],
                    help="extra arguments for nfemu replay (must come last)")
    ap.add_argument("--profile", type=int, metavar="N",
                    help="only profile nfemu replay on an N-packet capture (cProfile)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    cache = a.cache_dir
    os.makedirs(cache, exist_ok=True)
    dump = prepare_dump(a.services, a.endpoints, True)
    if a.profile:
        return profile(a, dump, cache, log)
    info = prepare_capture(a, cache, dump, log)
    cap = info["path"]
    empty = empty_capture(a.format, cache)
    warm(cap)
    warm(dump)

    tcpdump = shutil.which("tcpdump")
    runs: dict[str, list[dict]] = {"tcpdump": [], "load": [], "replay": []}
    skip = set(a.skip)
    if not tcpdump:
        skip.add("tcpdump")
        log("tcpdump not found: the baseline is skipped")
    tcp_out = os.path.join(cache, "tcpdump-out.pcap")
    counters = os.path.join(cache, "replay-counters.save")
    load_counters = os.path.join(cache, "load-counters.save")
    failed = set()
    for rep in range(a.repeat):
        if "tcpdump" not in skip:
            r = run_child([tcpdump, "-r", cap, "-w", tcp_out])
            log(f"[{rep + 1}/{a.repeat}] tcpdump -r -w: {r['seconds']:.2f} s, "
                f"{r['peak_mib']:.0f} MiB")
            if r["rc"] != 0:
                log(r["stderr"])
                skip.add("tcpdump")
                failed.add("tcpdump")
            else:
                runs["tcpdump"].append(r)
                if rep == 0:
                    got = count_pcap_records(tcp_out)
                    if got != info["packets"]:
                        log(f"tcpdump wrote {got} packets, the capture has {info['packets']}")
                        failed.add("tcpdump")
                        r["failed"] = True
                    else:
                        log(f"tcpdump read and wrote all {got:,} packets")
            if os.path.exists(tcp_out):
                os.unlink(tcp_out)
        for key, path, out in (("load", empty, load_counters), ("replay", cap, counters)):
            if key in skip:
                continue
            r = run_child(nfemu_argv(dump, path, out, a.seed, a.nfemu_args), a.timeout)
            state = "timed out" if r["timed_out"] else f"exit {r['rc']}" if r["rc"] else "ok"
            log(f"[{rep + 1}/{a.repeat}] nfemu replay ({'no packet' if key == 'load' else 'capture'}): "
                f"{r['seconds']:.2f} s, {r['peak_mib']:.0f} MiB, {state}")
            if r["rc"] != 0:
                log(r["stderr"])
                skip.add(key)
                failed.add(key)
                r["failed"] = True
            runs[key].append(r)

    problems = None
    if runs["replay"] and not runs["replay"][-1].get("failed"):
        problems = check_counters(counters, info)

    def row(label, key, packets, flows):
        ok = [r for r in runs[key] if not r.get("failed")]
        if not ok:
            return {"label": label, "key": key, "packets": packets, "flows": flows,
                    "seconds": None, "packets_per_s": None, "peak_mib": None,
                    "status": "failed" if key in failed else "skipped"}
        s = _median([r["seconds"] for r in ok])
        return {"label": label, "key": key, "packets": packets, "flows": flows, "seconds": s,
                "packets_per_s": packets / s if packets and s else None,
                "peak_mib": _median([r["peak_mib"] for r in ok]),
                "user_s": _median([r["user_s"] for r in ok]),
                "sys_s": _median([r["sys_s"] for r in ok]),
                "all_seconds": [r["seconds"] for r in ok], "status": "ok"}

    n, f = info["packets"], info["flows"]
    rows = [row("tcpdump -r IN -w OUT", "tcpdump", n, f),
            row("nfemu replay, no packet (load)", "load", 0, 0),
            row("nfemu replay --counters", "replay", n, f)]
    base = rows[0]["seconds"]
    for r in rows:
        r["ratio"] = (r["seconds"] / base) if base and r["seconds"] and r["packets"] else None
    net = None
    if rows[1]["seconds"] is not None and rows[2]["seconds"] is not None:
        d = rows[2]["seconds"] - rows[1]["seconds"]
        net = {"label": "nfemu per-packet (replay - load)", "key": "net", "packets": n,
               "flows": f, "seconds": d, "packets_per_s": n / d if d > 0 else None,
               "peak_mib": None, "status": "ok",
               "ratio": d / base if base else None}
        rows.append(net)
    if problems:
        rows[2]["status"] = "WRONG"
        if net is not None:
            net["status"] = "WRONG"
    machine = machine_info()
    machine["nfemu_sources_digest"] = _digest(_nfemu_sources())
    try:
        machine["git_uncommitted"] = subprocess.run(
            ["git", "-C", REPO_ROOT, "status", "--porcelain", "--", "nfemu"],
            capture_output=True, text=True, timeout=10, check=False).stdout.split("\n")[:-1]
    except (OSError, subprocess.SubprocessError):
        machine["git_uncommitted"] = None
    result = {"machine": machine, "capture": info, "dump": dump, "rows": rows,
              "counter_check": problems, "repeat": a.repeat,
              "command": nfemu_argv(dump, cap, counters, a.seed, a.nfemu_args)}
    if a.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print_table(result)
    return 0 if not failed and not problems else 1


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(result: dict) -> None:
    info = result["capture"]
    m = result["machine"]
    print(f"capture: {info['packets']:,} packets in {info['flows']:,} flows, "
          f"{info['file_bytes'] / 1e6:.0f} MB {info['format']}, replies: {info['replies']}; "
          f"dump: {os.path.basename(result['dump'])}")
    dirty = m.get("git_uncommitted")
    print(f"machine: {m['nproc']} CPU {m['cpu']}, Linux {m['kernel']}, Python {m['python']}; "
          f"nfemu at git {m['git_rev']}" + (f" + {len(dirty)} uncommitted files" if dirty else "")
          + f" (sources {m['nfemu_sources_digest']}); repeat {result['repeat']} (medians)")
    headers = ["run", "packets", "flows", "seconds", "packets/s", "peak MiB", "ratio", "status"]
    body = []
    for r in result["rows"]:
        body.append([r["label"], f"{r['packets']:,}", f"{r['flows']:,}",
                     _fmt(r["seconds"], ".2f"), _fmt(r["packets_per_s"], ",.0f"),
                     _fmt(r["peak_mib"], ".0f"),
                     "-" if r.get("ratio") is None else f"{r['ratio']:.1f}x", r["status"]])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for b in body:
        print(line(b))
    probs = result["counter_check"]
    if probs is None:
        print("counter check: not run")
    elif probs:
        print("counter check: WRONG")
        for p in probs:
            print("  " + p)
    else:
        print("counter check: ok (INVALID 0, NEW = flows, ESTABLISHED = packets - flows, "
              "bytes as captured)")


if __name__ == "__main__":
    sys.exit(main())
