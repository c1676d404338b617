"""``-m connlimit``: the number of conntrack connections from (or to) the packet's address
group (extensions/libxt_connlimit.c revision 1; kernel net/netfilter/xt_connlimit.c).

Options: ``[!] --connlimit-upto N`` (matches with at most N connections), ``[!]
--connlimit-above N`` (more than N; ``!`` swaps the two), ``--connlimit-mask PLEN`` (a prefix
length or a contiguous network mask; anything else is all ones, the default), ``--connlimit-saddr`` (default) /
``--connlimit-daddr``. iptables-save always prints the limit, the mask as a prefix length
(count_bits: the length up to the highest zero bit) and the address selector.
No kernel restriction.

Evaluation (:meth:`Connlimit.match`): on a stateful node (``Node.send``, replay) the
connections are counted as nf_conncount counts them, against the node's conntrack table. In
the single-packet view (``trace``) the only connection known is the packet's own, so the
count is 1; there a rule that has already counted a connection of the same address group
raises NotEvaluable instead of guessing whether that one is still in the kernel's table.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Family, Match
from .base import ExtSpec, Given, RuleContext
from .u32 import not_evaluable
from .xthost import parse_plen, plen_mask
from .xtopt import XtOpt, parse_uint_opt, xt_fcheck, xt_opts, xt_parse


class ConnlimitFlag(enum.IntFlag):
    """XT_CONNLIMIT_* (include/uapi/linux/netfilter/xt_connlimit.h)."""

    INVERT = 1 << 0
    DADDR = 1 << 1


@dataclass(frozen=True, slots=True)
class Connlimit(Match):
    """xt_connlimit_info: matches when (count > limit) xor INVERT."""

    NAME = "connlimit"
    limit: int = 0
    mask: int = 0xFFFFFFFF
    flags: ConnlimitFlag = ConnlimitFlag(0)
    family: Family = Family.IPV4

    def match(self, pkt, ev) -> bool:
        """xt_connlimit.c connlimit_mt(): the key is the source (``--connlimit-daddr``: the
        destination) address under the mask, with the conntrack zone; nf_conncount keeps, per
        rule, the connections counted under each key, adds the packet's connection (its
        original tuple) when it is not there yet and drops those no longer in the conntrack
        table; the match is ``(count > limit) ^ INVERT`` (``--connlimit-upto`` sets INVERT).

        The simplification, explicit: nfemu evaluates one packet with one connection (its
        own) and no conntrack table, so the count is 1 (``--connlimit-above N`` matches only
        for N = 0, ``--connlimit-upto N`` always for N >= 1). That holds for the first packet
        the rule counts under a key. The rule remembers the keys it has counted
        (``ev.state.limit[("connlimit",) + ev.state_key]``); at a second packet under the
        same key the kernel's count depends on the earlier connections' life in the
        conntrack table (timeouts, confirmation, teardown) and, for a second packet of the
        same connection, on the kernel version (nf_conncount's same-jiffy shortcut could
        count a connection twice until the 2025 fix that skips confirmed connections):
        NotEvaluable rather than a guess."""
        width = 32 if pkt.family == 4 else 128
        addr = pkt.dst if self.flags & ConnlimitFlag.DADDR else pkt.src
        ct = ev.ct
        zone = ct.zone if ct is not None else 0
        key = (addr & self.mask & ((1 << width) - 1), zone)
        table = ev.conntrack
        if table is not None:
            count = conncount(table, ev, key, pkt)
            if count is None:
                ev.hotdrop = True           # no tuple: xt_connlimit hotdrops
                return False
            return (count > self.limit) != bool(self.flags & ConnlimitFlag.INVERT)
        counted = ev.state.limit.setdefault(("connlimit",) + ev.state_key, set())
        if key in counted:
            raise not_evaluable(
                "-m connlimit: this rule has counted a connection of the same address group "
                "before; whether it still counts depends on the kernel's conntrack table, "
                "which nfemu's single-packet view does not hold "
                f"({ev.table} {ev.chain} rule {ev.rule})")
        counted.add(key)
        count = 1
        return (count > self.limit) != bool(self.flags & ConnlimitFlag.INVERT)

    def save(self) -> str:
        width = self.family.width
        inverse = ~self.mask & ((1 << width) - 1)
        bits = width - inverse.bit_length()
        which = "upto" if self.flags & ConnlimitFlag.INVERT else "above"
        addr = "daddr" if self.flags & ConnlimitFlag.DADDR else "saddr"
        return f" --connlimit-{which} {self.limit} --connlimit-mask {bits} --connlimit-{addr}"



_GC_MAX_NODES = 8                 # CONNCOUNT_GC_MAX_NODES
_CLOSED = ("TIME_WAIT", "CLOSE")


def conncount(table, ev, key, pkt) -> int | None:
    """nf_conncount_count() -> __nf_conncount_add() for one rule's list under KEY: the
    connection's original tuple (the packet's own when it has no entry) is added unless
    the list holds it already; on the way, saved connections no longer in the conntrack
    table, or closed (TCP TIME_WAIT or CLOSE), are dropped (at most 8 collected per
    packet). Returns the count, or None when the packet has no tuple. One CPU is assumed:
    a saved connection not found in the table is always evicted (the kernel keeps one
    added by another CPU less than two jiffies ago, which may be still unconfirmed)."""
    from ..conntrack import packet_tuple   # late: conntrack imports the engine
    ct = ev.ct
    if ct is not None and not ct.untracked and hasattr(ct, "orig_tuple"):
        own = ct.orig_tuple
        zone = ct.zone
    else:
        own = packet_tuple(pkt)
        zone = 0
        if own is None:
            return None
    lists = ev.state.limit.setdefault(("connlimit",) + ev.state_key, {})
    saved = lists.get(key)
    if saved is None:
        lists[key] = [(own, zone)]
        return 1
    collect = 0
    for item in list(saved):
        if collect > _GC_MAX_NODES:
            break
        tuple_, tzone = item
        found, _ = table.find(tuple_, tzone, ev.now)
        if found is None:
            saved.remove(item)
            collect += 1
            continue
        if tuple_ == own and tzone == zone:
            return len(saved)                 # seen before: not added again
        if found.proto == 6 and found.tcp_state.name in _CLOSED:
            saved.remove(item)
            collect += 1
    saved.append((own, zone))
    return len(saved)


O_UPTO, O_ABOVE, O_MASK, O_SADDR, O_DADDR = range(5)
OPTIONS = (
    XtOpt("connlimit-upto", O_UPTO, invert=True, excl=frozenset({O_ABOVE})),
    XtOpt("connlimit-above", O_ABOVE, invert=True, excl=frozenset({O_UPTO})),
    XtOpt("connlimit-mask", O_MASK),
    XtOpt("connlimit-saddr", O_SADDR, 0, excl=frozenset({O_DADDR})),
    XtOpt("connlimit-daddr", O_DADDR, 0, excl=frozenset({O_SADDR})),
)


def build(given: list[Given], ctx: RuleContext) -> Connlimit:
    seen: dict[int, Given] = {}
    width = ctx.family.width
    limit = 0
    mask = (1 << width) - 1
    flags = ConnlimitFlag(0)
    for g in given:
        e = xt_parse("connlimit", OPTIONS, g, seen)
        if e.id in (O_UPTO, O_ABOVE):
            limit = parse_uint_opt(g, "connlimit")
            if (e.id == O_UPTO) != g.inv:
                flags |= ConnlimitFlag.INVERT
        elif e.id == O_MASK:
            mask = plen_mask(parse_plen(g.arg, ctx.family, g, "connlimit"), width)
        elif e.id == O_SADDR:
            flags &= ~ConnlimitFlag.DADDR
        else:
            flags |= ConnlimitFlag.DADDR
    xt_fcheck("connlimit", OPTIONS, seen, ctx)
    if O_UPTO not in seen and O_ABOVE not in seen:
        raise ParseError("You must specify \"--connlimit-above\" or \"--connlimit-upto\".",
                         ctx.loc)
    return Connlimit(limit, mask, flags, ctx.family)


SPEC = ExtSpec("connlimit", "match", xt_opts(OPTIONS), build)
