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
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Family, Match
from ..protocols import parse_protocol
from ..util import int_to_ipv4, int_to_ipv6, mask_to_prefix
from .base import ExtSpec, Given, RuleContext
from .ports import getportbyname
from .xthost import parse_hostmask
from .xtopt import XtOpt, parse_uint_range, xt_collect, xt_fcheck, xt_opts


class CtState(enum.IntFlag):
    """XT_CONNTRACK_STATE_* bits (xt_conntrack.h): 1 << (ctinfo + 1) for the tracked states."""
    INVALID = 1 << 0
    ESTABLISHED = 1 << 1
    RELATED = 1 << 2
    NEW = 1 << 3
    SNAT = 1 << 6
    DNAT = 1 << 7
    UNTRACKED = 1 << 8

    # Flag's operators make their result through EnumType.__call__ (about 0.5 us each),
    # and conntrack, NAT, the pipeline and the matches combine states for every packet.
    # These return the very same objects Flag.__and__/__or__/__xor__ return (the member or
    # pseudo-member the enum keeps in its own value map; a value not met yet is made by
    # the enum as before), for another CtState or a plain int; any other operand goes to
    # Flag's operator unchanged.
    def __and__(self, other):
        cls = other.__class__
        if cls is CtState:
            value = self._value_ & other._value_
        elif cls is int:
            value = self._value_ & other
        else:
            return enum.Flag.__and__(self, other)
        member = _CT_MEMBERS.get(value)
        return CtState(value) if member is None else member

    def __or__(self, other):
        cls = other.__class__
        if cls is CtState:
            value = self._value_ | other._value_
        elif cls is int:
            value = self._value_ | other
        else:
            return enum.Flag.__or__(self, other)
        member = _CT_MEMBERS.get(value)
        return CtState(value) if member is None else member

    def __xor__(self, other):
        cls = other.__class__
        if cls is CtState:
            value = self._value_ ^ other._value_
        elif cls is int:
            value = self._value_ ^ other
        else:
            return enum.Flag.__xor__(self, other)
        member = _CT_MEMBERS.get(value)
        return CtState(value) if member is None else member

    __rand__ = __and__
    __ror__ = __or__
    __rxor__ = __xor__


#: the enum's own value -> member map (members and the pseudo-members made so far)
_CT_MEMBERS = CtState._value2member_map_


def ctstate(value: int) -> CtState:
    """``CtState(value)``, the same object, without EnumType.__call__ when the value was
    met before (the per-packet path turns plain-int state bits back into CtState)."""
    member = _CT_MEMBERS.get(value)
    return CtState(value) if member is None else member


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


#: nf_conntrack_common.h status bits the state test reads
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
_CTINFO_BITS = CtState.NEW | CtState.ESTABLISHED | CtState.RELATED
# the same as plain ints, for the per-packet path (IntFlag operations are slow)
_INVALID, _ESTABLISHED, _RELATED, _NEW, _SNAT, _DNAT, _UNTRACKED = (
    int(CtState.INVALID), int(CtState.ESTABLISHED), int(CtState.RELATED), int(CtState.NEW),
    int(CtState.SNAT), int(CtState.DNAT), int(CtState.UNTRACKED))
_CTINFO = int(_CTINFO_BITS)


def tracked(ev):
    """``nf_ct_get(skb)`` as the matches see it: the CtView, or None when the packet has no
    entry (``ev.ct`` None, or a view in state INVALID) or is untracked (kernel >= 4.12
    returns NULL for IP_CT_UNTRACKED)."""
    ct = ev.ct
    if ct is None or ct.untracked or int(ct.state) & (_UNTRACKED | _INVALID):
        return None
    return ct


def statebit(ev) -> CtState:
    """XT_CONNTRACK_STATE_BIT(ctinfo) (NEW, ESTABLISHED, RELATED; reply packets count as
    their state), UNTRACKED for an untracked packet, INVALID when there is no entry.
    (Tested in plain ints: it runs for every ``-m state`` rule a packet meets.)"""
    ct = ev.ct
    if ct is None:
        return CtState.INVALID
    state = int(ct.state)
    if ct.untracked or state & _UNTRACKED:
        return CtState.UNTRACKED
    if state & _INVALID:
        return CtState.INVALID
    return ctstate(state & _CTINFO)


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

    def match(self, pkt, ev) -> bool:
        """xt_conntrack.c conntrack_mt() (revision 3, ct_proto_port_check_v3).

        The packet's ``nf_ct_get()`` is ``ev.ct`` (see :func:`statebit`): no entry is INVALID
        and untracked is UNTRACKED, and in both cases ``ct`` is NULL, so after the --ctstate
        test the match returns whether --ctstate was given: every other option is then
        skipped (``--ctstate INVALID --ctproto tcp`` matches a packet without entry; a rule
        with only --ctproto does not). SNAT/DNAT join the state bits from IPS_SRC_NAT /
        IPS_DST_NAT. Addresses compare under their masks, ports as inclusive ranges (the
        tuple's ``u.all``: the ICMP id for ICMP), --ctstatus matches when any listed bit is
        set, --ctdir ORIGINAL/REPLY by the packet's direction.
        --ctexpire uses ``ct.expires`` (remaining seconds) when the CtView has it, else 0
        (what nf_ct_expires gives an unconfirmed entry)."""
        # statebit() and tracked() in plain ints: this runs for most kube-proxy packets
        ct = ev.ct
        if ct is None:
            bits = _INVALID
        else:
            s = int(ct.state)
            if ct.untracked or s & _UNTRACKED:
                bits, ct = _UNTRACKED, None
            elif s & _INVALID:
                bits, ct = _INVALID, None
            else:
                bits = s & _CTINFO
                if ct.status & IPS_SRC_NAT or s & _SNAT:
                    bits |= _SNAT
                if ct.status & IPS_DST_NAT or s & _DNAT:
                    bits |= _DNAT
        if self.state is not None and bool(self.state._value_ & bits) == self.state_inv:
            return False
        if ct is None:
            return self.state is not None
        if (self.origsrc is None and self.origdst is None and self.replsrc is None
                and self.repldst is None and self.proto is None and self.origsrc_port is None
                and self.origdst_port is None and self.replsrc_port is None
                and self.repldst_port is None and self.status is None
                and self.expires is None and self.direction is None):
            return True     # --ctstate alone, the common case
        if self.direction is not None and \
                (not ct.reply) != (self.direction is CtDir.ORIGINAL):
            return False
        for value, inv, addr in ((self.origsrc, self.origsrc_inv, ct.orig_src),
                                 (self.origdst, self.origdst_inv, ct.orig_dst),
                                 (self.replsrc, self.replsrc_inv, ct.repl_src),
                                 (self.repldst, self.repldst_inv, ct.repl_dst)):
            if value is not None and (((addr ^ value[0]) & value[1]) == 0) == inv:
                return False
        if self.proto is not None and (ct.proto == self.proto) == self.proto_inv:
            return False
        for rng, inv, port in ((self.origsrc_port, self.origsrc_port_inv, ct.orig_sport),
                               (self.origdst_port, self.origdst_port_inv, ct.orig_dport),
                               (self.replsrc_port, self.replsrc_port_inv, ct.repl_sport),
                               (self.repldst_port, self.repldst_port_inv, ct.repl_dport)):
            if rng is not None and (rng[0] <= port <= rng[1]) == inv:
                return False
        if self.status is not None and bool(self.status & ct.status) == self.status_inv:
            return False
        if self.expires is not None:
            expires = getattr(ct, "expires", 0) or 0
            if (self.expires[0] <= expires <= self.expires[1]) == self.expires_inv:
                return False
        return True

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
            f[key] = parse_hostmask(g, ctx.family, "conntrack")
        elif g.name.endswith("port"):
            key = key[:-4] + "_port"
            f[key] = parse_port_pair(g)
        elif g.name == "ctstatus":
            names = parse_list(g.arg, STATUS_NAMES, "ctstatus", g)
            f["status"] = CtStatus(sum({CtStatus[n] for n in names if n != "NONE"}))
            key = "status"
        elif g.name == "ctexpire":
            f["expires"] = parse_uint_range(g, "conntrack", 0xFFFFFFFF)
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
