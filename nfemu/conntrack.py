"""Connection tracking: the kernel's conntrack table, driven by packet timestamps (issue 4).

Mirrors net/netfilter/nf_conntrack_core.c (nf_conntrack_in, resolve_normal_ct,
init_conntrack, __nf_conntrack_confirm), nf_conntrack_proto_tcp.c (tcp_conntracks[][][],
tcp_new, nf_conntrack_tcp_packet, the parts of tcp_in_window that decide timeouts),
nf_conntrack_proto_udp.c (nf_conntrack_udp_packet), nf_conntrack_proto_icmp.c
(icmp_pkt_to_tuple, nf_conntrack_invert_icmp_tuple, nf_conntrack_icmp_packet,
nf_conntrack_icmpv4_error, nf_conntrack_inet_error) and the generic protocol, with the
default sysctls (nf_conntrack_tcp_loose=1, nf_conntrack_tcp_be_liberal=0,
nf_conntrack_tcp_max_retrans=3).

The usual sequence for one packet, as nf_conntrack_in and the confirm hook do it::

    entry, ctinfo = table.track(pkt, now, zone)     # PREROUTING / OUTPUT, priority -200
    ...  the chains run with ev.ct = entry (NAT changes entry.repl_*, CONNMARK entry.mark)
    if entry is not None and not entry.confirmed:
        entry = table.confirm(entry, now)           # end of POSTROUTING / INPUT
        # None: the kernel drops the packet (insert clash it cannot resolve)

``track`` is lookup + new + packet in one call; the three are also public, as asked for.

Simplifications (documented, not silent):

* TCP window tracking is not checked: every segment is taken as in window (the kernel
  marks out-of-window segments INVALID). What tcp_in_window keeps that changes timeouts
  is kept: each direction's highest sequence end (``td_end``), the unacknowledged-data flag
  (timeout ``unacknowledged`` 300 s), the highest ACK sent (``td_maxack``, which decides
  whether a RST closes an established connection), the retransmission counter of pure
  ACKs (``max_retrans`` 300 s) and the last window of an ACK (0 -> 300 s).
* No checksum verification (nf_conntrack_checksum): callers pass valid packets.
* SCTP, DCCP, GRE and the rest use the generic protocol (600 s, no state), SCTP/DCCP with
  their ports in the tuple; the kernel runs a state machine for SCTP and DCCP.
* No helpers and no expectations (IPS_EXPECTED, RELATED by helper): RELATED comes only
  from ICMP errors.
* IPv4 only for ICMP; IP fragments are not reassembled (a non-first fragment gets no
  entry: ``track`` says INVALID, where the kernel would reassemble first).
* A clash at confirmation is resolved only by merging with an identical entry; the
  kernel's UDP ``nf_ct_resolve_clash_harder`` (IPS_NAT_CLASH) is not done: such a packet
  is dropped here.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from .engine import CtView
from .ext.conntrack import CtState, CtStatus, ctstate
from .packet import (
    ICMP,
    ICMP_ERRORS,
    SCTP,
    TCP,
    TCP_ACK,
    TCP_CWR,
    TCP_ECE,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    TCP_URG,
    UDP,
    Packet,
)

__all__ = [
    "GENERIC_TIMEOUT",
    "ICMP_TIMEOUT",
    "IPS_ASSURED",
    "IPS_CONFIRMED",
    "IPS_DST_NAT",
    "IPS_SEEN_REPLY",
    "IPS_SRC_NAT",
    "REPEAT",
    "TCP_TIMEOUTS",
    "UDP_TIMEOUT",
    "UDP_TIMEOUT_STREAM",
    "ConntrackTable",
    "CtTuple",
    "Entry",
    "TcpState",
    "packet_tuple",
]

# nf_conntrack_common.h status bits
IPS_EXPECTED = int(CtStatus.EXPECTED)
IPS_SEEN_REPLY = int(CtStatus.SEEN_REPLY)
IPS_ASSURED = int(CtStatus.ASSURED)
IPS_CONFIRMED = int(CtStatus.CONFIRMED)
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_NAT_CLASH = 1 << 12   # IPS_NAT_CLASH_BIT = IPS_UNTRACKED_BIT

# the XT_CONNTRACK_STATE bits as plain ints, for the per-packet path (CtState arithmetic
# goes through the enum machinery)
_ST_SNAT, _ST_DNAT = int(CtState.SNAT), int(CtState.DNAT)
_ST_ESTABLISHED = int(CtState.ESTABLISHED)
_SEEN_ASSURED = IPS_SEEN_REPLY | IPS_ASSURED


class TcpState(enum.IntEnum):
    """enum tcp_conntrack (the order of tcp_conntrack_names[])."""
    NONE = 0
    SYN_SENT = 1
    SYN_RECV = 2
    ESTABLISHED = 3
    FIN_WAIT = 4
    CLOSE_WAIT = 5
    LAST_ACK = 6
    TIME_WAIT = 7
    CLOSE = 8
    SYN_SENT2 = 9


#: nf_conntrack_tcp_timeout_* defaults, seconds (tcp_timeouts[])
TCP_TIMEOUTS = {
    TcpState.SYN_SENT: 120, TcpState.SYN_RECV: 60, TcpState.ESTABLISHED: 432000,
    TcpState.FIN_WAIT: 120, TcpState.CLOSE_WAIT: 60, TcpState.LAST_ACK: 30,
    TcpState.TIME_WAIT: 120, TcpState.CLOSE: 10, TcpState.SYN_SENT2: 120,
}
TCP_TIMEOUT_MAX_RETRANS = 300     # TCP_CONNTRACK_RETRANS
TCP_TIMEOUT_UNACK = 300           # TCP_CONNTRACK_UNACK
TCP_MAX_RETRANS = 3               # nf_conntrack_tcp_max_retrans
UDP_TIMEOUT = 30                  # nf_conntrack_udp_timeout (UDP_CT_UNREPLIED)
UDP_TIMEOUT_STREAM = 120          # nf_conntrack_udp_timeout_stream (UDP_CT_REPLIED)
UDP_STREAM_DELAY = 2              # stream_ts = first packet + 2 s
ICMP_TIMEOUT = 30                 # nf_conntrack_icmp_timeout
GENERIC_TIMEOUT = 600             # nf_conntrack_generic_timeout

# tcp_bit_set: the row index of tcp_conntracks (get_conntrack_index)
_SYN, _SYNACK, _FIN, _ACK, _RST, _NONE = range(6)

_NO, _SS, _SR, _ES, _FW, _CW, _LA, _TW, _CL, _S2 = range(10)
_IV, _IG = 10, 11                 # TCP_CONNTRACK_MAX (invalid), TCP_CONNTRACK_IGNORE

#: tcp_conntracks[dir][index][old state] as in kernel 6.x (dir 0 original, 1 reply)
_TCP_TABLE = (
    (   # ORIGINAL   sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
        (_SS, _SS, _IG, _IG, _IG, _IG, _IG, _SS, _SS, _S2),   # syn
        (_IV, _IV, _SR, _IV, _IV, _IV, _IV, _IV, _IV, _SR),   # synack
        (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),   # fin
        (_ES, _IV, _ES, _ES, _CW, _CW, _TW, _TW, _CL, _IV),   # ack
        (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),   # rst
        (_IV,) * 10,                                          # none
    ),
    (   # REPLY
        (_IV, _S2, _IV, _IV, _IV, _IV, _IV, _SS, _IV, _S2),   # syn
        (_IV, _SR, _IG, _IG, _IG, _IG, _IG, _IG, _IG, _SR),   # synack
        (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),   # fin
        (_IV, _IG, _SR, _ES, _CW, _CW, _TW, _TW, _CL, _IG),   # ack
        (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),   # rst
        (_IV,) * 10,                                          # none
    ),
)

#: tcp_valid_flags[] (tcp_error): the FIN/SYN/RST/ACK/URG combinations that are not INVALID
_TCP_VALID_FLAGS = frozenset({
    TCP_SYN, TCP_SYN | TCP_URG, TCP_SYN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK,
    TCP_FIN | TCP_ACK, TCP_FIN | TCP_ACK | TCP_URG, TCP_ACK, TCP_ACK | TCP_URG})

# ICMP: invmap[] (the reply type of each query type) and valid_new[] (types that may start
# a connection)
_ICMP_INVERT = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
_ICMP_VALID_NEW = frozenset({8, 13, 15, 17})
_NR_ICMP_TYPES = 18

_PORT_PROTOS = frozenset({TCP, UDP, SCTP, 33, 136})      # + dccp, udplite
_PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", SCTP: "sctp", 33: "dccp",
                136: "udplite", 47: "gre"}

# per-direction TCP flags (ip_ct_tcp_state.flags)
_F_CLOSE_INIT = 0x04
_F_DATA_UNACK = 0x10
_F_MAXACK_SET = 0x20
_L_SIMULTANEOUS_OPEN = 0x04     # last_flags: IP_CT_TCP_SIMULTANEOUS_OPEN


#: TcpState by number (TcpState(n) without EnumType.__call__)
_TCP_STATES = tuple(TcpState)
_TCP_ESTABLISHED = TcpState.ESTABLISHED
#: the flag bits tcp_error and get_conntrack_index look at (not PSH, ECE, CWR)
_ACK_MASK = 0xFF & ~(TCP_ECE | TCP_CWR | TCP_PSH)


class CtTuple(NamedTuple):
    """struct nf_conntrack_tuple (IPv4): protocol, addresses and the protocol part:
    ports for tcp/udp/sctp/dccp/udplite; for ICMP ``sport`` is the echo id
    (src.u.icmp.id) and ``dport`` is type << 8 | code (dst.u.icmp.type/code, the value
    ``dst.u.all`` has); 0/0 for other protocols."""
    proto: int
    src: int
    dst: int
    sport: int
    dport: int

    def inverted(self) -> CtTuple | None:
        """nf_ct_invert_tuple(); None when the kernel cannot invert it (an ICMP type
        without a reply type)."""
        proto, src, dst, sport, dport = self
        if proto == ICMP:
            t, code = dport >> 8, dport & 0xFF
            if t not in _ICMP_INVERT:
                return None
            return _new_tuple(CtTuple, (ICMP, dst, src, sport, _ICMP_INVERT[t] << 8 | code))
        return _new_tuple(CtTuple, (proto, dst, src, dport, sport))


#: CtTuple(...) without the Python-level __new__ NamedTuple generates (which does just this)
_new_tuple = tuple.__new__


def packet_tuple(pkt: Packet) -> CtTuple | None:
    """nf_ct_get_tuple(): the tuple of a packet as conntrack reads it; None when the
    transport header is missing (non-first fragment, too short)."""
    if pkt.family != 4 or pkt.frag:
        return None
    if pkt.proto in _PORT_PROTOS:
        return CtTuple(pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport)
    if pkt.proto == ICMP:
        return CtTuple(ICMP, pkt.src, pkt.dst, pkt.icmp_rest >> 16,
                       pkt.icmp_type << 8 | pkt.icmp_code)
    return CtTuple(pkt.proto, pkt.src, pkt.dst, 0, 0)


@dataclass(slots=True)
class _TcpSide:
    """ip_ct_tcp_state: what conntrack remembers of one direction's sender."""
    td_end: int = 0
    td_maxack: int = 0
    flags: int = 0
    seen: bool = False          # td_maxwin != 0: this side has been initialised


@dataclass(slots=True)
class Entry(CtView):
    """One connection (struct nf_conn), as the matches and targets see it (a CtView: NAT
    sets ``repl_*``, status bits and ``dnat_done``/``snat_done``; CONNMARK sets ``mark``;
    CT sets ``zone``/``helper``), plus what the table keeps: the TCP state, the deadline
    (``ct->timeout``, seconds on the packets' clock), whether the entry is confirmed
    (in the table), and the protocol's private data.

    ``state`` (ctinfo as XT_CONNTRACK_STATE bits, with the SNAT/DNAT bits of the status)
    and ``reply`` (the direction) describe the packet being processed; the table sets them
    for every packet. ``expires`` is the remaining timeout at that packet (--ctexpire)."""

    tcp_state: TcpState = TcpState.NONE
    deadline: float = 0.0
    timeout: int = 0                  # the last timeout set, seconds
    confirmed: bool = False
    expires: int = 0
    killed: bool = False
    # TCP private data (struct ip_ct_tcp)
    tcp_seen: tuple = field(default_factory=lambda: (_TcpSide(), _TcpSide()))
    last_index: int = _NONE
    last_dir: int = 0
    last_seq: int = 0
    last_ack: int = 0
    last_end: int = 0
    last_win: int = 0
    last_flags: int = 0
    retrans: int = 0
    # UDP: proto.udp.stream_ts (seconds)
    stream_ts: float = 0.0

    @property
    def orig_tuple(self) -> CtTuple:
        return _new_tuple(CtTuple, (self.proto, self.orig_src, self.orig_dst,
                                    self.orig_sport, self.orig_dport))

    @property
    def repl_tuple(self) -> CtTuple:
        return _new_tuple(CtTuple, (self.proto, self.repl_src, self.repl_dst,
                                    self.repl_sport, self.repl_dport))

    def remaining(self, now: float) -> int:
        """nf_ct_expires() / HZ: whole seconds left (0 once expired)."""
        return max(0, math.floor(self.deadline - now))


def _seq_after(a: int, b: int) -> bool:
    """after(a, b) on 32-bit sequence numbers."""
    return ((b - a) & 0xFFFFFFFF) >= 0x80000000 and a != b


def _tcp_index(flags: int) -> int:
    """get_conntrack_index()."""
    if flags & TCP_RST:
        return _RST
    if flags & TCP_SYN:
        return _SYNACK if flags & TCP_ACK else _SYN
    if flags & TCP_FIN:
        return _FIN
    if flags & TCP_ACK:
        return _ACK
    return _NONE


#: get_conntrack_index() of every flags byte (the function reads only the low 8 bits)
_TCP_INDEX = tuple(_tcp_index(f) for f in range(256))


def _tcp_end(pkt: Packet) -> int:
    """segment_seq_plus_len(): seq + data length + SYN + FIN."""
    f = pkt.tcp_flags
    data = len(pkt.payload) if not pkt.captured else max(
        0, pkt.length - pkt.header_len - 20 - len(pkt.tcp_options))
    return (pkt.tcp_seq + data + (1 if f & TCP_SYN else 0) + (1 if f & TCP_FIN else 0)) \
        & 0xFFFFFFFF


REPEAT = object()    # packet(): the entry was killed, look the packet up again


class ConntrackTable:
    """The conntrack hash table of one network namespace (all zones)."""

    def __init__(self) -> None:
        # (zone, tuple) -> (entry, is the reply tuple)
        self._hash: dict[tuple[int, CtTuple], tuple[Entry, bool]] = {}
        self._entries: dict[int, Entry] = {}       # id(entry) -> entry, insertion order
        # nf_nat_bysource: (zone, proto, orig src, orig sport) -> entries, oldest first
        self._bysource: dict[tuple, list[Entry]] = {}

    # ---- lookups -----------------------------------------------------------------------
    def lookup(self, pkt: Packet, zone: int = 0,
               now: float | None = None) -> tuple[Entry | None, bool]:
        """nf_conntrack_find_get() on the packet's tuple: the confirmed entry whose original
        or reply tuple it is, and whether it is the reply one. With ``now``, expired
        entries are removed first (the kernel never returns an expired entry)."""
        t = packet_tuple(pkt)
        if t is None:
            return None, False
        return self._find(t, zone, now)

    def find(self, t: CtTuple, zone: int = 0,
             now: float | None = None) -> tuple[Entry | None, bool]:
        """nf_conntrack_find_get() on a tuple: the confirmed, unexpired entry it belongs to
        and whether it is that entry's reply tuple."""
        return self._find(t, zone, now)

    def _find(self, t: CtTuple, zone: int, now: float | None) -> tuple[Entry | None, bool]:
        hit = self._hash.get((zone, t))
        if hit is None:
            return None, False
        if now is not None and hit[0].deadline <= now:
            self._remove(hit[0])
            return None, False
        return hit

    def tuple_in_use(self, tuple_: CtTuple, ignore: Entry | None = None,
                     zone: int = 0, now: float | None = None) -> bool:
        """nf_conntrack_tuple_taken(): is TUPLE the original or reply tuple of a confirmed,
        unexpired entry other than IGNORE (NAT's unique-tuple check asks this of the
        inverse of the reply tuple it would make). As in the kernel, an entry whose
        original tuple equals IGNORE's is the same flow (two packets of one flow racing)
        and does not count: confirmation resolves that clash."""
        hit = self._hash.get((zone, tuple_))
        if hit is None:
            return False
        other = hit[0]
        if other is ignore:
            return False
        if now is not None and other.deadline <= now:
            self._remove(other)             # nf_ct_gc_expired
            return False
        if ignore is not None and other.orig_tuple == ignore.orig_tuple:
            return False
        return True

    def nat_used(self, candidate: CtTuple, ct: Entry | None, now: float | None) -> bool:
        """nf_nat_used_tuple(): would CANDIDATE (the original tuple after a manip) clash,
        i.e. is its inverse, the reply tuple NAT would give CT, taken? (The kernel's last
        attempts for a TCP SYN may evict a TIME_WAIT entry, nf_nat_used_tuple_harder;
        nfemu does not, so it treats that tuple as taken.)"""
        reply = candidate.inverted()
        if reply is None:
            return False
        return self.tuple_in_use(reply, ct, ct.zone if ct is not None else 0, now)

    def appropriate_src(self, zone: int, proto: int, src: int, sport: int):
        """The entries of nf_nat_bysource that find_appropriate_src() walks for this
        original source (protocol, address, port or ICMP id), most recent first: every
        confirmed entry whose source manip was set up (a null binding included)."""
        return reversed(self._bysource.get((zone, proto, src, sport), ()))

    def entries(self) -> list[Entry]:
        """The confirmed entries, oldest first (what conntrack -L lists)."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    # ---- creating and confirming -------------------------------------------------------
    def new(self, pkt: Packet, now: float, zone: int = 0) -> Entry | None:
        """init_conntrack(): an unconfirmed entry for the packet's tuple, its reply tuple
        the inverse (ctinfo NEW). None when the tuple cannot be read or inverted (an ICMP
        type without a reply type): the kernel leaves such a packet without entry."""
        t = packet_tuple(pkt)
        r = t.inverted() if t is not None else None
        if r is None:
            return None
        return Entry(state=CtState.NEW, proto=t.proto, orig_src=t.src, orig_dst=t.dst,
                     orig_sport=t.sport, orig_dport=t.dport, repl_src=r.src,
                     repl_dst=r.dst, repl_sport=r.sport, repl_dport=r.dport, zone=zone,
                     reply=False, deadline=now)

    def confirm(self, entry: Entry, now: float) -> Entry | None:
        """__nf_conntrack_confirm(): insert an unconfirmed entry under both tuples (the
        reply tuple as NAT left it). Returns the entry the packet now belongs to.

        A clash (either tuple already in the table): the kernel's nf_ct_resolve_clash
        attaches the packet to the existing entry when the two are the same connection
        (nf_ct_can_merge: identical tuples both ways, same status NAT bits); otherwise
        the packet is dropped (insert_failed), which is ``None`` here (UDP's
        resolve_clash_harder is not modelled, see the module docstring)."""
        if entry.confirmed:
            return entry
        if entry.killed:
            return None     # the l4 handler deleted it already (RST answering a SYN)
        o, r, z = entry.orig_tuple, entry.repl_tuple, entry.zone
        clash_o, clash_r = self._hash.get((z, o)), self._hash.get((z, r))
        if clash_o is not None or clash_r is not None:
            other = (clash_o or clash_r)[0]
            if (clash_o is not None and not clash_o[1] and other.repl_tuple == r
                    and (other.status ^ entry.status) & (IPS_SRC_NAT | IPS_DST_NAT) == 0):
                other.state = entry.state
                other.reply = False
                return other
            return None
        entry.confirmed = True
        entry.status |= IPS_CONFIRMED
        self._hash[(z, o)] = (entry, False)
        self._hash[(z, r)] = (entry, True)
        self._entries[id(entry)] = entry
        if entry.snat_done:
            # nf_nat_setup_info() adds a connection to nf_nat_bysource when its source
            # manip is set up; nfemu does it at confirmation (one packet at a time, the same)
            self._bysource.setdefault((z, o.proto, o.src, o.sport), []).append(entry)
        return entry

    def _remove(self, entry: Entry) -> None:
        entry.killed = True
        if not entry.confirmed:
            return
        z = entry.zone
        for t in (entry.orig_tuple, entry.repl_tuple):
            hit = self._hash.get((z, t))
            if hit is not None and hit[0] is entry:
                del self._hash[(z, t)]
        self._entries.pop(id(entry), None)
        if entry.snat_done:
            key = (z, entry.proto, entry.orig_src, entry.orig_sport)
            same = self._bysource.get(key)
            if same is not None:
                same[:] = [e for e in same if e is not entry]
                if not same:
                    del self._bysource[key]

    def expire(self, now: float) -> list[Entry]:
        """Remove the entries whose deadline has passed at time NOW (the kernel's gc and
        nf_ct_is_expired: ``timeout - now <= 0``); returns them."""
        gone = [e for e in self._entries.values() if e.deadline <= now]
        for e in gone:
            self._remove(e)
        return gone

    # ---- the per-packet path -----------------------------------------------------------
    def track(self, pkt: Packet, now: float, zone: int = 0) -> tuple[Entry | None, CtState]:
        """nf_conntrack_in(): find or create the packet's entry and update it. Returns
        (entry, ctinfo): ctinfo as CtState (NEW/ESTABLISHED/RELATED; the direction is
        ``entry.reply``), or INVALID with no entry. A new entry is unconfirmed until
        :meth:`confirm`."""
        if pkt.family != 4 or pkt.frag:
            return None, CtState.INVALID
        proto = pkt.proto
        # the hash key of packet_tuple(pkt): a plain tuple hashes and compares like the
        # CtTuple the table holds, and is cheaper to make
        if proto in _PORT_PROTOS:
            key = (zone, (proto, pkt.src, pkt.dst, pkt.sport, pkt.dport))
        elif proto == ICMP:
            if pkt.icmp_type > _NR_ICMP_TYPES:
                return None, CtState.INVALID
            if pkt.icmp_type in ICMP_ERRORS:
                return self.related(pkt, zone, now)
            key = (zone, (ICMP, pkt.src, pkt.dst, pkt.icmp_rest >> 16,
                          pkt.icmp_type << 8 | pkt.icmp_code))
        else:
            key = (zone, (proto, pkt.src, pkt.dst, 0, 0))
        table = self._hash
        for _ in range(2):
            # lookup(): the confirmed entry, expired ones removed first
            hit = table.get(key)
            if hit is not None and now is not None and hit[0].deadline <= now:
                self._remove(hit[0])
                hit = None
            if hit is not None:
                entry, reply = hit
                if entry.tcp_state is _TCP_ESTABLISHED:
                    ctinfo = self._established_ack(entry, pkt, reply, now)
                    if ctinfo is not None:
                        return entry, ctinfo
            else:
                entry = None
            if entry is None:
                entry = self.new(pkt, now, zone)
                if entry is None:
                    return None, CtState.INVALID
                reply = False
            ctinfo = self.packet(entry, pkt, reply, now)
            if ctinfo is REPEAT:
                continue
            if ctinfo == CtState.INVALID:
                return None, CtState.INVALID
            return entry, ctinfo
        return None, CtState.INVALID

    def related(self, pkt: Packet, zone: int = 0,
                now: float | None = None) -> tuple[Entry | None, CtState]:
        """nf_conntrack_icmpv4_error() / nf_conntrack_inet_error() for an ICMP error: the
        quoted datagram's tuple, inverted, is looked up; found, the packet is RELATED
        (``entry.reply`` when the hit is the entry's reply tuple) and gets no entry of its
        own. INVALID when nothing matches, the quoted header is missing, or the outer
        destination is not the destination of the matched direction."""
        inner = pkt.inner
        if inner is None:
            return None, CtState.INVALID
        t = packet_tuple(inner)
        if t is None or (inner.proto in _PORT_PROTOS and inner.captured
                         and inner.captured < inner.header_len + 4):
            return None, CtState.INVALID
        inv = t.inverted()
        if inv is None:
            return None, CtState.INVALID
        entry, reply = self._find(inv, zone, now)
        if entry is None:
            return None, CtState.INVALID
        ct_daddr = entry.repl_dst if reply else entry.orig_dst
        if pkt.dst != ct_daddr:
            return None, CtState.INVALID
        self._set_ctinfo(entry, CtState.RELATED, reply, now)
        return entry, CtState.RELATED

    @staticmethod
    def _set_ctinfo(entry: Entry, ctinfo: CtState, reply: bool, now: float | None) -> None:
        """The packet's view of its entry: ``state`` (ctinfo's bit, with SNAT/DNAT from
        the status; a CtState, computed in plain ints), ``reply``, and ``expires``."""
        bits = int(ctinfo)
        status = entry.status
        if status & IPS_SRC_NAT:
            bits |= _ST_SNAT
        if status & IPS_DST_NAT:
            bits |= _ST_DNAT
        entry.state = ctstate(bits)
        entry.reply = reply
        if now is not None:
            entry.expires = max(0, math.floor(entry.deadline - now)) if entry.confirmed else 0

    def packet(self, entry: Entry, pkt: Packet, reply: bool, now: float):
        """The per-packet update (resolve_normal_ct's ctinfo, the protocol's packet
        handler, then IPS_SEEN_REPLY for a reply): returns the ctinfo (NEW, ESTABLISHED,
        or INVALID when the protocol handler refuses the packet; the entry stays, but the
        packet has none) and sets ``entry.state``/``entry.reply``. :data:`REPEAT` means the
        entry was killed to reopen a closed TCP connection (a SYN in TIME_WAIT/CLOSE) and
        the packet must be looked up again (-NF_REPEAT); :meth:`track` does that."""
        if reply or entry.status & IPS_SEEN_REPLY:
            ctinfo = CtState.ESTABLISHED
        else:
            ctinfo = CtState.NEW
        d = 1 if reply else 0
        proto = entry.proto
        if proto == TCP:
            verdict = self._tcp(entry, pkt, d, now)
        elif proto == UDP or proto == 136:
            verdict = self._udp(entry, now)
        elif proto == ICMP:
            verdict = self._icmp(entry, now)
        else:
            self._refresh(entry, now, GENERIC_TIMEOUT)
            verdict = True
        if verdict is REPEAT:
            return REPEAT
        if not verdict:
            return CtState.INVALID
        if reply:
            entry.status |= IPS_SEEN_REPLY
        self._set_ctinfo(entry, ctinfo, reply, now)
        return ctinfo

    @staticmethod
    def _established_ack(entry: Entry, pkt: Packet, reply: bool, now: float):
        """packet() for the commonest segment, or None when the segment is another kind:
        a pure ACK (PSH, ECE, CWR allowed) of a confirmed, assured TCP connection in
        ESTABLISHED that has seen a reply. For it the general path takes no branch but
        these: ctinfo ESTABLISHED, tcp_conntracks[dir][ack][sES] = sES in both directions,
        the window bookkeeping, the timeout (ESTABLISHED's, lowered as _tcp lowers it),
        the entry's state bits; tests/test_fastpaths_packet.py compares the two."""
        status = entry.status
        if (status & _SEEN_ASSURED != _SEEN_ASSURED or not entry.confirmed
                or pkt.tcp_flags & _ACK_MASK != TCP_ACK):
            return None
        d = 1 if reply else 0
        ConntrackTable._tcp_window(entry, pkt, d, _ACK, _tcp_end(pkt))
        entry.last_index, entry.last_dir = _ACK, d
        timeout = TCP_TIMEOUTS.get(_ES, 0)
        seen = entry.tcp_seen
        if entry.retrans >= TCP_MAX_RETRANS and timeout > TCP_TIMEOUT_MAX_RETRANS:
            timeout = TCP_TIMEOUT_MAX_RETRANS
        elif ((seen[0].flags | seen[1].flags) & _F_DATA_UNACK
              and timeout > TCP_TIMEOUT_UNACK):
            timeout = TCP_TIMEOUT_UNACK
        elif entry.last_win == 0 and timeout > TCP_TIMEOUT_MAX_RETRANS:
            timeout = TCP_TIMEOUT_MAX_RETRANS
        entry.timeout = timeout
        entry.deadline = now + timeout
        ConntrackTable._set_ctinfo(entry, CtState.ESTABLISHED, reply, now)
        return CtState.ESTABLISHED

    @staticmethod
    def _refresh(entry: Entry, now: float, timeout: int) -> None:
        """nf_ct_refresh_acct(): the new deadline (an unconfirmed entry keeps the relative
        timeout, made absolute at confirmation: the same thing for a packet's clock)."""
        entry.timeout = timeout
        entry.deadline = now + timeout

    # ---- protocols ---------------------------------------------------------------------
    def _udp(self, entry: Entry, now: float) -> bool:
        """nf_conntrack_udp_packet(): 30 s until a reply was seen; with a reply, 30 s more
        until 2 s after the first packet, then 120 s and IPS_ASSURED (a stream)."""
        if not entry.confirmed:
            entry.stream_ts = now + UDP_STREAM_DELAY
        if entry.status & IPS_SEEN_REPLY:
            extra, stream = UDP_TIMEOUT, False
            if now > entry.stream_ts:
                extra, stream = UDP_TIMEOUT_STREAM, not entry.status & IPS_ASSURED
            self._refresh(entry, now, extra)
            if stream and not entry.status & IPS_NAT_CLASH:
                entry.status |= IPS_ASSURED
        else:
            self._refresh(entry, now, UDP_TIMEOUT)
        return True

    def _icmp(self, entry: Entry, now: float) -> bool:
        """nf_conntrack_icmp_packet(): only query types (echo, timestamp, info, address
        mask) may have an entry; 30 s from every packet; never ASSURED."""
        if entry.orig_dport >> 8 not in _ICMP_VALID_NEW:
            return False
        self._refresh(entry, now, ICMP_TIMEOUT)
        return True

    def _tcp(self, entry: Entry, pkt: Packet, d: int, now: float):
        """tcp_error(), tcp_new() and nf_conntrack_tcp_packet() (see the module docstring
        for what of tcp_in_window is kept)."""
        flags = pkt.tcp_flags
        if (flags & ~(TCP_ECE | TCP_CWR | TCP_PSH)) & 0xFF not in _TCP_VALID_FLAGS:
            return False                                   # tcp_error: flag combination
        index = _TCP_INDEX[flags & 0xFF]
        end = _tcp_end(pkt)
        if not entry.confirmed and entry.tcp_state == TcpState.NONE:
            # tcp_new(): only what tcp_conntracks[0][index][sNO] allows starts an entry;
            # with nf_conntrack_tcp_loose=1 an ACK picks up a connection mid-stream
            if _TCP_TABLE[0][index][_NO] == _IV:
                return False
            entry.tcp_seen = (_TcpSide(td_end=end, seen=True), _TcpSide())
            entry.last_index = _NONE
        old = int(entry.tcp_state)
        new = _TCP_TABLE[d][index][old]
        if new == _SS and old >= _TW:
            closed = (entry.tcp_seen[d].flags | entry.tcp_seen[1 - d].flags) & _F_CLOSE_INIT
            if closed or (entry.last_dir == d and entry.last_index == _RST):
                self._remove(entry)                        # nf_ct_kill, -NF_REPEAT
                return REPEAT
            new = _IG
        if new == _IG:
            if (index == _SYNACK and entry.last_index == _SYN and entry.last_dir != d
                    and pkt.tcp_ack == entry.last_end):
                # the SYN/ACK acknowledges a SYN we ignored: get in sync from it
                old, new = _SS, _SR
                entry.tcp_seen[entry.last_dir].td_end = entry.last_end
                entry.tcp_seen[entry.last_dir].seen = True
                entry.tcp_seen[d].__init__()
            else:
                entry.last_index, entry.last_dir = index, d
                entry.last_seq, entry.last_end = pkt.tcp_seq, end
                entry.last_win = pkt.tcp_window
                return True                                # accepted, no state change
        elif new == _IV:
            return False
        elif new == _S2:
            entry.last_flags |= _L_SIMULTANEOUS_OPEN
        elif new == _SR:
            if d == 1 and index == _ACK and entry.last_flags & _L_SIMULTANEOUS_OPEN:
                new = _ES
        elif new == _CL and index == _RST:
            other = entry.tcp_seen[1 - d]
            if other.flags & _F_MAXACK_SET:
                seq = pkt.tcp_seq
                if _seq_after(other.td_maxack, seq):
                    return False                           # invalid rst
                established = (old == _ES and entry.status & IPS_ASSURED)
                if (established and seq != other.td_maxack
                        and not (entry.last_index == _ACK and entry.last_dir == d
                                 and seq == entry.last_end)):
                    new = old       # keep the state to allow a challenge ACK
        self._tcp_window(entry, pkt, d, index, end)
        entry.last_index, entry.last_dir = index, d
        entry.tcp_state = _TCP_STATES[new]
        if old != new and new == _FW:
            entry.tcp_seen[d].flags |= _F_CLOSE_INIT
        timeout = TCP_TIMEOUTS.get(new, 0)      # an int finds its TcpState key
        unacked = (entry.tcp_seen[0].flags | entry.tcp_seen[1].flags) & _F_DATA_UNACK
        if entry.retrans >= TCP_MAX_RETRANS and timeout > TCP_TIMEOUT_MAX_RETRANS:
            timeout = TCP_TIMEOUT_MAX_RETRANS
        elif index == _RST:
            timeout = TCP_TIMEOUTS[TcpState.CLOSE]
        elif unacked and timeout > TCP_TIMEOUT_UNACK:
            timeout = TCP_TIMEOUT_UNACK
        elif entry.last_win == 0 and timeout > TCP_TIMEOUT_MAX_RETRANS:
            timeout = TCP_TIMEOUT_MAX_RETRANS
        if not entry.status & IPS_SEEN_REPLY:
            if flags & TCP_RST:
                # only a RST came back: the entry is deleted at once (the packet keeps it)
                self._remove(entry)
                self._refresh(entry, now, 0)
                return True
            if new == _ES and timeout > TCP_TIMEOUT_UNACK:
                timeout = TCP_TIMEOUT_UNACK                # picked up mid-stream
        elif not entry.status & IPS_ASSURED and old in (_SR, _ES) and new == _ES:
            entry.status |= IPS_ASSURED
        self._refresh(entry, now, timeout)
        return True

    @staticmethod
    def _tcp_window(entry: Entry, pkt: Packet, d: int, index: int, end: int) -> None:
        """The bookkeeping of tcp_in_window for an in-window segment: td_end and the
        unacknowledged-data flag, td_maxack, and the retransmission counter."""
        sender, receiver = entry.tcp_seen[d], entry.tcp_seen[1 - d]
        flags = pkt.tcp_flags
        if not sender.seen:
            sender.seen = True
            sender.td_end = end
            if not flags & TCP_SYN and not receiver.seen:
                receiver.td_end = pkt.tcp_ack if flags & TCP_ACK else receiver.td_end
        elif ((entry.tcp_state == TcpState.SYN_SENT and d == 0)
              or (entry.tcp_state == TcpState.SYN_RECV and d == 1)) \
                and _seq_after(end, sender.td_end):
            sender.td_end = end     # a SYN retransmitted with a new sequence number
        ack = pkt.tcp_ack
        if not flags & TCP_ACK or (flags & TCP_RST and ack == 0):
            ack = receiver.td_end
        if _seq_after(end, sender.td_end):
            sender.td_end = end
            sender.flags |= _F_DATA_UNACK
        if flags & TCP_ACK:
            if not sender.flags & _F_MAXACK_SET:
                sender.td_maxack = ack
                sender.flags |= _F_MAXACK_SET
            elif _seq_after(ack, sender.td_maxack):
                sender.td_maxack = ack
        if ack == receiver.td_end:
            receiver.flags &= ~_F_DATA_UNACK
        if index == _ACK:
            same = (entry.last_dir == d and entry.last_seq == pkt.tcp_seq
                    and entry.last_ack == ack and entry.last_end == end
                    and entry.last_win == pkt.tcp_window)
            if same:
                entry.retrans += 1
            else:
                entry.last_dir, entry.last_seq, entry.last_ack = d, pkt.tcp_seq, ack
                entry.last_end, entry.last_win = end, pkt.tcp_window
                entry.retrans = 0

    # ---- conntrack -L ------------------------------------------------------------------
    def format(self, entry: Entry, now: float) -> str:
        """The entry as ``conntrack -L`` prints it (conntrack-tools' default output):
        ``NAME NUM TIMEOUT [STATE] src= dst= sport= dport= [UNREPLIED] src= dst= sport=
        dport= [ASSURED] mark= [zone=] use=1``; ICMP tuples as ``type= code= id=``."""
        from .host import fmt4

        def side(t: CtTuple) -> str:
            text = f"src={fmt4(t.src)} dst={fmt4(t.dst)} "
            if t.proto in _PORT_PROTOS:
                text += f"sport={t.sport} dport={t.dport} "
            elif t.proto == ICMP:
                text += f"type={t.dport >> 8} code={t.dport & 0xFF} id={t.sport} "
            return text

        name = _PROTO_NAMES.get(entry.proto, "unknown")
        text = f"{name:<8} {entry.proto} {entry.remaining(now)} "
        if entry.proto == TCP:
            text += f"{entry.tcp_state.name} "
        text += side(entry.orig_tuple)
        if not entry.status & IPS_SEEN_REPLY:
            text += "[UNREPLIED] "
        text += side(entry.repl_tuple)
        if entry.status & IPS_ASSURED:
            text += "[ASSURED] "
        text += f"mark={entry.mark} "
        if entry.zone:
            text += f"zone={entry.zone} "
        return text + "use=1"
