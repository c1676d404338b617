"""``-m policy``: the IPsec policy a packet was decapsulated with or will be encapsulated with
(extensions/libxt_policy.c; kernel net/netfilter/xt_policy.c policy_mt / policy_mt_check).

Options: ``--dir in|out`` (required), ``--pol none|ipsec``, ``--strict``, then per policy element
``[!] --reqid N``, ``[!] --spi N``, ``[!] --proto ah|esp|ipcomp``, ``[!] --mode
transport|tunnel``, ``[!] --tunnel-src/--tunnel-dst ADDR[/MASK]``; ``--next`` (needs
``--strict``) starts the next element (at most 4).

iptables-save prints ``--dir``, ``--pol``, ``--strict``, then each element as reqid, spi (hex),
proto (by name), mode, tunnel-dst, tunnel-src, elements separated by ``--next``.

Kernel: ``--dir in`` is refused in a rule of the OUTPUT or POSTROUTING chain, ``--dir out`` in
PREROUTING or INPUT; under nf_tables only a rule of the built-in chain itself is checked (the
hook mask of a user chain's rule is empty at checkentry time).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import BUILTIN_CHAINS, Family, Match
from ..protocols import parse_protocol, protocol_name
from ..util import int_to_ipv4, int_to_ipv6, mask_to_prefix
from .base import IN, OUT, POST, PRE, ExtSpec, Given, RuleContext
from .xthost import parse_hostmask
from .xtopt import XtOpt, parse_uint_opt, xt_fcheck, xt_opts, xt_parse

MAX_ELEM = 4
IPPROTO_AH, IPPROTO_ESP, IPPROTO_COMP = 51, 50, 108


class PolicyFlag(enum.IntFlag):
    """XT_POLICY_MATCH_* (include/uapi/linux/netfilter/xt_policy.h)."""

    IN = 0x1
    OUT = 0x2
    NONE = 0x4
    STRICT = 0x8


class PolicyMode(enum.IntEnum):
    TRANSPORT = 0
    TUNNEL = 1


@dataclass(frozen=True, slots=True)
class PolicyElem:
    """xt_policy_elem: each test is None when not given, else (value, inverted)."""

    reqid: tuple[int, bool] | None = None
    spi: tuple[int, bool] | None = None
    proto: tuple[int, bool] | None = None
    mode: tuple[PolicyMode, bool] | None = None
    saddr: tuple[int, int, bool] | None = None      # address, mask, inverted
    daddr: tuple[int, int, bool] | None = None

    def empty(self) -> bool:
        return not (self.reqid or self.spi or self.proto or self.mode or self.saddr
                    or self.daddr)


def _addr(addr: int, mask: int, family: Family) -> str:
    width = family.width
    to_text = int_to_ipv4 if family is Family.IPV4 else int_to_ipv6
    plen = mask_to_prefix(mask, width)
    if plen == width:
        return to_text(addr)
    return f"{to_text(addr)}/{plen if plen is not None else to_text(mask)}"


@dataclass(frozen=True, slots=True)
class Policy(Match):
    NAME = "policy"
    flags: PolicyFlag = PolicyFlag(0)
    elems: tuple[PolicyElem, ...] = ()
    family: Family = Family.IPV4

    def save(self) -> str:
        f = self.flags
        out = [" --dir in" if f & PolicyFlag.IN else " --dir out",
               " --pol none" if f & PolicyFlag.NONE else " --pol ipsec"]
        if f & PolicyFlag.STRICT:
            out.append(" --strict")

        def inv(flag: bool) -> str:
            return " !" if flag else ""
        for i, e in enumerate(self.elems):
            if e.reqid:
                out.append(f"{inv(e.reqid[1])} --reqid {e.reqid[0]}")
            if e.spi:
                out.append(f"{inv(e.spi[1])} --spi 0x{e.spi[0]:x}")
            if e.proto:
                out.append(f"{inv(e.proto[1])} --proto {protocol_name(e.proto[0])}")
            if e.mode:
                out.append(f"{inv(e.mode[1])} --mode {e.mode[0].name.lower()}")
            if e.daddr:
                out.append(f"{inv(e.daddr[2])} --tunnel-dst "
                           f"{_addr(e.daddr[0], e.daddr[1], self.family)}")
            if e.saddr:
                out.append(f"{inv(e.saddr[2])} --tunnel-src "
                           f"{_addr(e.saddr[0], e.saddr[1], self.family)}")
            if i + 1 < len(self.elems):
                out.append(" --next")
        return "".join(out)


O_DIR, O_POL, O_STRICT, O_REQID, O_SPI, O_PROTO, O_MODE, O_TSRC, O_TDST, O_NEXT = range(10)
OPTIONS = (
    XtOpt("dir", O_DIR), XtOpt("pol", O_POL), XtOpt("strict", O_STRICT, 0),
    XtOpt("reqid", O_REQID, invert=True), XtOpt("spi", O_SPI, invert=True),
    XtOpt("tunnel-src", O_TSRC, invert=True), XtOpt("tunnel-dst", O_TDST, invert=True),
    XtOpt("proto", O_PROTO, invert=True), XtOpt("mode", O_MODE, invert=True),
    XtOpt("next", O_NEXT, 0, also=frozenset({O_STRICT})),
)
_MULTI = {O_REQID, O_SPI, O_TSRC, O_TDST, O_PROTO, O_MODE, O_NEXT}
_FIELD = {O_REQID: "reqid", O_SPI: "spi", O_PROTO: "proto", O_MODE: "mode", O_TSRC: "saddr",
          O_TDST: "daddr"}
_DOUBLE = {O_REQID: "reqid", O_SPI: "spi", O_PROTO: "proto", O_MODE: "mode",
           O_TSRC: "tunnel-src", O_TDST: "tunnel-dst"}


def build(given: list[Given], ctx: RuleContext) -> Policy:
    seen: dict[int, Given] = {}
    flags = PolicyFlag(0)
    elems: list[PolicyElem] = []
    cur: dict = {}
    for g in given:
        e = next(o for o in OPTIONS if o.name == g.name)
        if e.id in _MULTI:
            if g.inv and not e.invert:
                raise g.error(f"policy: option \"--{g.name}\" cannot be inverted.")
            seen.setdefault(e.id, g)
        else:
            xt_parse("policy", OPTIONS, g, seen)
        if e.id == O_DIR:
            if g.arg not in ("in", "out"):
                raise g.error(f"policy_match: invalid dir \"{g.arg}\"")
            flags |= PolicyFlag.IN if g.arg == "in" else PolicyFlag.OUT
        elif e.id == O_POL:
            if g.arg not in ("none", "ipsec"):
                raise g.error(f"policy match: invalid policy \"{g.arg}\"")
            if g.arg == "none":
                flags |= PolicyFlag.NONE
        elif e.id == O_STRICT:
            flags |= PolicyFlag.STRICT
        elif e.id == O_NEXT:
            elems.append(PolicyElem(**cur))
            cur = {}
            if len(elems) == MAX_ELEM:
                raise g.error("policy match: maximum policy depth reached")
        else:
            key = _FIELD[e.id]
            if key in cur:
                raise g.error(f"policy match: double --{_DOUBLE[e.id]} option")
            if e.id in (O_REQID, O_SPI):
                cur[key] = (parse_uint_opt(g, "policy"), g.inv)
            elif e.id == O_PROTO:
                proto = parse_protocol(g.arg)
                if proto is None:
                    raise g.error(f"unknown protocol \"{g.arg}\" specified")
                if proto not in (IPPROTO_AH, IPPROTO_ESP, IPPROTO_COMP):
                    raise g.error("policy match: protocol must be ah/esp/ipcomp")
                cur[key] = (proto, g.inv)
            elif e.id == O_MODE:
                if g.arg not in ("transport", "tunnel"):
                    raise g.error(f"policy match: invalid mode \"{g.arg}\"")
                cur[key] = (PolicyMode[g.arg.upper()], g.inv)
            else:
                addr, mask = parse_hostmask(g, ctx.family, "policy")
                cur[key] = (addr, mask, g.inv)
    xt_fcheck("policy", OPTIONS, seen, ctx)
    if not flags & (PolicyFlag.IN | PolicyFlag.OUT):
        raise ParseError("policy match: neither --dir in nor --dir out specified", ctx.loc)
    if flags & PolicyFlag.NONE:
        if flags & PolicyFlag.STRICT:
            raise ParseError("policy match: policy none but --strict given", ctx.loc)
        if elems:
            raise ParseError("policy match: policy none but policy given", ctx.loc)
    else:
        elems.append(PolicyElem(**cur))
    for i, el in enumerate(elems):
        if flags & PolicyFlag.STRICT and el.empty():
            raise ParseError(f"policy match: empty policy element {i}. --strict is in effect, "
                             "but at least one of reqid, spi, tunnel-src, tunnel-dst, proto or "
                             "mode is required.", ctx.loc)
        mode, mode_inv = el.mode if el.mode else (PolicyMode.TRANSPORT, False)
        if (el.saddr or el.daddr) and ((mode == PolicyMode.TUNNEL and mode_inv) or
                                       (mode == PolicyMode.TRANSPORT and not mode_inv)):
            raise ParseError("policy match: --tunnel-src/--tunnel-dst is only valid in tunnel "
                             "mode", ctx.loc)
    return Policy(flags, tuple(elems), ctx.family)


def check(value: Policy, table: str, hooks, rule) -> list[str]:
    # policy_mt_check() looks at par->hook_mask, which nft_compat fills only for a rule of a
    # base chain: in a user chain the test passes whatever chain jumps there (seen on 6.18).
    if rule.chain not in BUILTIN_CHAINS.get(table, ()):
        return []
    hooks = frozenset({rule.chain})
    out = []
    if value.flags & PolicyFlag.OUT and hooks & {PRE, IN}:
        out.append("-m policy: --dir out is not valid in a rule reached from PREROUTING or "
                   "INPUT")
    if value.flags & PolicyFlag.IN and hooks & {POST, OUT}:
        out.append("-m policy: --dir in is not valid in a rule reached from OUTPUT or "
                   "POSTROUTING")
    return out


SPEC = ExtSpec("policy", "match", xt_opts(OPTIONS), build, check=check)
