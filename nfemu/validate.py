"""The checks the kernel (and iptables-nft) make when a table is loaded, beyond what
``iptables-restore --test`` checks: jumps to existing chains, no loops (``mark_source_chains``
in net/ipv4/netfilter/ip_tables.c), each match and target allowed in its table and in every
built-in hook its rule is reachable from (``xt_check_match``/``xt_check_target`` in
net/netfilter/x_tables.c), and each extension's own checkentry."""
from __future__ import annotations

from .errors import Location, ValidationError
from .ext import MATCHES, TARGETS
from .ir import BUILTIN_CHAINS, Goto, Jump, Rule, Table


def reaching_hooks(table: Table) -> dict[str, frozenset[str]]:
    """For every chain, the built-in chains (hooks) from which it can be reached."""
    chains = table.chain_map
    reach: dict[str, set[str]] = {name: set() for name in chains}
    for hook in BUILTIN_CHAINS[table.name]:
        if hook not in chains:
            continue
        stack = [hook]
        seen = {hook}
        while stack:
            name = stack.pop()
            reach[name].add(hook)
            for rule in chains[name].rules:
                nxt = rule.jump_chain
                if nxt is not None and nxt in chains and nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    return {name: frozenset(h) for name, h in reach.items()}


def find_loop(table: Table) -> Rule | None:
    """A rule whose jump closes a cycle of chains (the kernel: "Loop found in table")."""
    chains = table.chain_map
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(name: str) -> Rule | None:
        state[name] = 1
        for rule in chains[name].rules:
            nxt = rule.jump_chain
            if nxt is None or nxt not in chains:
                continue
            if state.get(nxt) == 1:
                return rule
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        state[name] = 2
        return None

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(chains) + 100))
    try:
        # Only what a built-in chain can reach is walked: the kernel accepts a loop among
        # chains that nothing jumps to (seen: "-A A -j A" in an unreferenced chain loads).
        for name in BUILTIN_CHAINS[table.name]:
            if name in chains and name not in state:
                found = visit(name)
                if found is not None:
                    return found
    finally:
        sys.setrecursionlimit(limit)
    return None


def validate_table(table: Table, file: str = "<string>") -> list[ValidationError]:
    errors: list[ValidationError] = []
    chains = table.chain_map

    def err(rule: Rule, message: str) -> None:
        errors.append(ValidationError(message, Location(file, rule.line, 1)))

    for chain in table.chains:
        for rule in chain.rules:
            target = rule.target
            if type(target) in (Jump, Goto):
                if target.chain not in chains:
                    flag = "-g" if type(target) is Goto else "-j"
                    err(rule, f"{flag} {target.chain}: no chain or target of that name "
                              f"(Couldn't load target `{target.chain}')")
                elif chains[target.chain].builtin:
                    err(rule, f"cannot jump to built-in chain {target.chain}")
    if errors:
        return errors
    loop = find_loop(table)
    if loop is not None:
        err(loop, f"Loop found in table {table.name}: chain {loop.jump_chain} leads back to "
                  f"{loop.chain}")
        return errors

    reach = reaching_hooks(table)
    for chain in table.chains:
        hooks = frozenset({chain.name}) if chain.builtin else reach[chain.name]
        for rule in chain.rules:
            checked = [(MATCHES, m) for m in rule.matches]
            if rule.target is not None and type(rule.target) not in (Jump, Goto):
                checked.append((TARGETS, rule.target))
            for registry, value in checked:
                spec = registry.get(value.NAME)
                if spec is None:
                    continue
                for message in _kernel_checks(spec, value, table.name, hooks, rule):
                    err(rule, message)
    return errors


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
