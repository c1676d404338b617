"""Replay a capture through a node, packet by packet, with connection tracking (``nfemu
replay``, ``Node.replay``): the streaming driver under the CLI. Nothing here prints.

:func:`replay` reads a pcap/pcapng file with :func:`nfemu.pcapio.read_capture` (streaming:
one record at a time, memory flat however long the capture) or takes an iterable of packets,
decides for each record what the kernel would have done with it before netfilter saw it,
and hands the packets that reach netfilter to :meth:`nfemu.node.Node.send` in file order,
with the capture's timestamp as the packet's time. It yields one :class:`ReplayResult` per
record. :class:`Summary` accumulates the results in bounded memory.

What happens to a record before netfilter (the kernel functions it mirrors):

* IPv4 (``ip_rcv_core``): a version other than 4, a header length under 20 bytes or a total
  length under the header length is an ``inhdr`` error; a bad header checksum
  (``ip_fast_csum``) is a ``csum`` error; a total length above what the frame holds is a
  truncated datagram. The kernel drops all of these before PREROUTING: reported, not sent.
  A frame longer than the total length is trimmed (``pskb_trim_rcsum``: Ethernet padding).
  A frame of ``PACKET_OTHERHOST`` type (Linux cooked captures say so) is dropped there too.
* Transport checksums (conntrack's ``tcp_error`` / ``udp_error`` /
  ``nf_conntrack_icmpv4_error`` with ``nf_conntrack_checksum=1``, at PREROUTING only): checked
  for complete, unfragmented TCP, UDP (a zero UDP checksum means none) and ICMP datagrams
  arriving on an interface, over the whole IP payload as ``nf_ip_checksum`` does. A bad one
  is passed on (``csum_bad``): conntrack gives such a packet no entry (ctinfo INVALID), the
  rules still see it; the packet keeps its bad checksum (``Packet.l4_csum``), so a forwarded
  copy leaves with it, as from the kernel. A checksum field that holds the pseudo-header sum
  only is what checksum offload leaves in captures (``CHECKSUM_PARTIAL`` from a pod's veth,
  GRO's ``tcp_gro_complete``): the kernel does not verify those, nor do we (warning
  ``csum-partial``). Locally generated packets are never verified (the kernel does not, and
  their captured checksums are usually partial).
* Not IPv4: IPv6 (not evaluated yet), ARP and other ethertypes, unsupported link types,
  frames too short for their headers, damaged file structure: reported by kind, not sent.
* IP fragments are sent as they are (no reassembly; conntrack gives non-first fragments no
  entry) and counted (warning ``fragment``).

Interfaces: the interface the file records wins (a pcapng interface name other than
``any``; else a Linux cooked v2 interface index named through ``ifindex_names``), then
``iface``; with ``local=True`` every packet is locally generated (starts at OUTPUT). Packets
the link layer marks as sent by the node (SLL packet type 4, pcapng direction outbound) are
not inputs: without ``local`` they are skipped (problem ``outgoing``). Packets recorded as
arriving on ``lo`` are the node's own packets coming back: they are replayed as locally
generated (OUTPUT, POSTROUTING, then lo, PREROUTING, INPUT, which is the kernel's path for
them; OUTPUT sees them as captured, i.e. after any NAT OUTPUT did). With ``local=True``, the
incoming copy on ``lo`` of a packet whose outgoing copy is also recorded is skipped
(``loopback-echo``). A packet with no interface (none recorded, no ``iface``, not local)
raises :class:`ReplayError`.

Time: a packet's ``now`` is its capture timestamp in seconds. Records are replayed in file
order; the kernel's clock never goes back, so a timestamp earlier than one already seen is
replayed at the latest time seen so far (warning ``time-went-back``); a record without
timestamp (pcapng simple packet block, a packet object without time) gets the latest time
too (warning ``no-timestamp``).

Conntrack's own approximations are listed in the docstring of :mod:`nfemu.conntrack`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from typing import NamedTuple

from .errors import NfemuError
from .ext.pkttype import PacketType
from .interp import NotEvaluable
from .packet import ICMP, TCP, UDP, Packet, PacketError
from .pcapio import read_capture

__all__ = ["ReplayError", "ReplayResult", "Summary", "replay", "send_packet", "verify_ipv4"]

#: problem kinds: the record was not sent through the rules
PROBLEM_TEXT = {
    "ipv6": "IPv6 is not evaluated yet",
    "arp": "ARP frame (netfilter's IPv4 hooks never see it)",
    "other-ethertype": "not IP",
    "unsupported-linktype": "link type nfemu cannot read",
    "malformed": "frame too short for its headers",
    "capture-error": "the capture file is damaged here",
    "bad-ip-header": "IPv4 header the kernel refuses (ip_rcv_core: inhdr error)",
    "bad-ip-checksum": "bad IPv4 header checksum (ip_rcv_core drops it before PREROUTING)",
    "ip-truncated": "frame shorter than the IPv4 total length (ip_rcv_core drops it)",
    "otherhost": "frame for another host (PACKET_OTHERHOST: ip_rcv_core drops it)",
    "outgoing": "sent by the node (outgoing copy): not an input; use --local to replay "
                "the node's own output",
    "loopback-echo": "incoming copy on lo of a packet the node sent (its outgoing copy is "
                     "replayed)",
    "unknown-interface": "the interface is not one of the host's",
    "not-evaluable": "a rule needs something nfemu cannot know offline",
}

#: warning kinds: the packet was sent, with a caveat
WARNING_TEXT = {
    "fragment": "IP fragment sent as it is (no reassembly)",
    "csum-bad": "bad transport checksum (conntrack: INVALID)",
    "csum-partial": "transport checksum left partial by offload (not verified, as the kernel)",
    "time-went-back": "timestamp earlier than a previous one: replayed at the latest time",
    "no-timestamp": "record without timestamp: replayed at the latest time",
    "loopback": "arrived on lo: replayed as locally generated",
    "vlan": "VLAN-tagged frame replayed on the recorded interface, not its VLAN device",
    "cut-short": "datagram cut short by the capture's snapshot length",
}

_PKTTYPES = (PacketType.HOST, PacketType.BROADCAST, PacketType.MULTICAST)
_SLL_OTHERHOST = 3


class ReplayError(NfemuError):
    """The replay cannot go on: a packet needs an interface and none is known."""


class ReplayResult(NamedTuple):
    """One record of the input and what became of it.

    ``index``: 1-based record number (the capture's, or the position in the iterable).
    ``ts_ns``: the record's timestamp in nanoseconds (None when it has none); ``now``: the
    time in seconds the packet was sent with (never going back). ``iface``: the interface it
    arrived on (None when locally generated or not sent); ``local``: sent as locally
    generated. ``packet``: the input as read (None when it could not be read); ``journey``:
    what :meth:`Node.send` returned (None when not sent or not evaluable). ``problem``: why
    it was not replayed (a kind of :data:`PROBLEM_TEXT`, None when it was), ``message``
    the details; ``warnings``: kinds of :data:`WARNING_TEXT`; ``csum_bad``: the transport
    checksum was wrong; ``offset``: byte offset of the record in the file."""

    index: int
    ts_ns: int | None
    now: float
    iface: str | None
    local: bool
    packet: Packet | None
    journey: object | None
    problem: str | None = None
    message: str | None = None
    warnings: tuple[str, ...] = ()
    csum_bad: bool = False
    offset: int | None = None

    @property
    def sent(self) -> bool:
        """The packet went through the rules and has a journey."""
        return self.journey is not None

    @property
    def leaves(self) -> bool:
        """The packet leaves the node (accepted, forwarded or sent out)."""
        j = self.journey
        return (j is not None and j.verdict.value == "ACCEPT"
                and j.where in ("forward", "out"))


def send_packet(node, pkt: Packet, *, iface: str | None, local: bool, now: float,
                csum_bad: bool):
    """The one call of :meth:`Node.send` (stateful: conntrack, NAT bindings). ``csum_bad``
    says the transport checksum is wrong (conntrack's tcp_error/udp_error/icmp_error give
    the packet no entry at PREROUTING: ctinfo INVALID)."""
    return node.send(pkt, iface=iface, local=local, now=now, csum_bad=csum_bad)


def verify_ipv4(data, checksums: bool = True):
    """What ``ip_rcv_core`` and conntrack's checksum checks decide for an IPv4 datagram
    ``data`` (bytes from the IP header on, possibly padded, possibly cut short).

    Returns ``(problem, message, bad_l4, note)``: ``problem`` a kind of
    :data:`PROBLEM_TEXT` when the kernel drops the datagram before PREROUTING (else None);
    ``bad_l4`` the transport checksum field when it is wrong (else None); ``note``
    "csum-partial" for an offload-partial checksum, else None. One pass over the bytes
    (``int.from_bytes`` and a remainder: the Internet checksum is the sum of 16-bit words
    modulo 0xFFFF). ``checksums=False``: only the header and length checks (the kernel
    verifies no checksum of packets it generates)."""
    n = len(data)
    if n < 20:
        return "malformed", f"IPv4 header cut short ({n} bytes)", None, None
    b0 = data[0]
    if b0 >> 4 != 4:
        return "bad-ip-header", f"IP version {b0 >> 4} in an IPv4 frame", None, None
    ihl = (b0 & 15) * 4
    if ihl < 20:
        return "bad-ip-header", f"IPv4 header length {ihl} below 20", None, None
    if n < ihl:
        return "malformed", f"IPv4 header of {ihl} bytes cut short ({n} bytes)", None, None
    if checksums and int.from_bytes(data[:ihl], "big") % 0xFFFF:
        return "bad-ip-checksum", (f"IPv4 header checksum {data[10] << 8 | data[11]:#06x} "
                                   "is wrong"), None, None
    tot = data[2] << 8 | data[3]
    if tot < ihl:
        return "bad-ip-header", f"IPv4 total length {tot} below its header length {ihl}", \
            None, None
    if tot > n:
        return "ip-truncated", f"IPv4 total length {tot} above the {n} bytes of the frame", \
            None, None
    if not checksums or data[6] & 0x3F or data[7]:
        return None, None, None, None          # MF or an offset: a fragment, not verifiable
    proto = data[9]
    seglen = tot - ihl
    if proto == TCP:
        if seglen < 20:
            return None, None, None, None                  # conntrack: too short, not ours
        field = data[ihl + 16] << 8 | data[ihl + 17]
    elif proto == UDP:
        if seglen < 8:
            return None, None, None, None
        field = data[ihl + 6] << 8 | data[ihl + 7]
        if field == 0:
            return None, None, None, None                  # no checksum
    elif proto == ICMP:
        if seglen < 8:
            return None, None, None, None
        total = int.from_bytes(data[ihl:tot], "big")
        if seglen & 1:
            total <<= 8
        if total % 0xFFFF:
            return None, None, data[ihl + 2] << 8 | data[ihl + 3], None
        return None, None, None, None
    else:
        return None, None, None, None
    # TCP / UDP: pseudo header (src + dst + protocol + length, mod 0xFFFF) + segment
    total = int.from_bytes(data[ihl:tot], "big")
    if seglen & 1:
        total <<= 8
    pseudo = int.from_bytes(data[12:20], "big") + proto + seglen
    if (total + pseudo) % 0xFFFF == 0:
        return None, None, None, None
    if field % 0xFFFF == pseudo % 0xFFFF:
        return None, None, None, "csum-partial"            # offload: the pseudo sum only
    return None, None, field, None


# ---- inputs as link-layer views -----------------------------------------------------------

class _Frame(NamedTuple):
    """What replay needs of one input record, whatever its origin."""
    index: int
    ts_ns: int | None
    kind: str                       # "ipv4", "ipv6", "arp", ..., "packet" (a ready Packet)
    data: object                    # bytes from the IP header, or a Packet for "packet"
    truncated: bool                 # cut short by the snapshot length
    interface: str | None
    ifindex: int | None
    pkttype: int | None             # SLL packet type
    direction: str | None
    vlans: tuple
    in_mac: int | None
    out_mac: int | None
    offset: int | None
    message: str | None
    ethertype: int | None


_GC_INTERVAL = 1.0        # seconds of capture time between two sweeps of expired entries


def _capture_frames(records) -> Iterator[_Frame]:
    for r in records:
        macs = r.macs
        if macs is None:
            yield _Frame(r.index, r.ts_ns, r.kind, r.data, r.caplen < r.orig_len,
                         r.interface, r.ifindex, r.pkttype, r.direction, r.vlans, None, None,
                         r.offset, r.message, r.ethertype)
            continue
        # an Ethernet frame: -m mac reads its source; eth_type_trans() sets the packet
        # type from its destination (broadcast, multicast; a unicast frame in a capture
        # taken on the node is taken as addressed to it: the Host has no MAC addresses)
        out_mac = int.from_bytes(macs[:6], "big")
        pkttype = r.pkttype
        if pkttype is None and out_mac >> 40 & 1:
            pkttype = 1 if out_mac == 0xFFFFFFFFFFFF else 2
        yield _Frame(r.index, r.ts_ns, r.kind, r.data, r.caplen < r.orig_len,
                     r.interface, r.ifindex, pkttype, r.direction, r.vlans,
                     int.from_bytes(macs[6:12], "big"), out_mac, r.offset, r.message,
                     r.ethertype)


def _time_ns(value) -> int | None:
    """Seconds (int, float, Fraction, Decimal, scapy's EDecimal) as whole nanoseconds."""
    if value is None:
        return None
    if isinstance(value, int):
        return value * 1_000_000_000
    if not isinstance(value, Fraction):
        value = Fraction(str(value))
    return int(value * 1_000_000_000)


def _object_frames(items: Iterable) -> Iterator[_Frame]:
    """Frames of an iterable of nfemu Packets, scapy packets, raw IP bytes, or (seconds,
    one of those) pairs."""
    for index, item in enumerate(items, 1):
        ts = None
        if isinstance(item, tuple) and len(item) == 2:
            ts, item = item
        if isinstance(item, Packet):
            yield _Frame(index, _time_ns(ts), "packet", item, False, item.iif or None, None,
                         None, None, (), None, None, None, None, None)
            continue
        if isinstance(item, (bytes, bytearray, memoryview)):
            data = bytes(item)
            v = data[0] >> 4 if data else None
            kind = "ipv4" if v == 4 else "ipv6" if v == 6 else "malformed"
            yield _Frame(index, _time_ns(ts), kind, data, False, None, None, None, None, (),
                         None, None, None, None if kind != "malformed" else
                         "not an IP datagram", None)
            continue
        yield _scapy_frame(index, item, ts)


def _scapy_frame(index: int, pkt, ts) -> _Frame:
    """A scapy packet: Ether (MACs, VLANs), CookedLinux (packet type), then IP/IPv6/ARP."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, CookedLinux, Dot1Q, Ether
    from scapy.packet import NoPayload

    if ts is None:
        ts = getattr(pkt, "time", None)
    iface = getattr(pkt, "sniffed_on", None)
    in_mac = out_mac = pkttype = direction = None
    vlans: tuple = ()
    layer = pkt
    kind = data = None
    while layer is not None and not isinstance(layer, NoPayload):
        if isinstance(layer, IP):
            kind, data = "ipv4", bytes(layer)
            break
        if isinstance(layer, IPv6):
            kind, data = "ipv6", bytes(layer)
            break
        if isinstance(layer, ARP):
            kind = "arp"
            break
        if isinstance(layer, Ether):
            head = bytes(layer)[:12]
            out_mac = int.from_bytes(head[:6], "big")
            in_mac = int.from_bytes(head[6:12], "big")
        elif isinstance(layer, CookedLinux):
            pkttype = layer.pkttype
            direction = "out" if pkttype == 4 else "in"
        elif isinstance(layer, Dot1Q):
            vlans += (layer.vlan,)
        layer = layer.payload
    if kind is None:
        kind = "other-ethertype"
    if pkttype is None and out_mac is not None:
        pkttype = (1 if out_mac == 0xFFFFFFFFFFFF else 2 if out_mac >> 40 & 1 else 0)
    return _Frame(index, _time_ns(ts), kind, data, False, iface, None, pkttype, direction,
                  vlans, in_mac, out_mac, None, None if kind != "other-ethertype" else
                  f"not IP: {pkt.summary()}", None)


def _frames(source) -> Iterator[_Frame]:
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__") \
            or hasattr(source, "read"):
        return _capture_frames(read_capture(source))
    return _object_frames(source)


# ---- the driver --------------------------------------------------------------------------

def replay(node, source, iface: str | None = None, local: bool = False, *,
           verify_checksums: bool = True,
           ifindex_names: Mapping[int, str] | None = None) -> Iterator[ReplayResult]:
    """Replay ``source`` through ``node`` (see the module docstring): a pcap/pcapng path or
    binary file object, or an iterable of packets (:class:`~nfemu.packet.Packet`, scapy
    packets, raw IPv4 bytes, or ``(seconds, packet)`` pairs). Yields one
    :class:`ReplayResult` per record, in order; packets go through ``node.send`` as the
    generator is advanced.

    ``iface``: the interface of packets whose record names none; ``local``: every packet is
    locally generated. ``verify_checksums``: check the IPv4 header and transport checksums
    (on by default, as the kernel does). ``ifindex_names``: Linux cooked v2 interface index
    -> name; None means the host's own indexes (right for a host read from ``ip -j addr
    show``; :meth:`Host.from_options` numbers lo 1, then the ``--iface`` names in order);
    ``{}`` ignores recorded indexes.

    A capture that cannot be read at all raises :class:`nfemu.pcapio.CaptureError` here,
    before any result; :class:`ReplayError` when a packet needs an interface and none is
    known."""
    frames = _frames(source)            # opens the capture now: errors raise here
    if ifindex_names is None:
        ifindex_names = {i.index: i.name for i in node.host.interfaces}
    return _run(node, frames, iface, local, verify_checksums, ifindex_names)


def _run(node, frames, iface, local, verify, ifindex_names) -> Iterator[ReplayResult]:
    host = node.host
    known_ifaces = {i.name for i in host.interfaces}
    clock = 0.0
    seen_time = False
    send = send_packet
    expire, last_gc = node.conntrack.expire, None
    for fr in frames:
        warnings: list[str] = []
        # -- time: the kernel's clock never goes back
        ts_ns = fr.ts_ns
        if ts_ns is None:
            if fr.kind != "error":
                warnings.append("no-timestamp")
        else:
            t = ts_ns / 1e9
            if t >= clock or not seen_time:
                clock = t
            else:
                warnings.append("time-went-back")
            seen_time = True
        now = clock
        if last_gc is None or now - last_gc >= _GC_INTERVAL:
            # the kernel's gc worker: expired connections leave the table, so memory
            # follows the live connections, not the length of the capture
            expire(now)
            last_gc = now
        kind = fr.kind
        if kind != "ipv4" and kind != "packet":
            problem, message = _other_kind(fr)
            yield ReplayResult(fr.index, ts_ns, now, None, False, None, None, problem,
                               message, tuple(warnings), False, fr.offset)
            continue
        # -- where it comes from
        direction = fr.direction
        name = fr.interface if fr.interface != "any" else None
        if name is None and fr.ifindex is not None:
            name = ifindex_names.get(fr.ifindex)
        as_local = local
        if local:
            if name == "lo" and direction == "in":
                yield ReplayResult(fr.index, ts_ns, now, None, True, None, None,
                                   "loopback-echo", None, tuple(warnings), False, fr.offset)
                continue
            arrives = None
        else:
            if direction == "out":
                yield ReplayResult(fr.index, ts_ns, now, name, False, None, None, "outgoing",
                                   None, tuple(warnings), False, fr.offset)
                continue
            arrives = name or iface
            if arrives is None:
                if fr.ifindex is not None:
                    raise ReplayError(
                        f"record {fr.index}: the capture gives interface index {fr.ifindex}, "
                        "which the host does not name, and no interface was given: give "
                        "-i IFACE, --local, or the node's --addrs/--routes")
                raise ReplayError(
                    f"record {fr.index}: the capture does not say which interface the packet "
                    "arrived on: give -i IFACE (or --local for packets the node sent)")
            if arrives not in known_ifaces:
                yield ReplayResult(fr.index, ts_ns, now, arrives, False, None, None,
                                   "unknown-interface",
                                   f"interface {arrives!r} is not one of the host's",
                                   tuple(warnings), False, fr.offset)
                continue
            if arrives == "lo":
                as_local, arrives = True, None
                warnings.append("loopback")
        if fr.pkttype == _SLL_OTHERHOST and not as_local:
            yield ReplayResult(fr.index, ts_ns, now, arrives, False, None, None, "otherhost",
                               None, tuple(warnings), False, fr.offset)
            continue
        # -- the datagram
        csum_bad = False
        if kind == "packet":
            pkt = fr.data
            if pkt.family != 4:
                yield ReplayResult(fr.index, ts_ns, now, arrives, as_local, pkt, None, "ipv6",
                                   None, tuple(warnings), False, fr.offset)
                continue
        else:
            data = fr.data
            problem, message, bad, note = verify_ipv4(data, verify and not as_local)
            if problem is not None:
                if problem == "ip-truncated" and fr.truncated:
                    problem = None                      # cut by the snaplen, not on the wire
                else:
                    if problem == "malformed" and fr.truncated:
                        message += " by the capture's snapshot length"
                    yield ReplayResult(fr.index, ts_ns, now, arrives, as_local, None,
                                       None, problem, message, tuple(warnings), False,
                                       fr.offset)
                    continue
            if note is not None:
                warnings.append(note)
            pkttype = fr.pkttype
            try:
                pkt = Packet.from_bytes(
                    data, iif=arrives or "", in_mac=fr.in_mac, out_mac=fr.out_mac,
                    pkttype=_PKTTYPES[pkttype] if pkttype is not None and pkttype < 3
                    else PacketType.HOST)
            except PacketError as exc:
                yield ReplayResult(fr.index, ts_ns, now, arrives, as_local, None, None,
                                   "malformed", str(exc), tuple(warnings), False, fr.offset)
                continue
            if bad is not None:
                # keep the wrong checksum: a forwarded copy leaves with it, as in the kernel
                pkt = pkt.replace(l4_csum=bad)
                csum_bad = True
                warnings.append("csum-bad")
            if pkt.captured:
                warnings.append("cut-short")
            if fr.vlans:
                warnings.append("vlan")
        if pkt.is_fragment:
            warnings.append("fragment")
        try:
            journey = send(node, pkt, iface=arrives, local=as_local, now=now,
                           csum_bad=csum_bad)
        except NotEvaluable as exc:
            yield ReplayResult(fr.index, ts_ns, now, arrives, as_local, pkt, None,
                               "not-evaluable", str(exc), tuple(warnings), csum_bad,
                               fr.offset)
            continue
        yield ReplayResult(fr.index, ts_ns, now, arrives, as_local, pkt, journey, None, None,
                           tuple(warnings), csum_bad, fr.offset)


def _other_kind(fr: _Frame) -> tuple[str, str | None]:
    kind = fr.kind
    if kind == "error":
        return "capture-error", fr.message
    if kind == "other-ethertype":
        if fr.message:
            return kind, fr.message
        et = fr.ethertype
        return kind, (f"ethertype {et:#06x}" if et is not None and et > 1500
                      else "802.3 frame (length field, not an ethertype)")
    if kind in ("ipv6", "arp"):
        return kind, None
    if kind in ("unsupported-linktype", "malformed"):
        return kind, fr.message
    return "malformed", fr.message or f"record of kind {kind}"


# ---- what was rewritten --------------------------------------------------------------------

def _endpoint(pkt: Packet, which: str) -> str:
    from .util import int_to_ipv4
    addr = int_to_ipv4(pkt.src if which == "src" else pkt.dst) if pkt.family == 4 else \
        "?"
    if pkt.frag == 0 and pkt.proto in (TCP, UDP, 132):
        return f"{addr}:{pkt.sport if which == 'src' else pkt.dport}"
    return addr


def rewrites(before: Packet, after: Packet | None) -> dict[str, tuple[str, str]]:
    """What the node changed in the packet: ``{"src": (old, new), "dst": ..., "id": ...,
    "mark": ...}`` for the source and destination (address and port), the ICMP echo id and
    the packet mark; empty when nothing changed (the TTL a forward lowers is not listed)."""
    out: dict[str, tuple[str, str]] = {}
    if after is None:
        return out
    if before.src != after.src or before.sport != after.sport:
        out["src"] = (_endpoint(before, "src"), _endpoint(after, "src"))
    if before.dst != after.dst or before.dport != after.dport:
        out["dst"] = (_endpoint(before, "dst"), _endpoint(after, "dst"))
    if before.proto == ICMP and before.icmp_rest >> 16 != after.icmp_rest >> 16:
        out["id"] = (str(before.icmp_rest >> 16), str(after.icmp_rest >> 16))
    if before.mark != after.mark:
        out["mark"] = (f"{before.mark:#x}", f"{after.mark:#x}")
    return out


def decided_in(journey) -> str | None:
    """``TABLE CHAIN`` of the last rule or policy the packet hit (where its verdict was
    decided for a dropped packet, the last chain it went through for an accepted one)."""
    steps = journey.steps
    if not steps:
        return None
    s = steps[-1]
    return f"{s.table} {s.chain}"


# ---- summary -------------------------------------------------------------------------------

class _Tally:
    """A Counter with at most ``cap`` keys; later new keys go to ``(other)``."""

    __slots__ = ("cap", "counts")

    def __init__(self, cap: int = 1000):
        self.cap = cap
        self.counts: Counter = Counter()

    def add(self, key) -> None:
        c = self.counts
        if key in c or len(c) < self.cap:
            c[key] += 1
        else:
            c["(other)"] += 1

    def most_common(self):
        return self.counts.most_common()


class Summary:
    """Counts over a replay, in bounded memory: records, packets sent, per verdict, per
    ``where``, per chain the verdict was decided in (:func:`decided_in`), per NAT
    destination (the ``to`` of DNAT events: connections DNATed there), per ctinfo, packets
    that leave the node (``written`` by the CLI), problems and warnings by kind with their
    count, first record index and first message. Each count table keeps at most ``cap``
    keys (later ones are counted under ``(other)``)."""

    def __init__(self, cap: int = 10000):
        self.records = 0
        self.sent = 0
        self.leaving = 0
        self.written = 0
        self.first_time: float | None = None
        self.last_time = 0.0
        self.verdicts = _Tally(cap)
        self.wheres = _Tally(cap)
        self.chains = _Tally(cap)
        self.nat = _Tally(cap)
        self.ctinfo = _Tally(cap)
        self.problems: dict[str, list] = {}
        self.warnings: dict[str, list] = {}

    def add(self, r: ReplayResult) -> None:
        self.records += 1
        if r.ts_ns is not None and self.first_time is None:
            self.first_time = r.now
        self.last_time = r.now
        for w in r.warnings:
            slot = self.warnings.get(w)
            if slot is None:
                self.warnings[w] = [1, r.index, None]
            else:
                slot[0] += 1
        if r.problem is not None:
            slot = self.problems.get(r.problem)
            if slot is None:
                self.problems[r.problem] = [1, r.index, r.message, r.offset]
            else:
                slot[0] += 1
            return
        j = r.journey
        self.sent += 1
        self.verdicts.add(j.verdict.value)
        self.wheres.add(j.where)
        self.chains.add(decided_in(j) or "(no chain)")
        if j.ctinfo:
            self.ctinfo.add(j.ctinfo)
        for e in j.events:
            if e.kind == "DNAT" and "to" in e.detail:
                self.nat.add(str(e.detail["to"]))
        if r.leaves:
            self.leaving += 1

    def as_dict(self) -> dict:
        def kinds(d):
            return {k: {"count": v[0], "first": v[1],
                        "message": v[2] if len(v) > 2 else None,
                        **({"offset": v[3]} if len(v) > 3 and v[3] is not None else {})}
                    for k, v in d.items()}
        return {
            "records": self.records, "sent": self.sent, "leaving": self.leaving,
            "written": self.written,
            "first_time": self.first_time, "last_time": self.last_time,
            "verdicts": dict(self.verdicts.most_common()),
            "where": dict(self.wheres.most_common()),
            "chains": dict(self.chains.most_common()),
            "nat_destinations": dict(self.nat.most_common()),
            "ctinfo": dict(self.ctinfo.most_common()),
            "problems": kinds(self.problems),
            "warnings": kinds(self.warnings),
        }


# ---- cost of the per-packet decoding -------------------------------------------------------

def _bench(n: int = 200_000) -> None:
    """Time the per-packet decoding (``python3 -m nfemu.replay [N]``): IPv4 checks with and
    without checksum verification, and Packet.from_bytes, for a 40-byte SYN and a 1500-byte
    TCP segment."""
    import time

    from .packet import Packet as P
    small = P(src=0xC0A80032, dst=0x0A60000A, proto=TCP, sport=40000, dport=80,
              tcp_flags=2).to_bytes()
    big = P(src=0xC0A80032, dst=0x0A60000A, proto=TCP, sport=40000, dport=80, tcp_flags=0x18,
            payload=bytes(range(256)) * 5 + bytes(180)).to_bytes()
    for label, data in (("40-byte SYN", small), ("1500-byte segment", big)):
        assert verify_ipv4(data) == (None, None, None, None), label
        t0 = time.perf_counter()
        for _ in range(n):
            verify_ipv4(data)
        t1 = time.perf_counter()
        for _ in range(n):
            verify_ipv4(data, False)
        t2 = time.perf_counter()
        for _ in range(n):
            P.from_bytes(data, iif="eth0")
        t3 = time.perf_counter()
        print(f"{label}: verify_ipv4 with checksums {(t1 - t0) / n * 1e6:.2f} us, "
              f"without {(t2 - t1) / n * 1e6:.2f} us, Packet.from_bytes "
              f"{(t3 - t2) / n * 1e6:.2f} us per packet")


if __name__ == "__main__":  # pragma: no cover
    import sys
    _bench(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
