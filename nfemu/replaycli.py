"""``nfemu replay RULES PCAP``: a capture through a node with connection tracking, one line
(or, with ``--json``, one JSON object) per record, then a summary; ``--write`` the packets
that leave the node, ``--counters`` the iptables-save -c text, ``--conntrack`` the conntrack
-L lines. The driver is nfemu/replay.py; docs/replay.md documents the output.

Exit codes: 0 done; 1 the rules are rejected, the capture cannot be read or is damaged
(everything before the damage is replayed and every output written), or some packet could
not be evaluated; 2 usage errors (options, missing files, no interface for the packets).
"""
from __future__ import annotations

import json
import os
import sys

from .errors import LocatedError
from .node import Node
from .pcapio import ETHERNET, LINUX_SLL, RAW, RAW_IPV4, CaptureError, CaptureWriter
from .replay import (
    PROBLEM_TEXT,
    WARNING_TEXT,
    ReplayError,
    Summary,
    decided_in,
    replay,
    rewrites,
)
from .tracecli import _host, _where, load_node_rules

#: captures at least this big get a progress bar (on a terminal)
PROGRESS_MIN_BYTES = 16 << 20

# classic pcap link types whose records name no interface
_NO_INTERFACE = {ETHERNET: "Ethernet", RAW: "raw IP", RAW_IPV4: "raw IPv4", 12: "raw IP",
                 14: "raw IP", LINUX_SLL: "Linux cooked v1"}


def _err(message: str) -> None:
    print(f"nfemu replay: error: {message}", file=sys.stderr)


def _open_capture(path: str):
    """The capture as a binary file object (stdin for ``-``), and its size (None when
    unknown)."""
    if path == "-":
        f = sys.stdin.buffer
        return f, None
    f = open(path, "rb")  # noqa: SIM115 (closed by cmd_replay)
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError:
        size = None
    return f, size


def _classic_linktype(f) -> int | None:
    """The link type of a classic pcap file (from its 24-byte header, peeked), else None."""
    peek = getattr(f, "peek", None)
    if peek is None:
        return None
    head = peek(24)[:24]
    if len(head) < 24:
        return None
    for endian in ("<", ">"):
        magic = int.from_bytes(head[:4], "little" if endian == "<" else "big")
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            return int.from_bytes(head[20:24], "little" if endian == "<" else "big") & 0xFFFF
    return None


def _time_text(r) -> str:
    if r.ts_ns is None:
        return f"{r.now:.6f}"
    sec, ns = divmod(r.ts_ns, 1_000_000_000)
    return f"{sec}.{ns // 1000:06d}"


def format_line(r) -> str:
    """One record as a line: ``INDEX TIME IFACE PACKET: CTINFO VERDICT WHERE; REWRITES
    [WARNINGS]``, or ``INDEX TIME IFACE skipped (KIND): MESSAGE``."""
    src = "local" if r.local else (r.iface or "-")
    head = f"{r.index} {_time_text(r)} {src}"
    if r.problem is not None:
        text = r.message or PROBLEM_TEXT.get(r.problem, r.problem)
        if r.packet is not None:
            return f"{head} {r.packet.describe()}: {r.problem}: {text}"
        return f"{head} skipped ({r.problem}): {text}"
    j = r.journey
    line = f"{head} {r.packet.describe()}: {j.ctinfo or '-'} {j.verdict.value} {_where(j)}"
    if j.note:
        line += f" ({j.note})"
    changes = rewrites(r.packet, j.packet)
    if changes:
        line += "; " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changes.items())
    if r.warnings:
        line += f" [{', '.join(r.warnings)}]"
    return line


def result_json(r) -> dict:
    """One record as the JSON object of docs/replay.md."""
    j = r.journey
    obj = {
        "index": r.index, "ts_ns": r.ts_ns, "time": r.now,
        "iface": r.iface, "local": r.local,
        "packet": r.packet.describe() if r.packet is not None else None,
        "problem": None if r.problem is None else {
            "kind": r.problem, "message": r.message or PROBLEM_TEXT.get(r.problem)},
        "warnings": list(r.warnings), "csum_bad": r.csum_bad, "offset": r.offset,
        "ctinfo": None, "verdict": None, "where": None, "out_iface": None, "note": None,
        "final": None, "rewritten": {}, "chain": None, "nat": [],
    }
    if j is not None:
        obj.update(
            ctinfo=j.ctinfo or None, verdict=j.verdict.value, where=j.where,
            out_iface=j.out_iface or None, note=j.note or None,
            final=j.packet.describe() if j.packet is not None else None,
            rewritten={k: list(v) for k, v in rewrites(r.packet, j.packet).items()},
            chain=decided_in(j),
            nat=[{"kind": e.kind, "hook": e.hook, "table": e.table, "chain": e.chain,
                  "rule": e.rule, **{k: str(v) for k, v in e.detail.items()}}
                 for e in j.events if e.kind in ("DNAT", "SNAT")])
    return obj


#: the text summary lists this many keys of each count (the most frequent); --json all
SUMMARY_TOP = 10


def summary_lines(s: Summary, seed: int) -> list[str]:
    """The summary as plain text lines."""
    def counts(tally, top: int = SUMMARY_TOP) -> str:
        items = tally.most_common()
        if not items:
            return "-"
        text = ", ".join(f"{k} {n}" for k, n in items[:top])
        if len(items) > top:
            text += f" (and {len(items) - top} more; --json lists them all)"
        return text

    def kinds(d, texts) -> list[str]:
        out = []
        for kind, slot in sorted(d.items(), key=lambda kv: -kv[1][0]):
            msg = (slot[2] if len(slot) > 2 and slot[2] else None) or texts.get(kind, "")
            out.append(f"  {kind}: {slot[0]} (first: record {slot[1]}) {msg}".rstrip())
        return out

    lines = ["# summary",
             f"records {s.records}, sent through the rules {s.sent}, leaving the node "
             f"{s.leaving}" + (f" (written {s.written})" if s.written else ""),
             f"verdicts: {counts(s.verdicts)}",
             f"where: {counts(s.wheres)}",
             f"decided in: {counts(s.chains)}",
             f"NAT destinations (new connections): {counts(s.nat)}",
             f"ctinfo: {counts(s.ctinfo)}"]
    if s.problems:
        lines.append(f"not replayed: {sum(v[0] for v in s.problems.values())}")
        lines += kinds(s.problems, PROBLEM_TEXT)
    if s.warnings:
        lines.append("warnings:")
        lines += kinds(s.warnings, WARNING_TEXT)
    if s.first_time is not None:
        lines.append(f"time: {s.first_time:.6f} to {s.last_time:.6f}")
    lines.append(f"seed {seed}")
    return lines


def _print_rich_summary(s: Summary, seed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = Table(title="nfemu replay summary", show_header=False)
    head.add_row("records", str(s.records))
    head.add_row("sent through the rules", str(s.sent))
    head.add_row("leaving the node", str(s.leaving)
                 + (f" (written {s.written})" if s.written else ""))
    head.add_row("seed", str(seed))
    console.print(head)
    for title, tally in (("verdict", s.verdicts), ("where", s.wheres),
                         ("decided in", s.chains),
                         ("NAT destination (new connections)", s.nat), ("ctinfo", s.ctinfo)):
        items = tally.most_common()
        if not items:
            continue
        if len(items) > SUMMARY_TOP:
            rest = sum(n for _, n in items[SUMMARY_TOP:])
            items = items[:SUMMARY_TOP] + [(f"({len(items) - SUMMARY_TOP} more)", rest)]
        t = Table(title=None)
        t.add_column(title)
        t.add_column("packets", justify="right")
        for k, n in items:
            t.add_row(str(k), str(n))
        console.print(t)
    for title, d, texts in (("not replayed", s.problems, PROBLEM_TEXT),
                            ("warnings", s.warnings, WARNING_TEXT)):
        if not d:
            continue
        t = Table(title=None)
        t.add_column(title)
        t.add_column("count", justify="right")
        t.add_column("first record", justify="right")
        t.add_column("why")
        for kind, slot in sorted(d.items(), key=lambda kv: -kv[1][0]):
            msg = (slot[2] if len(slot) > 2 and slot[2] else None) or texts.get(kind, "")
            t.add_row(kind, str(slot[0]), str(slot[1]), msg)
        console.print(t)


class _Progress:
    """A rich progress bar over the capture's bytes, on stderr (or nothing)."""

    def __init__(self, f, size: int | None, enabled: bool):
        self.bar = None
        self.f = f
        if not enabled or not size:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
        self.bar = Progress(TextColumn("replay"), BarColumn(), DownloadColumn(),
                            TextColumn("{task.fields[packets]} packets"),
                            TimeRemainingColumn(), console=Console(stderr=True),
                            transient=True)
        self.task = self.bar.add_task("replay", total=size, packets=0)
        self.bar.start()

    def update(self, packets: int) -> None:
        if self.bar is not None:
            try:
                pos = self.f.tell()
            except (OSError, ValueError):
                return
            self.bar.update(self.task, completed=pos, packets=packets)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _open_output(path: str, binary: bool = False):
    try:
        return open(path, "wb" if binary else "w", encoding=None if binary else "utf-8")
    except OSError as exc:
        raise _Usage(f"cannot write {path}: {exc.strerror or exc}") from None


class _Usage(Exception):
    pass


def cmd_replay(args) -> int:
    # the capture first: missing (exit 2) or not a capture (exit 1) before the rules load
    f, size = _open_capture(args.pcap)
    outputs = []
    try:
        return _replay(args, f, size, outputs)
    except _Usage as exc:
        _err(str(exc))
        return 2
    finally:
        for o in outputs:
            try:
                o.close()
            except OSError:
                pass
        if f is not sys.stdin.buffer:
            f.close()


def _replay(args, f, size, outputs) -> int:
    pcap_name = args.pcap if args.pcap != "-" else "<stdin>"
    if args.pcap == "-" and args.file == "-":
        raise _Usage("RULES and PCAP cannot both be read from stdin")
    if args.in_iface is None and not args.local:
        lt = _classic_linktype(f)
        if lt in _NO_INTERFACE:
            raise _Usage(f"{pcap_name}: the capture ({_NO_INTERFACE[lt]}, classic pcap) does "
                         "not record the interface packets arrived on: give -i IFACE, or "
                         "--local for packets the node sent")
    ruleset = load_node_rules(args.file)
    if ruleset is None:
        return 1
    try:
        host = _host(args)
    except LocatedError as exc:
        raise _Usage(exc.message) from None
    if args.in_iface is not None and not host.has_interface(args.in_iface):
        raise _Usage(f"-i {args.in_iface}: the host has no such interface (give it with "
                     "--iface or --addrs)")
    writer = counters_out = conntrack_out = None
    if args.write:
        w = _open_output(args.write, binary=True)
        outputs.append(w)
        writer = CaptureWriter(w, RAW)
    if args.counters:
        counters_out = _open_output(args.counters)
        outputs.append(counters_out)
    if args.conntrack:
        conntrack_out = _open_output(args.conntrack)
        outputs.append(conntrack_out)

    node = Node(ruleset, host, seed=args.seed)
    # recorded interface indexes (Linux cooked v2) are the node's only when the host is the
    # node's own `ip -j addr show`; --iface numbers its interfaces in the order given
    ifindex_names = None if args.addrs else {}
    try:
        results = replay(node, f, iface=args.in_iface, local=args.local,
                         verify_checksums=not args.no_checksums, ifindex_names=ifindex_names)
    except CaptureError as exc:
        print(f"{pcap_name}: error: byte {exc.offset}: {exc.message}", file=sys.stderr)
        return 1

    summary = Summary()
    out = sys.stdout
    per_packet = not args.quiet
    as_json = args.json
    stdout_tty = out.isatty()
    progress = _Progress(f, size, not args.no_progress and size is not None
                         and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
                         and (args.quiet or not stdout_tty))
    code = 0
    damaged = unevaluable = 0
    try:
        for r in results:
            summary.add(r)
            if r.problem == "capture-error":
                damaged += 1
                where = f"byte {r.offset}: " if r.offset is not None else ""
                print(f"{pcap_name}: error: {where}{r.message}", file=sys.stderr)
            elif r.problem == "not-evaluable":
                if not unevaluable:
                    print(f"{pcap_name}: record {r.index}: cannot be evaluated: {r.message}",
                          file=sys.stderr)
                unevaluable += 1
            if writer is not None and r.leaves:
                j = r.journey
                ts_ns = r.ts_ns if r.ts_ns is not None else int(r.now * 1e9)
                try:
                    writer.write_ns(ts_ns, j.packet.to_bytes(), j.packet.length)
                    summary.written += 1
                except ValueError as exc:          # a time a pcap record cannot hold
                    print(f"{args.write}: record {r.index} not written: {exc}",
                          file=sys.stderr)
            if per_packet:
                if as_json:
                    out.write(json.dumps(result_json(r)) + "\n")
                else:
                    out.write(format_line(r) + "\n")
            if summary.records & 1023 == 0:
                progress.update(summary.records)
    except ReplayError as exc:
        progress.stop()
        _err(str(exc))
        code = 2
    finally:
        progress.stop()
    # the outputs, also after damage or an error (everything replayed so far)
    last = summary.last_time
    if writer is not None:
        writer.flush()
    if counters_out is not None:
        counters_out.write(node.counted_ruleset().save(counters=True))
    if conntrack_out is not None:
        for entry in node.conntrack.entries():
            if entry.deadline > last:               # conntrack -L lists live entries only
                conntrack_out.write(node.conntrack.format(entry, last) + "\n")
    if as_json:
        out.write(json.dumps({"summary": {**summary.as_dict(), "seed": node.seed}}) + "\n")
    elif stdout_tty:
        _print_rich_summary(summary, node.seed)
    else:
        if per_packet:
            out.write("\n")
        out.write("\n".join(summary_lines(summary, node.seed)) + "\n")
    if code:
        return code
    if unevaluable:
        print(f"{pcap_name}: {unevaluable} packet{'s' if unevaluable != 1 else ''} could not "
              "be evaluated (their rule counters stop where evaluation stopped)",
              file=sys.stderr)
    if damaged or unevaluable:
        return 1
    return 0
