"""`nfemu replay` and `Node.replay` on small captures built with scapy.

The node: eth0 192.168.0.2/24 (clients), cni0 10.244.1.1/24 (the pod 10.244.1.5), a
ClusterIP-like DNAT of 10.96.0.10:80 to the pod, FORWARD with a DROP policy. The flow: a
client's handshake and one data segment through the DNAT, and a packet the FORWARD policy
drops. Expected values come from the kernel's rules, not from nfemu's output:

- nat chains see only a connection's first packet (later ones follow the binding); the
  reply is un-DNATed (source 10.244.1.5:8080 back to 10.96.0.10:80) at POSTROUTING;
- rule counters add the IP total length of each packet that matched; a forwarded packet
  leaves with its TTL lowered by one;
- ctinfo is enum ip_conntrack_info: NEW, ESTABLISHED, ESTABLISHED_REPLY for replies;
- a packet dropped before confirmation leaves no conntrack entry; an established TCP
  connection with unacknowledged data times out after 300 s (TCP_CONNTRACK_UNACK), and
  conntrack -L prints the remaining whole seconds (conntrack-tools' default format).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.all import (
    IP,
    TCP,
    UDP,
    CookedLinux,
    Ether,
    Raw,
    rdpcap,
    wrpcap,
    wrpcapng,
)

import nfemu
from nfemu.host import Host
from nfemu.node import Node
from nfemu.packet import Packet

ROOT = Path(__file__).resolve().parents[1]

RULES = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d 10.244.1.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""
HOST = ["--iface", "eth0=192.168.0.2/24", "--iface", "cni0=10.244.1.1/24",
        "--default-gateway", "192.168.0.1"]
CLIENT, VIP, POD, OTHER = "192.168.0.50", "10.96.0.10", "10.244.1.5", "192.168.0.99"
T0 = 1_700_000_000
PAYLOAD = b"GET / HTTP/1.0\r\n\r\n"
MAC_NODE, MAC_CLIENT = "02:00:00:00:00:02", "02:00:00:00:00:50"


def nfemu_cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "nfemu", *map(str, args)],
                          check=False, capture_output=True, text=True, env=env, cwd=ROOT, input=stdin)


def host() -> Host:
    return Host.from_options(["eth0=192.168.0.2/24", "cni0=10.244.1.1/24"],
                             default_gateway="192.168.0.1")


def node(seed: int = 1) -> Node:
    return Node(nfemu.loads(RULES), host(), seed=seed)


def _stamp(pkt, t, iface=None, direction=None):
    pkt.time = t
    if iface is not None:
        pkt.sniffed_on = iface
    if direction is not None:
        pkt.direction = direction
    return pkt


def flow():
    """(scapy frame, interface) of the flow, in capture order (times T0 + k/4 s)."""
    e_in = Ether(src=MAC_CLIENT, dst=MAC_NODE)
    e_pod = Ether(src="02:00:00:00:01:05", dst="02:00:00:00:01:01")
    return [
        (e_in / IP(src=CLIENT, dst=VIP, id=1) / TCP(sport=40000, dport=80, flags="S",
                                                     seq=1000), "eth0"),
        (e_pod / IP(src=POD, dst=CLIENT, id=2) / TCP(sport=8080, dport=40000, flags="SA",
                                                      seq=5000, ack=1001), "cni0"),
        (e_in / IP(src=CLIENT, dst=VIP, id=3) / TCP(sport=40000, dport=80, flags="A",
                                                     seq=1001, ack=5001), "eth0"),
        (e_in / IP(src=CLIENT, dst=VIP, id=4) / TCP(sport=40000, dport=80, flags="PA",
                                                     seq=1001, ack=5001) / Raw(PAYLOAD),
         "eth0"),
        (e_in / IP(src=CLIENT, dst=OTHER, id=5) / TCP(sport=40001, dport=22, flags="S",
                                                       seq=7), "eth0"),
    ]


def flow_pcapng(path: Path) -> list:
    """The flow as pcapng with the interface names recorded (scapy writes one IDB per
    name)."""
    pkts = [_stamp(p, T0 + k / 4, iface) for k, (p, iface) in enumerate(flow())]
    wrpcapng(str(path), pkts)
    return pkts


def ip_len(frame) -> int:
    return len(bytes(frame[IP]))


@pytest.fixture
def rules(tmp_path) -> Path:
    p = tmp_path / "node.rules"
    p.write_text(RULES)
    return p


@pytest.fixture
def capture(tmp_path) -> tuple[Path, list]:
    p = tmp_path / "flow.pcapng"
    return p, flow_pcapng(p)


def _counter_lines(text: str) -> dict[str, tuple[int, int]]:
    """iptables-save -c text: rule line or chain line -> (packets, bytes)."""
    out = {}
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        m = re.match(r"^\[(\d+):(\d+)\] (-A .*)$", line)
        if m:
            out[f"{table} {m.group(3)}"] = (int(m.group(1)), int(m.group(2)))
        m = re.match(r"^:(\S+) (\S+) \[(\d+):(\d+)\]$", line)
        if m:
            out[f"{table} :{m.group(1)}"] = (int(m.group(3)), int(m.group(4)))
    return out


# ---- the CLI on the flow ----------------------------------------------------------------------

def test_replay_lines_counters_conntrack_and_written_capture(tmp_path, rules, capture):
    """Needs the stateful Node.send (conntrack): the reply, the ACK and the data segment."""
    path, pkts = capture
    out_pcap, counters, ct = tmp_path / "out.pcap", tmp_path / "c.txt", tmp_path / "ct.txt"
    run = nfemu_cli("replay", rules, path, *HOST, "--seed", "3", "--write", out_pcap,
                    "--counters", counters, "--conntrack", ct)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    # one line per record, numbered, on the interface the capture recorded
    assert [ln.split(" ")[:3] for ln in lines[:5]] == [
        ["1", f"{T0}.000000", "eth0"], ["2", f"{T0}.250000", "cni0"],
        ["3", f"{T0}.500000", "eth0"], ["4", f"{T0}.750000", "eth0"],
        ["5", f"{T0 + 1}.000000", "eth0"]]
    assert f"tcp {CLIENT}:40000 -> {VIP}:80 [S]: NEW ACCEPT forwarded out cni0" in lines[0]
    assert lines[0].endswith(f"; dst {VIP}:80 -> {POD}:8080")
    assert ": ESTABLISHED_REPLY ACCEPT forwarded out eth0" in lines[1]
    assert lines[1].endswith(f"; src {POD}:8080 -> {VIP}:80")
    for ln in lines[2:4]:
        assert ": ESTABLISHED ACCEPT forwarded out cni0" in ln
        assert ln.endswith(f"; dst {VIP}:80 -> {POD}:8080")
    assert f"{CLIENT}:40001 -> {OTHER}:22 [S]: NEW DROP" in lines[4]

    # counters: nat chains count first packets only; bytes are IP total lengths
    got = _counter_lines(counters.read_text())
    n = [ip_len(p) for p in pkts]
    assert got["nat -A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT "
               "--to-destination 10.244.1.5:8080"] == (1, n[0])
    assert got["nat :PREROUTING"] == (1, n[4])
    assert got["nat :POSTROUTING"] == (1, n[0])
    assert got["nat :INPUT"] == got["nat :OUTPUT"] == (0, 0)
    assert got["filter -A FORWARD -d 10.244.1.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT"] == (
        3, n[0] + n[2] + n[3])
    assert got["filter -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"] == (
        1, n[1])
    assert got["filter :FORWARD"] == (1, n[4])
    assert got["filter :INPUT"] == got["filter :OUTPUT"] == (0, 0)

    # conntrack -L: the DNATed connection only (the dropped SYN was never confirmed);
    # unacknowledged data: 300 s from the data segment (T0+0.75), listed at T0+1.0
    assert ct.read_text().splitlines() == [
        (f"tcp      6 299 ESTABLISHED src={CLIENT} dst={VIP} sport=40000 dport=80 "
         f"src={POD} dst={CLIENT} sport=8080 dport=40000 [ASSURED] mark=0 use=1")]

    # the packets that left the node, as they left it
    written = rdpcap(str(out_pcap))
    assert [(p[IP].src, p[IP].dst, p[TCP].sport, p[TCP].dport, p[IP].ttl) for p in written] == [
        (CLIENT, POD, 40000, 8080, 63), (VIP, CLIENT, 80, 40000, 63),
        (CLIENT, POD, 40000, 8080, 63), (CLIENT, POD, 40000, 8080, 63)]
    assert [float(p.time) for p in written] == [T0, T0 + 0.25, T0 + 0.5, T0 + 0.75]
    assert bytes(written[3][TCP].payload) == PAYLOAD
    for p in written:
        ip = p[IP]
        fresh = IP(bytes(ip))
        del fresh.chksum
        del fresh[TCP].chksum
        fresh = IP(bytes(fresh))               # scapy recomputes both checksums
        assert (ip.chksum, ip[TCP].chksum) == (fresh.chksum, fresh[TCP].chksum)

    # the summary
    tail = run.stdout[run.stdout.index("# summary"):]
    assert "records 5, sent through the rules 5, leaving the node 4 (written 4)" in tail
    assert "verdicts: ACCEPT 4, DROP 1" in tail
    assert f"NAT destinations (new connections): {POD}:8080 1" in tail
    assert "seed 3" in tail


def test_json_lines_and_summary(rules, capture):
    path, _ = capture
    run = nfemu_cli("replay", rules, path, *HOST, "--json")
    assert run.returncode == 0, run.stderr
    objs = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(objs) == 6 and set(objs[-1]) == {"summary"}
    first = objs[0]
    assert first["index"] == 1 and first["ts_ns"] == T0 * 10**9 and first["iface"] == "eth0"
    assert first["local"] is False and first["problem"] is None
    assert first["verdict"] == "ACCEPT" and first["where"] == "forward"
    assert first["out_iface"] == "cni0"
    assert first["rewritten"] == {"dst": [f"{VIP}:80", f"{POD}:8080"]}
    assert first["final"] == f"tcp {CLIENT}:40000 -> {POD}:8080 [S]"
    assert [(e["kind"], e["to"], e["chain"], e["rule"]) for e in first["nat"]] == [
        ("DNAT", f"{POD}:8080", "PREROUTING", 1)]
    assert objs[1]["rewritten"] == {"src": [f"{POD}:8080", f"{VIP}:80"]}
    assert [o["ctinfo"] for o in objs[:5]] == ["NEW", "ESTABLISHED_REPLY", "ESTABLISHED",
                                               "ESTABLISHED", "NEW"]
    # later packets of the connection follow the binding: no nat chain, no DNAT event
    assert objs[2]["nat"] == [] and objs[2]["rewritten"] == first["rewritten"]
    assert objs[4]["verdict"] == "DROP" and objs[4]["chain"] == "filter FORWARD"
    s = objs[-1]["summary"]
    assert s["records"] == 5 and s["sent"] == 5 and s["leaving"] == 4
    assert s["verdicts"] == {"ACCEPT": 4, "DROP": 1}
    assert s["nat_destinations"] == {f"{POD}:8080": 1}
    assert s["ctinfo"] == {"NEW": 2, "ESTABLISHED": 2, "ESTABLISHED_REPLY": 1}
    assert s["where"]["forward"] == 4 and s["problems"] == {}
    assert isinstance(s["seed"], int)


def test_quiet_prints_the_summary_only(rules, capture):
    path, _ = capture
    run = nfemu_cli("replay", rules, path, *HOST, "--quiet")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("# summary\nrecords 5,")


def test_recorded_interface_wins_over_dash_i(rules, capture):
    path, _ = capture
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--json")
    objs = [json.loads(line) for line in run.stdout.splitlines()[:-1]]
    assert [o["iface"] for o in objs] == ["eth0", "cni0", "eth0", "eth0", "eth0"]


def test_classic_pcap_needs_an_interface_and_takes_dash_i(tmp_path, rules):
    path = tmp_path / "in.pcap"
    pkts = [_stamp(p, T0 + k) for k, (p, iface) in enumerate(flow()) if k in (0, 4)]
    wrpcap(str(path), pkts)
    run = nfemu_cli("replay", rules, path, *HOST)
    assert run.returncode == 2 and "-i IFACE" in run.stderr and run.stdout == ""
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--json")
    assert run.returncode == 0, run.stderr
    objs = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(o["iface"], o["verdict"]) for o in objs[:2]] == [("eth0", "ACCEPT"),
                                                               ("eth0", "DROP")]
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "nosuch0")
    assert run.returncode == 2 and "nosuch0" in run.stderr


def test_linux_cooked_capture_skips_the_nodes_own_output(tmp_path, rules):
    """tcpdump -i any records the node's output too (packet type 4, PACKET_OUTGOING):
    those are not inputs."""
    syn = IP(src=CLIENT, dst=VIP) / TCP(sport=40000, dport=80, flags="S")
    out = IP(src=CLIENT, dst=POD, ttl=63) / TCP(sport=40000, dport=80, flags="S")
    frames = [_stamp(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6,
                                 src=b"\x02\0\0\0\0\x50\0\0", proto=0x0800) / syn, T0),
              _stamp(CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6,
                                 src=b"\x02\0\0\0\x01\x01\0\0", proto=0x0800) / out, T0 + 1)]
    path = tmp_path / "any.pcap"
    wrpcap(str(path), frames)
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--json")
    assert run.returncode == 0, run.stderr
    objs = [json.loads(line) for line in run.stdout.splitlines()]
    assert objs[0]["verdict"] == "ACCEPT" and objs[0]["iface"] == "eth0"
    assert objs[1]["problem"]["kind"] == "outgoing" and objs[1]["verdict"] is None
    assert "--local" in objs[1]["problem"]["message"]
    s = objs[-1]["summary"]
    assert s["sent"] == 1 and s["problems"]["outgoing"]["count"] == 1
    assert s["problems"]["outgoing"]["first"] == 2
    # plain text: the summary says so, with the hint
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--quiet")
    assert re.search(r"outgoing: 1 \(first: record 2\) .*--local", run.stdout)


def test_local_packets_start_at_output(tmp_path, rules):
    """--local: the node's own packets (OUTPUT, POSTROUTING; the nat PREROUTING DNAT does
    not apply to them)."""
    path = tmp_path / "local.pcap"
    wrpcap(str(path), [_stamp(IP(src="192.168.0.2", dst=VIP) / TCP(sport=33000, dport=80,
                                                                  flags="S"), T0)])
    counters = tmp_path / "c.txt"
    run = nfemu_cli("replay", rules, path, *HOST, "--local", "--json", "--counters", counters)
    assert run.returncode == 0, run.stderr
    obj = json.loads(run.stdout.splitlines()[0])
    assert obj["local"] is True and obj["iface"] is None and obj["rewritten"] == {}
    assert obj["where"] == "out" and obj["out_iface"] == "eth0"   # default route
    got = _counter_lines(counters.read_text())
    assert got["nat :OUTPUT"] == (1, 40) and got["filter :OUTPUT"] == (1, 40)
    assert got["nat :PREROUTING"] == (0, 0)


def test_time_going_back_is_replayed_at_the_latest_time(tmp_path, rules):
    path = tmp_path / "order.pcapng"
    pkts = [_stamp(p, t, iface) for (p, iface), t in zip(flow(), (T0 + 5, T0 + 1, T0 + 6,
                                                                  T0 + 7, T0 + 8))]
    wrpcapng(str(path), pkts)
    run = nfemu_cli("replay", rules, path, *HOST, "--json")
    objs = [json.loads(line) for line in run.stdout.splitlines()]
    assert objs[1]["ts_ns"] == (T0 + 1) * 10**9 and objs[1]["time"] == T0 + 5
    assert objs[1]["warnings"] == ["time-went-back"]
    assert objs[-1]["summary"]["warnings"]["time-went-back"]["count"] == 1


def test_stdin_capture(rules, capture):
    path, _ = capture
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(path, "rb") as f:
        run = subprocess.run([sys.executable, "-m", "nfemu", "replay", str(rules), "-", *HOST,
                              "--quiet"], stdin=f, check=False, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "records 5, sent through the rules 5" in run.stdout


# ---- the API ----------------------------------------------------------------------------------

def test_node_replay_from_a_path(capture):
    path, pkts = capture
    n = node()
    results = list(n.replay(path))
    assert [r.index for r in results] == [1, 2, 3, 4, 5]
    assert [r.iface for r in results] == ["eth0", "cni0", "eth0", "eth0", "eth0"]
    assert [r.ts_ns for r in results] == [(T0 * 4 + k) * 10**9 // 4 for k in range(5)]
    assert all(r.problem is None and r.journey is not None for r in results)
    assert [r.leaves for r in results] == [True, True, True, True, False]
    # the input as captured, the journey's packet as it left
    assert results[0].packet.dst == nfemu.host.ip4(VIP)
    assert results[0].journey.packet.dst == nfemu.host.ip4(POD)
    assert results[1].journey.packet.src == nfemu.host.ip4(VIP)
    assert [r.journey.ctinfo for r in results] == ["NEW", "ESTABLISHED_REPLY", "ESTABLISHED",
                                                   "ESTABLISHED", "NEW"]
    n_bytes = [ip_len(p) for p in pkts]
    key = ("filter", "FORWARD", 0)
    assert n.counters()[key] == (3, n_bytes[0] + n_bytes[2] + n_bytes[3])
    assert len(n.conntrack.entries()) == 1


def test_node_replay_from_packets_and_pairs():
    """An iterable: (seconds, scapy packet) pairs, scapy packets (their own time and
    interface), nfemu Packets (their iif)."""
    frames = [p for p, _ in flow()]
    n = node()
    items = [(T0, frames[0]),
             _stamp(frames[1].copy(), T0 + 1, "cni0"),
             Packet.from_scapy(frames[2], iif="eth0")]
    results = list(n.replay(items, iface="eth0"))
    assert [r.iface for r in results] == ["eth0", "cni0", "eth0"]
    assert results[0].ts_ns == T0 * 10**9 and results[1].ts_ns == (T0 + 1) * 10**9
    # an nfemu Packet has no time: replayed at the latest time seen
    assert results[2].ts_ns is None and results[2].now == T0 + 1
    assert results[2].warnings == ("no-timestamp",)
    assert [r.journey.ctinfo for r in results] == ["NEW", "ESTABLISHED_REPLY", "ESTABLISHED"]
    assert results[2].journey.packet.dport == 8080


def test_node_replay_without_interface_raises():
    from nfemu.replay import ReplayError
    n = node()
    with pytest.raises(ReplayError, match="-i IFACE"):
        list(n.replay([IP(src=CLIENT, dst=VIP) / TCP(dport=80)]))


def test_udp_and_unknown_recorded_interface(tmp_path):
    """A UDP packet on an interface the host does not have is reported, not sent."""
    n = node()
    pkt = _stamp(Ether() / IP(src=CLIENT, dst=VIP) / UDP(sport=5353, dport=53), T0, "wlan9")
    (r,) = list(n.replay([pkt]))
    assert r.problem == "unknown-interface" and r.journey is None and "wlan9" in r.message
    assert n.counters() == {}


def sll2(ip: bytes, ifindex: int, pkttype: int = 0) -> bytes:
    """A Linux cooked v2 frame (LINKTYPE_LINUX_SLL2): protocol, reserved, interface index,
    ARPHRD type, packet type, address length, 8 address bytes."""
    import struct
    return struct.pack("!HHiHBB8s", 0x0800, 0, ifindex, 1, pkttype, 6,
                       bytes.fromhex("020000000050") + b"\0\0") + ip


def sll2_pcap(frames) -> bytes:
    import struct
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 276)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", T0 + i, 0, len(f), len(f)) + f)
    return b"".join(out)


def test_sll2_interface_index_named_by_the_host(tmp_path, rules):
    """Host.from_options numbers lo 1, then the interfaces in order: eth0 2, cni0 3."""
    frames = [p for p, _ in flow()]
    data = sll2_pcap([sll2(bytes(frames[0][IP]), 2), sll2(bytes(frames[1][IP]), 3),
                      sll2(bytes(frames[2][IP]), 2, pkttype=4)])
    path = tmp_path / "any2.pcap"
    path.write_bytes(data)
    results = list(node().replay(path))
    assert [r.iface for r in results[:2]] == ["eth0", "cni0"]
    assert [r.journey.ctinfo for r in results[:2]] == ["NEW", "ESTABLISHED_REPLY"]
    assert results[2].problem == "outgoing"
    # the CLI trusts recorded indexes only with the node's own `ip -j addr show`
    run = nfemu_cli("replay", rules, path, *HOST)
    assert run.returncode == 2 and "interface index 2" in run.stderr
    assert "--addrs" in run.stderr and "Traceback" not in run.stderr
    run = nfemu_cli("replay", rules, path, *HOST, "-i", "eth0", "--json")
    assert run.returncode == 0, run.stderr
    assert [json.loads(ln)["iface"] for ln in run.stdout.splitlines()[:2]] == ["eth0", "eth0"]


def _ip_json_host(tmp_path) -> list[str]:
    """--addrs/--routes files as `ip -j` prints them, with real-looking indexes (eth0 is 7,
    cni0 is 12)."""
    def link(idx, name, addr, plen, flags):
        return {"ifindex": idx, "ifname": name, "flags": flags, "operstate": "UP",
                "address": f"02:00:00:00:00:{idx:02x}",
                "addr_info": [{"family": "inet", "local": addr, "prefixlen": plen,
                               "scope": "host" if name == "lo" else "global", "label": name}]}
    addrs = [link(1, "lo", "127.0.0.1", 8, ["LOOPBACK", "UP", "LOWER_UP"]),
             link(7, "eth0", "192.168.0.2", 24, ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]),
             link(12, "cni0", "10.244.1.1", 24, ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"])]
    routes = [{"dst": "default", "gateway": "192.168.0.1", "dev": "eth0", "flags": []},
              {"dst": "192.168.0.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link",
               "prefsrc": "192.168.0.2", "flags": []},
              {"dst": "10.244.1.0/24", "dev": "cni0", "protocol": "kernel", "scope": "link",
               "prefsrc": "10.244.1.1", "flags": []}]
    (tmp_path / "addrs.json").write_text(json.dumps(addrs))
    (tmp_path / "routes.json").write_text(json.dumps(routes))
    return ["--addrs", tmp_path / "addrs.json", "--routes", tmp_path / "routes.json"]


def test_sll2_interface_index_with_the_nodes_ip_json(tmp_path, rules):
    frames = [p for p, _ in flow()]
    path = tmp_path / "any2.pcap"
    path.write_bytes(sll2_pcap([sll2(bytes(frames[0][IP]), 7), sll2(bytes(frames[1][IP]), 12),
                                sll2(bytes(frames[2][IP]), 99)]))
    run = nfemu_cli("replay", rules, path, *_ip_json_host(tmp_path), "--json")
    assert "Traceback" not in run.stderr
    objs = [json.loads(ln) for ln in run.stdout.splitlines()]
    assert [o["iface"] for o in objs[:2]] == ["eth0", "cni0"]
    assert [o["ctinfo"] for o in objs[:2]] == ["NEW", "ESTABLISHED_REPLY"]
    # an index the node does not have, and no -i: a usage error at that record
    assert run.returncode == 2 and "record 3" in run.stderr and "index 99" in run.stderr


def test_ethernet_source_mac_and_broadcast_reach_the_matches(tmp_path):
    # -m mac reads the frame's source (eth_hdr(skb)->h_source); -m pkttype the type
    # eth_type_trans() gave it from the destination
    text = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m mac --mac-source 02:00:00:00:00:50
-A INPUT -m pkttype --pkt-type broadcast
COMMIT
"""
    frames = [Ether(src=MAC_CLIENT, dst=MAC_NODE) / IP(src=CLIENT, dst="192.168.0.2") / UDP(),
              Ether(src="02:00:00:00:00:77", dst="ff:ff:ff:ff:ff:ff")
              / IP(src=OTHER, dst="192.168.0.255") / UDP()]
    for i, f in enumerate(frames):
        f.time = T0 + i
    path = tmp_path / "eth.pcap"
    wrpcap(str(path), frames)
    n = Node(nfemu.loads(text), Host.from_options(["eth0=192.168.0.2/24"]), seed=1)
    results = list(n.replay(path, iface="eth0"))
    assert [r.journey.where for r in results] == ["local", "local"]
    c = n.counters()
    assert c[("filter", "INPUT", 0)][0] == 1
    assert c[("filter", "INPUT", 1)][0] == 1
