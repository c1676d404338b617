"""The packet as the rule engine sees it: one immutable value per packet at a netfilter hook.

A :class:`Packet` mirrors what ``ipt_do_table`` and the match functions read from an skb at a
hook: the IP header (``struct iphdr`` / ``struct ipv6hdr``), the transport header the
matches fetch with ``skb_header_pointer`` (tcp/udp/icmp/sctp), and the skb metadata
(``skb->mark``, ``state->in``/``state->out`` device names, ``skb->pkt_type``, the Ethernet
header the mac match reads). Addresses, ports and flags are plain ints, so the compiled
engine compares integers only.

Bytes are the ground truth: :meth:`Packet.from_bytes` reads an IP datagram the way the kernel
does (trimmed to the header's total length as ``ip_rcv`` does), :meth:`Packet.to_bytes` writes
it back with every checksum recomputed. :meth:`Packet.from_scapy` / :meth:`Packet.to_scapy`
wrap these for scapy packets. A packet read from bytes and written back gives the same bytes
(checksums aside), including non-first fragments (no transport fields, the fragment data in
``payload``), first fragments and captures cut short (whose transport checksum cannot be
recomputed and is kept in ``l4_csum``), and ICMP errors (the quoted datagram is ``inner``, a
nested Packet, usually cut short: ``inner.captured``).

Packets are frozen: NAT and mangle targets make new ones with :meth:`Packet.replace`, which
keeps the derived fields (total length, UDP length, a kept transport checksum) consistent.
"""
from __future__ import annotations

import dataclasses
import struct
import sys
from array import array
from dataclasses import dataclass, field

from .errors import NfemuError
from .ext.pkttype import PacketType

__all__ = ["Packet", "PacketError", "PacketType", "TCP", "UDP", "ICMP", "ICMPV6", "SCTP",
           "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK", "TCP_URG", "TCP_ECE",
           "TCP_CWR", "IP_MF", "IP_DF", "IP_EVIL", "tcp_flags_text"]

ICMP, TCP, UDP, ICMPV6, SCTP = 1, 6, 17, 58, 132

#: tcphdr flag bits (byte 13 of the TCP header)
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)

#: the three flag bits above the fragment offset in iphdr->frag_off (IP_MF, IP_DF, IP_CE >> 13)
IP_MF, IP_DF, IP_EVIL = 0x1, 0x2, 0x4

#: ICMP types the kernel treats as errors quoting a datagram (nf_conntrack_proto_icmp.c
#: icmp_error_message: icmp_is_err(); ICMPv6: type < 128)
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERRORS = frozenset({1, 2, 3, 4})

_L4_HEADER = {TCP: 20, UDP: 8, ICMP: 8, ICMPV6: 8, SCTP: 12}

# tcpdump's letters, in its order (print-tcp.c tcp_flag_values)
_TCP_LETTERS = ((TCP_FIN, "F"), (TCP_SYN, "S"), (TCP_RST, "R"), (TCP_PSH, "P"),
                (TCP_ACK, "."), (TCP_URG, "U"), (TCP_ECE, "E"), (TCP_CWR, "W"))


class PacketError(NfemuError, ValueError):
    """The bytes or scapy object are not a packet nfemu can model (not IPv4/IPv6, header cut
    short, an IPv6 extension header other than Fragment)."""


def tcp_flags_text(flags: int) -> str:
    """tcpdump's spelling of a TCP flags byte: ``S``, ``S.`` (SYN+ACK), ``none``."""
    text = "".join(letter for bit, letter in _TCP_LETTERS if flags & bit)
    return text or "none"


# the fields Packet.describe() shows (its repr adds the others that are not at their default)
_SHOWN_BY_DESCRIBE = frozenset(("family", "src", "dst", "proto", "sport", "dport", "tcp_flags",
                                "frag", "mark", "icmp_type", "icmp_code", "inner", "length"))


@dataclass(frozen=True, kw_only=True)
class Packet:
    """One IPv4 or IPv6 packet at a hook, with the skb metadata the matches read.

    IP header (IPv4 ``struct iphdr`` / IPv6 ``struct ipv6hdr``):

    - ``family``: 4 or 6 (``nf_hook_state->pf``, ``ip_hdr()->version``).
    - ``src``, ``dst``: ``saddr``/``daddr`` as ints (32 or 128 bits).
    - ``proto``: ``iphdr->protocol``; for IPv6 the upper-layer header after the (Fragment)
      extension header, what ``ipv6_find_hdr`` gives ip6tables.
    - ``length``: ``iphdr->tot_len``, which is ``skb->len`` at the hooks (ip_rcv trims the skb
      to it) and what rule counters add as bytes; IPv6: 40 + ``payload_len``. 0 when building
      means "compute from the headers and payload".
    - ``ttl``: ``iphdr->ttl`` / ``hop_limit``. ``tos``: ``iphdr->tos`` (DSCP << 2 | ECN) /
      traffic class. ``flowlabel``: IPv6 flow label (0 for IPv4).
    - ``ip_id``: ``iphdr->id``; IPv6: the Fragment header's identification.
    - ``frag``: the fragment offset in 8-byte units (``frag_off & IP_OFFSET``; the matches'
      ``par->fragoff`` is nonzero exactly when this is). ``ip_flags``: the three bits above it
      (``IP_MF`` 1, ``IP_DF`` 2, reserved ``IP_EVIL`` 4); IPv6: M bit only.
    - ``ip_options``: IPv4 options as in the header (padded to a multiple of 4 bytes; the IHL
      is ``5 + len // 4``, see :attr:`ihl`). ``v6_frag``: an IPv6 Fragment header is present.

    Transport (absent, i.e. zero, for non-first fragments, whose bytes are all ``payload``):

    - ``sport``, ``dport``: tcp/udp/sctp ports.
    - ``tcp_flags``: byte 13 of the TCP header (FIN..CWR, 8 bits); ``tcp_reserved`` the 4 bits
      between the data offset and the flags; ``tcp_seq``, ``tcp_ack``, ``tcp_window``,
      ``tcp_urgptr``; ``tcp_options``: the raw option bytes (data offset is derived).
      ``tcp_option_kinds`` (derived): bit K set when ``--tcp-option K`` would match
      (xt_tcpudp.c tcp_find_option's walk).
    - ``icmp_type``, ``icmp_code``; ``icmp_rest``: the header's second 32-bit word (id << 16 |
      sequence for echo, the gateway of a redirect, the MTU of frag-needed);
      ``inner``: for ICMP/ICMPv6 errors, the quoted datagram as a Packet (often cut short).
    - ``udp_len``: ``udphdr->len`` (0 when building: computed).
    - ``sctp_vtag``: the verification tag; ``sctp_chunks`` (derived from ``payload``): the
      (type, flags) of every chunk, in order, as sctp_mt walks them.

    Data: ``payload`` is what follows the transport header (SCTP: all the chunks; non-first
    fragment or unknown protocol: everything after the IP header). :meth:`to_bytes` gives the
    whole datagram, which is what the string and u32 matches search (offsets from the IP
    header). ``captured``: 0 when the whole datagram is here, else how many of its bytes are
    (ICMP-quoted datagrams, captures cut short). ``l4_csum``: None means "recompute";
    otherwise the transport checksum as read, kept because the segment is incomplete (first
    fragment, cut short); :meth:`replace` updates it incrementally like the kernel's NAT.

    Metadata: ``mark`` (``skb->mark``); ``iif``/``oif`` device names (``state->in->name`` /
    ``state->out->name``, "" when none: iptables compares a missing device as ""); ``in_mac``
    / ``out_mac``: the received frame's Ethernet source (what ``-m mac --mac-source`` reads,
    ``eth_hdr(skb)->h_source``) and destination, None when the packet has no link header
    (locally generated); ``pkttype``: ``skb->pkt_type`` (:class:`PacketType`).
    """

    family: int = 4
    src: int = 0
    dst: int = 0
    proto: int = 0
    length: int = 0
    ttl: int = 64
    tos: int = 0
    flowlabel: int = 0
    ip_id: int = 0
    frag: int = 0
    ip_flags: int = 0
    ip_options: bytes = b""
    v6_frag: bool = False
    sport: int = 0
    dport: int = 0
    tcp_flags: int = 0
    tcp_reserved: int = 0
    tcp_seq: int = 0
    tcp_ack: int = 0
    tcp_window: int = 0
    tcp_urgptr: int = 0
    tcp_options: bytes = b""
    icmp_type: int = 0
    icmp_code: int = 0
    icmp_rest: int = 0
    inner: Packet | None = None
    udp_len: int = 0
    sctp_vtag: int = 0
    payload: bytes = b""
    captured: int = 0
    l4_csum: int | None = None
    mark: int = 0
    iif: str = ""
    oif: str = ""
    in_mac: int | None = None
    out_mac: int | None = None
    pkttype: int = PacketType.HOST
    # derived, computed in __post_init__
    tcp_option_kinds: int = field(init=False, default=0)
    sctp_chunks: tuple[tuple[int, int], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        if self.family == 4 and len(self.ip_options) % 4:
            setattr_(self, "ip_options", self.ip_options + bytes(-len(self.ip_options) % 4))
        if self.frag == 0:
            if self.proto == TCP:
                if len(self.tcp_options) % 4:
                    setattr_(self, "tcp_options",
                             self.tcp_options + bytes(-len(self.tcp_options) % 4))
                setattr_(self, "tcp_option_kinds", _option_kinds(self.tcp_options))
            elif self.proto == UDP and self.udp_len == 0:
                setattr_(self, "udp_len", 8 + len(self.payload))
            elif self.proto == SCTP:
                setattr_(self, "sctp_chunks", _sctp_chunks(self.payload))
        if self.length == 0:
            setattr_(self, "length", self._natural_length())

    # ---- derived views -------------------------------------------------------------------

    @property
    def ihl(self) -> int:
        """``iphdr->ihl``: header length in 32-bit words (5 without options)."""
        return 5 + len(self.ip_options) // 4

    @property
    def header_len(self) -> int:
        """Bytes before the transport header: IHL * 4, or 40 (48 with a Fragment header)."""
        if self.family == 6:
            return 48 if self.v6_frag else 40
        return 20 + len(self.ip_options)

    @property
    def is_fragment(self) -> bool:
        """Any fragment (first or not): MF set or a nonzero offset."""
        return bool(self.frag or self.ip_flags & IP_MF)

    @property
    def fragoff(self) -> int:
        """``par->fragoff`` (in 8-byte units): nonzero for non-first fragments, which never
        match port matches and carry no transport header."""
        return self.frag

    @property
    def has_l4(self) -> bool:
        """The transport header fields are meaningful (not a non-first fragment)."""
        return self.frag == 0 and self.proto in _L4_HEADER

    @property
    def icmp_id(self) -> int:
        return self.icmp_rest >> 16

    @property
    def icmp_seq(self) -> int:
        return self.icmp_rest & 0xFFFF

    @property
    def tcp_mss(self) -> int | None:
        """The MSS option's value (what ``-m tcpmss`` reads), None without one."""
        opts, i = self.tcp_options, 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= len(opts):
                break
            size = opts[i + 1]
            if kind == 2 and size == 4 and i + 4 <= len(opts):
                return int.from_bytes(opts[i + 2:i + 4], "big")
            if size < 2:
                break
            i += size
        return None

    def _l4_header_len(self) -> int:
        if self.frag:
            return 0
        if self.proto == TCP:
            return 20 + len(self.tcp_options)
        return _L4_HEADER.get(self.proto, 0)

    def _natural_length(self) -> int:
        """The total length the headers and payload add up to (the whole datagram)."""
        body = self._l4_header_len() + len(self.payload)
        if self.inner is not None and self.frag == 0:
            body += len(self.inner.to_bytes())
        if self.family == 6:
            return 40 + (8 if self.v6_frag else 0) + body
        return self.ihl * 4 + body

    # ---- building ------------------------------------------------------------------------

    def replace(self, **changes) -> Packet:
        """A copy with ``changes`` applied (a NAT or mangle rewrite). ``length`` and
        ``udp_len`` follow the payload when they were the natural ones; a kept transport
        checksum (``l4_csum``) is updated incrementally (RFC 1624) for changed addresses,
        ports and ICMP id, as the kernel's NAT does for an incomplete segment."""
        if self.l4_csum is None and _PLAIN_FIELDS.issuperset(changes):
            # the per-packet path (NAT, MARK, routing): nothing derived changes, so copy the
            # fields as they are (a Packet keeps them in its __dict__ for this)
            new = object.__new__(Packet)
            fields_ = new.__dict__
            fields_.update(self.__dict__)
            fields_.update(changes)
            return new
        if "length" not in changes and not self.captured and self.length == self._natural_length():
            changes["length"] = 0
        if ("udp_len" not in changes and self.proto == UDP and self.frag == 0
                and self.udp_len == 8 + len(self.payload)):
            changes["udp_len"] = 0
        new = dataclasses.replace(self, **changes)
        keep = self.l4_csum
        if (keep is not None and "l4_csum" not in changes and self.proto != SCTP
                and not (self.proto == UDP and keep == 0)):
            old_words, new_words = self._csum_words(), new._csum_words()
            if old_words != new_words:
                csum = (~self.l4_csum) & 0xFFFF
                for word in old_words:
                    csum += (~word) & 0xFFFF
                csum += sum(new_words)
                csum = (~_fold(csum)) & 0xFFFF
                if new.proto == UDP and csum == 0:
                    csum = 0xFFFF
                object.__setattr__(new, "l4_csum", csum)
        return new

    def _csum_words(self) -> list[int]:
        """The 16-bit words of the fields NAT may change that the transport checksum covers."""
        words: list[int] = []
        if self.proto in (TCP, UDP, SCTP) or (self.family == 6 and self.proto == ICMPV6):
            width = 2 if self.family == 4 else 8
            for addr in (self.src, self.dst):
                words += [(addr >> (16 * k)) & 0xFFFF for k in range(width)]
        if self.proto in (TCP, UDP):
            words += [self.sport, self.dport]
        elif self.proto in (ICMP, ICMPV6):
            words += [self.icmp_rest >> 16, self.icmp_rest & 0xFFFF]
        return words

    def to_bytes(self) -> bytes:
        """The IP datagram (``captured`` bytes of it when cut short), every checksum
        recomputed: the IPv4 header's always, the transport one unless ``l4_csum`` keeps it."""
        l4 = self._l4_bytes()
        if self.family == 6:
            nh = self.proto
            ext = b""
            if self.v6_frag:
                ext = struct.pack("!BBHI", self.proto, 0, (self.frag << 3) | (self.ip_flags & 1),
                                  self.ip_id)
                nh = 44
            first = (6 << 28) | (self.tos << 20) | self.flowlabel
            hdr = struct.pack("!IHBB", first, (self.length - 40) & 0xFFFF, nh, self.ttl)
            data = hdr + self.src.to_bytes(16, "big") + self.dst.to_bytes(16, "big") + ext + l4
        else:
            hdr = bytearray(struct.pack(
                "!BBHHHBBHII", (4 << 4) | self.ihl, self.tos, self.length, self.ip_id,
                (self.ip_flags << 13) | self.frag, self.ttl, self.proto, 0, self.src, self.dst))
            hdr += self.ip_options
            struct.pack_into("!H", hdr, 10, _csum(hdr))
            data = bytes(hdr) + l4
        return data[:self.captured] if self.captured else data

    def _pseudo(self, size: int) -> bytes:
        if self.family == 6:
            return (self.src.to_bytes(16, "big") + self.dst.to_bytes(16, "big")
                    + struct.pack("!IxxxB", size, self.proto))
        return struct.pack("!IIxBH", self.src, self.dst, self.proto, size)

    def _l4_bytes(self) -> bytes:
        if self.frag or self.proto not in _L4_HEADER:
            return self.payload
        keep = self.l4_csum
        if self.proto == TCP:
            doff = 5 + len(self.tcp_options) // 4
            hdr = struct.pack("!HHIIBBHHH", self.sport, self.dport, self.tcp_seq, self.tcp_ack,
                              (doff << 4) | self.tcp_reserved, self.tcp_flags, self.tcp_window,
                              0, self.tcp_urgptr) + self.tcp_options
            seg = bytearray(hdr + self.payload)
            csum = keep if keep is not None else _csum(self._pseudo(len(seg)) + seg)
            struct.pack_into("!H", seg, 16, csum)
            return bytes(seg)
        if self.proto == UDP:
            seg = bytearray(struct.pack("!HHHH", self.sport, self.dport, self.udp_len, 0)
                            + self.payload)
            if keep is not None:
                csum = keep
            else:
                csum = _csum(self._pseudo(len(seg)) + seg) or 0xFFFF
            struct.pack_into("!H", seg, 6, csum)
            return bytes(seg)
        if self.proto in (ICMP, ICMPV6):
            body = self.inner.to_bytes() if self.inner is not None else b""
            seg = bytearray(struct.pack("!BBHI", self.icmp_type, self.icmp_code, 0,
                                        self.icmp_rest) + body + self.payload)
            if keep is not None:
                csum = keep
            elif self.proto == ICMPV6:
                csum = _csum(self._pseudo(len(seg)) + seg)
            else:
                csum = _csum(seg)
            struct.pack_into("!H", seg, 2, csum)
            return bytes(seg)
        # SCTP: CRC32c over the packet with a zero checksum field (RFC 4960 appendix B)
        seg = bytearray(struct.pack("!HHII", self.sport, self.dport, self.sctp_vtag, 0)
                        + self.payload)
        struct.pack_into("<I", seg, 8, keep if keep is not None else crc32c(bytes(seg)))
        return bytes(seg)

    # ---- reading -------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes, *, iif: str = "", oif: str = "", mark: int = 0,
                   in_mac: int | None = None, out_mac: int | None = None,
                   pkttype: int = PacketType.HOST) -> Packet:
        """Read an IPv4 or IPv6 datagram (starting at the IP header) as the kernel does:
        trimmed to the header's length; a shorter buffer is a capture cut short
        (``captured``). Raises :class:`PacketError` when there is no whole IP header."""
        data = bytes(data)
        if cls is Packet:
            fast = _fast_ipv4(data, iif, oif, mark, in_mac, out_mac, pkttype)
            if fast is not None:
                return fast
        meta = dict(iif=iif, oif=oif, mark=mark, in_mac=in_mac, out_mac=out_mac,
                    pkttype=pkttype)
        return cls(**_parse_ip(data), **meta)

    @classmethod
    def from_scapy(cls, pkt, iif: str | None = None, oif: str | None = None, mark: int = 0,
                   pkttype: int | None = None) -> Packet:
        """From a scapy packet: ``Ether()/IP()/...``, ``IP()/...`` or ``IPv6()/...`` (any
        layers before the IP one are skipped). With an Ethernet layer, ``in_mac``/``out_mac``
        are its source/destination and ``pkttype`` follows the destination (broadcast,
        multicast, else host; pass ``pkttype=PacketType.OTHERHOST`` explicitly when the frame
        was for another station). Checksums are not checked."""
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether
        from scapy.packet import NoPayload

        in_mac = out_mac = None
        kind = PacketType.HOST
        layer = pkt
        while layer is not None and layer.__class__ not in (IP, IPv6):
            if isinstance(layer, Ether):
                head = bytes(layer)[:12]          # built, so defaults are filled in
                out_mac = int.from_bytes(head[:6], "big")
                in_mac = int.from_bytes(head[6:12], "big")
                if out_mac == 0xFFFFFFFFFFFF:
                    kind = PacketType.BROADCAST
                elif out_mac >> 40 & 1:
                    kind = PacketType.MULTICAST
            layer = None if isinstance(layer.payload, NoPayload) else layer.payload
        if layer is None:
            raise PacketError(f"not an IP packet: {pkt.summary()}")
        return cls.from_bytes(bytes(layer), iif=iif or "", oif=oif or "", mark=mark,
                              in_mac=in_mac, out_mac=out_mac,
                              pkttype=kind if pkttype is None else pkttype)

    def to_scapy(self, link: bool = False):
        """A scapy ``IP``/``IPv6`` packet dissected from :meth:`to_bytes` (so its checksum
        fields hold the recomputed values). With ``link`` and known MACs, an Ethernet layer
        (source ``in_mac``, destination ``out_mac``) goes in front."""
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        pkt = (IPv6 if self.family == 6 else IP)(self.to_bytes())
        if link and self.in_mac is not None and self.out_mac is not None:
            pkt = Ether(src=_mac_text(self.in_mac), dst=_mac_text(self.out_mac)) / pkt
        return pkt

    # ---- text ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        """``Packet(tcp 10.244.1.5:40000 -> 10.96.0.10:53 [S]; ttl=1, iif='cni0')``: the
        :meth:`describe` line, then every other field that is not at its default (what a
        failing hypothesis example prints, instead of forty fields with int addresses)."""
        extra = []
        for f in dataclasses.fields(self):
            name = f.name
            if name in _SHOWN_BY_DESCRIBE or not f.init:
                continue
            value = getattr(self, name)
            if value == f.default:
                continue
            if name == "icmp_rest" and self.proto in (ICMP, ICMPV6) and self.inner is None \
                    and self.icmp_type in ((0, 8) if self.proto == ICMP else (128, 129)):
                continue                    # the echo id and sequence: described
            text = repr(value)
            extra.append(f"{name}={text if len(text) <= 40 else text[:37] + '...'}")
        return f"Packet({self.describe()}" + ("; " + ", ".join(extra) if extra else "") + ")"

    def describe(self) -> str:
        """A short line like ``tcp 10.244.1.5:40000 -> 10.96.0.10:53 [S]``."""
        from .protocols import protocol_name

        name = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMPV6: "icmpv6", SCTP: "sctp"}.get(
            self.proto) or (protocol_name(self.proto) if self.proto else "proto 0")
        src, dst = _addr_text(self.src, self.family), _addr_text(self.dst, self.family)
        if self.frag == 0 and self.proto in (TCP, UDP, SCTP):
            if self.family == 6:
                src, dst = f"[{src}]", f"[{dst}]"
            src, dst = f"{src}:{self.sport}", f"{dst}:{self.dport}"
        out = f"{name} {src} -> {dst}"
        if self.frag == 0:
            if self.proto == TCP:
                if not self.captured or self.captured >= self.header_len + 14:
                    out += f" [{tcp_flags_text(self.tcp_flags)}]"
            elif self.proto == SCTP and self.sctp_chunks:
                out += f" [{','.join(_chunk_name(t) for t, _ in self.sctp_chunks)}]"
            elif self.proto in (ICMP, ICMPV6):
                out += " " + _icmp_text(self.icmp_type, self.icmp_code, self.proto)
                if self.inner is None and self.icmp_type in ((0, 8) if self.proto == ICMP
                                                             else (128, 129)):
                    out += f" id {self.icmp_id} seq {self.icmp_seq}"
                if self.inner is not None:
                    out += f" for ({self.inner.describe()})"
        if self.is_fragment:
            out += f" frag {self.frag * 8}{'+' if self.ip_flags & IP_MF else ''}"
        if self.mark:
            out += f" mark {self.mark:#x}"
        return out

    def __str__(self) -> str:
        return self.describe()


# ---- parsing helpers -------------------------------------------------------------------------

# Fields whose change leaves every derived field (lengths, option kinds, chunks) as it is.
_PLAIN_FIELDS = frozenset({
    "src", "dst", "ttl", "tos", "flowlabel", "ip_id", "ip_flags", "sport", "dport",
    "tcp_flags", "tcp_reserved", "tcp_seq", "tcp_ack", "tcp_window", "tcp_urgptr",
    "icmp_type", "icmp_code", "icmp_rest", "sctp_vtag", "mark", "iif", "oif", "in_mac",
    "out_mac", "pkttype"})


_IPV4_HEADER = struct.Struct("!xBHHHBBxxII")
_TCP_HEADER = struct.Struct("!HHIIBBHxxH")
_UDP_HEADER = struct.Struct("!HHHH")


def _fast_ipv4(data: bytes, iif: str, oif: str, mark: int, in_mac, out_mac, pkttype):
    """Packet.from_bytes for the usual datagram, or None for any other: IPv4 without
    options, not a fragment, not cut short, carrying a whole TCP header or a UDP header
    with a nonzero length and checksum. It fills the Packet's fields directly, with the
    values _parse_ip, the dataclass __init__ and __post_init__ give such a datagram: the
    same keys in the same order (the init fields, then ``tcp_option_kinds`` for TCP, which
    __post_init__ sets; ``sctp_chunks`` stays the class default), as
    tests/test_fastpaths_packet.py checks on random datagrams. The dataclass machinery
    costs several times the parsing; copying a template of the fields and setting those
    read from the datagram costs less than building the dict."""
    if len(data) < 28 or data[0] != 0x45:
        return None
    tos, length, ip_id, frag_field, ttl, proto, src, dst = _IPV4_HEADER.unpack_from(data)
    if frag_field & 0x3FFF or len(data) < length:       # MF or an offset; cut short
        return None
    if proto == TCP:
        if length < 40:
            return None
        sport, dport, seq, ack, off, flags, win, urg = _TCP_HEADER.unpack_from(data, 20)
        doff = (off >> 4) * 4
        if doff < 20 or 20 + doff > length:
            return None
        opts = data[40:20 + doff]
        fields = _TCP_FIELDS.copy()
        fields["tcp_flags"] = flags
        fields["tcp_reserved"] = off & 15
        fields["tcp_seq"] = seq
        fields["tcp_ack"] = ack
        fields["tcp_window"] = win
        fields["tcp_urgptr"] = urg
        fields["tcp_options"] = opts
        fields["payload"] = data[20 + doff:length]
        if opts:
            fields["tcp_option_kinds"] = _option_kinds(opts)
    elif proto == UDP:
        if length < 28:
            return None
        sport, dport, ulen, csum = _UDP_HEADER.unpack_from(data, 20)
        if ulen == 0 or csum == 0:          # kept as read: the general path
            return None
        fields = _UDP_FIELDS.copy()
        fields["udp_len"] = ulen
        fields["payload"] = data[28:length]
    else:
        return None
    fields["src"] = src
    fields["dst"] = dst
    fields["length"] = length
    fields["ttl"] = ttl
    fields["tos"] = tos
    fields["ip_id"] = ip_id
    fields["ip_flags"] = frag_field >> 13
    fields["sport"] = sport
    fields["dport"] = dport
    fields["mark"] = mark
    fields["iif"] = iif
    fields["oif"] = oif
    fields["in_mac"] = in_mac
    fields["out_mac"] = out_mac
    fields["pkttype"] = pkttype
    pkt = object.__new__(Packet)
    object.__setattr__(pkt, "__dict__", fields)
    return pkt


def _fast_template(proto: int) -> dict:
    """The fields of a Packet of ``proto`` as the dataclass __init__ stores them, before
    _fast_ipv4 sets those read from the datagram (and ``tcp_option_kinds`` last for TCP,
    where __post_init__ puts it)."""
    fields = {f.name: f.default for f in dataclasses.fields(Packet) if f.init}
    fields["proto"] = proto
    if proto == TCP:
        fields["tcp_option_kinds"] = 0
    return fields


_TCP_FIELDS = _fast_template(TCP)
_UDP_FIELDS = _fast_template(UDP)


def _parse_ip(data: bytes) -> dict:
    if not data:
        raise PacketError("empty packet")
    version = data[0] >> 4
    if version == 4:
        if len(data) < 20:
            raise PacketError(f"IPv4 header cut short ({len(data)} bytes)")
        ihl = (data[0] & 15) * 4
        if ihl < 20 or len(data) < ihl:
            raise PacketError(f"bad IPv4 header length {ihl}")
        tos, length, ip_id, frag_field, ttl, proto, _, src, dst = struct.unpack_from(
            "!xBHHHBBHII", data)
        if length < ihl:
            raise PacketError(f"IPv4 total length {length} shorter than its header")
        fields = dict(family=4, src=src, dst=dst, proto=proto, length=length, ttl=ttl, tos=tos,
                      ip_id=ip_id, frag=frag_field & 0x1FFF, ip_flags=frag_field >> 13,
                      ip_options=data[20:ihl])
        hlen = ihl
    elif version == 6:
        if len(data) < 40:
            raise PacketError(f"IPv6 header cut short ({len(data)} bytes)")
        first, plen, nh, hlim = struct.unpack_from("!IHBB", data)
        length = 40 + plen
        fields = dict(family=6, src=int.from_bytes(data[8:24], "big"),
                      dst=int.from_bytes(data[24:40], "big"), length=length, ttl=hlim,
                      tos=(first >> 20) & 0xFF, flowlabel=first & 0xFFFFF)
        hlen = 40
        if nh == 44:
            if len(data) < 48:
                raise PacketError("IPv6 fragment header cut short")
            nh, _, off, ident = struct.unpack_from("!BBHI", data, 40)
            fields.update(v6_frag=True, frag=off >> 3, ip_flags=off & 1, ip_id=ident)
            hlen = 48
        if nh in (0, 43, 50, 51, 60, 135, 139, 140):
            raise PacketError(f"IPv6 extension header {nh} is not modelled")
        fields["proto"] = nh
        proto = nh
    else:
        raise PacketError(f"not an IP packet (version {version})")
    if len(data) > length:
        data = data[:length]                      # ip_rcv: pskb_trim_rcsum(skb, len)
    elif len(data) < length:
        fields["captured"] = len(data)
    body = data[hlen:]
    if fields.get("frag") or proto not in _L4_HEADER:
        fields["payload"] = body
        return fields
    complete = not fields.get("captured") and not fields.get("ip_flags", 0) & IP_MF
    need = 20 if proto == TCP else _L4_HEADER[proto]
    short = len(body) < need
    hdr = body.ljust(need, b"\0") if short else body
    if proto == TCP:
        sport, dport, seq, ack, off, flags, win, csum, urg = struct.unpack_from(
            "!HHIIBBHHH", hdr)
        doff = (off >> 4) * 4
        if short and len(body) <= 12:
            doff = 20                             # the data offset byte is not there
        if doff < 20:
            raise PacketError(f"TCP data offset {doff} shorter than the header")
        opts = hdr[20:doff]
        if len(opts) < doff - 20:
            opts = opts.ljust(doff - 20, b"\0")   # cut inside the options
        fields.update(sport=sport, dport=dport, tcp_seq=seq, tcp_ack=ack,
                      tcp_reserved=off & 15, tcp_flags=flags, tcp_window=win, tcp_urgptr=urg,
                      tcp_options=opts, payload=body[doff:])
    elif proto == UDP:
        sport, dport, ulen, csum = struct.unpack_from("!HHHH", hdr)
        fields.update(sport=sport, dport=dport, udp_len=ulen, payload=body[8:])
        if ulen == 0 and not short:
            complete = False                      # keep a zero length as it is
        if csum == 0:
            complete = False                      # no checksum: keep it absent
    elif proto == SCTP:
        sport, dport, vtag = struct.unpack_from("!HHI", hdr)
        csum = struct.unpack_from("<I", hdr, 8)[0]
        fields.update(sport=sport, dport=dport, sctp_vtag=vtag, payload=body[12:])
    else:   # ICMP / ICMPv6
        itype, code, csum, rest = struct.unpack_from("!BBHI", hdr)
        fields.update(icmp_type=itype, icmp_code=code, icmp_rest=rest, payload=body[8:])
        errors = ICMP_ERRORS if proto == ICMP else ICMPV6_ERRORS
        quoted = body[8:]
        if itype in errors and quoted and quoted[0] >> 4 == fields["family"]:
            try:
                inner = Packet(**_parse_ip(quoted))
            except PacketError:
                inner = None
            if inner is not None and inner.to_bytes() == quoted:
                fields.update(inner=inner, payload=b"")
    if short or not complete:
        fields["l4_csum"] = csum
    return fields


def _option_kinds(opts: bytes) -> int:
    """xt_tcpudp.c tcp_find_option(): kind at i; EOL (0) and NOP (1) advance by one, others
    by their length byte (a 0 length by one). Bit K of the result: kind K seen."""
    kinds, i = 0, 0
    while i < len(opts):
        kinds |= 1 << opts[i]
        if opts[i] < 2:
            i += 1
        else:
            size = opts[i + 1] if i + 1 < len(opts) else 0
            i += size or 1
    return kinds


def _sctp_chunks(data: bytes) -> tuple[tuple[int, int], ...]:
    """The (type, flags) of each chunk, walking by the padded chunk length like sctp_mt's
    match_packet(); stops at a chunk cut short or with a length under 4."""
    out, i = [], 0
    while i + 4 <= len(data):
        ctype, flags, size = struct.unpack_from("!BBH", data, i)
        out.append((ctype, flags))
        if size < 4:
            break
        i += (size + 3) & ~3
    return tuple(out)


def _fold(value: int) -> int:
    while value >> 16:
        value = (value & 0xFFFF) + (value >> 16)
    return value


def _csum(data: bytes | bytearray) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    words = array("H", bytes(data))
    if sys.byteorder == "little":
        words.byteswap()
    return (~_fold(sum(words))) & 0xFFFF


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the SCTP checksum (stored little-endian in the header)."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _mac_text(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def _addr_text(addr: int, family: int) -> str:
    from .util import int_to_ipv4, int_to_ipv6
    return int_to_ipv6(addr) if family == 6 else int_to_ipv4(addr)


def _icmp_text(itype: int, code: int, proto: int) -> str:
    if proto == ICMP:
        from .ext.icmp import ICMP_NAMES as names
    else:
        from .ext.icmp6 import ICMPV6_NAMES as names
    exact = next((n for n, t, lo, hi in names if t == itype and lo == hi == code), None)
    if exact:
        return exact
    general = next((n for n, t, lo, hi in names if t == itype and (lo, hi) == (0, 0xFF)), None)
    if general and code == 0:
        return general
    if general:
        return f"{general} code {code}"
    return f"type {itype} code {code}"


def _chunk_name(ctype: int) -> str:
    from .ext.sctp import CHUNKS
    return next((n for n, t, _ in CHUNKS if t == ctype), str(ctype))
