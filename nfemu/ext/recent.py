"""``-m recent`` (extensions/libxt_recent.c revision 1; kernel net/netfilter/xt_recent.c
recent_mt / recent_mt_check).

One of ``[!] --set|--rcheck|--update|--remove``, with ``--seconds N``, ``--reap`` (needs
--seconds), ``--hitcount N``, ``--rttl``, ``--name NAME`` (default DEFAULT), ``--mask ADDR``
(default all ones), ``--rsource`` (default) or ``--rdest`` (the last one given wins).
iptables-save prints every field: ``--rcheck --seconds 10800 --reap --name X --mask
255.255.255.255 --rsource`` (seconds and hitcount with %d, only when not 0; the name bare).
The kernel refuses --seconds/--hitcount/--reap with --set or --remove, --hitcount above
65535 (XT_RECENT_MAX_NSTAMPS - 1), and names that are empty, ``.``, ``..`` or contain ``/``;
iptables cuts a longer name to 199 bytes without a word."""
from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from ..cnum import strtoui_all
from ..errors import ParseError
from ..ir import Family, Match
from ..util import int_to_ipv4, int_to_ipv6
from .base import ExtSpec, Given, RuleContext
from .xthost import parse_host
from .xtopt import XtOpt, xt_fcheck, xt_opts, xt_parse

XT_RECENT_NAME_LEN = 200
XT_RECENT_MAX_NSTAMPS = 1 << 16


class Command(enum.IntEnum):
    """XT_RECENT_CHECK/SET/UPDATE/REMOVE."""
    RCHECK = 1 << 0
    SET = 1 << 1
    UPDATE = 1 << 2
    REMOVE = 1 << 3


class Side(enum.IntEnum):
    SOURCE = 0
    DEST = 1


@dataclass(frozen=True, slots=True)
class Recent(Match):
    NAME = "recent"
    family: Family = Family.IPV4
    command: Command = Command.SET
    invert: bool = False
    seconds: int = 0
    reap: bool = False
    hitcount: int = 0
    rttl: bool = False
    name: str = "DEFAULT"
    mask: int = 0xFFFFFFFF
    side: Side = Side.SOURCE

    def match(self, pkt, ev) -> bool:
        """xt_recent.c recent_mt() (with the 2020 fix: --reap never removes the entry this
        --update is about to refresh).

        Tables live in ``ev.state.recent[name]`` (a :class:`RecentTable`), shared by every
        rule with that name. The kernel creates a table when the first rule naming it is
        loaded, with that rule's --mask; a Node makes them so when it is created
        (:func:`recent_tables`); a table missing there is made by the first rule evaluated.
        At most ip_list_tot = 100 entries; a new entry evicts the least recently set or
        updated one. Time stamps are jiffies at HZ = 250 (Debian/Ubuntu kernels; Fedora and
        RHEL use 1000), ``floor(ev.now * 250)``: --seconds compares whole ticks, as the
        kernel does (``time_after(jiffies - seconds * HZ, stamp)``). The TTL seen is the
        packet's plus one in FORWARD/POSTROUTING for packets without a local socket
        ("use TTL as seen before forwarding")."""
        table = ev.state.recent.get(self.name)
        nmask = _nstamps_mask(self.hitcount)
        if table is None:
            table = ev.state.recent[self.name] = RecentTable(self.mask, nmask)
        elif nmask > table.nstamps_mask:
            # the kernel flushes the table when such a rule is loaded; rules are loaded
            # before any packet, so only the larger stamp arrays matter here
            table.nstamps_mask = nmask
            for e in table.entries.values():
                e.stamps.extend([0] * (nmask + 1 - len(e.stamps)))
        jiffies = math.floor(ev.now * HZ)
        addr = pkt.dst if self.side is Side.DEST else pkt.src
        ttl = pkt.ttl
        if pkt.oif and not ev.local:
            ttl = (ttl + 1) & 0xFF
        key = (pkt.family, addr & table.mask)
        ret = self.invert
        cmd = self.command
        e = table.entries.get(key)
        if e is not None and self.rttl and not (ttl == e.ttl or ttl == 0 or e.ttl == 0):
            e = None
        if e is None:
            if cmd is not Command.SET:
                return ret
            if len(table.entries) >= IP_LIST_TOT:
                del table.entries[next(iter(table.entries))]     # the LRU head
            if key in table.entries:    # cannot happen (--set looks up without TTL)
                del table.entries[key]
            stamps = [0] * (table.nstamps_mask + 1)
            stamps[0] = jiffies
            table.entries[key] = RecentEntry(ttl, stamps, 1, 1)
            return not ret
        if cmd is Command.SET:
            ret = not ret
        elif cmd is Command.REMOVE:
            del table.entries[key]
            return not ret
        else:                                   # RCHECK or UPDATE
            time = jiffies - self.seconds * HZ
            hits = 0
            for i in range(e.nstamps):
                if self.seconds and time > e.stamps[i]:          # time_after(time, stamp)
                    continue
                hits += 1
                if not self.hitcount or hits >= self.hitcount:
                    ret = not ret
                    break
            if self.reap:
                head_key = next(iter(table.entries))
                head = table.entries[head_key]
                if not (head is e and cmd is Command.UPDATE and ret):
                    if time > head.stamps[head.index - 1]:
                        del table.entries[head_key]
        if cmd is Command.SET or (cmd is Command.UPDATE and ret):
            if key in table.entries:            # recent_entry_update()
                e.index &= table.nstamps_mask
                e.stamps[e.index] = jiffies
                e.index += 1
                e.nstamps = max(e.nstamps, e.index)
                table.entries.move_to_end(key)
            e.ttl = ttl
        return ret

    def save(self) -> str:
        out = [f"{' !' if self.invert else ''} --{self.command.name.lower()}"]
        if self.seconds:
            out.append(f" --seconds {_as_int(self.seconds)}")
        if self.reap:
            out.append(" --reap")
        if self.hitcount:
            out.append(f" --hitcount {_as_int(self.hitcount)}")
        if self.rttl:
            out.append(" --rttl")
        out.append(f" --name {self.name}")
        to_text = int_to_ipv4 if self.family is Family.IPV4 else int_to_ipv6
        out.append(f" --mask {to_text(self.mask)}")
        out.append(" --rsource" if self.side is Side.SOURCE else " --rdest")
        return "".join(out)


def _as_int(value: int) -> int:
    """printf("%d") of a u32."""
    return value - (1 << 32) if value >= 1 << 31 else value


_OPS = frozenset({0, 1, 2, 3})
OPTIONS = (
    XtOpt("set", 0, nargs=0, invert=True, excl=_OPS),
    XtOpt("rcheck", 1, nargs=0, invert=True, excl=_OPS),
    XtOpt("update", 2, nargs=0, invert=True, excl=_OPS),
    XtOpt("remove", 3, nargs=0, invert=True, excl=_OPS),
    XtOpt("seconds", 4),
    XtOpt("reap", 5, nargs=0, also=frozenset({4})),
    XtOpt("hitcount", 6),
    XtOpt("rttl", 7, nargs=0, excl=frozenset({0, 3})),
    XtOpt("name", 8),
    XtOpt("rsource", 9, nargs=0),
    XtOpt("rdest", 10, nargs=0),
    XtOpt("mask", 11),
)
_COMMANDS = {"set": Command.SET, "rcheck": Command.RCHECK, "update": Command.UPDATE,
             "remove": Command.REMOVE}


def build(given: list[Given], ctx: RuleContext) -> Recent:
    seen: dict[int, Given] = {}
    f: dict = {"family": ctx.family, "mask": (1 << ctx.family.width) - 1}
    for g in given:
        xt_parse("recent", OPTIONS, g, seen)
        if g.name in _COMMANDS:
            f["command"], f["invert"] = _COMMANDS[g.name], g.inv
        elif g.name in ("seconds", "hitcount"):
            lo = 1 if g.name == "seconds" else 0
            n = strtoui_all(g.arg, lo, 0xFFFFFFFF)
            if n is None:
                raise g.error(f"recent: bad value for option \"--{g.name}\", or out of range "
                              f"({lo}-4294967295).")
            f[g.name] = n
        elif g.name in ("reap", "rttl"):
            f[g.name] = True
        elif g.name == "name":
            # XTOPT_PUT into char[200]: silently cut to 199 bytes
            raw = g.arg.encode("utf-8", "surrogateescape")[:XT_RECENT_NAME_LEN - 1]
            f["name"] = raw.decode("utf-8", "surrogateescape")
        elif g.name in ("rsource", "rdest"):
            f["side"] = Side.SOURCE if g.name == "rsource" else Side.DEST
        elif g.name == "mask":
            f["mask"] = parse_host(g.arg, ctx.family, g)  # XTTYPE_HOST
    if not any(i in seen for i in _OPS):
        raise ParseError("recent: you must specify one of `--set', `--rcheck' `--update' or "
                         "`--remove'", ctx.loc)
    xt_fcheck("recent", OPTIONS, seen, ctx)
    return Recent(**f)


def check(value: Recent, table: str, hooks, rule) -> list[str]:
    """recent_mt_check()."""
    out = []
    if value.command in (Command.SET, Command.REMOVE) and (
            value.seconds or value.hitcount or value.reap or value.rttl):
        out.append(f"-m recent: --seconds, --hitcount and --reap only go with --rcheck or "
                   f"--update, not --{value.command.name.lower()}")
    if value.hitcount >= XT_RECENT_MAX_NSTAMPS:
        out.append(f"-m recent: --hitcount {value.hitcount} is above the kernel's maximum "
                   f"{XT_RECENT_MAX_NSTAMPS - 1}")
    name = value.name
    if not name or name in (".", "..") or "/" in name or \
            len(name.encode("utf-8", "surrogateescape")) >= XT_RECENT_NAME_LEN:
        out.append(f"-m recent: the kernel refuses the table name {name!r}")
    return out


SPEC = ExtSpec("recent", "match", xt_opts(OPTIONS), build, check=check)


# ---- evaluation state -------------------------------------------------------------------------

HZ = 250                 # the kernel's jiffies rate assumed for time stamps (see Recent.match)
IP_LIST_TOT = 100        # xt_recent module parameter ip_list_tot (entries per table)
IP_PKT_LIST_TOT = 20     # module parameter ip_pkt_list_tot (stamps kept per entry, rounded up)


def _nstamps_mask(hitcount: int) -> int:
    """recent_mt_check(): the stamp ring size - 1 a rule asks of its table."""
    if IP_PKT_LIST_TOT and hitcount < IP_PKT_LIST_TOT:
        n = IP_PKT_LIST_TOT
    elif hitcount:
        n = hitcount
    else:
        return 31
    return (1 << (n - 1).bit_length()) - 1          # roundup_pow_of_two(n) - 1


@dataclass
class RecentEntry:
    """struct recent_entry: the last TTL, the stamp ring, its next index and fill."""
    ttl: int
    stamps: list
    index: int
    nstamps: int


@dataclass
class RecentTable:
    """struct recent_table: the mask of the rule that created it, the stamp ring size - 1,
    and the entries by (family, masked address) in LRU order (oldest first)."""
    mask: int
    nstamps_mask: int
    entries: OrderedDict = field(default_factory=OrderedDict)


def recent_tables(ruleset) -> dict:
    """The recent tables as loading RULESET leaves them (recent_mt_check): one per name,
    with the --mask of the first rule naming it in load order (tables, chains and rules
    in file order) and the stamp ring of the largest --hitcount (loading a rule with a
    larger one flushes and resizes the table, which is empty before any packet)."""
    tables: dict = {}
    for table in ruleset.tables:
        for chain in table.chains:
            for rule in chain.rules:
                for m in rule.matches:
                    if not isinstance(m, Recent):
                        continue
                    nmask = _nstamps_mask(m.hitcount)
                    t = tables.get(m.name)
                    if t is None:
                        tables[m.name] = RecentTable(m.mask, nmask)
                    elif nmask > t.nstamps_mask:
                        t.nstamps_mask = nmask
    return tables
