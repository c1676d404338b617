"""How iptables-nft stores tcp and udp matches, and so how iptables-nft-save prints them.

iptables-nft (1.8.x) does not hand ``-m tcp``/``-m udp`` to the kernel as xtables matches: it
translates them into native nf_tables expressions (payload loads and comparisons), and
iptables-nft-save rebuilds one tcp/udp match from *all* those expressions of the rule. So:

* several tcp (or udp) matches of one rule print as one, at the place of the first, each
  later port or flag test overriding the earlier (``--dport 1 -m tcp --dport 2`` saves as
  ``--dport 2``);
* a port test is stored as one comparison, chosen by the shape of the range, and read back
  by the comparison: ``! --dport 0:1023`` is stored as "greater than 1023" and saves as
  ``--dport 1024:65535``; ``! --sport 0:65535`` saves as no port test at all;
* a tcp match with ``--tcp-option`` stays an xtables match and prints on its own.

All of it was observed with iptables 1.8.9 on Linux 6.18 (see tests/test_nftnative.py);
iptables-legacy keeps the matches as written.

For the packet engine: the IR keeps what iptables-save prints, which is not always what the
kernel runs (seen with ``nft --debug=netlink``): ``! --sport 22 ! --dport 22`` is one 32-bit
"not equal" on both ports (matches unless both are equal; fixed in iptables 1.8.11), and
``--dport 3 -m udp ! --dport 0:1`` runs as two comparisons but prints as ``--dport 2:3``.
``! --sport 0:65535`` emits no test at all, so printing nothing is what the kernel runs.
"""
from __future__ import annotations

from dataclasses import replace

from .ext.tcp import Tcp
from .ext.udp import Udp

FULL = (0, 0xFFFF)


def _emit(lo: int, hi: int, inv: bool) -> tuple[str, int, int]:
    """The comparison iptables-nft emits for the port range lo:hi (negated when inv)."""
    if lo == hi:
        return ("neq" if inv else "eq", lo, lo)
    if lo == 0 and hi < 0xFFFF:
        return ("gt" if inv else "lte", hi, hi)
    if lo != 0 and hi == 0xFFFF:
        return ("lt" if inv else "gte", lo, lo)
    return ("range_neq" if inv else "range_eq", lo, hi)


def _apply(state: list, op: str, a: int, b: int) -> None:
    """Read one comparison back into [min, max, inverted] as iptables-nft-save does."""
    if op == "eq":
        state[0] = state[1] = a
    elif op == "neq":
        state[0] = state[1] = a
        state[2] = True
    elif op == "lte":
        state[1] = a
    elif op == "gt":
        state[0] = a + 1
    elif op == "gte":
        state[0] = a
    elif op == "lt":
        state[0] = a
        state[2] = True
    elif op == "range_eq":
        state[0], state[1] = a, b
    else:
        state[0], state[1] = a, b
        state[2] = True


def _is_native(m) -> bool:
    t = type(m)
    return (t is Tcp or t is Udp) and m.native


def _prints_something(m) -> bool:
    if m.sport != FULL or m.dport != FULL:
        return True
    return type(m) is Tcp and bool(m.flags_mask or m.flags_inv)


_NATIVE_TYPES = {Tcp, Udp}
_SINGLE: dict = {}


def merge_native(matches: tuple) -> tuple:
    """The match list as iptables-nft-save will print it."""
    types = [type(m) for m in matches]
    count = types.count(Tcp) + types.count(Udp)
    if not count:
        return matches
    if count == 1:
        # the common case: one tcp or udp match, read back on its own (memoised)
        i = types.index(Tcp) if Tcp in types else types.index(Udp)
        m = matches[i]
        if not m.native:
            return matches
        single = _SINGLE.get(m)
        if single is None:
            single = _SINGLE[m] = merge_native_slow((m,))
        if single == (m,):
            return matches
        return matches[:i] + single + matches[i + 1:]
    return merge_native_slow(matches)


def merge_native_slow(matches: tuple) -> tuple:
    out = []
    merged: dict[type, int] = {}
    for m in matches:
        if not _is_native(m):
            out.append(m)
            continue
        t = type(m)
        if t in merged:
            index = merged[t]
            out[index] = _merge(out[index], m)
        else:
            merged[t] = len(out)
            out.append(_merge(None, m))
    # a rebuilt match left with no test (e.g. from "! --sport 0:65535") is not printed
    drop = {i for i in merged.values() if not _prints_something(out[i])}
    return tuple(m for i, m in enumerate(out) if i not in drop)


def _merge(acc, m):
    """Replay m's comparisons over the state acc (None: nothing yet) and build the value."""
    if acc is None:
        sport, dport = [0, 0xFFFF, False], [0, 0xFFFF, False]
        flags = None
    else:
        sport = [*acc.sport, acc.sport_inv]
        dport = [*acc.dport, acc.dport_inv]
        flags = (acc.flags_mask, acc.flags_cmp, acc.flags_inv) if type(acc) is Tcp and \
            (acc.flags_mask or acc.flags_inv) else None
    if m.sport != FULL or m.sport_inv:
        _apply(sport, *_emit(*m.sport, m.sport_inv))
    if m.dport != FULL or m.dport_inv:
        _apply(dport, *_emit(*m.dport, m.dport_inv))
    fields = dict(sport=(sport[0], sport[1]), sport_inv=sport[2],
                  dport=(dport[0], dport[1]), dport_inv=dport[2])
    if type(m) is Tcp:
        if m.flags_mask or m.flags_inv:
            flags = (m.flags_mask, m.flags_cmp, m.flags_inv)
        if flags is not None:
            fields.update(flags_mask=flags[0], flags_cmp=flags[1], flags_inv=flags[2])
        return replace(Tcp(), **fields)
    return replace(Udp(), **fields)
