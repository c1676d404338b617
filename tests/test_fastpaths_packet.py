"""The per-packet fast paths of Node.send must give exactly what the general code gives.

Each fast path is checked against the general path it short-cuts, on random inputs:

- ``Packet.from_bytes`` fills the fields of the usual datagram (IPv4 without options, not a
  fragment, whole TCP header or UDP with length and checksum) directly; the general path
  is ``Packet(**_parse_ip(data), ...)`` (the dataclass __init__ and __post_init__).
- CtState's operators return the enum's own objects without EnumType.__call__; the
  general path is ``enum.Flag``'s operator.
- ``Host.route_lookup`` keeps its answers and walks prepared tables; the general path is
  a fresh Host (nothing kept) and ``Route.contains`` over the routes.
- ``ConntrackTable.track`` looks the packet up with a plain-tuple key and sets the state
  in plain ints; the general path is its documented decomposition, ``lookup`` + ``new`` +
  ``packet``.
"""
from __future__ import annotations

import enum
import struct

import pytest
from hypothesis import given, settings, strategies as st

from nfemu import host as host_mod
from nfemu.conntrack import REPEAT, ConntrackTable, CtTuple, TcpState
from nfemu.ext.conntrack import CtState, CtStatus, ctstate
from nfemu.host import Host, Route, RouteType, _TYPE_ERROR, ip4
from nfemu.packet import (ICMP, ICMP_ERRORS, SCTP, TCP, UDP, Packet, PacketError, PacketType,
                          _fast_ipv4, _parse_ip)

# ---- Packet.from_bytes ------------------------------------------------------------------------


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@st.composite
def datagrams(draw) -> bytes:
    """IPv4 datagrams, most of them of the fast path's shape, the others one step off it
    (options, fragments, short or padded buffers, odd lengths, other protocols, zero UDP
    length or checksum, bad data offsets, another version)."""
    proto = draw(st.sampled_from([TCP, TCP, TCP, UDP, UDP, ICMP, SCTP, 47]))
    ihl = draw(st.sampled_from([5, 5, 5, 5, 5, 6, 15, 4]))
    ip_opts = draw(st.binary(min_size=(ihl - 5) * 4, max_size=(ihl - 5) * 4)) \
        if ihl > 5 else b""
    payload = draw(st.binary(max_size=48))
    if proto == TCP:
        doff = draw(st.sampled_from([5, 5, 5, 6, 7, 15, 4, 0]))
        opts = draw(st.binary(min_size=max(doff - 5, 0) * 4, max_size=max(doff - 5, 0) * 4))
        l4 = struct.pack("!HHIIBBHHH", draw(st.integers(0, 0xFFFF)),
                         draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFFFFFF)),
                         draw(st.integers(0, 0xFFFFFFFF)),
                         doff << 4 | draw(st.integers(0, 15)), draw(st.integers(0, 255)),
                         draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)),
                         draw(st.integers(0, 0xFFFF))) + opts + payload
    elif proto == UDP:
        ulen = draw(st.sampled_from([8 + len(payload)] * 3 + [0, 8, 0xFFFF]))
        csum = draw(st.sampled_from([0x1234, 0xFFFF, 0]))
        l4 = struct.pack("!HHHH", draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)),
                         ulen, csum) + payload
    else:
        l4 = draw(st.binary(max_size=40)) + payload
    total = ihl * 4 + len(l4)
    length = draw(st.sampled_from([total] * 4 + [0, 20, 27, 39, 0xFFFF])
                  | st.integers(0, total + 8))
    frag = draw(st.sampled_from([0, 0, 0x4000, 0x4000, 0x8000, 0x2000, 0x0001, 0x6001]))
    version = draw(st.sampled_from([4] * 9 + [6, 5]))
    hdr = bytearray(struct.pack("!BBHHHBBHII", version << 4 | ihl, draw(st.integers(0, 255)),
                                length & 0xFFFF, draw(st.integers(0, 0xFFFF)), frag,
                                draw(st.integers(0, 255)), proto, 0,
                                draw(st.integers(0, 0xFFFFFFFF)),
                                draw(st.integers(0, 0xFFFFFFFF))) + ip_opts)
    struct.pack_into("!H", hdr, 10, _csum(bytes(hdr)))
    data = bytes(hdr) + l4
    change = draw(st.sampled_from(["none"] * 4 + ["cut", "pad"]))
    if change == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif change == "pad":
        data += draw(st.binary(min_size=1, max_size=8))
    return data


metas = st.fixed_dictionaries({
    "iif": st.sampled_from(["", "eth0", "lo"]), "oif": st.sampled_from(["", "eth1"]),
    "mark": st.sampled_from([0, 0x4000, 0xFFFFFFFF]),
    "in_mac": st.none() | st.integers(0, (1 << 48) - 1),
    "out_mac": st.none() | st.integers(0, (1 << 48) - 1),
    "pkttype": st.sampled_from(list(PacketType))})


def _general(data: bytes, meta: dict):
    """Packet.from_bytes as it was before the fast path: the dataclass constructor."""
    try:
        return Packet(**_parse_ip(bytes(data)), **meta)
    except PacketError as exc:
        return exc


def _same_packet(fast: Packet, slow: Packet) -> None:
    assert type(fast) is type(slow) is Packet
    # every field, in the same order, with values of the same types
    assert list(fast.__dict__.items()) == list(slow.__dict__.items())
    assert [type(v) for v in fast.__dict__.values()] == [type(v) for v in slow.__dict__.values()]
    assert fast == slow and hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert fast.to_bytes() == slow.to_bytes()
    assert fast.describe() == slow.describe()


@settings(max_examples=800)
@given(datagrams(), metas)
def test_from_bytes_is_the_general_constructor(data, meta):
    slow = _general(data, meta)
    fast = _fast_ipv4(data, meta["iif"], meta["oif"], meta["mark"], meta["in_mac"],
                      meta["out_mac"], meta["pkttype"])
    if fast is not None:
        assert isinstance(slow, Packet), slow
        _same_packet(fast, slow)
    try:
        got = Packet.from_bytes(data, **meta)
    except PacketError as exc:
        assert isinstance(slow, PacketError) and str(exc) == str(slow)
        return
    assert isinstance(slow, Packet)
    _same_packet(got, slow)
    # a NAT rewrite of either is the same packet too
    assert got.replace(src=1, sport=2, iif="x") == slow.replace(src=1, sport=2, iif="x")


def _tcp_bytes(src, dst, sport, dport, flags, options=b"", payload=b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 7, 9, (5 + len(options) // 4) << 4, flags,
                      1000, 0, 0) + options + payload
    return struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, TCP, 0, src,
                       dst) + tcp


@pytest.mark.parametrize("data", [
    _tcp_bytes(ip4("192.168.0.9"), ip4("10.96.0.10"), 40000, 80, 0x02,
               struct.pack("!BBH", 2, 4, 1460)),
    _tcp_bytes(1, 2, 3, 4, 0x18, payload=b"GET / HTTP/1.1\r\n"),
    struct.pack("!BBHHHBBHIIHHHH", 0x45, 0, 29, 0, 0, 64, UDP, 0, 1, 2, 53, 53, 9, 0xABCD)
    + b"x",
])
def test_usual_datagrams_take_the_fast_path(data):
    """The shapes Node.send meets most (a SYN with MSS, a data segment, a UDP datagram)
    are read by the fast path, so the property above is not about the general path only."""
    meta = dict(iif="eth0", oif="", mark=0, in_mac=None, out_mac=None,
                pkttype=PacketType.HOST)
    fast = _fast_ipv4(data, *meta.values())
    assert fast is not None
    _same_packet(fast, _general(data, meta))


def test_from_bytes_of_a_subclass_builds_the_subclass():
    class Mine(Packet):
        pass
    got = Mine.from_bytes(_tcp_bytes(1, 2, 3, 4, 0x10))
    assert type(got) is Mine
    assert got.__dict__ == Packet.from_bytes(_tcp_bytes(1, 2, 3, 4, 0x10)).__dict__


# ---- CtState operators -------------------------------------------------------------------------

states = (st.sampled_from(list(CtState)) | st.integers(0, 511).map(CtState))
operands = (states | st.integers(-(1 << 40), 1 << 40) | st.booleans()
            | st.sampled_from(list(CtStatus)) | st.sampled_from([1.5, "x", None]))


@settings(max_examples=1000)
@given(states, operands)
def test_ctstate_operators_are_flags_operators(a, b):
    for ours, theirs in ((CtState.__and__, enum.Flag.__and__), (CtState.__or__, enum.Flag.__or__),
                         (CtState.__xor__, enum.Flag.__xor__),
                         (CtState.__rand__, enum.Flag.__and__),
                         (CtState.__ror__, enum.Flag.__or__),
                         (CtState.__rxor__, enum.Flag.__xor__)):
        want = theirs(a, b)
        got = ours(a, b)
        assert type(got) is type(want)
        if want is NotImplemented:
            assert got is NotImplemented
            continue
        assert got == want
        if isinstance(want, CtState):
            assert got is want          # the enum's own member or pseudo-member
    if type(b) is int:
        assert type(b & a) is CtState and int(b & a) == int(b) & int(a)
        assert ctstate(int(a)) is CtState(int(a))


# ---- routing -----------------------------------------------------------------------------------

_ADDRS = ["10.0.0.2/24", "10.244.0.1/16", "192.168.1.1/30", "10.0.0.77/24", "127.0.0.5/8",
          "172.16.5.5/32", "10.244.3.3/24"]
_PROBES = ["10.0.0.1", "10.0.0.2", "10.0.0.255", "10.0.0.0", "10.244.7.9", "10.244.0.1",
           "10.244.255.255", "192.168.1.2", "192.168.1.3", "192.168.1.0", "127.0.0.1",
           "127.9.9.9", "8.8.8.8", "0.0.0.0", "255.255.255.255", "224.0.0.1", "239.1.2.3",
           "172.16.5.5", "10.244.3.200", "10.244.3.255", "0.1.2.3"]


@st.composite
def hosts(draw):
    ifaces = []
    for i in range(draw(st.integers(1, 3))):
        addrs = draw(st.lists(st.sampled_from(_ADDRS), min_size=1, max_size=3, unique=True))
        ifaces.append(f"eth{i}={','.join(addrs)}")
    gateway = draw(st.sampled_from([None, "10.0.0.1", "10.244.0.2", "192.168.1.2"]))
    kw = dict(ip_forward=draw(st.booleans()), route_localnet=draw(st.booleans()))
    try:
        return Host.from_options(ifaces, default_gateway=gateway, **kw), (ifaces, gateway, kw)
    except Exception:       # a gateway on no subnet: the same host without it
        return Host.from_options(ifaces, **kw), (ifaces, None, kw)


def _reference_table_lookup(routes, dst, oif):
    """fib_table_lookup() over Route objects with Route.contains (the code before the
    tables were prepared)."""
    for r in routes:
        if not r.contains(dst):
            continue
        err = _TYPE_ERROR.get(r.type)
        if err:
            return err, r
        if oif is not None and r.dev != oif:
            continue
        return None, r
    return "EAGAIN", None


addrs = st.sampled_from(_PROBES).map(ip4) | st.integers(0, 0xFFFFFFFF)
queries = st.tuples(addrs, st.sampled_from([0, ip4("10.0.0.2"), ip4("10.0.0.9"),
                                            ip4("127.0.0.1"), ip4("224.0.0.5")]) | addrs,
                    st.sampled_from([0, 0x4000]))
# every question is asked with each of these (iif, oif): answers differ by them
_DEVICES = [(None, None), ("eth0", None), ("eth1", None), ("lo", None), ("nope", None),
            (None, "eth0"), (None, "eth2"), (None, "lo"), (None, "nope")]


@settings(max_examples=200)
@given(hosts(), st.lists(queries, min_size=1, max_size=12))
def test_route_lookup_keeps_the_answers_it_would_give(made, qs):
    host, (ifaces, gateway, kw) = made
    fresh_host = Host.from_options(ifaces, default_gateway=gateway, **kw)
    for dst, src, mark in qs:
        for iif, oif in _DEVICES:
            first = host.route_lookup(dst, src, mark, iif=iif, oif=oif)
            again = host.route_lookup(dst, src, mark, iif=iif, oif=oif)
            # the same question to a host that kept nothing yet
            fresh_host._fib_cache.clear()
            fresh = fresh_host.route_lookup(dst, src, mark, iif=iif, oif=oif)
            assert first == fresh and again is first
        # the prepared tables answer what Route.contains over the routes answers
        for table in host._fib:
            if table is None:
                continue
            routes = [entry[-1] for entry in table]
            for o in ("eth0", "eth1", "lo", None):
                assert host._table_lookup(table, dst, o) == \
                    _reference_table_lookup(routes, dst, o)


def test_route_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(host_mod, "_FIB_CACHE_MAX", 4)
    host = Host.from_options(["eth0=10.0.0.2/24"], default_gateway="10.0.0.1")
    answers = [host.route_lookup(ip4("8.8.8.0") + i) for i in range(10)]
    assert len(host._fib_cache) <= 4
    assert all(a.dev == "eth0" and a.gateway == ip4("10.0.0.1") for a in answers)
    assert Host.from_options(["eth0=10.0.0.2/24"], default_gateway="10.0.0.1") == host


def test_a_route_of_an_error_type_still_answers_with_its_errno():
    host = Host(routes=(Route("main", RouteType.UNREACHABLE, ip4("10.9.0.0"), 16),
                        Route("main", RouteType.UNICAST, 0, 0, "eth0", ip4("10.0.0.1"))),
                interfaces=Host.from_options(["eth0=10.0.0.2/24"]).interfaces)
    r = host.route_lookup(ip4("10.9.1.1"))
    assert (r.ok, r.error, r.type) == (False, "EHOSTUNREACH", RouteType.UNREACHABLE)
    assert host.route_lookup(ip4("10.9.1.1")) is r


# ---- conntrack -----------------------------------------------------------------------------------

_PEERS = [ip4("192.168.0.9"), ip4("10.244.1.5"), ip4("10.0.0.2")]


@st.composite
def ct_packets(draw):
    src, dst = draw(st.sampled_from([(0, 1), (1, 0), (0, 2), (2, 0)]))
    src, dst = _PEERS[src], _PEERS[dst]
    proto = draw(st.sampled_from([TCP, TCP, TCP, UDP, ICMP, 47]))
    if proto == TCP:
        ports = draw(st.sampled_from([(40000, 80), (80, 40000), (40001, 80)]))
        return Packet(src=src, dst=dst, proto=TCP, sport=ports[0], dport=ports[1],
                      tcp_flags=draw(st.sampled_from([0x02, 0x12, 0x10, 0x11, 0x04, 0x14,
                                                      0x18, 0x01, 0x29, 0xC2, 0x00])),
                      tcp_seq=draw(st.sampled_from([1, 2, 1000, 0xFFFFFFFF])),
                      tcp_ack=draw(st.sampled_from([0, 1, 2, 1001])),
                      tcp_window=draw(st.sampled_from([0, 512])),
                      payload=draw(st.sampled_from([b"", b"data"])))
    if proto == UDP:
        ports = draw(st.sampled_from([(5000, 53), (53, 5000)]))
        return Packet(src=src, dst=dst, proto=UDP, sport=ports[0], dport=ports[1],
                      payload=b"q")
    if proto == ICMP:
        itype = draw(st.sampled_from([8, 0, 13, 3, 11, 5, 30]))
        inner = None
        if itype in ICMP_ERRORS:
            inner = Packet(src=dst, dst=src, proto=TCP, sport=40000, dport=80, tcp_flags=0x02)
        return Packet(src=src, dst=dst, proto=ICMP, icmp_type=itype,
                      icmp_rest=draw(st.sampled_from([1, 2])) << 16, inner=inner)
    return Packet(src=src, dst=dst, proto=47, payload=b"gre")


def _reference_track(table: ConntrackTable, pkt, now, zone):
    """track() as its docstring composes it: lookup, else new, then packet (again after a
    REPEAT); ICMP errors through related()."""
    from nfemu.conntrack import _NR_ICMP_TYPES
    if pkt.family != 4 or pkt.frag:
        return None, CtState.INVALID
    if pkt.proto == ICMP:
        if pkt.icmp_type > _NR_ICMP_TYPES:
            return None, CtState.INVALID
        if pkt.icmp_type in ICMP_ERRORS:
            return table.related(pkt, zone, now)
    for _ in range(2):
        entry, reply = table.lookup(pkt, zone, now)
        if entry is None:
            entry = table.new(pkt, now, zone)
            if entry is None:
                return None, CtState.INVALID
            reply = False
        ctinfo = table.packet(entry, pkt, reply, now)
        if ctinfo is REPEAT:
            continue
        if ctinfo == CtState.INVALID:
            return None, CtState.INVALID
        return entry, ctinfo
    return None, CtState.INVALID


def _view(table: ConntrackTable):
    return [(e.orig_tuple, e.repl_tuple, e.state, type(e.state), e.status, e.tcp_state,
             type(e.tcp_state), e.deadline, e.timeout, e.expires, e.reply, e.last_index,
             e.last_dir, e.retrans, [(s.td_end, s.td_maxack, s.flags, s.seen)
                                     for s in e.tcp_seen]) for e in table.entries()]


@settings(max_examples=300)
@given(st.lists(st.tuples(ct_packets(), st.sampled_from([0.0, 0.5, 31.0, 200.0]),
                          st.sampled_from([0, 0, 3])), min_size=1, max_size=25))
def test_track_is_lookup_new_packet(steps):
    fast, slow = ConntrackTable(), ConntrackTable()
    now = 0.0
    for pkt, dt, zone in steps:
        now += dt
        a, ca = fast.track(pkt, now, zone)
        b, cb = _reference_track(slow, pkt, now, zone)
        assert (ca, type(ca)) == (cb, type(cb))
        assert (a is None) == (b is None)
        if a is not None:
            assert (a.state, type(a.state), a.reply, a.expires, a.confirmed) == \
                (b.state, type(b.state), b.reply, b.expires, b.confirmed)
            assert a.state is ctstate(int(a.state))
            assert isinstance(a.tcp_state, TcpState)
            if not a.confirmed and not a.killed:
                assert (fast.confirm(a, now) is None) == (slow.confirm(b, now) is None)
        assert _view(fast) == _view(slow)


def test_ctuple_inverse_is_a_ctuple():
    t = CtTuple(TCP, 1, 2, 3, 4)
    assert type(t.inverted()) is CtTuple and t.inverted() == CtTuple(TCP, 2, 1, 4, 3)
    assert CtTuple(ICMP, 1, 2, 7, 8 << 8).inverted() == CtTuple(ICMP, 2, 1, 7, 0)
    assert CtTuple(ICMP, 1, 2, 7, 3 << 8).inverted() is None


_C, _S = _PEERS[0], _PEERS[1]


def _segment(reply, flags, seq, ack, window=502, data=b""):
    src, dst, sport, dport = (_S, _C, 80, 40000) if reply else (_C, _S, 40000, 80)
    return Packet(src=src, dst=dst, proto=TCP, sport=sport, dport=dport, tcp_flags=flags,
                  tcp_seq=seq & 0xFFFFFFFF, tcp_ack=ack & 0xFFFFFFFF, tcp_window=window,
                  payload=data)


def _handshake(table: ConntrackTable, nat_bits: int) -> None:
    entry, _ = table.track(_segment(False, 0x02, 100, 0), 1.0)
    entry.status |= nat_bits                # as a NAT binding would have set them
    table.confirm(entry, 1.0)
    table.track(_segment(True, 0x12, 500, 101), 1.1)
    table.track(_segment(False, 0x10, 101, 501), 1.2)


segments = st.tuples(st.booleans(),
                     st.sampled_from([0x10, 0x10, 0x10, 0x18, 0x50, 0x90, 0x11, 0x14, 0x04,
                                      0x02, 0x12, 0x30]),
                     st.sampled_from([0, 1, 4, 100, -1, 1 << 31]),
                     st.sampled_from([0, 1, 4, 100, -1]),
                     st.sampled_from([502, 502, 0]),
                     st.sampled_from([b"", b"", b"abcd"]),
                     st.sampled_from([0.001, 0.001, 1.0, 400.0]),
                     st.booleans())


@settings(max_examples=300)
@given(st.sampled_from([0, 1 << 4, 1 << 5, 3 << 4]), st.lists(segments, max_size=20))
def test_the_established_fast_path_is_packet(nat_bits, segs):
    """ConntrackTable.track's fast path for an ACK of an established, assured connection
    against the general path (lookup + packet) over the same segments after a
    handshake; ``again`` resends the previous segment (retransmissions)."""
    fast, slow = ConntrackTable(), ConntrackTable()
    _handshake(fast, nat_bits)
    _handshake(slow, nat_bits)
    base = {False: 101, True: 501}
    now, last = 1.2, None
    for reply, flags, dseq, dack, window, data, dt, again in segs:
        now += dt
        if again and last is not None:
            pkt = last
        else:
            pkt = _segment(reply, flags, base[reply] + dseq, base[not reply] + dack, window,
                           data)
        last = pkt
        a, ca = fast.track(pkt, now)
        b, cb = _reference_track(slow, pkt, now, 0)
        assert (ca, type(ca), a is None) == (cb, type(cb), b is None)
        if a is not None:
            assert (a.state, type(a.state), a.reply, a.expires) == \
                (b.state, type(b.state), b.reply, b.expires)
            if not a.confirmed and not a.killed:
                assert (fast.confirm(a, now) is None) == (slow.confirm(b, now) is None)
        assert _view(fast) == _view(slow)


def test_an_established_ack_takes_the_fast_path():
    table = ConntrackTable()
    _handshake(table, 1 << 5)
    entry, _ = table.lookup(_segment(True, 0x10, 501, 101))
    pkt = _segment(True, 0x10, 501, 101, window=600)
    assert entry.tcp_state is TcpState.ESTABLISHED
    assert table._established_ack(entry, pkt, True, 2.0) is CtState.ESTABLISHED
    assert entry.state is CtState.ESTABLISHED | CtState.DNAT and entry.reply
    assert table._established_ack(entry, _segment(True, 0x11, 501, 101), True, 2.0) is None


def _reference_statebit(ct):
    """xt_conntrack's state bit as the match computed it with CtState arithmetic."""
    if ct is not None and (ct.untracked or bool(ct.state & CtState.UNTRACKED)):
        return CtState.UNTRACKED
    if ct is None or bool(ct.state & CtState.INVALID) and not ct.untracked:
        return CtState.INVALID
    return CtState(ct.state & (CtState.NEW | CtState.ESTABLISHED | CtState.RELATED))


@settings(max_examples=300)
@given(st.none() | st.tuples(st.integers(0, 511).map(CtState), st.booleans()),
       st.integers(0, 511).map(CtState), st.booleans())
def test_statebit_and_tracked_in_plain_ints(view, states, invert):
    from types import SimpleNamespace
    from nfemu.engine import CtView
    from nfemu.ext.conntrack import statebit, tracked
    from nfemu.ext.state import State
    ct = None if view is None else CtView(state=view[0], untracked=view[1])
    ev = SimpleNamespace(ct=ct)
    want = _reference_statebit(ct)
    assert statebit(ev) is want
    assert tracked(ev) is (None if want in (CtState.INVALID, CtState.UNTRACKED) else ct)
    assert State(states, invert).match(None, ev) == (bool(states & want) != invert)
