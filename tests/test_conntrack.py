"""nfemu.conntrack offline: state progression, timeouts, RELATED ICMP errors, expiry, NAT's
reply tuple, zones, clashes. Expectations come from the kernel source (nf_conntrack_core.c,
nf_conntrack_proto_{tcp,udp,icmp}.c, 6.x) and agree with what
tests/kernel/test_conntrack_vs_kernel.py saw the kernel do."""
from __future__ import annotations

import pytest

from nfemu.conntrack import (
    IPS_ASSURED,
    IPS_SEEN_REPLY,
    ConntrackTable,
    CtTuple,
    Entry,
    TcpState,
)
from nfemu.engine import CtView
from nfemu.ext.conntrack import CtState
from nfemu.host import ip4
from nfemu.packet import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, Packet
from tests.kernel.netsim import parse_conntrack

A, B, N = ip4("192.168.50.1"), ip4("10.50.0.2"), ip4("10.50.0.1")


def tcp(src, dst, sport, dport, flags, seq, ack=0, data=b"", window=64240):
    return Packet(src=src, dst=dst, proto=6, sport=sport, dport=dport, tcp_flags=flags,
                  tcp_seq=seq, tcp_ack=ack, tcp_window=window, payload=data)


def c2s(flags, seq, ack=0, data=b"", sport=40000, **kw):
    return tcp(A, B, sport, 80, flags, seq, ack, data, **kw)


def s2c(flags, seq, ack=0, data=b"", sport=40000, **kw):
    return tcp(B, A, 80, sport, flags, seq, ack, data, **kw)


def udp(src, dst, sport, dport):
    return Packet(src=src, dst=dst, proto=17, sport=sport, dport=dport, payload=b"x")


def icmp(src, dst, type_, code=0, ident=0, inner=None):
    return Packet(src=src, dst=dst, proto=1, icmp_type=type_, icmp_code=code,
                  icmp_rest=ident << 16 | 1, inner=inner)


class Flow:
    """Feeds packets through track() and confirm(), as nf_conntrack_in and the confirm
    hook would."""

    def __init__(self):
        self.t = ConntrackTable()

    def __call__(self, pkt, now, zone=0):
        entry, ctinfo = self.t.track(pkt, now, zone)
        if entry is not None and not entry.confirmed and not entry.killed:
            entry = self.t.confirm(entry, now)
        return entry, ctinfo


def handshake(f, sport=40000, c=1000, s=5000, now=0.0):
    e, i = f(c2s(TCP_SYN, c, sport=sport), now)
    assert (i, e.tcp_state, e.timeout) == (CtState.NEW, TcpState.SYN_SENT, 120)
    e2, i = f(s2c(TCP_SYN | TCP_ACK, s, c + 1, sport=sport), now + 0.1)
    assert e2 is e and i == CtState.ESTABLISHED and e.reply
    assert (e.tcp_state, e.timeout) == (TcpState.SYN_RECV, 60)
    f(c2s(TCP_ACK, c + 1, s + 1, sport=sport), now + 0.2)
    assert (e.tcp_state, e.timeout) == (TcpState.ESTABLISHED, 432000)
    return e


def test_entry_is_a_ctview():
    assert issubclass(Entry, CtView)


def test_tcp_handshake_data_and_close():
    f = Flow()
    e = handshake(f)
    assert e.status & IPS_ASSURED and e.status & IPS_SEEN_REPLY and not e.reply
    assert e.state == CtState.ESTABLISHED
    # data not yet acknowledged: nf_conntrack_tcp_timeout_unacknowledged (300 s)
    f(c2s(TCP_ACK | TCP_PSH, 1001, 5001, b"0123456789"), 1.0)
    assert e.timeout == 300
    f(s2c(TCP_ACK, 5001, 1011), 1.1)
    assert e.timeout == 432000
    f(c2s(TCP_FIN | TCP_ACK, 1011, 5001), 2.0)
    assert (e.tcp_state, e.timeout) == (TcpState.FIN_WAIT, 120)
    f(s2c(TCP_ACK, 5001, 1012), 2.1)
    assert (e.tcp_state, e.timeout) == (TcpState.CLOSE_WAIT, 60)
    f(s2c(TCP_FIN | TCP_ACK, 5001, 1012), 2.2)
    assert (e.tcp_state, e.timeout) == (TcpState.LAST_ACK, 30)
    f(c2s(TCP_ACK, 1012, 5002), 2.3)
    assert (e.tcp_state, e.timeout) == (TcpState.TIME_WAIT, 120)
    # a new SYN on it: the old entry is killed, a new connection starts (-NF_REPEAT)
    e2, i = f(c2s(TCP_SYN, 90000), 3.0)
    assert e2 is not e and i == CtState.NEW and e2.tcp_state == TcpState.SYN_SENT
    assert e.killed and f.t.entries() == [e2]


def test_tcp_rst_closes():
    f = Flow()
    e = handshake(f)
    _, i = f(c2s(TCP_RST, 1001), 1.0)         # seq == the server's last ACK
    assert i == CtState.ESTABLISHED and (e.tcp_state, e.timeout) == (TcpState.CLOSE, 10)


def test_tcp_rst_off_sequence_keeps_established():
    f = Flow()
    e = handshake(f)
    f(c2s(TCP_RST, 1500), 1.0)                # not the peer's td_maxack: challenge ACK room
    assert e.tcp_state == TcpState.ESTABLISHED and e.timeout == 10   # RST: close timeout


def test_tcp_rst_before_last_ack_is_invalid():
    f = Flow()
    e = handshake(f)
    f(s2c(TCP_ACK, 5001, 1001), 0.5)
    entry, i = f(c2s(TCP_RST, 900), 1.0)      # before(seq, td_maxack): "invalid rst"
    assert (entry, i) == (None, CtState.INVALID) and e.tcp_state == TcpState.ESTABLISHED


def test_tcp_syn_answered_by_rst_is_deleted():
    f = Flow()
    e, _ = f(c2s(TCP_SYN, 1000), 0.0)
    e2, i = f(s2c(TCP_RST | TCP_ACK, 0, 1001), 0.1)
    assert e2 is e and i == CtState.ESTABLISHED and e.reply   # the packet keeps its entry
    assert e.killed and f.t.entries() == []


def test_tcp_loose_pickup():
    f = Flow()
    e, i = f(c2s(TCP_ACK, 7000, 9000), 0.0)
    assert i == CtState.NEW and e.tcp_state == TcpState.ESTABLISHED
    assert e.timeout == 300 and not e.status & IPS_ASSURED   # unreplied: capped at 300
    f(s2c(TCP_ACK, 9000, 7000), 0.1)
    assert e.timeout == 300 and not e.status & IPS_ASSURED   # SEEN_REPLY set after it
    f(c2s(TCP_ACK, 7000, 9000), 0.2)
    assert e.timeout == 432000 and e.status & IPS_ASSURED


@pytest.mark.parametrize("flags", [TCP_SYN | TCP_FIN, TCP_FIN, 0, TCP_FIN | TCP_ACK,
                                   TCP_SYN | TCP_ACK, TCP_RST])
def test_tcp_cannot_start(flags):
    f = Flow()
    assert f(c2s(flags, 1000, 1), 0.0) == (None, CtState.INVALID)
    assert f.t.entries() == []


def test_tcp_invalid_in_state_leaves_entry():
    f = Flow()
    e, _ = f(c2s(TCP_SYN, 1000), 0.0)
    assert f(c2s(TCP_ACK, 1001, 1), 0.1) == (None, CtState.INVALID)   # sSS -> sIV
    assert e.tcp_state == TcpState.SYN_SENT and f.t.entries() == [e]


def test_tcp_retransmitted_syn_before_reply_is_new():
    f = Flow()
    e, _ = f(c2s(TCP_SYN, 1000), 0.0)
    e2, i = f(c2s(TCP_SYN, 1000), 1.0)
    assert e2 is e and i == CtState.NEW and e.deadline == 121.0


def test_udp_request_reply_stream():
    f = Flow()
    e, i = f(udp(A, B, 5000, 53), 10.0)
    assert i == CtState.NEW and e.timeout == 30 and e.deadline == 40.0
    _, i = f(udp(A, B, 5000, 53), 11.0)
    assert i == CtState.NEW                   # still no reply
    _, i = f(udp(B, A, 53, 5000), 11.5)
    assert i == CtState.ESTABLISHED and e.reply and e.timeout == 30
    assert not e.status & IPS_ASSURED
    f(udp(A, B, 5000, 53), 11.9)              # within 2 s of the first packet
    assert e.timeout == 30 and not e.status & IPS_ASSURED
    f(udp(A, B, 5000, 53), 12.5)              # later: a stream
    assert e.timeout == 120 and e.status & IPS_ASSURED


def test_icmp_echo():
    f = Flow()
    e, i = f(icmp(A, B, 8, ident=77), 0.0)
    assert i == CtState.NEW and e.timeout == 30
    assert e.orig_tuple == CtTuple(1, A, B, 77, 8 << 8)
    assert e.repl_tuple == CtTuple(1, B, A, 77, 0)
    _, i = f(icmp(B, A, 0, ident=77), 0.5)
    assert i == CtState.ESTABLISHED and e.reply and not e.status & IPS_ASSURED
    assert f(icmp(B, A, 0, ident=78), 0.6) == (None, CtState.INVALID)   # not valid_new
    assert f(icmp(A, B, 9), 0.7) == (None, CtState.INVALID)             # no inverse
    assert f(icmp(A, B, 40), 0.8) == (None, CtState.INVALID)            # > NR_ICMP_TYPES


def test_icmp_errors_are_related():
    f = Flow()
    e, _ = f(udp(A, B, 5000, 53), 0.0)
    quoted = udp(A, B, 5000, 53)
    entry, i = f(icmp(B, A, 3, 3, inner=quoted), 0.1)
    assert entry is e and i == CtState.RELATED and e.reply
    entry, i = f(icmp(N, A, 11, 0, inner=quoted), 0.2)     # from a router on the way
    assert entry is e and i == CtState.RELATED and e.reply
    entry, i = f(icmp(A, B, 3, 1, inner=udp(B, A, 53, 5000)), 0.3)
    assert entry is e and i == CtState.RELATED and not e.reply
    # no entry of their own, and the UDP entry is not refreshed
    assert f.t.entries() == [e] and e.deadline == 30.0
    assert f(icmp(B, A, 3, 3, inner=udp(A, B, 5999, 53)), 0.4) == (None, CtState.INVALID)
    # outer destination other than the matched direction's destination
    assert f(icmp(B, N, 3, 3, inner=quoted), 0.5) == (None, CtState.INVALID)


def test_icmp_error_about_natted_connection():
    f = Flow()
    t = f.t
    e = t.new(udp(A, B, 5000, 53), 0.0)
    # what DNAT to 10.50.0.9:5353 does to the entry (nf_nat_setup_info -> alter_reply)
    e.repl_src, e.repl_sport = ip4("10.50.0.9"), 5353
    t.packet(e, udp(A, B, 5000, 53), False, 0.0)
    t.confirm(e, 0.0)
    # the reply comes from the real server and is found by the NAT-changed reply tuple
    assert t.lookup(udp(ip4("10.50.0.9"), A, 5353, 5000)) == (e, True)
    assert t.lookup(udp(B, A, 53, 5000)) == (None, False)
    # an error from the real server quotes the datagram as it left the node
    entry, i = t.track(icmp(ip4("10.50.0.9"), A, 3, 3,
                            inner=udp(A, ip4("10.50.0.9"), 5000, 5353)), 0.1)
    assert entry is e and i == CtState.RELATED and e.reply
    assert t.tuple_in_use(CtTuple(17, ip4("10.50.0.9"), A, 5353, 5000))
    assert not t.tuple_in_use(CtTuple(17, ip4("10.50.0.9"), A, 5353, 5000), ignore=e)
    # the untranslated answer B:53 -> A:5000 is a new connection whose reply tuple is
    # this entry's original tuple: what NAT's unique-tuple check must see as taken (the
    # kernel's POSTROUTING null binding then remaps its source port; seen in the kernel)
    assert t.lookup(udp(B, A, 53, 5000)) == (None, False)
    assert t.tuple_in_use(CtTuple(17, A, B, 5000, 53))


def test_expiry_by_timestamps():
    f = Flow()
    e, _ = f(udp(A, B, 5000, 53), 100.0)
    assert f.t.expire(129.9) == [] and f.t.entries() == [e]
    assert f.t.expire(130.0) == [e] and f.t.entries() == []
    # a packet after the deadline starts a new connection
    e2, i = f(udp(A, B, 5000, 53), 131.0)
    assert e2 is not e and i == CtState.NEW


def test_lookup_skips_expired_when_given_now():
    f = Flow()
    e, _ = f(icmp(A, B, 8, ident=1), 0.0)
    assert f.t.lookup(icmp(B, A, 0, ident=1)) == (e, True)
    assert f.t.lookup(icmp(B, A, 0, ident=1), now=30.0) == (None, False)
    assert f.t.entries() == []


def test_zones_are_separate():
    f = Flow()
    e1, _ = f(udp(A, B, 5000, 53), 0.0, zone=0)
    e2, i = f(udp(A, B, 5000, 53), 0.0, zone=7)
    assert e2 is not e1 and i == CtState.NEW and e2.zone == 7
    assert f.t.lookup(udp(B, A, 53, 5000), zone=7) == (e2, True)
    assert "zone=7 " in f.t.format(e2, 0.0) and "zone=" not in f.t.format(e1, 0.0)


def test_confirm_clash():
    t = ConntrackTable()
    first = t.new(udp(A, B, 5000, 53), 0.0)
    second = t.new(udp(A, B, 5000, 53), 0.0)      # both unconfirmed (two CPUs)
    for e in (first, second):
        t.packet(e, udp(A, B, 5000, 53), False, 0.0)
    assert t.confirm(first, 0.0) is first
    assert t.confirm(second, 0.0) is first           # same connection: merged
    other = t.new(udp(N, B, 6000, 53), 0.0)
    t.packet(other, udp(N, B, 6000, 53), False, 0.0)
    other.repl_src, other.repl_dst, other.repl_sport, other.repl_dport = B, A, 53, 5000
    assert t.confirm(other, 0.0) is None             # reply tuple taken: dropped
    assert t.entries() == [first]


def test_format_is_conntrack_L():
    f = Flow()
    e = handshake(f)
    u, _ = f(udp(A, B, 5000, 53), 1.0)
    u.mark = 0x10
    text = f.t.format(e, 10.0)
    assert text == ("tcp      6 431990 ESTABLISHED src=192.168.50.1 dst=10.50.0.2 "
                    "sport=40000 dport=80 src=10.50.0.2 dst=192.168.50.1 sport=80 "
                    "dport=40000 [ASSURED] mark=0 use=1")
    (parsed,) = parse_conntrack(f.t.format(u, 1.0))
    assert parsed.flags == {"UNREPLIED"} and parsed.mark == 16 and parsed.timeout == 30
    (ping,) = parse_conntrack(f.t.format(f(icmp(A, B, 8, ident=5), 0.0)[0], 0.0))
    assert (ping.orig_icmp, ping.reply_icmp) == ((8, 0, 5), (0, 0, 5))
