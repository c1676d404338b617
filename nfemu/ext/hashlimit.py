"""``-m hashlimit``: per-flow token buckets (extensions/libxt_hashlimit.c revision 2; kernel
net/netfilter/xt_hashlimit.c hashlimit_mt_v2 / hashlimit_mt_check_v2).

Options: ``[!] --hashlimit-upto RATE`` (old name ``--hashlimit``), ``[!] --hashlimit-above
RATE``, ``--hashlimit-burst N``, ``--hashlimit-mode LIST`` (srcip, srcport, dstip, dstport
separated by ``,`` or ``|``), ``--hashlimit-srcmask/--hashlimit-dstmask PLEN``,
``--hashlimit-name NAME`` (mandatory), ``--hashlimit-htable-size/-max/-gcinterval/-expire N``.

A RATE is ``N[/second|minute|hour|day]`` (any prefix of the unit, any case), kept as the
period ``avg = 1000000 * seconds_per_unit / N``; or ``N[k|m]b/s`` (bytes per second), kept as
the cost ``0xffffffff / ((bytes >> 4) + 1)``. ``! --hashlimit-upto`` is ``--hashlimit-above``
and the reverse. iptables-save prints the rate the way print_rate()/print_bytes() express
``avg`` (``3600/hour`` -> ``1/sec``, ``100b/s`` -> ``96b/s``), always the burst in packet mode,
and the expiry only when it differs from the printed unit's length in ms (default: the parsed
unit's length; 15 s in byte mode, 60 s with a byte burst).

Kernel checks: gc interval and expiry not 0, masks at most 32 (IPv4) or 128, packet mode
``avg * burst`` not overflowing the credit computation (ERANGE), a name the proc file system
takes (no ``/``, not ``.``/``..``). The table size and entry limit are capped at 1048576.

Evaluation (:meth:`Hashlimit.match`) keeps the kernel's hash tables (one per name and family,
shared by the rules naming it) in ``ev.state.limit`` and runs their token buckets on jiffies
taken from ``ev.now`` (HZ 250, :data:`nfemu.ext.recent.HZ`).
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ..cnum import atol, strtoui
from ..errors import ParseError
from ..ir import Family, Match
from .base import ExtSpec, Given, RuleContext
from .limit import unit_index
from .recent import HZ
from .tcp import hotdrop
from .u32 import not_evaluable, skb_view
from .xthost import parse_plen
from .xtopt import XtOpt, parse_uint_opt, xt_fcheck, xt_opts, xt_parse

U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
SCALE = 1000000                      # XT_HASHLIMIT_SCALE_v2
BURST_DEFAULT = 5
BURST_MAX = 1000000
GC_DEFAULT = 1000
BYTE_SHIFT = 4
BYTE_EXPIRE = 15
BYTE_EXPIRE_BURST = 60
MAX_SIZE = 1048576                   # HASHLIMIT_MAX_SIZE
# HZ * CREDITS_PER_JIFFY / XT_HASHLIMIT_SCALE_v2 of the kernel (HZ 250 or 1000: 2**37*1000)
_CREDIT_FACTOR = (1 << 37) * 1000 // SCALE


class HashMode(enum.IntFlag):
    """XT_HASHLIMIT_* (include/uapi/linux/netfilter/xt_hashlimit.h)."""

    HASH_DIP = 1 << 0
    HASH_DPT = 1 << 1
    HASH_SIP = 1 << 2
    HASH_SPT = 1 << 3
    INVERT = 1 << 4
    BYTES = 1 << 5


_MODE_NAMES = (("srcip", HashMode.HASH_SIP), ("srcport", HashMode.HASH_SPT),
               ("dstip", HashMode.HASH_DIP), ("dstport", HashMode.HASH_DPT))
_HASH_BITS = HashMode.HASH_DIP | HashMode.HASH_DPT | HashMode.HASH_SIP | HashMode.HASH_SPT
_RATES = (("day", SCALE * 24 * 60 * 60), ("hour", SCALE * 60 * 60), ("min", SCALE * 60),
          ("sec", SCALE))
_UNITS = (("m", 1024 * 1024), ("k", 1024), ("", 1))


def cost_to_bytes(cost: int) -> int:
    r = U32 // cost if cost else U32
    return ((r - 1) << BYTE_SHIFT) & U64


def bytes_to_cost(value: int) -> int:
    r = (value >> BYTE_SHIFT) & U32
    return U32 // (r + 1) if r + 1 <= U32 else 0


def _factor(ch: str) -> int:
    return {"m": 1024 * 1024, "k": 1024}.get(ch, 1)


@dataclass(frozen=True, slots=True)
class Hashlimit(Match):
    """xt_hashlimit_mtinfo2: its cfg and name."""

    NAME = "hashlimit"
    name: str = ""
    mode: HashMode = HashMode(0)
    avg: int = 0                     # packet mode: period in 1/1000000 s; byte mode: cost
    burst: int = BURST_DEFAULT       # packets; in byte mode the burst in units of the rate
    size: int = 0
    max: int = 0
    gc_interval: int = GC_DEFAULT
    expire: int = 0                  # ms
    srcmask: int = 32
    dstmask: int = 32
    family: Family = Family.IPV4

    def match(self, pkt, ev) -> bool:
        """xt_hashlimit.c hashlimit_mt_v2() -> hashlimit_mt_common().

        The hash table is the one named ``--hashlimit-name`` for the family
        (htable_find_get()): the first rule with that name creates it with its own
        configuration (mode, masks, rate, burst, expiry, sizes) and every rule naming it
        shares its entries and that configuration; a rule's own configuration only decides
        whether its cost is per packet or per byte and whether it is inverted. The kernel
        creates the table when such a rule is loaded, nfemu when the first one is evaluated
        (the same table unless two rules give one name different configurations and the
        later-loaded one is reached first).

        The entry's key (hashlimit_init_dst()): the source and/or destination address under
        their masks, and the source and/or destination port: the two 16-bit words at the
        transport header for tcp, udp, udplite, dccp, sctp and esp (the SPI), at offset 4
        for ah, zero for other protocols; a datagram too short for them is a hotdrop. A
        new entry starts with a full bucket (rateinfo_init(); packet mode: credit =
        avg * burst credits, each packet costing avg credits; byte mode: one second's worth
        of credit, refilled up to ``burst`` more times when a packet does not fit, each packet
        costing ``(len / 16 + 1) * cost``); a known one gains credit for the jiffies since
        its last packet, up to the cap (rateinfo_recalc()). The packet matches when the
        credit covers its cost (and pays it), else not; ``--hashlimit-above`` reverses it.
        When the table holds ``htable-max`` entries, a packet that needs a new one is a
        hotdrop.

        Time: jiffies are ``floor(ev.now * HZ)`` with HZ 250 (Debian/Ubuntu kernels; the
        credit arithmetic gives the same rates at HZ 1000, only the granularity differs).
        Entries expire ``htable-expire`` ms after their last packet and the kernel's garbage
        collector, a work item every ``htable-gcinterval`` ms, removes expired ones; a
        removed entry comes back full. Before its expiry an entry is there; more than one gc
        interval after it, it is taken as removed (the collector running on time); in
        between, whether the collector has run depends on its timer's phase, so nfemu
        raises NotEvaluable unless both cases give the same bucket. Without
        ``htable-size`` the kernel sizes the table from the machine's memory: 8192 buckets
        (so 65536 entries at most) are assumed, which is what machines with more than 1 GiB
        get."""
        key = ("hashlimit", self.family, self.name)
        table = ev.state.limit.get(key)
        if table is None:
            table = ev.state.limit[key] = HashlimitTable(self)
        cfg = table.cfg
        dst = _dst_key(cfg, pkt)
        if dst is None:
            hotdrop(ev, "hashlimit: ports cut short")
            return False
        now = _jiffies(ev.now)
        entries = table.entries
        ent = entries.get(dst)
        if ent is not None and now - ent.expires >= 0:      # expired, maybe collected
            if now - ent.expires > table.gc_jiffies:
                del entries[dst]
                ent = None
            else:
                kept = ent.copy()
                kept.recalc(now, cfg.mode)
                fresh = table.new_entry(now)
                if not kept.same_bucket(fresh):
                    raise not_evaluable(
                        f"-m hashlimit --hashlimit-name {self.name}: the entry for this packet "
                        f"expired {(now - ent.expires) * 1000 // HZ} ms ago and whether the "
                        f"garbage collector (every {cfg.gc_interval} ms) has removed it yet "
                        f"depends on its timer ({ev.table} {ev.chain} rule {ev.rule})")
        if ent is None:
            if len(entries) >= table.max_entries and not table.room(now, ev, self.name):
                hotdrop(ev, "hashlimit: table full")
                return False
            ent = entries[dst] = table.new_entry(now)
        else:
            ent.expires = now + table.expire_jiffies
            ent.recalc(now, cfg.mode)
        if self.mode & HashMode.BYTES:
            cost = ent.byte_cost(pkt.length)
        else:
            cost = ent.cost
        if ent.credit >= cost:
            ent.credit -= cost
            return not self.mode & HashMode.INVERT
        return bool(self.mode & HashMode.INVERT)

    def save(self) -> str:
        mode = self.mode
        out = [" --hashlimit-above" if mode & HashMode.INVERT else " --hashlimit-upto"]
        if mode & HashMode.BYTES:
            r = cost_to_bytes(self.avg)
            i = 0
            while i < len(_UNITS) - 1:
                thresh = _UNITS[i][1]
                # ~(thresh - 1) is a uint32_t: the high half of r is dropped
                if r >= thresh and bytes_to_cost(r & ~(thresh - 1) & U32) == self.avg:
                    break
                i += 1
            out.append(f" {r // _UNITS[i][1]}{_UNITS[i][0]}b/s")
            if self.burst == 0:
                quantum = BYTE_EXPIRE * 1000
            else:
                r = (r * self.burst) & U64
                i = 0
                while i < len(_UNITS) - 1 and r < _UNITS[i][1]:
                    i += 1
                out.append(f" --hashlimit-burst {r // _UNITS[i][1]}{_UNITS[i][0]}b")
                quantum = BYTE_EXPIRE_BURST * 1000
        else:
            name, mult = _RATES[unit_index(self.avg, _RATES)]
            out.append(f" {mult // self.avg}/{name} --hashlimit-burst {self.burst}")
            quantum = mult // SCALE * 1000
        if mode & _HASH_BITS:
            out.append(" --hashlimit-mode " + ",".join(n for n, bit in _MODE_NAMES if mode & bit))
        out.append(f" --hashlimit-name {self.name}")
        if self.size:
            out.append(f" --hashlimit-htable-size {self.size}")
        if self.max:
            out.append(f" --hashlimit-htable-max {self.max}")
        if self.gc_interval != GC_DEFAULT:
            out.append(f" --hashlimit-htable-gcinterval {self.gc_interval}")
        if self.expire != quantum:
            out.append(f" --hashlimit-htable-expire {self.expire}")
        dmask = self.family.width
        if self.srcmask != dmask:
            out.append(f" --hashlimit-srcmask {self.srcmask}")
        if self.dstmask != dmask:
            out.append(f" --hashlimit-dstmask {self.dstmask}")
        return "".join(out)


def _parse_rate(g: Given) -> tuple[int, int, bool]:
    """parse_bytes() then parse_rate(): (avg, seconds of the unit, bytes mode)."""
    text = g.arg
    at = text.find("b/s")
    if at > 0:
        r = atol(text) & U64  # (uint64_t)atoll()
        if r:
            value = r * _factor(text[at - 1])
            if value > U64:
                raise g.error(f"Rate value too large \"{value}\" (max {U64})")
            cost = bytes_to_cost(value)
            if cost == 0:
                raise g.error(f"Rate too high \"{text}\"")
            return cost, BYTE_EXPIRE, True
    mult = 1
    slash = text.find("/")
    if slash >= 0:
        unit = text[slash + 1:].lower()
        for name, seconds in (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400)):
            if unit and name.startswith(unit):
                mult = seconds
                break
        else:
            mult = 0
    r = atol(text) & U64
    if not mult or not r:
        opt = "hashlimit-above" if g.name == "hashlimit-above" else "hashlimit-upto"
        raise g.error(f"hashlimit: Bad value for \"--{opt}\" option: \"{text}\"")
    avg = (SCALE * mult) // r
    if avg == 0:
        raise g.error(f"Rate too fast \"{text}\"")
    return avg, mult, False


def _burst_error(g: Given) -> ParseError:
    return g.error(f"bad value for option \"--hashlimit-burst\", or out of range (1-{BURST_MAX}).")


def _parse_burst(g: Given) -> int:
    got = strtoui(g.arg, 0, 1, U64)
    if got is None or (got[1] == len(g.arg) and got[0] > BURST_MAX):
        raise _burst_error(g)
    value, end = got
    return (value * _factor(g.arg[end:end + 1])) & U64


# ids as in libxt_hashlimit.c
O_UPTO, O_ABOVE, O_MODE, O_SRCMASK, O_DSTMASK, O_NAME, O_BURST = 0, 1, 3, 4, 5, 6, 7
O_SIZE, O_MAX, O_GCINT, O_EXPIRE = 8, 9, 10, 11
OPTIONS = (
    XtOpt("hashlimit-upto", O_UPTO, invert=True, excl=frozenset({O_ABOVE})),
    XtOpt("hashlimit-above", O_ABOVE, invert=True, excl=frozenset({O_UPTO})),
    XtOpt("hashlimit", O_UPTO, invert=True, excl=frozenset({O_ABOVE})),
    XtOpt("hashlimit-srcmask", O_SRCMASK), XtOpt("hashlimit-dstmask", O_DSTMASK),
    XtOpt("hashlimit-burst", O_BURST), XtOpt("hashlimit-htable-size", O_SIZE),
    XtOpt("hashlimit-htable-max", O_MAX), XtOpt("hashlimit-htable-gcinterval", O_GCINT),
    XtOpt("hashlimit-htable-expire", O_EXPIRE), XtOpt("hashlimit-mode", O_MODE),
    XtOpt("hashlimit-name", O_NAME, mand=True),
)
_HTABLE = {"hashlimit-htable-size": "size", "hashlimit-htable-max": "max",
           "hashlimit-htable-gcinterval": "gc_interval", "hashlimit-htable-expire": "expire"}


def build(given: list[Given], ctx: RuleContext) -> Hashlimit:
    seen: dict[int, Given] = {}
    width = ctx.family.width
    f: dict = {"srcmask": width, "dstmask": width, "family": ctx.family}
    mode = HashMode(0)
    unit = 1
    burst = BURST_DEFAULT
    for g in given:
        xt_parse("hashlimit", OPTIONS, g, seen)
        name = g.name
        if name in ("hashlimit-upto", "hashlimit", "hashlimit-above"):
            if (name == "hashlimit-above") != g.inv:
                mode |= HashMode.INVERT
            avg, unit, in_bytes = _parse_rate(g)
            if in_bytes:
                mode |= HashMode.BYTES
            f["avg"] = avg
        elif name == "hashlimit-mode":
            for tok in re.split(r"[,|]", g.arg):
                if not tok:
                    continue
                bit = dict(_MODE_NAMES).get(tok)
                if bit is None:
                    raise g.error(f"hashlimit: Bad value for \"--hashlimit-mode\" option: "
                                  f"\"{g.arg}\"")
                mode |= bit
        elif name in ("hashlimit-srcmask", "hashlimit-dstmask"):
            plen = parse_plen(g.arg, ctx.family, g, "hashlimit")
            f[name[10:]] = 255 if plen is None else plen  # -1 in a u8
        elif name == "hashlimit-burst":
            burst = _parse_burst(g)
        elif name == "hashlimit-name":
            if not g.arg:
                raise g.error("Argument must have a minimum length of 1 characters")
            f["name"] = g.arg[:254]
        else:
            f[_HTABLE[name]] = parse_uint_opt(g, "hashlimit")
    xt_fcheck("hashlimit", OPTIONS, seen, ctx)
    if O_UPTO not in seen and O_ABOVE not in seen:
        raise ParseError("You have to specify --hashlimit", ctx.loc)
    if "expire" not in f:
        f["expire"] = unit * 1000
    if mode & HashMode.BYTES:
        n = 0
        if O_BURST in seen:
            per = cost_to_bytes(f["avg"])
            if burst < per:
                raise seen[O_BURST].error(f"burst cannot be smaller than {per}b")
            # a uint32_t in hashlimit_mt_check(): the division sees the low 32 bits only
            n = ((burst & U32) // per + (1 if burst % per else 0)) & U32 if per else 0
            if O_EXPIRE not in seen:
                f["expire"] = BYTE_EXPIRE_BURST * 1000
        burst = n
    elif burst > BURST_MAX:
        raise _burst_error(seen[O_BURST])
    for key in ("size", "max"):
        if f.get(key, 0) > MAX_SIZE:       # htable_create() truncates, and it shows
            f[key] = MAX_SIZE
    return Hashlimit(mode=mode, burst=burst, **f)


def check(value: Hashlimit, table: str, hooks, rule) -> list[str]:
    out = []
    if value.gc_interval == 0 or value.expire == 0:
        out.append("-m hashlimit: the kernel refuses a gc interval or expiry of 0")
    if value.srcmask > value.family.width or value.dstmask > value.family.width:
        out.append(f"-m hashlimit: a mask longer than {value.family.width} bits is refused "
                   "by the kernel")
    if not value.mode & HashMode.BYTES:
        total = (value.avg * value.burst) & U64
        if value.burst == 0 or (total * _CREDIT_FACTOR) & U64 < \
                (value.avg * _CREDIT_FACTOR) & U64:
            out.append(f"-m hashlimit: rate and burst overflow the kernel's credit counter "
                       f"(overflow, try lower: {value.avg}/{value.burst}; Numerical result "
                       "out of range)")
    if "/" in value.name or value.name in (".", ".."):
        out.append(f"-m hashlimit: the kernel cannot make a proc entry named "
                   f"\"{value.name}\"")
    return out


SPEC = ExtSpec("hashlimit", "match", xt_opts(OPTIONS), build, check=check)


# ---- evaluation state (xt_hashlimit.c) ------------------------------------------------------

def _pow2_below(x: int) -> int:
    """POW2_BELOW32/64(): the largest power of two not above x."""
    return 1 << (x.bit_length() - 1)


#: CREDITS_PER_JIFFY (64-bit credits of revisions 2 and 3) and CREDITS_PER_JIFFY_BYTES
CPJ = _pow2_below(U64 // (HZ * 60 * 60 * 24))
CPJ_BYTES = _pow2_below(U32 // HZ)
#: the byte-mode bucket: one second's worth of credit
BYTE_CAP = CPJ_BYTES * HZ
_PROTO_PORTS = {6: 0, 17: 0, 33: 0, 50: 0, 132: 0, 136: 0, 51: 4}   # proto_ports_offset()
DEFAULT_SIZE = 8192            # htable_create() on a machine with more than 1 GiB of RAM


def user2credits(user: int) -> int:
    """user2credits() for revisions 2 and 3: ``user * (HZ * CPJ / 1000000)`` in u64."""
    return (user * (HZ * CPJ // SCALE)) & U64


def user2credits_byte(user: int) -> int:
    return ((user & U32) * HZ * CPJ_BYTES) >> 32 & U32


def _jiffies(now: float) -> int:
    return int((now * HZ) // 1)


def _msecs_to_jiffies(ms: int) -> int:
    return -(-ms * HZ // 1000)


def _maskl(addr: int, plen: int, width: int) -> int:
    """maskl() / hashlimit_ipv6_mask(): the address under a prefix of plen bits."""
    if plen <= 0:
        return 0
    plen = min(plen, width)
    return addr & (((1 << width) - 1) ^ ((1 << (width - plen)) - 1))


def _dst_key(cfg: Hashlimit, pkt) -> tuple | None:
    """hashlimit_init_dst(): the entry's key, None when the ports cannot be read."""
    mode = cfg.mode
    width = 32 if pkt.family == 4 else 128
    dst = _maskl(pkt.dst, cfg.dstmask, width) if mode & HashMode.HASH_DIP else 0
    src = _maskl(pkt.src, cfg.srcmask, width) if mode & HashMode.HASH_SIP else 0
    if not mode & (HashMode.HASH_DPT | HashMode.HASH_SPT):
        return (src, dst, 0, 0)
    poff = _PROTO_PORTS.get(pkt.proto)
    if poff is None:
        sport = dport = 0
    else:
        ports = skb_view(pkt).l4(poff, 4, "-m hashlimit")
        if ports is None:
            return None
        sport, dport = int.from_bytes(ports[:2], "big"), int.from_bytes(ports[2:], "big")
    return (src, dst, sport if mode & HashMode.HASH_SPT else 0,
            dport if mode & HashMode.HASH_DPT else 0)


class HashlimitEntry:
    """struct dsthash_ent: expiry and rateinfo (prev, credit, credit_cap, cost), jiffies."""

    __slots__ = ("cost", "credit", "credit_cap", "expires", "prev")

    def __init__(self, expires: int, prev: int, credit: int, credit_cap: int, cost: int):
        self.expires, self.prev = expires, prev
        self.credit, self.credit_cap, self.cost = credit, credit_cap, cost

    def copy(self) -> HashlimitEntry:
        return HashlimitEntry(self.expires, self.prev, self.credit, self.credit_cap, self.cost)

    def same_bucket(self, other: HashlimitEntry) -> bool:
        return (self.credit, self.credit_cap, self.cost) == \
            (other.credit, other.credit_cap, other.cost)

    def recalc(self, now: int, mode: HashMode) -> None:
        """rateinfo_recalc(): credit for the jiffies since the last packet, capped."""
        delta = now - self.prev
        if delta == 0:
            return
        self.prev = now
        if mode & HashMode.BYTES:
            before = self.credit
            self.credit = (self.credit + CPJ_BYTES * delta) & U64
            cap = BYTE_CAP
            if before >= self.credit:                       # u64 overflow
                self.credit = cap
                return
        else:
            self.credit = (self.credit + delta * CPJ) & U64
            cap = self.credit_cap
        self.credit = min(self.credit, cap)

    def byte_cost(self, length: int) -> int:
        """hashlimit_byte_cost(): 16-byte chunks times the cost, at most a full bucket;
        an empty bucket is refilled while refills (credit_cap) remain."""
        cost = min(((length >> BYTE_SHIFT) + 1) * self.cost, BYTE_CAP)
        if self.credit < cost and self.credit_cap:
            self.credit_cap -= 1
            self.credit = BYTE_CAP
        return cost


class HashlimitTable:
    """struct xt_hashlimit_htable: the configuration of the rule that created it and the
    entries by key."""

    def __init__(self, cfg: Hashlimit):
        self.cfg = cfg
        size = cfg.size or DEFAULT_SIZE
        top = cfg.max or 8 * size
        self.max_entries = max(top, size)
        self.expire_jiffies = _msecs_to_jiffies(cfg.expire)
        self.gc_jiffies = _msecs_to_jiffies(cfg.gc_interval)
        self.entries: dict = {}

    def new_entry(self, now: int) -> HashlimitEntry:
        """rateinfo_init() with the table's configuration."""
        cfg = self.cfg
        expires = now + self.expire_jiffies
        if cfg.mode & HashMode.BYTES:
            return HashlimitEntry(expires, now, BYTE_CAP, cfg.burst, user2credits_byte(cfg.avg))
        credit = user2credits((cfg.avg * cfg.burst) & U64)
        return HashlimitEntry(expires, now, credit, credit, user2credits(cfg.avg))

    def room(self, now: int, ev, name: str) -> bool:
        """Whether a new entry fits once the collected entries are gone (dsthash_alloc_init()
        refuses at ``count >= max``); NotEvaluable when that depends on the collector."""
        gone = [k for k, e in self.entries.items() if now - e.expires > self.gc_jiffies]
        for k in gone:
            del self.entries[k]
        sure = sum(1 for e in self.entries.values() if now - e.expires < 0)
        if len(self.entries) < self.max_entries:
            return True
        if sure >= self.max_entries:
            return False
        raise not_evaluable(
            f"-m hashlimit --hashlimit-name {name}: the table is full unless the garbage "
            f"collector has removed expired entries, which depends on its timer "
            f"({ev.table} {ev.chain} rule {ev.rule})")
