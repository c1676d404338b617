"""``-j DNAT`` and ``-j SNAT`` (extensions/libxt_NAT.c; kernel net/netfilter/xt_nat.c).

``--to-destination``/``--to-source`` take ``[ADDR[-ADDR]][:PORT[-PORT[/BASE]]]``; IPv6
addresses go in brackets when a port follows. What libxt_NAT.c's parse_to()/parse_ports()
accept, including their quirks:

* one colon means "port follows", more than one means an IPv6 address without port;
* ports need ``-p`` tcp, udp, sctp, dccp or icmp (the number only: ``! -p tcp`` passes);
* the first port may be a service name, the range end and the base not (the base may be);
* a colon at index 0 or 2 means "no address" (``:80``, ``[]:80``, and also ``10:80``);
* ``A-B`` with A > B addresses is taken as is; ``P-P`` and ``A-A`` print as one value.

iptables-nft uses DNAT revision 2 (``nf_nat_range2``, keeps the ``/BASE`` shift), SNAT
revision 0 for IPv4 (``nf_nat_ipv4_multi_range_compat``) and 1 for IPv6 (``nf_nat_range``):
these keep the shift flag but lose the base port, so iptables-save prints ``/0``.

Kernel: table nat; DNAT only from PREROUTING/OUTPUT, SNAT only from POSTROUTING/INPUT.
MASQUERADE and REDIRECT reuse the range parser and value type defined here.
"""
from __future__ import annotations

import enum
import socket
from dataclasses import dataclass

from ..cnum import strtoui
from ..ir import Family, Target
from ..util import int_to_ipv4, int_to_ipv6
from .base import IN, OUT, POST, PRE, ExtSpec, Given, Kernel, Opt, RuleContext
from .ports import SERVICES_ANY
from .xtopt import check_once, ctx_error

# protocols with ports for NAT purposes (libxt_NAT.c __NAT_parse: TCP, UDP, SCTP, DCCP, ICMP)
PORT_PROTOS = frozenset({6, 17, 132, 33, 1})
NAT_TABLES = frozenset({"nat"})


class NatFlag(enum.IntFlag):
    """NF_NAT_RANGE_* (include/uapi/linux/netfilter/nf_nat.h)."""

    MAP_IPS = 1
    PROTO_SPECIFIED = 2
    PROTO_RANDOM = 4
    PERSISTENT = 8
    PROTO_RANDOM_FULLY = 16
    PROTO_OFFSET = 32
    NETMAP = 64


_MAP_IPS, _PROTO_SPECIFIED, _PROTO_RANDOM, _PERSISTENT, _PROTO_RANDOM_FULLY, _PROTO_OFFSET = (
    int(NatFlag.MAP_IPS), int(NatFlag.PROTO_SPECIFIED), int(NatFlag.PROTO_RANDOM),
    int(NatFlag.PERSISTENT), int(NatFlag.PROTO_RANDOM_FULLY), int(NatFlag.PROTO_OFFSET))


@dataclass(frozen=True, slots=True)
class NatRange:
    """One nf_nat_range2: addresses as ints, ports in host order."""

    flags: NatFlag = NatFlag(0)
    min_addr: int = 0
    max_addr: int = 0
    min_port: int = 0
    max_port: int = 0
    base_port: int = 0
    family: Family = Family.IPV4

    def text(self, skip_colon: bool = False) -> str:
        """libxt_NAT.c sprint_range()."""
        f = int(self.flags)  # plain int: IntFlag arithmetic is slow
        out = ""
        if f & _MAP_IPS:
            to_text = int_to_ipv4 if self.family is Family.IPV4 else int_to_ipv6
            brackets = self.family is Family.IPV6 and bool(f & _PROTO_SPECIFIED)
            out += "[" if brackets else ""
            out += to_text(self.min_addr)
            if self.max_addr != self.min_addr:
                out += "-" + to_text(self.max_addr)
            out += "]" if brackets else ""
        if f & _PROTO_SPECIFIED:
            out += f":{self.min_port}"
            if self.max_port != self.min_port:
                out += f"-{self.max_port}"
            if f & _PROTO_OFFSET:
                out += f"/{self.base_port}"
        if skip_colon and out.startswith(":"):
            out = out[1:]
        return out

    def save(self, option: str, skip_colon: bool = False) -> str:
        """__NAT_print() in save form: the range, then --random, --random-fully,
        --persistent."""
        text = self.text(skip_colon)
        out = f" --{option} {text}" if text else ""
        f = int(self.flags)
        if f & _PROTO_RANDOM:
            out += " --random"
        if f & _PROTO_RANDOM_FULLY:
            out += " --random-fully"
        if f & _PERSISTENT:
            out += " --persistent"
        return out


class _RangeBuilder:
    """The mutable nf_nat_range2 that libxt_NAT.c's parsers fill in."""

    def __init__(self, family: Family):
        self.flags = 0  # a plain int while parsing (IntFlag arithmetic is slow)
        self.min_addr = self.max_addr = 0
        self.min_port = self.max_port = self.base_port = 0
        self.family = family

    def freeze(self, keep_base: bool = True) -> NatRange:
        return NatRange(NatFlag(self.flags), self.min_addr, self.max_addr, self.min_port,
                        self.max_port, self.base_port if keep_base else 0, self.family)


def _service(text: str) -> int | None:
    return SERVICES_ANY.get(text)


def parse_ports(text: str, portok: bool, r: _RangeBuilder, g: Given) -> None:
    """libxt_NAT.c parse_ports(): ``PORT[-PORT[/BASE]]``."""
    if not portok:
        raise g.error("Need TCP, UDP, SCTP or DCCP with port specification")
    r.flags |= _PROTO_SPECIFIED
    got = strtoui(text, 0, 0, 0xFFFF)
    if got is None:
        port = _service(text)
        if port is None:
            raise g.error(f"Port `{text}' not valid")
        rest = ""
    else:
        port, rest = got[0], text[got[1]:]
    if rest == "":
        r.min_port = r.max_port = port
        return
    if rest[0] == ":":
        raise g.error("Invalid port:port syntax - use dash")
    if rest[0] != "-":
        raise g.error(f"Garbage after port value: `{rest}'")
    arg = rest[1:]
    got = strtoui(arg, 0, 0, 0xFFFF)
    if got is None:
        raise g.error(f"Port `{arg}' not valid")
    maxport, rest = got[0], arg[got[1]:]
    if maxport < port:
        raise g.error(f"Port range `{arg}' funky")
    r.min_port, r.max_port = port, maxport
    if rest == "":
        return
    if rest[0] != "/":
        raise g.error(f"Garbage after port range: `{rest}'")
    arg = rest[1:]
    got = strtoui(arg, 0, 1, 0xFFFF)
    base = got[0] if got is not None else _service(arg)
    if base is None:
        raise g.error(f"Port `{arg}' not valid")
    r.flags |= _PROTO_OFFSET
    r.base_port = base


def _pton(family: Family, text: str) -> int | None:
    af = socket.AF_INET if family is Family.IPV4 else socket.AF_INET6
    try:
        return int.from_bytes(socket.inet_pton(af, text), "big")
    except (OSError, ValueError):
        return None


def parse_to(arg: str, portok: bool, r: _RangeBuilder, g: Given) -> None:
    """libxt_NAT.c parse_to(): ``[ADDR[-ADDR]][:PORTS]`` or ``[ADDR[-ADDR]]:PORTS``."""
    bracket = arg.find("[")
    if bracket < 0:
        start = 0
        colon = arg.find(":")
        if colon >= 0 and ":" in arg[colon + 1:]:
            colon = -1
        addr_end = colon if colon >= 0 else len(arg)
    else:
        start = bracket + 1
        end = arg.find("]", start)
        if end < 0 or r.family is Family.IPV4:
            raise g.error("Invalid address format")
        colon = arg.find(":", end + 1)
        addr_end = end
    if colon >= 0:
        parse_ports(arg[colon + 1:], portok, r, g)
        if colon in (0, 2):  # "starts with colon or [] colon? No IP info..."
            return
    r.flags |= _MAP_IPS
    addr = arg[start:addr_end]
    lo_text, dash, hi_text = addr.partition("-")
    lo = _pton(r.family, lo_text)
    if lo is None:
        raise g.error(f"Bad IP address \"{lo_text}\"")
    hi = lo
    if dash:
        hi = _pton(r.family, hi_text)
        if hi is None:
            raise g.error(f"Bad IP address \"{hi_text}\"")
    r.min_addr, r.max_addr = lo, hi


def portok(ctx: RuleContext) -> bool:
    return ctx.proto in PORT_PROTOS


def parse_nat_options(given: list[Given], ctx: RuleContext, ext: str, range_opt: str | None,
                      mandatory: bool) -> _RangeBuilder:
    """The option loop shared by DNAT, SNAT, MASQUERADE and REDIRECT (__NAT_parse)."""
    check_once(given, ext)
    r = _RangeBuilder(ctx.family)
    for g in given:
        if g.name == range_opt:
            parse_to(g.arg, portok(ctx), r, g)
        elif g.name == "to-ports":
            parse_ports(g.arg, portok(ctx), r, g)
        elif g.name == "random":
            r.flags |= _PROTO_RANDOM
        elif g.name == "random-fully":
            r.flags |= _PROTO_RANDOM_FULLY
        elif g.name == "persistent":
            r.flags |= _PERSISTENT
    if mandatory and not any(g.name == range_opt for g in given):
        raise ctx_error(ctx, f"{ext}: option \"--{range_opt}\" must be specified")
    return r


@dataclass(frozen=True, slots=True)
class Dnat(Target):
    NAME = "DNAT"
    TERMINAL = True
    range: NatRange = NatRange()

    def save(self) -> str:
        return self.range.save("to-destination")


@dataclass(frozen=True, slots=True)
class Snat(Target):
    NAME = "SNAT"
    TERMINAL = True
    range: NatRange = NatRange()

    def save(self) -> str:
        return self.range.save("to-source")


def build_dnat(given: list[Given], ctx: RuleContext) -> Dnat:
    r = parse_nat_options(given, ctx, "DNAT", "to-destination", mandatory=True)
    return Dnat(r.freeze(keep_base=True))


def build_snat(given: list[Given], ctx: RuleContext) -> Snat:
    r = parse_nat_options(given, ctx, "SNAT", "to-source", mandatory=True)
    return Snat(r.freeze(keep_base=False))


dnat_spec = ExtSpec(
    "DNAT", "target", (Opt("to-destination"), Opt("random", 0), Opt("persistent", 0)),
    build_dnat, Kernel(tables=NAT_TABLES, hooks=frozenset({PRE, OUT})))
snat_spec = ExtSpec(
    "SNAT", "target",
    (Opt("to-source"), Opt("random", 0), Opt("random-fully", 0), Opt("persistent", 0)),
    build_snat, Kernel(tables=NAT_TABLES, hooks=frozenset({POST, IN})))

SPECS = (dnat_spec, snat_spec)
