"""``-m conntrack`` (extensions/libxt_conntrack.c revision 3; kernel net/netfilter/xt_conntrack.c
conntrack_mt_v3 / conntrack_mt_check).

Options: ``[!] --ctstate LIST``, ``[!] --ctproto P``, ``[!] --ctorigsrc|--ctorigdst|--ctreplsrc|
--ctrepldst ADDR[/MASK]``, ``[!] --ctorigsrcport|--ctorigdstport|--ctreplsrcport|--ctrepldstport
P[:P]``, ``[!] --ctstatus LIST``, ``[!] --ctexpire N[:M]``, ``--ctdir ORIGINAL|REPLY``.
iptables-save prints them in that fixed order, the protocol as a number, addresses as given
(not masked) with ``/len`` unless the mask is all ones, a port or expiry pair as one number
when both ends are equal. ``-m state`` (state.py) is the same test as ``--ctstate``."""
from __future__ import annotations

import enum
import socket
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Family, Match
from ..protocols import parse_protocol
from ..util import int_to_ipv4, int_to_ipv6, mask_to_prefix, prefix_to_mask
from .base import ExtSpec, Given, RuleContext
from .mark import XtOpt, strtoul, strtoui, strtoui_all, xt_collect, xt_fcheck, xt_opts
from .ports import SERVICES_ANY


class CtState(enum.IntFlag):
    """XT_CONNTRACK_STATE_* bits (xt_conntrack.h): 1 << (ctinfo + 1) for the tracked states."""
    INVALID = 1 << 0
    ESTABLISHED = 1 << 1
    RELATED = 1 << 2
    NEW = 1 << 3
    SNAT = 1 << 6
    DNAT = 1 << 7
    UNTRACKED = 1 << 8


#: how iptables parses (prefix match, first wins) and prints states
STATE_PARSE_ORDER = ("INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED", "SNAT", "DNAT")
STATE_PRINT_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")


class CtStatus(enum.IntFlag):
    """IPS_* status bits the match can test."""
    EXPECTED = 1 << 0
    SEEN_REPLY = 1 << 1
    ASSURED = 1 << 2
    CONFIRMED = 1 << 3


class CtDir(enum.IntEnum):
    ORIGINAL = 0
    REPLY = 1


def states_text(states: CtState, order=STATE_PRINT_ORDER) -> str:
    return ",".join(n for n in order if states & CtState[n])


def parse_list(text: str, names: tuple[str, ...], what: str, g: Given) -> int:
    """conntrack_ps_states()/conntrack_ps_statuses(): comma list of case-insensitive name
    prefixes (empty items refused); returns the names matched, as a set of names' indexes."""
    result: list[str] = []
    rest = text
    while True:
        word, comma, after = rest.partition(",")
        name = next((n for n in names if word and n[:len(word)].lower() == word.lower()
                     and len(word) <= len(n)), None)
        if name is None:
            raise g.error(f"Bad {what} \"{rest}\"")
        result.append(name)
        if not comma:
            return result
        rest = after


def parse_host(text: str, family: Family, g: Given) -> int:
    if family is Family.IPV4:
        # getaddrinfo() reads numeric hosts with inet_aton: 1-4 parts, hex/octal allowed
        if text and all(c in "0123456789abcdefABCDEFxX." for c in text):
            try:
                return int.from_bytes(socket.inet_aton(text), "big")
            except OSError:
                pass
    else:
        try:
            return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        except (OSError, ValueError):
            pass
    raise g.error(f"host/network `{text}' not found (nfemu accepts numeric addresses only)")


def parse_hostmask(g: Given, family: Family, ext: str = "conntrack") -> tuple[int, int]:
    """XTTYPE_HOSTMASK: ``host[/len|/mask]``; a mask that is not contiguous counts as all
    ones (libxtables keeps hlen = -1 and never narrows the mask)."""
    width = family.width
    host, slash, mask_text = g.arg.partition("/")
    addr = parse_host(host, family, g)
    mask = (1 << width) - 1
    if slash:
        plen = strtoui_all(mask_text, 0, width)
        if plen is not None:
            mask = prefix_to_mask(plen, width)
        else:
            try:
                m = parse_host(mask_text, family, g)
            except ParseError:
                raise g.error(f"{ext}: bad value for option \"--{g.name}\", neither a valid "
                              f"network mask nor valid CIDR (0-{width}).") from None
            if mask_to_prefix(m, width) is not None:
                mask = m
    return addr, mask


def getportbyname(text: str) -> int | None:
    """xtables_getportbyname(): getaddrinfo(NULL, text): a base-10 number (white space and a
    sign allowed, kept to its low 16 bits when it fits an int) or a service name."""
    value, end, _ = strtoul(text, 0, 10)
    if end == len(text):
        as_int = value & 0xFFFFFFFF          # glibc keeps the number in an int
        if as_int < 0x80000000:
            return as_int & 0xFFFF           # and htons() keeps 16 bits
    return SERVICES_ANY.get(text)


def parse_port_pair(g: Given, ext: str = "conntrack") -> tuple[int, int]:
    """XTTYPE_PORTRC (xtopt_parse_mport): ``P``, ``P:Q``, empty parts default to 0/65535;
    no ordering check."""
    parts = g.arg.split(":")
    if len(parts) > 2:
        raise g.error(f"{ext}: Too many components for option \"--{g.name}\" (max: 2)")
    values = []
    for i, part in enumerate(parts):
        if part == "":
            values.append(0 if i == 0 else 0xFFFF)
            continue
        port = getportbyname(part)
        if port is None:
            raise g.error(f"Port \"{part}\" does not resolve to anything.")
        values.append(port)
    return values[0], values[-1]


def parse_uint32_range(g: Given, ext: str = "conntrack") -> tuple[int, int]:
    """XTTYPE_UINT32RC (xtopt_parse_mint): ``N`` or ``N:M``; empty parts default to 0 and
    4294967295; no ordering check."""
    text = g.arg
    lmax = 0xFFFFFFFF
    values: list[int] = []
    pos = 0
    while True:
        if len(values) == 2:
            raise g.error(f"{ext}: Too many components for option \"--{g.name}\" (max: 2)")
        if pos >= len(text) or text[pos] == ":":
            end = pos
            value = lmax if len(values) == 1 else 0
        else:
            got = strtoui(text, pos, 0, lmax)
            if got is None:
                raise g.error(f"{ext}: bad value for option \"--{g.name}\" near "
                              f"\"{text[pos:]}\", or out of range (0-{lmax}).")
            value, end = got
            if end < len(text) and text[end] != ":":
                raise g.error(f"{ext}: Argument to \"--{g.name}\" has unexpected characters "
                              f"near \"{text[end:]}\".")
        values.append(value)
        if end >= len(text):
            break
        pos = end + 1
    return values[0], values[-1]


def _addr_text(addr: int, mask: int, family: Family) -> str:
    to_text = int_to_ipv4 if family is Family.IPV4 else int_to_ipv6
    prefix = mask_to_prefix(mask, family.width)
    if prefix == family.width:
        return to_text(addr)
    return f"{to_text(addr)}/{prefix}"


def _pair_text(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}:{hi}"


AddrMask = tuple[int, int]   # (address as given, mask)
Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Conntrack(Match):
    NAME = "conntrack"
    family: Family = Family.IPV4
    state: CtState | None = None
    state_inv: bool = False
    proto: int | None = None
    proto_inv: bool = False
    origsrc: AddrMask | None = None
    origsrc_inv: bool = False
    origdst: AddrMask | None = None
    origdst_inv: bool = False
    replsrc: AddrMask | None = None
    replsrc_inv: bool = False
    repldst: AddrMask | None = None
    repldst_inv: bool = False
    origsrc_port: Range | None = None
    origsrc_port_inv: bool = False
    origdst_port: Range | None = None
    origdst_port_inv: bool = False
    replsrc_port: Range | None = None
    replsrc_port_inv: bool = False
    repldst_port: Range | None = None
    repldst_port_inv: bool = False
    status: CtStatus | None = None
    status_inv: bool = False
    expires: Range | None = None
    expires_inv: bool = False
    direction: CtDir | None = None

    def save(self) -> str:
        out = []

        def opt(name: str, inv: bool, text: str) -> None:
            out.append(f"{' !' if inv else ''} --{name} {text}")

        if self.state is not None:
            opt("ctstate", self.state_inv, states_text(self.state))
        if self.proto is not None:
            opt("ctproto", self.proto_inv, str(self.proto))
        for name in ("origsrc", "origdst", "replsrc", "repldst"):
            value = getattr(self, name)
            if value is not None:
                opt("ct" + name, getattr(self, name + "_inv"), _addr_text(*value, self.family))
        for name in ("origsrc", "origdst", "replsrc", "repldst"):
            value = getattr(self, name + "_port")
            if value is not None:
                opt(f"ct{name}port", getattr(self, name + "_port_inv"), _pair_text(*value))
        if self.status is not None:
            text = ",".join(s.name for s in CtStatus if self.status & s) or "NONE"
            opt("ctstatus", self.status_inv, text)
        if self.expires is not None:
            opt("ctexpire", self.expires_inv, _pair_text(*self.expires))
        if self.direction is not None:
            opt("ctdir", False, self.direction.name)
        return "".join(out)


OPTIONS = (
    XtOpt("ctstate", 0, invert=True),
    XtOpt("ctproto", 1, invert=True),
    XtOpt("ctorigsrc", 2, invert=True),
    XtOpt("ctorigdst", 3, invert=True),
    XtOpt("ctreplsrc", 4, invert=True),
    XtOpt("ctrepldst", 5, invert=True),
    XtOpt("ctstatus", 10, invert=True),
    XtOpt("ctexpire", 11, invert=True),
    XtOpt("ctorigsrcport", 6, invert=True),
    XtOpt("ctorigdstport", 7, invert=True),
    XtOpt("ctreplsrcport", 8, invert=True),
    XtOpt("ctrepldstport", 9, invert=True),
    XtOpt("ctdir", 12),
)
STATUS_NAMES = ("NONE", "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED")


def build(given: list[Given], ctx: RuleContext) -> Conntrack:
    seen = xt_collect("conntrack", OPTIONS, given)
    f: dict = {"family": ctx.family}
    for g in given:
        key = g.name[2:]
        if g.name == "ctstate":
            names = parse_list(g.arg, STATE_PARSE_ORDER, "ctstate", g)
            f["state"] = CtState(sum({CtState[n] for n in names}))
        elif g.name == "ctproto":
            proto = parse_protocol(g.arg)
            if proto is None:
                raise g.error(f"unknown protocol \"{g.arg}\" specified")
            f["proto"] = proto
        elif g.name in ("ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst"):
            f[key] = parse_hostmask(g, ctx.family)
        elif g.name.endswith("port"):
            key = key[:-4] + "_port"
            f[key] = parse_port_pair(g)
        elif g.name == "ctstatus":
            names = parse_list(g.arg, STATUS_NAMES, "ctstatus", g)
            f["status"] = CtStatus(sum({CtStatus[n] for n in names if n != "NONE"}))
            key = "status"
        elif g.name == "ctexpire":
            f["expires"] = parse_uint32_range(g)
            key = "expires"
        elif g.name == "ctdir":
            word = g.arg.upper()
            if word not in ("ORIGINAL", "REPLY"):
                raise g.error(f"conntrack: Bad value for \"--ctdir\" option: \"{g.arg}\"")
            f["direction"] = CtDir[word]
            continue
        f[key + "_inv"] = g.inv
    if not seen:
        raise ParseError("conntrack: At least one option is required", ctx.loc)
    xt_fcheck("conntrack", OPTIONS, seen, ctx)
    return Conntrack(**f)


SPEC = ExtSpec("conntrack", "match", xt_opts(OPTIONS), build)
