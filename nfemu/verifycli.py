"""``nfemu verify RULES --kube``: kube-proxy's properties checked on a node's dump
(nfemu/verify.py; docs/verify.md documents the properties, the output and the JSON schema).

Exit codes: 0 every property holds (checks that could not be made are listed; with
``--strict`` they fail the run), 1 a property fails or the rules are rejected (errors
printed as FILE:LINE:COL, as ``nfemu check`` prints them), 2 usage errors."""
from __future__ import annotations

import json
import sys
import time

from .errors import LocatedError


def add_parser(sub, node_arguments) -> None:
    """Add the ``verify`` sub-command to nfemu's argparse sub-parsers (nfemu/cli.py)."""
    sp = sub.add_parser(
        "verify", help="check built-in properties of a whole ruleset (--kube: a kube-proxy "
                       "iptables-mode node; see docs/verify.md)",
        description="Check built-in properties of a node's dump by sending packets through "
                    "it. --kube (required: the only property set so far) checks kube-proxy's: "
                    "every service entry point reaches exactly its endpoints with equal "
                    "shares, services without endpoints are rejected, nothing else is "
                    "DNATed, loadBalancerSourceRanges hold.")
    node_arguments(sp)
    sp.add_argument("--kube", action="store_true", required=True,
                    help="the kube-proxy (iptables mode) properties; required, as it is the "
                         "only property set so far")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--tolerance", type=float, default=None, metavar="X",
                    help="largest accepted |share - 1/n| of an endpoint (default 1e-6: "
                         "current kube-proxy's 10-decimal probabilities stay within 1e-9, "
                         "old 5-decimal ones do not)")
    sp.add_argument("--source-ranges", action="append", default=[],
                    metavar="NS/SVC:PORT=CIDR[,CIDR...]",
                    help="a Service's loadBalancerSourceRanges, to check its KUBE-FW chain "
                         "against (repeatable); without it the ranges are the dump's own")
    sp.add_argument("--strict", action="store_true",
                    help="a check that could not be made (listed as skipped) fails the run")
    sp.add_argument("--all", action="store_true",
                    help="list every check in the table, not only failed ones")
    sp.set_defaults(run=cmd_verify)


def _parse_ranges(items: list[str]) -> dict:
    from .verify import _cidr
    out: dict = {}
    for item in items:
        name, sep, cidrs = item.rpartition("=")
        if not sep or not name:
            raise ValueError(f"bad --source-ranges {item!r}: expected NS/SVC:PORT=CIDR[,...]")
        for c in cidrs.split(","):
            try:
                _cidr(c)
                plen = c.partition("/")[2]
                if plen and not 0 <= int(plen) <= 32:
                    raise ValueError
            except (ValueError, TypeError):
                raise ValueError(f"bad CIDR {c!r} in --source-ranges {item!r}") from None
            out.setdefault(name, []).append(c)
    return out


def _host_given(args) -> bool:
    return bool(args.addrs or args.routes or args.iface or args.local_ip
                or args.default_gateway)


def cmd_verify(args) -> int:
    from .tracecli import _host, load_node_rules
    from .verify import DEFAULT_TOLERANCE, verify_kube
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    if not tolerance >= 0:
        print("nfemu verify: error: --tolerance must be >= 0", file=sys.stderr)
        return 2
    try:
        ranges = _parse_ranges(args.source_ranges)
    except ValueError as exc:
        print(f"nfemu verify: error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    ruleset = load_node_rules(args.file)
    if ruleset is None:
        return 1
    loaded = time.perf_counter() - started
    if ruleset.family != 4:
        print("nfemu verify: error: --kube reads IPv4 dumps only (so far)", file=sys.stderr)
        return 1
    try:
        host = _host(args) if _host_given(args) else None
    except LocatedError as exc:
        print(f"nfemu verify: error: {exc.message}", file=sys.stderr)
        return 2
    report = verify_kube(ruleset, host, tolerance=tolerance, source_ranges=ranges or None)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        _print_table(report, args.all, loaded)
    if args.strict and report.skipped:
        if not args.json:
            print(f"nfemu verify: {len(report.skipped)} checks skipped (--strict)",
                  file=sys.stderr)
        return 1
    return 0 if report.ok else 1


def _shares_text(check) -> str:
    if not check.shares:
        return "-"
    parts = []
    for key, share in sorted(check.shares.items(), key=lambda kv: -kv[1]):
        parts.append(f"{key} {float(share):.11f}".rstrip("0").rstrip("."))
    return "\n".join(parts)


# a services table longer than this lists only the failed services unless --all
TABLE_ROWS = 200


def _print_table(report, show_all: bool, loaded: float) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(title="kube-proxy services", show_lines=False)
    for col in ("service", "proto", "endpoints", "checks", "max deviation", "status"):
        table.add_column(col, justify="right" if col in ("endpoints", "checks") else "left")
    listed = report.services
    if not show_all and len(listed) > TABLE_ROWS:
        listed = [s for s in listed if s.status != "ok"]
    for s in listed:
        dev = max((c.deviation for c in s.checks if c.property == "endpoints"), default=0.0)
        status = "[green]ok[/]" if s.status == "ok" else "[red]FAIL[/]"
        eps = str(len(s.endpoints)) if s.has_endpoints else "none"
        table.add_row(s.name, s.protocol, eps, str(len(s.checks)), f"{dev:.3g}", status)
    if listed:
        console.print(table)
    if len(listed) < len(report.services):
        console.print(f"{len(report.services) - len(listed)} more services hold (--all "
                      "lists them)")
    checks = [c for c in report.checks if show_all or c.status != "ok"]
    if checks:
        detail = Table(title="checks" if show_all else "failed checks", show_lines=True)
        for col in ("service", "property", "entry", "probe", "shares", "status / problems"):
            detail.add_column(col)
        for c in checks:
            status = "[green]ok[/]" if c.status == "ok" else "[red]FAIL[/]\n" + "\n".join(
                c.problems)
            detail.add_row(c.service or "-", c.property, c.entry,
                           c.probe.describe() if c.probe else "-", _shares_text(c), status)
        console.print(detail)
    for f in report.findings:
        where = f" at {f.location}" if f.location else ""
        console.print(f"finding ({f.kind}){where}: {f.message}" + (
            f"\n  {f.rule}" if f.rule else ""))
    for sk in report.skipped[:200]:
        console.print(f"skipped: {sk.service or '-'} {sk.check}: {sk.reason}")
    if len(report.skipped) > 200:
        console.print(f"skipped: ... and {len(report.skipped) - 200} more (--json lists all)")
    for n in report.notes:
        console.print(f"note: {n}")
    checks = report.checks
    failed = sum(c.status == "fail" for c in checks)
    console.print(f"{'ok' if report.ok else 'FAIL'}: {len(report.services)} services, "
                  f"{len(checks)} checks, {failed} failed, {len(report.skipped)} skipped "
                  f"(loaded in {loaded:.2f} s, checked in {report.seconds:.2f} s)")
