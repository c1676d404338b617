"""The reference chain walk: ``ipt_do_table()`` (net/ipv4/netfilter/ip_tables.c), plain and
obviously right, for one table at one hook. The compiled engine of issue 3 must agree with it
(a property test will say so); trace, outcomes and replay all stand on it.

Semantics (SEMANTICS.md section 2): a rule matches when the IP header tests
(``ip_packet_match``) and every match pass; then its counters grow by one packet and the IP
total length in bytes, whatever the target does next. ``-j CHAIN`` pushes a return point,
``-g CHAIN`` does not; a user chain ends in an implicit RETURN; RETURN with nothing to return
to applies the built-in chain's policy. ACCEPT ends this table only; DROP ends everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, NamedTuple

from .engine import EvalContext, TargetResult, Verdict
from .errors import NfemuError
from .ir import Goto, Jump, Rule, Table, Verdict as StandardVerdict
from .packet import Packet


class Step(NamedTuple):
    """One entry of a trace: a rule that matched (``rule`` 1-based) or a policy (``rule``
    None), in this hook, table and chain, with the target it ran. (A named tuple: the
    compiled walk makes one per rule hit.)"""

    hook: str
    table: str
    chain: str
    rule: int | None
    target: str


@dataclass(frozen=True, slots=True)
class TableResult:
    verdict: Verdict                 # ACCEPT, DROP or QUEUE (never CONTINUE or RETURN)
    packet: Packet
    steps: tuple[Step, ...]


def iface_matches(rule_iface: str, dev: str) -> bool:
    """ifname_compare_aligned() with the mask iptables built (xtables_parse_interface): a name
    ending in '+' compares only the part before it; otherwise the whole name (and its end);
    a packet without that device compares as the empty name."""
    if rule_iface.endswith("+"):
        return dev.startswith(rule_iface[:-1])
    return dev == rule_iface


def header_matches(rule: Rule, pkt: Packet) -> bool:
    """ip_packet_match(): addresses under their masks, interfaces, protocol, fragments, each
    negated by its `!`."""
    src = rule.src
    if src is not None and ((pkt.src & src.mask) != src.addr) != rule.src_inv:
        return False
    dst = rule.dst
    if dst is not None and ((pkt.dst & dst.mask) != dst.addr) != rule.dst_inv:
        return False
    if rule.in_iface and (not iface_matches(rule.in_iface, pkt.iif)) != rule.in_inv:
        return False
    if rule.out_iface and (not iface_matches(rule.out_iface, pkt.oif)) != rule.out_inv:
        return False
    if rule.proto and (pkt.proto != rule.proto) != rule.proto_inv:
        return False
    if rule.fragment is not None:
        # -f: only non-first fragments; ! -f: everything else (IPT_F_FRAG with IPT_INV_FRAG)
        if (pkt.frag != 0) != rule.fragment:
            return False
    return True


def walk_table(table: Table, chain_name: str, pkt: Packet, ev: EvalContext,
               counters: dict | None = None) -> TableResult:
    """Run ``pkt`` through ``table`` from the built-in chain ``chain_name`` (the hook)."""
    chains = table.chain_map
    builtin = chains[chain_name]
    steps: list[Step] = []
    stack: list[tuple[str, int]] = []
    chain = builtin
    index = 0
    ev.table = table.name
    while True:
        rules = chain.rules
        if index >= len(rules):
            # the built-in chain's end, or a user chain's implicit RETURN with nothing to
            # return to (reached by -g from the built-in chain): the policy
            if chain is builtin or not stack:
                return _policy(builtin, pkt, ev, steps, counters)
            name, index = stack.pop()
            chain = chains[name]
            continue
        rule = rules[index]
        ev.chain, ev.rule = chain.name, index + 1
        if not _rule_matches(rule, pkt, ev):
            if ev.hotdrop:  # a match set par->hotdrop: ipt_do_table drops at once
                ev.hotdrop = False
                steps.append(Step(ev.hook, table.name, chain.name, index + 1, "HOTDROP"))
                return TableResult(Verdict.DROP, pkt, tuple(steps))
            index += 1
            continue
        if counters is not None:
            key = (table.name, chain.name, index)
            packets, octets = counters.get(key, (0, 0))
            counters[key] = (packets + 1, octets + pkt.length)
        target = rule.target
        kind = type(target)
        if target is None:
            steps.append(Step(ev.hook, table.name, chain.name, index + 1, ""))
            index += 1
            continue
        steps.append(Step(ev.hook, table.name, chain.name, index + 1, target.save_name()))
        if kind is Jump or kind is Goto:
            if kind is Jump:
                stack.append((chain.name, index + 1))
            chain, index = chains[target.chain], 0
            continue
        if kind is StandardVerdict:
            if target.verdict == "RETURN":
                verdict = Verdict.RETURN
            else:
                return TableResult(Verdict(target.verdict), pkt, tuple(steps))
        else:
            ev.match_index = len(rule.matches)
            apply = getattr(target, "apply", None)
            if apply is None:
                raise NotEvaluable(f"-j {target.save_name()} cannot be evaluated by nfemu yet "
                                   f"({ev.table} {ev.chain} rule {ev.rule})")
            result: TargetResult = apply(pkt, ev)
            pkt = result.packet
            verdict = result.verdict
            if verdict is Verdict.CONTINUE:
                index += 1
                continue
            if verdict is not Verdict.RETURN:
                return TableResult(verdict, pkt, tuple(steps))
        # RETURN
        if not stack:
            return _policy(builtin, pkt, ev, steps, counters)
        name, index = stack.pop()
        chain = chains[name]


def _rule_matches(rule: Rule, pkt: Packet, ev: EvalContext) -> bool:
    if not header_matches(rule, pkt):
        return False
    for i, m in enumerate(rule.matches):
        ev.match_index = i
        evaluate = getattr(m, "match", None)
        if evaluate is None:
            raise NotEvaluable(f"-m {m.save_name()} cannot be evaluated by nfemu yet "
                               f"({ev.table} {ev.chain} rule {ev.rule})")
        if not evaluate(pkt, ev):
            return False
    return True


class NotEvaluable(NfemuError):
    """A rule uses an extension whose packet semantics nfemu does not model yet."""


def _policy(chain, pkt, ev, steps, counters) -> TableResult:
    if counters is not None:
        key = (ev.table, chain.name, None)
        packets, octets = counters.get(key, (0, 0))
        counters[key] = (packets + 1, octets + pkt.length)
    steps.append(Step(ev.hook, ev.table, chain.name, None, chain.policy))
    return TableResult(Verdict(chain.policy), pkt, tuple(steps))


def explore(run: Callable[[Callable[[Fraction], bool]], object]) -> list[tuple[Fraction, object]]:
    """Every outcome of ``run`` with its exact probability.

    ``run(chooser)`` evaluates one packet from a fresh state, asking ``chooser(p)`` at each
    random decision (statistic). Runs replay a recorded prefix of decisions and take "true"
    at each new decision, remembering the "false" alternative; alternatives are replayed
    depth first until none is left. Decisions of probability 0 or 1 do not branch. The
    probabilities of the returned outcomes add up to exactly 1."""
    pending: list[tuple[bool, ...]] = [()]
    outcomes: list[tuple[Fraction, object]] = []
    while pending:
        prefix = pending.pop()
        taken: list[bool] = []
        # the run's probability as numerator / denominator, reduced once at the end (a long
        # statistic chain multiplies hundreds of u32 / 2^31 factors)
        numerator = denominator = 1

        def chooser(p: Fraction) -> bool:
            nonlocal numerator, denominator
            num, den = p.numerator, p.denominator
            certain = num <= 0 or num >= den
            depth = len(taken)
            if depth < len(prefix):
                decision = prefix[depth]
            elif certain:
                decision = num >= den
            else:
                decision = True
                pending.append(tuple(taken) + (False,))
            taken.append(decision)
            if not certain:
                numerator *= num if decision else den - num
                denominator *= den
            return decision

        result = run(chooser)
        outcomes.append((Fraction(numerator, denominator), result))
    return outcomes
