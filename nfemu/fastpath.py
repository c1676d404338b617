"""A fast parser for the common shape of rule line: what iptables-save prints.

``-A CHAIN`` followed by generic options (``-s -d -p -i -o``, each at most once, ``!``
before them), ``-m NAME`` with that extension's options spelled exactly, and ``-j`` / ``-g``.
Anything else (abbreviations, ``--opt=value``, the implicit protocol match, an option of an
earlier extension, errors of any kind) returns None and the full getopt-like parser in
``command.py`` handles the line. Where this parser answers, it builds exactly what the full
parser builds (tests/test_fastpath.py checks that on the corpus and on generated lines).

Extension values are memoised: the same options in the same context always build the same
frozen value, so kube-proxy's thousands of ``-m tcp --dport 80`` share one object.
"""
from __future__ import annotations

from . import protocols
from .command import (CORE_LONG, IPT_TARGET_NAMES, Command, _parse_address)
from .errors import LocatedError, Location
from .ext import MATCHES, TARGETS
from .ext.base import Given, RuleContext
from .nftnative import merge_native
from .ir import Address, Family, Goto, Jump, Rule, STANDARD_VERDICTS, Verdict
from .loadcache import constructor

# Rule(...) without the frozen dataclass's __init__ (one object.__setattr__ call per field):
# the same object, built in a third of the time (170,000 rules in a kube-proxy dump)
_new_rule = constructor(Rule)

_CORE_NAMES = frozenset(name for name, _, _ in CORE_LONG)
_NOWHERE = Location()
_BUILT: dict = {}
_ADDRESSES: dict = {}
_JUMPS: dict = {}
_OPTIONS: dict = {}   # spec name -> {option name: nargs}
_PROTOS: dict = {}
_MAX_MEMO = 200_000


def _options(spec) -> dict[str, int]:
    opts = _OPTIONS.get(spec.name)
    if opts is None:
        opts = _OPTIONS[spec.name] = {o.name: o.nargs for o in spec.options}
    return opts


_MATCH_INFO = {name: (spec, {o.name: o.nargs for o in spec.options})
               for name, spec in MATCHES.items()}


def _address(text: str, family: Family) -> Address | None:
    key = (text, family)
    addr = _ADDRESSES.get(key)
    if addr is None:
        if "," in text:
            return None
        addr = _parse_address(text, family)
        if not isinstance(addr, Address):
            return None
        if len(_ADDRESSES) < _MAX_MEMO:
            _ADDRESSES[key] = addr
    return addr


def _build(spec, options: list, table: str, family: Family, proto: int, proto_inv: bool,
           proto_given: bool):
    """spec.build() for options given as (name, inverted, args) tuples, memoised."""
    key = (spec.name, tuple(options), table, family, proto, proto_inv, proto_given)
    value = _BUILT.get(key)
    if value is None:
        ctx = RuleContext(family, table, proto, proto_inv, _NOWHERE, proto_given)
        value = spec.build([Given(name, inv, args, _NOWHERE) for name, inv, args in options], ctx)
        if len(_BUILT) < _MAX_MEMO:
            _BUILT[key] = value
    return value


def fast_parse(words: list[str], table: str, family: Family, line: int, counters) -> Command | None:
    """The Command for an ``-A`` line of the common shape, or None."""
    rule = fast_rule(words, table, family, line, counters)
    return None if rule is None else Command("A", chain=rule.chain, rules=[rule])


def fast_rule(words: list[str], table: str, family: Family, line: int, counters) -> Rule | None:
    """The Rule of an ``-A`` line of the common shape, or None."""
    n = len(words)
    if n < 2 or words[0] != "-A":
        return None
    chain = words[1]
    src = dst = None
    src_inv = dst_inv = in_inv = out_inv = proto_inv = False
    in_iface = out_iface = ""
    proto = 0
    proto_given = False
    seen = 0           # bit per generic option
    loaded = []        # [spec, given list, proto, proto_inv, proto_given] per extension
    names = set()
    opts = None
    current = None
    target = None
    jumpto = None
    goto = False
    inv = False
    i = 2
    while i < n:
        w = words[i]
        if w[:2] == "--":
            name = w[2:]
            if opts is None or name in _CORE_NAMES:
                return None
            nargs = opts.get(name)
            if nargs is None or i + nargs >= n:
                return None
            if nargs == 1:
                args = (words[i + 1],)
            else:
                args = tuple(words[i + 1:i + 1 + nargs])
                if nargs == 2 and args[1][:1] in ("-", "!"):
                    return None
            current[1].append((name, inv, args))
            inv = False
            i += 1 + nargs
            continue
        if w == "!":
            if inv:
                return None
            inv = True
            i += 1
            continue
        if i + 1 >= n:
            return None
        arg = words[i + 1]
        if w == "-m":
            info = _MATCH_INFO.get(arg)
            if inv or info is None:
                return None
            spec, opts = info
            if spec.name in names or family not in spec.families:
                return None
            names.add(spec.name)
            current = [spec, [], proto, proto_inv, proto_given]
            loaded.append(current)
        elif w == "-s" or w == "-d":
            bit = 1 if w == "-s" else 2
            if seen & bit:
                return None
            seen |= bit
            addr = _address(arg, family)
            if addr is None or (inv and addr.mask == 0):
                return None
            if bit == 1:
                src, src_inv = addr, inv
            else:
                dst, dst_inv = addr, inv
        elif w == "-p":
            if seen & 4:
                return None
            seen |= 4
            proto = _PROTOS.get(arg)
            if proto is None:
                proto = protocols.parse_protocol(arg) if arg.lower() == arg else None
                if proto is None:
                    return None
                _PROTOS[arg] = proto
            if proto == 0 and inv:
                return None
            proto_inv = inv
            proto_given = True
            for ext in (*loaded, target):  # as in command.py: extensions without options yet
                if ext is not None and not ext[1]:
                    ext[2], ext[3], ext[4] = proto, proto_inv, True
        elif w == "-i" or w == "-o":
            bit = 8 if w == "-i" else 16
            if seen & bit or len(arg) > 15:
                return None
            seen |= bit
            if bit == 8:
                in_iface, in_inv = arg, inv
            else:
                out_iface, out_inv = arg, inv
        elif w == "-j" or w == "-g":
            if seen & 32 or inv or not arg or len(arg) >= 29 or (
                    (arg, w == "-g") not in _JUMPS and arg.split() != [arg]):
                return None
            seen |= 32
            goto = w == "-g"
            jumpto = arg
            spec = None if goto else TARGETS.get(arg)
            if spec is not None:
                if family not in spec.families:
                    return None
                current = target = [spec, [], proto, proto_inv, proto_given]
                opts = _options(spec)
            elif not goto and arg in IPT_TARGET_NAMES and arg not in STANDARD_VERDICTS:
                return None
        else:
            return None
        inv = False
        i += 2
    if inv or (jumpto == "DROP" and table == "nat"):
        return None
    if (seen & 16 and chain in ("PREROUTING", "INPUT")) or \
            (seen & 8 and chain in ("POSTROUTING", "OUTPUT")):
        return None
    try:
        built = tuple(_build(spec, given, table, family, p, pinv, pgiven)
                      for spec, given, p, pinv, pgiven in loaded)
        matches = merge_native(built)
        if len(matches) != len(built):
            return None     # merged or vanished tcp/udp matches: the full path checks them
        if target is not None:
            value = _build(target[0], target[1], table, family, target[2], target[3], target[4])
        elif jumpto is None:
            value = None
        else:
            key = (jumpto, goto)
            value = _JUMPS.get(key)
            if value is None:
                if goto:
                    value = Goto(jumpto)
                elif jumpto in STANDARD_VERDICTS:
                    value = Verdict(jumpto)
                else:
                    value = Jump(jumpto)
                if len(_JUMPS) < _MAX_MEMO:
                    _JUMPS[key] = value
    except LocatedError:
        return None
    return _new_rule(chain, src, src_inv, dst, dst_inv, in_iface, in_inv, out_iface, out_inv,
                     proto, proto_inv, None, matches, value, counters, family, line)
