#!/usr/bin/env python3
"""Make examples/kube-nodeport.pcap: what a node's eth0 received while four clients talked
to the NodePort 30080 of examples/kube-nodeport.rules, plus one stray segment.

Each client (192.168.0.50, source ports 40000-40003) opens a TCP connection to the node
(192.168.0.2:30080), sends a request, gets an answer and closes. kube-proxy's rules DNAT the
connection to one of two pods (10.244.1.10 or 10.244.1.11, port 8080, picked at random) and
masquerade it, so the pod's answers come back to the node's address, on eth0 too. Which pod
answers depends on the random pick: the generator asks nfemu, with the seed the README's
replay command uses (``--seed 1``), so the capture and that command agree. Regenerate with
``python3 examples/make_capture.py`` after a change to how nfemu draws random numbers.
"""
from __future__ import annotations

from pathlib import Path

import nfemu
from nfemu.host import Host
from nfemu.node import Node
from nfemu.packet import TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, Packet
from nfemu.pcapio import ETHERNET, CaptureWriter
from nfemu.util import ipv4_to_int

HERE = Path(__file__).resolve().parent
NODE, CLIENT, GATEWAY = "192.168.0.2", "192.168.0.50", "192.168.0.1"
SEED = 1
T0_NS = 1_764_000_000_000_000_000


def main() -> None:
    ruleset = nfemu.load(str(HERE / "kube-nodeport.rules"))
    host = Host.from_options([f"eth0={NODE}/24"], default_gateway=GATEWAY)
    node = Node(ruleset, host, seed=SEED)      # plays the node to learn each pod's view
    records: list[tuple[int, Packet]] = []
    t_ns = T0_NS

    def arrive(pkt: Packet) -> Packet:
        nonlocal t_ns
        t_ns += 1_000_000                                 # one packet per millisecond
        records.append((t_ns, pkt))
        return node.send(pkt, iface="eth0", now=t_ns / 1e9).packet

    node_ip, client = ipv4_to_int(NODE), ipv4_to_int(CLIENT)
    request, answer = b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nhello\n"
    for i in range(4):
        sport = 40000 + i

        def c2s(flags, seq, ack, data=b""):
            return arrive(Packet(src=client, dst=node_ip, proto=6, sport=sport, dport=30080,
                                 tcp_flags=flags, tcp_seq=seq, tcp_ack=ack,
                                 tcp_window=64240, ttl=64, payload=data))

        out = c2s(TCP_SYN, 1000, 0)                       # leaves towards the pod
        pod, pod_port, masq_port = out.dst, out.dport, out.sport

        def s2c(flags, seq, ack, data=b""):
            return arrive(Packet(src=pod, dst=node_ip, proto=6, sport=pod_port,
                                 dport=masq_port, tcp_flags=flags, tcp_seq=seq, tcp_ack=ack,
                                 tcp_window=65160, ttl=63, payload=data))

        s2c(TCP_SYN | TCP_ACK, 5000, 1001)
        c2s(TCP_ACK, 1001, 5001)
        c2s(TCP_PSH | TCP_ACK, 1001, 5001, request)
        s2c(TCP_PSH | TCP_ACK, 5001, 1001 + len(request), answer)
        c2s(TCP_FIN | TCP_ACK, 1001 + len(request), 5001 + len(answer))
        s2c(TCP_FIN | TCP_ACK, 5001 + len(answer), 1002 + len(request))
        c2s(TCP_ACK, 1002 + len(request), 5002 + len(answer))
    # a segment of no connection: conntrack calls it INVALID, KUBE-FORWARD drops it
    arrive(Packet(src=client, dst=ipv4_to_int("10.244.1.10"), proto=6, sport=45000,
                  dport=8080, tcp_flags=TCP_FIN | TCP_ACK, tcp_seq=1, tcp_ack=1,
                  tcp_window=100, ttl=64))
    with CaptureWriter(str(HERE / "kube-nodeport.pcap"), ETHERNET) as w:
        for ts_ns, pkt in records:
            w.write_ns(ts_ns, pkt.to_bytes())


if __name__ == "__main__":
    main()
