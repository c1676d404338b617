"""The command line: ``nfemu fmt``, ``nfemu check``.

Exit codes: 0 success, 1 the input is rejected, 2 usage errors. Errors about the input are
printed as ``FILE:LINE:COL: error: message``; never a traceback."""
from __future__ import annotations

import argparse
import gc
import os
import json
import sys

from .errors import LocatedError, NfemuError
from .ir import Family
from .parse import load_report, read_text


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, with our prefix
        self.print_usage(sys.stderr)
        print(f"nfemu: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nfemu", description="Offline emulator of Linux netfilter (iptables).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def common(sp):
        sp.add_argument("file", metavar="FILE", help="iptables-save or iptables-restore text; - for stdin")
        sp.add_argument("-6", "--ipv6", action="store_true", help="read ip6tables text")
        sp.add_argument("-c", "--counters", action="store_true",
                        help="keep [packets:bytes] counters (as iptables-restore -c / iptables-save -c)")
        sp.add_argument("--json", action="store_true", help="machine-readable output")

    fmt = sub.add_parser("fmt", help="print the ruleset in canonical iptables-save form")
    common(fmt)
    fmt.add_argument("--no-header", action="store_true", help="omit the '#' comment lines")
    chk = sub.add_parser("check", help="report every reason a real load would reject the file")
    common(chk)
    objs = chk.add_argument_group(
        "objects", "nfacct objects and ipsets the rules may name (by default none exists, as "
                   "in a fresh network namespace)")
    objs.add_argument("--nfacct", action="append", default=[], metavar="NAME",
                      help="an nfacct object that exists (repeatable)")
    objs.add_argument("--ipset", action="append", default=[], metavar="NAME",
                      help="an ipset that exists (repeatable)")
    objs.add_argument("--assume-objects", action="store_true",
                      help="every nfacct object and ipset the rules name exists (a dump "
                           "taken on a node)")
    trc = sub.add_parser("trace", help="follow a packet through the node's hooks, tables and "
                                       "chains (see docs/trace.md)")
    trc.add_argument("file", metavar="RULES", help="iptables-save text of the node; - for stdin")
    host = trc.add_argument_group("host", "the node's interfaces and routes")
    host.add_argument("--addrs", metavar="FILE", help="output of `ip -j addr show`")
    host.add_argument("--routes", metavar="FILE", help="output of `ip -j route show table all`")
    host.add_argument("--iface", action="append", default=[], metavar="NAME=ADDR/LEN",
                      help="an interface and its addresses (repeatable)")
    host.add_argument("--local-ip", action="append", default=[], metavar="ADDR",
                      help="an address of the node on lo (repeatable)")
    host.add_argument("--default-gateway", metavar="ADDR", help="the default route's gateway")
    host.add_argument("--route-localnet", action="store_true",
                      help="net.ipv4.conf.all.route_localnet=1 (kube-proxy sets it): 127/8 is "
                           "routed, not martian")
    trc.add_argument("--all", action="store_true",
                     help="every outcome of the random choices with its exact probability")
    trc.add_argument("--seed", type=int, help="seed of the random choices (printed when not given)")
    trc.add_argument("--time", type=float, default=0.0, metavar="SECONDS",
                     help="the packet's time, seconds since the epoch (UTC), for -m time, "
                          "limit, hashlimit and recent")
    trc.add_argument("--json", action="store_true", help="machine-readable output")
    from .packetopts import add_packet_arguments
    add_packet_arguments(trc)
    return p


def _objects(args):
    from .validate import ALL_OBJECTS, FRESH_NAMESPACE, Objects
    if getattr(args, "assume_objects", False):
        return ALL_OBJECTS
    nfacct, ipsets = getattr(args, "nfacct", []), getattr(args, "ipset", [])
    if nfacct or ipsets:
        return Objects(frozenset(nfacct), frozenset(ipsets))
    return FRESH_NAMESPACE


def _load(args):
    text, name = read_text(args.file)
    family = Family.IPV6 if args.ipv6 else None
    report = load_report(text, name, family, counters=args.counters, objects=_objects(args))
    if not args.json:
        for w in report.warnings:
            print(w.format(), file=sys.stderr)
    return report


def _report(errors, as_json: bool) -> None:
    if as_json:
        return
    for e in errors:
        print(e.format(), file=sys.stderr)


def _errors_json(errors):
    return [{"file": e.file, "line": e.line, "column": e.column, "message": e.message,
             "kind": type(e).__name__} for e in errors]


def cmd_fmt(args) -> int:
    report = _load(args)
    ruleset, errors = report.ruleset, report.errors
    if errors:
        if args.json:
            print(json.dumps({"ok": False, "errors": _errors_json(errors)}, indent=2))
        _report(errors, args.json)
        return 1
    text = ruleset.save(counters=args.counters, header=not args.no_header)
    if args.json:
        print(json.dumps({"ok": True, "text": text}, indent=2))
    else:
        sys.stdout.write(text)
    return 0


def cmd_check(args) -> int:
    report = _load(args)
    ruleset, errors = report.ruleset, report.errors
    if args.json:
        tables = {t.name: {"chains": len(t.chains), "rules": sum(len(c.rules) for c in t.chains)}
                  for t in ruleset.tables}
        print(json.dumps({"ok": not errors, "errors": _errors_json(errors),
                          "warnings": _errors_json(report.warnings), "tables": tables},
                         indent=2))
    _report(errors, args.json)
    if errors:
        if not args.json:
            print(f"{len(errors)} error{'s' if len(errors) != 1 else ''}", file=sys.stderr)
        return 1
    if not args.json:
        rules = sum(len(c.rules) for t in ruleset.tables for c in t.chains)
        print(f"ok: {len(ruleset.tables)} tables, {rules} rules")
    return 0


def main(argv: list[str] | None = None) -> int:
    # Bytes that were not UTF-8 in the input come back out unchanged.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "fmt":
            return cmd_fmt(args)
        if args.command == "trace":
            from .tracecli import cmd_trace
            return cmd_trace(args)
        return cmd_check(args)
    except FileNotFoundError as exc:
        print(f"nfemu: error: {exc.filename}: no such file", file=sys.stderr)
        return 2
    except IsADirectoryError as exc:
        print(f"nfemu: error: {exc.filename}: is a directory", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"nfemu: error: {exc.filename}: permission denied", file=sys.stderr)
        return 2
    except (LocatedError, NfemuError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


def run() -> None:
    """The console script: main() without the cyclic garbage collector (a short-lived process
    whose big objects are all acyclic), then leave without tearing down the (possibly
    millions of) objects one by one; the operating system reclaims the memory."""
    gc.disable()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)
