"""``-m set [!] --match-set NAME src|dst[,...]``: membership of the packet's addresses/ports in
an ipset (libxt_set.c revision 4 and libxt_set.h; kernel net/netfilter/xt_set.c
set_match_v4 and net/netfilter/ipset/).

Also ``--return-nomatch``, ``! --update-counters``, ``! --update-subcounters`` (without ``!``
they change nothing), ``[!] --packets-eq N``, ``--packets-lt N``, ``--packets-gt N`` and the
same for ``--bytes-``. ``--set`` is the deprecated spelling of ``--match-set``.

iptables looks the set up by name while parsing (``Set NAME doesn't exist.``) and the kernel
holds a reference to it. A fresh network namespace has no ipsets, and nfemu does not model
ipsets yet, so every ``-m set`` rule parses (with all of iptables' checks) but is refused by
``check``: the load would fail.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Match
from ..util import parse_uint
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import need

IPSET_MAXNAMELEN = 32
IPSET_DIM_MAX = 6
U64_MAX = (1 << 64) - 1


class SetDir(enum.IntEnum):
    """One dimension of the set element: taken from the packet's source or destination."""

    DST = 0
    SRC = 1


class CounterOp(enum.IntEnum):
    """enum ip_set_counter_op."""

    NONE = 0
    EQ = 1
    NE = 2
    LT = 3
    GT = 4


@dataclass(frozen=True, slots=True)
class Set(Match):
    NAME = "set"
    name: str = ""
    dirs: tuple[SetDir, ...] = ()
    inv: bool = False
    return_nomatch: bool = False
    skip_counter_update: bool = False
    skip_subcounter_update: bool = False
    packets_op: CounterOp = CounterOp.NONE
    packets: int = 0
    bytes_op: CounterOp = CounterOp.NONE
    bytes: int = 0

    def save(self) -> str:
        dirs = ",".join("src" if d is SetDir.SRC else "dst" for d in self.dirs)
        out = [f"{' !' if self.inv else ''} --match-set {self.name} {dirs}"]
        if self.return_nomatch:
            out.append(" --return-nomatch")
        if self.skip_counter_update:
            out.append(" ! --update-counters")
        if self.skip_subcounter_update:
            out.append(" ! --update-subcounters")
        for what, op, value in (("packets", self.packets_op, self.packets),
                                ("bytes", self.bytes_op, self.bytes)):
            if op is CounterOp.EQ:
                out.append(f" --{what}-eq {value}")
            elif op is CounterOp.NE:
                out.append(f" ! --{what}-eq {value}")
            elif op is CounterOp.LT:
                out.append(f" --{what}-lt {value}")
            elif op is CounterOp.GT:
                out.append(f" --{what}-gt {value}")
        return "".join(out)


def _parse_dirs(text: str, g: Given) -> tuple[SetDir, ...]:
    """parse_dirs(): comma-separated words, each beginning with src or dst, at most 6."""
    parts = text.split(",")
    if len(parts) > IPSET_DIM_MAX:
        # the first six are parsed (and may fail) before the count is checked
        parts, extra = parts[:IPSET_DIM_MAX], True
    else:
        extra = False
    dirs = []
    for part in parts:
        if part.startswith("src"):
            dirs.append(SetDir.SRC)
        elif part.startswith("dst"):
            dirs.append(SetDir.DST)
        else:
            raise g.error("You must spefify (the comma separated list of) 'src' or 'dst'.")
    if extra:
        raise g.error(f"Can't be more src/dst options than {IPSET_DIM_MAX}.")
    return tuple(dirs)


def build(given: list[Given], ctx: RuleContext) -> Set:
    fields: dict = {}
    for g in given:
        name = g.name
        if name in ("match-set", "set"):
            if "name" in fields:
                raise g.error("--match-set can be specified only once")
            set_name, dirs = g.args
            if len(set_name.encode("utf-8", "surrogateescape")) > IPSET_MAXNAMELEN - 1:
                raise g.error(f"setname `{set_name}' too long, max {IPSET_MAXNAMELEN - 1} "
                              "characters.")
            fields.update(name=set_name, dirs=_parse_dirs(dirs, g), inv=g.inv)
        elif name == "return-nomatch":
            if g.inv:
                raise g.error("--return-nomatch flag cannot be inverted")
            fields["return_nomatch"] = True
        elif name == "update-counters":
            if g.inv:
                fields["skip_counter_update"] = True
        elif name == "update-subcounters":
            if g.inv:
                fields["skip_subcounter_update"] = True
        else:
            what, _, op = name.partition("-")  # packets-eq, bytes-gt, ...
            if f"{what}_op" in fields:
                raise g.error(f"only one of the --{what}-[eq|lt|gt] is allowed")
            if op != "eq" and g.inv:
                raise g.error(f"--{name} option cannot be inverted")
            value = parse_uint(g.arg, 0, U64_MAX)
            if value is None:
                raise g.error(f"Cannot parse {g.arg} as a counter value")
            fields[f"{what}_op"] = {"eq": CounterOp.NE if g.inv else CounterOp.EQ,
                                    "lt": CounterOp.LT, "gt": CounterOp.GT}[op]
            fields[what] = value
    need("name" in fields, ctx, "You must specify `--match-set' with proper arguments")
    return Set(**fields)


def check(value: Set, table: str, hooks, rule) -> list[str]:
    """get_set_byname() at parse time / ip_set_nfnl_get_byindex() in set_match_v4_checkentry."""
    return [f"ipset {value.name} does not exist (iptables: \"Set {value.name} doesn't "
            f"exist.\"); if the node has it, say --ipset {value.name} or --assume-objects"]


SPEC = ExtSpec(
    "set", "match",
    (Opt("match-set", 2), Opt("set", 2), Opt("return-nomatch", 0), Opt("update-counters", 0),
     Opt("packets-eq"), Opt("packets-lt"), Opt("packets-gt"), Opt("bytes-eq"), Opt("bytes-lt"),
     Opt("bytes-gt"), Opt("update-subcounters", 0)),
    build, check=check)
