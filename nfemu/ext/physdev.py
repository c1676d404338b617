"""``-m physdev``: the bridge ports of a bridged packet (libxt_physdev.c; kernel
net/netfilter/xt_physdev.c).

``[!] --physdev-in NAME[+]``, ``[!] --physdev-out NAME[+]`` (a trailing ``+`` matches every
port whose name begins with NAME), ``[!] --physdev-is-in``, ``[!] --physdev-is-out``,
``[!] --physdev-is-bridged``. iptables-save prints them in the order is-in, in, is-out, out,
is-bridged; names are printed as given (not quoted; iptables only warns about '/' and ' ').

Kernel (physdev_mt_check): --physdev-out or --physdev-is-out without a (non-inverted)
--physdev-is-bridged is refused in the OUTPUT hook ("only supported in the FORWARD and
POSTROUTING chains with bridged traffic"). Under iptables-nft the check sees the hook only for a
rule placed directly in a built-in OUTPUT chain (nft_compat passes hook_mask 0 for a user
chain, and the later jump validation checks only xt_match.hooks, which physdev leaves open), so
the same rule in a user chain jumped to from OUTPUT loads: verified on kernel 6.18.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import BUILTIN_CHAINS, Match
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import need, single

IFNAMSIZ = 16


class PhysdevOp(enum.IntFlag):
    """XT_PHYSDEV_OP_* of xt_physdev_info.bitmask / .invert."""

    IN = 0x01
    OUT = 0x02
    BRIDGED = 0x04
    ISIN = 0x08
    ISOUT = 0x10


@dataclass(frozen=True, slots=True)
class Physdev(Match):
    NAME = "physdev"
    bitmask: PhysdevOp = PhysdevOp(0)
    invert: PhysdevOp = PhysdevOp(0)
    physindev: str = ""
    physoutdev: str = ""

    def match(self, pkt, ev) -> bool:
        """xt_physdev.c physdev_mt() for a packet without bridge information (nfemu models
        no bridges, so ``nf_bridge_info_exists(skb)`` is always false): every option given
        without ``!`` fails the match; a rule whose options are all negated matches."""
        return not (self.bitmask & ~self.invert)

    @staticmethod
    def name_matches(pattern: str, name: str) -> bool:
        """xtables_parse_interface()'s mask: ``eth+`` is a prefix, "" matches everything."""
        if not pattern:
            return True
        if pattern.endswith("+"):
            return name.startswith(pattern[:-1])
        return name == pattern

    def save(self) -> str:
        out = []
        for op, label, dev in ((PhysdevOp.ISIN, "--physdev-is-in", None),
                               (PhysdevOp.IN, "--physdev-in", self.physindev),
                               (PhysdevOp.ISOUT, "--physdev-is-out", None),
                               (PhysdevOp.OUT, "--physdev-out", self.physoutdev),
                               (PhysdevOp.BRIDGED, "--physdev-is-bridged", None)):
            if self.bitmask & op:
                inv = " !" if self.invert & op else ""
                out.append(f"{inv} {label}" + ("" if dev is None else f" {dev}"))
        return "".join(out)


_OPS = {"physdev-in": PhysdevOp.IN, "physdev-out": PhysdevOp.OUT,
        "physdev-is-in": PhysdevOp.ISIN, "physdev-is-out": PhysdevOp.ISOUT,
        "physdev-is-bridged": PhysdevOp.BRIDGED}


def build(given: list[Given], ctx: RuleContext) -> Physdev:
    bitmask = PhysdevOp(0)
    invert = PhysdevOp(0)
    fields: dict = {}
    for name, g in single(given).items():
        op = _OPS[name]
        if op in (PhysdevOp.IN, PhysdevOp.OUT):
            if len(g.arg.encode("utf-8", "surrogateescape")) + 1 > IFNAMSIZ:
                raise g.error(f"interface name `{g.arg}' must be shorter than IFNAMSIZ "
                              f"({IFNAMSIZ - 1})")
            fields["physindev" if op is PhysdevOp.IN else "physoutdev"] = g.arg
        bitmask |= op
        if g.inv:
            invert |= op
    need(bool(bitmask), ctx, "PHYSDEV: no physdev option specified")
    return Physdev(bitmask=bitmask, invert=invert, **fields)


def check(value: Physdev, table: str, hooks, rule) -> list[str]:
    in_output = rule.chain == "OUTPUT" and rule.chain in BUILTIN_CHAINS.get(table, ())
    bridged = value.bitmask & PhysdevOp.BRIDGED and not value.invert & PhysdevOp.BRIDGED
    if in_output and value.bitmask & (PhysdevOp.OUT | PhysdevOp.ISOUT) and not bridged:
        return ["-m physdev: --physdev-out and --physdev-is-out are only supported in the "
                "FORWARD and POSTROUTING chains with bridged traffic (not in OUTPUT without "
                "--physdev-is-bridged)"]
    return []


SPEC = ExtSpec(
    "physdev", "match",
    (Opt("physdev-in"), Opt("physdev-out"), Opt("physdev-is-in", 0), Opt("physdev-is-out", 0),
     Opt("physdev-is-bridged", 0)),
    build, check=check)
