"""How iptables-nft stores tcp and udp matches, how iptables-nft-save prints them back, and
what the kernel runs for them.

iptables-nft (1.8.x) does not hand ``-m tcp``/``-m udp`` to the kernel as xtables matches when
they test something: it translates them into native nf_tables expressions (payload loads and
comparisons, see nfemu/ext/tcp.py nft_program), and iptables-nft-save rebuilds one tcp/udp
match from *all* those expressions of the rule (nft-ruleparse.c: nft_parse_transport,
nft_parse_transport_range, port_match_single_to_range, nft_parse_tcp_flags). So:

* several tcp (or udp) matches of one rule print as one, at the place of the first one that
  stored a test, each later port or flag test overriding the earlier (``--dport 1 -m tcp
  --dport 2`` saves as ``--dport 2``), except that a negation, once read, stays
  (``! --dport 1 -m tcp --dport 2`` saves as ``! --dport 2``);
* a port test is stored as one comparison, chosen by the shape of the range, and read back
  by the comparison: ``! --dport 0:1023`` is stored as "greater than 1023" and saves as
  ``--dport 1024:65535``; ``--dport 3 -m udp ! --dport 0:1`` (dport == 3, dport > 1) saves
  as ``--dport 2:3``;
* ``! --sport 0:65535`` and ``! --tcp-flags NONE NONE`` store nothing and print nothing;
* a tcp match with ``--tcp-option`` (or with no test at all) stays an xtables match and
  prints on its own.

What iptables-save prints is not always what the kernel runs: ``! --sport 22 ! --dport 23``
is one 32-bit "not equal" on both ports (the rule matches unless both are equal; fixed in
iptables 1.8.11), ``--dport 2:3`` above runs as two comparisons, merged matches AND all their
tests. So the printed value built here (the Tcp/Udp fields, what save prints and what other
code indexes on) carries in its ``nft`` field the list of comparisons iptables-nft stored for
the rule, and that list is what Tcp.match/Udp.match evaluate. Reading a save dump gives the
printed line, whose own stored comparisons are what the kernel runs after restoring that dump.

All of it was observed with iptables 1.8.9 on Linux 6.18 (``nft --debug=netlink list
ruleset`` and iptables-nft-save; tests/test_nftnative.py, tests/test_nftnative_eval.py,
tests/kernel/test_nftnative_vs_kernel.py); iptables-legacy keeps the matches as written.
"""
from __future__ import annotations

from dataclasses import replace

from .ext.tcp import Tcp, nft_program
from .ext.udp import Udp

_NATIVE_TYPES = (Tcp, Udp)
_SINGLE: dict = {}
_MAX_SINGLE = 100_000


def merge_native(matches: tuple) -> tuple:
    """The match list as iptables-nft-save will print it, each rebuilt tcp/udp match holding
    (``nft``) the comparisons the kernel runs for all the rule's native matches of its kind."""
    count = 0
    index = -1
    for i, m in enumerate(matches):
        t = type(m)
        if t is Tcp or t is Udp:
            count += 1
            index = i
    if not count:
        return matches
    if count == 1:
        # the common case: one tcp or udp match, read back on its own (memoised)
        m = matches[index]
        if not m.native:
            return matches
        single = _SINGLE.get(m)
        if single is None:
            single = merge_native_slow((m,))
            if len(_SINGLE) < _MAX_SINGLE:
                _SINGLE[m] = single
        return matches[:index] + single + matches[index + 1:]
    return merge_native_slow(matches)


class _ReadBack:
    """iptables-nft-save's rebuilding of one tcp or udp match from the rule's comparisons."""

    __slots__ = ("dport", "flags", "flags_inv", "index", "kind", "prog", "sport")

    def __init__(self, kind: type):
        self.kind = kind
        self.index = -1              # where in the printed match list (-1: nothing stored yet)
        self.sport = [0, 0xFFFF, False]
        self.dport = [0, 0xFFFF, False]
        self.flags = None            # (mask, cmp) of the last flags test read
        self.flags_inv = False
        self.prog: list = []

    def read(self, c) -> None:
        """One stored comparison C (nfemu/ext/tcp.py Cmp), as nft-ruleparse.c reads it."""
        self.prog.append(c)
        if c.field == "flags":
            # nft_parse_tcp_flags(): the negation only ever gets set
            self.flags = (c.mask, c.a)
            self.flags_inv = self.flags_inv or c.op == "neq"
        elif c.field == "ports":
            # the 32-bit compare: nft_parse_th_port(sport = data >> 16, dport = data & 0xffff)
            _read_port(self.sport, c.op, c.a >> 16, 0)
            _read_port(self.dport, c.op, c.a & 0xFFFF, 0)
        else:
            _read_port(self.sport if c.field == "sport" else self.dport, c.op, c.a, c.b)

    def value(self):
        fields = {"sport": (self.sport[0], self.sport[1]), "sport_inv": self.sport[2],
                  "dport": (self.dport[0], self.dport[1]), "dport_inv": self.dport[2],
                  "nft": tuple(self.prog)}
        if self.kind is Tcp:
            if self.flags is not None:
                fields.update(flags_mask=self.flags[0], flags_cmp=self.flags[1],
                              flags_inv=self.flags_inv)
            return replace(Tcp(), **fields)
        return replace(Udp(), **fields)


def _read_port(state: list, op: str, a: int, b: int) -> None:
    """port_match_single_to_range() (cmp) and nft_parse_{tcp,udp}_range() (range) of
    iptables 1.8.9 on [min, max, inverted]: a test sets the bound(s) it names, a "not"
    test sets the negation, nothing clears it."""
    if op == "eq" or op == "neq":
        state[0] = state[1] = a
    elif op == "lte":
        state[1] = a
    elif op == "gt":
        state[0] = min(a + 1, 0xFFFF)
    else:
        state[0], state[1] = a, b
    if op == "neq" or op == "range_neq":
        state[2] = True


def merge_native_slow(matches: tuple) -> tuple:
    """merge_native for any match list: every native tcp/udp match's comparisons (in rule
    order) read back into one printed match per kind, placed where the first of them that
    stored something was (a match that stores nothing leaves no trace)."""
    out: list = []
    readers: dict = {}
    for m in matches:
        t = type(m)
        if not ((t is Tcp or t is Udp) and m.native):
            out.append(m)
            continue
        prog = nft_program(m)
        if not prog:
            continue
        reader = readers.get(t)
        if reader is None:
            reader = readers[t] = _ReadBack(t)
        if reader.index < 0:
            reader.index = len(out)
            out.append(None)
        for c in prog:
            reader.read(c)
    for reader in readers.values():
        out[reader.index] = reader.value()
    return tuple(out)
