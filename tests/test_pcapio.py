"""Tests of nfemu.pcapio: the streaming pcap / pcapng reader and the pcap writer.

Captures are built here, by hand from the format specifications (pcap-savefile(5), the pcapng
draft, the LINKTYPE registry) and with scapy's independent writers; tcpdump, when installed,
is the judge of what the writer produces and of how the hand-made files are read.
"""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import (
    ARP,
    IP,
    TCP,
    UDP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Ether,
    IPv6,
    PcapNgWriter,
    wrpcap,
)

from nfemu.errors import NfemuError
from nfemu.pcapio import (
    ETHERNET,
    LINUX_SLL,
    LINUX_SLL2,
    RAW,
    RAW_IPV4,
    RAW_IPV6,
    CaptureError,
    CaptureWriter,
    read_capture,
)

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump not installed")

IP4 = bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=1) / TCP(sport=1234, dport=80, flags="S"))
IP4B = bytes(IP(src="10.0.0.3", dst="10.0.0.4", id=2) / UDP(sport=53, dport=5353) / b"xyz")
IP6 = bytes(IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2) / b"hello")
T0 = 1_700_000_000


# ---- hand-made file builders (from the format documents, not from nfemu) ------------------------

def pcap(records, *, endian="<", nano=False, linktype=ETHERNET, snaplen=65535):
    """Classic pcap: records are (ts_ns, frame) or (ts_ns, frame, orig_len)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for rec in records:
        ts, frame = rec[0], rec[1]
        orig = rec[2] if len(rec) > 2 else len(frame)
        sec, ns = divmod(ts, 10**9)
        out.append(struct.pack(endian + "IIII", sec, ns if nano else ns // 1000,
                               len(frame), orig) + frame)
    return b"".join(out)


def _opts(endian, options):
    out = b""
    for code, value in options:
        out += struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    if options:
        out += struct.pack(endian + "HH", 0, 0)
    return out


def block(endian, btype, body):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def shb(endian="<", major=1):
    return block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, major, 0, -1))


def idb(endian, linktype, name=None, tsresol=None, tsoffset=None, snaplen=0):
    options = []
    if name is not None:
        options.append((2, name.encode()))
    if tsresol is not None:
        options.append((9, bytes([tsresol])))
    if tsoffset is not None:
        options.append((14, struct.pack(endian + "q", tsoffset)))
    return block(endian, 1, struct.pack(endian + "HHI", linktype, 0, snaplen)
                 + _opts(endian, options))


def epb(endian, iid, ts_units, frame, orig_len=None, flags=None):
    options = [] if flags is None else [(2, struct.pack(endian + "I", flags))]
    body = struct.pack(endian + "IIIII", iid, ts_units >> 32, ts_units & 0xFFFFFFFF,
                       len(frame), len(frame) if orig_len is None else orig_len)
    return block(endian, 6, body + frame + b"\0" * (-len(frame) % 4) + _opts(endian, options))


def spb(endian, frame, orig_len=None):
    return block(endian, 3, struct.pack(endian + "I", len(frame) if orig_len is None
                                        else orig_len) + frame)


def opb(endian, iid, ts_units, frame):
    return block(endian, 2, struct.pack(endian + "HHIIII", iid, 0, ts_units >> 32,
                                        ts_units & 0xFFFFFFFF, len(frame), len(frame)) + frame)


def eth(payload, ethertype=0x0800, tags=()):
    hdr = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01"
    for tpid, vid in tags:
        hdr += struct.pack(">HH", tpid, vid)
    return hdr + struct.pack(">H", ethertype) + payload


def read_bytes(data):
    return list(read_capture(io.BytesIO(data)))


def sample_files():
    """A small valid file of every format / byte order, for the truncation properties (one
    link type per file: libpcap, hence tcpdump, refuses pcapng files that mix them)."""
    files = {}
    for endian in "<>":
        for nano in (False, True):
            files[f"pcap{endian}{nano}"] = pcap(
                [(T0 * 10**9 + 1000, eth(IP4)), (T0 * 10**9 + 2000, eth(IP6, 0x86DD)),
                 (T0 * 10**9 + 3000, eth(IP4B, tags=[(0x8100, 5)]))],
                endian=endian, nano=nano)
        files[f"pcapng{endian}"] = (
            shb(endian) + idb(endian, ETHERNET, "eth0") + epb(endian, 0, 1, eth(IP4))
            + idb(endian, ETHERNET, "eth1", tsresol=9) + block(endian, 0x0BAD, b"1234")
            + epb(endian, 1, T0 * 10**9 + 2, eth(IP6, 0x86DD)) + spb(endian, eth(IP4B)))
    return files


# ---- classic pcap -------------------------------------------------------------------------------

@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_byte_orders_and_resolutions(endian, nano):
    ts = [T0 * 10**9 + 123_456_789, T0 * 10**9 + 999_999_000, (T0 + 1) * 10**9]
    data = pcap([(ts[0], eth(IP4)), (ts[1], eth(IP6, 0x86DD)), (ts[2], eth(b"a" * 28, 0x0806))],
                endian=endian, nano=nano)
    recs = read_bytes(data)
    assert [r.kind for r in recs] == ["ipv4", "ipv6", "arp"]
    assert [r.index for r in recs] == [1, 2, 3]
    expect = ts if nano else [t // 1000 * 1000 for t in ts]
    assert [r.ts_ns for r in recs] == expect
    assert recs[0].timestamp == Fraction(expect[0], 10**9)
    assert recs[0].data == IP4 and recs[1].data == IP6 and recs[2].data == b"a" * 28
    assert recs[0].linktype == ETHERNET and recs[0].interface is None
    assert recs[0].caplen == len(IP4) + 14 == recs[0].orig_len and not recs[0].truncated
    assert recs[0].offset == 24 and recs[1].offset == 24 + 16 + 14 + len(IP4)


def test_scapy_written_pcap_is_read(tmp_path):
    """scapy's wrpcap is an independent writer (microsecond and nanosecond files)."""
    pkts = [Ether() / IP(src="1.2.3.4", dst="5.6.7.8") / TCP(), Ether() / IPv6() / UDP(),
            Ether() / ARP()]
    for i, p in enumerate(pkts):
        p.time = T0 + i + Fraction(1, 4)
    for nano in (False, True):
        path = tmp_path / f"scapy{nano}.pcap"
        wrpcap(str(path), pkts, nano=nano)
        recs = list(read_capture(path))
        assert [r.kind for r in recs] == ["ipv4", "ipv6", "arp"]
        assert [r.data for r in recs] == [bytes(p.payload) for p in pkts]
        assert [r.ts_ns for r in recs] == [(T0 + i) * 10**9 + 250_000_000 for i in range(3)]


def test_cut_short_records_report_both_lengths():
    recs = read_bytes(pcap([(0, eth(IP4)[:34], 1514)], snaplen=34))
    assert recs[0].kind == "ipv4" and recs[0].caplen == 34 and recs[0].orig_len == 1514
    assert recs[0].truncated and recs[0].data == IP4[:20]


# ---- link types ---------------------------------------------------------------------------------

def test_ethernet_vlan_and_qinq_tags_are_skipped():
    frames = [bytes(Ether() / Dot1Q(vlan=100) / IP(dst="1.1.1.1") / UDP()),
              bytes(Ether() / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IPv6() / UDP()),
              eth(IP4, tags=[(0x9100, 7), (0x8100, 8)]),
              eth(b"\x00" * 10, 0x88CC),
              eth(b"\x00" * 10, 0x8100)[:14 + 2],      # tag cut short
              b"\x00" * 13]                            # no room for the Ethernet header
    recs = read_bytes(pcap([(0, f) for f in frames]))
    assert [r.kind for r in recs] == ["ipv4", "ipv6", "ipv4", "other-ethertype", "malformed",
                                      "malformed"]
    assert recs[0].vlans == (100,) and recs[1].vlans == (10, 20) and recs[2].vlans == (7, 8)
    assert recs[0].data == bytes(IP(dst="1.1.1.1") / UDP())
    assert recs[2].data == IP4
    assert recs[3].ethertype == 0x88CC and recs[3].data == b"\x00" * 10
    assert recs[4].message and recs[5].message


def test_linux_cooked_sll():
    frames = [bytes(CookedLinux(pkttype=0, proto=0x0800) / IP(src="9.9.9.9") / UDP()),
              bytes(CookedLinux(pkttype=4, proto=0x86DD) / IPv6() / UDP()),
              bytes(CookedLinux(pkttype=3, proto=0x0806) / ARP()),
              # VLAN tag libpcap re-inserts after the cooked header
              bytes(CookedLinux(pkttype=0, proto=0x8100)) + struct.pack(">HH", 42, 0x0800) + IP4,
              b"\x00" * 15]
    recs = read_bytes(pcap([(0, f) for f in frames], linktype=LINUX_SLL))
    assert [r.kind for r in recs] == ["ipv4", "ipv6", "arp", "ipv4", "malformed"]
    assert recs[0].data == bytes(IP(src="9.9.9.9") / UDP())
    assert [r.pkttype for r in recs[:4]] == [0, 4, 3, 0]
    assert [r.direction for r in recs[:4]] == ["in", "out", "in", "in"]
    assert recs[3].vlans == (42,) and recs[3].data == IP4
    assert all(r.ifindex is None for r in recs)


def test_linux_cooked_sll2_carries_the_ifindex():
    frames = [bytes(CookedLinuxV2(proto=0x0800, ifindex=7, pkttype=4) / IP() / TCP()),
              bytes(CookedLinuxV2(proto=0x86DD, ifindex=3, pkttype=0) / IPv6()),
              b"\x08\x00" + b"\x00" * 17]
    recs = read_bytes(pcap([(0, f) for f in frames], linktype=LINUX_SLL2))
    assert [r.kind for r in recs] == ["ipv4", "ipv6", "malformed"]
    assert [r.ifindex for r in recs[:2]] == [7, 3]
    assert [r.direction for r in recs[:2]] == ["out", "in"]
    assert recs[0].data == bytes(IP() / TCP())


@pytest.mark.parametrize("linktype", [RAW, 12, 14])
def test_raw_ip_link_types(linktype):
    recs = read_bytes(pcap([(0, IP4), (0, IP6), (0, b"\x50" + IP4[1:]), (0, b"")],
                           linktype=linktype))
    assert [r.kind for r in recs] == ["ipv4", "ipv6", "malformed", "malformed"]
    assert recs[0].data == IP4 and recs[1].data == IP6
    assert "version 5" in recs[2].message


def test_raw_ipv4_and_ipv6_only_link_types():
    assert [r.kind for r in read_bytes(pcap([(0, IP4), (0, IP6)], linktype=RAW_IPV4))] == \
        ["ipv4", "malformed"]
    assert [r.kind for r in read_bytes(pcap([(0, IP4), (0, IP6)], linktype=RAW_IPV6))] == \
        ["malformed", "ipv6"]


def test_unknown_link_type_is_reported_and_reading_goes_on():
    recs = read_bytes(pcap([(0, b"abc"), (5, b"defg")], linktype=147))
    assert [r.kind for r in recs] == ["unsupported-linktype"] * 2
    assert recs[0].data == b"abc" and "147" in recs[0].message and recs[1].offset == 24 + 19


# ---- pcapng -------------------------------------------------------------------------------------

@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_blocks(endian):
    data = (shb(endian)
            + idb(endian, ETHERNET, "eth0")                          # default: microseconds
            + idb(endian, RAW, "tun0", tsresol=9)                    # nanoseconds
            + idb(endian, LINUX_SLL2, None, tsresol=0x80 | 10, tsoffset=100)  # 2^-10 s
            + block(endian, 5, b"\0" * 8)                            # ISB: skipped
            + block(endian, 0x40000BAD, b"custom")                   # unknown: skipped
            + epb(endian, 0, (T0 * 10**6) + 5, eth(IP4), flags=2)
            + epb(endian, 1, T0 * 10**9 + 7, IP6, flags=1)
            + epb(endian, 2, 1536, bytes(CookedLinuxV2(proto=0x800, ifindex=9) / IP()))
            + spb(endian, eth(IP4B))
            + opb(endian, 1, 11, IP4))
    recs = read_bytes(data)
    assert [r.kind for r in recs] == ["ipv4", "ipv6", "ipv4", "ipv4", "ipv4"]
    assert [r.interface for r in recs] == ["eth0", "tun0", None, "eth0", "tun0"]
    assert [r.linktype for r in recs] == [ETHERNET, RAW, LINUX_SLL2, ETHERNET, RAW]
    assert [r.interface_id for r in recs] == [0, 1, 2, 0, 1]
    assert recs[0].ts_ns == T0 * 10**9 + 5000
    assert recs[1].ts_ns == T0 * 10**9 + 7
    assert recs[2].ts_ns == 101_500_000_000            # 1536/1024 s + 100 s offset
    assert recs[3].ts_ns is None                       # SPBs carry no timestamp
    assert recs[4].ts_ns == 11
    assert [r.direction for r in recs[:2]] == ["out", "in"]
    assert recs[2].ifindex == 9
    assert recs[0].data == IP4 and recs[1].data == IP6 and recs[3].data == IP4B
    assert [r.index for r in recs] == [1, 2, 3, 4, 5]


def test_pcapng_several_sections_with_different_byte_orders():
    data = (shb("<") + idb("<", RAW, "a") + epb("<", 0, 1, IP4)
            + shb(">") + idb(">", ETHERNET, "b") + epb(">", 0, 2, eth(IP6, 0x86DD)))
    recs = read_bytes(data)
    assert [(r.kind, r.interface, r.ts_ns) for r in recs] == [("ipv4", "a", 1000),
                                                              ("ipv6", "b", 2000)]


def test_scapy_pcapng_writer_is_read(tmp_path):
    path = tmp_path / "scapy.pcapng"
    w = PcapNgWriter(str(path))
    p1 = Ether() / IP(dst="10.1.1.1") / UDP()
    p1.time = T0 + Fraction(1, 2)
    p2 = IP(dst="10.2.2.2") / TCP()
    p2.time = T0 + 3
    w.write(p1)
    w._write_packet(bytes(p2), linktype=RAW, ifname=b"tun7", sec=T0 + 3, usec=0)
    w.close()
    recs = list(read_capture(path))
    assert [r.kind for r in recs] == ["ipv4", "ipv4"]
    assert recs[0].data == bytes(p1.payload) and recs[1].data == bytes(p2)
    assert recs[0].ts_ns == (T0 * 10**9 + 500_000_000)
    assert recs[1].linktype == RAW and recs[1].interface == "tun7"


def test_pcapng_damage_is_reported_and_reading_goes_on():
    bad_trailer = bytearray(epb("<", 0, 1, IP4))
    bad_trailer[-4:] = struct.pack("<I", 12)
    too_long = bytearray(epb("<", 0, 1, IP4))
    struct.pack_into("<I", too_long, 20, 4000)  # captured length beyond the block
    data = (shb("<") + epb("<", 0, 1, IP4)       # no interface yet
            + spb("<", IP4)                      # no interface yet
            + idb("<", RAW) + bytes(bad_trailer) + bytes(too_long)
            + epb("<", 3, 1, IP4)                # undefined interface
            + shb("<", major=2)                  # unreadable section
            + epb("<", 0, 1, IP4)
            + shb("<") + idb("<", RAW) + epb("<", 0, 9, IP4))
    recs = read_bytes(data)
    assert [r.kind for r in recs] == ["error"] * 7 + ["ipv4"]
    assert all(r.message and r.offset > 0 for r in recs[:7])
    assert recs[-1].ts_ns == 9000 and recs[-1].data == IP4
    assert [r.index for r in recs] == list(range(1, 9))


def test_pcapng_inconsistent_block_length_stops_with_one_error():
    good = shb("<") + idb("<", RAW) + epb("<", 0, 1, IP4)
    for blen in (8, 13, 64 * 1024 * 1024):
        data = good + struct.pack("<II", 6, blen) + b"\0" * 40 + epb("<", 0, 1, IP4)
        recs = read_bytes(data)
        assert [r.kind for r in recs] == ["ipv4", "error"], blen
        assert recs[1].offset == len(good) and str(blen) in recs[1].message


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"\xa1\xb2", b"GIF89a........................",
                                  pcap([])[:23], shb("<")[:11], shb("<")[:27],
                                  b"\x0a\x0d\x0d\x0a" + b"\0" * 8,
                                  shb("<", major=2)])
def test_unreadable_headers_raise_before_any_record(data, tmp_path):
    path = tmp_path / "bad.pcap"
    path.write_bytes(data)
    with pytest.raises(CaptureError) as exc:
        read_capture(path)  # raised by the call itself, not on iteration
    assert isinstance(exc.value, NfemuError)
    assert str(path) in str(exc.value) and "byte" in str(exc.value)


def test_classic_pcap_truncated_last_record_and_header():
    good = pcap([(0, eth(IP4)), (1000, eth(IP4B))])
    first_len = 16 + 14 + len(IP4)
    recs = read_bytes(good[:-3])
    assert [r.kind for r in recs] == ["ipv4", "error"]
    assert recs[1].offset == 24 + first_len and "cut short" in recs[1].message
    recs = read_bytes(good[:24 + first_len + 5])
    assert [r.kind for r in recs] == ["ipv4", "error"] and "header" in recs[1].message


def test_classic_pcap_absurd_caplen_stops_cleanly():
    data = pcap([(0, IP4)], linktype=RAW) + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 10) + b"x" * 99
    recs = read_bytes(data)
    assert [r.kind for r in recs] == ["ipv4", "error"] and "corrupt" in recs[1].message


@settings(max_examples=300)
@given(st.sampled_from(sorted(sample_files())), st.data())
def test_any_truncation_yields_a_prefix_then_at_most_one_error(name, data):
    full = sample_files()[name]
    complete = read_bytes(full)
    assert not any(r.kind in ("error", "malformed") for r in complete)
    cut = data.draw(st.integers(0, len(full)))
    try:
        recs = read_bytes(full[:cut])
    except CaptureError:
        header = 28 if name.startswith("pcapng") else 24
        assert cut < header
        return
    errors = [r for r in recs if r.kind == "error"]
    assert len(errors) <= 1
    if errors:
        assert recs[-1].kind == "error" and errors[0].offset <= cut
    good = [r for r in recs if r.kind != "error"]
    assert good == complete[:len(good)]


def test_every_truncation_of_every_sample_exhaustively():
    """The property above, at every offset (the files are small)."""
    for name, full in sample_files().items():
        complete = read_bytes(full)
        for cut in range(len(full) + 1):
            try:
                recs = read_bytes(full[:cut])
            except CaptureError:
                continue
            kinds = [r.kind for r in recs]
            assert "error" not in kinds[:-1], (name, cut)
            good = [r for r in recs if r.kind != "error"]
            assert good == complete[:len(good)], (name, cut)
            if cut == len(full):
                assert recs == complete


@settings(max_examples=300)
@given(st.sampled_from(["pcap", "pcapng", "none"]), st.binary(max_size=400))
def test_garbage_never_raises_anything_but_capture_error(prefix, junk):
    head = {"pcap": pcap([])[:24], "pcapng": shb(">") + idb(">", ETHERNET), "none": b""}[prefix]
    try:
        recs = read_bytes(head + junk)
    except CaptureError:
        assert prefix == "none"
        return
    for r in recs:
        assert r.kind in ("ipv4", "ipv6", "arp", "other-ethertype", "malformed",
                          "unsupported-linktype", "error")
        if r.kind in ("error", "malformed", "unsupported-linktype"):
            assert r.message


def test_path_and_file_object_sources(tmp_path):
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap([(0, eth(IP4))]))
    assert [r.kind for r in read_capture(path)] == ["ipv4"]
    assert [r.kind for r in read_capture(str(path))] == ["ipv4"]
    with open(path, "rb") as f:
        assert [r.kind for r in read_capture(f)] == ["ipv4"]


def test_reading_streams_large_records_across_chunks(monkeypatch):
    from nfemu import pcapio
    monkeypatch.setattr(pcapio, "CHUNK", 64)
    big = bytes(IP(dst="1.1.1.1") / UDP() / (b"z" * 3000))
    recs = read_bytes(pcap([(i, eth(big if i % 2 else IP4)) for i in range(10)]))
    assert [r.data for r in recs] == [big if i % 2 else IP4 for i in range(10)]
    ng = shb("<") + idb("<", RAW) + b"".join(epb("<", 0, i, big) for i in range(5))
    assert [r.data for r in read_bytes(ng)] == [big] * 5


# ---- writer -------------------------------------------------------------------------------------

def test_writer_round_trip_all_link_types():
    for linktype, datagrams in ((RAW, [IP4, IP6]), (RAW_IPV4, [IP4, IP4B]), (RAW_IPV6, [IP6]),
                                (ETHERNET, [IP4, IP6])):
        buf = io.BytesIO()
        w = CaptureWriter(buf, linktype)
        for i, d in enumerate(datagrams):
            w.write(Fraction(T0 * 10**9 + i * 10**9 + 1, 10**9), d)
        w.close()
        raw = buf.getvalue()
        assert struct.unpack_from("<IHHiIII", raw, 0)[0] == 0xA1B23C4D
        assert struct.unpack_from("<IHHiIII", raw, 0)[6] == linktype
        recs = read_bytes(raw)
        assert [r.data for r in recs] == datagrams
        assert [r.kind for r in recs] == ["ipv4" if d[0] >> 4 == 4 else "ipv6" for d in datagrams]
        assert [r.ts_ns for r in recs] == [T0 * 10**9 + i * 10**9 + 1
                                           for i in range(len(datagrams))]


def test_writer_rejects_what_the_link_type_cannot_hold():
    w = CaptureWriter(io.BytesIO(), RAW_IPV4)
    with pytest.raises(ValueError):
        w.write(0, IP6)
    with pytest.raises(ValueError):
        CaptureWriter(io.BytesIO(), LINUX_SLL)
    with pytest.raises(ValueError):
        CaptureWriter(io.BytesIO(), ETHERNET).write(-1, IP4)


def test_writer_timestamp_forms():
    buf = io.BytesIO()
    with CaptureWriter(buf) as w:
        w.write(5, IP4)
        w.write(1.5, IP4)
        w.write(Fraction(7, 3), IP4)
        w.write_ns(123, IP4, orig_len=1000)
    recs = read_bytes(buf.getvalue())
    assert [r.ts_ns for r in recs] == [5 * 10**9, 1_500_000_000, 2_333_333_333, 123]
    assert recs[3].orig_len == 1000 and recs[3].truncated


def _tcpdump(path, *extra):
    out = subprocess.run([TCPDUMP, "-r", str(path), "-nn", "-tt",
                          "--time-stamp-precision=nano", *extra],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@needs_tcpdump
@pytest.mark.parametrize("linktype", [RAW, RAW_IPV4, ETHERNET])
def test_writer_output_is_read_by_tcpdump(tmp_path, linktype):
    path = tmp_path / "out.pcap"
    datagrams = [IP4, IP4B] + ([IP6] if linktype != RAW_IPV4 else [])
    with CaptureWriter(path, linktype) as w:
        for i, d in enumerate(datagrams):
            w.write_ns(T0 * 10**9 + i * 1_000_000_007, d)
    lines = _tcpdump(path)
    assert len(lines) == len(datagrams)
    assert lines[0].startswith(f"{T0}.000000000 ") and "10.0.0.1.1234 > 10.0.0.2.80" in lines[0]
    assert lines[1].startswith(f"{T0 + 1}.000000007 ") and "10.0.0.3.53 > 10.0.0.4.5353" in lines[1]
    if linktype != RAW_IPV4:
        assert "fd00::1.1 > fd00::2.2" in lines[2]
    # and back through the reader
    assert [r.data for r in read_capture(path)] == datagrams


@needs_tcpdump
@pytest.mark.parametrize("name", sorted(sample_files()))
def test_tcpdump_agrees_on_the_sample_files(tmp_path, name):
    """tcpdump reads the hand-made files the same way: same count, same timestamps."""
    path = tmp_path / "s"
    path.write_bytes(sample_files()[name])
    lines = _tcpdump(path)
    recs = list(read_capture(path))
    assert len(lines) == len(recs)
    for line, r in zip(lines, recs):
        if r.ts_ns is not None:
            sec, ns = divmod(r.ts_ns, 10**9)
            assert line.startswith(f"{sec}.{ns:09d} "), (line, r)
