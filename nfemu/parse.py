"""Reading a ruleset: iptables-restore's line loop (iptables/xtables-restore.c) over the line
events of ``grammar.py``, the command parser of ``command.py`` for each rule line, and the
load-time checks of ``validate.py`` at every COMMIT."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from .command import Command, XT_EXTENSION_MAXNAMELEN, chain_name_problem, parse_command
from .errors import (LocatedError, LocatedWarning, Location, NfemuWarning, ParseError,
                     RulesetErrors, ValidationError)
from .fastpath import fast_rule
from .grammar import RuleLine, Word, fast_events, grammar_events
from .ir import no_cyclic_gc, BUILTIN_CHAINS, Chain, Counters, Family, Goto, Jump, Rule, Ruleset, Table

POLICIES = ("ACCEPT", "DROP")
# add_param_to_argv(): a word is at most 1023 bytes; an argv holds at most 254 entries
# (program name, -t, table and the words).
PARAM_BUFFER = 1024
MAX_ARGC = 255


@dataclass
class _ChainState:
    name: str
    policy: str | None
    counters: Counters = Counters()
    rules: list = field(default_factory=list)
    line: int = 0
    # iptables-nft creates a built-in chain in the kernel only once a ':' line, -P or a rule
    # command names it; user chains exist from their creation.
    created: bool = True


@dataclass
class _TableState:
    name: str
    line: int
    chains: dict[str, _ChainState] = field(default_factory=dict)
    renamed: set[str] = field(default_factory=set)
    pending_jumps: dict[str, int] = field(default_factory=dict)  # chain -> first jumping line
    # iptables-nft creates the table only when a chain line or a command names it: a
    # "*filter" followed by "COMMIT" leaves no table behind.
    touched: bool = False

    @classmethod
    def fresh(cls, name: str, line: int) -> "_TableState":
        table = cls(name, line)
        for chain in BUILTIN_CHAINS[name]:
            table.chains[chain] = _ChainState(chain, "ACCEPT", line=line, created=False)
        return table


class Loader:
    """Feeds line events through iptables-restore's state machine.

    ``counters`` is iptables-restore's ``-c``: honour ``[p:b]`` prefixes and chain counters.
    Errors are collected (every error of the file is reported); a failed line is skipped."""

    def __init__(self, file: str = "<string>", family: Family = Family.IPV4,
                 counters: bool = True, objects=None):
        from .validate import FRESH_NAMESPACE
        self.objects = FRESH_NAMESPACE if objects is None else objects
        self.file = file
        self.family = family
        self.counters = counters
        self.errors: list[LocatedError] = []
        self.warnings: list[LocatedWarning] = []
        self.committed: dict[str, Table] = {}
        self.current: _TableState | None = None
        self.last_line = 0

    def loc(self, line: int, column: int = 1) -> Location:
        return Location(self.file, line, column)

    def fail(self, message: str, line: int, column: int = 1, cls=ParseError) -> None:
        self.errors.append(cls(message, self.loc(line, column)))

    def warn(self, message: str, line: int, column: int = 1) -> None:
        """Something iptables accepts silently but a user would want to know."""
        self.warnings.append(LocatedWarning(message, self.loc(line, column)))

    def feed(self, events) -> None:
        for kind, line, payload in events:
            self.last_line = line
            try:
                getattr(self, "_" + kind)(line, payload)
            except LocatedError as exc:
                self.errors.append(exc)

    # -- line kinds ---------------------------------------------------------------------
    def _blank(self, line, payload):
        pass

    def _comment(self, line, payload):
        pass

    def _table(self, line, words: list[Word]):
        if self.current is not None:
            raise ParseError(f"COMMIT expected before a new table (table "
                             f"'{self.current.name}' opened at line {self.current.line})",
                             self.loc(line))
        if not words:
            raise ParseError("table name missing after '*'", self.loc(line, 2))
        name = words[0].text
        if name not in BUILTIN_CHAINS:
            hint = " (the line ends in a carriage return: iptables-restore does not accept " \
                   "CRLF line ends)" if name.endswith("\r") else ""
            raise ParseError(f"table name '{name.rstrip(chr(13))}' invalid{hint}; tables are "
                             + ", ".join(BUILTIN_CHAINS), self.loc(line, words[0].column))
        # Without --noflush, iptables-restore flushes the table it is about to fill.
        self.current = _TableState.fresh(name, line)

    def _chain(self, line, words: list[Word]):
        table = self._need_table(line, ":")
        if not words:
            raise ParseError("chain name invalid", self.loc(line, 2))
        name = words[0].text
        if len(name) >= XT_EXTENSION_MAXNAMELEN:
            raise ParseError(f"Invalid chain name `{name}' ({XT_EXTENSION_MAXNAMELEN - 1} chars "
                             "max)", self.loc(line, words[0].column))
        if len(words) < 2:
            raise ParseError("policy invalid: a chain line is ':NAME POLICY [packets:bytes]'",
                             self.loc(line, words[0].column + len(name)))
        policy = words[1]
        table.touched = True
        builtin = name in BUILTIN_CHAINS[table.name]
        if builtin:
            counters = Counters()
            if self.counters:
                ctrs = words[2] if len(words) > 2 else None
                counters = _parse_bracket_counters(ctrs.text) if ctrs else None
                if counters is None:
                    col = ctrs.column if ctrs else policy.column + len(policy.text)
                    raise ParseError(f"invalid policy counters for chain '{name}'",
                                     self.loc(line, col))
            if policy.text not in POLICIES and policy.text != "-":
                raise ValidationError(f"Can't set policy `{policy.text}' on `{name}': a "
                                      "built-in chain's policy is ACCEPT or DROP",
                                      self.loc(line, policy.column))
            chain = table.chains[name]
            chain.created = True
            if policy.text != "-":
                chain.policy = policy.text
            chain.counters = counters
            chain.line = line
        else:
            problem = chain_name_problem(name, declared=True)
            if problem:
                raise ParseError(problem, self.loc(line, words[0].column))
            # A user chain is created, or flushed when it exists; its policy word is ignored.
            if policy.text != "-":
                self.warn(f"a user-defined chain has no policy: iptables-restore ignores "
                          f"'{policy.text}' here", line, policy.column)
            table.pending_jumps.pop(name, None)
            if name in table.chains:
                table.chains[name].rules.clear()
            else:
                table.chains[name] = _ChainState(name, None, line=line)

    def _commit(self, line, text):
        table = self.current
        if table is None:
            raise ParseError("COMMIT outside a table (no '*table' line before it)",
                             self.loc(line))
        self.current = None
        from .validate import validate_table
        frozen = _freeze_table(table)
        errors = validate_table(frozen, self.file, self.objects)
        # A jump to a chain that did not exist when the rule was added fails the commit even
        # if the rule is gone by then (iptables-nft replays the batch in order).
        reported = {e.line for e in errors}
        for name, first in table.pending_jumps.items():
            if first not in reported:
                errors.append(ValidationError(
                    f"Chain '{name}' does not exist: line {first} jumps to it", self.loc(first)))
        if errors:
            self.errors.extend(errors)
            return
        if table.touched:
            self.committed[table.name] = frozen
        else:
            self.committed.pop(table.name, None)

    def _rule(self, line, payload: RuleLine):
        words = payload.words
        table = self._need_table(line, words[0] if words else "")
        if words and words[-1][-1:] == "\n":
            self.warn("a double quote is never closed: iptables-restore takes the rest of the "
                      "line and its newline into this value (iptables-save will print it with "
                      "the newline, which no restore can read back)",
                      line, payload.columns()[-1])
        prefix = None
        if payload.counters is not None:
            pcnt, colon, bcnt = payload.counters[1:-1].partition(":")
            if not colon:
                raise ParseError("Bad counters: need [packets:bytes]",
                                 self.loc(line, payload.counters_column))
            if self.counters:
                prefix = _counters_from_words(pcnt, bcnt, self.loc(line, payload.counters_column))
        # (a long line or a long word may be one iptables refuses: the full parser decides)
        if len(words) < 64 and max(map(len, words), default=0) < PARAM_BUFFER // 4:
            rule = fast_rule(words, table.name, self.family, line, prefix)
            if rule is not None:
                chain = table.chains.get(rule.chain)
                if chain is not None:
                    chain.rules.append(rule)
                    chain.created = table.touched = True
                    target = rule.target
                    if (type(target) is Jump or type(target) is Goto) and \
                            target.chain not in table.chains:
                        table.pending_jumps.setdefault(target.chain, line)
                    return
        self._apply(table, self._slow_parse(table, line, payload, prefix), line)

    def _slow_parse(self, table, line, payload: RuleLine, prefix) -> Command:
        words = payload.words
        columns = payload.columns()
        for w, col in zip(words, columns):
            if len(w) >= PARAM_BUFFER // 4 and \
                    len(w.encode("utf-8", "surrogateescape")) >= PARAM_BUFFER:
                raise ParseError(f"Parameter too long! (a word of {PARAM_BUFFER} bytes or "
                                 "more)", self.loc(line, col))
        if len(words) + 3 + (3 if prefix else 0) >= MAX_ARGC:
            raise ParseError(f"Parser cannot handle more arguments (at most {MAX_ARGC - 4} "
                             "words on a line)", self.loc(line, columns[MAX_ARGC - 4]))
        return parse_command(list(zip(words, columns)), table.name, self.family, self.file,
                             line, prefix)

    def _need_table(self, line: int, what: str) -> _TableState:
        if self.current is None:
            raise ParseError(f"'{what}' outside a table: a '*table' line (e.g. *filter) must "
                             "come first", self.loc(line))
        return self.current

    # -- commands -----------------------------------------------------------------------
    def _apply(self, table: _TableState, cmd: Command, line: int) -> None:
        table.touched = True
        op = cmd.op
        loc = cmd.loc

        def chain_of(name, builtin_ok=True):
            if name not in table.chains:
                raise ValidationError(f"Chain '{name}' does not exist", loc)
            c = table.chains[name]
            return c

        if op in "LS":
            if cmd.chain is not None:
                chain_of(cmd.chain)
            return  # listing commands print to stdout and change nothing
        if op == "R" or (op == "Z" and cmd.rulenum is not None):
            # iptables-nft 1.8.9 crashes (SIGSEGV) on these in restore input, so the load fails;
            # iptables-legacy-restore performs them.
            raise ValidationError(f"-{op} with a rule number in iptables-restore input crashes "
                                  "iptables-nft 1.8.9 (the load fails; iptables-legacy-restore "
                                  "accepts it)", loc)
        if op in "AIRDC":
            chain = chain_of(cmd.chain)
            chain.created = True
            rules = chain.rules
            if op in "AIR":
                for rule in cmd.rules:
                    target = rule.jump_chain
                    if target is not None and target not in table.chains:
                        table.pending_jumps.setdefault(target, rule.line)
            if op == "A":
                rules.extend(cmd.rules)
            elif op == "I":
                if cmd.rulenum > len(rules) + 1:
                    raise ValidationError("Index of insertion too big", loc)
                rules[cmd.rulenum - 1:cmd.rulenum - 1] = cmd.rules
            elif op == "R":
                if len(cmd.rules) != 1:
                    raise ValidationError("-R takes one rule (one source and one destination)",
                                          loc)
                if cmd.rulenum > len(rules):
                    raise ValidationError("Index of replacement too big", loc)
                rules[cmd.rulenum - 1] = cmd.rules[0]
            elif op == "C":
                for wanted in cmd.rules:
                    if not any(_same_rule(have, wanted) for have in rules):
                        raise ValidationError("Bad rule (does a matching rule exist in that "
                                              "chain?)", loc)
            elif op == "D":
                if cmd.rulenum is not None:
                    if cmd.rulenum > len(rules):
                        raise ValidationError("Index of deletion too big", loc)
                    del rules[cmd.rulenum - 1]
                else:
                    for wanted in cmd.rules:
                        for i, have in enumerate(rules):
                            if _same_rule(have, wanted):
                                del rules[i]
                                break
                        else:
                            raise ValidationError("Bad rule (does a matching rule exist in that "
                                                  "chain?)", loc)
        elif op == "N":
            if cmd.chain in table.chains:
                raise ValidationError("Chain already exists", loc)
            if cmd.chain in table.pending_jumps:
                first = table.pending_jumps.pop(cmd.chain)
                # iptables-nft adds the jump before the chain exists and the commit fails;
                # a ":NAME" line declares the chain early enough (seen on the kernel).
                raise ValidationError(f"Chain '{cmd.chain}' does not exist: line "
                                      f"{first} jumps to it before -N "
                                      "creates it (declare it with a ':' line, or move -N up)",
                                      loc)
            table.chains[cmd.chain] = _ChainState(cmd.chain, None, line=line)
        elif op == "X":
            # iptables-nft deletes built-in chains too: an empty one comes back with policy
            # ACCEPT and zero counters, one with rules stays ("Directory not empty" when named).
            if cmd.chain:
                chain = chain_of(cmd.chain)
                if chain.policy is not None:
                    if not chain.created:
                        raise ValidationError("-X of a built-in chain nothing has created yet: "
                                              "No chain/target/match by that name", loc)
                    if chain.rules:
                        raise ValidationError(f"-X {cmd.chain}: Directory not empty", loc)
                    chain.policy, chain.counters = "ACCEPT", Counters()
                    return
                names = [cmd.chain]
            else:
                for chain in table.chains.values():
                    if chain.policy is not None and chain.created and not chain.rules:
                        chain.policy, chain.counters = "ACCEPT", Counters()
                names = [c for c, s in table.chains.items() if s.policy is None]
            for name in names:
                chain = table.chains[name]
                if _referenced(table, name):
                    raise ValidationError(f"Chain '{name}' is referenced by a rule: cannot "
                                          "delete it (CHAIN_DEL failed: Device or resource "
                                          "busy)", loc)
                if chain.rules:
                    raise ValidationError(f"Chain '{name}' is not empty: flush it before "
                                          "deleting it (CHAIN_DEL failed: Device or resource "
                                          "busy)", loc)
            for name in names:
                del table.chains[name]
        elif op == "F":
            # A plain -F walks the chains the kernel already had; rules added earlier in the
            # same restore survive it (seen with iptables-nft 1.8.9). -F CHAIN flushes them.
            if cmd.chain:
                chain_of(cmd.chain).rules.clear()
        elif op == "Z":
            chains = [chain_of(cmd.chain)] if cmd.chain else list(table.chains.values())
            for chain in chains:
                if cmd.rulenum is not None:
                    if cmd.rulenum > len(chain.rules):
                        raise ValidationError("Index of counter zeroing too big", loc)
                    targets = [cmd.rulenum - 1]
                else:
                    targets = range(len(chain.rules))
                    chain.counters = Counters()
                if self.counters and len(targets):
                    raise ValidationError("-Z on rules in iptables-restore -c input fails with "
                                          "iptables-nft 1.8.9 (RULE_REPLACE failed: Invalid "
                                          "argument)", loc)
                for i in targets:
                    r = chain.rules[i]
                    chain.rules[i] = _with_counters(r, None)
        elif op == "P":
            chain = chain_of(cmd.chain)
            if chain.policy is None:
                raise ValidationError(f"Can't set policy on user-defined chain '{cmd.chain}'",
                                      loc)
            if cmd.policy not in POLICIES:
                raise ValidationError(f"Bad policy name `{cmd.policy}': a built-in chain's "
                                      "policy is ACCEPT or DROP", loc)
            chain.policy = cmd.policy
            chain.created = True
            if cmd.counters is not None and self.counters:
                chain.counters = cmd.counters
        elif op == "E":
            if cmd.chain in table.renamed:
                # iptables-nft 1.8.9 looks the old name up in the kernel's view, where a chain
                # renamed earlier in the same restore does not exist yet under its new name.
                raise ValidationError(f"Chain '{cmd.chain}' does not exist (it got this name "
                                      "from -E earlier in this restore)", loc)
            chain = chain_of(cmd.chain)
            # Into a fresh namespace every chain is created by this restore, and the kernel
            # cannot rename a chain of the same transaction (CHAIN_RENAME failed: No such file
            # or directory). The rename is still applied so later lines are checked sensibly.
            self.errors.append(ValidationError(
                f"-E {cmd.chain} {cmd.new_name}: iptables-nft cannot rename a chain created in "
                "the same restore (CHAIN_RENAME failed: No such file or directory)", loc))
            if chain.policy is not None:
                raise ValidationError("Cannot rename a built-in chain", loc)
            if cmd.new_name in table.chains:
                raise ValidationError("File exists: a chain with the new name exists", loc)
            new = {}
            for name, state in table.chains.items():
                if name == cmd.chain:
                    state.name = cmd.new_name
                    name = cmd.new_name
                state.rules[:] = [_renamed(r, cmd.chain, cmd.new_name) for r in state.rules]
                new[name] = state
            table.chains = new
            table.renamed.add(cmd.new_name)

    # -- the end ------------------------------------------------------------------------
    def finish(self) -> Ruleset:
        if self.current is not None:
            self.fail(f"COMMIT expected at line {self.last_line + 1} (table "
                      f"'{self.current.name}' opened at line {self.current.line} is never "
                      "committed; iptables-restore loads nothing of it)",
                      self.last_line + 1)
        tables = tuple(self.committed.values())
        return Ruleset(tables, self.family, self.file)


def _freeze_table(state: _TableState) -> Table:
    chains = []
    for c in state.chains.values():
        name = c.name
        rules = c.rules
        if any(r.chain != name for r in rules):  # after -E
            rules = [r if r.chain == name else _in_chain(r, name) for r in rules]
        chains.append(Chain(name, c.policy, c.counters, tuple(rules), c.line, c.created))
    return Table(state.name, tuple(chains))


def _in_chain(rule: Rule, chain: str) -> Rule:
    return replace(rule, chain=chain)


def _with_counters(rule: Rule, counters) -> Rule:
    return replace(rule, counters=counters)


def _renamed(rule: Rule, old: str, new: str) -> Rule:
    t = rule.target
    if type(t) in (Jump, Goto) and t.chain == old:
        rule = replace(rule, target=type(t)(new))
    if rule.chain == old:
        rule = replace(rule, chain=new)
    return rule


def _same_rule(a: Rule, b: Rule) -> bool:
    return replace(a, counters=None, chain=b.chain) == replace(b, counters=None)


def _referenced(table: _TableState, name: str) -> bool:
    return any(r.jump_chain == name for c in table.chains.values() for r in c.rules)


def _parse_bracket_counters(text: str) -> Counters | None:
    """parse_counters(): sscanf("[%llu:%llu]")."""
    import re
    m = re.match(r"\[\s*\+?([0-9]+):\s*\+?([0-9]+)\]", text)
    if not m:
        return None
    mask = 0xFFFFFFFFFFFFFFFF
    return Counters(int(m.group(1)) & mask, int(m.group(2)) & mask)


def _counters_from_words(pcnt: str, bcnt: str, loc: Location) -> Counters:
    import re
    p = re.match(r"\s*\+?([0-9]+)", pcnt)
    b = re.match(r"\s*\+?([0-9]+)", bcnt)
    if not p:
        raise ParseError("-c packet counter not numeric", loc)
    if not b:
        raise ParseError("-c byte counter not numeric", loc)
    mask = 0xFFFFFFFFFFFFFFFF
    return Counters(int(p.group(1)) & mask, int(b.group(1)) & mask)


# -- public API ---------------------------------------------------------------------------

def loads(text: str, file: str = "<string>", family: Family | None = None,
          counters: bool = False, engine: str = "fast", objects=None) -> Ruleset:
    """Read iptables-save/iptables-restore text into a Ruleset, checking it as a real load
    would. Raises ``RulesetErrors`` (a list of located errors) when the load would fail.

    ``counters=True`` behaves like ``iptables-restore -c`` (keep ``[p:b]``); ``engine`` picks
    the line reader: ``"fast"`` or ``"grammar"`` (the full LALR parse; same result).
    ``objects`` (:class:`nfemu.validate.Objects`) names the nfacct objects and ipsets that
    exist; by default none does, as in a fresh network namespace (``ALL_OBJECTS`` for a dump
    taken on a node, where they all existed)."""
    report = load_report(text, file, family, counters, engine, objects)
    if report.errors:
        raise RulesetErrors(report.errors)
    for w in report.warnings:
        warnings.warn(w.format(), NfemuWarning, stacklevel=2)
    return report.ruleset


@dataclass
class LoadReport:
    """What reading a text gave: the tables that loaded, the errors (a real load would fail
    on each), and warnings (iptables accepts the text, but silently does something odd)."""

    ruleset: Ruleset
    errors: list[LocatedError]
    warnings: list["LocatedWarning"]


def load_report(text: str, file: str = "<string>", family: Family | None = None,
                counters: bool = False, engine: str = "fast", objects=None) -> LoadReport:
    """Read a text and report every error and warning (``nfemu check`` prints this)."""
    if family is None:
        family = guess_family(text)
    loader = Loader(file, family, counters, objects)
    with no_cyclic_gc():
        try:
            events = grammar_events(text, file) if engine == "grammar" else fast_events(text, file)
            loader.feed(events)
            ruleset = loader.finish()
        except LocatedError as exc:
            loader.errors.append(exc)
            ruleset = Ruleset((), family, file)
    by_place = lambda e: (e.line, e.column)  # noqa: E731
    errors = sorted((_with_file(e, file) for e in loader.errors), key=by_place)
    warnings = sorted((_with_file(w, file) for w in loader.warnings), key=by_place)
    return LoadReport(ruleset, errors, warnings)


def load_with_errors(text: str, file: str = "<string>", family: Family | None = None,
                     counters: bool = False, engine: str = "fast"):
    """Like ``loads`` but return (ruleset of the tables that loaded, list of errors)."""
    report = load_report(text, file, family, counters, engine)
    return report.ruleset, report.errors


def _with_file(exc: LocatedError, file: str) -> LocatedError:
    if exc.location.file == "<string>" and file != "<string>":
        exc.location = Location(file, exc.location.line, exc.location.column)
    return exc


def load(path, family: Family | None = None, counters: bool = False,
         objects=None) -> Ruleset:
    """Read a file (``-`` for standard input) of iptables-save/iptables-restore text, as
    ``loads`` does. A file that loads without errors is kept in nfemu's load cache
    (nfemu/loadcache.py; ``NFEMU_NO_CACHE=1`` turns it off), so reading the same bytes again
    skips the parse."""
    report = load_report_file(path, family, counters, objects)
    if report.errors:
        raise RulesetErrors(report.errors)
    for w in report.warnings:
        warnings.warn(w.format(), NfemuWarning, stacklevel=2)
    return report.ruleset


def load_report_file(path, family: Family | None = None, counters: bool = False,
                     objects=None) -> LoadReport:
    """``load_report`` of a file (``-`` for standard input), through nfemu's load cache
    (nfemu/loadcache.py): the same ruleset, errors and warnings, the file named by ``path``
    in messages."""
    from .loadcache import read_report
    return read_report(path, family, counters, objects)


def read_text(path) -> tuple[str, str]:
    """The file's text (bytes that are not UTF-8 are kept as surrogate escapes, so nothing
    the user gave is lost) and the name to use in messages."""
    import sys
    if str(path) == "-":
        data = sys.stdin.buffer.read()
        name = "<stdin>"
    else:
        data = Path(path).read_bytes()
        name = str(path)
    return data.decode("utf-8", "surrogateescape"), name


def guess_family(text: str) -> Family:
    """ip6tables-save text says so in its header; otherwise IPv4."""
    for line in text[:4096].splitlines():
        if not line.startswith("#"):
            break
        if "ip6tables" in line:
            return Family.IPV6
    return Family.IPV4
