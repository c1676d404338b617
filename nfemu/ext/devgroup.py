"""``-m devgroup [!] --src-group G[/MASK] [!] --dst-group G[/MASK]``: the device group of the
input / output interface (extensions/libxt_devgroup.c; kernel net/netfilter/xt_devgroup.c).

A group is a number (C syntax, 32 bits) with an optional mask, or a name from
/etc/iproute2/group (only the standard ``default`` = 0 is known here). iptables-save prints the
name when the value has one and the mask is all ones, else ``0xV`` or ``0xV/0xM``.

Kernel (devgroup_mt_checkentry): --src-group only in a rule of PREROUTING, INPUT or FORWARD,
--dst-group only in FORWARD, OUTPUT or POSTROUTING; under nf_tables only a rule of the built-in
chain itself is checked (a user chain's rule has an empty hook mask at checkentry time).

Evaluation (:meth:`Devgroup.match`) needs each device's group (``ip link set DEV group N``;
0, "default", unless set): it reads ``group`` from the host's interface and raises
NotEvaluable when the host model has none (nfemu's Interface does not record groups yet).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import BUILTIN_CHAINS, Match
from .base import FWD, IN, OUT, POST, PRE, ExtSpec, Given, RuleContext
from .u32 import not_evaluable
from .xtopt import XtOpt, parse_val_mask, xt_collect, xt_fcheck, xt_opts

U32 = 0xFFFFFFFF
GROUP_NAMES = {0: "default"}      # /etc/iproute2/group as iproute2 ships it


class DevgroupFlag(enum.IntFlag):
    """XT_DEVGROUP_* (include/uapi/linux/netfilter/xt_devgroup.h)."""

    MATCH_SRC = 0x1
    INVERT_SRC = 0x2
    MATCH_DST = 0x4
    INVERT_DST = 0x8


def _val_mask(value: int, mask: int) -> str:
    if mask == U32 and value in GROUP_NAMES:
        return GROUP_NAMES[value]
    return f"0x{value:x}" if mask == U32 else f"0x{value:x}/0x{mask:x}"


@dataclass(frozen=True, slots=True)
class Devgroup(Match):
    NAME = "devgroup"
    flags: DevgroupFlag = DevgroupFlag(0)
    src_group: int = 0
    src_mask: int = 0
    dst_group: int = 0
    dst_mask: int = 0

    def match(self, pkt, ev) -> bool:
        """xt_devgroup.c devgroup_mt(): with --src-group, ``(src_group ^ in->group) &
        src_mask`` must be 0 (non-zero with ``!``); with --dst-group the same for the output
        device. A device's group comes from the host model (``Interface.group``); without it
        (or for a device the host does not have) NotEvaluable. A rule that asks for a device
        the hook does not have (the input device in OUTPUT, reached through a user chain the
        kernel could not check) would make the kernel dereference a NULL device:
        NotEvaluable too."""
        f = self.flags
        if f & DevgroupFlag.MATCH_SRC:
            group = _group(ev, pkt.iif, "input")
            if bool((self.src_group ^ group) & self.src_mask) != bool(f & DevgroupFlag.INVERT_SRC):
                return False
        if f & DevgroupFlag.MATCH_DST:
            group = _group(ev, pkt.oif, "output")
            if bool((self.dst_group ^ group) & self.dst_mask) != bool(f & DevgroupFlag.INVERT_DST):
                return False
        return True

    def save(self) -> str:
        f = self.flags
        out = ""
        if f & DevgroupFlag.MATCH_SRC:
            out += f"{' !' if f & DevgroupFlag.INVERT_SRC else ''} --src-group " \
                   f"{_val_mask(self.src_group, self.src_mask)}"
        if f & DevgroupFlag.MATCH_DST:
            out += f"{' !' if f & DevgroupFlag.INVERT_DST else ''} --dst-group " \
                   f"{_val_mask(self.dst_group, self.dst_mask)}"
        return out


def _group(ev, dev: str, which: str) -> int:
    """``xt_in(par)->group`` / ``xt_out(par)->group`` from the host model."""
    where = f"({ev.table} {ev.chain} rule {ev.rule})"
    if not dev:
        raise not_evaluable(f"-m devgroup asks the {which} device's group where the packet has "
                            f"no {which} device (the kernel would dereference NULL) {where}")
    host = ev.host
    iface = host.interface(dev) if host.has_interface(dev) else None
    group = getattr(iface, "group", None)
    if group is None:
        raise not_evaluable(f"-m devgroup needs the group of device {dev}, which nfemu's host "
                            f"model does not record {where}")
    return group


def _group_number(name: str) -> int | None:
    """xtables_lmap_name2id() of /etc/iproute2/group."""
    return next((number for number, known in GROUP_NAMES.items() if known == name), None)


OPTIONS = (XtOpt("src-group", 0, invert=True), XtOpt("dst-group", 1, invert=True))


def build(given: list[Given], ctx: RuleContext) -> Devgroup:
    seen = xt_collect("devgroup", OPTIONS, given)
    xt_fcheck("devgroup", OPTIONS, seen, ctx)
    f: dict = {}
    flags = DevgroupFlag(0)
    if 0 in seen:
        f["src_group"], f["src_mask"] = parse_val_mask(seen[0], "devgroup", _group_number)
        flags |= DevgroupFlag.MATCH_SRC | (DevgroupFlag.INVERT_SRC if seen[0].inv else 0)
    if 1 in seen:
        f["dst_group"], f["dst_mask"] = parse_val_mask(seen[1], "devgroup", _group_number)
        flags |= DevgroupFlag.MATCH_DST | (DevgroupFlag.INVERT_DST if seen[1].inv else 0)
    if not seen:
        raise ParseError("devgroup match: You must specify either '--src-group' or "
                         "'--dst-group'", ctx.loc)
    return Devgroup(flags, **f)


def check(value: Devgroup, table: str, hooks, rule) -> list[str]:
    if rule.chain not in BUILTIN_CHAINS.get(table, ()):
        return []
    out = []
    if value.flags & DevgroupFlag.MATCH_SRC and rule.chain not in (PRE, IN, FWD):
        out.append(f"-m devgroup: --src-group is not valid in {rule.chain}")
    if value.flags & DevgroupFlag.MATCH_DST and rule.chain not in (FWD, OUT, POST):
        out.append(f"-m devgroup: --dst-group is not valid in {rule.chain}")
    return out


SPEC = ExtSpec("devgroup", "match", xt_opts(OPTIONS), build, check=check)
