"""A small network in namespaces, for comparing nfemu's packet evaluation with the kernel's.

    peer (192.168.50.1, eth0) <--veth--> (eth0, 192.168.50.2) node (10.50.0.1, eth1) <--veth--> peer2

``node`` is the box under test: it holds the iptables ruleset. Packets are sent from ``peer``
(or ``peer2``) with a raw IP socket (IPPROTO_RAW, the header as given) inside that namespace;
they arrive at ``node`` on eth0 (eth1). Nothing leaves these namespaces.

Set-up of ``node``, so that the kernel does what nfemu models:

* conntrack is on: an nft table ``inet nfemuct`` with ``ct state new counter`` rules in
  prerouting and output at priority -190 (after conntrack's -200, before mangle). A plain
  counter at -300 tells when every sent packet has been through PREROUTING
  (:meth:`Net.send` waits for it, then checks that every one of them was ctstate NEW).
* what the node sends itself (TCP resets, ICMP errors, echo replies: answers to our packets)
  is dropped in an nft output chain at priority -400, before raw and conntrack: replies never
  reach an iptables chain nor the peer, and no conntrack entry sees a reply (every packet we
  send to a fresh tuple stays ctstate NEW).
* the peers drop everything they receive (nft prerouting, priority -400), so a packet the
  node forwards to peer2 gets no answer.
* IPv6 is off on every device (no router solicitations, no DAD), rp_filter 0 (as nfemu's Host
  assumes), static neighbour entries on both ends (no ARP queueing).

Always used as a context manager: the namespaces are deleted on exit, whatever happened.
"""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Self

import nfemu
from nfemu.ir import Ruleset

_counter = itertools.count()

NODE_MAC0, PEER_MAC = "02:00:00:00:50:02", "02:00:00:00:50:01"
NODE_MAC1, PEER2_MAC = "02:00:00:00:0a:01", "02:00:00:00:0a:02"

_CT_TABLE = """\
table inet nfemuct {
    chain pre { type filter hook prerouting priority -300; policy accept; meta nfproto ipv4 counter; }
    chain prect { type filter hook prerouting priority -190; policy accept; ct state new counter; }
    chain out { type filter hook output priority -190; policy accept; ct state new counter; }
    chain quiet { type filter hook output priority -400; policy accept; %s }
}
"""

# Runs inside a peer namespace: one hex-encoded IP datagram per input line, sent as is.
# Peers take in nothing (so they never answer what the node forwards to them).
_PEER_TABLE = """\
table inet nfemupeer {
    chain deaf { type filter hook prerouting priority -400; policy drop; }
}
"""

_SENDER = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in sys.stdin:
    data = bytes.fromhex(line.strip())
    if data:
        s.sendto(data, (socket.inet_ntoa(data[16:20]), 0))
"""


class NetsimError(RuntimeError):
    pass


@dataclass
class Saved:
    text: str           # iptables-save -c output
    ruleset: Ruleset    # the same, read by nfemu with counters


class Net:
    """``with Net() as net: net.load(text); net.send(pkts); net.save()``."""

    def __init__(self, forward: bool = False, drop_replies: bool = True):
        tag = f"{os.getpid()}-{next(_counter)}"
        self.node = f"nfemu-node-{tag}"
        self.peer = f"nfemu-peer-{tag}"
        self.peer2 = f"nfemu-peer2-{tag}" if forward else None
        self.drop_replies = drop_replies
        self._made: list[str] = []
        self.sent = 0

    # ---- plumbing ----------------------------------------------------------------------
    def _run(self, argv: list[str], input: str | None = None, check: bool = True,
             ns: str | None = None) -> subprocess.CompletedProcess:
        if ns is not None:
            argv = ["ip", "netns", "exec", ns, *argv]
        r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60,
                           check=False)
        if check and r.returncode != 0:
            raise NetsimError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
        return r

    def _ns(self, name: str) -> None:
        self._run(["ip", "netns", "add", name])
        self._made.append(name)
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                    ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
                    ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
                    ["sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"]):
            self._run(cmd, ns=name)

    def _link(self, peer: str, dev: str, peer_dev: str, addr: str, peer_addr: str,
              mac: str, peer_mac: str) -> None:
        self._run(["ip", "link", "add", dev, "netns", self.node, "address", mac, "type", "veth",
                   "peer", "name", peer_dev, "netns", peer, "address", peer_mac])
        for ns, d, a in ((self.node, dev, addr), (peer, peer_dev, peer_addr)):
            self._run(["sysctl", "-qw", f"net.ipv4.conf.{d}.rp_filter=0"], ns=ns)
            self._run(["ip", "addr", "add", a, "dev", d], ns=ns)
            self._run(["ip", "link", "set", d, "up"], ns=ns)
        # static neighbours both ways: no ARP, nothing queued
        self._run(["ip", "neigh", "replace", addr.split("/")[0], "lladdr", mac, "dev", peer_dev,
                   "nud", "permanent"], ns=peer)
        self._run(["ip", "neigh", "replace", peer_addr.split("/")[0], "lladdr", peer_mac,
                   "dev", dev, "nud", "permanent"], ns=self.node)

    def __enter__(self) -> Self:
        try:
            self._ns(self.node)
            self._ns(self.peer)
            self._link(self.peer, "eth0", "eth0", "192.168.50.2/24", "192.168.50.1/24",
                       NODE_MAC0, PEER_MAC)
            # the peer reaches every (spoofed) destination through the node
            self._run(["ip", "route", "add", "default", "via", "192.168.50.2"], ns=self.peer)
            if self.peer2:
                self._ns(self.peer2)
                self._link(self.peer2, "eth1", "eth0", "10.50.0.1/24", "10.50.0.2/24",
                           NODE_MAC1, PEER2_MAC)
                self._run(["ip", "route", "add", "default", "via", "10.50.0.1"], ns=self.peer2)
                self._run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], ns=self.node)
            for peer in (self.peer, self.peer2):
                if peer:
                    self._run(["nft", "-f", "-"], ns=peer, input=_PEER_TABLE)
            self._run(["nft", "-f", "-"], ns=self.node,
                      input=_CT_TABLE % ("drop;" if self.drop_replies else ""))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name in reversed(self._made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self._made.clear()

    # ---- what the tests use ------------------------------------------------------------
    def load(self, text: str) -> None:
        """iptables-restore TEXT into the node (raises NetsimError when the kernel refuses)."""
        self._run(["iptables-restore"], input=text, ns=self.node)

    def arrived(self, chain: str = "pre") -> tuple[int, int]:
        """An nfemuct counter of the node, (packets, bytes): ``pre`` counts every IPv4
        packet at PREROUTING, ``prect`` the ctstate NEW ones."""
        out = self._run(["nft", "list", "chain", "inet", "nfemuct", chain],
                        ns=self.node).stdout
        m = re.search(r"counter packets (\d+) bytes (\d+)", out)
        if not m:
            raise NetsimError(f"no counter in {out!r}")
        return int(m.group(1)), int(m.group(2))

    def send(self, datagrams: list[bytes], from_peer2: bool = False,
             timeout: float = 5.0) -> None:
        """Send IP datagrams from the peer (each must be a new connection) and wait until
        all of them have passed the node's PREROUTING."""
        ns = self.peer2 if from_peer2 else self.peer
        if ns is None:
            raise NetsimError("no peer2: build Net(forward=True)")
        if not datagrams:
            return
        self._run(["python3", "-c", _SENDER], ns=ns,
                  input="".join(d.hex() + "\n" for d in datagrams))
        self.sent += len(datagrams)
        deadline = time.monotonic() + timeout
        while True:
            seen = self.arrived()[0]
            if seen >= self.sent:
                break
            if time.monotonic() > deadline:
                raise NetsimError(f"only {seen} of {self.sent} packets reached the node")
            time.sleep(0.005)
        new = self.arrived("prect")[0]
        if seen != self.sent or new != self.sent:
            raise NetsimError(f"{seen} packets ({new} ctstate NEW) seen for {self.sent} sent")

    def save(self) -> Saved:
        """``iptables-save -c`` of the node, and nfemu's reading of it."""
        text = self._run(["iptables-save", "-c"], ns=self.node).stdout
        return Saved(text, nfemu.loads(text, counters=True))

    def conntrack(self) -> str:
        return self._run(["conntrack", "-L"], ns=self.node, check=False).stdout


def kernel_counters(ruleset: Ruleset) -> dict:
    """(table, chain, rule index or None for the policy) -> (packets, bytes), every rule and
    built-in policy of RULESET (read with counters)."""
    out = {}
    for t in ruleset.tables:
        for c in t.chains:
            if c.builtin:
                out[(t.name, c.name, None)] = (c.counters.packets, c.counters.bytes)
            for i, r in enumerate(c.rules):
                rc = r.counters
                out[(t.name, c.name, i)] = (rc.packets, rc.bytes) if rc else (0, 0)
    return out
