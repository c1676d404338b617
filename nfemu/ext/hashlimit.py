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
