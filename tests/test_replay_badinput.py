"""`nfemu replay` on bad captures: damaged files, frames netfilter never sees, frames the
kernel drops before PREROUTING, bad checksums, the node's own output, usage errors. Every
case gives a clear message and an exit code (0 done, 1 damaged input or rules, 2 usage),
never a traceback; the replay goes on where the kernel would.

Kernel facts the expectations come from: ip_rcv_core drops a datagram with a bad header
checksum, a bad version or header length, a total length above the frame, or a frame of
type PACKET_OTHERHOST, before PREROUTING; conntrack (nf_conntrack_checksum=1) gives a TCP
segment with a bad checksum no entry at PREROUTING, so it is INVALID and the nat table is
not consulted for it; a checksum left partial by offload (the pseudo-header sum only) is not
verified; UDP checksum 0 means none; forwarding does not fix a bad transport checksum.
"""
from __future__ import annotations

import io
import json
import random
import struct

import pytest
from scapy.all import ARP, IP, TCP, UDP, CookedLinux, Ether, IPv6, Raw, rdpcap, wrpcapng

from nfemu.pcapio import CaptureError
from nfemu.replay import replay

from .test_replay_cli import (
    CLIENT,
    HOST,
    OTHER,
    POD,
    RULES,
    T0,
    VIP,
    _counter_lines,
    _stamp,
    nfemu_cli,
    node,
)

ETH_HEAD = bytes.fromhex("020000000002" "020000000050")


def eth(ip: bytes, ethertype: int = 0x0800) -> bytes:
    return ETH_HEAD + struct.pack("!H", ethertype) + ip


def pcap_file(frames, linktype: int = 1, orig_lens=None) -> bytes:
    """A classic little-endian microsecond pcap file; record i at T0 + i seconds."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, f in enumerate(frames):
        orig = len(f) if orig_lens is None or orig_lens[i] is None else orig_lens[i]
        out.append(struct.pack("<IIII", T0 + i, 0, len(f), orig) + f)
    return b"".join(out)


def syn(dst=VIP, dport=80, sport=40000, **ip) -> bytes:
    return bytes(IP(src=CLIENT, dst=dst, **ip) / TCP(sport=sport, dport=dport, flags="S"))


def records_of(run) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.fixture
def rules(tmp_path):
    p = tmp_path / "node.rules"
    p.write_text(RULES)
    return p


def _run_file(tmp_path, rules, data: bytes, *args, name="in.pcap"):
    path = tmp_path / name
    path.write_bytes(data)
    run = nfemu_cli("replay", rules, path, *HOST, *args)
    assert "Traceback" not in run.stderr, run.stderr
    return path, run


# ---- damaged files -------------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["record-data", "record-header"])
def test_truncated_capture_replays_what_is_there_and_writes_the_outputs(tmp_path, rules, cut):
    frames = [eth(syn()), eth(syn(dst=OTHER, dport=22)), eth(syn(sport=40002))]
    full = pcap_file(frames)
    third = 24 + sum(16 + len(f) for f in frames[:2])      # the third record's offset
    data = full[:third + 16 + 10] if cut == "record-data" else full[:third + 9]
    out, counters, ct = tmp_path / "o.pcap", tmp_path / "c.txt", tmp_path / "ct.txt"
    path, run = _run_file(tmp_path, rules, data, "-i", "eth0", "--json", "--write", out,
                          "--counters", counters, "--conntrack", ct)
    assert run.returncode == 1
    assert f"{path}: error: byte {third}: " in run.stderr
    assert "cut short by the end of the file" in run.stderr
    objs = records_of(run)
    assert [o.get("verdict") for o in objs[:2]] == ["ACCEPT", "DROP"]
    assert objs[2]["problem"]["kind"] == "capture-error" and objs[2]["offset"] == third
    assert objs[-1]["summary"]["problems"]["capture-error"]["offset"] == third
    # outputs hold the two packets before the damage
    assert len(rdpcap(str(out))) == 1
    got = _counter_lines(counters.read_text())
    assert got["filter :FORWARD"] == (1, 40)
    assert got["nat -A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT "
               "--to-destination 10.244.1.5:8080"] == (1, 40)
    assert len(ct.read_text().splitlines()) == 1


def test_file_header_cut_short(tmp_path, rules):
    path, run = _run_file(tmp_path, rules, pcap_file([])[:20], "-i", "eth0")
    assert run.returncode == 1 and f"{path}: error: byte 20: pcap file header cut short" \
        in run.stderr
    assert run.stdout == ""


def test_empty_file(tmp_path, rules):
    path, run = _run_file(tmp_path, rules, b"", "-i", "eth0")
    assert run.returncode == 1
    assert run.stderr.strip() == f"{path}: error: byte 0: empty file, not a capture"


def test_not_a_capture(tmp_path, rules):
    path, run = _run_file(tmp_path, rules, RULES.encode(), "-i", "eth0")
    assert run.returncode == 1 and f"{path}: error: byte 0: unknown magic number" in run.stderr
    assert "not a pcap or pcapng file" in run.stderr


def test_unknown_link_type_is_counted(tmp_path, rules):
    _, run = _run_file(tmp_path, rules, pcap_file([b"\x01\x02\x03", b"\x04"], linktype=147),
                          "--json")
    assert run.returncode == 0, run.stderr
    objs = records_of(run)
    assert [o["problem"]["kind"] for o in objs[:2]] == ["unsupported-linktype"] * 2
    assert "147" in objs[0]["problem"]["message"]
    assert objs[-1]["summary"]["problems"]["unsupported-linktype"]["count"] == 2


def test_random_damage_never_escapes(tmp_path):
    """Bytes flipped, cut or inserted anywhere in a good capture: the replay yields results
    or raises CaptureError before any; nothing else."""
    good = pcap_file([eth(syn()), eth(bytes(IPv6() / UDP())), eth(syn(dst=OTHER)),
                      eth(b"\x00" * 30, 0x0806)])
    rnd = random.Random(4)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rnd.randrange(1, 6)):
            op = rnd.randrange(3)
            i = rnd.randrange(len(data))
            if op == 0:
                data[i] = rnd.randrange(256)
            elif op == 1:
                del data[i:i + rnd.randrange(1, 20)]
            else:
                data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9)))
        try:
            results = list(replay(node(), io.BytesIO(bytes(data)), iface="eth0"))
        except CaptureError:
            continue
        for r in results:
            assert (r.problem is None) == (r.journey is not None)


# ---- frames netfilter never sees ------------------------------------------------------------

def test_arp_ipv6_and_other_ethertypes_are_counted_not_sent(tmp_path, rules):
    frames = [bytes(Ether(src="02:00:00:00:00:50", dst="ff:ff:ff:ff:ff:ff")
                    / ARP(psrc=CLIENT, pdst="192.168.0.2")),
              bytes(Ether() / IPv6(src="fd00::1", dst="fd00::2") / UDP()),
              eth(b"\x00" * 46, 0x88CC),                      # LLDP
              eth(syn())]
    counters = tmp_path / "c.txt"
    _, run = _run_file(tmp_path, rules, pcap_file(frames), "-i", "eth0", "--json",
                          "--counters", counters)
    assert run.returncode == 0, run.stderr
    objs = records_of(run)
    assert [o["problem"] and o["problem"]["kind"] for o in objs[:4]] == [
        "arp", "ipv6", "other-ethertype", None]
    assert objs[1]["problem"]["message"] == "IPv6 is not evaluated yet"
    assert "0x88cc" in objs[2]["problem"]["message"]
    s = objs[-1]["summary"]
    assert s["records"] == 4 and s["sent"] == 1
    assert {k: v["count"] for k, v in s["problems"].items()} == {
        "arp": 1, "ipv6": 1, "other-ethertype": 1}
    got = _counter_lines(counters.read_text())
    assert got["nat :PREROUTING"] == (0, 0)        # only the SYN went through: it DNATs
    assert got["nat :POSTROUTING"] == (1, 40)


def test_ip_fragments_are_sent_and_counted(tmp_path, rules):
    whole = IP(src=CLIENT, dst=OTHER, id=77) / UDP(sport=5000, dport=53) / Raw(b"x" * 40)
    first = bytes(whole)[:20 + 24]
    first_hdr = IP(first)
    first_hdr.flags = "MF"
    first_hdr.len = 44
    del first_hdr.chksum
    second = IP(src=CLIENT, dst=OTHER, id=77, frag=3, proto=17) / Raw(bytes(whole)[44:])
    _, run = _run_file(tmp_path, rules, pcap_file([eth(bytes(first_hdr)),
                                                      eth(bytes(second))]),
                          "-i", "eth0", "--json")
    assert run.returncode == 0, run.stderr
    objs = records_of(run)
    assert [o["problem"] for o in objs[:2]] == [None, None]
    assert [o["warnings"] for o in objs[:2]] == [["fragment"], ["fragment"]]
    assert objs[1]["packet"].endswith("frag 24")
    assert objs[-1]["summary"]["warnings"]["fragment"]["count"] == 2


# ---- what ip_rcv_core drops ----------------------------------------------------------------

def _corrupt(ip: bytes, offset: int, value: bytes) -> bytes:
    return ip[:offset] + value + ip[offset + len(value):]


def test_bad_ip_header_checksum_is_dropped_before_prerouting(tmp_path, rules):
    good = syn()
    bad = _corrupt(good, 10, bytes([good[10] ^ 0xFF, good[11]]))
    counters = tmp_path / "c.txt"
    _, run = _run_file(tmp_path, rules, pcap_file([eth(bad)]), "-i", "eth0", "--json",
                          "--counters", counters)
    assert run.returncode == 0, run.stderr
    obj = records_of(run)[0]
    assert obj["problem"]["kind"] == "bad-ip-checksum" and obj["verdict"] is None
    assert all(v == (0, 0) for v in _counter_lines(counters.read_text()).values())


@pytest.mark.parametrize("mutate,kind", [
    (lambda ip: bytes([0x65]) + ip[1:], "bad-ip-header"),           # version 6, ethertype IPv4
    (lambda ip: bytes([0x44]) + ip[1:], "bad-ip-header"),           # IHL 4 (16 bytes)
    (lambda ip: _corrupt(ip, 2, struct.pack("!H", 60)), "ip-truncated"),   # 60 > 40 bytes
    (lambda ip: _corrupt(ip, 2, struct.pack("!H", 12)), "bad-ip-header"),  # below the IHL
])
def test_headers_ip_rcv_core_refuses(tmp_path, rules, mutate, kind):
    ip = mutate(syn())
    if ip[0] >> 4 == 4 and (ip[0] & 15) >= 5:                  # keep the header checksum right
        ip = _corrupt(ip, 10, b"\0\0")
        ip = _corrupt(ip, 10, struct.pack("!H", (~_ones(ip[:20])) & 0xFFFF))
    _, run = _run_file(tmp_path, rules, pcap_file([eth(ip)]), "-i", "eth0", "--json")
    assert run.returncode == 0, run.stderr
    assert records_of(run)[0]["problem"]["kind"] == kind


def _ones(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_snaplen_cut_frame_is_sent_with_its_length(tmp_path, rules):
    """A record cut by the snapshot length (caplen < orig_len) was whole on the wire."""
    full = eth(bytes(IP(src=CLIENT, dst=VIP) / TCP(sport=40000, dport=80, flags="S")
                     / Raw(b"y" * 100)))
    counters = tmp_path / "c.txt"
    _, run = _run_file(tmp_path, rules, pcap_file([full[:14 + 40]], orig_lens=[len(full)]),
                          "-i", "eth0", "--json", "--counters", counters)
    assert run.returncode == 0, run.stderr
    obj = records_of(run)[0]
    assert obj["problem"] is None and obj["warnings"] == ["cut-short"]
    assert obj["rewritten"] == {"dst": [f"{VIP}:80", f"{POD}:8080"]}
    got = _counter_lines(counters.read_text())
    assert got["nat :POSTROUTING"] == (1, 140)                 # the wire length counts


def test_otherhost_frames_are_dropped(tmp_path, rules):
    frame = bytes(CookedLinux(pkttype=3, lladdrtype=1, lladdrlen=6, src=b"\x02" + bytes(7),
                              proto=0x0800) / IP(syn()))
    _, run = _run_file(tmp_path, rules, pcap_file([frame], linktype=113), "-i", "eth0",
                          "--json")
    assert run.returncode == 0, run.stderr
    assert records_of(run)[0]["problem"]["kind"] == "otherhost"


# ---- transport checksums -------------------------------------------------------------------

def _tcp_csum_offset(ip: bytes) -> int:
    return (ip[0] & 15) * 4 + 16


def test_bad_tcp_checksum_is_invalid_and_not_nated(tmp_path, rules):
    good = syn()
    o = _tcp_csum_offset(good)
    bad = _corrupt(good, o, bytes([good[o] ^ 0x5A, good[o + 1]]))
    counters = tmp_path / "c.txt"
    _, run = _run_file(tmp_path, rules, pcap_file([eth(bad)]), "-i", "eth0", "--json",
                          "--counters", counters)
    assert run.returncode == 0, run.stderr
    obj = records_of(run)[0]
    assert obj["csum_bad"] is True and "csum-bad" in obj["warnings"]
    assert obj["ctinfo"] == "INVALID" and obj["rewritten"] == {}
    assert obj["verdict"] == "DROP"            # not DNATed: no FORWARD rule takes it
    got = _counter_lines(counters.read_text())
    assert got["nat :PREROUTING"] == (0, 0) and got["nat :POSTROUTING"] == (0, 0)
    assert got["filter :FORWARD"] == (1, 40)


def test_forwarded_bad_checksum_leaves_unchanged(tmp_path):
    rules = tmp_path / "open.rules"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                     ":OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    good = syn(dst=OTHER, dport=22)
    o = _tcp_csum_offset(good)
    bad = _corrupt(good, o, bytes([good[o] ^ 0x5A, good[o + 1]]))
    out = tmp_path / "o.pcap"
    _, run = _run_file(tmp_path, rules, pcap_file([eth(bad)]), "-i", "eth0", "--write", out)
    assert run.returncode == 0, run.stderr
    (p,) = rdpcap(str(out))
    assert bytes(p[IP])[o:o + 2] == bad[o:o + 2]
    assert p[IP].ttl == 63


def test_offload_partial_checksum_is_not_verified(tmp_path, rules):
    """A pod's packet through a veth carries the pseudo-header sum only (CHECKSUM_PARTIAL);
    the kernel does not verify it, so the connection is tracked and DNATed."""
    good = syn()
    src, dst = good[12:16], good[16:20]
    pseudo = _ones(src + dst + struct.pack("!HH", 6, len(good) - 20))
    partial = _corrupt(good, _tcp_csum_offset(good), struct.pack("!H", pseudo))
    out = tmp_path / "o.pcap"
    _, run = _run_file(tmp_path, rules, pcap_file([eth(partial)]), "-i", "eth0", "--json",
                          "--write", out)
    assert run.returncode == 0, run.stderr
    obj = records_of(run)[0]
    assert obj["csum_bad"] is False and obj["warnings"] == ["csum-partial"]
    assert obj["ctinfo"] == "NEW" and obj["where"] == "forward"
    (p,) = rdpcap(str(out))
    fresh = IP(bytes(p[IP]))
    del fresh[TCP].chksum
    assert p[TCP].chksum == IP(bytes(fresh))[TCP].chksum        # written complete


def test_udp_checksum_zero_means_none(tmp_path, rules):
    dgram = bytearray(bytes(IP(src=CLIENT, dst=OTHER) / UDP(sport=5000, dport=53) / Raw(b"q")))
    dgram[26:28] = b"\0\0"
    _, run = _run_file(tmp_path, rules, pcap_file([eth(bytes(dgram))]), "-i", "eth0",
                          "--json")
    obj = records_of(run)[0]
    assert obj["csum_bad"] is False and obj["ctinfo"] == "NEW"


def test_bad_icmp_checksum_is_flagged(tmp_path, rules):
    from scapy.all import ICMP
    ping = bytearray(bytes(IP(src=CLIENT, dst="192.168.0.2") / ICMP(id=9, seq=1)))
    ping[22] ^= 0xFF
    _, run = _run_file(tmp_path, rules, pcap_file([eth(bytes(ping))]), "-i", "eth0",
                          "--json")
    obj = records_of(run)[0]
    assert obj["csum_bad"] is True and obj["ctinfo"] == "INVALID"


# ---- the node's own output and interfaces ---------------------------------------------------

def test_pcapng_outbound_direction_is_skipped(tmp_path, rules):
    path = tmp_path / "dir.pcapng"
    wrpcapng(str(path), [_stamp(Ether() / IP(syn()), T0, "eth0", direction=1),
                         _stamp(Ether() / IP(syn(sport=40001)), T0 + 1, "eth0", direction=2)])
    run = nfemu_cli("replay", rules, path, *HOST, "--json")
    assert run.returncode == 0, run.stderr
    objs = records_of(run)
    assert objs[0]["verdict"] == "ACCEPT" and objs[1]["problem"]["kind"] == "outgoing"


def test_pcapng_interface_unknown_to_the_host(tmp_path, rules):
    path = tmp_path / "if.pcapng"
    wrpcapng(str(path), [_stamp(Ether() / IP(syn()), T0, "ens9")])
    run = nfemu_cli("replay", rules, path, *HOST, "--json")
    assert run.returncode == 0, run.stderr
    obj = records_of(run)[0]
    assert obj["problem"]["kind"] == "unknown-interface" and "ens9" in obj["problem"]["message"]


# ---- usage and rules errors ----------------------------------------------------------------

def test_usage_errors_exit_2(tmp_path, rules):
    path = tmp_path / "in.pcap"
    path.write_bytes(pcap_file([eth(syn())]))
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--no-such-option")
    assert run.returncode == 2 and "usage:" in run.stderr and "--no-such-option" in run.stderr
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--local")
    assert run.returncode == 2 and "not allowed with" in run.stderr
    run = nfemu_cli("replay", rules, tmp_path / "missing.pcap", *HOST, "-i", "eth0")
    assert run.returncode == 2 and "missing.pcap: no such file" in run.stderr
    run = nfemu_cli("replay", tmp_path / "missing.rules", path, *HOST, "-i", "eth0")
    assert run.returncode == 2 and "missing.rules: no such file" in run.stderr
    run = nfemu_cli("replay", rules, path, "--iface", "eth0=300.1.1.1/24", "-i", "eth0")
    assert run.returncode == 2 and "nfemu replay: error:" in run.stderr
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0",
                    "--write", tmp_path / "no" / "dir" / "o.pcap")
    assert run.returncode == 2 and "cannot write" in run.stderr
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--seed", "x")
    assert run.returncode == 2 and "--seed" in run.stderr
    assert "Traceback" not in run.stderr


def test_rules_rejected_exit_1_with_locations(tmp_path):
    rules = tmp_path / "bad.rules"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 99999 -j ACCEPT\n"
                     "COMMIT\n")
    path = tmp_path / "in.pcap"
    path.write_bytes(pcap_file([eth(syn())]))
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0")
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith(f"{rules}:3:") and ": error: " in run.stderr


def test_rule_nfemu_cannot_evaluate_is_reported_per_packet(tmp_path):
    rules = tmp_path / "set.rules"
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                     "-A FORWARD -p udp -m set --match-set allowed src -j ACCEPT\nCOMMIT\n")
    path = tmp_path / "in.pcap"
    path.write_bytes(pcap_file([eth(syn(dst=OTHER)),
                                eth(bytes(IP(src=CLIENT, dst=OTHER) / UDP(dport=53)))]))
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--json")
    assert "Traceback" not in run.stderr
    assert run.returncode == 1 and "record 2: cannot be evaluated" in run.stderr
    objs = records_of(run)
    assert objs[0]["verdict"] == "ACCEPT"
    assert objs[1]["problem"]["kind"] == "not-evaluable" and "set" in \
        objs[1]["problem"]["message"]
