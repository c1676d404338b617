"""A small network in namespaces, for comparing nfemu's packet evaluation with the kernel's.

    peer (192.168.50.1, eth0) <--veth--> (eth0, 192.168.50.2) node (10.50.0.1, eth1) <--veth--> peer2

``node`` is the box under test: it holds the iptables ruleset. Packets are sent from ``peer``
(or ``peer2``) with a raw IP socket (IPPROTO_RAW, the header as given) inside that namespace;
they arrive at ``node`` on eth0 (eth1). :meth:`Net.send_local` sends from a raw socket inside
``node`` itself: locally generated packets (routing, OUTPUT, POSTROUTING; back in through lo
for a local destination). Nothing leaves these namespaces.

Set-up of ``node``, so that the kernel does what nfemu models:

* conntrack is on: an nft table ``inet nfemuct`` with ``ct state new counter`` rules in
  prerouting and output at priority -190 (after conntrack's -200, before mangle). A plain
  counter at -300 tells when every sent packet has been through PREROUTING
  (:meth:`Net.send` waits for it, then checks that every one of them was ctstate NEW).
* what the node sends itself (TCP resets, ICMP errors, echo replies: answers to our packets)
  is dropped in an nft output chain at priority -400, before raw and conntrack: replies never
  reach an iptables chain nor the peer, and no conntrack entry sees a reply (every packet we
  send to a fresh tuple stays ctstate NEW). The test packets the node sends itself
  (:meth:`Net.send_local`) are the exception, told apart by their IP TTL :data:`LOCAL_TTL`
  (99), which nothing the kernel generates has (its own packets use ip_default_ttl, 64):
  that chain lets exactly the IPv4 packets with that TTL through. Nothing in a ruleset can
  change the TTL before priority -400, and ICMP errors quoting a test packet carry TTL 64
  in their own header, so the distinction holds whatever the ruleset does.
* counters in ``inet nfemuct`` tell when sent packets have been through the node:
  ``pre`` (prerouting, -300) counts what arrives on a device other than lo, ``prelo`` what
  comes back in through lo, ``postlo`` (postrouting, priority 1000: after SNAT, before
  conntrack confirmation) what leaves through lo, ``outall`` (output, -300) the test packets
  the node sends; ``prect``/``out`` count the ctstate NEW ones among ``pre``/``outall``.
* the peers drop everything they receive (nft prerouting, priority -400), so a packet the
  node forwards to peer2 gets no answer.
* optionally (``Net(forward=True, default_route=True)``) the node routes everything else
  to peer2 (``default via 10.50.0.2 dev eth1``; peer2's neighbour entry is static), so that
  DNAT to arbitrary addresses forwards without ARP.
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

#: the IP TTL that marks the test packets the node sends itself (see the module docstring)
LOCAL_TTL = 99

_CT_TABLE = """\
table inet nfemuct {
    chain pre { type filter hook prerouting priority -300; policy accept; iifname != "lo" meta nfproto ipv4 counter; }
    chain prelo { type filter hook prerouting priority -300; policy accept; iifname "lo" meta nfproto ipv4 counter; }
    chain prect { type filter hook prerouting priority -190; policy accept; iifname != "lo" ct state new counter; }
    chain outall { type filter hook output priority -300; policy accept; meta nfproto ipv4 counter; }
    chain out { type filter hook output priority -190; policy accept; ct state new counter; }
    chain postlo { type filter hook postrouting priority 1000; policy accept; oifname "lo" meta nfproto ipv4 counter; }
    chain quiet { type filter hook output priority -400; policy accept; %s }
}
"""

# Peers take in nothing (so they never answer what the node forwards to them).
_PEER_TABLE = """\
table inet nfemupeer {
    chain deaf { type filter hook prerouting priority -400; policy drop; }
}
"""

# Runs inside a namespace (a peer, or the node for send_local): one hex-encoded IP datagram
# per input line, sent as is; prints "ok" or the errno name for each.
_SENDER = """\
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in sys.stdin:
    data = bytes.fromhex(line.strip())
    if data:
        try:
            s.sendto(data, (socket.inet_ntoa(data[16:20]), 0))
            print("ok", flush=True)
        except OSError as e:
            print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
"""


class NetsimError(RuntimeError):
    pass


@dataclass
class Saved:
    text: str           # iptables-save -c output
    ruleset: Ruleset    # the same, read by nfemu with counters
    # locally generated packets to a local address that conntrack dropped at confirmation
    # (end of POSTROUTING: a NAT tuple clash), so that they never came back through lo
    confirm_drops: int = 0


#: nft rules (prerouting, priority -190: just after conntrack) that count each ctstate and
#: direction of the packets arriving from a device other than lo, in the order of
#: :data:`CTINFO_LABELS`; a test puts them in a chain of its own table
CTSTATE_PROBE_RULES = """\
        iifname != "lo" ct state new counter
        iifname != "lo" ct state established ct direction original counter
        iifname != "lo" ct state established ct direction reply counter
        iifname != "lo" ct state related ct direction original counter
        iifname != "lo" ct state related ct direction reply counter
        iifname != "lo" ct state invalid counter
        iifname != "lo" ct state untracked counter
"""
CTINFO_LABELS = ("NEW", "ESTABLISHED", "ESTABLISHED REPLY", "RELATED", "RELATED REPLY",
                 "INVALID", "UNTRACKED")


class Scripted:
    """Stands in for ``Node.rng``: nfemu's sampler (nfemu/engine.py) decides a random match
    by comparing a draw ``getrandbits(31)`` with the probability, so answering 0 makes the
    decision true (any probability above 0) and 2^31 - 1 false (any probability below 1).
    Decision i is taken from SCRIPT, true once the script has run out; ``draws`` counts
    them."""

    def __init__(self, script: tuple[bool, ...] = ()):
        self.script = script
        self.draws = 0

    def getrandbits(self, k: int) -> int:
        i = self.draws
        self.draws += 1
        return 0 if i >= len(self.script) or self.script[i] else (1 << k) - 1


class Net:
    """``with Net() as net: net.load(text); net.send(pkts); net.save()``."""

    def __init__(self, forward: bool = False, drop_replies: bool = True,
                 default_route: bool = False):
        tag = f"{os.getpid()}-{next(_counter)}"
        self.node = f"nfemu-node-{tag}"
        self.peer = f"nfemu-peer-{tag}"
        self.peer2 = f"nfemu-peer2-{tag}" if forward else None
        if default_route and not forward:
            raise NetsimError("default_route needs peer2: Net(forward=True, default_route=True)")
        self.default_route = default_route
        self.drop_replies = drop_replies
        self._made: list[str] = []
        self.sent = 0
        self.sent_local = 0      # locally generated packets that reached OUTPUT
        self.confirm_drops = 0   # ... of which conntrack dropped at confirmation before lo

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

    def _script(self, ns: str, lines: list[str], input: str | None = None) -> None:
        """Run shell commands inside namespace NS in one process (set -e): a namespace is
        set up with a handful of processes instead of one per command."""
        self._run(["sh", "-ec", "\n".join(lines)], ns=ns, input=input)

    def _ns(self, name: str) -> None:
        self._run(["ip", "netns", "add", name])
        self._made.append(name)
        self._script(name, ["ip link set lo up",
                            ("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                             "net.ipv6.conf.default.disable_ipv6=1 "
                             "net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0")])

    @staticmethod
    def _dev_setup(dev: str, addr: str, other: str, other_mac: str) -> list[str]:
        """Address DEV, bring it up, and make the other end's neighbour entry static (no
        ARP, nothing queued)."""
        return [f"sysctl -qw net.ipv4.conf.{dev}.rp_filter=0",
                f"ip addr add {addr} dev {dev}",
                f"ip link set {dev} up",
                (f"ip neigh replace {other.split('/')[0]} lladdr {other_mac} dev {dev} "
                 "nud permanent")]

    def __enter__(self) -> Self:
        try:
            node0, peer0 = "192.168.50.2/24", "192.168.50.1/24"
            node1, peer1 = "10.50.0.1/24", "10.50.0.2/24"
            for name in (self.node, self.peer, self.peer2):
                if name:
                    self._ns(name)
            self._run(["ip", "link", "add", "eth0", "netns", self.node, "address", NODE_MAC0,
                       "type", "veth", "peer", "name", "eth0", "netns", self.peer,
                       "address", PEER_MAC])
            node = self._dev_setup("eth0", node0, peer0, PEER_MAC)
            if self.peer2:
                self._run(["ip", "link", "add", "eth1", "netns", self.node, "address",
                           NODE_MAC1, "type", "veth", "peer", "name", "eth0", "netns",
                           self.peer2, "address", PEER2_MAC])
                node += self._dev_setup("eth1", node1, peer1, PEER2_MAC)
                node.append("sysctl -qw net.ipv4.ip_forward=1")
                if self.default_route:
                    node.append("ip route add default via 10.50.0.2 dev eth1")
            # the peers reach every (spoofed) destination through the node, and take in
            # nothing
            self._script(self.peer, self._dev_setup("eth0", peer0, node0, NODE_MAC0)
                         + ["ip route add default via 192.168.50.2", "nft -f -"],
                         input=_PEER_TABLE)
            if self.peer2:
                self._script(self.peer2, self._dev_setup("eth0", peer1, node1, NODE_MAC1)
                             + ["ip route add default via 10.50.0.1", "nft -f -"],
                             input=_PEER_TABLE)
            self._script(self.node, node + ["nft -f -"],
                         input=_CT_TABLE % (f"ip ttl {LOCAL_TTL} accept; drop;"
                                            if self.drop_replies else ""))
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
        packet arriving at PREROUTING from a device other than lo, ``prect`` the ctstate NEW
        ones; ``prelo`` those coming back in through lo, ``postlo`` those leaving through lo;
        ``outall`` the locally generated test packets at OUTPUT, ``out`` the ctstate NEW
        ones."""
        counters = self.counters()
        if chain not in counters:
            raise NetsimError(f"no counter in chain {chain!r}: {counters}")
        return counters[chain]

    def counters(self) -> dict[str, tuple[int, int]]:
        """Every nfemuct counter of the node (see :meth:`arrived`), in one listing."""
        out = self._run(["nft", "list", "table", "inet", "nfemuct"], ns=self.node).stdout
        return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in re.finditer(
            r"chain (\w+) \{[^}]*?counter packets (\d+) bytes (\d+)", out)}

    def send(self, datagrams: list[bytes], from_peer2: bool = False,
             timeout: float = 5.0) -> None:
        """Send IP datagrams from the peer (each must be a new connection) and wait until
        all of them have passed the node's PREROUTING."""
        ns = self.peer2 if from_peer2 else self.peer
        if ns is None:
            raise NetsimError("no peer2: build Net(forward=True)")
        if not datagrams:
            return
        said = self._run(["python3", "-c", _SENDER], ns=ns,
                         input="".join(d.hex() + "\n" for d in datagrams)).stdout.split()
        if said != ["ok"] * len(datagrams):
            raise NetsimError(f"the peer could not send every datagram: {said}")
        self.sent += len(datagrams)
        deadline = time.monotonic() + timeout
        while True:
            counters = self.counters()
            seen = counters["pre"][0]
            if seen >= self.sent:
                break
            if time.monotonic() > deadline:
                raise NetsimError(f"only {seen} of {self.sent} packets reached the node")
            time.sleep(0.005)
        new = counters["prect"][0]
        if seen != self.sent or new != self.sent:
            raise NetsimError(f"{seen} packets ({new} ctstate NEW) seen for {self.sent} sent")

    def send_local(self, datagrams: list[bytes], timeout: float = 5.0) -> list[str]:
        """Send IP datagrams from a raw socket (IPPROTO_RAW, header included) inside the node
        itself: locally generated packets. Each must carry TTL :data:`LOCAL_TTL` (else
        netsim's own output chain would drop it as a reply) and be a new connection. The
        kernel fills a zero source address (from the route) and a zero IP ID, and recomputes
        the IP checksum and total length (raw_send_hdrinc).

        Returns what sendto() said for each datagram: ``"ok"`` or the errno name (``EPERM``:
        a hook dropped it; ``ENETUNREACH``: no route, it never reached OUTPUT; ``EINVAL``:
        either no valid route before OUTPUT or, after a NAT in OUTPUT, none on re-routing in
        ip_route_me_harder). sendto() returns after OUTPUT and POSTROUTING have run
        (ip_local_out is synchronous up to the device); packets looped back through lo are
        then waited for until each has passed PREROUTING again (``prelo`` catches up with
        ``postlo``). Checks that every packet that reached OUTPUT was ctstate NEW there."""
        for d in datagrams:
            if len(d) < 20 or d[8] != LOCAL_TTL:
                raise NetsimError(f"locally sent datagrams must have TTL {LOCAL_TTL}: {d.hex()}")
        if not datagrams:
            return []
        before = self.counters()["outall"][0]
        failed_before = self._insert_failed()
        out = self._run(["python3", "-c", _SENDER], ns=self.node,
                        input="".join(d.hex() + "\n" for d in datagrams)).stdout.split()
        if len(out) != len(datagrams):
            raise NetsimError(f"sender answered {out!r} for {len(datagrams)} datagrams")
        deadline = time.monotonic() + timeout
        dropped = 0
        while True:
            counters = self.counters()
            back, left = counters["prelo"][0], counters["postlo"][0]
            if back >= left:
                break
            # a packet whose entry clashed at confirmation (nf_conntrack_confirm, after the
            # postlo counter) is dropped there and never comes back
            dropped = self._insert_failed() - failed_before
            if back + dropped >= left:
                break
            if time.monotonic() > deadline:
                raise NetsimError(f"only {back} of {left} packets came back through lo "
                                  f"({dropped} dropped at conntrack confirmation)")
            time.sleep(0.005)
        self.confirm_drops += dropped
        seen, new = counters["outall"][0], counters["out"][0]
        self.sent_local += seen - before
        if seen - before > len(datagrams) or new != seen:
            raise NetsimError(f"{seen - before} packets at OUTPUT for {len(datagrams)} sent "
                              f"locally ({out}); {new} of all {seen} were ctstate NEW")
        return out

    def _insert_failed(self) -> int:
        """conntrack's insert_failed count in the node (``conntrack -S``, all CPUs): entries
        refused at confirmation because their tuple clashed; the packet is dropped."""
        stats = self._run(["conntrack", "-S"], ns=self.node).stdout
        return sum(int(n) for n in re.findall(r"insert_failed=(\d+)", stats))

    def save(self) -> Saved:
        """``iptables-save -c`` of the node, and nfemu's reading of it."""
        text = self._run(["iptables-save", "-c"], ns=self.node).stdout
        return Saved(text, nfemu.loads(text, counters=True))

    def conntrack(self) -> str:
        return self._run(["conntrack", "-L"], ns=self.node, check=False).stdout

    def ct_entries(self) -> list[CtEntry]:
        """The node's conntrack table (``conntrack -L``), parsed: one :class:`CtEntry` per
        connection."""
        r = self._run(["conntrack", "-L"], ns=self.node, check=False)
        if r.returncode != 0 and "flow entries" not in r.stderr:
            raise NetsimError(f"conntrack -L failed: {r.stderr.strip()}")
        return parse_conntrack(r.stdout)


@dataclass(frozen=True)
class CtEntry:
    """One line of ``conntrack -L``: the connection's original and reply tuples.

    Addresses are ints (as in nfemu's Packet). ``*_sport``/``*_dport`` are the ports of
    protocols that have them (tcp, udp, udplite, sctp, dccp), else None; for ICMP the
    ``*_icmp`` fields hold (type, code, id) of each direction (the id is what NAT maps for
    ICMP), else None. ``state`` is the protocol state text where conntrack prints one
    (``SYN_SENT`` for TCP, ...), ``flags`` the bracketed words (``UNREPLIED``, ``ASSURED``),
    ``mark`` the connmark, ``zone`` the zone (0 when not printed)."""

    proto: int
    orig_src: int
    orig_dst: int
    orig_sport: int | None
    orig_dport: int | None
    reply_src: int
    reply_dst: int
    reply_sport: int | None
    reply_dport: int | None
    state: str | None = None
    orig_icmp: tuple[int, int, int] | None = None
    reply_icmp: tuple[int, int, int] | None = None
    flags: frozenset[str] = frozenset()
    mark: int = 0
    zone: int = 0
    timeout: int = 0

    def __str__(self) -> str:
        def side(src, dst, sport, dport, icmp):
            text = f"{nfemu.host.fmt4(src)} -> {nfemu.host.fmt4(dst)}"
            if sport is not None:
                text = f"{nfemu.host.fmt4(src)}:{sport} -> {nfemu.host.fmt4(dst)}:{dport}"
            if icmp is not None:
                text += f" type={icmp[0]} code={icmp[1]} id={icmp[2]}"
            return text
        return (f"proto {self.proto} {self.state or ''} "
                f"[{side(self.orig_src, self.orig_dst, self.orig_sport, self.orig_dport, self.orig_icmp)}]"
                f" reply [{side(self.reply_src, self.reply_dst, self.reply_sport, self.reply_dport, self.reply_icmp)}]")


def _ct_side(fields: dict) -> tuple:
    ports = (int(fields["sport"]), int(fields["dport"])) if "sport" in fields else (None, None)
    icmp = ((int(fields["type"]), int(fields["code"]), int(fields["id"]))
            if "type" in fields and "id" in fields else None)
    return (nfemu.host.ip4(fields["src"]), nfemu.host.ip4(fields["dst"])) + ports + (icmp,)


def parse_conntrack(text: str) -> list[CtEntry]:
    """Parse ``conntrack -L`` lines (IPv4): ``NAME NUM TIMEOUT [STATE] src= dst= [sport=
    dport= | type= code= id=] [FLAGS] src= dst= ... [FLAGS] mark= [zone=] use=``."""
    entries = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or not words[1].isdigit():
            continue
        proto, timeout = int(words[1]), int(words[2]) if words[2].isdigit() else 0
        state = None
        sides: list[dict] = []
        extra: dict = {}
        flags = set()
        for w in words[3:]:
            if w.startswith("[") and w.endswith("]"):
                flags.add(w[1:-1])
            elif "=" in w:
                key, value = w.split("=", 1)
                if key == "src":
                    sides.append({})
                if key in ("src", "dst", "sport", "dport", "type", "code", "id") and sides \
                        and key not in sides[-1]:
                    sides[-1][key] = value
                else:
                    extra[key] = value
            elif not sides and w.isupper():
                state = w
        if len(sides) != 2:
            raise NetsimError(f"cannot read conntrack line {line!r}")
        o, r = _ct_side(sides[0]), _ct_side(sides[1])
        entries.append(CtEntry(proto, o[0], o[1], o[2], o[3], r[0], r[1], r[2], r[3], state,
                               o[4], r[4], frozenset(flags), int(extra.get("mark", "0"), 0),
                               int(extra.get("zone", "0")), timeout))
    return entries


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


_PORT_RANGE = re.compile(r"(\d+)-(\d+)")


def nfemu_ct_tuples(pkt, src: int, journey) -> tuple[tuple, tuple, dict]:
    """The conntrack entry nfemu predicts for a new connection: (original, reply) tuples as
    (src, dst, sport or ICMP id, dport or None), from the first packet PKT (with its source
    SRC, chosen by routing for a local packet) and its traced JOURNEY's final packet; and
    the reply fields the kernel draws at random, index -> (lo, hi), from the NAT events that
    say ``random_port`` (the key a manip changed: reply sport for DNAT, dport for SNAT, the
    ICMP id)."""
    icmp = pkt.proto == 1
    orig = (src, pkt.dst, pkt.icmp_rest >> 16 if icmp else pkt.sport,
            None if icmp else pkt.dport)
    final = journey.packet
    if icmp:
        reply = (final.dst, final.src, final.icmp_rest >> 16, None)
    else:
        reply = (final.dst, final.src, final.dport, final.sport)
    random = {}
    for ev in journey.events:
        text = ev.detail.get("random_port")
        if ev.kind in ("DNAT", "SNAT") and text:
            lo, hi = map(int, _PORT_RANGE.match(text).groups())
            random[2 if icmp or ev.kind == "DNAT" else 3] = (lo, hi)
    return orig, reply, random


def play_connections(text: str, conns) -> tuple[list, Saved, list]:
    """Load TEXT into a fresh Net(forward=True, default_route=True) and send each
    connection's first packet (``conn.pkt``) from where it comes (``conn.origin``: "eth0"
    from peer, "eth1" from peer2, "local" from the node itself); returns what sendto said
    for the local ones, ``iptables-save -c`` and the conntrack entries."""
    with Net(forward=True, default_route=True) as net:
        net.load(text)
        net.send([c.pkt.to_bytes() for c in conns if c.origin == "eth0"])
        net.send([c.pkt.to_bytes() for c in conns if c.origin == "eth1"], from_peer2=True)
        sent = net.send_local([c.pkt.to_bytes() for c in conns if c.origin == "local"])
        saved = net.save()
        saved.confirm_drops = net.confirm_drops
        return sent, saved, net.ct_entries()
