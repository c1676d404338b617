"""The checks the kernel (and iptables-nft) make when a table is loaded, beyond what
``iptables-restore --test`` checks: jumps to existing chains, no loops (``mark_source_chains``
in net/ipv4/netfilter/ip_tables.c), each match and target allowed in its table and in every
built-in hook its rule is reachable from (``xt_check_match``/``xt_check_target`` in
net/netfilter/x_tables.c), and each extension's own checkentry."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import Location, ValidationError
from .ext import MATCHES, TARGETS
from .ext.base import Kernel
from .ir import BUILTIN_CHAINS, Goto, Jump, Rule, Table


def jump_graph(table: Table) -> dict[str, list[tuple[Rule, str]]]:
    """For every chain, its rules that continue in another chain (-j/-g) with that chain."""
    graph: dict[str, list[tuple[Rule, str]]] = {}
    for chain in table.chains:
        edges = []
        for rule in chain.rules:
            t = rule.target
            if type(t) is Jump or type(t) is Goto:
                edges.append((rule, t.chain))
        graph[chain.name] = edges
    return graph


def reaching_hooks(table: Table, graph=None) -> dict[str, frozenset[str]]:
    """For every chain, the built-in chains (hooks) from which it can be reached."""
    graph = graph if graph is not None else jump_graph(table)
    reach: dict[str, set[str]] = {name: set() for name in graph}
    for hook in BUILTIN_CHAINS[table.name]:
        if hook not in graph:
            continue
        stack = [hook]
        seen = {hook}
        while stack:
            name = stack.pop()
            reach[name].add(hook)
            for _, nxt in graph[name]:
                if nxt not in seen and nxt in graph:
                    seen.add(nxt)
                    stack.append(nxt)
    return {name: frozenset(h) for name, h in reach.items()}


def find_loop(table: Table, graph=None) -> Rule | None:
    """A rule whose jump closes a cycle of chains (mark_source_chains(): "Loop found in
    table"). Only what a built-in chain reaches is walked: the kernel accepts a loop among
    chains nothing jumps to (seen: "-A A -j A" in an unreferenced chain loads)."""
    graph = graph if graph is not None else jump_graph(table)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in BUILTIN_CHAINS[table.name]:
        if root not in graph or root in state:
            continue
        state[root] = 1
        stack = [(root, iter(graph[root]))]
        while stack:
            name, edges = stack[-1]
            for rule, nxt in edges:
                if nxt not in graph:
                    continue
                mark = state.get(nxt)
                if mark == 1:
                    return rule
                if mark is None:
                    state[nxt] = 1
                    stack.append((nxt, iter(graph[nxt])))
                    break
            else:
                state[name] = 2
                stack.pop()
    return None


@dataclass(frozen=True)
class Objects:
    """Named kernel objects that rules refer to but iptables does not create: nfacct
    objects (``-m nfacct``) and ipsets (``-m set``, ``-j SET``). ``None`` means every name
    exists (a dump saved on a node that had them); a set names exactly those that exist.
    The default is a fresh network namespace, where none does and the kernel refuses such
    rules (what ``iptables-restore --test`` on another machine would say)."""

    nfacct: frozenset | None = frozenset()
    ipsets: frozenset | None = frozenset()

    def has(self, value) -> bool:
        """The object ``value`` (an Nfacct or Set match, a SET target) refers to exists."""
        names = self.nfacct if value.NAME == "nfacct" else self.ipsets
        return names is None or value.name in names


FRESH_NAMESPACE = Objects()
ALL_OBJECTS = Objects(None, None)
_OBJECT_EXTENSIONS = frozenset({"nfacct", "set"})


def validate_table(table: Table, file: str = "<string>",
                   objects: Objects = FRESH_NAMESPACE) -> list[ValidationError]:
    errors: list[ValidationError] = []
    chains = table.chain_map

    def err(rule: Rule, message: str) -> None:
        errors.append(ValidationError(message, Location(file, rule.line, 1)))

    graph = jump_graph(table)
    for edges in graph.values():
        for rule, name in edges:
            if name not in chains:
                flag = "-g" if type(rule.target) is Goto else "-j"
                err(rule, f"{flag} {name}: no chain or target of that name "
                          f"(Couldn't load target `{name}')")
            elif chains[name].builtin:
                err(rule, f"cannot jump to built-in chain {name}")
    if errors:
        return errors
    loop = find_loop(table, graph)
    if loop is not None:
        err(loop, f"Loop found in table {table.name}: chain {loop.jump_chain} leads back to "
                  f"{loop.chain}")
        return errors

    reach = reaching_hooks(table, graph)
    checked_spec = _checked_spec
    for chain in table.chains:
        hooks = frozenset({chain.name}) if chain.builtin else reach[chain.name]
        for rule in chain.rules:
            for value in rule.matches:
                spec = checked_spec(value, MATCHES)
                if spec is not None and not (value.NAME in _OBJECT_EXTENSIONS
                                             and objects.has(value)):
                    for message in _kernel_checks(spec, value, table.name, hooks, rule):
                        err(rule, message)
            value = rule.target
            if value is not None:
                spec = checked_spec(value, TARGETS)
                if spec is not None:
                    for message in _kernel_checks(spec, value, table.name, hooks, rule):
                        err(rule, message)
    return errors


_NO_CHECKS = Kernel()
_SPEC_BY_TYPE: dict[type, object] = {}


def _checked_spec(value, registry):
    """The extension spec of a value when it has load-time checks, else None (cached per
    value type: most values of a big ruleset need none)."""
    t = type(value)
    try:
        return _SPEC_BY_TYPE[t]
    except KeyError:
        spec = registry.get(value.NAME) if t not in (Jump, Goto) and value.NAME else None
        if spec is not None and spec.kernel == _NO_CHECKS and spec.check is None:
            spec = None
        _SPEC_BY_TYPE[t] = spec
        return spec


def _kernel_checks(spec, value, table: str, hooks: frozenset[str], rule: Rule) -> list[str]:
    kind = "-j" if spec.kind == "target" else "-m"
    what = f"{kind} {value.save_name()}"
    out = []
    k = spec.kernel
    if k.tables is not None and table not in k.tables:
        out.append(f"{what} is not allowed in table {table} (only in "
                   f"{', '.join(sorted(k.tables))})")
        return out
    if k.hooks is not None and hooks - k.hooks:
        bad = ", ".join(h for h in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
                        if h in hooks - k.hooks)
        out.append(f"{what} is not allowed in a rule reached from {bad} (only from "
                   f"{', '.join(h for h in ('PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING') if h in k.hooks)})")
    if k.proto is not None and (rule.proto != k.proto or rule.proto_inv):
        from .protocols import protocol_name
        out.append(f"{what} needs -p {protocol_name(k.proto)} in the rule")
    if spec.check is not None:
        out.extend(spec.check(value, table, hooks, rule))
    return out
