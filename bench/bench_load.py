#!/usr/bin/env python3
"""Load-speed benchmark: nfemu vs. ``iptables-restore --test``.

    python3 bench/bench_load.py [--services 10000] [--endpoints 5] [--repeat 3] [--json]

Generates (or reuses from bench/.cache/) a kube-proxy iptables-mode dump with
bench/gen_kube_dump.py, then measures side by side, interleaving the
repetitions:

  iptables-restore --test   wall time / peak RSS of ``iptables-restore --test < FILE``
                            (baseline; needs root and iptables)
  nfemu.load()              wall time of ``nfemu.load(path)`` only (import
                            excluded), peak RSS of the whole interpreter;
                            fresh ``python3 -c`` process per repetition
  nfemu fmt                 wall time / peak RSS of ``python3 -m nfemu fmt FILE
                            > /dev/null`` (whole CLI: interpreter start,
                            import, load, format)

Every external command is run from a fresh wrapper process that reports
time.perf_counter() around the child and getrusage(RUSAGE_CHILDREN).ru_maxrss
(the wrapper has no other children, so that is the child's peak RSS).

stdlib only (``rich`` is used for the table when importable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
CACHE_DIR = os.path.join(BENCH_DIR, ".cache")
sys.path.insert(0, BENCH_DIR)

import gen_kube_dump  # noqa: E402

# Runs argv[1:] with stdin/stdout redirected, prints JSON {seconds, maxrss_kib, rc, stderr}.
WRAPPER = r"""
import json, resource, subprocess, sys, time
stdin_path, stdout_path, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
fin = open(stdin_path, 'rb') if stdin_path else subprocess.DEVNULL
fout = open(stdout_path, 'wb')
t0 = time.perf_counter()
p = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
t1 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": t1 - t0, "maxrss_kib": ru.ru_maxrss, "rc": p.returncode,
                  "stderr": p.stderr.decode(errors="replace")[-4000:]}))
"""

# Runs nfemu.load(path) in a fresh interpreter, prints JSON on the last stdout line.
LOADER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import nfemu
t1 = time.perf_counter()
rs = nfemu.load(sys.argv[1])
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": t2 - t1, "import_seconds": t1 - t0,
                  "maxrss_kib": ru.ru_maxrss, "result_type": type(rs).__name__}))
"""


# --------------------------------------------------------------------------
# dump file
# --------------------------------------------------------------------------

def _generator_digest() -> str:
    with open(gen_kube_dump.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:10]


def prepare_dump(services: int, endpoints: int, use_cache: bool) -> str:
    """Return the path of the dump, generating it if needed."""
    name = f"kube-{services}x{endpoints}-{_generator_digest()}.rules"
    if use_cache:
        os.makedirs(CACHE_DIR, exist_ok=True)
        path = os.path.join(CACHE_DIR, name)
        if os.path.exists(path):
            return path
        dirname = CACHE_DIR
    else:
        dirname = tempfile.mkdtemp(prefix="nfemu-bench-")
        path = os.path.join(dirname, name)
    fd, tmp = tempfile.mkstemp(dir=dirname, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="ascii", newline="\n") as fp:
        gen_kube_dump.write_dump(fp, services, endpoints)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def file_stats(path: str) -> Dict[str, int]:
    lines = 0
    with open(path, "rb") as f:  # also warms the page cache
        for chunk in iter(lambda: f.read(1 << 20), b""):
            lines += chunk.count(b"\n")
    return {"lines": lines, "bytes": os.path.getsize(path)}


# --------------------------------------------------------------------------
# runners
# --------------------------------------------------------------------------

def _child_env() -> Dict[str, str]:
    env = dict(os.environ)
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + pp if pp else "")
    return env


def _tail(s: str, n: int = 6) -> str:
    lines = [l for l in s.strip().splitlines() if l.strip()]
    return "\n".join(lines[-n:]) if lines else "(no output)"


def run_wrapped(cmd: List[str], stdin_path: Optional[str], timeout: float) -> Dict:
    """Run cmd under the fresh wrapper process; raise RuntimeError on failure."""
    try:
        p = subprocess.run([sys.executable, "-c", WRAPPER, stdin_path or "", os.devnull, *cmd],
                           capture_output=True, text=True, timeout=timeout,
                           env=_child_env(), cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:g}s")
    if p.returncode != 0:
        raise RuntimeError("wrapper failed: " + _tail(p.stderr))
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["rc"] != 0:
        raise RuntimeError(f"exit status {r['rc']}: " + _tail(r["stderr"]))
    return r


def run_loader(path: str, timeout: float) -> Dict:
    try:
        p = subprocess.run([sys.executable, "-c", LOADER, path], capture_output=True,
                           text=True, timeout=timeout, env=_child_env(), cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:g}s")
    if p.returncode != 0:
        raise RuntimeError(f"exit status {p.returncode}: " + _tail(p.stderr))
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError("no result line from loader: " + _tail(p.stdout + p.stderr))


def nfemu_cli() -> List[str]:
    """Command prefix for the nfemu CLI: in-repo module if present, else console script."""
    if os.path.exists(os.path.join(REPO_ROOT, "nfemu", "__main__.py")):
        return [sys.executable, "-m", "nfemu"]
    script = shutil.which("nfemu")
    if script:
        return [script]
    return [sys.executable, "-m", "nfemu"]


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

class Row:
    def __init__(self, key: str, label: str, cmd_desc: str):
        self.key, self.label, self.cmd = key, label, cmd_desc
        self.samples: List[Dict] = []
        self.error: Optional[str] = None
        self.skipped: Optional[str] = None

    def median(self, field: str) -> Optional[float]:
        vals = [s[field] for s in self.samples if s.get(field) is not None]
        return statistics.median(vals) if vals else None

    def to_dict(self, base: Optional[float]) -> Dict:
        sec = self.median("seconds")
        rss = self.median("maxrss_kib")
        d = {
            "label": self.label,
            "command": self.cmd,
            "repeats": len(self.samples),
            "median_seconds": sec,
            "all_seconds": [s["seconds"] for s in self.samples],
            "peak_rss_mib": None if rss is None else rss / 1024.0,
            "ratio_to_baseline": (sec / base) if (sec is not None and base) else None,
            "error": self.error,
            "skipped": self.skipped,
        }
        if self.samples and "import_seconds" in self.samples[0]:
            d["median_import_seconds"] = self.median("import_seconds")
            d["result_type"] = self.samples[0].get("result_type")
        return d


def machine_info() -> Dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return None
    model = None
    for line in (out(["lscpu"]) or "").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "iptables": out(["iptables", "--version"]) if shutil.which("iptables") else None,
        "git_rev": out(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"]) or None,
    }


def _fmt(v: Optional[float], spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(rows: List[Dict], meta: Dict) -> None:
    headers = ["benchmark", "median s", "peak RSS MiB", "ratio", "n"]
    body = []
    for r in rows:
        ratio = r["ratio_to_baseline"]
        body.append([r["label"], _fmt(r["median_seconds"], ".3f"), _fmt(r["peak_rss_mib"], ".1f"),
                     "-" if ratio is None else f"{ratio:.2f}x", str(r["repeats"])])
    title = (f"kube-proxy dump {meta['services']} services x {meta['endpoints']} endpoints: "
             f"{meta['lines']:,} lines, {meta['bytes'] / 1e6:.1f} MB ({meta['file']})")
    notes = []
    for r in rows:
        if r["error"]:
            notes.append(f"{r['label']}: ERROR: {r['error']}")
        elif r["skipped"]:
            notes.append(f"{r['label']}: skipped: {r['skipped']}")
    m = meta["machine"]
    machine = (f"machine: {m['nproc']} cpu ({m['cpu']}), Linux {m['kernel']}, "
               f"Python {m['python']}, {m['iptables']}")
    try:
        from rich.console import Console
        from rich.table import Table
        t = Table(title=title)
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i == 0 else "right")
        for b in body:
            t.add_row(*b)
        c = Console(width=None if sys.stdout.isatty() else 120)
        c.print(t)
        c.print(machine, markup=False, highlight=False)
        c.print("ratio = median seconds / iptables-restore --test median seconds",
                markup=False, highlight=False)
        for n in notes:
            c.print(n, markup=False, highlight=False)
        return
    except ImportError:
        pass
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    print(title)
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for b in body:
        print(line(b))
    print(machine)
    print("ratio = median seconds / iptables-restore --test median seconds")
    for n in notes:
        print(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="nfemu load-speed benchmark")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--file", help="benchmark this dump instead of generating one")
    ap.add_argument("--no-cache", action="store_true",
                    help="generate into a temp dir instead of bench/.cache/")
    ap.add_argument("--timeout", type=float, default=900.0, help="per-run timeout, seconds")
    ap.add_argument("--iptables-restore", default="iptables-restore",
                    help="baseline binary (e.g. iptables-legacy-restore)")
    ap.add_argument("--skip", action="append", default=[], choices=["baseline", "load", "fmt"],
                    help="skip a row (repeatable)")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error("--repeat must be >= 1")
    log = (lambda *x: print(*x, file=sys.stderr, flush=True))

    if a.file:
        path = os.path.abspath(a.file)
    else:
        log(f"preparing dump ({a.services} services x {a.endpoints} endpoints) ...")
        path = prepare_dump(a.services, a.endpoints, use_cache=not a.no_cache)
    st = file_stats(path)

    ipr = shutil.which(a.iptables_restore)
    base = Row("baseline", f"{a.iptables_restore} --test", f"{ipr or a.iptables_restore} --test < FILE")
    load = Row("load", "nfemu.load()", f"{sys.executable} -c 'nfemu.load(FILE)'")
    cli = nfemu_cli()
    fmt = Row("fmt", "nfemu fmt", " ".join(cli) + " fmt FILE > /dev/null")
    rows = [base, load, fmt]

    if "baseline" in a.skip:
        base.skipped = "--skip baseline"
    elif ipr is None:
        base.skipped = f"{a.iptables_restore} not found; no ratio"
    elif os.geteuid() != 0:
        base.skipped = "not root (iptables-restore --test needs CAP_NET_ADMIN); no ratio"
    if "load" in a.skip:
        load.skipped = "--skip load"
    if "fmt" in a.skip:
        fmt.skipped = "--skip fmt"

    runners = {
        "baseline": lambda: run_wrapped([ipr, "--test"], path, a.timeout),
        "load": lambda: run_loader(path, a.timeout),
        "fmt": lambda: run_wrapped([*cli, "fmt", path], None, a.timeout),
    }
    for rep in range(a.repeat):
        for row in rows:
            if row.skipped or row.error:
                continue
            try:
                r = runners[row.key]()
                row.samples.append(r)
                log(f"  rep {rep + 1}/{a.repeat} {row.label}: {r['seconds']:.3f}s "
                    f"{r['maxrss_kib'] / 1024:.1f} MiB")
            except Exception as e:  # keep going with the other rows
                row.error = str(e)
                row.samples.clear()
                log(f"  rep {rep + 1}/{a.repeat} {row.label}: ERROR {e}")

    base_med = base.median("seconds")
    out_rows = [r.to_dict(base_med) for r in rows]
    meta = {"services": a.services, "endpoints": a.endpoints, "repeat": a.repeat,
            "file": path, **st, "machine": machine_info()}
    if a.file:
        meta["services"] = meta["endpoints"] = None
    if a.json:
        print(json.dumps({"meta": meta, "results": {r.key: d for r, d in zip(rows, out_rows)}},
                         indent=2))
    else:
        print_table(out_rows, {**meta, "services": meta["services"] or "?",
                               "endpoints": meta["endpoints"] or "?"})
    if a.no_cache and not a.file:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
