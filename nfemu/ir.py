"""The intermediate representation: what a ruleset *means*, not how it was written.

Ruleset > Table > Chain > Rule, all frozen dataclasses with typed values: addresses and masks
as ints, protocols as numbers, states as enums. Each match and target is a frozen dataclass
defined by its extension module in ``nfemu/ext/``; it knows how iptables-save prints it
(``save()``), so ``Ruleset.save()`` produces exactly what iptables-save (1.8.x, nf_tables)
prints after loading the same input.
"""
from __future__ import annotations

import contextlib
import enum
import gc
from dataclasses import dataclass, field
from typing import ClassVar

from . import protocols
from .util import int_to_ipv4, int_to_ipv6, mask_to_prefix


@contextlib.contextmanager
def no_cyclic_gc():
    """Pause the cyclic garbage collector: loading and saving a big ruleset make millions of
    small acyclic objects, and each collection would walk all of them again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Family(enum.IntEnum):
    IPV4 = 4
    IPV6 = 6

    @property
    def width(self) -> int:
        return 32 if self is Family.IPV4 else 128


# Built-in chains of each table in hook order (NF_INET_PRE_ROUTING, LOCAL_IN, FORWARD,
# LOCAL_OUT, POST_ROUTING), as iptables-nft creates and prints them.
BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
STANDARD_VERDICTS = ("ACCEPT", "DROP", "RETURN")


@dataclass(frozen=True, slots=True)
class Counters:
    packets: int = 0
    bytes: int = 0

    def save(self) -> str:
        return f"[{self.packets}:{self.bytes}]"


@dataclass(frozen=True, slots=True)
class Address:
    """An address with its mask, already masked (iptables stores addr & mask)."""

    addr: int
    mask: int
    family: Family = Family.IPV4

    def save(self) -> str:
        """save_ipv4_addr()/save_ipv6_addr(): ``A.B.C.D/len``, or a dotted mask when the
        mask is not contiguous."""
        width = self.family.width
        to_text = int_to_ipv4 if self.family is Family.IPV4 else int_to_ipv6
        prefix = mask_to_prefix(self.mask, width)
        suffix = str(prefix) if prefix is not None else to_text(self.mask)
        return f"{to_text(self.addr)}/{suffix}"

    def contains(self, addr: int) -> bool:
        return (addr & self.mask) == self.addr


class Extension:
    """Base of every match and target value. Subclasses are frozen dataclasses."""

    NAME: ClassVar[str] = ""
    #: name printed after -m / -j (an alias such as ``state`` may print as itself)
    def save_name(self) -> str:
        return self.NAME

    def save(self) -> str:
        """The option text iptables-save prints after ``-m NAME`` / ``-j NAME``,
        each option preceded by a space; empty when the extension has no options."""
        return ""


class Match(Extension):
    pass


class Target(Extension):
    #: True when the target ends the rule traversal (a verdict), False for XT_CONTINUE targets
    TERMINAL: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Verdict(Target):
    """ACCEPT, DROP or RETURN (the standard target with a verdict)."""

    verdict: str = "ACCEPT"

    def save_name(self) -> str:
        return self.verdict


@dataclass(frozen=True, slots=True)
class Jump(Target):
    """``-j CHAIN``: push a return point and continue in CHAIN."""

    chain: str = ""

    def save_name(self) -> str:
        return self.chain


@dataclass(frozen=True, slots=True)
class Goto(Target):
    """``-g CHAIN``: continue in CHAIN without a return point."""

    chain: str = ""

    def save_name(self) -> str:
        return self.chain


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: the generic IP header tests, the matches in load order, the target."""

    chain: str
    src: Address | None = None
    src_inv: bool = False
    dst: Address | None = None
    dst_inv: bool = False
    in_iface: str = ""
    in_inv: bool = False
    out_iface: str = ""
    out_inv: bool = False
    proto: int = 0
    proto_inv: bool = False
    fragment: bool | None = None  # None: any; True: -f (non-first fragments); False: ! -f
    matches: tuple[Match, ...] = ()
    target: Target | None = None
    counters: Counters | None = None
    family: Family = Family.IPV4
    line: int = field(default=0, compare=False)

    @property
    def jump_chain(self) -> str | None:
        """The user chain this rule continues in (``-j CHAIN`` or ``-g CHAIN``), if any."""
        t = self.target
        if type(t) is Jump or type(t) is Goto:
            return t.chain
        return None

    def save(self, counters: bool = False) -> str:
        """The rule line as iptables-save prints it (``nft_rule_print_save``/``save_rule``)."""
        out = []
        if counters:
            out.append((self.counters or Counters()).save() + " ")
        out.append(f"-A {self.chain}")
        _save_addr(out, "s", self.src, self.src_inv)
        _save_addr(out, "d", self.dst, self.dst_inv)
        _save_iface(out, "i", self.in_iface, self.in_inv)
        _save_iface(out, "o", self.out_iface, self.out_inv)
        if self.proto or self.proto_inv:
            out.append(f"{' !' if self.proto_inv else ''} -p {protocols.protocol_name(self.proto)}")
        if self.fragment is not None:
            out.append(" -f" if self.fragment else " ! -f")
        for m in self.matches:
            out.append(_saved(m, " -m "))
        t = self.target
        if t is not None:
            out.append(_saved(t, " -g " if type(t) is Goto else " -j "))
        return "".join(out)


_SAVED: dict = {}


def _saved(value: "Extension", flag: str) -> str:
    """`` -m NAME OPTIONS`` / `` -j NAME OPTIONS``; values are immutable and often shared,
    so their text is kept."""
    key = (value, flag)
    try:
        return _SAVED[key]
    except KeyError:
        text = f"{flag}{value.save_name()}{value.save()}"
        if len(_SAVED) < 500_000:
            _SAVED[key] = text
        return text
    except TypeError:  # an unhashable value (should not happen: IR values are frozen)
        return f"{flag}{value.save_name()}{value.save()}"


def _save_addr(out: list[str], letter: str, addr: Address | None, inv: bool) -> None:
    if addr is None:
        return
    if not addr.mask and not inv and not addr.addr:
        return
    text = _ADDR_TEXT.get(addr)
    if text is None:
        text = addr.save()
        if len(_ADDR_TEXT) < 500_000:
            _ADDR_TEXT[addr] = text
    out.append(f"{' !' if inv else ''} -{letter} {text}")


_ADDR_TEXT: dict = {}


def _save_iface(out: list[str], letter: str, iface: str, inv: bool) -> None:
    if iface and (iface != "+" or inv):
        out.append(f"{' !' if inv else ''} -{letter} {iface}")


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    policy: str | None = None  # ACCEPT/DROP for built-in chains, None for user chains
    counters: Counters = Counters()
    rules: tuple[Rule, ...] = ()
    line: int = field(default=0, compare=False)
    # iptables-nft registers a built-in chain with its hook only once a ':' line, -P or a rule
    # names it; iptables-save prints it all the same, but no packet passes through it.
    declared: bool = True

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    chains: tuple[Chain, ...] = ()

    def chain(self, name: str) -> Chain:
        for c in self.chains:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def chain_map(self) -> dict[str, Chain]:
        return {c.name: c for c in self.chains}

    def ordered_chains(self) -> list[Chain]:
        """Built-in chains in hook order, then user chains sorted by strcmp."""
        builtin_order = BUILTIN_CHAINS.get(self.name, HOOKS)
        builtins = sorted((c for c in self.chains if c.builtin),
                          key=lambda c: builtin_order.index(c.name) if c.name in builtin_order else 99)
        users = sorted((c for c in self.chains if not c.builtin),
                       key=lambda c: c.name.encode("utf-8", "surrogateescape"))
        return builtins + users

    def save(self, counters: bool = False) -> str:
        lines = [f"*{self.name}"]
        chains = self.ordered_chains()
        for c in chains:
            lines.append(f":{c.name} {c.policy or '-'} {c.counters.save()}")
        for c in chains:
            lines.extend(r.save(counters) for r in c.rules)
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"


# The order in which iptables-nft-save prints tables (enum nft_table_type in iptables nft.h).
TABLE_SAVE_ORDER = ("mangle", "security", "raw", "filter", "nat")


@dataclass(frozen=True, slots=True)
class Ruleset:
    tables: tuple[Table, ...] = ()
    family: Family = Family.IPV4
    source: str = field(default="<string>", compare=False)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def save(self, counters: bool = False, header: bool = True) -> str:
        """The whole ruleset in canonical iptables-save form."""
        with no_cyclic_gc():
            return self._save(counters, header)

    def _save(self, counters: bool, header: bool) -> str:
        order = {n: i for i, n in enumerate(TABLE_SAVE_ORDER)}
        tables = sorted(self.tables, key=lambda t: order.get(t.name, 99))
        prog = "iptables-save" if self.family is Family.IPV4 else "ip6tables-save"
        parts = []
        for t in tables:
            if header:
                parts.append(f"# Generated by nfemu ({prog} v1.8.9 nf_tables form)\n")
            parts.append(t.save(counters))
            if header:
                parts.append("# Completed\n")
        return "".join(parts)
