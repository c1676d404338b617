"""The per-packet chain walk over compiled rules: ``ipt_do_table()`` (ip_tables.c) as the
packet path runs it, resumable so that exact enumeration can branch at a random decision
without walking again from the start.

Semantics are those of the reference walk (nfemu/interp.py): a rule matches when its header
tests and every match pass, then its counters grow; jump pushes a return point, goto does
not; the end of a user chain returns; RETURN or the end with nothing to return to applies
the built-in chain's policy; ACCEPT ends the table, DROP and QUEUE end the traversal.

Resuming: while a rule that may ask a random decision (``CompiledRule.may_choose``) is
evaluated, the walk keeps its place in the traversal (``w_chain``, ``w_index``, ``w_mi``:
chain, rule, match; ``w_stack``: the return points). The explorer copies the traversal at
the decision (nfemu/pipeline.py ``Traversal.fork``) and later resumes the copy here, at
that very match, with the other answer: a 1,000-endpoint service costs 1,000 short walks,
not 1,000 walks from the start.
"""
from __future__ import annotations

from bisect import bisect_left

from .compile import (T_ACCEPT, T_APPLY, T_DROP, T_GOTO, T_JUMP, T_NONE, T_QUEUE, T_RETURN,
                      CompiledTable)
from .engine import Verdict
from .interp import Step, walk_table

_VERDICT = {T_ACCEPT: Verdict.ACCEPT, T_DROP: Verdict.DROP, T_QUEUE: Verdict.QUEUE}
_POLICY = {"ACCEPT": Verdict.ACCEPT, "DROP": Verdict.DROP}


def compiled_walk(t, table: CompiledTable, hook: str) -> Verdict:
    """Run ``t.pkt`` through ``table`` from its built-in chain ``hook``; ``t`` is the
    traversal (nfemu/pipeline.py): its packet, context, steps and counters are updated."""
    ev = t.ev
    pkt = t.pkt
    steps = t.journey.steps
    counters = t.counters
    tname = table.name
    ev.table = tname
    chains = table.chains
    builtin = chains[hook]
    if t.w_chain is None:
        chain, index, stack, resume = builtin, 0, [], -1
        t.w_stack = stack
    else:  # a copy made at a random decision: go on from that match
        chain, index, stack, resume = t.w_chain, t.w_index, t.w_stack, t.w_mi
        t.w_chain = None
    while True:
        rules = chain.rules
        index_ = chain.index
        if index_ is None:
            cands = chain.every
            pos = index
        else:
            cands = index_.candidates(pkt)
            pos = bisect_left(cands, index)   # where the walk goes on from rule index
        n = len(cands)
        while pos < n:
            i = cands[pos]
            pos += 1
            rule = rules[i]
            if resume >= 0:
                start, resume = resume, -1          # its header tests passed already
            else:
                failed = False
                for test in rule.header:
                    if not test(pkt):
                        failed = True
                        break
                if failed:
                    continue
                start = 0
            matches = rule.matches
            kind = rule.kind
            if matches or kind == T_APPLY:
                ev.chain = chain.name
                ev.rule = i + 1
            if matches:
                positions = rule.match_positions
                choosing = rule.may_choose
                if choosing:
                    t.w_chain, t.w_index = chain, i
                failed = False
                for mi in range(start, len(matches)):
                    ev.match_index = positions[mi] if positions else mi
                    if choosing:
                        t.w_mi = mi
                    if not matches[mi](pkt, ev):
                        failed = True
                        break
                if choosing:
                    t.w_chain = None
                if failed:
                    if ev.hotdrop:  # par->hotdrop: ipt_do_table drops at once
                        ev.hotdrop = False
                        steps.append(Step(hook, tname, chain.name, i + 1, "HOTDROP"))
                        t.pkt = pkt
                        return Verdict.DROP
                    continue
            if counters is not None:
                key = rule.counter_key
                c = counters.get(key)
                counters[key] = (1, pkt.length) if c is None else (c[0] + 1, c[1] + pkt.length)
            step = rule.steps.get(hook)
            if step is None:
                step = rule.steps[hook] = Step(hook, tname, chain.name, i + 1, rule.target_name)
            steps.append(step)
            if kind == T_NONE:
                continue
            if kind == T_JUMP:
                if not rule.jump.rules:
                    continue        # an empty chain returns at once
                stack.append((chain, i + 1))
                chain, index = rule.jump, 0
                break
            if kind == T_GOTO:
                chain, index = rule.jump, 0
                break
            if kind == T_APPLY:
                ev.match_index = len(rule.rule.matches)
                if rule.may_choose:
                    t.w_chain, t.w_index, t.w_mi = chain, i, len(matches)
                result = rule.apply(pkt, ev)
                t.w_chain = None
                verdict = result.verdict
                if result.packet is not pkt:
                    pkt = t.pkt = result.packet
                    if verdict is Verdict.CONTINUE and index_ is not None:
                        index = i + 1       # the key may have changed: candidates again
                        break
                if verdict is Verdict.CONTINUE:
                    continue
                if verdict is not Verdict.RETURN:
                    t.pkt = pkt
                    return verdict
            elif kind != T_RETURN:
                t.pkt = pkt
                return _VERDICT[kind]
            # RETURN
            if not stack:
                t.pkt = pkt
                return _policy(t, builtin, hook, tname, pkt)
            chain, index = stack.pop()
            break
        else:
            # the end of the chain: the policy, or the implicit RETURN of a user chain
            if chain is builtin or not stack:
                t.pkt = pkt
                return _policy(t, builtin, hook, tname, pkt)
            chain, index = stack.pop()


def _policy(t, builtin, hook: str, tname: str, pkt) -> Verdict:
    counters = t.counters
    if counters is not None:
        key = (tname, builtin.name, None)
        c = counters.get(key)
        counters[key] = (1, pkt.length) if c is None else (c[0] + 1, c[1] + pkt.length)
    t.journey.steps.append(Step(hook, tname, builtin.name, None, builtin.policy))
    return _POLICY[builtin.policy]


def reference_walk(t, table, hook: str) -> Verdict:
    """The same contract over the plain reference walk (nfemu/interp.py), which cannot be
    resumed: the reference explorer replays decisions from the start instead."""
    result = walk_table(table, hook, t.pkt, t.ev, t.counters)
    t.journey.steps.extend(result.steps)
    t.pkt = result.packet
    return result.verdict
