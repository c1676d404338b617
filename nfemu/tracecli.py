"""``nfemu trace``: one packet through a node, as a readable trace or JSON.

JSON (``--json``): ``{"seed", "outcomes": [{"probability": "p/q", "verdict", "where",
"out_iface", "note", "packet", "path": [{"hook", "table", "chain", "rule", "target"}],
"events": [{"kind", "hook", "table", "chain", "rule", ...}]}]}``; without ``--all`` there is
one outcome, sampled with the seed. docs/trace.md documents the schema and the semantics.
"""
from __future__ import annotations

import json
import sys

from .errors import LocatedError, ParseError
from .host import Host
from .interp import NotEvaluable
from .node import Node
from .packetopts import packet_from_args
from .parse import load_report_file
from .validate import ALL_OBJECTS


def _host(args) -> Host:
    if args.addrs or args.routes:
        if not (args.addrs and args.routes):
            raise ParseError("--addrs and --routes go together")
        return Host.from_files(args.addrs, args.routes, route_localnet=args.route_localnet)
    return Host.from_options(args.iface, args.local_ip, args.default_gateway,
                             route_localnet=args.route_localnet)


def _rule_text(node: Node, step) -> str:
    if step.rule is None:
        return f":{step.chain} policy {step.target}"
    table = node.ruleset.table(step.table)
    return table.chain(step.chain).rules[step.rule - 1].save()


def load_node_rules(path: str):
    """The node's dump read for trace and replay: warnings and errors printed on stderr as
    FILE:LINE:COL; the Ruleset, or None when a real load would reject it. A node's dump
    proves the nfacct objects and ipsets it names existed there (``ALL_OBJECTS``)."""
    report = load_report_file(path, objects=ALL_OBJECTS)
    for w in report.warnings:
        print(w.format(), file=sys.stderr)
    for e in report.errors:
        print(e.format(), file=sys.stderr)
    return None if report.errors else report.ruleset


def cmd_trace(args) -> int:
    ruleset = load_node_rules(args.file)
    if ruleset is None:
        return 1
    try:
        host = _host(args)
        pkt, ctx = packet_from_args(args)
    except LocatedError as exc:
        print(f"nfemu trace: error: {exc.message}", file=sys.stderr)
        return 2
    node = Node(ruleset, host, seed=args.seed)
    return run_trace(node, pkt, ctx, all_outcomes=args.all, now=args.time, as_json=args.json)


def run_trace(node: Node, pkt, ctx, *, all_outcomes: bool, now: float = 0.0,
              as_json: bool = False, json_extra: dict | None = None,
              epilogue: list[str] = (), outcomes: list | None = None) -> int:
    """Trace ``pkt`` (arriving as ``ctx`` says: nfemu/packetopts.py's PacketContext) through
    ``node`` and print it as ``nfemu trace`` does: every outcome with ``all_outcomes``, else
    one sampled with the node's seed. ``json_extra`` is merged into the JSON object,
    ``epilogue`` printed after the text; ``outcomes``: the packet's ``Node.outcomes``, when
    the caller has them already. The exit code: 0, or 1 when something the packet meets
    cannot be evaluated."""
    try:
        if all_outcomes:
            if outcomes is None:
                outcomes = node.outcomes(pkt, iface=ctx.arrives_on, local=ctx.local,
                                         ctstate=ctx.ctstate, now=now)
            outcomes = [(o.probability, o.journey) for o in outcomes]
        else:
            outcomes = [(None, node.trace(pkt, iface=ctx.arrives_on, local=ctx.local,
                                          ctstate=ctx.ctstate, now=now))]
    except NotEvaluable as exc:
        print(f"nfemu trace: error: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"seed": node.seed, "outcomes": [
            _journey_json(node, p, j) for p, j in outcomes], **(json_extra or {})}, indent=2))
        return 0
    if not all_outcomes:
        print(f"# seed {node.seed} (random choices are sampled; --all gives every outcome)")
    print(f"packet: {pkt.describe()}" + (
        f" arriving on {ctx.arrives_on}" if ctx.arrives_on else
        " generated locally" + (" (source 0.0.0.0: routing chooses it)"
                                if ctx.local and not pkt.src else "")))
    for probability, journey in outcomes:
        if probability is not None:
            print(f"\n== probability {probability} ({float(probability):.6f})")
        print("\n".join(journey_lines(node, journey)))
    for line in epilogue:
        print(line)
    return 0


def journey_lines(node: Node, journey, indent: str = "") -> list[str]:
    """One outcome as ``nfemu trace`` prints it: each hook and table, the rules and policies
    hit (as iptables-save prints them), the events a target made right under its rule, the
    verdict, where the packet ended and the final packet. (Also the traces in the failure
    messages of nfemu/assertions.py.)"""
    lines = []
    last = None
    events = list(journey.events)
    for step in journey.steps:
        head = (step.hook, step.table)
        if head != last:
            lines.append(f"{indent}{step.hook} {step.table}")
            last = head
        where = f"rule {step.rule}" if step.rule is not None else "policy"
        lines.append(f"{indent}  {step.chain} {where}: {_rule_text(node, step)}")
        # what the rule's target did, right under it
        while events and (events[0].hook, events[0].table, events[0].chain,
                          events[0].rule) == (step.hook, step.table, step.chain, step.rule):
            event = events.pop(0)
            lines.append(f"{indent}    => {event.kind} " + ", ".join(
                f"{k}={v}" for k, v in event.detail.items()))
    for event in events:
        lines.append(f"{indent}  => {event.kind} at {event.table} {event.chain} rule "
                     f"{event.rule}: " + ", ".join(f"{k}={v}" for k, v in event.detail.items()))
    final = journey.packet.describe() if journey.packet is not None else "-"
    note = f" ({journey.note})" if journey.note else ""
    lines.append(f"{indent}verdict {journey.verdict.value}: {_where(journey)}{note}; "
                 f"packet {final}")
    return lines


def _where(journey) -> str:
    """Where the packet ends, in words."""
    if journey.where == "local":
        return "delivered locally"
    if journey.where == "forward":
        return f"forwarded out {journey.out_iface}"
    if journey.where == "out":
        return f"sent out {journey.out_iface}"
    return journey.where


def _journey_json(node: Node, probability, journey) -> dict:
    return {
        "probability": None if probability is None else str(probability),
        "verdict": journey.verdict.value, "where": journey.where,
        "out_iface": journey.out_iface or None, "note": journey.note or None,
        "packet": journey.packet.describe() if journey.packet is not None else None,
        "path": [{"hook": s.hook, "table": s.table, "chain": s.chain, "rule": s.rule,
                  "target": s.target} for s in journey.steps],
        "events": [{"kind": e.kind, "hook": e.hook, "table": e.table, "chain": e.chain,
                    "rule": e.rule, **{k: str(v) for k, v in e.detail.items()}}
                   for e in journey.events],
    }
