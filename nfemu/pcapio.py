"""Streaming reader and writer of packet capture files (classic pcap and pcapng).

This is the I/O foundation of ``nfemu replay``: it turns a capture file into a stream of
:class:`CaptureRecord` (one per packet record, plus records that report damage), and writes
datagrams back as a classic pcap file that tcpdump and tshark read.

Reading (:func:`read_capture`)
------------------------------
Formats:

* classic pcap (libpcap's ``pcap-savefile(5)``), both byte orders, microsecond magic
  ``0xA1B2C3D4`` and nanosecond magic ``0xA1B23C4D``.  The FCS bits of the link-type field are
  ignored (only its low 16 bits are the link type); ``thiszone`` is ignored, as libpcap does.
* pcapng: Section Header Blocks of both byte orders (a new SHB starts a new section with its own
  byte order and interface list), Interface Description Blocks (``if_name``, ``if_tsresol`` in
  powers of 10 or 2, ``if_tsoffset``), Enhanced Packet Blocks (``epb_flags`` direction), Simple
  Packet Blocks and the obsolete Packet Block.  Every other block type (statistics, name
  resolution, decryption secrets, custom...) is skipped without a record.

Link types (``CaptureRecord.linktype`` is the file's value):

* ``ETHERNET`` (1): 802.1Q / 802.1ad / old QinQ (0x8100, 0x88A8, 0x9100) tags are skipped, their
  VLAN ids are kept in ``vlans`` (outermost first);
* ``LINUX_SLL`` (113) and ``LINUX_SLL2`` (276): the protocol field is used as the ethertype
  (a VLAN tag libpcap re-inserted after the cooked header is skipped as for Ethernet); the packet
  type gives ``pkttype`` (PACKET_HOST 0 ... PACKET_OUTGOING 4, as in ``linux/if_packet.h``) and
  ``direction``; SLL2 also gives the receiving/sending ``ifindex``;
* raw IP: ``RAW`` (101, and 12 / 14, the DLT_RAW values some systems write), the version nibble
  says IPv4 or IPv6; ``RAW_IPV4`` (228) and ``RAW_IPV6`` (229).

Any other link type gives records of kind ``"unsupported-linktype"`` (``data`` is the whole
captured frame) and reading goes on.

Timestamps are exact integers of nanoseconds since the epoch (``ts_ns``); ``timestamp`` gives
the same value as a :class:`fractions.Fraction` of seconds.  A float cannot hold nanoseconds at
today's epoch values, and conntrack / recent timeouts compare times, so we keep them exact.
pcapng resolutions finer than a nanosecond, or in powers of two, are rounded down to the
nanosecond.  Simple Packet Blocks have no timestamp: ``ts_ns`` is None.

``data`` is what follows the link-layer header(s), exactly as captured: for IP it starts at the
IP header and may be followed by Ethernet padding or an FCS, so the consumer must trim it to the
IP total length / payload length as the kernel's ``ip_rcv_core`` / ``ipv6_rcv`` do, and it may
be cut short (``caplen < orig_len``, see ``truncated``).

Memory stays flat: the file is read in chunks of :data:`CHUNK` bytes; at most one chunk plus one
record is held (records are capped at :data:`MAX_CAPLEN` / :data:`MAX_BLOCK` bytes).

Bad input (never a traceback out of the iterator):

* empty file, unknown magic, file header (pcap) or first Section Header Block (pcapng) cut short
  or invalid: :class:`CaptureError` (an :class:`~nfemu.errors.NfemuError` naming the file and the
  byte offset) is raised by :func:`read_capture` itself, before any record;
* pcap record header or record data cut short by the end of the file: a final record of kind
  ``"error"``, then the iterator stops;
* pcap record with a captured length above :data:`MAX_CAPLEN` (the file is corrupt and records
  cannot be re-synchronised in this format): a final ``"error"`` record;
* pcapng block cut short by the end of the file, or whose length is below 12, not a multiple of
  4 or above :data:`MAX_BLOCK`: a final ``"error"`` record (the next block cannot be found);
* pcapng block whose trailing length differs from its leading length, packet block referring to
  an interface no IDB described, packet block whose captured length exceeds the block, IDB or
  packet block too short for its fixed fields, a later SHB of an unknown version or too
  short: an ``"error"`` record, and reading goes on at the next block (found from the leading
  length) -- after a bad SHB, packet blocks of that section are errors (no interface);
* a later SHB with an unknown byte-order magic: a final ``"error"`` record (the block lengths
  of that section cannot be read);
* frame too short for its link-layer header, or raw-IP frame whose version nibble is neither 4
  nor 6: a record of kind ``"malformed"`` (``data`` is None), reading goes on;
* unknown link type: ``"unsupported-linktype"`` records, reading goes on.

Every error record carries ``message`` and ``offset`` (the byte offset of the record or block
in the file).

Writing (:class:`CaptureWriter`)
--------------------------------
Classic pcap, little-endian, nanosecond magic, version 2.4, snaplen 262144, one record per
``write(timestamp, datagram)``; link type ``RAW`` (default), ``RAW_IPV4``, ``RAW_IPV6`` or
``ETHERNET`` (a 14-byte header with configurable MAC addresses is prepended, ethertype from the
IP version).
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO, NamedTuple, Self

from nfemu.errors import NfemuError

__all__ = [
    "CHUNK",
    "ETHERNET",
    "LINUX_SLL",
    "LINUX_SLL2",
    "MAX_BLOCK",
    "MAX_CAPLEN",
    "RAW",
    "RAW_IPV4",
    "RAW_IPV6",
    "CaptureError",
    "CaptureRecord",
    "CaptureWriter",
    "read_capture",
]

# Link types (LINKTYPE_* values of the tcpdump.org registry).
ETHERNET = 1
RAW = 101
RAW_IPV4 = 228
RAW_IPV6 = 229
LINUX_SLL = 113
LINUX_SLL2 = 276
_DLT_RAW_ALIASES = (12, 14)  # DLT_RAW as written by some BSDs: raw IPv4 or IPv6

CHUNK = 1 << 20
MAX_CAPLEN = 262144          # libpcap's largest snapshot length for these link types
MAX_BLOCK = 16 * 1024 * 1024  # libpcap's largest pcapng block

_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_ETH_IPV4, _ETH_IPV6, _ETH_ARP = 0x0800, 0x86DD, 0x0806

_PCAP_US, _PCAP_NS = 0xA1B2C3D4, 0xA1B23C4D
_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_IDB, _EPB, _SPB, _OPB = 1, 6, 3, 2


class CaptureError(NfemuError):
    """A capture file that cannot be read at all (raised before any record)."""

    def __init__(self, file: str, offset: int, message: str):
        self.file = file
        self.offset = offset
        self.message = message
        super().__init__(f"{file}: byte {offset}: {message}")


class CaptureRecord(NamedTuple):
    """One packet record of a capture, or one report of damage (``kind`` says which).

    kind: ``"ipv4"``, ``"ipv6"``, ``"arp"``, ``"other-ethertype"`` (``ethertype`` says which;
    values up to 1500 are 802.3 length fields), ``"unsupported-linktype"``, ``"malformed"``
    (frame unusable, reading goes on) or ``"error"`` (damaged file structure).
    """

    index: int                 # 1-based, in the order records are yielded
    ts_ns: int | None          # nanoseconds since the epoch (None: unknown)
    kind: str
    data: bytes | None         # bytes after the link-layer header(s), as captured
    caplen: int                # bytes captured of the frame (link header included)
    orig_len: int              # length of the frame on the wire
    linktype: int | None
    interface: str | None = None   # pcapng if_name
    ifindex: int | None = None     # SLL2 interface index
    ethertype: int | None = None
    vlans: tuple[int, ...] = ()
    pkttype: int | None = None     # SLL/SLL2 packet type (linux/if_packet.h)
    direction: str | None = None   # "in" / "out" (SLL pkttype, pcapng epb_flags)
    offset: int = 0                # byte offset of the record/block in the file
    message: str | None = None     # for "error", "malformed", "unsupported-linktype"
    interface_id: int | None = None  # pcapng interface number in its section
    macs: bytes | None = None      # Ethernet: the destination and source MAC (12 bytes)

    @property
    def timestamp(self) -> Fraction | None:
        """The timestamp in seconds, exactly."""
        return None if self.ts_ns is None else Fraction(self.ts_ns, 1_000_000_000)

    @property
    def truncated(self) -> bool:
        """True when the record holds fewer bytes than the frame had (cut at the snaplen)."""
        return self.caplen < self.orig_len


# ---- link-layer decoding -----------------------------------------------------------------------

def _ether_payload(frame: bytes, p: int, ethertype: int):
    """Skip VLAN tags starting at ``p`` (``ethertype`` read just before ``p``).

    Returns (kind, data, ethertype, vlans) or None when a tag is cut short."""
    vlans = ()
    while ethertype in _VLAN_TPIDS:
        if len(frame) < p + 4:
            return None
        vlans += ((frame[p] << 8 | frame[p + 1]) & 0x0FFF,)
        ethertype = frame[p + 2] << 8 | frame[p + 3]
        p += 4
    if ethertype == _ETH_IPV4:
        kind = "ipv4"
    elif ethertype == _ETH_IPV6:
        kind = "ipv6"
    elif ethertype == _ETH_ARP:
        kind = "arp"
    else:
        kind = "other-ethertype"
    return kind, frame[p:], ethertype, vlans


def _decode(index, ts_ns, frame, orig_len, linktype, interface, direction, offset, iface_id):
    """Build the CaptureRecord of one captured frame of the given link type."""
    caplen = len(frame)
    if linktype == ETHERNET:
        if caplen >= 14:
            et = frame[12] << 8 | frame[13]
            if et == _ETH_IPV4:  # fast path
                return CaptureRecord(index, ts_ns, "ipv4", frame[14:], caplen, orig_len, linktype,
                                     interface, None, et, (), None, direction, offset, None,
                                     iface_id, frame[:12])
            r = _ether_payload(frame, 14, et)
            if r is not None:
                return CaptureRecord(index, ts_ns, r[0], r[1], caplen, orig_len, linktype,
                                     interface, None, r[2], r[3], None, direction, offset, None,
                                     iface_id, frame[:12])
        return CaptureRecord(index, ts_ns, "malformed", None, caplen, orig_len, linktype,
                             interface, None, None, (), None, direction, offset,
                             "frame shorter than its Ethernet header", iface_id)
    if linktype == RAW or linktype == RAW_IPV4 or linktype == RAW_IPV6 \
            or linktype in _DLT_RAW_ALIASES:
        v = frame[0] >> 4 if caplen else None
        if v == 4 and linktype != RAW_IPV6:
            return CaptureRecord(index, ts_ns, "ipv4", frame, caplen, orig_len, linktype,
                                 interface, None, None, (), None, direction, offset, None,
                                 iface_id)
        if v == 6 and linktype != RAW_IPV4:
            return CaptureRecord(index, ts_ns, "ipv6", frame, caplen, orig_len, linktype,
                                 interface, None, None, (), None, direction, offset, None,
                                 iface_id)
        msg = "empty raw IP frame" if v is None else f"raw IP frame with IP version {v}"
        return CaptureRecord(index, ts_ns, "malformed", None, caplen, orig_len, linktype,
                             interface, None, None, (), None, direction, offset, msg, iface_id)
    if linktype == LINUX_SLL or linktype == LINUX_SLL2:
        if linktype == LINUX_SLL:
            hl = 16
            if caplen >= hl:
                pkttype = frame[0] << 8 | frame[1]
                et = frame[14] << 8 | frame[15]
                ifindex = None
        else:
            hl = 20
            if caplen >= hl:
                et = frame[0] << 8 | frame[1]
                ifindex = int.from_bytes(frame[4:8], "big", signed=True)
                pkttype = frame[10]
        r = _ether_payload(frame, hl, et) if caplen >= hl else None
        if r is None:
            return CaptureRecord(index, ts_ns, "malformed", None, caplen, orig_len, linktype,
                                 interface, None, None, (), None, direction, offset,
                                 "frame shorter than its Linux cooked header", iface_id)
        if direction is None:
            direction = "out" if pkttype == 4 else "in"
        return CaptureRecord(index, ts_ns, r[0], r[1], caplen, orig_len, linktype, interface,
                             ifindex, r[2], r[3], pkttype, direction, offset, None, iface_id)
    return CaptureRecord(index, ts_ns, "unsupported-linktype", frame, caplen, orig_len, linktype,
                         interface, None, None, (), None, direction, offset,
                         f"unsupported link type {linktype}", iface_id)


def _error(index, offset, message, linktype=None):
    return CaptureRecord(index, None, "error", None, 0, 0, linktype, offset=offset,
                         message=message)


# ---- buffered input ----------------------------------------------------------------------------

def _refill(f: BinaryIO, buf: bytes, pos: int, need: int) -> bytes:
    """``buf[pos:]`` extended from ``f`` to at least ``need`` bytes if the file has them."""
    parts = [buf[pos:]]
    have = len(parts[0])
    while have < need:
        chunk = f.read(max(need - have, CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


# ---- classic pcap ------------------------------------------------------------------------------

def _read_pcap(f, name, buf, own, endian, nano, linktype) -> Iterator[CaptureRecord]:
    """Records of a classic pcap file, the 24-byte header already consumed (``buf`` holds what
    follows it, starting at file offset 24)."""
    hdr = struct.Struct(endian + "IIII").unpack_from
    mult = 1 if nano else 1000
    base, pos, index = 24, 0, 0
    try:
        while True:
            if len(buf) - pos < 16:
                buf = _refill(f, buf, pos, 16)
                base += pos
                pos = 0
                if len(buf) < 16:
                    if buf:
                        index += 1
                        yield _error(index, base, f"record header cut short by the end of "
                                     f"the file ({len(buf)} of 16 bytes)", linktype)
                    return
            sec, frac, caplen, orig_len = hdr(buf, pos)
            index += 1
            if caplen > MAX_CAPLEN:
                yield _error(index, base + pos, f"record captured length {caplen} above "
                             f"{MAX_CAPLEN}: the file is corrupt, reading stops", linktype)
                return
            end = pos + 16 + caplen
            if end > len(buf):
                buf = _refill(f, buf, pos, 16 + caplen)
                base += pos
                pos = 0
                end = 16 + caplen
                if end > len(buf):
                    yield _error(index, base, f"record data cut short by the end of the file "
                                 f"({len(buf) - 16} of {caplen} bytes)", linktype)
                    return
            yield _decode(index, sec * 1_000_000_000 + frac * mult, buf[pos + 16:end],
                          orig_len, linktype, None, None, base + pos, None)
            pos = end
    finally:
        if own:
            f.close()


# ---- pcapng ------------------------------------------------------------------------------------

class _Iface:
    __slots__ = ("div", "linktype", "mul", "name", "offset_ns", "snaplen")

    def __init__(self, linktype, snaplen):
        self.linktype = linktype
        self.snaplen = snaplen
        self.name = None
        self.mul, self.div = 1000, 1  # default resolution: microseconds
        self.offset_ns = 0


def _options(body: bytes, start: int, endian: str):
    """(code, value) of the pcapng options in ``body[start:]``, stopping at opt_endofopt or
    at the first option that overruns the body."""
    p = start
    n = len(body)
    while p + 4 <= n:
        code, length = struct.unpack_from(endian + "HH", body, p)
        if code == 0:
            return
        if p + 4 + length > n:
            return
        yield code, body[p + 4:p + 4 + length]
        p += 4 + ((length + 3) & ~3)


def _parse_idb(body: bytes, endian: str) -> _Iface:
    linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", body, 0)
    it = _Iface(linktype, snaplen)
    for code, value in _options(body, 8, endian):
        if code == 2:
            it.name = value.split(b"\0", 1)[0].decode("utf-8", "replace")
        elif code == 9 and value:
            r = value[0]
            units = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
            if 1_000_000_000 % units == 0:
                it.mul, it.div = 1_000_000_000 // units, 1
            else:
                it.mul, it.div = 1_000_000_000, units
        elif code == 14 and len(value) == 8:
            it.offset_ns = struct.unpack(endian + "q", value)[0] * 1_000_000_000
    return it


def _shb_endian(buf: bytes, pos: int) -> str | None:
    """Byte order of the SHB at ``pos`` from its byte-order magic (12 bytes needed)."""
    bom = buf[pos + 8:pos + 12]
    if bom == b"\x4d\x3c\x2b\x1a":
        return "<"
    if bom == b"\x1a\x2b\x3c\x4d":
        return ">"
    return None


def _read_pcapng(f, name, buf, own) -> Iterator[CaptureRecord]:
    """Records of a pcapng file; ``buf`` starts at the first SHB (file offset 0), whose
    first 12 bytes :func:`read_capture` has checked."""
    base, pos, index = 0, 0, 0
    endian = "<"
    ifaces: list[_Iface] = []
    try:
        while True:
            if len(buf) - pos < 12:
                buf = _refill(f, buf, pos, 12)
                base += pos
                pos = 0
                if len(buf) < 12:
                    if buf:
                        index += 1
                        yield _error(index, base, f"block header cut short by the end of the "
                                     f"file ({len(buf)} bytes)")
                    return
            off = base + pos
            if buf[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
                e = _shb_endian(buf, pos)
                if e is None:
                    index += 1
                    yield _error(index, off, "section header block with an unknown "
                                 "byte-order magic: reading stops")
                    return
                endian = e
                ifaces = []
            btype, blen = struct.unpack_from(endian + "II", buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                index += 1
                yield _error(index, off, f"block of type {btype:#x} with inconsistent length "
                             f"{blen}: reading stops")
                return
            if len(buf) - pos < blen:
                buf = _refill(f, buf, pos, blen)
                base += pos
                pos = 0
                if len(buf) < blen:
                    index += 1
                    yield _error(index, off, f"block of type {btype:#x} cut short by the end "
                                 f"of the file ({len(buf)} of {blen} bytes)")
                    return
            start = pos
            pos += blen
            (trailer,) = struct.unpack_from(endian + "I", buf, pos - 4)
            if trailer != blen:
                index += 1
                yield _error(index, off, f"block of type {btype:#x}: trailing length "
                             f"{trailer} differs from leading length {blen}")
                continue
            if btype == _EPB or btype == _OPB:
                if blen < 32:
                    index += 1
                    yield _error(index, off, f"packet block too short ({blen} bytes)")
                    continue
                if btype == _EPB:
                    iid, hi, lo, caplen, orig_len = struct.unpack_from(endian + "IIIII", buf,
                                                                       start + 8)
                else:
                    iid, _drops, hi, lo, caplen, orig_len = struct.unpack_from(
                        endian + "HHIIII", buf, start + 8)
                index += 1
                if iid >= len(ifaces):
                    yield _error(index, off, f"packet block for interface {iid}, which no "
                                 f"interface description block defined")
                    continue
                if 28 + caplen > blen - 4:
                    yield _error(index, off, f"packet block captured length {caplen} exceeds "
                                 f"the block ({blen} bytes)", ifaces[iid].linktype)
                    continue
                it = ifaces[iid]
                direction = None
                opt = 28 + ((caplen + 3) & ~3)
                if opt < blen - 4 and btype == _EPB:
                    for code, value in _options(buf[start + 8:pos - 4], opt - 8, endian):
                        if code == 2 and len(value) == 4:
                            d = struct.unpack(endian + "I", value)[0] & 3
                            direction = "in" if d == 1 else "out" if d == 2 else None
                ts = (hi << 32) | lo
                ts_ns = it.offset_ns + (ts * it.mul if it.div == 1 else ts * it.mul // it.div)
                yield _decode(index, ts_ns, buf[start + 28:start + 28 + caplen], orig_len,
                              it.linktype, it.name, direction, off, iid)
            elif btype == _SPB:
                index += 1
                if not ifaces:
                    yield _error(index, off, "simple packet block before any interface "
                                 "description block")
                    continue
                if blen < 16:
                    yield _error(index, off, f"simple packet block too short ({blen} bytes)")
                    continue
                (orig_len,) = struct.unpack_from(endian + "I", buf, start + 8)
                it = ifaces[0]
                caplen = min(orig_len, blen - 16)
                if it.snaplen:
                    caplen = min(caplen, it.snaplen)
                yield _decode(index, None, buf[start + 12:start + 12 + caplen], orig_len,
                              it.linktype, it.name, None, off, 0)
            elif btype == _IDB:
                if blen < 20:
                    index += 1
                    yield _error(index, off, f"interface description block too short "
                                 f"({blen} bytes)")
                    # keep the numbering of later interfaces right
                    ifaces.append(_Iface(None, 0))
                    continue
                ifaces.append(_parse_idb(buf[start + 8:pos - 4], endian))
            elif btype == _SHB:
                major = struct.unpack_from(endian + "H", buf, start + 12)[0] if blen >= 28 else 0
                if major != 1:
                    index += 1
                    yield _error(index, off, f"section header block of version {major} or too "
                                 f"short ({blen} bytes): its packets cannot be read")
            # other block types: skipped
    finally:
        if own:
            f.close()


# ---- entry point -------------------------------------------------------------------------------

def read_capture(source) -> Iterator[CaptureRecord]:
    """Open a pcap or pcapng capture (a path or a binary file object) and return an iterator of
    its records, streaming.

    Raises :class:`CaptureError` here, before any record, when the file cannot be a capture
    (empty, unknown magic, file header or first section header cut short or invalid).  Damage
    further on becomes records of kind ``"error"`` (see the module docstring).  A file opened
    from a path is closed when the iterator is exhausted or closed.
    """
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        name = str(source if not isinstance(source, bytes) else source.decode(errors="replace"))
        f = open(source, "rb")  # noqa: SIM115 (closed when the iterator ends)
        own = True
    else:
        f = source
        name = str(getattr(source, "name", "<stream>"))
        own = False
    try:
        buf = _refill(f, b"", 0, 24)
        if len(buf) < 4:
            raise CaptureError(name, len(buf), "file too short for a capture file magic number"
                               if buf else "empty file, not a capture")
        if buf[:4] == b"\x0a\x0d\x0d\x0a":
            if len(buf) < 12:
                raise CaptureError(name, len(buf), "pcapng section header block cut short")
            endian = _shb_endian(buf, 0)
            if endian is None:
                raise CaptureError(name, 8, "pcapng section header block with an unknown "
                                   "byte-order magic")
            blen = struct.unpack_from(endian + "I", buf, 4)[0]
            if blen < 28 or blen % 4 or blen > MAX_BLOCK:
                raise CaptureError(name, 4, f"pcapng section header block with invalid "
                                   f"length {blen}")
            buf = _refill(f, buf, 0, blen)
            if len(buf) < blen:
                raise CaptureError(name, len(buf), "pcapng section header block cut short "
                                   f"({len(buf)} of {blen} bytes)")
            major = struct.unpack_from(endian + "H", buf, 12)[0]
            if major != 1:
                raise CaptureError(name, 12, f"pcapng version {major} is not supported")
            if struct.unpack_from(endian + "I", buf, blen - 4)[0] != blen:
                raise CaptureError(name, blen - 4, "pcapng section header block trailing "
                                   "length differs from its leading length")
            return _read_pcapng(f, name, buf, own)
        magic_le = struct.unpack_from("<I", buf, 0)[0]
        magic_be = struct.unpack_from(">I", buf, 0)[0]
        if magic_le in (_PCAP_US, _PCAP_NS):
            endian, magic = "<", magic_le
        elif magic_be in (_PCAP_US, _PCAP_NS):
            endian, magic = ">", magic_be
        else:
            raise CaptureError(name, 0, f"unknown magic number {buf[:4].hex()}: not a pcap or "
                               "pcapng file")
        if len(buf) < 24:
            raise CaptureError(name, len(buf), f"pcap file header cut short ({len(buf)} of "
                               "24 bytes)")
        major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(
            endian + "HHiIII", buf, 4)
        if major != 2:
            raise CaptureError(name, 4, f"pcap version {major} is not supported")
        return _read_pcap(f, name, buf[24:], own, endian, magic == _PCAP_NS, network & 0xFFFF)
    except BaseException:
        if own:
            f.close()
        raise


# ---- writer ------------------------------------------------------------------------------------

class CaptureWriter:
    """Write datagrams as a classic pcap file (little-endian, nanosecond timestamps, v2.4).

    ``linktype``: ``RAW`` (101, IPv4 or IPv6, the default), ``RAW_IPV4`` (228), ``RAW_IPV6``
    (229) or ``ETHERNET`` (1: a header ``dst_mac``, ``src_mac``, ethertype 0x0800/0x86DD from
    the IP version nibble is prepended).  A path is opened (and closed by :meth:`close`); a file
    object is written to and left open.  Usable as a context manager.
    """

    _hdr = struct.Struct("<IIII")

    def __init__(self, target, linktype: int = RAW, *, snaplen: int = MAX_CAPLEN,
                 src_mac: bytes = b"\x02\x00\x00\x00\x00\x01",
                 dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02"):
        if linktype not in (RAW, RAW_IPV4, RAW_IPV6, ETHERNET):
            raise ValueError(f"CaptureWriter cannot write link type {linktype}")
        if len(src_mac) != 6 or len(dst_mac) != 6:
            raise ValueError("MAC addresses are 6 bytes")
        self.linktype = linktype
        self.snaplen = snaplen
        self._eth = bytes(dst_mac) + bytes(src_mac)
        if isinstance(target, (str, bytes)) or hasattr(target, "__fspath__"):
            self._f = open(target, "wb")  # noqa: SIM115 (closed by close())
            self._own = True
        else:
            self._f = target
            self._own = False
        self.count = 0
        self._f.write(struct.pack("<IHHiIII", _PCAP_NS, 2, 4, 0, 0, snaplen, linktype))

    def write(self, timestamp, datagram: bytes, orig_len: int | None = None) -> None:
        """Append one record.  ``timestamp`` is in seconds (int, float, Fraction or Decimal;
        rounded to the nearest nanosecond); ``orig_len`` defaults to the datagram's length
        (give it when ``datagram`` is cut short)."""
        if isinstance(timestamp, int):
            ts_ns = timestamp * 1_000_000_000
        else:
            ts_ns = round(Fraction(timestamp) * 1_000_000_000)
        self.write_ns(ts_ns, datagram, orig_len)

    def write_ns(self, ts_ns: int, datagram: bytes, orig_len: int | None = None) -> None:
        """Append one record timestamped ``ts_ns`` nanoseconds since the epoch."""
        if ts_ns < 0 or ts_ns >= (1 << 32) * 1_000_000_000:
            raise ValueError(f"timestamp {ts_ns} ns does not fit a pcap record")
        version = datagram[0] >> 4 if datagram else 0
        if self.linktype == ETHERNET:
            if version == 4:
                frame = self._eth + b"\x08\x00" + datagram
            elif version == 6:
                frame = self._eth + b"\x86\xdd" + datagram
            else:
                raise ValueError(f"datagram of IP version {version}")
            extra = 14
        else:
            ok = {RAW: (4, 6), RAW_IPV4: (4,), RAW_IPV6: (6,)}[self.linktype]
            if version not in ok:
                raise ValueError(f"datagram of IP version {version} in a link type "
                                 f"{self.linktype} capture")
            frame = datagram
            extra = 0
        wire = (len(datagram) if orig_len is None else orig_len) + extra
        if len(frame) > self.snaplen:
            frame = frame[:self.snaplen]
        sec, ns = divmod(ts_ns, 1_000_000_000)
        self._f.write(self._hdr.pack(sec, ns, len(frame), wire))
        self._f.write(frame)
        self.count += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        """Flush, and close the file if the writer opened it."""
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bench(n: int = 1_000_000, path: str | None = None) -> None:
    """Write an n-record Ethernet capture and time reading it back (``python3 -m nfemu.pcapio
    [N]``)."""
    import os
    import tempfile
    import time
    ip = bytes.fromhex("450000280001000040060000c0a80001c0a80002"
                       "3039005000000000000000005002200000000000")
    path = path or os.path.join(tempfile.mkdtemp(), "bench.pcap")
    t0 = time.perf_counter()
    with CaptureWriter(path, ETHERNET) as w:
        for i in range(n):
            w.write_ns(1_700_000_000_000_000_000 + i * 1000, ip)
    t1 = time.perf_counter()
    count = 0
    for rec in read_capture(path):
        count += rec.kind == "ipv4"
    t2 = time.perf_counter()
    size = os.path.getsize(path)
    print(f"wrote {n} records ({size} bytes) in {t1 - t0:.2f} s ({n / (t1 - t0):,.0f} rec/s)")
    print(f"read {count} records in {t2 - t1:.2f} s: {n / (t2 - t1):,.0f} records/s, "
          f"{size / (t2 - t1) / 1e6:.0f} MB/s")
    os.unlink(path)


if __name__ == "__main__":  # pragma: no cover
    import sys
    _bench(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
