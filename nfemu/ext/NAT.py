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

from .. import engine as _engine
from ..cnum import strtoui
from ..ir import Family, Target
from ..jhash import find_best_ip
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

    def apply(self, pkt, ev):
        """xt_nat.c xt_dnat_target_v2(): nf_nat_setup_info(ct, range, NF_NAT_MANIP_DST)."""
        return nat_setup(pkt, ev, self.range, MANIP_DST, "DNAT")


@dataclass(frozen=True, slots=True)
class Snat(Target):
    NAME = "SNAT"
    TERMINAL = True
    range: NatRange = NatRange()

    def save(self) -> str:
        return self.range.save("to-source")

    def apply(self, pkt, ev):
        """xt_nat.c xt_snat_target_v0/v1(): nf_nat_setup_info(ct, range, NF_NAT_MANIP_SRC).
        The IPv4 revision 0 range has no base port (``base_port`` is 0 in the IR, as in the
        kernel's converted range), so a ``/BASE`` shift counts from port 0."""
        return nat_setup(pkt, ev, self.range, MANIP_SRC, "SNAT")


# ---------------------------------------------------------------------------------------------
# Evaluation: net/netfilter/nf_nat_core.c for the first packet of a connection.
#
# nf_nat_setup_info() -> get_unique_tuple() -> find_best_ips_proto() and
# nf_nat_l4proto_unique_tuple(), with nothing else in the conntrack table: nf_nat_used_tuple()
# is always false and find_appropriate_src() finds no earlier mapping. What that leaves:
#
# * SNAT without --random/--random-fully: a tuple whose source (address, and port when
#   --to-source gave ports) is already inside the range is kept as it is.
# * The address: the only one of a single-address range, else find_best_ips_proto()'s
#   jhash2 choice (nfemu/jhash.py), reproducible and exact.
# * The port (ICMP: the echo id): kept when it is inside the given port range (or no port
#   range was given) and neither --random nor --random-fully is set; a DNAT without ports
#   never changes the port. Otherwise nf_nat_l4proto_unique_tuple() picks
#   ``min + off % range_size`` with ``off = port - base`` for a ``/BASE`` shift (exact),
#   ``off = 0`` for a destination manip (DNAT, REDIRECT, NETMAP in PREROUTING/OUTPUT)
#   without --random/--random-fully: the range's first port (exact; kernel >= 6.8, commit
#   "netfilter: nat: restore default DNAT behavior" - 5.x and 6.0-6.7 drew a random offset
#   here too; confirmed on 6.18 by tests/kernel/test_nat_vs_kernel.py), else
#   ``off = get_random_u16()`` (every source manip, and --random/--random-fully). That
#   random offset is NOT enumerated through ev.choose (a kube MASQUERADE --random-fully
#   would make 64,512 outcomes of every packet): nfemu takes the packet's own port when it
#   lies in the candidate range (a choice of nonzero probability), else the range start,
#   and says so in the event (``random_port``); the kernel test checks that the kernel's
#   choice lies in that range.
# * SNAT without a port range on that path uses the kernel's classes: 1-511, 600-1023 or
#   1024-65535 after the original port.
# Ports exist for tcp, udp and sctp packets (the kernel also rewrites udplite and dccp, whose
# headers the Packet does not model) and not in non-first fragments (conntrack reassembles
# before NAT in the kernel). ICMP errors are rewritten in the outer header only.

MANIP_SRC, MANIP_DST = "src", "dst"
IPS_SRC_NAT, IPS_DST_NAT = 1 << 4, 1 << 5
IPS_SRC_NAT_DONE, IPS_DST_NAT_DONE = 1 << 7, 1 << 8
_RANDOM_ALL = _PROTO_RANDOM | _PROTO_RANDOM_FULLY
_L4_PORTS = frozenset({6, 17, 132})          # the packet has sport/dport
_ICMP_PROTOS = frozenset({1, 58})
# icmp_manip_pkt()/icmpv6_manip_pkt(): the types whose echo id NAT rewrites
_ICMP_ID_TYPES = {1: frozenset({0, 8, 13, 14, 15, 16, 17, 18}), 58: frozenset({128, 129})}


def _l4_key(pkt, manip: str) -> int | None:
    """The manipulable part of the tuple: the port of the manip's side, or the ICMP id
    (tuple->src.u.icmp.id, the same for either side); None when the protocol has none."""
    if pkt.frag:
        return None
    if pkt.proto in _L4_PORTS:
        return pkt.sport if manip == MANIP_SRC else pkt.dport
    if pkt.proto in _ICMP_PROTOS:
        return pkt.icmp_rest >> 16
    return None


def _addr_in_range(addr: int, r: NatRange) -> bool:
    """nf_nat_inet_in_range() (host-order / memcmp comparison)."""
    return r.min_addr <= addr <= r.max_addr


def _key_in_range(key: int | None, r: NatRange) -> bool:
    """l4proto_in_range(): protocols without a key are always in range."""
    return key is None or r.min_port <= key <= r.max_port


def _candidate(pkt, manip: str, addr: int, key: int | None):
    """The connection's tuple with the manip's side replaced (nfemu.conntrack.CtTuple)."""
    from ..conntrack import CtTuple
    if pkt.proto in _ICMP_PROTOS:
        ident = key if key is not None else pkt.icmp_rest >> 16
        kind = pkt.icmp_type << 8 | pkt.icmp_code
        if manip == MANIP_SRC:
            return CtTuple(pkt.proto, addr, pkt.dst, ident, kind)
        return CtTuple(pkt.proto, pkt.src, addr, ident, kind)
    sport, dport = (pkt.sport, pkt.dport) if key is not None else (0, 0)
    if manip == MANIP_SRC:
        return CtTuple(pkt.proto, addr, pkt.dst, key if key is not None else 0, dport)
    return CtTuple(pkt.proto, pkt.src, addr, sport, key if key is not None else 0)


class _Clash:
    """What get_unique_tuple() asks of the conntrack table: nf_nat_used_tuple() and
    find_appropriate_src(). Without a table (a single-packet trace) nothing is taken."""

    __slots__ = ("table", "ct", "now", "hint")

    def __init__(self, ev):
        self.table = getattr(ev, "conntrack", None) if ev is not None else None
        self.ct = ev.ct if ev is not None else None
        self.now = ev.now if ev is not None else None
        self.hint = getattr(ev, "nat_port_hint", None) if ev is not None else None

    def used(self, pkt, manip: str, addr: int, key: int | None) -> bool:
        if self.table is None:
            return False
        return self.table.nat_used(_candidate(pkt, manip, addr, key), self.ct, self.now)

    def appropriate_src(self, pkt, r: NatRange, zone: int):
        """find_appropriate_src(): an earlier connection from the same source (protocol,
        address, port) whose mapped source is inside the range gives its mapping."""
        if self.table is None:
            return None
        key = _l4_key(pkt, MANIP_SRC)
        for other in self.table.appropriate_src(zone, pkt.proto, pkt.src,
                                                key if key is not None else 0):
            addr = other.repl_dst
            mapped = other.repl_dport if pkt.proto in _L4_PORTS else (
                other.repl_sport if pkt.proto in _ICMP_PROTOS else None)
            if key is None:
                mapped = None
            if (not r.flags & _MAP_IPS or _addr_in_range(addr, r)) and (
                    not r.flags & _PROTO_SPECIFIED or _key_in_range(mapped, r)):
                return addr, mapped
        return None


_MAX_ATTEMPTS = 128          # NF_NAT_MAX_ATTEMPTS


def _unique_key(pkt, addr: int, key: int, r: NatRange, manip: str,
                clash: _Clash) -> tuple[int, tuple | None]:
    """nf_nat_l4proto_unique_tuple(): the first free key from an offset into the range.
    Returns the key and, when the kernel's offset is random, the candidate range (first,
    last) nfemu chose from deterministically (or by ``nat_port_hint``)."""
    f = int(r.flags)
    proto = pkt.proto
    if proto in _ICMP_PROTOS:
        if not f & _PROTO_SPECIFIED:
            lo, size = 0, 65536
        else:
            lo, size = r.min_port, (r.max_port - r.min_port + 1) & 0xFFFFFFFF
    else:
        if not f & _PROTO_SPECIFIED:
            if manip == MANIP_DST:              # "If it's dst rewrite, can't change port"
                return key, None
            if key < 1024:
                lo, size = (1, 511) if key < 512 else (600, 1023 - 600 + 1)
            else:
                lo, size = 1024, 65535 - 1024 + 1
        else:
            lo, hi = r.min_port, r.max_port
            if hi < lo:
                lo, hi = hi, lo
            size = hi - lo + 1
    random_range = None
    if f & _PROTO_OFFSET:
        off = (key - r.base_port) & 0xFFFF
    elif manip == MANIP_DST and not f & _RANDOM_ALL:
        off = 0                                   # the range's first port (kernel >= 6.8)
    else:
        # off = get_random_u16(): the hint's choice, else a deterministic representative:
        # the packet's own key when it lies in the candidate range, else the first
        last = min(lo + size - 1, 0xFFFF)
        if size > 1:
            random_range = (lo, last)
        want = clash.hint(pkt, lo, last) if clash.hint is not None else key
        off = (want - lo) & 0xFFFF if lo <= want <= last else 0
    attempts = min(size, _MAX_ATTEMPTS)
    candidate = key
    while True:
        for _ in range(attempts):
            candidate = (lo + off % size) & 0xFFFF
            if not clash.used(pkt, manip, addr, candidate):
                return candidate, random_range
            off = (off + 1) & 0xFFFF
        if attempts >= size or attempts < 16:
            # every candidate taken: the kernel keeps the last one and the insertion at
            # confirmation fails (the packet is dropped)
            return candidate, random_range
        attempts //= 2          # another round from a new random offset (nfemu: go on)


def unique_tuple(pkt, r: NatRange, manip: str, zone: int = 0, ev=None):
    """get_unique_tuple(): the new (address, key) of the manip's side and the random port
    range when the port was a random choice (None otherwise). With ``ev.conntrack`` (a
    stateful node) the candidates are checked against the connections in the table
    (nf_nat_used_tuple) and an earlier mapping of the same source is reused
    (find_appropriate_src)."""
    clash = _Clash(ev)
    f = int(r.flags)
    addr = pkt.src if manip == MANIP_SRC else pkt.dst
    key = _l4_key(pkt, manip)
    # 1) SNAT: the original tuple, when it is already in the range and free; else an
    #    existing mapping of the same source
    if manip == MANIP_SRC and not f & _RANDOM_ALL:
        # in_range() always tests the source side (NF_NAT_MANIP_SRC)
        if (not f & _MAP_IPS or _addr_in_range(pkt.src, r)) and (
                not f & _PROTO_SPECIFIED or _key_in_range(_l4_key(pkt, MANIP_SRC), r)):
            if not clash.used(pkt, manip, addr, key):
                return addr, key, None
        else:
            found = clash.appropriate_src(pkt, r, zone)
            if found is not None and not clash.used(pkt, manip, found[0], found[1]):
                return found[0], found[1], None
    # 2) the address
    if f & _MAP_IPS:
        addr = find_best_ip(pkt.src, pkt.dst, r.min_addr, r.max_addr, pkt.family,
                            manip == MANIP_SRC, bool(f & _PERSISTENT), zone)
    # 3) keep the port when it is in range and free
    if not f & _RANDOM_ALL:
        if f & _PROTO_SPECIFIED:
            if not f & _PROTO_OFFSET and _key_in_range(key, r) and (
                    r.min_port == r.max_port or not clash.used(pkt, manip, addr, key)):
                return addr, key, None
        elif not clash.used(pkt, manip, addr, key):
            return addr, key, None
    if key is None:
        return addr, key, None
    key, random_range = _unique_key(pkt, addr, key, r, manip, clash)
    return addr, key, random_range


def hook_manip(hook: str) -> str:
    """HOOK2MANIP(): POSTROUTING and INPUT decide the source, PREROUTING and OUTPUT the
    destination."""
    return MANIP_SRC if hook in (POST, IN) else MANIP_DST


def not_evaluable(message: str) -> Exception:
    from ..interp import NotEvaluable  # late: interp imports the engine
    return NotEvaluable(message)


def _addr_text(addr: int, family: int) -> str:
    return int_to_ipv4(addr) if family == 4 else int_to_ipv6(addr)


def nat_setup(pkt, ev, r: NatRange, manip: str, kind: str, by: str | None = None,
              quiet_unchanged: bool = False):
    """nf_nat_setup_info() for this packet's connection, then the rewrite nf_nat_packet()
    makes after the nat hook: the packet with its new source or destination, verdict ACCEPT
    (NF_ACCEPT). The binding is recorded as an event ``kind``; ``ev.ct`` (when tracked)
    gets the reply tuple, the IPS_*_NAT(_DONE) status bits, the SNAT/DNAT ctstate bits (only
    when the tuple changed, as xt_conntrack tests IPS_SRC_NAT/IPS_DST_NAT) and
    snat_done/dnat_done. A manip already decided for the connection is the kernel's
    WARN_ON(nf_nat_initialized()) -> NF_DROP."""
    Verdict, TargetResult = _engine.Verdict, _engine.TargetResult
    ct = ev.ct
    if ct is not None and ct.untracked:
        ct = None
    if ct is not None and (ct.snat_done if manip == MANIP_SRC else ct.dnat_done):
        ev.record(kind, **({"by": by} if by else {}),
                  error="NAT manip already set up for this connection (kernel: "
                        "WARN_ON(nf_nat_initialized) -> NF_DROP)")
        return TargetResult(Verdict.DROP, pkt)
    zone = ct.zone if ct is not None else 0
    addr, key, random_range = unique_tuple(pkt, r, manip, zone, ev)
    changes: dict = {}
    if manip == MANIP_SRC:
        if addr != pkt.src:
            changes["src"] = addr
        if key is not None and pkt.proto in _L4_PORTS and key != pkt.sport:
            changes["sport"] = key
    else:
        if addr != pkt.dst:
            changes["dst"] = addr
        if key is not None and pkt.proto in _L4_PORTS and key != pkt.dport:
            changes["dport"] = key
    if (key is not None and pkt.proto in _ICMP_PROTOS and key != pkt.icmp_rest >> 16
            and pkt.icmp_type in _ICMP_ID_TYPES[pkt.proto]):
        changes["icmp_rest"] = (key << 16) | (pkt.icmp_rest & 0xFFFF)
    changed = bool(changes) or (key is not None and pkt.proto in _ICMP_PROTOS
                                and key != pkt.icmp_rest >> 16)
    new = pkt.replace(**changes) if changes else pkt
    if ct is not None:
        if changed:
            # nf_conntrack_alter_reply(ct, invert(new_tuple))
            if manip == MANIP_SRC:
                ct.repl_dst = addr
                if pkt.proto in _L4_PORTS and key is not None:
                    ct.repl_dport = key
                elif pkt.proto in _ICMP_PROTOS and key is not None:
                    ct.repl_sport = key         # the echo id is src.u.icmp.id both ways
                ct.status |= IPS_SRC_NAT
                ct.state |= _engine.CtState.SNAT
            else:
                ct.repl_src = addr
                if pkt.proto in _L4_PORTS and key is not None:
                    ct.repl_sport = key
                elif pkt.proto in _ICMP_PROTOS and key is not None:
                    ct.repl_sport = key
                ct.status |= IPS_DST_NAT
                ct.state |= _engine.CtState.DNAT
        if manip == MANIP_SRC:
            ct.status |= IPS_SRC_NAT_DONE
            ct.snat_done = True
        else:
            ct.status |= IPS_DST_NAT_DONE
            ct.dnat_done = True
    to = _addr_text(addr, pkt.family)
    if key is not None and pkt.proto in _L4_PORTS:
        to = (f"[{to}]" if pkt.family == 6 else to) + f":{key}"
    detail: dict = {"to": to}
    if by is not None:
        detail["by"] = by
    if r.flags & (_MAP_IPS | _PROTO_SPECIFIED):
        detail["range"] = r.text()
    if random_range is not None:
        detail["random_port"] = (f"{random_range[0]}-{random_range[1]} (the kernel draws "
                                 "get_random_u16(); nfemu keeps the packet's port when in "
                                 "range, else the first)")
    if not changed:
        if quiet_unchanged:
            return TargetResult(Verdict.ACCEPT, new)
        detail["unchanged"] = True
    ev.record(kind, **detail)
    return TargetResult(Verdict.ACCEPT, new)


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
