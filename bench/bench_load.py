#!/usr/bin/env python3
"""Load-speed benchmark: nfemu's load + compile vs. ``iptables-restore --test`` (issue 5 item 2).

    python3 bench/bench_load.py [--services 10000] [--endpoints 5] [--repeat 3] [--json]
    python3 bench/bench_load.py --profile          # then cProfile of each nfemu phase

Generates (or reuses from bench/.cache/) a kube-proxy iptables-mode dump with
bench/gen_kube_dump.py, then measures side by side in one command, interleaving the
repetitions, every measurement in a fresh process:

  baseline  ``iptables-restore --test < FILE`` (nf_tables; needs root)
  legacy    ``iptables-legacy-restore --test < FILE`` (when installed; needs root)
  cold      nfemu, ``NFEMU_NO_CACHE=1``: ``nfemu.load(FILE)`` parses and checks the
            dump, then ``nfemu.compile.Program.compile`` builds the compiled rules
  first     nfemu with the load cache empty: the same parse, then the cache entry is
            written (what the first run on a new dump costs)
  load      nfemu with the entry in the cache (a hit): the ruleset read back, then
            compiled (what every later run costs). The child checks that it did not parse.
  fmt       ``python3 -m nfemu fmt FILE > /dev/null`` (the whole CLI; it reads through
            ``load_report``, which the cache does not serve)

The nfemu children use a private cache directory (``XDG_CACHE_HOME`` set to a temporary
directory, removed at the end), never the user's, and find nfemu's byte code compiled (in a
``PYTHONPYCACHEPREFIX`` there, written by one untimed import first), as an installed nfemu
has it. With ``NFEMU_NO_CACHE`` set in the
environment only ``cold`` runs, under the key ``load``.

For each row: the wall time of the whole child process (interpreter start-up and import
included), measured by a fresh wrapper process with ``time.perf_counter()``, and its peak
RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in the wrapper, whose only child it is). The
nfemu children also report their own timings: ``nfemu.load`` and ``Program.compile``
(``load_compile_seconds`` is their sum, the figure issue 5 sets against
``iptables-restore --test``), and leave through ``os._exit`` as nfemu's CLI does.
``--compile-gc paused`` runs the compile with the cyclic garbage collector paused
(``nfemu.ir.no_cyclic_gc``), ``--compile-gc freeze`` calls ``gc.freeze()`` between load and
compile: they show what those changes to nfemu would give. (The load leaves about 1.2
million new objects that the collector has not seen; as-is, its next collections, which
land in the compile, walk them all.)

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

# Runs argv[3:] with stdin from argv[1] (or nothing) and stdout to argv[2] ("-": captured,
# its last line passed on as "child"), prints JSON {seconds, maxrss_kib, rc, stderr, child}.
WRAPPER = r"""
import json, resource, subprocess, sys, time
stdin_path, stdout_path, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
fin = open(stdin_path, 'rb') if stdin_path else subprocess.DEVNULL
fout = subprocess.PIPE if stdout_path == '-' else open(stdout_path, 'wb')
t0 = time.perf_counter()
p = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
t1 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
child = None
if stdout_path == '-':
    lines = p.stdout.decode(errors='replace').strip().splitlines()
    child = lines[-1] if lines else None
print(json.dumps({"seconds": t1 - t0, "maxrss_kib": ru.ru_maxrss, "rc": p.returncode,
                  "stderr": p.stderr.decode(errors="replace")[-4000:], "child": child}))
"""

# One nfemu load + compile in a fresh interpreter (argv: repo root, dump, compile-gc mode);
# prints JSON on its last stdout line and leaves through os._exit, as nfemu's CLI does.
NFEMU_CHILD = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
root, path, gc_mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
import nfemu
from nfemu import parse
from nfemu.compile import Program
from nfemu.ir import no_cyclic_gc
t1 = time.perf_counter()
parsed = []
_parse = parse.load_report
def _counting(*args, **kwargs):
    parsed.append(1)
    return _parse(*args, **kwargs)
parse.load_report = _counting
rs = nfemu.load(path)
t2 = time.perf_counter()
if gc_mode == "paused":
    with no_cyclic_gc():
        program = Program.compile(rs)
else:
    if gc_mode == "freeze":
        import gc
        gc.freeze()
    program = Program.compile(rs)
t3 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_seconds": t1 - t0, "load_seconds": t2 - t1,
                  "compile_seconds": t3 - t2, "load_compile_seconds": t3 - t1,
                  "self_maxrss_kib": ru.ru_maxrss, "parsed": bool(parsed),
                  "rules": sum(len(c.rules) for t in rs.tables for c in t.chains),
                  "compiled_twin": nfemu.compiled()}), flush=True)
os._exit(0)
"""

# cProfile of each phase in one interpreter (argv: repo root, dump, top N, cache dir).
PROFILER = r"""
import cProfile, io, os, pstats, shutil, sys, time
root, path, top, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, root)
import nfemu
from nfemu import loadcache
from nfemu.compile import Program
from nfemu.ir import no_cyclic_gc
os.environ["XDG_CACHE_HOME"] = cache

PHASES = (("nfemu/grammar.py", "fast_events", "line reader (grammar.fast_events)"),
          ("nfemu/fastpath.py", "fast_rule", "rule lines, fast path (fastpath.fast_rule)"),
          ("nfemu/parse.py", "_slow_parse", "rule lines, full parser (parse._slow_parse)"),
          ("nfemu/parse.py", "_apply", "commands applied (parse.Loader._apply)"),
          ("nfemu/parse.py", "_chain", "chain lines (parse.Loader._chain)"),
          ("nfemu/validate.py", "validate_table", "kernel checks (validate.validate_table)"),
          ("nfemu/parse.py", "_freeze_table", "freezing tables (parse._freeze_table)"),
          ("nfemu/loadcache.py", "_read_entry", "cache entry read (loadcache._read_entry)"),
          ("nfemu/loadcache.py", "_store", "cache entry written (loadcache._store)"),
          ("nfemu/loadcache.py", "cache_key", "cache key (sha256 of the file)"),
          ("nfemu/compile.py", "compile_table", "compile (compile.compile_table)"),
          ("nfemu/compile.py", "__init__", "  compile.CompiledRule.__init__"),
          ("nfemu/compile.py", "build_index", "  compile.build_index"))

def run(title, fn):
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    print(f"== {title}: {wall:.2f} s under cProfile ({st.total_tt:.2f} s profiled)")
    for file, func, label in PHASES:
        cum = sum(v[3] for k, v in st.stats.items() if k[0].endswith(file) and k[2] == func)
        if cum:
            print(f"   {cum:7.3f} s cumulative  {label}")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    body = out.getvalue()
    print(body[body.find("   ncalls"):].rstrip() + "\n")

shutil.rmtree(os.path.join(cache, "nfemu"), ignore_errors=True)
holder = {}
os.environ["NFEMU_NO_CACHE"] = "1"
run("nfemu.load, cache off (parse + kernel checks)", lambda: holder.update(rs=nfemu.load(path)))
del os.environ["NFEMU_NO_CACHE"]
run("nfemu.load, cache empty (parse, then the entry written)", lambda: nfemu.load(path))
run("nfemu.load, cache hit", lambda: holder.update(rs=nfemu.load(path)))
run("Program.compile, as nfemu calls it (garbage collector on)",
    lambda: Program.compile(holder["rs"]))
def paused():
    with no_cyclic_gc():
        Program.compile(holder["rs"])
run("Program.compile, garbage collector paused", paused)
os._exit(0)
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

def _child_env(**extra: Optional[str]) -> Dict[str, str]:
    env = dict(os.environ)
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + pp if pp else "")
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def _tail(s: str, n: int = 6) -> str:
    lines = [l for l in s.strip().splitlines() if l.strip()]
    return "\n".join(lines[-n:]) if lines else "(no output)"


def run_wrapped(cmd: List[str], stdin_path: Optional[str], timeout: float,
                stdout_path: str = os.devnull, env: Optional[Dict[str, str]] = None) -> Dict:
    """Run cmd under the fresh wrapper process; raise RuntimeError on failure. With
    stdout_path "-", the child's last stdout line is parsed as JSON into the result."""
    try:
        p = subprocess.run([sys.executable, "-c", WRAPPER, stdin_path or "", stdout_path, *cmd],
                           capture_output=True, text=True, timeout=timeout,
                           env=env or _child_env(), cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:g}s")
    if p.returncode != 0:
        raise RuntimeError("wrapper failed: " + _tail(p.stderr))
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["rc"] != 0:
        raise RuntimeError(f"exit status {r['rc']}: " + _tail(r["stderr"]))
    child = r.pop("child", None)
    if stdout_path == "-":
        try:
            r.update(json.loads(child))
        except (TypeError, ValueError):
            raise RuntimeError("no result line from the child: " + _tail(r["stderr"]))
    return r


def nfemu_cli() -> List[str]:
    """Command prefix for the nfemu CLI: in-repo module if present, else console script."""
    if os.path.exists(os.path.join(REPO_ROOT, "nfemu", "__main__.py")):
        return [sys.executable, "-m", "nfemu"]
    script = shutil.which("nfemu")
    if script:
        return [script]
    return [sys.executable, "-m", "nfemu"]


# --------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------

NFEMU_FIELDS = ("load_seconds", "compile_seconds", "load_compile_seconds", "import_seconds")


class Row:
    def __init__(self, key: str, label: str, cmd_desc: str):
        self.key, self.label, self.cmd = key, label, cmd_desc
        self.samples: List[Dict] = []
        self.error: Optional[str] = None
        self.skipped: Optional[str] = None

    def median(self, field: str) -> Optional[float]:
        vals = [s[field] for s in self.samples if s.get(field) is not None]
        return statistics.median(vals) if vals else None

    @property
    def nfemu(self) -> bool:
        return bool(self.samples) and "load_compile_seconds" in self.samples[0]

    def seconds(self) -> Optional[float]:
        """The row's figure: nfemu's load + compile (in the child), else the wall time."""
        return self.median("load_compile_seconds" if self.nfemu else "seconds")

    def to_dict(self, base: Optional[float]) -> Dict:
        sec = self.seconds()
        wall = self.median("seconds")
        rss = self.median("maxrss_kib")
        d = {
            "label": self.label,
            "command": self.cmd,
            "repeats": len(self.samples),
            "median_seconds": sec,
            "median_process_seconds": wall,
            "all_process_seconds": [s["seconds"] for s in self.samples],
            "peak_rss_mib": None if rss is None else rss / 1024.0,
            "ratio_to_baseline": (sec / base) if (sec is not None and base) else None,
            "process_ratio_to_baseline": (wall / base) if (wall is not None and base) else None,
            "error": self.error,
            "skipped": self.skipped,
        }
        if self.nfemu:
            for f in NFEMU_FIELDS:
                d["median_" + f] = self.median(f)
            d["all_load_compile_seconds"] = [s["load_compile_seconds"] for s in self.samples]
            d["rules"] = self.samples[0].get("rules")
            d["compiled_twin"] = self.samples[0].get("compiled_twin")
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


def _ratio(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.2f}x"


def print_table(rows: List[Dict], meta: Dict) -> None:
    headers = ["benchmark", "load+compile s", "(load, compile)", "process s", "peak MiB",
               "ratio", "process ratio", "n"]
    body = []
    for r in rows:
        parts = "-"
        if r.get("median_load_seconds") is not None:
            parts = f"({r['median_load_seconds']:.2f}, {r['median_compile_seconds']:.2f})"
        body.append([r["label"],
                     _fmt(r["median_seconds"], ".3f") if r.get("median_load_seconds") is not None
                     else "-",
                     parts, _fmt(r["median_process_seconds"], ".3f"),
                     _fmt(r["peak_rss_mib"], ".0f"), _ratio(r["ratio_to_baseline"]),
                     _ratio(r["process_ratio_to_baseline"]), str(r["repeats"])])
    title = (f"kube-proxy dump {meta['services']} services x {meta['endpoints']} endpoints: "
             f"{meta['lines']:,} lines, {meta['bytes'] / 1e6:.1f} MB ({meta['file']})")
    notes = [f"ratio = nfemu's load + compile (in the child) / {meta['baseline']} wall time; "
             "process ratio = whole child process (start-up and import included) / the same",
             f"compile: Program.compile with the garbage collector {meta['compile_gc']}"]
    for r in rows:
        if r["error"]:
            notes.append(f"{r['label']}: ERROR: {r['error']}")
        elif r["skipped"]:
            notes.append(f"{r['label']}: skipped: {r['skipped']}")
    m = meta["machine"]
    notes.append(f"machine: {m['nproc']} cpu ({m['cpu']}), Linux {m['kernel']}, "
                 f"Python {m['python']}, {m['iptables']}; nfemu compiled twin: "
                 f"{meta.get('compiled_twin')}")
    try:
        from rich.console import Console
        from rich.table import Table
        t = Table(title=title)
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i == 0 else "right")
        for b in body:
            t.add_row(*b)
        c = Console(width=None if sys.stdout.isatty() else 140)
        c.print(t)
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
    for n in notes:
        print(n)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="nfemu load-speed benchmark")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--file", help="benchmark this dump instead of generating one")
    ap.add_argument("--no-cache", action="store_true",
                    help="generate the dump into a temp dir instead of bench/.cache/ "
                         "(nfemu's load cache: NFEMU_NO_CACHE=1)")
    ap.add_argument("--timeout", type=float, default=900.0, help="per-run timeout, seconds")
    ap.add_argument("--iptables-restore", default="iptables-restore",
                    help="baseline binary (default iptables-restore, nf_tables)")
    ap.add_argument("--legacy", default="iptables-legacy-restore",
                    help="second reference binary, skipped when not installed")
    ap.add_argument("--compile-gc", choices=["as-is", "paused", "freeze"], default="as-is",
                    help="run Program.compile as nfemu does (as-is), with the cyclic garbage "
                         "collector paused, or after gc.freeze() (the loaded objects moved "
                         "out of the collector's generations)")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["baseline", "legacy", "cold", "first", "load", "fmt"],
                    help="skip a row (repeatable)")
    ap.add_argument("--profile", action="store_true",
                    help="after the timings, cProfile each nfemu phase (in one process)")
    ap.add_argument("--profile-top", type=int, default=15)
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
    nfemu_cache = tempfile.mkdtemp(prefix="nfemu-bench-load-")
    cache_off = os.environ.get("NFEMU_NO_CACHE", "") not in ("", "0")

    ipr = shutil.which(a.iptables_restore)
    legacy_bin = shutil.which(a.legacy)
    base = Row("baseline", f"{a.iptables_restore} --test",
               f"{ipr or a.iptables_restore} --test < FILE")
    legacy = Row("legacy", f"{a.legacy} --test", f"{legacy_bin or a.legacy} --test < FILE")
    child = [sys.executable, "-c", "NFEMU_CHILD", REPO_ROOT, "FILE", a.compile_gc]
    desc = " ".join(child[:3]) + " (nfemu.load(FILE); Program.compile)"
    cold = Row("cold", "nfemu, cache off (parse + compile)", "NFEMU_NO_CACHE=1 " + desc)
    first = Row("first", "nfemu, cache empty (parse, write entry, compile)", desc)
    warm = Row("load", "nfemu.load() + compile, cache hit", desc)
    cli = nfemu_cli()
    fmt = Row("fmt", "nfemu fmt (CLI, not cached)", " ".join(cli) + " fmt FILE > /dev/null")
    rows = [base, legacy, cold, first, warm, fmt]
    if cache_off:
        # the user turned the cache off: the parse is the figure, under the key "load"
        cold.key, cold.label = "load", "nfemu.load() + compile, NFEMU_NO_CACHE=1"
        rows = [base, legacy, cold, fmt]
        first.skipped = warm.skipped = "NFEMU_NO_CACHE is set"

    for row, binary in ((base, ipr), (legacy, legacy_bin)):
        if row.key in a.skip:
            row.skipped = f"--skip {row.key}"
        elif binary is None:
            row.skipped = "not installed"
        elif os.geteuid() != 0:
            row.skipped = "not root (iptables-restore --test needs CAP_NET_ADMIN)"
    if base.skipped:
        base.skipped += "; no ratio"
    for row, name in ((cold, "cold"), (first, "first"), (warm, "load"), (fmt, "fmt")):
        if name in a.skip:
            row.skipped = f"--skip {name}"

    # byte code written once into a private prefix, as an installed nfemu has it (this
    # environment may set PYTHONDONTWRITEBYTECODE, which would compile nfemu at each import)
    pyc = dict(PYTHONDONTWRITEBYTECODE=None,
               PYTHONPYCACHEPREFIX=os.path.join(nfemu_cache, "pycache"))
    env_nfemu = _child_env(XDG_CACHE_HOME=nfemu_cache, **pyc)
    env_off = _child_env(XDG_CACHE_HOME=nfemu_cache, NFEMU_NO_CACHE="1", **pyc)
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                    "import nfemu, nfemu.cli, nfemu.loadcache", REPO_ROOT], env=env_nfemu,
                   check=False, timeout=a.timeout)
    nfemu_cmd = [sys.executable, "-c", NFEMU_CHILD, REPO_ROOT, path, a.compile_gc]
    entry_dir = os.path.join(nfemu_cache, "nfemu")

    def wipe():
        shutil.rmtree(entry_dir, ignore_errors=True)

    def run_nfemu(env, expect_parse: bool):
        r = run_wrapped(nfemu_cmd, None, a.timeout, "-", env)
        if r["parsed"] != expect_parse:
            raise RuntimeError("the load " + ("did not parse (a cache hit?)" if expect_parse
                                              else "parsed: the cache entry was not used"))
        return r

    def run_first():
        wipe()
        return run_nfemu(env_nfemu, True)

    def run_warm():
        # nfemu's source files are part of the key: if they changed since the entry was
        # written (someone editing the checkout), fill the cache again and measure again
        for attempt in range(3):
            if not os.path.isdir(entry_dir) or not os.listdir(entry_dir):
                run_nfemu(env_nfemu, True)   # fill the cache (not timed)
            r = run_wrapped(nfemu_cmd, None, a.timeout, "-", env_nfemu)
            if not r["parsed"]:
                return r
            log("  (cache miss: nfemu's sources changed since the entry was written; again)")
        raise RuntimeError("the load parsed three times: the cache entry was not used")

    runners = {
        base: lambda: run_wrapped([ipr, "--test"], path, a.timeout),
        legacy: lambda: run_wrapped([legacy_bin, "--test"], path, a.timeout),
        cold: lambda: run_nfemu(env_off, True),
        first: run_first,
        warm: run_warm,
        fmt: lambda: run_wrapped([*cli, "fmt", path], None, a.timeout, os.devnull, env_nfemu),
    }
    try:
        for rep in range(a.repeat):
            for row in rows:
                if row.skipped or row.error:
                    continue
                try:
                    r = runners[row]()
                    row.samples.append(r)
                    extra = ""
                    if "load_compile_seconds" in r:
                        extra = (f" (load {r['load_seconds']:.3f} + compile "
                                 f"{r['compile_seconds']:.3f} = {r['load_compile_seconds']:.3f})")
                    log(f"  rep {rep + 1}/{a.repeat} {row.label}: {r['seconds']:.3f}s process"
                        f"{extra}, {r['maxrss_kib'] / 1024:.0f} MiB")
                except Exception as e:  # keep going with the other rows
                    row.error = str(e)
                    row.samples.clear()
                    log(f"  rep {rep + 1}/{a.repeat} {row.label}: ERROR {e}")

        base_med = base.median("seconds")
        out_rows = [r.to_dict(base_med) for r in rows]
        twin = next((d.get("compiled_twin") for d in out_rows if "compiled_twin" in d), None)
        meta = {"services": a.services, "endpoints": a.endpoints, "repeat": a.repeat,
                "file": path, **st, "machine": machine_info(), "compile_gc": a.compile_gc,
                "baseline": base.label, "nfemu_cache": "off" if cache_off else "private temp dir",
                "compiled_twin": twin}
        if a.file:
            meta["services"] = meta["endpoints"] = None
        if a.json:
            print(json.dumps({"meta": meta,
                              "results": {r.key: d for r, d in zip(rows, out_rows)}}, indent=2))
        else:
            print_table(out_rows, {**meta, "services": meta["services"] or "?",
                                   "endpoints": meta["endpoints"] or "?"})
        if a.profile:
            log("profiling (cProfile roughly doubles the times) ...")
            p = subprocess.run([sys.executable, "-c", PROFILER, REPO_ROOT, path,
                                str(a.profile_top), nfemu_cache], text=True,
                               capture_output=True, env=_child_env(), timeout=a.timeout)
            print(p.stdout, file=sys.stderr if a.json else sys.stdout)
            if p.returncode != 0:
                log("profile failed: " + _tail(p.stderr))
    finally:
        shutil.rmtree(nfemu_cache, ignore_errors=True)
        if a.no_cache and not a.file:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
