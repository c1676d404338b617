"""Rules compiled once into the form the per-packet walk (nfemu/walk.py) runs.

What ``ipt_do_table()`` gets from ``translate_table()``: every rule's IP header tests as a few
flat integer comparisons (only those the rule has), its matches as callables, its target as
a small code with the jump destination resolved to a chain object. On top of the kernel's
layout, a chain whose rules are mostly keyed on the packet's destination, protocol and
destination port (kube-proxy's KUBE-SERVICES and KUBE-NODEPORTS, tens of thousands of rules)
gets a hash index: for each key the positions of the rules that can match a packet with that
key, merged with the positions of the rules that carry no key, in chain order. The walk
visits only those positions, so first-match order is kept and the cost per packet no longer
grows with the number of services. The plain reference walk (nfemu/interp.py) stays as the
definition; tests/eval/test_compile.py shows both agree on generated rulesets and packets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .ext.statistic import Mode as StatisticMode, Statistic
from .ext.tcp import Tcp
from .ext.udp import Udp
from .ir import Goto, Jump, Rule, Ruleset, Table, Verdict as StandardVerdict

# what a rule's target does, as the walk dispatches on it
T_NONE, T_JUMP, T_GOTO, T_ACCEPT, T_DROP, T_RETURN, T_QUEUE, T_APPLY = range(8)
_STANDARD = {"ACCEPT": T_ACCEPT, "DROP": T_DROP, "RETURN": T_RETURN, "QUEUE": T_QUEUE}

FULL_MASK = 0xFFFFFFFF
# a chain gets an index when at least this many rules carry a key ...
INDEX_MIN_KEYED = 8
# ... and the rules without one (visited for every key) are few enough to copy per key
INDEX_MAX_UNKEYED = 64


class CompiledRule:
    """One rule: ``header`` tests taking the packet (ip_packet_match, only the fields the
    rule sets), ``matches`` taking (packet, context), and the target as ``kind`` with
    ``jump`` (the chain for -j/-g) or ``apply`` (an extension target)."""

    __slots__ = ("rule", "position", "header", "matches", "match_positions", "kind", "jump",
                 "apply", "target_name", "may_choose", "steps", "counter_key")

    def __init__(self, rule: Rule, position: int, table: str):
        self.rule = rule
        self.position = position            # 0-based index in its chain
        self.header = _header_tests(rule)
        # the comment match always matches: leave it out
        kept = [i for i, m in enumerate(rule.matches) if m.NAME != "comment"]
        self.matches = tuple(rule.matches[i].match if hasattr(rule.matches[i], "match")
                             else _not_evaluable(rule.matches[i]) for i in kept)
        # positions of the kept matches in the rule as loaded (the evaluation context's
        # match_index, which keys per-rule state), when a comment was left out
        self.match_positions = tuple(kept) if len(kept) != len(rule.matches) else None
        target = rule.target
        self.jump = None
        self.apply = None
        self.target_name = target.save_name() if target is not None else ""
        self.steps: dict = {}     # hook -> the (immutable) trace Step of a hit, made once
        self.counter_key = (table, rule.chain, position)
        kind = type(target)
        if target is None:
            self.kind = T_NONE
        elif kind is Jump:
            self.kind = T_JUMP
        elif kind is Goto:
            self.kind = T_GOTO
        elif kind is StandardVerdict:
            self.kind = _STANDARD[target.verdict]
        else:
            self.kind = T_APPLY
            self.apply = getattr(target, "apply", None) or _not_evaluable(target)
        # a random decision may be asked while this rule is evaluated: the walk then keeps
        # its place up to date so that the explorer can resume there (see nfemu/walk.py)
        self.may_choose = any(type(m) is Statistic and m.mode is StatisticMode.RANDOM
                              for m in rule.matches) or getattr(target, "MAY_CHOOSE", False)


def _not_evaluable(ext) -> Callable:
    from .interp import NotEvaluable

    kind = "-j" if hasattr(ext, "TERMINAL") else "-m"

    def fail(pkt, ev):
        raise NotEvaluable(f"{kind} {ext.save_name()} cannot be evaluated by nfemu yet "
                           f"({ev.table} {ev.chain} rule {ev.rule})")
    return fail


def _header_tests(rule: Rule) -> tuple:
    """ip_packet_match() split into the comparisons this rule needs."""
    tests = []
    for attr, address, inv in (("src", rule.src, rule.src_inv), ("dst", rule.dst, rule.dst_inv)):
        if address is not None:
            tests.append(_address_test(attr, address.addr, address.mask, inv))
    for attr, name, inv in (("iif", rule.in_iface, rule.in_inv),
                            ("oif", rule.out_iface, rule.out_inv)):
        if name:
            tests.append(_iface_test(attr, name, inv))
    if rule.proto:
        proto, inv = rule.proto, rule.proto_inv
        tests.append((lambda p: p.proto != proto) if inv else (lambda p: p.proto == proto))
    if rule.fragment is not None:
        fragment = rule.fragment
        tests.append(lambda p: (p.frag != 0) == fragment)
    return tuple(tests)


def _address_test(attr: str, addr: int, mask: int, inv: bool) -> Callable:
    if attr == "src":
        if mask == FULL_MASK:
            return (lambda p: p.src != addr) if inv else (lambda p: p.src == addr)
        return ((lambda p: (p.src & mask) != addr) if inv
                else (lambda p: (p.src & mask) == addr))
    if mask == FULL_MASK:
        return (lambda p: p.dst != addr) if inv else (lambda p: p.dst == addr)
    return ((lambda p: (p.dst & mask) != addr) if inv
            else (lambda p: (p.dst & mask) == addr))


def _iface_test(attr: str, name: str, inv: bool) -> Callable:
    """ifname_compare_aligned(): 'eth+' compares the part before '+', else the whole name."""
    if name.endswith("+"):
        prefix = name[:-1]
        if attr == "iif":
            return lambda p: p.iif.startswith(prefix) != inv
        return lambda p: p.oif.startswith(prefix) != inv
    if attr == "iif":
        return (lambda p: p.iif != name) if inv else (lambda p: p.iif == name)
    return (lambda p: p.oif != name) if inv else (lambda p: p.oif == name)


# ---- the hash index --------------------------------------------------------------------

# Key shapes, tried in this order: each names the packet fields the key is made of.
SHAPES = (("dst", "proto", "dport"), ("proto", "dport"), ("dst",))


def _rule_key_fields(rule: Rule) -> dict:
    """The packet fields this rule pins to one value: every packet it can match has them.
    Only tests that are necessary conditions count (not negated, full mask, one port)."""
    fields = {}
    if rule.dst is not None and not rule.dst_inv and rule.dst.mask == FULL_MASK:
        fields["dst"] = rule.dst.addr
    if rule.proto and not rule.proto_inv:
        fields["proto"] = rule.proto
    port = _pinned_dport(rule)
    if port is not None:
        fields["dport"] = port
    return fields


def _pinned_dport(rule: Rule) -> int | None:
    """A destination port every packet matching RULE has: the first tcp/udp match with one
    non-negated port whose protocol agrees with the rule's -p. (A rule with several such
    matches keeps the first: all of them must hold, so any one is a necessary condition.)"""
    for m in rule.matches:
        t = type(m)
        if (t is Tcp and rule.proto == 6) or (t is Udp and rule.proto == 17):
            lo, hi = m.dport
            if lo == hi and not m.dport_inv:
                return lo
    return None


@dataclass
class ChainIndex:
    """Candidates per key: positions (sorted) of the rules that can match a packet with that
    key; ``default`` (the unkeyed rules) for keys no rule names."""

    shape: tuple[str, ...]
    by_key: dict
    default: list

    def candidates(self, pkt) -> list:
        shape = self.shape
        if shape is SHAPES[0]:
            key = (pkt.dst, pkt.proto, pkt.dport)
        elif shape is SHAPES[1]:
            key = (pkt.proto, pkt.dport)
        else:
            key = (pkt.dst,)
        return self.by_key.get(key, self.default)


def build_index(rules: list[Rule]) -> ChainIndex | None:
    """The best key shape for these rules, or None when indexing would not pay (too few
    keyed rules) or cost too much memory (too many rules without a key)."""
    fields = [_rule_key_fields(r) for r in rules]
    best = None
    for shape in SHAPES:
        keys = [tuple(f[name] for name in shape) for f in fields
                if all(name in f for name in shape)]
        if len(keys) < INDEX_MIN_KEYED:
            continue
        # rules visited per packet, roughly: every unkeyed one plus an average bucket
        cost = (len(fields) - len(keys)) + len(keys) / len(set(keys))
        if best is None or cost < best[1]:
            best = (shape, cost)
    if best is None:
        return None
    shape = best[0]
    unkeyed = [i for i, f in enumerate(fields) if not all(name in f for name in shape)]
    if len(unkeyed) > INDEX_MAX_UNKEYED:
        return None
    by_key: dict = {}
    for i, f in enumerate(fields):
        if all(name in f for name in shape):
            by_key.setdefault(tuple(f[name] for name in shape), []).append(i)
    for key, positions in by_key.items():
        if unkeyed:
            by_key[key] = sorted(positions + unkeyed)
    return ChainIndex(shape, by_key, unkeyed)


# ---- chains, tables, the program -------------------------------------------------------

class CompiledChain:
    """A chain of compiled rules. Its rules (``rules``, ``every``, ``index``) are compiled
    the first time the walk asks for one of them: a packet enters a handful of the tens of
    thousands of chains of a kube-proxy node, so compiling every chain up front (seconds for
    10,000 services) is mostly wasted."""

    def __init__(self, name: str, policy: str | None, builtin: bool, declared: bool,
                 source: tuple = (), table: str = "", use_index: bool = True,
                 chains: dict | None = None):
        self.name = name
        self.policy = policy
        self.builtin = builtin
        self.declared = declared
        self._source = source           # the chain's IR rules, until compiled
        self._table = table
        self._use_index = use_index
        self._chains = chains           # the table's chains by name (jump targets)

    def __getattr__(self, attr):
        # called only for attributes not set yet: rules, every and index before compiling
        if attr in ("rules", "every", "index"):
            self._compile()
            return self.__dict__[attr]
        raise AttributeError(attr)

    def _compile(self) -> None:
        source = self._source
        rules = [CompiledRule(r, i, self._table) for i, r in enumerate(source)]
        chains = self._chains
        for rule in rules:
            if rule.kind == T_JUMP or rule.kind == T_GOTO:
                rule.jump = chains[rule.rule.target.chain]
        self.index = (build_index(list(source))
                      if self._use_index and len(source) >= INDEX_MIN_KEYED else None)
        self.every = range(len(rules))
        self.rules = rules
        self._source = self._chains = None


@dataclass(eq=False)
class CompiledTable:
    name: str
    chains: dict


@dataclass(eq=False)
class Program:
    """A ruleset ready to run: its tables by name, compiled."""

    ruleset: Ruleset
    tables: dict

    @classmethod
    def compile(cls, ruleset: Ruleset, index: bool = True) -> Program:
        return cls(ruleset, {t.name: compile_table(t, index) for t in ruleset.tables})


def compile_table(table: Table, index: bool = True) -> CompiledTable:
    """The table's chains, each compiled when first entered (CompiledChain)."""
    chains: dict = {}
    for chain in table.chains:
        chains[chain.name] = CompiledChain(chain.name, chain.policy, chain.builtin,
                                           chain.declared, chain.rules, table.name, index,
                                           chains)
    return CompiledTable(table.name, chains)
