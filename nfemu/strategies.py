"""Hypothesis strategies for testing rules with nfemu: packets, flows, rules, rulesets, hosts.

    >>> from hypothesis import given
    >>> import nfemu, nfemu.strategies as nst
    >>> HOST = nfemu.Host.from_options(["eth0=192.168.0.2/24"])
    >>> @given(nst.rulesets(tables=["filter"], max_rules=2), nst.arrivals(host=HOST))
    ... def test_trace_never_fails(text, arrival):
    ...     nfemu.Node(nfemu.loads(text), HOST).trace(*arrival)
    >>> test_trace_never_fails()

Every strategy takes keyword arguments that pin a field: a plain value pins it, a hypothesis
strategy draws it (``packets(dport=53)``, ``packets(dport=st.sampled_from([53, 5353]))``).

The rule strategies (:func:`rules`, :func:`chains`, :func:`rulesets`) draw only what the
kernel loads: each match and target in a table and hook that allows it (the checks of
``xt_check_match``/``xt_check_target`` that nfemu/validate.py mirrors), jumps only to user
chains that exist and never in a loop (``mark_source_chains``), a protocol given wherever an
extension needs one. They are written in iptables-save's canonical spelling where nfemu
knows it, so what they draw reads like a dump. Sizes are drawn first and small, lists shrink
to empty, choices shrink to the first (plainest) option: a failing example shrinks to a few
short rules.

IPv4 rulesets only (iptables, not ip6tables). :func:`packets` draws IPv6 packets on request
(``family=6``).

hypothesis is a test-time dependency: only the strategies modules (this one and
nfemu.kube.strategies) import it; nfemu itself runs without it.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .host import Host
from .ir import BUILTIN_CHAINS, TABLE_SAVE_ORDER
from .parse import loads
from .packet import (ICMP, ICMPV6, SCTP, TCP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN,
                     UDP, Packet)

__all__ = ["packets", "arrivals", "Arrival", "flows", "FlowPacket", "capture", "rules",
           "chains", "rulesets", "hosts", "kube_clusters", "extension_names", "ADDRESSES", "PORTS",
           "HOST_INTERFACES", "NOT_EVALUATED"]

# ---- the shared vocabulary ------------------------------------------------------------------
# Rules and packets draw from the same small pools, so that drawn rules often match drawn
# packets (a random 32-bit address would almost never hit a rule).

#: The interfaces and addresses of the default host (:func:`hosts` draws from these too).
HOST_INTERFACES = (("eth0", "192.168.0.2/24"), ("eth1", "10.0.0.1/24"),
                   ("eth2", "172.16.0.1/16"))
#: IPv4 addresses rules and packets use: the host's own, neighbours, a service IP, outside.
ADDRESSES = ("192.168.0.2", "192.168.0.1", "192.168.0.50", "10.0.0.1", "10.0.0.5",
             "10.96.0.10", "172.16.0.1", "8.8.8.8", "127.0.0.1")
ADDRESSES6 = ("2001:db8::1", "2001:db8::2", "fd00::10", "::1", "2001:db8:1::5")
#: Ports rules and packets use.
PORTS = (80, 53, 443, 22, 1000, 8080, 30080, 40000)
_PREFIXES = (32, 24, 16, 8)
_PROTO_NUMBERS = {"tcp": TCP, "udp": UDP, "icmp": ICMP, "sctp": SCTP, "icmpv6": ICMPV6}
_IFACES = ("eth0", "eth1", "eth+", "lo")


def _sometimes(draw, n: int) -> bool:
    """True one time in ``n``; shrinks to False (so a shrunk example loses the option)."""
    return draw(st.integers(0, n - 1)) == n - 1


def _as_strategy(value: Any, default: SearchStrategy) -> SearchStrategy:
    """None: the default strategy; a strategy: itself; anything else: that value, pinned."""
    if value is None:
        return default
    if isinstance(value, SearchStrategy):
        return value
    return st.just(value)


def _addr(value: Any, family: int) -> int:
    """An address given as text or int, checked against the family."""
    if isinstance(value, int):
        return value
    addr = ipaddress.ip_address(value)
    if addr.version != family:
        raise ValueError(f"{value!r} is not an IPv{family} address")
    return int(addr)


def _proto_number(value: Any) -> int:
    if isinstance(value, int):
        return value
    return _PROTO_NUMBERS[str(value).lower()]


# ---- packets --------------------------------------------------------------------------------

_FLAG_SETS = (TCP_SYN, TCP_ACK, TCP_SYN | TCP_ACK, TCP_PSH | TCP_ACK, TCP_FIN | TCP_ACK,
              TCP_RST, TCP_RST | TCP_ACK, 0)


@st.composite
def packets(draw, *, family=4, proto=None, src=None, dst=None, sport=None, dport=None,
            tcp_flags=None, icmp_type=None, icmp_code=None, icmp_id=None, mark=None,
            ttl=None, tos=None, payload=None, iif=None, oif=None) -> Packet:
    """A :class:`nfemu.packet.Packet`: a TCP, UDP, ICMP or SCTP packet (IPv4 unless
    ``family=6``), its fields drawn from the pools the rule strategies use.

    Every argument pins its field (a value) or draws it (a strategy). ``proto`` is a name
    ("tcp", "udp", "icmp", "sctp") or number; addresses are text or ints; ``payload`` bytes.
    TCP flags default to one of SYN, ACK, SYN+ACK, PSH+ACK, FIN+ACK, RST, RST+ACK, none;
    ICMP type to echo request or reply (ICMPv6: 128/129). ``iif``/``oif`` are left empty
    unless given (:func:`arrivals` draws where a packet enters).

        >>> from hypothesis import given
        >>> @given(packets(proto="tcp", dst="10.96.0.10", dport=53))
        ... def test_dns(pkt):
        ...     assert (pkt.proto, pkt.dport) == (6, 53)
        >>> test_dns()
    """
    fam = draw(_as_strategy(family, st.just(4)))
    pool = ADDRESSES if fam == 4 else ADDRESSES6
    protos = ["tcp", "udp", "icmp", "sctp"] if fam == 4 else ["tcp", "udp", "icmpv6", "sctp"]
    p = _proto_number(draw(_as_strategy(proto, st.sampled_from(protos))))
    if fam == 6 and p == ICMP:
        p = ICMPV6
    fields: dict = {
        "family": fam,
        "src": _addr(draw(_as_strategy(src, st.sampled_from(pool))), fam),
        "dst": _addr(draw(_as_strategy(dst, st.sampled_from(pool))), fam),
        "proto": p,
        "ttl": draw(_as_strategy(ttl, st.sampled_from([64, 1, 255]))),
        "tos": draw(_as_strategy(tos, st.sampled_from([0, 0x10, 0xb8]))),
        "mark": draw(_as_strategy(mark, st.sampled_from([0, 1, 2, 0x4000]))),
        "payload": draw(_as_strategy(payload, st.binary(max_size=48))),
        "iif": draw(_as_strategy(iif, st.just(""))),
        "oif": draw(_as_strategy(oif, st.just(""))),
    }
    if fam == 4:
        fields["ip_id"] = draw(st.integers(0, 0xFFFF))
    ports = st.sampled_from(PORTS) | st.integers(1, 0xFFFF)
    if p in (TCP, UDP, SCTP):
        fields["sport"] = draw(_as_strategy(sport, st.sampled_from([40000, 1000]) | ports))
        fields["dport"] = draw(_as_strategy(dport, ports))
    if p == TCP:
        fields["tcp_flags"] = draw(_as_strategy(tcp_flags, st.sampled_from(_FLAG_SETS)))
        fields["tcp_seq"] = draw(st.integers(0, 2**32 - 1))
        if fields["tcp_flags"] & TCP_ACK:
            fields["tcp_ack"] = draw(st.integers(0, 2**32 - 1))
        fields["tcp_window"] = 64240
    elif p == SCTP:
        fields["sctp_vtag"] = draw(st.integers(0, 2**32 - 1))
        fields["payload"] = b""     # chunks live in the payload; an empty packet has none
    elif p in (ICMP, ICMPV6):
        echo = (8, 0) if p == ICMP else (128, 129)
        fields["icmp_type"] = draw(_as_strategy(icmp_type, st.sampled_from(echo)))
        fields["icmp_code"] = draw(_as_strategy(icmp_code, st.just(0)))
        ident = draw(_as_strategy(icmp_id, st.integers(0, 0xFFFF)))
        fields["icmp_rest"] = ident << 16 | draw(st.integers(0, 0xFFFF))
    return Packet(**fields)


class Arrival(NamedTuple):
    """A packet and where it enters the node: ``iface`` (received there) or ``local``
    (generated by the node, starting at OUTPUT). Pass it on as
    ``node.trace(a.packet, iface=a.iface, local=a.local)`` or ``node.trace(*a)``."""

    packet: Packet
    iface: str | None
    local: bool


@st.composite
def arrivals(draw, *, host: Host | None = None, local=None, iface=None,
             **packet_fields) -> Arrival:
    """An :class:`Arrival`: a packet from :func:`packets` (``packet_fields`` pin its fields)
    with the interface it is received on, or ``local=True`` for a packet the node sends
    (then its source is one of the host's addresses unless pinned).

    ``host`` (default: the interfaces of :data:`HOST_INTERFACES`) gives the interfaces and
    local addresses; ``local``/``iface`` pin or draw the place (pinning ``iface`` means
    ``local=False``).

        >>> from hypothesis import given
        >>> import nfemu
        >>> node = nfemu.Node(nfemu.loads("*filter\\n:INPUT DROP [0:0]\\nCOMMIT\\n"),
        ...                   nfemu.Host.from_options(["eth0=192.168.0.2/24"]))
        >>> @given(arrivals(iface="eth0", dst="192.168.0.2"))
        ... def test_input_drops(a):
        ...     assert node.trace(*a).verdict.name == "DROP"
        >>> test_input_drops()
    """
    if host is None:
        names = [n for n, _ in HOST_INTERFACES]
        own = [a.split("/")[0] for _, a in HOST_INTERFACES]
    else:
        names = [i.name for i in host.interfaces if not i.is_loopback]
        own = [str(ipaddress.IPv4Address(a.addr)) for i in host.interfaces
               for a in i.inet() if not i.is_loopback] or ["127.0.0.1"]
    if local is None and iface is not None:
        local = False             # a packet received on an interface is not the node's own
    is_local = draw(_as_strategy(local, st.sampled_from([False, True])))
    if is_local:
        if packet_fields.get("family", 4) == 4:
            packet_fields.setdefault("src", st.sampled_from(own))
        return Arrival(draw(packets(**packet_fields)), None, True)
    name = draw(_as_strategy(iface, st.sampled_from(names or ["lo"])))
    return Arrival(draw(packets(**packet_fields)), name, False)


# ---- flows ----------------------------------------------------------------------------------

class FlowPacket(NamedTuple):
    """One packet of a flow: when (``time``, seconds), which way (``direction``:
    "original" from the client, "reply" from the server), and where it enters the node
    (``iface``, or ``local`` for a packet the node itself sends). ``send(node)`` hands it
    to :meth:`nfemu.node.Node.send` (connection tracking on)."""

    time: float
    packet: Packet
    direction: str
    iface: str | None
    local: bool

    def send(self, node):
        """``node.send`` this packet at its time, where it enters; returns the Trace."""
        return node.send(self.packet, iface=self.iface, local=self.local, now=self.time)


_GAPS = (0.0, 0.001, 0.05, 1.0, 10.0, 35.0, 130.0)


@st.composite
def flows(draw, *, proto=None, client=None, server=None, sport=None, dport=None,
          client_iface="eth0", server_iface="eth1", client_local=False, server_local=False,
          max_data=3, close=None, start=None, gaps=None) -> list[FlowPacket]:
    """One connection as a list of :class:`FlowPacket`, in time order.

    TCP: the three-way handshake (SYN, SYN+ACK, ACK) with random initial sequence numbers,
    up to ``max_data`` data segments each way (PSH+ACK, sequence numbers advancing by the
    payload, acknowledging what the peer sent), then ``close``: "fin" (FIN+ACK each way and
    the last ACK), "rst" (one side resets) or "open". UDP: a request and alternating
    replies. ICMP: echo requests (one identifier, sequence 1, 2, ...) each answered.

    Replies swap addresses and ports. Packets from the client enter on ``client_iface``,
    replies on ``server_iface`` (a forwarded connection: both defaults); ``server_local=True``
    makes the node the server (replies are locally generated), ``client_local=True`` the
    client (then pin ``server``/``client`` to one of the node's addresses). Times start at
    ``start`` and grow by gaps drawn from ``gaps`` (by default 0 to 130 s, across
    conntrack's timeouts). With no locally generated packet, :func:`capture` turns a flow
    into what :meth:`nfemu.node.Node.replay` reads.

        >>> import nfemu
        >>> from hypothesis import given
        >>> node = nfemu.Node(nfemu.loads("*filter\\n:FORWARD ACCEPT [0:0]\\nCOMMIT\\n"),
        ...                   nfemu.Host.from_options(["eth0=192.168.0.2/24",
        ...                                            "eth1=10.0.0.1/24"]))
        >>> @given(flows(proto="tcp", client="192.168.0.50", server="10.0.0.5", dport=80))
        ... def test_forwarded(flow):
        ...     for p in flow:
        ...         p.send(node)
        >>> test_forwarded()
    """
    name = draw(_as_strategy(proto, st.sampled_from(["tcp", "udp", "icmp"])))
    p = _proto_number(name)
    c = _addr(draw(_as_strategy(client, st.sampled_from(["192.168.0.50", "192.168.0.1"]))), 4)
    s = _addr(draw(_as_strategy(server, st.sampled_from(["10.0.0.5", "10.96.0.10",
                                                         "8.8.8.8"]))), 4)
    cport = draw(_as_strategy(sport, st.integers(32768, 60999)))
    sport_ = draw(_as_strategy(dport, st.sampled_from(PORTS)))
    t = float(draw(_as_strategy(start, st.sampled_from([0.0, 1000.0]))))
    gap = _as_strategy(gaps, st.sampled_from(_GAPS))
    where = {"original": (None if client_local else client_iface, bool(client_local)),
             "reply": (None if server_local else server_iface, bool(server_local))}
    out: list[FlowPacket] = []

    def emit(direction: str, **fields) -> None:
        nonlocal t
        if out:
            t += float(draw(gap))
        fwd = direction == "original"
        base = {"src": c if fwd else s, "dst": s if fwd else c, "proto": p,
                "ip_id": draw(st.integers(0, 0xFFFF))}
        if p in (TCP, UDP):
            base["sport"], base["dport"] = (cport, sport_) if fwd else (sport_, cport)
        iface, local = where[direction]
        out.append(FlowPacket(t, Packet(**base, **fields), direction, iface, local))

    data_sizes = st.integers(1, 64)
    if p == TCP:
        seq = {"original": draw(st.integers(0, 2**32 - 1)),
               "reply": draw(st.integers(0, 2**32 - 1))}
        other = {"original": "reply", "reply": "original"}
        mod = 2**32

        def segment(direction: str, flags: int, size: int = 0, grows: int = 0) -> None:
            peer = other[direction]
            ack = seq[peer] if flags & TCP_ACK else 0
            emit(direction, tcp_flags=flags, tcp_seq=seq[direction], tcp_ack=ack,
                 tcp_window=64240, payload=bytes(size))
            seq[direction] = (seq[direction] + size + grows) % mod

        segment("original", TCP_SYN, grows=1)
        segment("reply", TCP_SYN | TCP_ACK, grows=1)
        segment("original", TCP_ACK)
        for direction in draw(st.lists(st.sampled_from(["original", "reply"]),
                                       max_size=max_data)):
            segment(direction, TCP_PSH | TCP_ACK, size=draw(data_sizes))
        how = draw(_as_strategy(close, st.sampled_from(["fin", "rst", "open"])))
        if how == "fin":
            first = draw(st.sampled_from(["original", "reply"]))
            segment(first, TCP_FIN | TCP_ACK, grows=1)
            segment(other[first], TCP_FIN | TCP_ACK, grows=1)
            segment(first, TCP_ACK)
        elif how == "rst":
            segment(draw(st.sampled_from(["original", "reply"])), TCP_RST | TCP_ACK)
    elif p == UDP:
        emit("original", payload=bytes(draw(data_sizes)))
        for k in range(draw(st.integers(0, max_data))):
            emit("reply" if k % 2 == 0 else "original", payload=bytes(draw(data_sizes)))
    elif p == ICMP:
        ident = draw(st.integers(0, 0xFFFF))
        for n in range(1, draw(st.integers(1, max(1, max_data))) + 1):
            emit("original", icmp_type=8, icmp_rest=ident << 16 | n, payload=bytes(16))
            emit("reply", icmp_type=0, icmp_rest=ident << 16 | n, payload=bytes(16))
    else:
        raise ValueError(f"flows: proto must be tcp, udp or icmp, not {name!r}")
    return out


def capture(flow: list[FlowPacket]) -> list[tuple[float, Packet]]:
    """A flow as the iterable :meth:`nfemu.node.Node.replay` takes: ``(seconds, packet)``
    pairs, each packet carrying its interface (``iif``). Only for flows without locally
    generated packets (replay takes ``local`` for a whole capture, not per packet).

        >>> import nfemu
        >>> node = nfemu.Node(nfemu.loads("*filter\\n:FORWARD DROP [0:0]\\nCOMMIT\\n"),
        ...                   nfemu.Host.from_options(["eth0=192.168.0.2/24",
        ...                                            "eth1=10.0.0.1/24"]))
        >>> from hypothesis import given
        >>> @given(flows(proto="udp", server="10.0.0.5"))
        ... def test_replayed(flow):
        ...     results = list(node.replay(capture(flow)))
        ...     assert [r.journey.verdict.name for r in results] == ["DROP"] * len(flow)
        >>> test_replayed()
    """
    if any(item.local for item in flow):
        raise ValueError("capture(): the flow has locally generated packets; send them with "
                         "FlowPacket.send(node) instead")
    return [(item.time, item.packet.replace(iif=item.iface)) for item in flow]


# ---- hosts ----------------------------------------------------------------------------------

@st.composite
def hosts(draw, *, interfaces=None, max_interfaces=3, default_gateway=None,
          local_ips=None, ip_forward=None) -> Host:
    """A :class:`nfemu.host.Host` made with :meth:`Host.from_options`: 1 to
    ``max_interfaces`` (at most 3) interfaces named eth0, eth1, ... with the addresses of
    :data:`HOST_INTERFACES` (a second address now and then), a default gateway on eth0's
    subnet or none, now and then a service address on lo, forwarding on or off.

    ``interfaces`` pins the ``--iface`` options (``["eth0=192.168.0.2/24"]``);
    ``default_gateway`` an address, or False for none.

        >>> from hypothesis import given
        >>> @given(hosts(default_gateway="192.168.0.1"))
        ... def test_gateway(host):
        ...     assert any(r.gateway for r in host.routes)
        >>> test_gateway()
    """
    if interfaces is None:
        n = draw(st.integers(1, max(1, min(max_interfaces, len(HOST_INTERFACES)))))
        opts = []
        for name, addr in HOST_INTERFACES[:n]:
            if _sometimes(draw, 4):
                net = ipaddress.ip_interface(addr).network
                addr = f"{addr},{net.network_address + 7}/{net.prefixlen}"
            opts.append(f"{name}={addr}")
    else:
        opts = list(draw(_as_strategy(interfaces, st.just(()))))
    first = opts[0].partition("=")[2].split(",")[0] if opts else None
    gw_default = st.just(None)
    if first:
        own = ipaddress.ip_interface(first)
        neighbour = next(str(own.network.network_address + k) for k in (1, 2)
                         if own.network.network_address + k != own.ip)
        gw_default = st.sampled_from([None, neighbour])
    gw = draw(_as_strategy(default_gateway, gw_default))
    if gw is False:
        gw = None
    lo = list(draw(_as_strategy(local_ips, st.sampled_from([(), ("10.96.0.10",)]))))
    fwd = draw(_as_strategy(ip_forward, st.booleans().map(lambda b: not b)))
    return Host.from_options(opts, lo, gw, ip_forward=fwd)


# ---- the extension catalog ------------------------------------------------------------------

@dataclass(frozen=True)
class _Place:
    """Where a rule goes: its table, chain, and the built-in chains (hooks) reaching it."""

    table: str
    chain: str
    hooks: frozenset

    @property
    def builtin(self) -> bool:
        return self.chain in BUILTIN_CHAINS[self.table]


@dataclass(frozen=True)
class _Ext:
    """One match (-m) or target (-j) the strategies can write: where the kernel allows it
    (``tables``; ``hooks``: every hook reaching the rule must be one of these), the rule
    protocols it needs (``protos``: the rule says ``-p`` one of them, not inverted), and how
    to draw its options: ``options(draw, place, proto)`` -> text after the name."""

    name: str
    kind: str
    options: Callable
    tables: frozenset | None = None
    hooks: frozenset | None = None
    protos: frozenset | None = None

    def fits(self, place: _Place, proto: str | None) -> bool:
        if self.tables is not None and place.table not in self.tables:
            return False
        if self.hooks is not None and not place.hooks <= self.hooks:
            return False
        return self.protos is None or proto in self.protos


def _neg(draw) -> str:
    return draw(st.sampled_from(["", "! "]))


def _port_spec(draw, allow_range: bool = True) -> str:
    a = draw(st.sampled_from(PORTS))
    if allow_range and _sometimes(draw, 3):
        b = draw(st.sampled_from([q for q in PORTS if q > a] or [65535]))
        return f"{a}:{b}"
    return str(a)


def _ports(draw, place, proto) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f"{_neg(draw)}--sport {_port_spec(draw)}")
    if not parts or draw(st.booleans()):
        parts.append(f"{_neg(draw)}--dport {_port_spec(draw)}")
    return " ".join(parts)


def _tcp(draw, place, proto) -> str:
    text = "" if _sometimes(draw, 3) else _ports(draw, place, proto)
    if not text or _sometimes(draw, 3):
        mask, comp = draw(st.sampled_from([("FIN,SYN,RST,ACK", "SYN"), ("SYN,ACK", "SYN,ACK"),
                                           ("SYN,RST", "SYN"), ("RST", "RST")]))
        text = f"{text} {_neg(draw)}--tcp-flags {mask} {comp}".strip()
    return text


def _icmp(draw, place, proto) -> str:
    return f"{_neg(draw)}--icmp-type " + draw(st.sampled_from(["8", "0", "3", "3/1", "11/0"]))


def _multiport(draw, place, proto) -> str:
    opt = draw(st.sampled_from(["--dports", "--sports", "--ports"]))
    specs, used = [], 0
    for _ in range(draw(st.integers(1, 4))):
        spec = _port_spec(draw)
        cost = 2 if ":" in spec else 1
        if used + cost > 15 or spec in specs:
            continue
        specs.append(spec)
        used += cost
    return f"{_neg(draw)}{opt} {','.join(specs)}"


def _mark(draw, place, proto) -> str:
    value = draw(st.sampled_from(["0x1", "0x2", "0x4000", "0x0"]))
    mask = draw(st.sampled_from(["", "/0xff", "/0x4000", "/0x1"]))
    return f"{_neg(draw)}--mark {value}{mask}"


_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED")


def _ctstates(draw) -> str:
    chosen = set(draw(st.lists(st.sampled_from(_STATES), min_size=1, max_size=2)))
    return ",".join(s for s in _STATES if s in chosen)


def _conntrack(draw, place, proto) -> str:
    return f"{_neg(draw)}--ctstate {_ctstates(draw)}"


def _state(draw, place, proto) -> str:
    return f"{_neg(draw)}--state {_ctstates(draw)}"


def _statistic(draw, place, proto) -> str:
    if draw(st.booleans()):
        p = draw(st.sampled_from(["0.50000000000", "0.25000000000", "0.33333333349",
                                  "0.10000000009"]))
        return f"--mode random {_neg(draw)}--probability {p}"
    every = draw(st.integers(2, 4))
    return f"--mode nth {_neg(draw)}--every {every} --packet {draw(st.integers(0, every - 1))}"


def _addrtype(draw, place, proto) -> str:
    which = draw(st.sampled_from(["--dst-type", "--src-type"]))
    kind = draw(st.sampled_from(["LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "LOCAL,BROADCAST"]))
    return f"{_neg(draw)}{which} {kind}"


def _iprange(draw, place, proto) -> str:
    which = draw(st.sampled_from(["--src-range", "--dst-range"]))
    lo, hi = draw(st.sampled_from([("10.0.0.1", "10.0.0.9"), ("192.168.0.1", "192.168.0.60"),
                                   ("10.96.0.0", "10.96.255.255")]))
    return f"{_neg(draw)}{which} {lo}-{hi}"


def _length(draw, place, proto) -> str:
    a = draw(st.sampled_from([40, 60, 100, 1500]))
    if draw(st.booleans()):
        return f"{_neg(draw)}--length {a}"
    high = draw(st.sampled_from([q for q in (100, 200, 65535) if q > a]))
    return f"{_neg(draw)}--length {a}:{high}"


def _limit(draw, place, proto) -> str:
    rate = draw(st.sampled_from(["5/sec", "10/min", "1/hour", "100/sec"]))
    burst = draw(st.sampled_from(["", " --limit-burst 1", " --limit-burst 10"]))
    return f"--limit {rate}{burst}"


def _simple(*choices: str) -> Callable:
    def options(draw, place, proto) -> str:
        return draw(st.sampled_from(list(choices)))
    return options


def _negated(*choices: str) -> Callable:
    def options(draw, place, proto) -> str:
        return _neg(draw) + draw(st.sampled_from(list(choices)))
    return options


def _comment(draw, place, proto) -> str:
    return "--comment " + draw(st.sampled_from(
        ["svc", '"allow ssh"', '"kube-system/kube-dns:dns"', "c1"]))


def _reject(draw, place, proto) -> str:
    kinds = ["icmp-port-unreachable", "icmp-host-prohibited", "icmp-net-unreachable",
             "icmp-admin-prohibited"] + (["tcp-reset"] if proto == "tcp" else [])
    return "--reject-with " + draw(st.sampled_from(kinds))


_PORTED = frozenset({"tcp", "udp", "sctp"})


def _dnat(draw, place, proto) -> str:
    to = draw(st.sampled_from(["10.0.0.5", "10.0.0.6", "192.168.0.50", "10.0.0.5-10.0.0.6"]))
    if proto in _PORTED and draw(st.booleans()):
        to += ":" + draw(st.sampled_from(["8080", "80", "8080-8090"]))
    return f"--to-destination {to}"


def _snat(draw, place, proto) -> str:
    to = draw(st.sampled_from(["192.168.0.2", "10.0.0.1", "192.168.0.2-192.168.0.3"]))
    if proto in _PORTED and draw(st.booleans()):
        to += ":" + draw(st.sampled_from(["1024-65535", "40000"]))
    extra = draw(st.sampled_from(["", " --random", " --random-fully"]))
    return f"--to-source {to}{extra}"


def _masquerade(draw, place, proto) -> str:
    parts = []
    if proto in _PORTED and draw(st.booleans()):
        parts.append("--to-ports " + draw(st.sampled_from(["1024-65535", "40000"])))
    parts.append(draw(st.sampled_from(["", "--random", "--random-fully"])))
    return " ".join(p for p in parts if p)


def _redirect(draw, place, proto) -> str:
    if proto in _PORTED and draw(st.booleans()):
        return "--to-ports " + draw(st.sampled_from(["8080", "15001", "8080-8090"]))
    return ""


def _mark_target(draw, place, proto) -> str:
    value = draw(st.sampled_from(["0x1", "0x2", "0x4000", "0x0"]))
    mask = draw(st.sampled_from(["0xffffffff", "0x4000", "0xff"]))
    return f"--set-xmark {value}/{mask}"


def _connmark_target(draw, place, proto) -> str:
    return draw(st.sampled_from([
        "--save-mark --nfmask 0xffffffff --ctmask 0xffffffff",
        "--restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
        "--set-xmark 0x1/0xffffffff", "--set-xmark 0x4000/0x4000"]))


def _recent(draw, place, proto) -> str:
    action = draw(st.sampled_from(["--rcheck --seconds 60", "--set", "--update --seconds 30 "
                                   "--hitcount 2", "--remove"]))
    side = draw(st.sampled_from(["--rsource", "--rdest"]))
    return (f"{_neg(draw)}{action} --name {draw(st.sampled_from(['r1', 'r2']))} "
            f"--mask 255.255.255.255 {side}")


def _string(draw, place, proto) -> str:
    pattern = draw(st.sampled_from(['--string "GET"', '--string "HTTP/1.1"',
                                    '--hex-string "|00|"']))
    where = draw(st.sampled_from(["--algo bm", "--algo kmp --from 20 --to 200"]))
    return f"{_neg(draw)}{pattern} {where}"


def _ecn(draw, place, proto) -> str:
    choices = ["--ecn-ip-ect 1", "--ecn-ip-ect 2"]
    if proto == "tcp":
        choices += ["--ecn-tcp-cwr", "--ecn-tcp-ece"]
    return _neg(draw) + draw(st.sampled_from(choices))


def _hashlimit(draw, place, proto) -> str:
    # one name per configuration: rules naming the same table with different settings are
    # a trap this strategy does not set
    return draw(st.sampled_from([
        "--hashlimit-upto 5/sec --hashlimit-burst 5 --hashlimit-name hl-upto",
        "--hashlimit-above 10/sec --hashlimit-burst 5 --hashlimit-mode srcip "
        "--hashlimit-name hl-above"]))


def _connlimit(draw, place, proto) -> str:
    return draw(st.sampled_from(["--connlimit-above 2 --connlimit-mask 32 --connlimit-saddr",
                                 "--connlimit-upto 5 --connlimit-mask 24 --connlimit-daddr"]))


def _time(draw, place, proto) -> str:
    return draw(st.sampled_from([
        "--timestart 09:00:00 --timestop 17:00:00 --datestop 2038-01-19T03:14:07",
        "--weekdays Mon,Tue --datestop 2038-01-19T03:14:07"]))


_M, _T = "match", "target"
_PRE, _IN, _FWD, _OUT, _POST = "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"
_F = frozenset

_CATALOG: tuple[_Ext, ...] = (
    # matches
    _Ext("comment", _M, _comment),
    _Ext("tcp", _M, _tcp, protos=_F({"tcp"})),
    _Ext("udp", _M, _ports, protos=_F({"udp"})),
    _Ext("sctp", _M, _ports, protos=_F({"sctp"})),
    _Ext("icmp", _M, _icmp, protos=_F({"icmp"})),
    _Ext("multiport", _M, _multiport, protos=_PORTED),
    _Ext("mark", _M, _mark),
    _Ext("connmark", _M, _mark),
    _Ext("conntrack", _M, _conntrack),
    _Ext("state", _M, _state),
    _Ext("statistic", _M, _statistic),
    _Ext("addrtype", _M, _addrtype),
    _Ext("iprange", _M, _iprange),
    _Ext("length", _M, _length),
    _Ext("limit", _M, _limit),
    _Ext("pkttype", _M, _negated("--pkt-type unicast", "--pkt-type broadcast",
                                  "--pkt-type multicast")),
    _Ext("ttl", _M, _simple("--ttl-eq 64", "--ttl-gt 5", "--ttl-lt 2")),
    _Ext("tos", _M, _negated("--tos 0x10/0xff", "--tos 0x00/0x3f")),
    _Ext("dscp", _M, _negated("--dscp 0x2e", "--dscp 0x00")),
    _Ext("mac", _M, _negated("--mac-source 00:11:22:33:44:55"), hooks=_F({_PRE, _IN, _FWD})),
    _Ext("owner", _M, _negated("--uid-owner 0", "--gid-owner 0"), hooks=_F({_OUT, _POST})),
    _Ext("helper", _M, _negated("--helper ftp")),
    _Ext("quota", _M, _simple("--quota 1000", "--quota 100000")),
    _Ext("tcpmss", _M, _negated("--mss 1000:1500", "--mss 536"), protos=_F({"tcp"})),
    _Ext("cpu", _M, _negated("--cpu 0", "--cpu 1")),
    _Ext("rpfilter", _M, _simple("--loose", ""), tables=_F({"mangle", "raw"}),
         hooks=_F({_PRE})),
    _Ext("recent", _M, _recent),
    _Ext("string", _M, _string),
    _Ext("ecn", _M, _ecn),
    _Ext("u32", _M, _negated('--u32 "0x6&0xff=0x6"', '--u32 "0x0>>0x10&0xffff=0x0:0x5dc"',
                             '--u32 "0xc=0xc0a80032"')),
    _Ext("hashlimit", _M, _hashlimit),
    _Ext("connlimit", _M, _connlimit),
    _Ext("time", _M, _time),
    # targets
    _Ext("REJECT", _T, _reject, tables=_F({"filter"}), hooks=_F({_IN, _FWD, _OUT})),
    _Ext("DNAT", _T, _dnat, tables=_F({"nat"}), hooks=_F({_PRE, _OUT})),
    _Ext("SNAT", _T, _snat, tables=_F({"nat"}), hooks=_F({_POST, _IN})),
    _Ext("MASQUERADE", _T, _masquerade, tables=_F({"nat"}), hooks=_F({_POST})),
    _Ext("REDIRECT", _T, _redirect, tables=_F({"nat"}), hooks=_F({_PRE, _OUT})),
    _Ext("NETMAP", _T, _simple("--to 10.1.0.0/24", "--to 10.2.3.4/32"), tables=_F({"nat"})),
    _Ext("MARK", _T, _mark_target),
    _Ext("CONNMARK", _T, _connmark_target),
    _Ext("LOG", _T, _simple('--log-prefix "drop: "', "--log-level 6", "")),
    _Ext("NFLOG", _T, _simple("--nflog-group 2", "--nflog-prefix nf1")),
    _Ext("CT", _T, _simple("--notrack", "--zone 5"), tables=_F({"raw"}),
         hooks=_F({_PRE, _OUT})),
    _Ext("NOTRACK", _T, _simple(""), tables=_F({"raw"}), hooks=_F({_PRE, _OUT})),
    _Ext("TOS", _T, _simple("--set-tos 0x10/0xff"), tables=_F({"mangle"})),
    _Ext("TTL", _T, _simple("--ttl-set 64", "--ttl-dec 1"), tables=_F({"mangle"})),
    _Ext("DSCP", _T, _simple("--set-dscp 0x2e", "--set-dscp 0x00"), tables=_F({"mangle"})),
    _Ext("CLASSIFY", _T, _simple("--set-class 0001:0002"), hooks=_F({_FWD, _OUT, _POST})),
)
_BY_NAME = {e.name: e for e in _CATALOG}


#: Catalog extensions whose evaluation can raise NotEvaluable, left out by default:
#: ``-m cpu`` (which CPU handles the packet is unknown offline), ``-m connlimit`` (whether
#: a connection it counted is still in the kernel's table), ``-m time`` (needs the packet's
#: time: ``Node.trace(..., now=...)``).
NOT_EVALUATED = ("cpu", "connlimit", "time")


def extension_names(kind: str | None = None, evaluated: bool = True) -> tuple[str, ...]:
    """The names of the matches (``kind="match"``) and targets (``"target"``) the rule
    strategies can write (both when None); pass a subset as ``extensions=``. With
    ``evaluated=True`` (the default, and what ``extensions=None`` means) only those nfemu
    can trace a packet through; ``evaluated=False`` adds :data:`NOT_EVALUATED` (for tests of
    loading and printing). The standard verdicts (ACCEPT, DROP, RETURN) and jumps are always
    available."""
    return tuple(e.name for e in _CATALOG if (kind is None or e.kind == kind)
                 and not (evaluated and e.name in NOT_EVALUATED))


def _catalog(extensions) -> tuple[_Ext, ...]:
    if extensions is None:
        extensions = extension_names()
    unknown = set(extensions) - set(_BY_NAME)
    if unknown:
        raise ValueError(f"unknown extensions {sorted(unknown)}; known: "
                         f"{extension_names(evaluated=False)}")
    return tuple(e for e in _CATALOG if e.name in set(extensions))


# ---- rules ----------------------------------------------------------------------------------

def _address(draw) -> str:
    text = draw(st.sampled_from(ADDRESSES))
    plen = draw(st.sampled_from(_PREFIXES))
    return str(ipaddress.ip_network(f"{text}/{plen}", strict=False))


def _rule_text(draw, place: _Place, exts: tuple[_Ext, ...], callees: list[str],
               max_matches: int) -> str:
    """One ``-A`` line valid at ``place``: jumps only to ``callees``."""
    parts = [f"-A {place.chain}"]
    for flag in ("-s", "-d"):
        if _sometimes(draw, 3):
            parts.append(f"{_neg(draw)}{flag} {_address(draw)}")
    # -i is refused in OUTPUT/POSTROUTING, -o in PREROUTING/INPUT (iptables' own check)
    if not (place.builtin and place.chain in (_OUT, _POST)) and _sometimes(draw, 4):
        parts.append(f"{_neg(draw)}-i {draw(st.sampled_from(_IFACES))}")
    if not (place.builtin and place.chain in (_PRE, _IN)) and _sometimes(draw, 4):
        parts.append(f"{_neg(draw)}-o {draw(st.sampled_from(_IFACES))}")
    proto = draw(st.sampled_from([None, "tcp", "udp", "icmp", "sctp"]))
    if proto is not None:
        if _sometimes(draw, 5):
            parts.append(f"! -p {proto}")
            proto = None          # an inverted protocol satisfies no extension's need
        else:
            parts.append(f"-p {proto}")
    matches = [e for e in exts if e.kind == _M and e.fits(place, proto)]
    if matches and max_matches:
        for ext in draw(st.lists(st.sampled_from(matches), max_size=max_matches,
                                 unique_by=lambda e: e.name)):
            opts = ext.options(draw, place, proto)
            parts.append(f"-m {ext.name} {opts}".rstrip())
    targets: list = [None, "ACCEPT", "DROP", "RETURN"]
    if place.table == "nat":
        targets.remove("DROP")      # iptables: the nat table is not intended for filtering
    targets += [e for e in exts if e.kind == _T and e.fits(place, proto)]
    if callees:
        # last, so that losing the user chains while shrinking moves no other choice
        targets += ["-j", "-g"]
    target = draw(st.sampled_from(targets[1:] + targets[:1]))   # shrinks to ACCEPT
    if isinstance(target, _Ext):
        parts.append(f"-j {target.name} {target.options(draw, place, proto)}".rstrip())
    elif target in ("-j", "-g"):
        parts.append(f"{target} {draw(st.sampled_from(callees))}")
    elif target is not None:
        parts.append(f"-j {target}")
    return " ".join(parts)


def _check_jumps(table: str, chain: str, jump_to) -> None:
    bad = [c for c in jump_to if c == chain or c in BUILTIN_CHAINS[table]]
    if bad:
        raise ValueError(f"jump_to: {chain} cannot jump to {', '.join(bad)} (a built-in "
                         "chain, or itself: a loop the kernel refuses)")


def _hooks_for(table: str, chain: str, hooks) -> frozenset:
    if hooks is not None:
        return frozenset(hooks)
    if chain in BUILTIN_CHAINS[table]:
        return frozenset({chain})
    return frozenset(BUILTIN_CHAINS[table])   # a user chain: valid from any hook


def _check_table(table: str) -> None:
    if table not in BUILTIN_CHAINS:
        raise ValueError(f"unknown table {table!r}; tables are {', '.join(BUILTIN_CHAINS)}")


@st.composite
def rules(draw, table: str = "filter", chain: str = "INPUT", *, extensions=None,
          jump_to=(), hooks=None, max_matches: int = 2, as_ir: bool = False):
    """One rule for ``chain`` of ``table``, as an ``-A`` line of iptables-save (or, with
    ``as_ir=True``, the :class:`nfemu.ir.Rule` nfemu reads from it).

    Generic tests (-s/-d/-i/-o, sometimes inverted), a protocol, up to ``max_matches``
    matches and a target, each allowed where the rule is: ``hooks`` are the built-in chains
    that reach it (default: the chain itself when built in, every hook of the table for a
    user chain). ``extensions`` whitelists match/target names (default: every one nfemu
    evaluates, :func:`extension_names`); ``jump_to`` names user chains the rule may jump
    or go to.

        >>> from hypothesis import given
        >>> @given(rules("nat", "PREROUTING", extensions=["tcp", "DNAT"]))
        ... def test_rule(line):
        ...     assert line.startswith("-A PREROUTING")
        >>> test_rule()
    """
    _check_table(table)
    _check_jumps(table, chain, jump_to)
    place = _Place(table, chain, _hooks_for(table, chain, hooks))
    text = _rule_text(draw, place, _catalog(extensions), list(jump_to), max_matches)
    if not as_ir:
        return text
    users = sorted(set(jump_to) | ({chain} if not place.builtin else set()))
    dump = (f"*{table}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in BUILTIN_CHAINS[table])
            + "".join(f":{c} - [0:0]\n" for c in users) + text + "\nCOMMIT\n")
    return loads(dump).table(table).chain(chain).rules[0]


@st.composite
def chains(draw, table: str = "filter", name: str = "INPUT", *, extensions=None,
           jump_to=(), hooks=None, max_rules: int = 4, max_matches: int = 2,
           as_ir: bool = False):
    """The rules of one chain: a list of ``-A`` lines (``as_ir=True``: an
    :class:`nfemu.ir.Chain`, with a drawn policy when built in), up to ``max_rules`` of
    them, each from :func:`rules` with the same options.

        >>> from hypothesis import given
        >>> @given(chains("filter", "FORWARD", max_rules=3))
        ... def test_chain(lines):
        ...     assert len(lines) <= 3
        >>> test_chain()
    """
    _check_table(table)
    _check_jumps(table, name, jump_to)
    place = _Place(table, name, _hooks_for(table, name, hooks))
    exts = _catalog(extensions)
    lines = draw(st.lists(_rule_line(place, exts, list(jump_to), max_matches),
                          max_size=max_rules))
    if not as_ir:
        return lines
    policy = draw(_policy(table)) if place.builtin else "-"
    users = sorted(set(jump_to) | ({name} if not place.builtin else set()))
    dump = (f"*{table}\n"
            + "".join(f":{c} {policy if c == name else 'ACCEPT'} [0:0]\n"
                      for c in BUILTIN_CHAINS[table])
            + "".join(f":{c} - [0:0]\n" for c in users) + "".join(l + "\n" for l in lines)
            + "COMMIT\n")
    return loads(dump).table(table).chain(name)


def _policy(table: str) -> SearchStrategy:
    # (a DROP policy in nat loads: the kernel and iptables refuse only -j DROP rules there)
    return st.sampled_from(["ACCEPT", "DROP"])


def _user_names(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@st.composite
def _rule_line(draw, place: _Place, exts, callees: list[str], max_matches: int) -> str:
    return _rule_text(draw, place, exts, callees, max_matches)


@st.composite
def _table(draw, names, exts, max_user_chains, max_rules, max_matches, prefix):
    """(name, iptables-save text of one table). User chains are drawn in creation order,
    after the built-in chains: every caller of ``U<j>`` is drawn before ``U<j>``, so the
    hooks reaching it are known when its rules are drawn."""
    table = draw(st.sampled_from(names))
    builtins = BUILTIN_CHAINS[table]
    users = _user_names(draw(st.integers(0, max_user_chains)), prefix)
    reach: dict[str, set] = {u: set() for u in users}
    header = [f"*{table}"] + [f":{c} {draw(_policy(table))} [0:0]" for c in builtins]
    header += [f":{u} - [0:0]" for u in sorted(users, key=lambda s: s.encode())]
    body: dict[str, list[str]] = {}
    for chain in list(builtins) + users:
        if chain in builtins:
            hooks, callees = frozenset({chain}), users
        else:
            # nothing reaches it: draw rules valid from every hook (the kernel checks an
            # unreferenced chain against none, so this is the safe side)
            hooks = frozenset(reach[chain]) or frozenset(builtins)
            callees = users[users.index(chain) + 1:]
        lines = draw(st.lists(_rule_line(_Place(table, chain, hooks), exts, callees,
                                         max_matches), max_size=max_rules))
        for line in lines:
            words = line.split()
            for flag in ("-j", "-g"):
                if flag in words and words[words.index(flag) + 1] in reach:
                    reach[words[words.index(flag) + 1]] |= hooks
        body[chain] = lines
    order = list(builtins) + sorted(users, key=lambda s: s.encode())
    return table, "\n".join(header + [l for c in order for l in body[c]] + ["COMMIT"]) + "\n"


@st.composite
def rulesets(draw, *, tables=("filter", "nat", "mangle", "raw"), extensions=None,
             max_user_chains: int = 2, max_rules: int = 4, max_matches: int = 2,
             chain_prefix: str = "U", as_ir: bool = False):
    """A whole ruleset as iptables-save text (``as_ir=True``: the
    :class:`nfemu.ir.Ruleset` ``nfemu.loads`` reads from it) that ``nfemu check`` and the
    kernel's ``iptables-restore`` accept.

    One or more of ``tables`` (in iptables-save's order), each with all its built-in
    chains (policies drawn), up to ``max_user_chains`` user chains
    (``U0``, ``U1``, ... by default) and up to ``max_rules`` rules per chain. Built-in
    chains may jump or go to any user chain, ``U<i>`` only to ``U<j>`` with j > i, so there
    is never a loop; every match and target is allowed in its table and in every hook that
    reaches it. ``extensions`` whitelists match/target names (default: every one nfemu
    evaluates; ``extension_names(evaluated=False)`` for all the kernel loads).

        >>> import nfemu
        >>> from hypothesis import given
        >>> from nfemu.parse import load_report
        >>> @given(rulesets(tables=["filter", "nat"], max_rules=3))
        ... def test_loads(text):
        ...     assert not load_report(text).errors
        >>> test_loads()
    """
    for t in tables:
        _check_table(t)
    exts = _catalog(extensions)
    # one list element per table (its name and its content in one span), so that the
    # shrinker drops whole tables
    drawn = draw(st.lists(_table(list(tables), exts, max_user_chains, max_rules, max_matches,
                                 chain_prefix),
                          min_size=1, max_size=len(set(tables)), unique_by=lambda t: t[0]))
    out = [text for _, text in sorted(drawn, key=lambda t: TABLE_SAVE_ORDER.index(t[0]))]
    text = "".join(out)
    if not as_ir:
        return text
    return loads(text)


# ---- kube clusters --------------------------------------------------------------------------

def kube_clusters(**kw):
    """Kubernetes clusters (services of every type, endpoints, policies, affinity): defined
    in :mod:`nfemu.kube.strategies`, re-exported here (imported when first called).

        >>> clusters = kube_clusters()   # doctest: +SKIP
    """
    from .kube.strategies import kube_clusters as k
    return k(**kw)
